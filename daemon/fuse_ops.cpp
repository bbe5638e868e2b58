// The passthrough overlay's FUSE handlers. Event-loop threads, except the bodies handed to the
// executor's blocking pool, which reply from that pool.
//
// Every access to SOURCE is relative to an inode's O_PATH descriptor: names are resolved one
// component at a time with O_NOFOLLOW, and objects are reopened through /proc/self/fd, which
// names the object itself rather than a path, so no symlink is ever followed out of the tree.
// Metadata calls are short local syscalls made in place; file data moves through io_uring on the
// calling loop; calls that can block for long (fsync, fallocate, copy_file_range) go to the
// blocking pool. Each request is answered exactly once.
#include "daemon/fuse_ops.hpp"

#include "daemon/fuse_channel.hpp"
#include "lib/common/log.hpp"
#include "lib/fs/caller.hpp"

#include <boost/asio/random_access_file.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace rfs {
namespace {

using fs::Inode;
using fs::NodeId;
using fs::SrcId;
namespace asio = boost::asio;

Overlay& overlay(fuse_req_t req) {
    return *static_cast<Overlay*>(fuse_req_userdata(req));
}

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

// An open regular file: the descriptor, registered so that shutdown can close it.
class OpenFile : public OpenHandles::Entry {
public:
    explicit OpenFile(int fd) : fd_(fd) {}
    int fd() const { return fd_.get(); }

private:
    UniqueFd fd_;
};

OpenFile* open_file(fuse_file_info* fi) {
    return reinterpret_cast<OpenFile*>(fi->fh);
}

struct OpenDir : OpenHandles::Entry {
    std::mutex mu;
    DIR* dir = nullptr;
    off_t offset = 0;
    dirent* pending = nullptr; // read but not yet sent: it did not fit the last reply
    ~OpenDir() override {
        if (dir) ::closedir(dir);
    }
};

OpenDir* open_dir(fuse_file_info* fi) {
    return reinterpret_cast<OpenDir*>(fi->fh);
}

// An inode in use by one request, with a descriptor of its object held for the request's length.
struct Node {
    std::shared_ptr<Inode> inode;
    fs::FdRef ref;

    explicit operator bool() const { return inode != nullptr; }
    const Inode* operator->() const { return inode.get(); }
    const Inode& operator*() const { return *inode; }
    int fd() const { return ref.get(); }
};

Node inode_or_reply(fuse_req_t req, fuse_ino_t ino) {
    auto& inodes = overlay(req).inodes;
    Node node{inodes.get(ino), {}};
    if (!node.inode) {
        RFS_LOG_ERROR("kernel used unknown node id {}", ino);
        fuse_reply_err(req, ESTALE);
        return node;
    }
    node.ref = inodes.path_fd(*node.inode);
    if (!node.ref) {
        fuse_reply_err(req, node.ref.error() ? node.ref.error() : ESTALE);
        node.inode.reset();
    }
    return node;
}

// Runs `open_call` (returning a descriptor or -1), once more after closing cached descriptors if
// the daemon ran out of them: the cache must never cost an application an EMFILE.
template <class Call> int with_fd_retry(Overlay& ov, Call open_call) {
    int fd = open_call();
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && ov.inodes.shed()) fd = open_call();
    return fd;
}

int stat_of(const Node& node, struct stat* st) {
    return ::fstatat(node.fd(), "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

// What the kernel is shown of `st`: the inode number made unique across the file systems inside
// SOURCE (see fs::InoMap).
void shown(Overlay& ov, struct stat* st) {
    st->st_ino = ov.inodes.st_ino(st->st_dev, st->st_ino);
}

void reply_attr(fuse_req_t req, struct stat* st) {
    auto& ov = overlay(req);
    shown(ov, st);
    fuse_reply_attr(req, st, ov.timeouts.attr);
}

// Resolves `name` in `parent` and counts a lookup on the result. Returns 0 or an errno.
int do_lookup(Overlay& ov, const Node& parent, const char* name, fuse_entry_param* e) {
    *e = {};
    bool dotdot = std::strcmp(name, "..") == 0;
    int fd = with_fd_retry(ov, [&] {
        // Never resolve above SOURCE: the root is its own parent, as at a mount's top.
        if (dotdot && parent->id() == fs::kRootNodeId)
            return ::openat(parent.fd(), ".", O_PATH | O_CLOEXEC);
        return ::openat(parent.fd(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    });
    if (fd < 0) return errno;
    UniqueFd owned(fd);
    if (::fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
    // ".." is not a name the object can be reopened by.
    auto inode = ov.inodes.add_lookup(std::move(owned), e->attr, parent.inode,
                                      dotdot ? std::string_view() : std::string_view(name));
    e->ino = inode->id();
    shown(ov, &e->attr);
    e->attr_timeout = ov.timeouts.attr;
    e->entry_timeout = ov.timeouts.entry;
    return 0;
}

void reply_entry(fuse_req_t req, Overlay& ov, const fuse_entry_param& e) {
    if (fuse_reply_entry(req, &e) == -ENOENT) ov.inodes.unlookup(e.ino);
}

// Looks up the entry just created in `parent` and answers with it.
void reply_new_entry(fuse_req_t req, const Node& parent, const char* name) {
    auto& ov = overlay(req);
    fuse_entry_param e;
    if (int err = do_lookup(ov, parent, name, &e)) return (void)fuse_reply_err(req, err);
    reply_entry(req, ov, e);
}

// With allow_other, objects a user creates must belong to that user, not to the daemon. The
// daemon creates as itself (so the source's own permission checks see a privileged caller, as
// the kernel has already checked the real caller), then hands the object over. A set-group-ID
// directory keeps deciding the group, as it does natively.
void give_to_caller(fuse_req_t req, const Node& parent, int dirfd, const char* name, int fd) {
    auto& ov = overlay(req);
    const fuse_ctx* ctx = fuse_req_ctx(req);
    if (ctx->uid == ov.daemon_uid && ctx->gid == ov.daemon_gid) return;
    struct stat pst;
    gid_t gid = ctx->gid;
    if (stat_of(parent, &pst) == 0 && (pst.st_mode & S_ISGID)) gid = static_cast<gid_t>(-1);
    // The mode the source gave the object (the asked one less umask or default ACL).
    struct stat made;
    int rc = fd >= 0 ? ::fstat(fd, &made) : ::fstatat(dirfd, name, &made, AT_SYMLINK_NOFOLLOW);
    if (rc == 0)
        rc = fd >= 0 ? ::fchown(fd, ctx->uid, gid)
                     : ::fchownat(dirfd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) {
        RFS_LOG_WARN("cannot give new object to uid {}: {}", ctx->uid, strerror(errno));
        return;
    }
    // chown clears set-user/group-ID bits; the creator asked for them, so put them back.
    if (!S_ISLNK(made.st_mode) && (made.st_mode & (S_ISUID | S_ISGID))) {
        if (fd >= 0)
            ::fchmod(fd, made.st_mode & 07777);
        else
            ::fchmodat(dirfd, name, made.st_mode & 07777, 0);
    }
}

// The process behind `req`. Its supplementary groups cost a read of /proc, so they are fetched
// only for decisions that need them.
fs::Caller caller_of(fuse_req_t req, bool with_groups) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    fs::Caller caller{ctx->uid, ctx->gid, ctx->pid, {}};
    if (with_groups) {
        std::vector<gid_t> groups(64);
        int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
        if (n > static_cast<int>(groups.size())) {
            groups.resize(static_cast<size_t>(n));
            n = fuse_req_getgroups(req, n, groups.data());
        }
        groups.resize(n > 0 ? std::min(static_cast<size_t>(n), groups.size()) : 0);
        caller.groups = std::move(groups);
    }
    return caller;
}

// Natively a write, truncate or O_TRUNC open by a caller without CAP_FSETID clears the file's
// set-user-ID bit (and set-group-ID, see fs::setid_bits_to_clear). The daemon does these as root,
// which keeps the bits, and the kernel leaves the clearing to us on direct-I/O writes and atomic
// truncating opens; on cached writes and truncates it sends the new mode itself, and this finds
// nothing left to do. `fd` may be an O_PATH descriptor. Returns 0 or an errno.
int clear_setid_bits(fuse_req_t req, int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return errno;
    if (!S_ISREG(st.st_mode) || !(st.st_mode & (S_ISUID | S_ISGID))) return 0;
    bool needs_groups = (st.st_mode & S_ISGID) && !(st.st_mode & S_IXGRP);
    mode_t bits = fs::setid_bits_to_clear(st, caller_of(req, needs_groups));
    if (bits == 0) return 0;
    return ::fchmodat(AT_FDCWD, ProcPath(fd), st.st_mode & 07777 & ~bits, 0) == 0 ? 0 : errno;
}

// ---- life cycle -------------------------------------------------------------------------------

void op_init(void* userdata, fuse_conn_info* conn) {
    auto& ov = *static_cast<Overlay*>(userdata);
    // The kernel clears set-user/group-ID bits itself on write and truncate when we do not claim
    // to; our writes run as root, which would otherwise keep them.
    conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    // Locks stay in the kernel: POSIX and flock semantics are then exact for every process using
    // the mount, which is where applications live while the tree is being drained.
    conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
    // With other users on the mount the kernel enforces permissions; ACLs must count too, or a
    // named-user entry would be ignored (refusing a granted user, or admitting a denied one).
    if (ov.shared && (conn->capable & FUSE_CAP_POSIX_ACL)) {
        conn->want |= FUSE_CAP_POSIX_ACL;
        ov.posix_acl = true;
    }
    // The umask is ours to apply (creation_mode): natively a parent's default ACL replaces it,
    // which the kernel cannot know when it masks the mode before sending it.
    if (conn->capable & FUSE_CAP_DONT_MASK) {
        conn->want |= FUSE_CAP_DONT_MASK;
        ov.apply_umask = true;
    }
    // Enough background requests for readahead and parallel writers.
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->time_gran = 1;
}

// ---- names ------------------------------------------------------------------------------------

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto dir = inode_or_reply(req, parent);
    if (!dir) return;
    auto& ov = overlay(req);
    fuse_entry_param e;
    int err = do_lookup(ov, dir, name, &e);
    if (err == ENOENT && ov.timeouts.negative > 0) {
        e = {};
        e.entry_timeout = ov.timeouts.negative;
        return (void)fuse_reply_entry(req, &e);
    }
    if (err) return (void)fuse_reply_err(req, err);
    reply_entry(req, ov, e);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    if (!overlay(req).inodes.forget(ino, nlookup))
        RFS_LOG_WARN("forget of {} by {} did not match our lookup count", ino, nlookup);
    fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    size_t mismatched = overlay(req).inodes.forget_batch(count, [forgets](size_t i) {
        return std::pair<NodeId, std::uint64_t>(forgets[i].ino, forgets[i].nlookup);
    });
    if (mismatched)
        RFS_LOG_WARN("{} of {} forgets did not match our lookup counts", mismatched, count);
    fuse_reply_none(req);
}

// ---- attributes -------------------------------------------------------------------------------

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    struct stat st;
    if (fi && fi->fh) {
        // fstat of an open file: its descriptor works even once the last name is gone, when an
        // inode reached by handle or name could not be reopened.
        if (::fstat(open_file(fi)->fd(), &st) != 0) return (void)fuse_reply_err(req, errno);
        return reply_attr(req, &st);
    }
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    if (int err = stat_of(inode, &st)) return (void)fuse_reply_err(req, err);
    reply_attr(req, &st);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    int fh = fi ? open_file(fi)->fd() : -1;
    ProcPath path(inode.fd());
    auto fail = [&](int err) { fuse_reply_err(req, err); };

    if (to_set & FUSE_SET_ATTR_MODE) {
        int rc = fh >= 0               ? ::fchmod(fh, attr->st_mode)
                 : inode->is_symlink() ? (errno = EOPNOTSUPP, -1)
                                       : ::chmod(path, attr->st_mode);
        if (rc != 0) return fail(errno);
    }
    if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : static_cast<uid_t>(-1);
        gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : static_cast<gid_t>(-1);
        if (::fchownat(inode.fd(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
            return fail(errno);
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        int rc = fh >= 0 ? ::ftruncate(fh, attr->st_size) : ::truncate(path, attr->st_size);
        if (rc != 0) return fail(errno);
        // The kernel asks for the set-user-ID clearing it knows of (as a mode); this adds the
        // set-group-ID case it leaves out (no group-execute, caller outside the group).
        if (!(to_set & FUSE_SET_ATTR_MODE))
            if (int err = clear_setid_bits(req, fh >= 0 ? fh : inode.fd())) return fail(err);
    }
    if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
        timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
        if (to_set & FUSE_SET_ATTR_ATIME_NOW)
            times[0].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_ATIME)
            times[0] = attr->st_atim;
        if (to_set & FUSE_SET_ATTR_MTIME_NOW)
            times[1].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_MTIME)
            times[1] = attr->st_mtim;
        int rc = fh >= 0 ? ::futimens(fh, times)
                         : ::utimensat(inode.fd(), "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        if (rc != 0) return fail(errno);
    }
    struct stat st;
    if (int err = stat_of(inode, &st)) return fail(err);
    reply_attr(req, &st);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    char buf[PATH_MAX + 1];
    ssize_t n = ::readlinkat(inode.fd(), "", buf, sizeof buf);
    if (n < 0) return (void)fuse_reply_err(req, errno);
    if (n >= static_cast<ssize_t>(sizeof buf)) return (void)fuse_reply_err(req, ENAMETOOLONG);
    buf[n] = '\0';
    fuse_reply_readlink(req, buf);
}

// ---- creating and removing names ------------------------------------------------------------

// The mode to create with. With DONT_MASK the kernel sends the mode without the caller's umask:
// a parent's default ACL then decides (the source applies it, as natively), and without one the
// umask applies as usual. Our own process umask is 0.
mode_t creation_mode(fuse_req_t req, const Overlay& ov, const Node& dir, mode_t mode) {
    if (!ov.apply_umask) return mode;
    if (::getxattr(ProcPath(dir.fd()), "system.posix_acl_default", nullptr, 0) > 0) return mode;
    return mode & ~fuse_req_ctx(req)->umask;
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    auto dir = inode_or_reply(req, parent);
    if (!dir) return;
    mode = creation_mode(req, overlay(req), dir, mode);
    if (::mknodat(dir.fd(), name, mode, rdev) != 0) return (void)fuse_reply_err(req, errno);
    give_to_caller(req, dir, dir.fd(), name, -1);
    reply_new_entry(req, dir, name);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    auto dir = inode_or_reply(req, parent);
    if (!dir) return;
    mode = creation_mode(req, overlay(req), dir, mode);
    if (::mkdirat(dir.fd(), name, mode) != 0) return (void)fuse_reply_err(req, errno);
    give_to_caller(req, dir, dir.fd(), name, -1);
    reply_new_entry(req, dir, name);
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    auto dir = inode_or_reply(req, parent);
    if (!dir) return;
    if (::symlinkat(target, dir.fd(), name) != 0) return (void)fuse_reply_err(req, errno);
    give_to_caller(req, dir, dir.fd(), name, -1);
    reply_new_entry(req, dir, name);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    auto dir = inode_or_reply(req, newparent);
    if (!dir) return;
    // AT_EMPTY_PATH links the object itself (needs CAP_DAC_READ_SEARCH); the /proc form works
    // for unprivileged daemons too.
    if (::linkat(inode.fd(), "", dir.fd(), newname, AT_EMPTY_PATH) != 0) {
        if (errno != ENOENT && errno != EPERM) return (void)fuse_reply_err(req, errno);
        if (::linkat(AT_FDCWD, ProcPath(inode.fd()), dir.fd(), newname, AT_SYMLINK_FOLLOW) != 0)
            return (void)fuse_reply_err(req, errno);
    }
    reply_new_entry(req, dir, newname);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto dir = inode_or_reply(req, parent);
    if (!dir) return;
    fuse_reply_err(req, ::unlinkat(dir.fd(), name, 0) == 0 ? 0 : errno);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto dir = inode_or_reply(req, parent);
    if (!dir) return;
    fuse_reply_err(req, ::unlinkat(dir.fd(), name, AT_REMOVEDIR) == 0 ? 0 : errno);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return (void)fuse_reply_err(req, EINVAL);
    auto from = inode_or_reply(req, parent);
    if (!from) return;
    auto to = inode_or_reply(req, newparent);
    if (!to) return;
    // An inode reached by name must follow its object (and with EXCHANGE, the other one too).
    auto& inodes = overlay(req).inodes;
    struct stat moving = {};
    struct stat other = {};
    bool track = inodes.tracks_names();
    if (track) {
        ::fstatat(from.fd(), name, &moving, AT_SYMLINK_NOFOLLOW);
        if (flags & RENAME_EXCHANGE) ::fstatat(to.fd(), newname, &other, AT_SYMLINK_NOFOLLOW);
    }
    int rc = ::renameat2(from.fd(), name, to.fd(), newname, flags);
    if (rc != 0) return (void)fuse_reply_err(req, errno);
    if (track) {
        inodes.moved({moving.st_dev, moving.st_ino}, to.inode, newname);
        if (flags & RENAME_EXCHANGE) inodes.moved({other.st_dev, other.st_ino}, from.inode, name);
    }
    fuse_reply_err(req, 0);
}

// ---- files ------------------------------------------------------------------------------------

int reopen_flags(int flags) {
    // O_DIRECT would demand aligned buffers from us; the kernel bypasses its cache instead
    // (direct_io below). O_NOFOLLOW/O_CREAT/O_EXCL were handled by lookup and create.
    // O_APPEND stays with the kernel, which computes each write's offset: a backing descriptor
    // opened with it would make pwrite ignore the offset (mmap write-back through an append
    // descriptor would land at the end).
    return (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT | O_APPEND)) | O_CLOEXEC;
}

void fill_open_reply(Overlay& ov, fuse_file_info* fi, int app_flags, int fd, dev_t dev) {
    auto* file = new OpenFile(fd);
    ov.handles.add(file);
    fi->fh = reinterpret_cast<uint64_t>(file);
    fi->keep_cache = ov.timeouts.keep_cache;
    // An O_DIRECT open already bypasses the kernel's cache; direct_io would also forbid mmap.
    fi->direct_io = ov.timeouts.direct_io;
    // Kernel-held locks need no FLUSH round trip, a read-only open has nothing to flush, and a
    // local file system's close() has nothing to report (fs::ClosePolicy).
    fi->noflush = (app_flags & O_ACCMODE) == O_RDONLY || !ov.close_policy.needs_flush(dev, fd);
}

// An open for reading starts the disk read of the file's first window (the kernel's default
// readahead) before it replies: the READ that follows one round trip later finds the data in
// flight or in the page cache instead of starting it. For a small file read cold that round trip
// was a fifth of its time. posix_fadvise only queues the I/O; it does not wait for it.
constexpr off_t kOpenReadahead = 128 * 1024;

bool starts_with_read(const Inode& inode, int flags) {
    return S_ISREG(inode.type()) && (flags & O_ACCMODE) != O_WRONLY && !(flags & O_TRUNC);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    auto& ov = overlay(req);
    int fd =
        with_fd_retry(ov, [&] { return ::open(ProcPath(inode.fd()), reopen_flags(fi->flags)); });
    if (fd < 0) return (void)fuse_reply_err(req, errno);
    if (fi->flags & O_TRUNC) {
        if (int err = clear_setid_bits(req, fd)) {
            ::close(fd);
            return (void)fuse_reply_err(req, err);
        }
    }
    if (starts_with_read(*inode, fi->flags))
        ::posix_fadvise(fd, 0, kOpenReadahead, POSIX_FADV_WILLNEED);
    fill_open_reply(ov, fi, fi->flags, fd, inode->src().dev);
    if (fuse_reply_open(req, fi) == -ENOENT) ov.handles.close(open_file(fi));
}

// CREATE met an object that was made beside the mount after the kernel last looked (it sends
// CREATE only for names it believes absent, so it checked nothing on this object). A regular file
// is opened with the caller's own credentials, so the source decides access exactly as open(2)
// would (modes, ACLs, O_TRUNC's write permission); anything else is refused, since the kernel
// takes only a regular file from CREATE and a FIFO's open would wait for a writer on this loop.
// Returns a descriptor, or -1 with errno set (EEXIST: not a regular file).
int open_existing_for_caller(fuse_req_t req, Overlay& ov, const Node& dir, const char* name,
                             int flags) {
    struct stat st;
    if (::fstatat(dir.fd(), name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -1;
    if (S_ISDIR(st.st_mode)) return errno = EISDIR, -1;
    if (!S_ISREG(st.st_mode)) return errno = EEXIST, -1;
    // O_NONBLOCK: a FIFO swapped in since the check opens without waiting and is refused below.
    flags |= O_NONBLOCK;
    const fuse_ctx* ctx = fuse_req_ctx(req);
    int fd;
    if (ctx->uid == ov.daemon_uid && ctx->gid == ov.daemon_gid) {
        fd = with_fd_retry(ov, [&] { return ::openat(dir.fd(), name, flags); });
    } else {
        fs::ScopedFsCredentials as_caller(caller_of(req, true));
        if (!as_caller.ok()) return errno = EACCES, -1;
        fd = with_fd_retry(ov, [&] { return ::openat(dir.fd(), name, flags); });
    }
    if (fd < 0) return -1;
    UniqueFd owned(fd);
    if (::fstat(fd, &st) != 0) return -1;
    if (!S_ISREG(st.st_mode)) return errno = EEXIST, -1;
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) return -1;
    if (flags & O_TRUNC) {
        if (int err = clear_setid_bits(req, fd)) return errno = err, -1;
    }
    return owned.release();
}

// After refusing a CREATE on an existing name, the kernel must forget that it took the name for
// absent, or every retry would be sent as CREATE again. The notification waits for the directory
// lock the CREATE holds until our reply is processed, so it is sent from the blocking pool.
void forget_negative_entry(Overlay& ov, fuse_ino_t parent, const char* name) {
    if (!ov.session || !ov.executor) return;
    ov.executor->run_blocking([se = ov.session, parent, name = std::string(name)] {
        fuse_lowlevel_notify_inval_entry(se, parent, name.c_str(), name.size());
    });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) {
    auto dir = inode_or_reply(req, parent);
    if (!dir) return;
    auto& ov = overlay(req);
    mode = creation_mode(req, ov, dir, mode);
    // Always exclusive first: the kernel sends CREATE for a name it believes absent, but it may
    // have been created beside the mount since. Only a file we made is handed to the caller; an
    // existing one is opened for the caller as open(2) would (EEXIST if it asked for O_EXCL).
    int flags = reopen_flags(fi->flags) | O_NOFOLLOW;
    bool created = true;
    int fd =
        with_fd_retry(ov, [&] { return ::openat(dir.fd(), name, flags | O_CREAT | O_EXCL, mode); });
    if (fd < 0 && errno == EEXIST && !(fi->flags & O_EXCL)) {
        created = false;
        fd = open_existing_for_caller(req, ov, dir, name, flags);
        if (fd < 0 && (errno == EEXIST || errno == EISDIR)) {
            int err = errno;
            fuse_reply_err(req, err);
            return forget_negative_entry(ov, parent, name);
        }
    }
    if (fd < 0) return (void)fuse_reply_err(req, errno);
    if (created) give_to_caller(req, dir, -1, nullptr, fd);
    fuse_entry_param e;
    if (int err = do_lookup(ov, dir, name, &e)) {
        ::close(fd);
        return (void)fuse_reply_err(req, err);
    }
    fill_open_reply(ov, fi, fi->flags, fd, e.attr.st_dev);
    if (fuse_reply_create(req, &e, fi) == -ENOENT) {
        ov.handles.close(open_file(fi));
        ov.inodes.unlookup(e.ino);
    }
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    overlay(req).handles.close(open_file(fi));
    fuse_reply_err(req, 0);
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
// then replies, while the loop serves other requests. The Asio file object lives only as long as
// the read, on the loop that started it (Asio I/O objects belong to one thread): the kernel holds
// the open file until the reply, so the descriptor outlives it, and nothing is left for RELEASE
// to hand back to this loop from another one (a cross-loop post would wake this loop again).
struct ReadCall {
    fuse_req_t req;
    io::Buffer buffer;
    size_t size;
    off_t offset;
    size_t done = 0;
    BorrowedFile file = nullptr; // set while io_uring reads
};

void reply_read(ReadCall& call) {
    call.file.reset();
    fuse_reply_buf(call.req, call.buffer.get(), call.done);
    if (auto* loop = io::Executor::current()) loop->buffers().give(std::move(call.buffer));
}

void fail_read(ReadCall& call, int err) {
    call.file.reset();
    fuse_reply_err(call.req, err);
}

void continue_read(ReadCall call) {
    char* at = call.buffer.get() + call.done;
    size_t want = call.size - call.done;
    off_t offset = call.offset + static_cast<off_t>(call.done);
    asio::random_access_file& file = *call.file;
    file.async_read_some_at(
        offset, asio::buffer(at, want),
        [call = std::move(call)](const boost::system::error_code& ec, size_t n) mutable {
            call.done += n;
            // An error after part of the data is still an error: the kernel takes a short read
            // for end of file and would shrink its idea of the file's size.
            if (ec && ec != asio::error::eof) return fail_read(call, errno_of(ec));
            if (!ec && n > 0 && call.done < call.size) return continue_read(std::move(call));
            reply_read(call);
        });
}

// Reads first try the page cache without blocking (RWF_NOWAIT): a hit is answered in place,
// with no submission round trip. Only what must come from the disk goes through io_uring.
void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    io::Loop& loop = *io::Executor::current();
    OpenFile& file = *open_file(fi);
    size = std::min(size, io::BufferPool::kBufferSize);
    ReadCall call{req, loop.buffers().take(), size, off};
    while (call.done < size) {
        iovec iov{call.buffer.get() + call.done, size - call.done};
        ssize_t n = ::preadv2(file.fd(), &iov, 1, off + static_cast<off_t>(call.done), RWF_NOWAIT);
        if (n > 0) {
            call.done += static_cast<size_t>(n);
            continue;
        }
        if (n == 0) return reply_read(call); // end of file
        if (errno == EAGAIN || errno == EOPNOTSUPP) break;
        return (void)fuse_reply_err(req, errno); // even after part of the data: see continue_read
    }
    if (call.done == size) return reply_read(call);
    call.file.reset(new asio::random_access_file(loop.context(), file.fd()));
    continue_read(std::move(call));
}

// Writes are copied into the page cache in place. Measured on ext4: an io_uring buffered write
// cannot complete without blocking there, so io_uring hands it to a kernel worker thread, and a
// 4 KiB write took 127 us that way against 30 us in place (bench/ has the workloads).
void op_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off,
              fuse_file_info* fi) {
    int fd = open_file(fi)->fd();
    // A page written back from the cache carries no caller; its write() was checked then.
    if (!fi->writepage)
        if (int err = clear_setid_bits(req, fd)) return (void)fuse_reply_err(req, err);
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::pwrite(fd, data + done, size - done, off + static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            if (done > 0) break;
            return (void)fuse_reply_err(req, errno);
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    fuse_reply_write(req, done);
}

// Each close() of a written file. Closing a duplicate of our descriptor lets the source report
// what close() reports natively (NFS and other write-back sources surface write errors there)
// while our open file stays open. Read-only opens, and files on local file systems, skip this
// round trip (noflush, see fs::ClosePolicy).
void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    int copy = ::fcntl(open_file(fi)->fd(), F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return (void)fuse_reply_err(req, errno);
    fuse_reply_err(req, ::close(copy) == 0 ? 0 : errno);
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
    int fd = open_file(fi)->fd();
    overlay(req).executor->run_blocking([req, fd, datasync] {
        int rc = datasync ? ::fdatasync(fd) : ::fsync(fd);
        fuse_reply_err(req, rc == 0 ? 0 : errno);
    });
}

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length,
                  fuse_file_info* fi) {
    int fd = open_file(fi)->fd();
    overlay(req).executor->run_blocking([req, fd, mode, offset, length] {
        fuse_reply_err(req, ::fallocate(fd, mode, offset, length) == 0 ? 0 : errno);
    });
}

// Copies with plain reads and writes when the kernel cannot copy between the two descriptors
// (different underlying file systems): the application asked one file system for a copy and
// must never see EXDEV from it.
ssize_t copy_by_hand(int in, off_t off_in, int out, off_t off_out, size_t len) {
    std::vector<char> buf(std::min<size_t>(len, 1 << 20));
    size_t copied = 0;
    while (copied < len) {
        ssize_t n = ::pread(in, buf.data(), std::min(buf.size(), len - copied), off_in + copied);
        if (n < 0) return copied ? static_cast<ssize_t>(copied) : -errno;
        if (n == 0) break;
        ssize_t w = ::pwrite(out, buf.data(), n, off_out + copied);
        if (w < 0) return copied ? static_cast<ssize_t>(copied) : -errno;
        copied += w;
        if (w < n) break;
    }
    return static_cast<ssize_t>(copied);
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info* fi_in, fuse_ino_t,
                        off_t off_out, fuse_file_info* fi_out, size_t len, int flags) {
    int in = open_file(fi_in)->fd();
    int out = open_file(fi_out)->fd();
    overlay(req).executor->run_blocking([=] {
        loff_t src = off_in, dst = off_out;
        ssize_t n = ::copy_file_range(in, &src, out, &dst, len, flags);
        if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL))
            n = copy_by_hand(in, off_in, out, off_out, len);
        else if (n < 0)
            n = -errno;
        if (n < 0)
            fuse_reply_err(req, static_cast<int>(-n));
        else
            fuse_reply_write(req, static_cast<size_t>(n));
    });
}

void op_lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
    off_t res = ::lseek(open_file(fi)->fd(), off, whence);
    if (res < 0) return (void)fuse_reply_err(req, errno);
    fuse_reply_lseek(req, res);
}

// ---- directories ------------------------------------------------------------------------------

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    int fd = with_fd_retry(overlay(req), [&] {
        return ::openat(inode.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    });
    if (fd < 0) return (void)fuse_reply_err(req, errno);
    auto d = std::make_unique<OpenDir>();
    d->dir = ::fdopendir(fd);
    if (!d->dir) {
        int err = errno;
        ::close(fd);
        return (void)fuse_reply_err(req, err);
    }
    auto& ov = overlay(req);
    // Registered before the reply: its RELEASEDIR may reach another loop right after.
    ov.handles.add(d.get());
    fi->fh = reinterpret_cast<uint64_t>(d.release());
    fi->keep_cache = ov.timeouts.attr >= 86400;
    fi->cache_readdir = ov.timeouts.attr >= 86400;
    if (fuse_reply_open(req, fi) == -ENOENT) ov.handles.close(open_dir(fi));
}

bool is_dot_or_dotdot(const char* name) {
    return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

// Fills `buf` with entries of `d` from `offset` on; returns the bytes used, and in `*err` what
// stopped the listing early (0 at the end or when the buffer is full). Called with d.mu held.
size_t fill_dir_reply(fuse_req_t req, Overlay& ov, const Node& inode, OpenDir& d, off_t offset,
                      std::vector<char>& buf, bool plus, int* err) {
    size_t size = buf.size();
    if (offset != d.offset) {
        ::seekdir(d.dir, offset);
        d.pending = nullptr;
        d.offset = offset;
    }
    size_t used = 0;
    *err = 0;
    while (true) {
        if (!d.pending) {
            errno = 0;
            d.pending = ::readdir(d.dir);
            if (!d.pending) {
                *err = errno;
                break;
            }
        }
        const dirent& ent = *d.pending;
        off_t next = ent.d_off;
        size_t entsize;
        if (plus) {
            fuse_entry_param e{};
            if (is_dot_or_dotdot(ent.d_name)) {
                // The kernel makes no dentries for these; it needs only their type.
                e.attr.st_ino = ov.inodes.st_ino(inode->src().dev, ent.d_ino);
                e.attr.st_mode = DTTOIF(ent.d_type);
            } else if (int lerr = do_lookup(ov, inode, ent.d_name, &e)) {
                if (lerr == ENOENT) { // removed since it was listed
                    d.pending = nullptr;
                    d.offset = next;
                    continue;
                }
                *err = lerr;
                break;
            }
            entsize =
                fuse_add_direntry_plus(req, buf.data() + used, size - used, ent.d_name, &e, next);
            if (entsize > size - used) {
                if (e.ino) ov.inodes.unlookup(e.ino); // it did not fit: the kernel never saw it
                break;
            }
        } else {
            struct stat st {};
            // A mount point's entry shows the covered directory's number, as it does natively.
            st.st_ino = ov.inodes.st_ino(inode->src().dev, ent.d_ino);
            st.st_mode = DTTOIF(ent.d_type);
            entsize = fuse_add_direntry(req, buf.data() + used, size - used, ent.d_name, &st, next);
            if (entsize > size - used) break;
        }
        used += entsize;
        d.pending = nullptr;
        d.offset = next;
    }
    return used;
}

// Shared by readdir and readdirplus. Offsets are the directory stream's own positions
// (telldir cookies), which stay valid while entries are added and removed.
void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi,
                bool plus) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    OpenDir& d = *open_dir(fi);
    std::vector<char> buf(size);
    int err = 0;
    size_t used;
    {
        std::lock_guard lock(d.mu);
        used = fill_dir_reply(req, overlay(req), inode, d, offset, buf, plus, &err);
    }
    // The reply comes after the unlock: once the kernel has it, the application may close the
    // directory and another loop may free `d` (RELEASEDIR) while this one still runs.
    // Entries already placed carry lookup counts: send them even if a later one failed.
    if (err && used == 0) return (void)fuse_reply_err(req, err);
    fuse_reply_buf(req, buf.data(), used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    do_readdir(req, ino, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    do_readdir(req, ino, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    overlay(req).handles.close(open_dir(fi));
    fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
    int fd = ::dirfd(open_dir(fi)->dir);
    overlay(req).executor->run_blocking([req, fd, datasync] {
        int rc = datasync ? ::fdatasync(fd) : ::fsync(fd);
        fuse_reply_err(req, rc == 0 ? 0 : errno);
    });
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    struct statvfs sv;
    if (::fstatvfs(inode.fd(), &sv) != 0) return (void)fuse_reply_err(req, errno);
    fuse_reply_statfs(req, &sv);
}

// Reached only without default_permissions, i.e. when no other user can use the mount (see
// main.cpp): the caller then has the daemon's own user, so the source's answer to the daemon is
// the answer the caller would get natively (root included: X_OK still needs an execute bit).
void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    int rc = ::faccessat(inode.fd(), "", mask, AT_EMPTY_PATH | AT_EACCESS);
    fuse_reply_err(req, rc == 0 ? 0 : errno);
}

// ---- extended attributes ----------------------------------------------------------------------
// Reached through /proc/self/fd, which resolves to the object itself. A symlink would be followed
// that way, so its own attributes (trusted.*, security.*; Linux itself refuses user.* there) go
// through l*xattr on the link's name inside its parent directory. The *xattrat calls of Linux
// 6.13 cannot help: with AT_EMPTY_PATH they refuse O_PATH descriptors (EBADF, checked on 6.18),
// and a symlink cannot be opened any other way.

// getxattr and listxattr share one protocol: size 0 asks for the size needed, otherwise the
// caller's buffer size bounds the value (ERANGE from the call itself when it is too small).
template <class Call> void reply_xattr_call(fuse_req_t req, size_t size, Call call) {
    if (size == 0) {
        ssize_t n = call(nullptr, 0);
        if (n < 0) return (void)fuse_reply_err(req, errno);
        return (void)fuse_reply_xattr(req, static_cast<size_t>(n));
    }
    std::vector<char> buf(size);
    ssize_t n = call(buf.data(), size);
    if (n < 0) return (void)fuse_reply_err(req, errno);
    fuse_reply_buf(req, buf.data(), static_cast<size_t>(n));
}

// What /proc reports as the path of descriptor `fd` ("" if it cannot say).
std::string path_of(int fd) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(ProcPath(fd), buf, sizeof buf);
    return n < 0 || n >= static_cast<ssize_t>(sizeof buf) ? std::string() : std::string(buf, n);
}

// The directory holding the symlink `link` (whose O_PATH descriptor is `link_fd`) and the link's
// name in it, for kernels without the *xattrat calls. The path /proc reports only guides the
// search: it is walked again from SOURCE's root one component at a time without following
// anything, and the object found must be `link` itself, so a concurrent rename gives ESTALE, never
// another object. Returns an empty descriptor with errno set on failure.
UniqueFd parent_of_symlink(int root_fd, const Inode& link, int link_fd, std::string* name) {
    std::string root = path_of(root_fd), path = path_of(link_fd);
    if (root == "/") root.clear();
    if (path.size() <= root.size() + 1 || path.compare(0, root.size(), root) != 0 ||
        path[root.size()] != '/') {
        errno = ESTALE;
        return UniqueFd();
    }
    std::string rel = path.substr(root.size() + 1);
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

// Runs `call` (an l*xattr call) with a path naming the symlink `link` relative to its parent
// directory's descriptor: "/proc/self/fd/<parent>/<name>".
template <class Call> ssize_t on_symlink(fuse_req_t req, const Node& link, Call call) {
    auto& inodes = overlay(req).inodes;
    fs::FdRef root = inodes.path_fd(*inodes.root());
    std::string name;
    UniqueFd parent = parent_of_symlink(root.get(), *link, link.fd(), &name);
    if (!parent) return -1;
    std::string path = std::string(ProcPath(parent.get())) + "/" + name;
    return call(path.c_str());
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    int rc = inode->is_symlink()
                 ? on_symlink(req, inode,
                              [&](const char* path) {
                                  return ::lsetxattr(path, name, value, size, flags);
                              })
                 : ::setxattr(ProcPath(inode.fd()), name, value, size, flags);
    fuse_reply_err(req, rc == 0 ? 0 : errno);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    if (inode->is_symlink()) {
        return reply_xattr_call(req, size, [&](char* buf, size_t len) {
            return on_symlink(req, inode,
                              [&](const char* path) { return ::lgetxattr(path, name, buf, len); });
        });
    }
    ProcPath path(inode.fd());
    reply_xattr_call(req, size,
                     [&](char* buf, size_t len) { return ::getxattr(path, name, buf, len); });
}

// Natively the file system shows trusted.* names only to callers with CAP_SYS_ADMIN, and the
// daemon has it: the whole list is read and filtered for the caller, and sizes are those of the
// filtered list.
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    ProcPath path(inode.fd());
    auto list_call = [&](char* buf, size_t len) -> ssize_t {
        if (!inode->is_symlink()) return ::listxattr(path, buf, len);
        return on_symlink(req, inode, [&](const char* p) { return ::llistxattr(p, buf, len); });
    };
    std::vector<char> names;
    ssize_t n;
    do { // the list may grow between the size query and the read
        n = list_call(nullptr, 0);
        if (n < 0) return (void)fuse_reply_err(req, errno);
        names.resize(static_cast<size_t>(n) + 256);
        n = names.empty() ? 0 : list_call(names.data(), names.size());
    } while (n < 0 && errno == ERANGE);
    if (n < 0) return (void)fuse_reply_err(req, errno);
    size_t kept =
        fs::filter_xattr_names(names.data(), static_cast<size_t>(n), caller_of(req, false));
    if (size == 0) return (void)fuse_reply_xattr(req, kept);
    if (kept > size) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, names.data(), kept);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    auto inode = inode_or_reply(req, ino);
    if (!inode) return;
    int rc =
        inode->is_symlink()
            ? on_symlink(req, inode, [&](const char* path) { return ::lremovexattr(path, name); })
            : ::removexattr(ProcPath(inode.fd()), name);
    fuse_reply_err(req, rc == 0 ? 0 : errno);
}

} // namespace

fuse_lowlevel_ops overlay_operations(Mode) {
    fuse_lowlevel_ops ops{};
    ops.init = op_init;
    ops.lookup = op_lookup;
    ops.forget = op_forget;
    ops.forget_multi = op_forget_multi;
    ops.getattr = op_getattr;
    ops.setattr = op_setattr;
    ops.readlink = op_readlink;
    ops.mknod = op_mknod;
    ops.mkdir = op_mkdir;
    ops.symlink = op_symlink;
    ops.link = op_link;
    ops.unlink = op_unlink;
    ops.rmdir = op_rmdir;
    ops.rename = op_rename;
    ops.open = op_open;
    ops.create = op_create;
    ops.read = op_read;
    ops.write = op_write;
    // Flush on each close of a written file, so a source that reports write errors only at
    // close() (NFS) reports them to the application too; locks live in the kernel, and
    // read-only opens and local file systems set noflush to skip the round trip.
    ops.release = op_release;
    ops.flush = op_flush;
    ops.fsync = op_fsync;
    ops.fallocate = op_fallocate;
    ops.copy_file_range = op_copy_file_range;
    ops.lseek = op_lseek;
    ops.opendir = op_opendir;
    ops.readdir = op_readdir;
    ops.readdirplus = op_readdirplus;
    ops.releasedir = op_releasedir;
    ops.fsyncdir = op_fsyncdir;
    ops.statfs = op_statfs;
    ops.access = op_access;
    ops.setxattr = op_setxattr;
    ops.getxattr = op_getxattr;
    ops.listxattr = op_listxattr;
    ops.removexattr = op_removexattr;
    return ops;
}

} // namespace rfs
