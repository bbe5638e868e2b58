// The file system itself: every decision the overlay takes on SOURCE, at the level of the
// kernel's inodes, with no libfuse type in it. daemon/fuse_ops.cpp only translates requests to
// these calls and their results to replies; unit tests call them directly, without a mount.
//
// Contract, for every operation:
// - Objects are named by NodeId (the kernel's node ids, kRootNodeId for SOURCE) and open files
//   and directories by the File*/Dir* that open()/create()/opendir() returned. An id the table
//   does not know gives ESTALE.
// - Errors are values: a synchronous call returns 0 or a positive errno and fills its out
//   parameters only on success; an asynchronous one calls its completion exactly once with
//   0 or a positive errno, on the loop that called it (read) or on the blocking pool (fsync,
//   fsyncdir, fallocate, copy_file_range, and release on a source whose close may wait). A
//   completion that is destroyed uncalled (a body on the pool that threw, a loop stopping with a
//   read in flight) is simply destroyed: the caller's completion type decides what that means (the
//   daemon's Reply answers EIO).
// - Every Entry an operation returns (lookup, mknod, mkdir, symlink, link, create, readdirplus)
//   has counted one kernel lookup on its inode; if the entry never reaches the kernel, the caller
//   gives it back with forget(id, 1). Likewise a File or Dir that never reaches the kernel goes
//   back through discard().
// - Exceptions (allocation failure, or one thrown by an observer) may leave any call; none leaves
//   a descriptor or a registered handle behind, and no lookup is counted for an Entry not
//   returned.
// - Any thread, concurrently, except where a call says otherwise: read() needs the calling
//   thread's event loop (io::Executor::current()) to go to io_uring, and without one (unit tests)
//   reads synchronously. Once a call has returned or completed, the caller may hand its result to
//   the kernel, after which another thread may already be releasing the same File: nothing here
//   touches a File or Dir after its operation's result was delivered.
// - The hot paths (lookup, getattr, read, write) allocate nothing and take no lock of their own
//   beyond the inode table's, except a short one while riakfs holds a file's mtime
//   (source_changing).
#pragma once

#include "lib/common/callback.hpp"
#include "lib/common/mount_options.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/fs/caller.hpp"
#include "lib/fs/close_policy.hpp"
#include "lib/fs/held_mtimes.hpp"
#include "lib/fs/inode_table.hpp"
#include "lib/fs/link_names.hpp"
#include "lib/fs/open_handles.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace rfs::io {
class Executor;
}

namespace rfs::fs {

// A name's object as the kernel is shown it. `id` 0 is a negative entry: the name is absent and
// the kernel may remember that for `entry_timeout` seconds.
struct Entry {
    NodeId id = 0;
    struct stat attr {};
    double attr_timeout = 0;
    double entry_timeout = 0;
};

struct Attr {
    struct stat attr;
    double timeout;
};

// Which fields setattr() changes; the values are FUSE's (FUSE_SET_ATTR_*), so the daemon passes
// the kernel's mask through unchanged (checked there).
enum SetAttrFlags : int {
    kSetMode = 1 << 0,
    kSetUid = 1 << 1,
    kSetGid = 1 << 2,
    kSetSize = 1 << 3,
    kSetAtime = 1 << 4,
    kSetMtime = 1 << 5,
    kSetAtimeNow = 1 << 7,
    kSetMtimeNow = 1 << 8,
};

class File;

// Serves the reads of one open file from somewhere other than SOURCE (mode=migrate: from Riak).
// An FsObserver hands one out at open (FsObserver::serve_reads); the File owns it.
class RemoteReads {
public:
    using ReadDone = Callback<void(int err, const char* data, size_t size)>;
    virtual ~RemoteReads() = default;
    // Either takes the read (true) and calls `done` exactly once, from any thread, as
    // LocalFs::read would (the file's bytes, short only at end of file; File::note_read and
    // mark_read_to_end kept up), touching `file` not at all once `done` was called; or declines
    // (false, `done` untouched) and LocalFs reads SOURCE. `size` is at most the buffer size.
    virtual bool read(File& file, size_t size, off_t offset, ReadDone& done) = 0;
    // Called at release of a handle not written through: true when its close needs nothing from
    // the observer (what it served is in Riak already and nothing else waits for the close), so
    // FsObserver::on_released is not called. Why: a read-to-end close would otherwise hand the
    // path to the migrator, which only finds the copy current, at the price of a path lookup and
    // a wake-up of its loop per file read.
    virtual bool close_needs_nothing(File& /*file*/) { return false; }
};

// An open regular file. Owned by LocalFs from open()/create() until release() or discard().
class File : public OpenHandles::Entry {
public:
    File(UniqueFd fd, NodeId node) : fd_(std::move(fd)), node_(node) {}
    int fd() const { return fd_.get(); }
    NodeId node() const { return node_; }
    // Whether the file's data was changed through this handle (write, fallocate, or
    // copy_file_range into it).
    // Also true for a file this handle created or truncated (O_TRUNC): its content is new.
    bool written() const { return written_.load(std::memory_order_relaxed); }
    // A read through this handle met the end of the file (a short read).
    bool read_to_end() const { return read_to_end_.load(std::memory_order_relaxed); }
    void mark_read_to_end() {
        if (!read_to_end_.load(std::memory_order_relaxed))
            read_to_end_.store(true, std::memory_order_relaxed);
    }
    // The furthest byte a read through this handle returned. The kernel never asks past the
    // size it knows, so a file read whole may see no short read: release compares this with
    // the size instead.
    std::uint64_t read_end() const { return read_end_.load(std::memory_order_relaxed); }
    void note_read(std::uint64_t end) {
        if (end > read_end_.load(std::memory_order_relaxed))
            read_end_.store(end, std::memory_order_relaxed);
    }

private:
    friend class LocalFs;
    void mark_written() {
        // Checked first: concurrent writers then only read the shared line.
        if (!written_.load(std::memory_order_relaxed))
            written_.store(true, std::memory_order_relaxed);
    }
    UniqueFd fd_;
    const NodeId node_;
    std::unique_ptr<RemoteReads> remote_; // set at open only; null: reads go to SOURCE
    bool pinned_ = false;                 // FsObserver::on_unpinned at close
    bool close_may_block_ = false;        // closed on the blocking pool (see release())
    std::atomic<bool> written_{false};
    std::atomic<bool> read_to_end_{false};
    std::atomic<std::uint64_t> read_end_{0};
};

// An open directory stream. Owned by LocalFs from opendir() until releasedir() or discard().
class Dir : public OpenHandles::Entry {
public:
    explicit Dir(NodeId node) : node_(node) {}
    ~Dir() override;
    NodeId node() const { return node_; }
    int fd() const;

private:
    friend class LocalFs;
    const NodeId node_;
    std::mutex mu_;
    DIR* dir_ = nullptr;
    off_t offset_ = 0;
    dirent* pending_ = nullptr; // read but not yet sent: it did not fit the last reply
};

// How the kernel should treat an open file or directory (the policy's caching decisions).
struct OpenResult {
    File* file = nullptr;
    bool keep_cache = false;
    bool direct_io = false;
    bool noflush = false;
};

struct OpenDirResult {
    Dir* dir = nullptr;
    bool keep_cache = false;
    bool cache_readdir = false;
};

// Receives readdir()'s entries in order. Each add returns false when the entry does not fit
// the caller's buffer; that entry is then kept for the next readdir() and the listing stops.
class DirSink {
public:
    // Without attributes: `st` holds only st_ino and the type bits of st_mode.
    virtual bool add(const char* name, const struct stat& st, off_t next) = 0;
    // With attributes (readdirplus). "." and ".." come with id 0 (the kernel makes no dentries
    // for them) and only st_ino and the type; every other entry has counted a lookup, which
    // LocalFs gives back itself when add_plus returns false.
    virtual bool add_plus(const char* name, const Entry& entry, off_t next) = 0;

protected:
    ~DirSink() = default;
};

// Tells the kernel about changes it cannot see; implemented by the daemon. May be called on any
// thread, from inside an operation, before the operation's result is delivered: an
// implementation that must wait for the kernel (which may wait for that result) defers the work.
class KernelNotifier {
public:
    // The kernel believed `name` absent in `parent` and must forget that.
    virtual void forget_negative_entry(NodeId parent, std::string_view name) = 0;
    // `node`'s attributes changed outside any request (its data released or fetched back, which
    // moves st_blocks and ctime): the kernel must ask again instead of trusting its cache.
    virtual void attributes_changed(NodeId node) = 0;

protected:
    ~KernelNotifier() = default;
};

// on_open()'s answer. kNeedsData (an errno no open(2) returns) means: this file's data is
// elsewhere and must be fetched back (FsObserver::fetch_data, LocalFs::fetch_data) before the
// operation can run; the daemon does that, asynchronously, and asks again.
inline constexpr int kNeedsData = ERESTART;

struct OpenPlan {
    int err = 0;
    std::unique_ptr<RemoteReads> remote; // read-only opens: who serves the reads (null: SOURCE)
    bool pinned = false;                 // on_unpinned() when the handle closes
};

// Extension points for the modes that will move data into Riak (shadow, migrate, move): they
// observe what changes, and may refuse an open (returning an errno) before the kernel gets it.
// Called synchronously on the operation's thread, after the change succeeded on SOURCE and
// before its result is delivered (the before_* hooks: before the change); any thread, concurrently.
// A hook may throw: the operation then fails as if it had thrown itself (see the contract above),
// though SOURCE keeps the change. With no observer set, LocalFs makes none of these calls. A
// namespace change as an observer noted it before SOURCE made it (FsObserver::before_unlink,
// before_rename): its paths relative to SOURCE when found, and the observer's note of it.
struct NotedChange {
    std::uint64_t note = 0; // 0: not noted
    bool paths = false;     // from and to are set
    std::string from, to;
};

class FsObserver {
public:
    virtual ~FsObserver() = default;
    // The kernel looked `name` up and got the regular file `entry` (LOOKUP, not READDIRPLUS):
    // an open often follows, so an observer may start fetching what it would read.
    virtual void on_looked_up(const Entry& /*entry*/) {}
    // A regular file, directory, node or symlink was made as `name` in `parent` (not a link).
    virtual void on_created(NodeId /*parent*/, std::string_view /*name*/, const Entry& /*entry*/) {}
    // The regular file `node` is being opened with open(2) `flags`; `fd` is open, the handle not
    // yet made. The plan may refuse the open (OpenPlan::err; kNeedsData asks for fetch_data()
    // first), serve its reads from elsewhere (read-only opens only), or pin the file until the
    // handle closes (on_unpinned). Also asked, with a read-only `fd` and O_WRONLY, before a
    // truncate by path (setattr), whose pin ends when the truncate is done.
    virtual OpenPlan on_open(NodeId /*node*/, int /*flags*/, int /*fd*/) { return {}; }
    // on_open() of a regular file that this CREATE has just made (O_EXCL), whose `st` (from
    // SOURCE, not as shown to the kernel) is known: nothing can be in it yet.
    virtual OpenPlan on_created_open(NodeId node, int flags, int fd, const struct stat& /*st*/) {
        return on_open(node, flags, fd);
    }
    // Sets the times of the regular file `node` (`id` in SOURCE) to `times` (futimens's pair):
    // `apply` makes the call and returns 0 or an errno. The observer decides when: its own work
    // that puts a file's times back (mode=move's release, a fetch back) must not overwrite the
    // new ones, so it may wait for that work, hold it off, or have it set `times` instead. Never
    // needs the file's data.
    virtual int set_times(NodeId /*node*/, SrcId /*id*/, const timespec* /*times*/,
                          const std::function<int()>& apply) {
        return apply();
    }
    // A handle (or truncate) that on_open pinned `node` for is closing.
    virtual void on_unpinned(NodeId /*node*/) {}
    // The file's data must be brought back to SOURCE before it can be changed (on_open said
    // kNeedsData). `fd` is the file open for reading and writing. Calls `done` exactly once, from
    // any thread, with 0 (open again) or an errno for the application.
    virtual void fetch_data(NodeId /*node*/, UniqueFd /*fd*/, Callback<void(int)> done) {
        done(EIO);
    }
    // The handle was closed (the kernel's RELEASE): `written` if its data was changed through it
    // (File::written()), `read_to_end` if a read through it met the end of the file.
    virtual void on_released(NodeId /*node*/, bool /*written*/, bool /*read_to_end*/) {}
    // A file lost one of its names (an unlink, a rename over it) and keeps others: `rel_path`
    // is one of them (the kernel's choice), whose link count changed.
    virtual void on_other_name_changed(std::string_view /*rel_path*/) {}
    // `node` got another name, `newname` in `newparent` (link(2)).
    virtual void on_linked(NodeId /*node*/, NodeId /*newparent*/, std::string_view /*newname*/) {}
    // Before an unlink, rmdir or rename changes SOURCE (`dir_fd`, `newdir_fd`: the directories,
    // as LocalFs reaches them): the observer may note the change ahead of it, a write-ahead note
    // that lets a restart after a crash record what the hooks below never heard of. What it
    // returns goes to on_unlinked / on_renamed once SOURCE made the change, or to
    // change_not_made() when SOURCE refused it.
    virtual NotedChange before_unlink(NodeId /*parent*/, int /*dir_fd*/, const char* /*name*/,
                                      bool /*dir*/) {
        return {};
    }
    virtual NotedChange before_rename(NodeId /*parent*/, int /*dir_fd*/, const char* /*name*/,
                                      NodeId /*newparent*/, int /*newdir_fd*/,
                                      const char* /*newname*/, unsigned /*flags*/) {
        return {};
    }
    virtual void change_not_made(NotedChange& /*change*/) {}
    // `name` was removed from `parent` (unlink, or rmdir when `dir`).
    virtual void on_unlinked(NodeId /*parent*/, std::string_view /*name*/, bool /*dir*/,
                             NotedChange& /*change*/) {}
    // A RENAME_EXCHANGE of `name` in `parent` (open as `dir_fd`) and `newname` in `newparent`
    // (`newdir_fd`): runs `exchange` (the renameat2, which returns 0 or its errno) and returns
    // what it returns, or refuses with an errno without running it (as a file system without the
    // flag does). An observer may keep the two files from changing state around the call.
    virtual int exchange(NodeId /*parent*/, int /*dir_fd*/, const char* /*name*/,
                         NodeId /*newparent*/, int /*newdir_fd*/, const char* /*newname*/,
                         const std::function<int()>& exchange) {
        return exchange();
    }
    // rename(2) of `name` in `parent` to `newname` in `newparent`, with its RENAME_* flags.
    virtual void on_renamed(NodeId /*parent*/, std::string_view /*name*/, NodeId /*newparent*/,
                            std::string_view /*newname*/, unsigned /*flags*/,
                            NotedChange& /*change*/) {}
    // setattr() changed the fields `to_set` (SetAttrFlags) of `node`; 0: an extended attribute
    // was set or removed.
    virtual void on_attr_changed(NodeId /*node*/, int /*to_set*/) {}
    // An application's fsyncdir through the mount succeeded in SOURCE, and is answered once
    // this returns: what the observer keeps of the names made so far should now survive a power
    // loss as SOURCE's do. (Not after a file's fsync: POSIX makes a name durable only with its
    // directory's, and programs that fsync every new file would pay a second sync each.) Runs
    // on a blocking-work thread (it may wait for a disk).
    virtual void on_dir_synced() {}
};

// The reply to copy_file_range carries the count in 32 bits: a copy is cut to this (a
// page-aligned length below 4 GiB), and the application's loop asks for the rest, as it does
// after any short copy.
inline constexpr size_t kMaxCopyLength = 0xfffff000u;
size_t clamp_copy_length(size_t len);

class LocalFs {
public:
    struct Config {
        Timeouts timeouts{1.0, 1.0, 0.0, false, false};
        // The daemon's own credentials: a caller with them creates as itself.
        uid_t daemon_uid = ::geteuid();
        gid_t daemon_gid = ::getegid();
        // Extended attributes that are the daemon's own (riakfs's released-file marker): never
        // listed, read (ENODATA), set or removed (EPERM) through the mount. Null: none.
        bool (*hidden_xattr)(std::string_view name) = nullptr;
    };

    LocalFs(InodeTable& inodes, Config config);
    ~LocalFs();
    LocalFs(const LocalFs&) = delete;
    LocalFs& operator=(const LocalFs&) = delete;

    // Wiring, before the first operation. With no executor the blocking calls run in place.
    void set_executor(io::Executor* executor) { executor_ = executor; }
    void set_notifier(KernelNotifier* notifier) { notifier_ = notifier; }
    void set_observer(FsObserver* observer) { observer_ = observer; }

    // riakfs itself is about to change the data of the file `dev`/`ino` in SOURCE in a way that
    // moves its mtime for a moment (mode=move's punch, a fetch's writes), and puts `mtime` back
    // afterwards: until the matching source_changed(), every attribute answered for the file
    // (lookup, readdirplus, getattr, setattr) shows `mtime`, so no application sees the moment
    // (lib/fs/held_mtimes.hpp). Each call must be followed by exactly one source_changed(), on
    // every way out, once the times are put back (or cannot be). Any thread.
    void source_changing(dev_t dev, ino_t ino, const timespec& mtime);
    // The file `dev`/`ino` in SOURCE was changed by riakfs itself outside a request (mode=move's
    // release, a fetch back, a recall): ends a source_changing() hold of it, if there is one,
    // and the kernel, which may cache its attributes for long (cache=exclusive), is told to
    // forget them. Any thread; the kernel is told nothing when it does not know the file.
    void source_changed(dev_t dev, ino_t ino);
    // fstatat(dir_fd, name, AT_SYMLINK_NOFOLLOW) of an entry of SOURCE as the mount shows it:
    // with the held mtime while riakfs changes the file (source_changing). 0 or an errno. For
    // readers of SOURCE beside the mount (the namespace records). Any thread.
    int lstat_as_shown(int dir_fd, const char* name, struct stat* st);

    // The path of `node` relative to SOURCE ("" for SOURCE itself), as the kernel reports the
    // object's name now: 0, ENOENT once it has no name left (unlinked), ESTALE if it is not
    // below SOURCE, or an errno of reaching it. For observers; not for hot paths.
    int relative_path(NodeId node, std::string* out);
    // The kernel sends creation modes without the caller's umask (FUSE_CAP_DONT_MASK): apply
    // Caller::umask unless the parent has a default ACL.
    void set_apply_umask(bool on) { apply_umask_ = on; }
    // The kernel keeps written pages (FUSE_CAP_WRITEBACK_CACHE): it reads a page before writing
    // part of it, through whichever handle wrote, so write-only opens are made read-write
    // (backing_flags). Set by init, before any open.
    void set_writeback_cache(bool on) { writeback_cache_ = on; }
    bool writeback_cache() const { return writeback_cache_; }

    InodeTable& inodes() { return inodes_; }
    const Timeouts& timeouts() const { return config_.timeouts; }

    // Which synchronous calls may wait on the source for long (truncating: setattr of the size,
    // an O_TRUNC open): an event loop would stall every other request meanwhile, so the caller
    // makes them from the blocking pool (io::Executor::run_blocking) and answers from there.
    static bool may_wait_long_setattr(int to_set) { return (to_set & kSetSize) != 0; }
    static bool may_wait_long_open(int flags) { return (flags & O_TRUNC) != 0; }

    // ---- names ---------------------------------------------------------------------------------
    // ENOENT becomes a negative Entry (id 0, returning 0) when the negative timeout is nonzero.
    int lookup(NodeId parent, const char* name, Entry* out);
    // Drops `n` kernel lookups of `id`. Returns false when they did not match our count.
    bool forget(NodeId id, std::uint64_t n);
    // forget() for `count` pairs, `at(i)` giving the i-th; returns how many did not match.
    template <class At> size_t forget_batch(size_t count, At at) {
        return inodes_.forget_batch(count, at);
    }

    // ---- attributes ----------------------------------------------------------------------------
    // `file`, when the kernel names an open handle, is asked instead of the inode: it works even
    // once the last name is gone.
    int getattr(NodeId id, const File* file, Attr* out);
    // Changes the `to_set` fields (SetAttrFlags) from `values`, through `file` when given.
    // A size change waits for the source as long as it takes (a truncate on a network or FUSE
    // source): see may_wait_long().
    int setattr(const Caller& caller, NodeId id, const struct stat& values, int to_set,
                const File* file, Attr* out);
    // The target, NUL-terminated, in `buf` of `size` bytes (PATH_MAX + 1 is always enough).
    int readlink(NodeId id, char* buf, size_t size);

    // ---- creating and removing names -----------------------------------------------------------
    // Objects belong to the caller (with its group, or the set-group-ID directory's).
    int mknod(const Caller& caller, NodeId parent, const char* name, mode_t mode, dev_t rdev,
              Entry* out);
    int mkdir(const Caller& caller, NodeId parent, const char* name, mode_t mode, Entry* out);
    int symlink(const Caller& caller, const char* target, NodeId parent, const char* name,
                Entry* out);
    int link(NodeId id, NodeId newparent, const char* newname, Entry* out);
    int unlink(NodeId parent, const char* name);
    int rmdir(NodeId parent, const char* name);
    // `flags`: RENAME_NOREPLACE, RENAME_EXCHANGE; anything else is EINVAL.
    int rename(NodeId parent, const char* name, NodeId newparent, const char* newname,
               unsigned flags);

    // ---- files ---------------------------------------------------------------------------------
    // `flags` are the application's open(2) flags. kNeedsData: see fetch_data(). An O_TRUNC open
    // truncates: see may_wait_long().
    int open(const Caller& caller, NodeId id, int flags, OpenResult* out);
    // Makes `name` (or, when it was made beside the mount meanwhile and `flags` lacks O_EXCL,
    // opens the existing regular file with the caller's own credentials) and opens it. An
    // existing object that is not a regular file is refused (EISDIR, EEXIST) and the notifier
    // told to make the kernel forget its stale "absent".
    int create(const Caller& caller, NodeId parent, const char* name, mode_t mode, int flags,
               Entry* entry, OpenResult* out);

    using ReadDone = RemoteReads::ReadDone;
    using Done = Callback<void(int err)>;
    using CountDone = Callback<void(int err, size_t count)>;
    // Reads up to `size` bytes (at most io::BufferPool::kBufferSize) at `offset`. `data` is valid
    // only during the completion. Short only at end of file; an error after part of the data is
    // an error (the kernel takes a short read for end of file).
    void read(File& file, size_t size, off_t offset, ReadDone done);
    // `caller` is null for a page written back from the kernel's cache (checked at its write()).
    int write(const Caller* caller, File& file, const char* data, size_t size, off_t offset,
              size_t* written);
    // Each close() of a written file: what closing a descriptor of the source reports. On the
    // blocking pool: FLUSH is asked for exactly where close() may wait on a server (FUSE, NFS).
    void flush(File& file, Done done);
    // The kernel's last reference to the handle: closes it, then calls `done` (0: never fails).
    // Where close() may wait on a server (FUSE, NFS: the sources FLUSH is asked for, whatever
    // the access mode), on the blocking pool: the final close of a FUSE source's file sends it
    // a FLUSH too, and a stuck one would hold back every request on the loop. In place
    // elsewhere.
    void release(File* file, Done done);
    // The same, for a caller that waits for nothing (the close may still run on the pool).
    void release(File* file) {
        release(file, [](int) {});
    }
    // A handle that never reached the kernel: closed without telling the observer (but a pin
    // it took is given back).
    void discard(File* file);
    // open() or setattr() answered kNeedsData: the observer brings the file's data back to
    // SOURCE, then `done` is called (any thread) with 0 (ask again) or an errno.
    void fetch_data(NodeId id, Callback<void(int err)> done);

    void fsync(File& file, bool datasync, Done done);
    void fallocate(File& file, int mode, off_t offset, off_t length, Done done);
    void copy_file_range(File& in, off_t off_in, File& out, off_t off_out, size_t len, int flags,
                         CountDone done);
    int lseek(File& file, off_t offset, int whence, off_t* out);

    // ---- directories ---------------------------------------------------------------------------
    int opendir(NodeId id, OpenDirResult* out);
    // Lists `dir` from `offset` (0 or a `next` an earlier entry carried) into `sink` until the
    // end, a full sink, or an error. Returns that error, or 0; entries already added stand
    // (they carry lookup counts) even when an error follows them.
    int readdir(Dir& dir, off_t offset, bool plus, DirSink& sink);
    void releasedir(Dir* dir);
    void discard(Dir* dir);
    void fsyncdir(Dir& dir, bool datasync, Done done);
    int statfs(NodeId id, struct statvfs* out);
    // access(2) with the daemon's own credentials.
    int access(NodeId id, int mask);

    // ---- extended attributes -------------------------------------------------------------------
    int setxattr(NodeId id, const char* name, const char* value, size_t size, int flags);
    // `size` 0 asks for the size needed (in `*len`); otherwise the value goes into `buf`, ERANGE
    // if it does not fit.
    int getxattr(NodeId id, const char* name, char* buf, size_t size, size_t* len);
    // The names `caller` may see: with `size` 0 only the length of that list (in `*len`), else
    // the list itself in `names` (ERANGE above `size`).
    int listxattr(const Caller& caller, NodeId id, size_t size, std::vector<char>* names,
                  size_t* len);
    int removexattr(NodeId id, const char* name);

    // Closes every open file and directory still registered (the kernel never sent their
    // RELEASE). Only once no operation can be using them.
    void close_all_handles() { handles_.close_all(); }

private:
    struct Node;
    int node(NodeId id, Node* out);
    int do_lookup(const Node& parent, const char* name, Entry* out);
    int new_entry(NodeId parent_id, const Node& parent, const char* name, Entry* out);
    void give_to_caller(const Caller& caller, const Node& parent, int dirfd, const char* name,
                        int fd);
    mode_t creation_mode(const Caller& caller, const Node& dir, mode_t mode);
    int clear_setid_bits(const Caller& caller, int fd);
    int open_existing_for_caller(const Caller& caller, const Node& dir, const char* name, int flags,
                                 UniqueFd* out);
    int readable_if_writeback(int flags) const;
    // relative_path() of the object `fd` (an O_PATH descriptor or any other) refers to.
    int relative_path_of(int fd, std::string* out);
    // relative_path() of the file `st` by one of the names link_names_ noted that still leads
    // to it: 0, or ENOENT when none does.
    int relative_path_by_link_names(const struct stat& st, std::string* out);
    // Notes `name` in `parent` for link_names_ when it is one of several names of a file (`st`:
    // its status), or the new name of a file noted before (`renamed`), and an observer may ask
    // for its path.
    void note_link_name(const struct stat& st, NodeId parent, std::string_view name,
                        bool renamed = false);
    // Before a name of a file with several names goes (unlink, a rename over it): the file's
    // handle, or "" (a directory, a single name, no observer). After: the observer is told one
    // of the names it keeps (notify_other_name).
    std::string other_names_handle(int dir_fd, const char* name,
                                   const struct stat* moving = nullptr);
    void notify_other_name(const std::string& handle);
    // unlink(2), or rmdir(2) when `dir`, of `name` in `parent`, with the observer's hooks
    // around it.
    int remove_entry(NodeId parent, const char* name, bool dir);
    void make_open_result(UniqueFd fd, NodeId node, int app_flags, dev_t dev, OpenResult* out);
    // A change without an open handle (a truncate by path, a link) of the object at `path_fd`
    // asks the observer as an open for writing would: its data must be here (kNeedsData
    // otherwise) and stay while it changes. `*pinned` is set to `id` when a pin was taken, even
    // with an error: the caller gives it back (on_unpinned) once the change is done or refused.
    int pin_for_change(NodeId id, int path_fd, bool regular, NodeId* pinned);
    template <class Call> int with_fd_retry(Call open_call);
    // release()'s work: the observer told, the handle unregistered and closed.
    void close_released(File* file);
    template <class Call> ssize_t on_symlink(const Node& link, Call call);
    void shown(struct stat* st) { st->st_ino = inodes_.st_ino(st->st_dev, st->st_ino); }
    template <class Body> void run_blocking(Body&& body);
    // run_blocking() for copies, on a pool of their own (see io::Executor::run_copy).
    template <class Body> void run_copy(Body&& body);

    InodeTable& inodes_;
    const Config config_;
    io::Executor* executor_ = nullptr;
    KernelNotifier* notifier_ = nullptr;
    FsObserver* observer_ = nullptr;
    bool apply_umask_ = false;
    bool writeback_cache_ = false;
    OpenHandles handles_;
    ClosePolicy close_policy_; // which opens need FLUSH
    HeldMtimes held_;          // source_changing()
    // relative_path(): what /proc last said SOURCE's path is (asked again when a node's path is
    // not beneath it).
    std::mutex root_path_mu_;
    std::string root_path_;
    // relative_path(): names of files with several links (observers only).
    LinkNames link_names_;
};

} // namespace rfs::fs
