// The passthrough overlay's file-system logic (see local_fs.hpp for the contract).
//
// Every access to SOURCE is relative to an inode's O_PATH descriptor: names are resolved one
// component at a time with O_NOFOLLOW, and objects are reopened through /proc/self/fd, which
// names the object itself rather than a path, so no symlink is ever followed out of the tree.
// Metadata calls are short local syscalls made in place; file data moves through io_uring on the
// calling loop; calls that can block for long (fsync, fallocate, flush, truncates) go to the
// blocking pool, and copy_file_range to a pool of its own.
#include "lib/fs/local_fs.hpp"

#include "lib/common/log.hpp"
#include "lib/io/executor.hpp"

#include <boost/asio/random_access_file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

namespace rfs::fs {

namespace asio = boost::asio;

// An inode in use by one operation, with a descriptor of its object held for the operation's
// length.
struct LocalFs::Node {
    std::shared_ptr<Inode> inode;
    FdRef ref;

    const Inode* operator->() const { return inode.get(); }
    const Inode& operator*() const { return *inode; }
    int fd() const { return ref.get(); }
};

namespace {

// "/proc/self/fd/N": reopens or addresses the object an O_PATH descriptor refers to.
struct ProcPath {
    explicit ProcPath(int fd) { std::snprintf(text, sizeof text, "/proc/self/fd/%d", fd); }
    char text[32];
    operator const char*() const { return text; }
};

int errno_of(const boost::system::error_code& ec) {
    if (ec.category() == boost::system::system_category() ||
        ec.category() == boost::system::generic_category())
        return ec.value() ? ec.value() : EIO;
    return EIO;
}

// Gives back one counted lookup unless released: an Entry that is not returned (an error or an
// exception after its lookup) must not keep its inode in the table.
struct LookupGuard {
    InodeTable& inodes;
    NodeId id = 0;
    ~LookupGuard() {
        if (id) inodes.unlookup(id);
    }
};

// Gives back an observer's pin (FsObserver::on_open) that no handle took over.
struct PinGuard {
    FsObserver* observer;
    NodeId id = 0;
    ~PinGuard() {
        if (id) observer->on_unpinned(id);
    }
};

int reopen_flags(int flags) {
    // O_DIRECT would demand aligned buffers from us; the kernel bypasses its cache instead
    // (direct_io). O_NOFOLLOW/O_CREAT/O_EXCL were handled by lookup and create.
    // O_APPEND stays with the kernel, which computes each write's offset: a backing descriptor
    // opened with it would make pwrite ignore the offset (mmap write-back through an append
    // descriptor would land at the end).
    return (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT | O_APPEND)) | O_CLOEXEC;
}

// An open for reading starts the disk read of the file's first window (the kernel's default
// readahead) before it replies: the READ that follows one round trip later finds the data in
// flight or in the page cache instead of starting it. For a small file read cold that round trip
// was a fifth of its time. posix_fadvise only queues the I/O; it does not wait for it.
constexpr off_t kOpenReadahead = 128 * 1024;

bool starts_with_read(const Inode& inode, int flags) {
    return S_ISREG(inode.type()) && (flags & O_ACCMODE) != O_WRONLY && !(flags & O_TRUNC);
}

bool is_dot_or_dotdot(const char* name) {
    return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

// What /proc reports as the path of descriptor `fd` ("" if it cannot say).
std::string path_of(int fd);

// Room for a file handle of any file system.
union HandleBuf {
    file_handle fh;
    char bytes[sizeof(file_handle) + MAX_HANDLE_SZ];
};

// A file handle (name_to_handle_at) as bytes: "" when there is none.
std::string handle_of(int dir_fd, const char* name, int flags) {
    HandleBuf buf;
    buf.fh.handle_bytes = MAX_HANDLE_SZ;
    int mount_id = 0;
    if (::name_to_handle_at(dir_fd, name, &buf.fh, &mount_id, flags) != 0) return "";
    return std::string(buf.bytes, sizeof(file_handle) + buf.fh.handle_bytes);
}

// The object `handle` (handle_of) names, opened O_PATH by handle (needs CAP_DAC_READ_SEARCH):
// the kernel picks one of its names that is still linked, if it knows one.
UniqueFd open_handle(int root_fd, const std::string& handle) {
    HandleBuf buf;
    if (handle.size() < sizeof(file_handle) || handle.size() > sizeof buf) return UniqueFd();
    std::memcpy(buf.bytes, handle.data(), handle.size());
    UniqueFd dir(::open(ProcPath(root_fd), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return UniqueFd();
    return UniqueFd(::open_by_handle_at(dir.get(), &buf.fh, O_PATH | O_CLOEXEC));
}

// The path of the object `fd` is open on, by another of its names: reopened by file handle,
// the kernel picks a live name. "" when it cannot.
std::string other_name(int root_fd, int fd) {
    UniqueFd again = open_handle(root_fd, handle_of(fd, "", AT_EMPTY_PATH));
    if (!again) return "";
    std::string path = path_of(again.get());
    constexpr std::string_view kDeleted = " (deleted)";
    if (path.size() > kDeleted.size() &&
        path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0)
        return "";
    return path;
}

std::string path_of(int fd) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(ProcPath(fd), buf, sizeof buf);
    return n < 0 || n >= static_cast<ssize_t>(sizeof buf) ? std::string() : std::string(buf, n);
}

// Whether `path` (as /proc names objects) is `root` or beneath it; then `*rel` is its path
// relative to `root` ("" for `root` itself).
bool path_beneath(std::string_view root, std::string_view path, std::string* rel) {
    if (path == root) {
        rel->clear();
        return true;
    }
    if (root == "/") root = {};
    if (path.size() <= root.size() + 1 || path.substr(0, root.size()) != root ||
        path[root.size()] != '/')
        return false;
    rel->assign(path.substr(root.size() + 1));
    return true;
}

// The directory holding the symlink `link` (whose O_PATH descriptor is `link_fd`) and the link's
// name in it, for kernels without the *xattrat calls. The path /proc reports only guides the
// search: it is walked again from SOURCE's root one component at a time without following
// anything, and the object found must be `link` itself, so a concurrent rename gives ESTALE, never
// another object. Returns an empty descriptor with errno set on failure.
UniqueFd parent_of_symlink(int root_fd, const Inode& link, int link_fd, std::string* name) {
    std::string root = path_of(root_fd), path = path_of(link_fd), rel;
    if (root.empty() || !path_beneath(root, path, &rel) || rel.empty()) {
        errno = ESTALE;
        return UniqueFd();
    }
    UniqueFd dir(::openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    size_t start = 0;
    for (size_t slash; dir && (slash = rel.find('/', start)) != std::string::npos;
         start = slash + 1) {
        std::string part = rel.substr(start, slash - start);
        dir = UniqueFd(
            ::openat(dir.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!dir) return UniqueFd();
    *name = rel.substr(start);
    struct stat st;
    if (::fstatat(dir.get(), name->c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        SrcId{st.st_dev, st.st_ino} != link.src()) {
        errno = ESTALE;
        return UniqueFd();
    }
    return dir;
}

// Copies with plain reads and writes when the kernel cannot copy between the two descriptors
// (different underlying file systems): the application asked one file system for a copy and
// must never see EXDEV from it.
ssize_t copy_by_hand(int in, off_t off_in, int out, off_t off_out, size_t len) {
    std::vector<char> buf(std::min<size_t>(len, 1 << 20));
    size_t copied = 0;
    while (copied < len) {
        ssize_t n = ::pread(in, buf.data(), std::min(buf.size(), len - copied), off_in + copied);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return copied ? static_cast<ssize_t>(copied) : -errno;
        if (n == 0) break;
        ssize_t w;
        do
            w = ::pwrite(out, buf.data(), n, off_out + copied);
        while (w < 0 && errno == EINTR);
        if (w < 0) return copied ? static_cast<ssize_t>(copied) : -errno;
        copied += w;
        if (w < n) break;
    }
    return static_cast<ssize_t>(copied);
}

// An Asio file object on a descriptor it does not own: released, never closed, when it goes,
// including when a stopping loop discards a read still in flight.
struct ReleaseFile {
    void operator()(asio::random_access_file* file) const noexcept {
        boost::system::error_code ignored;
        file->release(ignored);
        delete file;
    }
};
using BorrowedFile = std::unique_ptr<asio::random_access_file, ReleaseFile>;

// A read that missed the page cache: io_uring keeps reading until `size` bytes or end of file,
// then completes, while the loop serves other requests. The Asio file object lives only as long
// as the read, on the loop that started it (Asio I/O objects belong to one thread): the kernel
// holds the open file until the reply, so the descriptor outlives it, and nothing is left for
// RELEASE to hand back to this loop from another one (a cross-loop post would wake this loop
// again).
struct ReadCall {
    File* owner; // alive until the reply: the kernel holds the open file while it reads
    LocalFs::ReadDone done;
    io::Buffer buffer;
    size_t size;
    off_t offset;
    size_t got = 0;
    BorrowedFile file = nullptr; // set while io_uring reads
};

void complete_read(ReadCall& call) {
    call.file.reset();
    if (call.got < call.size) call.owner->mark_read_to_end(); // a short read: the end of file
    call.owner->note_read(static_cast<std::uint64_t>(call.offset) + call.got);
    call.done(0, call.buffer.get(), call.got);
    if (auto* loop = io::Executor::current()) loop->buffers().give(std::move(call.buffer));
}

void fail_read(ReadCall& call, int err) {
    call.file.reset();
    call.done(err, nullptr, 0);
}

void continue_read(ReadCall call) {
    char* at = call.buffer.get() + call.got;
    size_t want = call.size - call.got;
    off_t offset = call.offset + static_cast<off_t>(call.got);
    asio::random_access_file& file = *call.file;
    file.async_read_some_at(
        offset, asio::buffer(at, want),
        [call = std::move(call)](const boost::system::error_code& ec, size_t n) mutable {
            call.got += n;
            // An error after part of the data is still an error: the kernel takes a short read
            // for end of file and would shrink its idea of the file's size.
            if (ec && ec != asio::error::eof) return fail_read(call, errno_of(ec));
            if (!ec && n > 0 && call.got < call.size) return continue_read(std::move(call));
            complete_read(call);
        });
}

} // namespace

Dir::~Dir() {
    if (dir_) ::closedir(dir_);
}

int Dir::fd() const {
    return ::dirfd(dir_);
}

LocalFs::LocalFs(InodeTable& inodes, Config config) : inodes_(inodes), config_(config) {}

LocalFs::~LocalFs() = default;

int LocalFs::node(NodeId id, Node* out) {
    out->inode = inodes_.get(id);
    if (!out->inode) {
        RFS_LOG_ERROR("kernel used unknown node id {}", id);
        return ESTALE;
    }
    out->ref = inodes_.path_fd(*out->inode);
    if (!out->ref) {
        out->inode.reset();
        return out->ref.error() ? out->ref.error() : ESTALE;
    }
    return 0;
}

// Runs `open_call` (returning a descriptor, or -1 and errno) again after the inode table let
// its descriptors go while the daemon is out of them (InodeTable::with_descriptors): what the
// table keeps must never cost an application an EMFILE.
template <class Call> int LocalFs::with_fd_retry(Call open_call) {
    int fd = -1;
    int err = inodes_.with_descriptors([&] {
        fd = open_call();
        return fd >= 0 ? 0 : errno;
    });
    if (fd < 0) errno = err;
    return fd;
}

template <class Body> void LocalFs::run_blocking(Body&& body) {
    if (executor_)
        executor_->run_blocking(std::forward<Body>(body));
    else
        body();
}

template <class Body> void LocalFs::run_copy(Body&& body) {
    if (executor_)
        executor_->run_copy(std::forward<Body>(body));
    else
        body();
}

namespace {
int stat_of(int fd, struct stat* st) {
    return ::fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}
} // namespace

// Resolves `name` in `parent` and counts a lookup on the result. Returns 0 or an errno.
int LocalFs::do_lookup(const Node& parent, const char* name, Entry* e) {
    *e = {};
    bool dotdot = std::strcmp(name, "..") == 0;
    int fd = with_fd_retry([&] {
        // Never resolve above SOURCE: the root is its own parent, as at a mount's top.
        if (dotdot && parent->id() == kRootNodeId)
            return ::openat(parent.fd(), ".", O_PATH | O_CLOEXEC);
        return ::openat(parent.fd(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    });
    if (fd < 0) return errno;
    UniqueFd owned(fd);
    if (int err = held_.stat(&e->attr, [fd](struct stat* st) { return stat_of(fd, st); }))
        return err;
    // ".." is not a name the object can be reopened by.
    auto inode = inodes_.add_lookup(std::move(owned), e->attr, parent.inode,
                                    dotdot ? std::string_view() : std::string_view(name));
    if (!dotdot) note_link_name(e->attr, parent->id(), name);
    e->id = inode->id();
    shown(&e->attr);
    e->attr_timeout = config_.timeouts.attr;
    e->entry_timeout = config_.timeouts.entry;
    return 0;
}

// The entry just made as `name` in `parent`, for the creating calls.
int LocalFs::new_entry(NodeId parent_id, const Node& parent, const char* name, Entry* out) {
    if (int err = do_lookup(parent, name, out)) return err;
    if (observer_) {
        LookupGuard guard{inodes_, out->id};
        observer_->on_created(parent_id, name, *out);
        guard.id = 0;
    }
    return 0;
}

// ---- names ------------------------------------------------------------------------------------

int LocalFs::lookup(NodeId parent, const char* name, Entry* out) {
    Node dir;
    if (int err = node(parent, &dir)) return err;
    int err = do_lookup(dir, name, out);
    if (err == 0 && observer_ && S_ISREG(out->attr.st_mode)) observer_->on_looked_up(*out);
    if (err == ENOENT && config_.timeouts.negative > 0) {
        *out = {};
        out->entry_timeout = config_.timeouts.negative;
        return 0;
    }
    return err;
}

bool LocalFs::forget(NodeId id, std::uint64_t n) {
    return inodes_.forget(id, n);
}

// ---- attributes -------------------------------------------------------------------------------

int LocalFs::getattr(NodeId id, const File* file, Attr* out) {
    if (file) {
        // fstat of an open file: its descriptor works even once the last name is gone, when an
        // inode reached by handle or name could not be reopened.
        int fd = file->fd();
        if (int err = held_.stat(
                &out->attr, [fd](struct stat* st) { return ::fstat(fd, st) == 0 ? 0 : errno; }))
            return err;
    } else {
        Node inode;
        if (int err = node(id, &inode)) return err;
        int fd = inode.fd();
        if (int err = held_.stat(&out->attr, [fd](struct stat* st) { return stat_of(fd, st); }))
            return err;
    }
    shown(&out->attr);
    out->timeout = config_.timeouts.attr;
    return 0;
}

// With allow_other, objects a user creates must belong to that user, not to the daemon. The
// daemon creates as itself (so the source's own permission checks see a privileged caller, as
// the kernel has already checked the real caller), then hands the object over. A set-group-ID
// directory keeps deciding the group, as it does natively.
void LocalFs::give_to_caller(const Caller& caller, const Node& parent, int dirfd, const char* name,
                             int fd) {
    if (caller.uid == config_.daemon_uid && caller.gid == config_.daemon_gid) return;
    struct stat pst;
    gid_t gid = caller.gid;
    if (stat_of(parent.fd(), &pst) == 0 && (pst.st_mode & S_ISGID)) gid = static_cast<gid_t>(-1);
    // The mode the source gave the object (the asked one less umask or default ACL).
    struct stat made;
    int rc = fd >= 0 ? ::fstat(fd, &made) : ::fstatat(dirfd, name, &made, AT_SYMLINK_NOFOLLOW);
    if (rc == 0)
        rc = fd >= 0 ? ::fchown(fd, caller.uid, gid)
                     : ::fchownat(dirfd, name, caller.uid, gid, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) {
        RFS_LOG_WARN("cannot give new object to uid {}: {}", caller.uid, strerror(errno));
        return;
    }
    // chown clears set-user/group-ID bits; the creator asked for them, so put them back.
    if (!S_ISLNK(made.st_mode) && (made.st_mode & (S_ISUID | S_ISGID))) {
        int back = fd >= 0 ? ::fchmod(fd, made.st_mode & 07777)
                           : ::fchmodat(dirfd, name, made.st_mode & 07777, 0);
        // The object exists and is the caller's; only the bits the caller asked for are missing,
        // which is the safe side to err on. Say so rather than pretend.
        if (back != 0)
            RFS_LOG_WARN("cannot restore the set-ID bits of a new object: {}", strerror(errno));
    }
}

// Natively a write, truncate or O_TRUNC open by a caller without CAP_FSETID clears the file's
// set-user-ID bit (and set-group-ID, see fs::setid_bits_to_clear). The daemon does these as root,
// which keeps the bits, and the kernel leaves the clearing to us on direct-I/O writes and atomic
// truncating opens; on cached writes and truncates it sends the new mode itself, and this finds
// nothing left to do. `fd` may be an O_PATH descriptor. Returns 0 or an errno.
int LocalFs::clear_setid_bits(const Caller& caller, int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return errno;
    if (!S_ISREG(st.st_mode) || !(st.st_mode & (S_ISUID | S_ISGID))) return 0;
    bool needs_groups = (st.st_mode & S_ISGID) && !(st.st_mode & S_IXGRP);
    mode_t bits = needs_groups ? setid_bits_to_clear(st, with_groups(caller))
                               : setid_bits_to_clear(st, caller);
    if (bits == 0) return 0;
    return ::fchmodat(AT_FDCWD, ProcPath(fd), st.st_mode & 07777 & ~bits, 0) == 0 ? 0 : errno;
}

int LocalFs::setattr(const Caller& caller, NodeId id, const struct stat& values, int to_set,
                     const File* file, Attr* out) {
    Node inode;
    if (int err = node(id, &inode)) return err;
    int fh = file ? file->fd() : -1;
    ProcPath path(inode.fd());

    // chown(f, -1, -1) reaches us with nothing to set, yet natively it changes ctime: the same
    // call on the source does exactly what the native one does.
    constexpr int kAnything = kSetMode | kSetUid | kSetGid | kSetSize | kSetAtime | kSetMtime |
                              kSetAtimeNow | kSetMtimeNow;
    if ((to_set & kAnything) == 0 &&
        ::fchownat(inode.fd(), "", static_cast<uid_t>(-1), static_cast<gid_t>(-1),
                   AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
        return errno;
    if (to_set & kSetMode) {
        int rc = fh >= 0               ? ::fchmod(fh, values.st_mode)
                 : inode->is_symlink() ? (errno = EOPNOTSUPP, -1)
                                       : ::chmod(path, values.st_mode);
        if (rc != 0) return errno;
    }
    if (to_set & (kSetUid | kSetGid)) {
        uid_t uid = (to_set & kSetUid) ? values.st_uid : static_cast<uid_t>(-1);
        gid_t gid = (to_set & kSetGid) ? values.st_gid : static_cast<gid_t>(-1);
        if (::fchownat(inode.fd(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
            return errno;
    }
    if (to_set & kSetSize) {
        // By path, in the Riak modes: the file must hold its data, and keep it while it changes.
        PinGuard pin{observer_, 0};
        if (fh < 0)
            if (int err = pin_for_change(id, inode.fd(), inode->is_regular(), &pin.id)) return err;
        int rc = fh >= 0 ? ::ftruncate(fh, values.st_size) : ::truncate(path, values.st_size);
        if (rc != 0) return errno;
        // The kernel asks for the set-user-ID clearing it knows of (as a mode); this adds the
        // set-group-ID case it leaves out (no group-execute, caller outside the group).
        if (!(to_set & kSetMode))
            if (int err = clear_setid_bits(caller, fh >= 0 ? fh : inode.fd())) return err;
    }
    if (to_set & (kSetAtime | kSetMtime)) {
        timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
        if (to_set & kSetAtimeNow)
            times[0].tv_nsec = UTIME_NOW;
        else if (to_set & kSetAtime)
            times[0] = values.st_atim;
        if (to_set & kSetMtimeNow)
            times[1].tv_nsec = UTIME_NOW;
        else if (to_set & kSetMtime)
            times[1] = values.st_mtim;
        auto apply = [&] {
            int rc = fh >= 0
                         ? ::futimens(fh, times)
                         : ::utimensat(inode.fd(), "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
            return rc == 0 ? 0 : errno;
        };
        // A file's own times may be put back by the observer's work (a release, a fetch back):
        // it decides when a user's times are set, so that they are not lost.
        int err = observer_ && inode->is_regular()
                      ? observer_->set_times(id, inode->src(), times, apply)
                      : apply();
        if (err) return err;
    }
    if (observer_) observer_->on_attr_changed(id, to_set);
    int fd = inode.fd();
    if (int err = held_.stat(&out->attr, [fd](struct stat* st) { return stat_of(fd, st); }))
        return err;
    shown(&out->attr);
    out->timeout = config_.timeouts.attr;
    return 0;
}

int LocalFs::pin_for_change(NodeId id, int path_fd, bool regular, NodeId* pinned) {
    if (!observer_ || !regular) return 0;
    UniqueFd probe(with_fd_retry(
        [&] { return ::open(ProcPath(path_fd), O_RDONLY | O_NONBLOCK | O_CLOEXEC); }));
    if (!probe) return errno;
    OpenPlan plan = observer_->on_open(id, O_WRONLY, probe.get());
    if (plan.pinned) *pinned = id;
    return plan.err;
}

int LocalFs::readlink(NodeId id, char* buf, size_t size) {
    Node inode;
    if (int err = node(id, &inode)) return err;
    ssize_t n = ::readlinkat(inode.fd(), "", buf, size);
    if (n < 0) return errno;
    if (static_cast<size_t>(n) >= size) return ENAMETOOLONG;
    buf[n] = '\0';
    return 0;
}

// ---- creating and removing names ------------------------------------------------------------

// The mode to create with. With DONT_MASK the kernel sends the mode without the caller's umask:
// a parent's default ACL then decides (the source applies it, as natively), and without one the
// umask applies as usual. Our own process umask is 0.
mode_t LocalFs::creation_mode(const Caller& caller, const Node& dir, mode_t mode) {
    if (!apply_umask_) return mode;
    if (::getxattr(ProcPath(dir.fd()), "system.posix_acl_default", nullptr, 0) > 0) return mode;
    return mode & ~caller.umask;
}

int LocalFs::mknod(const Caller& caller, NodeId parent, const char* name, mode_t mode, dev_t rdev,
                   Entry* out) {
    Node dir;
    if (int err = node(parent, &dir)) return err;
    mode = creation_mode(caller, dir, mode);
    if (::mknodat(dir.fd(), name, mode, rdev) != 0) return errno;
    give_to_caller(caller, dir, dir.fd(), name, -1);
    return new_entry(parent, dir, name, out);
}

int LocalFs::mkdir(const Caller& caller, NodeId parent, const char* name, mode_t mode, Entry* out) {
    Node dir;
    if (int err = node(parent, &dir)) return err;
    mode = creation_mode(caller, dir, mode);
    if (::mkdirat(dir.fd(), name, mode) != 0) return errno;
    give_to_caller(caller, dir, dir.fd(), name, -1);
    return new_entry(parent, dir, name, out);
}

int LocalFs::symlink(const Caller& caller, const char* target, NodeId parent, const char* name,
                     Entry* out) {
    Node dir;
    if (int err = node(parent, &dir)) return err;
    if (::symlinkat(target, dir.fd(), name) != 0) return errno;
    give_to_caller(caller, dir, dir.fd(), name, -1);
    return new_entry(parent, dir, name, out);
}

int LocalFs::link(NodeId id, NodeId newparent, const char* newname, Entry* out) {
    Node inode, dir;
    if (int err = node(id, &inode)) return err;
    if (int err = node(newparent, &dir)) return err;
    // In the Riak modes a released file gets its data back first (a second name must not share
    // a placeholder whose copy lives under the first name's key), and keeps it while it is
    // linked.
    PinGuard pin{observer_, 0};
    if (int err = pin_for_change(id, inode.fd(), inode->is_regular(), &pin.id)) return err;
    // AT_EMPTY_PATH links the object itself (needs CAP_DAC_READ_SEARCH); the /proc form works
    // for unprivileged daemons too.
    if (::linkat(inode.fd(), "", dir.fd(), newname, AT_EMPTY_PATH) != 0) {
        if (errno != ENOENT && errno != EPERM) return errno;
        if (::linkat(AT_FDCWD, ProcPath(inode.fd()), dir.fd(), newname, AT_SYMLINK_FOLLOW) != 0)
            return errno;
    }
    if (int err = do_lookup(dir, newname, out)) return err;
    if (observer_) {
        LookupGuard guard{inodes_, out->id};
        observer_->on_linked(id, newparent, newname);
        guard.id = 0;
    }
    return 0;
}

std::string LocalFs::other_names_handle(int dir_fd, const char* name, const struct stat* moving) {
    if (!observer_) return "";
    struct stat st;
    if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode) ||
        st.st_nlink < 2)
        return "";
    // A rename onto another name of the same file removes nothing.
    if (moving && moving->st_dev == st.st_dev && moving->st_ino == st.st_ino) return "";
    // A handle, not a descriptor: one held would keep the removed name's dentry alive, and
    // the kernel could answer the handle with that name, "(deleted)".
    return handle_of(dir_fd, name, 0);
}

void LocalFs::notify_other_name(const std::string& handle) {
    if (handle.empty()) return;
    FdRef root = inodes_.path_fd(*inodes_.root());
    if (!root) return;
    UniqueFd fd = open_handle(root.get(), handle);
    std::string path;
    if (fd && relative_path_of(fd.get(), &path) == 0 && !path.empty())
        observer_->on_other_name_changed(path);
}

int LocalFs::unlink(NodeId parent, const char* name) {
    return remove_entry(parent, name, false);
}

int LocalFs::rmdir(NodeId parent, const char* name) {
    return remove_entry(parent, name, true);
}

int LocalFs::remove_entry(NodeId parent, const char* name, bool dir) {
    Node in;
    if (int err = node(parent, &in)) return err;
    const int flags = dir ? AT_REMOVEDIR : 0;
    if (!observer_) return ::unlinkat(in.fd(), name, flags) == 0 ? 0 : errno;
    // A file that keeps other names: their link count drops (no directory has any).
    std::string other = dir ? std::string() : other_names_handle(in.fd(), name);
    NotedChange change = observer_->before_unlink(parent, in.fd(), name, dir);
    if (::unlinkat(in.fd(), name, flags) != 0) {
        int err = errno;
        observer_->change_not_made(change);
        return err;
    }
    observer_->on_unlinked(parent, name, dir, change);
    notify_other_name(other);
    return 0;
}

int LocalFs::rename(NodeId parent, const char* name, NodeId newparent, const char* newname,
                    unsigned flags) {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return EINVAL;
    Node from, to;
    if (int err = node(parent, &from)) return err;
    if (int err = node(newparent, &to)) return err;
    // An inode reached by name must follow its object (and with EXCHANGE, the other one too),
    // so the table must know which objects move. One that cannot be stat'ed is not renamed: the
    // application gets the errno (ENOENT, as renameat2 would give, for a name that is not there),
    // and nothing moves. Renamed anyway, an inode reached by its old name would be reopened by a
    // name that is gone, and fail (ESTALE) while its object lives on under the new one.
    struct stat moving = {};
    struct stat other = {};
    bool track = inodes_.tracks_names();
    if (track) {
        if (::fstatat(from.fd(), name, &moving, AT_SYMLINK_NOFOLLOW) != 0) return errno;
        if ((flags & RENAME_EXCHANGE) &&
            ::fstatat(to.fd(), newname, &other, AT_SYMLINK_NOFOLLOW) != 0)
            return errno;
    }
    // A file replaced by the rename that keeps other names: their link count drops. (Without
    // `moving`, a rename onto another name of the same file, which removes nothing, is told too.)
    std::string replaced;
    if (!(flags & (RENAME_EXCHANGE | RENAME_NOREPLACE)))
        replaced = other_names_handle(to.fd(), newname, track ? &moving : nullptr);
    auto rename_now = [&] {
        return ::renameat2(from.fd(), name, to.fd(), newname, flags) == 0 ? 0 : errno;
    };
    NotedChange change;
    if (observer_)
        change =
            observer_->before_rename(parent, from.fd(), name, newparent, to.fd(), newname, flags);
    if (int err = observer_ && (flags & RENAME_EXCHANGE)
                      ? observer_->exchange(parent, from.fd(), name, newparent, to.fd(), newname,
                                            rename_now)
                      : rename_now()) {
        if (observer_) observer_->change_not_made(change);
        return err;
    }
    if (track) {
        inodes_.moved({moving.st_dev, moving.st_ino}, to.inode, newname);
        if (flags & RENAME_EXCHANGE) inodes_.moved({other.st_dev, other.st_ino}, from.inode, name);
    }
    if (observer_) {
        struct stat st;
        if (::fstatat(to.fd(), newname, &st, AT_SYMLINK_NOFOLLOW) == 0)
            note_link_name(st, newparent, newname, true);
        if ((flags & RENAME_EXCHANGE) && ::fstatat(from.fd(), name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            note_link_name(st, parent, name, true);
        observer_->on_renamed(parent, name, newparent, newname, flags, change);
        notify_other_name(replaced);
    }
    return 0;
}

// ---- files ------------------------------------------------------------------------------------

void LocalFs::make_open_result(UniqueFd fd, NodeId node, int app_flags, dev_t dev,
                               OpenResult* out) {
    // Kernel-held locks need no FLUSH round trip, a read-only open has nothing to flush, and a
    // local file system's close() has nothing to report (ClosePolicy).
    bool close_may_block = close_policy_.needs_flush(dev, fd.get());
    bool noflush = (app_flags & O_ACCMODE) == O_RDONLY || !close_may_block;
    auto file = std::make_unique<File>(std::move(fd), node);
    file->close_may_block_ = close_may_block;
    if (app_flags & O_TRUNC) file->mark_written(); // its content is new, if empty
    // Registered before the result is delivered: its RELEASE may reach another loop right after.
    handles_.add(file.get());
    out->file = file.release();
    out->keep_cache = config_.timeouts.keep_cache;
    // An O_DIRECT open already bypasses the kernel's cache; direct_io would also forbid mmap.
    out->direct_io = config_.timeouts.direct_io;
    out->noflush = noflush;
}

// With the writeback cache a write of part of a page makes the kernel read the page first, with
// the handle of the write: a write-only open must be able to read (libfuse's passthrough_hp does
// the same). The daemon's own credentials decide, not the caller's: the caller's access was
// checked for what it asked. A daemon that may not read the file keeps the write-only
// descriptor (partial-page writes to it then fail with EBADF where they need a read).
int LocalFs::readable_if_writeback(int flags) const {
    if (!writeback_cache_ || (flags & O_ACCMODE) != O_WRONLY) return flags;
    return (flags & ~O_ACCMODE) | O_RDWR;
}

int LocalFs::open(const Caller& caller, NodeId id, int flags, OpenResult* out) {
    Node inode;
    if (int err = node(id, &inode)) return err;
    // With an observer (the Riak modes) an O_TRUNC open for writing cuts the file only once the
    // observer has looked at it: a released placeholder must keep its size until its data is
    // back (a copy in flight would take a cut placeholder for one changed beside the mount).
    const bool trunc_after =
        observer_ && inode->is_regular() && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY;
    const int opened = trunc_after ? flags & ~O_TRUNC : flags;
    int backing = readable_if_writeback(opened);
    UniqueFd fd(with_fd_retry([&] { return ::open(ProcPath(inode.fd()), reopen_flags(backing)); }));
    if (!fd && errno == EACCES && backing != opened)
        fd = UniqueFd(
            with_fd_retry([&] { return ::open(ProcPath(inode.fd()), reopen_flags(opened)); }));
    if (!fd) return errno;
    OpenPlan plan;
    if (observer_ && inode->is_regular()) {
        plan = observer_->on_open(id, flags, fd.get());
        if (!plan.err && trunc_after && ::ftruncate(fd.get(), 0) != 0) plan.err = errno;
        if (plan.err) {
            if (plan.pinned) observer_->on_unpinned(id);
            return plan.err;
        }
        if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) plan.remote.reset();
    }
    if (flags & O_TRUNC)
        if (int err = clear_setid_bits(caller, fd.get())) {
            if (plan.pinned) observer_->on_unpinned(id);
            return err;
        }
    // Not for a file whose reads Riak serves: its local data (if any) is not read.
    if (!plan.remote && starts_with_read(*inode, flags))
        ::posix_fadvise(fd.get(), 0, kOpenReadahead, POSIX_FADV_WILLNEED);
    PinGuard pin{observer_, plan.pinned ? id : 0};
    make_open_result(std::move(fd), id, flags, inode->src().dev, out);
    pin.id = 0;                                  // the handle holds it now
    out->file->remote_ = std::move(plan.remote); // not yet shared: the kernel has not got it
    out->file->pinned_ = plan.pinned;
    return 0;
}

void LocalFs::fetch_data(NodeId id, Callback<void(int err)> done) {
    Node inode;
    if (int err = node(id, &inode)) return done(err);
    if (!observer_) return done(0);
    UniqueFd fd(with_fd_retry([&] { return ::open(ProcPath(inode.fd()), O_RDWR | O_CLOEXEC); }));
    if (!fd) return done(errno);
    observer_->fetch_data(id, std::move(fd), std::move(done));
}

// CREATE met an object that was made beside the mount after the kernel last looked (it sends
// CREATE only for names it believes absent, so it checked nothing on this object). A regular file
// is opened with the caller's own credentials, so the source decides access exactly as open(2)
// would (modes, ACLs, O_TRUNC's write permission); anything else is refused, since the kernel
// takes only a regular file from CREATE and a FIFO's open would wait for a writer on this loop.
// Returns 0 or an errno (EEXIST: not a regular file).
int LocalFs::open_existing_for_caller(const Caller& caller, const Node& dir, const char* name,
                                      int flags, UniqueFd* out) {
    struct stat st;
    if (::fstatat(dir.fd(), name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
    if (S_ISDIR(st.st_mode)) return EISDIR;
    if (!S_ISREG(st.st_mode)) return EEXIST;
    // O_NONBLOCK: a FIFO swapped in since the check opens without waiting and is refused below.
    flags |= O_NONBLOCK;
    int fd;
    if (caller.uid == config_.daemon_uid && caller.gid == config_.daemon_gid) {
        fd = with_fd_retry([&] { return ::openat(dir.fd(), name, flags); });
    } else {
        ScopedFsCredentials as_caller(with_groups(caller));
        if (!as_caller.ok()) return EACCES;
        fd = with_fd_retry([&] { return ::openat(dir.fd(), name, flags); });
    }
    if (fd < 0) return errno;
    UniqueFd owned(fd);
    if (::fstat(fd, &st) != 0) return errno;
    if (!S_ISREG(st.st_mode)) return EEXIST;
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) return errno;
    if (flags & O_TRUNC)
        if (int err = clear_setid_bits(caller, fd)) return err;
    *out = std::move(owned);
    return 0;
}

int LocalFs::create(const Caller& caller, NodeId parent, const char* name, mode_t mode, int flags,
                    Entry* entry, OpenResult* out) {
    Node dir;
    if (int err = node(parent, &dir)) return err;
    mode = creation_mode(caller, dir, mode);
    // Always exclusive first: the kernel sends CREATE for a name it believes absent, but it may
    // have been created beside the mount since. Only a file we made is handed to the caller; an
    // existing one is opened for the caller as open(2) would (EEXIST if it asked for O_EXCL).
    int oflags = reopen_flags(flags) | O_NOFOLLOW;
    bool created = true;
    // A file we make is ours to open read-write whatever its mode (readable_if_writeback).
    UniqueFd fd(with_fd_retry([&] {
        return ::openat(dir.fd(), name, readable_if_writeback(oflags) | O_CREAT | O_EXCL, mode);
    }));
    if (!fd) {
        if (errno != EEXIST || (flags & O_EXCL)) return errno;
        created = false;
        int err = open_existing_for_caller(caller, dir, name, oflags, &fd);
        if (err == EEXIST || err == EISDIR) {
            // The kernel must forget that it took the name for absent, or every retry would be
            // sent as CREATE again.
            if (notifier_) notifier_->forget_negative_entry(parent, name);
            return err;
        }
        if (err) return err;
        // Opened with the caller's access; made readable again with ours, as open() does.
        if (int backing = readable_if_writeback(oflags); backing != oflags) {
            UniqueFd rw(with_fd_retry(
                [&] { return ::open(ProcPath(fd.get()), backing & ~(O_TRUNC | O_NOFOLLOW)); }));
            if (rw) fd = std::move(rw);
        }
    }
    if (created) give_to_caller(caller, dir, -1, nullptr, fd.get());
    if (int err = do_lookup(dir, name, entry)) return err;
    LookupGuard guard{inodes_, entry->id};
    OpenPlan plan;
    if (observer_) {
        if (created) {
            observer_->on_created(parent, name, *entry);
            Node made;
            if (int err = node(entry->id, &made)) return err;
            struct stat st = entry->attr; // as SOURCE has it, not as shown to the kernel
            st.st_dev = made->src().dev;
            st.st_ino = made->src().ino;
            plan = observer_->on_created_open(entry->id, flags, fd.get(), st);
        } else {
            plan = observer_->on_open(entry->id, flags, fd.get());
        }
        if (plan.err) {
            if (plan.pinned) observer_->on_unpinned(entry->id);
            // An existing file made beside the mount whose data is elsewhere: CREATE cannot be
            // sent again once the data is back, so the application gets an error.
            return plan.err == kNeedsData ? EIO : plan.err;
        }
    }
    PinGuard pin{observer_, plan.pinned ? entry->id : 0};
    make_open_result(std::move(fd), entry->id, flags, entry->attr.st_dev, out);
    pin.id = 0;
    out->file->pinned_ = plan.pinned;
    if (created) out->file->mark_written(); // a new file, even if nothing is written to it
    guard.id = 0;
    return 0;
}

int LocalFs::relative_path(NodeId id, std::string* out) {
    Node inode;
    if (int err = node(id, &inode)) return err;
    return relative_path_of(inode.fd(), out);
}

int LocalFs::relative_path_of(int fd, std::string* out) {
    std::string path = path_of(fd);
    if (path.empty()) return ESTALE;
    struct stat st;
    if (::fstat(fd, &st) != 0) return errno;
    if (st.st_nlink == 0 && !S_ISDIR(st.st_mode)) return ENOENT; // "... (deleted)"
    constexpr std::string_view kDeleted = " (deleted)";
    FdRef root;
    if (!S_ISDIR(st.st_mode) && path.size() > kDeleted.size() &&
        path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
        // The name this inode was found by is gone, but the file has others (hard links): the
        // kernel names it by one of them when it is opened by handle.
        root = inodes_.path_fd(*inodes_.root());
        if (!root) return root.error() ? root.error() : ESTALE;
        path = other_name(root.get(), fd);
        // The kernel may answer with the removed name again (link_names.hpp): one of the names
        // the file was last reached by, then.
        if (path.empty()) return relative_path_by_link_names(st, out);
    }
    // SOURCE's own path comes from /proc too, but it changes only when SOURCE or a directory
    // above it is moved: the last answer is kept (a readlink less per call, and observers call
    // this several times per file), and /proc is asked again when `path` is not beneath it.
    // What that leaves: after such a move, a node moved out of SOURCE into a new directory made
    // at SOURCE's old path is taken for the same path in SOURCE; callers resolve paths beneath
    // SOURCE's descriptor and check what they find there, as for any path that changed since.
    std::string root_path;
    {
        std::lock_guard lock(root_path_mu_);
        root_path = root_path_;
    }
    if (!root_path.empty() && path_beneath(root_path, path, out)) return 0;
    if (!root) root = inodes_.path_fd(*inodes_.root());
    if (!root) return root.error() ? root.error() : ESTALE;
    root_path = path_of(root.get());
    if (root_path.empty()) return ESTALE;
    {
        std::lock_guard lock(root_path_mu_);
        root_path_ = root_path;
    }
    return path_beneath(root_path, path, out) ? 0 : ESTALE;
}

int LocalFs::relative_path_by_link_names(const struct stat& st, std::string* out) {
    for (const auto& [parent, name] : link_names_.names_of({st.st_dev, st.st_ino})) {
        Node dir;
        struct stat now;
        std::string dir_path;
        if (node(parent, &dir) != 0 ||
            ::fstatat(dir.fd(), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 ||
            now.st_dev != st.st_dev || now.st_ino != st.st_ino ||
            relative_path_of(dir.fd(), &dir_path) != 0)
            continue;
        *out = dir_path.empty() ? name : dir_path + "/" + name;
        return 0;
    }
    return ENOENT;
}

void LocalFs::note_link_name(const struct stat& st, NodeId parent, std::string_view name,
                             bool renamed) {
    if (!observer_ || S_ISDIR(st.st_mode)) return;
    if (st.st_nlink > 1)
        link_names_.seen({st.st_dev, st.st_ino}, parent, name);
    else if (renamed)
        link_names_.moved({st.st_dev, st.st_ino}, parent, name);
}

void LocalFs::release(File* file, Done done) {
    if (!file->close_may_block_) {
        close_released(file);
        return done(0);
    }
    // The file stays registered until it is closed: if the pool never runs this (a daemon
    // stopping on an error), close_all_handles() still closes it.
    run_blocking([this, file, done = std::move(done)]() mutable {
        close_released(file);
        done(0);
    });
}

void LocalFs::close_released(File* file) {
    NodeId node = file->node();
    bool written = file->written();
    bool read_to_end = file->read_to_end();
    if (observer_ && !written && !read_to_end && file->read_end() > 0) {
        struct stat st; // only for observers: passthrough pays nothing at release
        read_to_end = ::fstat(file->fd(), &st) == 0 &&
                      file->read_end() >= static_cast<std::uint64_t>(st.st_size);
    }
    bool quiet = file->remote_ && !written && file->remote_->close_needs_nothing(*file);
    if (file->pinned_ && observer_) observer_->on_unpinned(node);
    handles_.close(file);
    if (observer_ && !quiet) observer_->on_released(node, written, read_to_end);
}

void LocalFs::discard(File* file) {
    if (file->pinned_ && observer_) observer_->on_unpinned(file->node());
    handles_.close(file);
}

// Reads first try the page cache without blocking (RWF_NOWAIT): a hit completes in place, with
// no submission round trip. Only what must come from the disk goes through io_uring.
void LocalFs::read(File& file, size_t size, off_t offset, ReadDone done) {
    size = std::min(size, io::BufferPool::kBufferSize);
    if (file.remote_) [[unlikely]] // served elsewhere (mode=migrate); a null check otherwise
        if (file.remote_->read(file, size, offset, done)) return;
    io::Loop* loop = io::Executor::current();
    if (!loop) {
        // No event loop (unit tests): a plain blocking read.
        std::vector<char> buf(size);
        size_t got = 0;
        while (got < size) {
            ssize_t n = ::pread(file.fd(), buf.data() + got, size - got, offset + off_t(got));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return done(errno, nullptr, 0);
            if (n == 0) break;
            got += static_cast<size_t>(n);
        }
        if (got < size) file.mark_read_to_end();
        file.note_read(static_cast<std::uint64_t>(offset) + got);
        return done(0, buf.data(), got);
    }
    ReadCall call{&file, std::move(done), loop->buffers().take(), size, offset};
    while (call.got < size) {
        iovec iov{call.buffer.get() + call.got, size - call.got};
        ssize_t n =
            ::preadv2(file.fd(), &iov, 1, offset + static_cast<off_t>(call.got), RWF_NOWAIT);
        if (n > 0) {
            call.got += static_cast<size_t>(n);
            continue;
        }
        if (n == 0) return complete_read(call); // end of file
        if (errno == EAGAIN || errno == EOPNOTSUPP) break;
        return fail_read(call, errno); // even after part of the data: see continue_read
    }
    if (call.got == size) return complete_read(call);
    call.file.reset(new asio::random_access_file(loop->context(), file.fd()));
    continue_read(std::move(call));
}

// Writes are copied into the page cache in place. Measured on ext4: an io_uring buffered write
// cannot complete without blocking there, so io_uring hands it to a kernel worker thread, and a
// 4 KiB write took 127 us that way against 30 us in place (bench/ has the workloads).
int LocalFs::write(const Caller* caller, File& file, const char* data, size_t size, off_t offset,
                   size_t* written) {
    int fd = file.fd();
    if (caller)
        if (int err = clear_setid_bits(*caller, fd)) return err;
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::pwrite(fd, data + done, size - done, offset + static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            if (done > 0) break;
            return errno;
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    if (done > 0) file.mark_written();
    *written = done;
    return 0;
}

// Each close() of a written file. Closing a duplicate of our descriptor lets the source report
// what close() reports natively (NFS and other write-back sources surface write errors there)
// while our open file stays open. Read-only opens, and files on local file systems, skip this
// round trip (noflush, see ClosePolicy).
void LocalFs::flush(File& file, Done done) {
    int copy = with_fd_retry([&] { return ::fcntl(file.fd(), F_DUPFD_CLOEXEC, 0); });
    if (copy < 0) return done(errno);
    UniqueFd owned(copy); // closed even if the body never runs
    run_blocking([owned = std::move(owned), done = std::move(done)]() mutable {
        done(::close(owned.release()) == 0 ? 0 : errno);
    });
}

void LocalFs::fsync(File& file, bool datasync, Done done) {
    int fd = file.fd();
    run_blocking([fd, datasync, done = std::move(done)]() mutable {
        int rc = datasync ? ::fdatasync(fd) : ::fsync(fd);
        done(rc == 0 ? 0 : errno);
    });
}

void LocalFs::fallocate(File& file, int mode, off_t offset, off_t length, Done done) {
    File* target = &file; // held by the kernel until `done` is called
    run_blocking([target, mode, offset, length, done = std::move(done)]() mutable {
        if (::fallocate(target->fd(), mode, offset, length) != 0) return done(errno);
        target->mark_written();
        done(0);
    });
}

size_t clamp_copy_length(size_t len) {
    return std::min<size_t>(len, kMaxCopyLength);
}

void LocalFs::copy_file_range(File& in_file, off_t off_in, File& out_file, off_t off_out,
                              size_t len, int flags, CountDone done) {
    // A source served elsewhere may be a placeholder: the kernel copies through READs instead.
    if (in_file.remote_) return done(EOPNOTSUPP, 0);
    len = clamp_copy_length(len);
    int in = in_file.fd();
    int out = out_file.fd();
    File* target = &out_file; // held by the kernel until `done` is called
    run_copy([=, done = std::move(done)]() mutable {
        loff_t src = off_in, dst = off_out;
        ssize_t n = ::copy_file_range(in, &src, out, &dst, len, flags);
        if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL))
            n = copy_by_hand(in, off_in, out, off_out, len);
        else if (n < 0)
            n = -errno;
        if (n < 0) return done(static_cast<int>(-n), 0);
        if (n > 0) target->mark_written();
        done(0, static_cast<size_t>(n));
    });
}

int LocalFs::lseek(File& file, off_t offset, int whence, off_t* out) {
    if (file.remote_ && (whence == SEEK_DATA || whence == SEEK_HOLE)) {
        // Served elsewhere: the local file may be a placeholder made of holes. Answer as for a
        // file without holes, which is always true to its content.
        struct stat st;
        if (::fstat(file.fd(), &st) != 0) return errno;
        if (offset < 0 || offset >= st.st_size) return ENXIO;
        *out = whence == SEEK_DATA ? offset : st.st_size;
        return 0;
    }
    off_t res = ::lseek(file.fd(), offset, whence);
    if (res < 0) return errno;
    *out = res;
    return 0;
}

// ---- directories ------------------------------------------------------------------------------

int LocalFs::opendir(NodeId id, OpenDirResult* out) {
    Node inode;
    if (int err = node(id, &inode)) return err;
    UniqueFd fd(with_fd_retry(
        [&] { return ::openat(inode.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); }));
    if (!fd) return errno;
    auto d = std::make_unique<Dir>(id);
    d->dir_ = ::fdopendir(fd.get());
    if (!d->dir_) return errno;
    fd.release(); // the stream owns it now
    // Registered before the result is delivered: its RELEASEDIR may reach another loop right
    // after.
    handles_.add(d.get());
    out->dir = d.release();
    out->keep_cache = config_.timeouts.attr >= 86400;
    out->cache_readdir = config_.timeouts.attr >= 86400;
    return 0;
}

// Offsets are the directory stream's own positions (telldir cookies), which stay valid while
// entries are added and removed.
int LocalFs::readdir(Dir& d, off_t offset, bool plus, DirSink& sink) {
    Node inode;
    if (int err = node(d.node(), &inode)) return err;
    // Held across the entries' lookups (openat, fstatat) on purpose: it only ever waits for
    // another READDIR of the same open directory, and the kernel sends none while one is in
    // flight (fuse_readdir holds the open file's readdir lock for the whole request), so no other
    // request, and no other loop, can wait for it. It keeps the stream's position and its pending
    // entry consistent should two ever come at once.
    std::lock_guard lock(d.mu_);
    if (offset != d.offset_) {
        ::seekdir(d.dir_, offset);
        d.pending_ = nullptr;
        d.offset_ = offset;
    }
    while (true) {
        if (!d.pending_) {
            errno = 0;
            d.pending_ = ::readdir(d.dir_);
            if (!d.pending_) return errno;
        }
        const dirent& ent = *d.pending_;
        off_t next = ent.d_off;
        if (plus) {
            Entry e;
            if (is_dot_or_dotdot(ent.d_name)) {
                // The kernel makes no dentries for these; it needs only their type.
                e.attr.st_ino = inodes_.st_ino(inode->src().dev, ent.d_ino);
                e.attr.st_mode = DTTOIF(ent.d_type);
            } else if (int err = do_lookup(inode, ent.d_name, &e)) {
                if (err == ENOENT) { // removed since it was listed
                    d.pending_ = nullptr;
                    d.offset_ = next;
                    continue;
                }
                return err;
            }
            if (!sink.add_plus(ent.d_name, e, next)) {
                if (e.id) inodes_.unlookup(e.id); // it did not fit: the kernel never saw it
                return 0;
            }
        } else {
            struct stat st {};
            // A mount point's entry shows the covered directory's number, as it does natively.
            st.st_ino = inodes_.st_ino(inode->src().dev, ent.d_ino);
            st.st_mode = DTTOIF(ent.d_type);
            if (!sink.add(ent.d_name, st, next)) return 0;
        }
        d.pending_ = nullptr;
        d.offset_ = next;
    }
}

void LocalFs::releasedir(Dir* dir) {
    handles_.close(dir);
}

void LocalFs::discard(Dir* dir) {
    handles_.close(dir);
}

void LocalFs::fsyncdir(Dir& dir, bool datasync, Done done) {
    int fd = dir.fd();
    run_blocking([this, fd, datasync, done = std::move(done)]() mutable {
        if ((datasync ? ::fdatasync(fd) : ::fsync(fd)) != 0) return done(errno);
        if (observer_) observer_->on_dir_synced();
        done(0);
    });
}

int LocalFs::statfs(NodeId id, struct statvfs* out) {
    Node inode;
    if (int err = node(id, &inode)) return err;
    return ::fstatvfs(inode.fd(), out) == 0 ? 0 : errno;
}

// Reached only without default_permissions, i.e. when no other user can use the mount (see
// main.cpp): the caller then has the daemon's own user, so the source's answer to the daemon is
// the answer the caller would get natively (root included: X_OK still needs an execute bit).
int LocalFs::access(NodeId id, int mask) {
    Node inode;
    if (int err = node(id, &inode)) return err;
    return ::faccessat(inode.fd(), "", mask, AT_EMPTY_PATH | AT_EACCESS) == 0 ? 0 : errno;
}

// ---- extended attributes ----------------------------------------------------------------------
// Reached through /proc/self/fd, which resolves to the object itself. A symlink would be followed
// that way, so its own attributes (trusted.*, security.*; Linux itself refuses user.* there) go
// through l*xattr on the link's name inside its parent directory. The *xattrat calls of Linux
// 6.13 cannot help: with AT_EMPTY_PATH they refuse O_PATH descriptors (EBADF, checked on 6.18),
// and a symlink cannot be opened any other way.

// Runs `call` (an l*xattr call) with a path naming the symlink `link` relative to its parent
// directory's descriptor: "/proc/self/fd/<parent>/<name>".
template <class Call> ssize_t LocalFs::on_symlink(const Node& link, Call call) {
    FdRef root = inodes_.path_fd(*inodes_.root());
    std::string name;
    UniqueFd parent = parent_of_symlink(root.get(), *link, link.fd(), &name);
    if (!parent) return -1;
    std::string path = std::string(ProcPath(parent.get())) + "/" + name;
    return call(path.c_str());
}

int LocalFs::setxattr(NodeId id, const char* name, const char* value, size_t size, int flags) {
    if (config_.hidden_xattr && config_.hidden_xattr(name)) return EPERM;
    Node inode;
    if (int err = node(id, &inode)) return err;
    int rc =
        inode->is_symlink()
            ? static_cast<int>(on_symlink(
                  inode,
                  [&](const char* path) { return ::lsetxattr(path, name, value, size, flags); }))
            : ::setxattr(ProcPath(inode.fd()), name, value, size, flags);
    if (rc != 0) return errno;
    if (observer_) observer_->on_attr_changed(id, 0);
    return 0;
}

// getxattr and listxattr share one protocol: size 0 asks for the size needed, otherwise the
// caller's buffer size bounds the value (ERANGE from the call itself when it is too small).
int LocalFs::getxattr(NodeId id, const char* name, char* buf, size_t size, size_t* len) {
    if (config_.hidden_xattr && config_.hidden_xattr(name)) return ENODATA;
    Node inode;
    if (int err = node(id, &inode)) return err;
    ssize_t n =
        inode->is_symlink()
            ? on_symlink(inode,
                         [&](const char* path) { return ::lgetxattr(path, name, buf, size); })
            : ::getxattr(ProcPath(inode.fd()), name, buf, size);
    if (n < 0) return errno;
    *len = static_cast<size_t>(n);
    return 0;
}

// Natively the file system shows trusted.* names only to callers with CAP_SYS_ADMIN, and the
// daemon has it: the whole list is read and filtered for the caller, and sizes are those of the
// filtered list.
int LocalFs::listxattr(const Caller& caller, NodeId id, size_t size, std::vector<char>* names,
                       size_t* len) {
    Node inode;
    if (int err = node(id, &inode)) return err;
    ProcPath path(inode.fd());
    auto list_call = [&](char* buf, size_t n) -> ssize_t {
        if (!inode->is_symlink()) return ::listxattr(path, buf, n);
        return on_symlink(inode, [&](const char* p) { return ::llistxattr(p, buf, n); });
    };
    ssize_t n;
    do { // the list may grow between the size query and the read
        n = list_call(nullptr, 0);
        if (n < 0) return errno;
        names->resize(static_cast<size_t>(n) + 256);
        n = names->empty() ? 0 : list_call(names->data(), names->size());
    } while (n < 0 && errno == ERANGE);
    if (n < 0) return errno;
    size_t kept =
        filter_xattr_names(names->data(), static_cast<size_t>(n), caller, config_.hidden_xattr);
    if (size != 0 && kept > size) return ERANGE;
    *len = kept;
    return 0;
}

int LocalFs::removexattr(NodeId id, const char* name) {
    if (config_.hidden_xattr && config_.hidden_xattr(name)) return EPERM;
    Node inode;
    if (int err = node(id, &inode)) return err;
    int rc = inode->is_symlink()
                 ? static_cast<int>(on_symlink(
                       inode, [&](const char* path) { return ::lremovexattr(path, name); }))
                 : ::removexattr(ProcPath(inode.fd()), name);
    if (rc != 0) return errno;
    if (observer_) observer_->on_attr_changed(id, 0);
    return 0;
}

void LocalFs::source_changing(dev_t dev, ino_t ino, const timespec& mtime) {
    held_.begin(SrcId{dev, ino}, mtime);
}

int LocalFs::lstat_as_shown(int dir_fd, const char* name, struct stat* st) {
    return held_.stat(st, [dir_fd, name](struct stat* out) {
        return ::fstatat(dir_fd, name, out, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
    });
}

void LocalFs::source_changed(dev_t dev, ino_t ino) {
    // The hold ends first: the kernel, told next, asks again and must get SOURCE's own times.
    held_.end(SrcId{dev, ino});
    if (!notifier_) return;
    if (NodeId node = inodes_.find(SrcId{dev, ino}); node != 0) notifier_->attributes_changed(node);
}

} // namespace rfs::fs
