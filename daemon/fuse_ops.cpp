// The FUSE handlers: each turns a libfuse request into a call of fs::LocalFs and its result into
// the reply. Event-loop threads, except the completions LocalFs runs on the blocking pool, which
// reply from that pool. Every reply goes through a Reply, so each request is answered exactly
// once, even when a handler throws.
#include "daemon/fuse_ops.hpp"

#include "daemon/reply.hpp"
#include "daemon/syscall_faults.hpp"
#include "lib/common/log.hpp"
#include "lib/fs/caller.hpp"
#include "lib/io/buffer_pool.hpp"

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

namespace rfs {

void Reply::unanswered() noexcept {
    if (kind_ == Kind::none) return fuse_reply_none(take());
    fuse_metrics::record_unanswered();
    fuse_req_t req = take(EIO);
    try {
        RFS_LOG_ERROR("a request was left unanswered{}; answering EIO",
                      std::uncaught_exceptions() ? " by an exception" : "");
    } catch (...) {
    }
    fuse_reply_err(req, EIO);
}

namespace {

using fs::NodeId;

// The kernel's setattr mask goes to LocalFs unchanged.
static_assert(fs::kSetMode == FUSE_SET_ATTR_MODE && fs::kSetUid == FUSE_SET_ATTR_UID &&
              fs::kSetGid == FUSE_SET_ATTR_GID && fs::kSetSize == FUSE_SET_ATTR_SIZE &&
              fs::kSetAtime == FUSE_SET_ATTR_ATIME && fs::kSetMtime == FUSE_SET_ATTR_MTIME &&
              fs::kSetAtimeNow == FUSE_SET_ATTR_ATIME_NOW &&
              fs::kSetMtimeNow == FUSE_SET_ATTR_MTIME_NOW);

Overlay& overlay(fuse_req_t req) {
    return *static_cast<Overlay*>(fuse_req_userdata(req));
}

fs::LocalFs& fs_of(fuse_req_t req) {
    return overlay(req).fs;
}

fs::File* open_file(const fuse_file_info* fi) {
    return reinterpret_cast<fs::File*>(fi->fh);
}

fs::Dir* open_dir(const fuse_file_info* fi) {
    return reinterpret_cast<fs::Dir*>(fi->fh);
}

// Supplementary groups of the process behind a request (fs::Caller::load_groups).
void load_groups(const void* source, std::vector<gid_t>& out) {
    auto req = static_cast<fuse_req_t>(const_cast<void*>(source));
    std::vector<gid_t> groups(64);
    int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
    if (n > static_cast<int>(groups.size())) {
        groups.resize(static_cast<size_t>(n));
        n = fuse_req_getgroups(req, n, groups.data());
    }
    groups.resize(n > 0 ? std::min(static_cast<size_t>(n), groups.size()) : 0);
    out = std::move(groups);
}

// The process behind `req`. Its supplementary groups cost a read of /proc, so they are fetched
// only for decisions that need them (fs::with_groups), while the request is unanswered.
fs::Caller caller_of(fuse_req_t req) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    return fs::Caller{ctx->uid, ctx->gid, ctx->pid, {}, ctx->umask, load_groups, req};
}

fuse_entry_param to_param(const fs::Entry& entry) {
    fuse_entry_param e{};
    e.ino = entry.id;
    e.attr = entry.attr;
    e.attr_timeout = entry.attr_timeout;
    e.entry_timeout = entry.entry_timeout;
    return e;
}

// Answers with `entry`; a lookup the kernel will never know of is given back.
void reply_entry(Reply& reply, fs::LocalFs& fs, const fs::Entry& entry) {
    if (reply.entry(to_param(entry)) == -ENOENT && entry.id) fs.forget(entry.id, 1);
}

void reply_entry_or_err(Reply& reply, fs::LocalFs& fs, int err, const fs::Entry& entry) {
    if (err) return (void)reply.err(err);
    reply_entry(reply, fs, entry);
}

void fill_file_info(fuse_file_info* fi, const fs::OpenResult& open) {
    fi->fh = reinterpret_cast<uint64_t>(open.file);
    fi->keep_cache = open.keep_cache;
    fi->direct_io = open.direct_io;
    fi->noflush = open.noflush;
}

#ifdef RFS_TEST_FAULTS
enum class TestFault { none, throw_in_open, throw_in_fsync, lose_readdirplus_reply };
TestFault g_test_fault = TestFault::none;

// Fails as an allocation would once an open's descriptor exists.
struct ThrowOnOpen final : fs::FsObserver {
    fs::OpenPlan on_open(NodeId, int, int) override { throw std::bad_alloc(); }
};
ThrowOnOpen g_throw_on_open;
#endif

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
    // The umask is ours to apply (LocalFs's creation mode): natively a parent's default ACL
    // replaces it, which the kernel cannot know when it masks the mode before sending it.
    if (conn->capable & FUSE_CAP_DONT_MASK) {
        conn->want |= FUSE_CAP_DONT_MASK;
        ov.fs.set_apply_umask(true);
    }
    // The kernel keeps written pages and owns sizes and mtimes (only when nothing but the mount
    // changes SOURCE; the option's check). LocalFs opens what it must read pages through.
    if (ov.writeback_cache) {
        if (conn->capable & FUSE_CAP_WRITEBACK_CACHE) {
            conn->want |= FUSE_CAP_WRITEBACK_CACHE;
            ov.fs.set_writeback_cache(true);
        } else {
            RFS_LOG_WARN("writeback_cache: the kernel does not offer it; writes go through");
        }
    }
    // Enough background requests for readahead and parallel writers.
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->time_gran = 1;
    // Whatever the page size, no request may outgrow the request buffers (see BufferPool).
    conn->max_write = io::fuse_max_write(conn->max_write);
    // libfuse sends INIT's answer once this returns; a handler posted now runs after that.
    if (ov.on_serving)
        if (io::Loop* loop = io::Executor::current())
            boost::asio::post(loop->context(), std::exchange(ov.on_serving, nullptr));
    // libfuse answers INIT itself once this returns, not through a Reply, and the kernel sends
    // no other request before that answer: a request another loop reads next sees what was set
    // here (the umask flag above). TSan learns that ordering from the token (kernel_order.hpp).
    kernel_order::answering();
}

// ---- names ------------------------------------------------------------------------------------

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Reply reply(req);
    auto& fs = fs_of(req);
    fs::Entry e;
    reply_entry_or_err(reply, fs, fs.lookup(parent, name, &e), e);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    Reply reply(req, Reply::Kind::none);
    if (!fs_of(req).forget(ino, nlookup))
        RFS_LOG_WARN("forget of {} by {} did not match our lookup count", ino, nlookup);
    reply.none();
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    Reply reply(req, Reply::Kind::none);
    size_t mismatched = fs_of(req).forget_batch(count, [forgets](size_t i) {
        return std::pair<NodeId, std::uint64_t>(forgets[i].ino, forgets[i].nlookup);
    });
    if (mismatched)
        RFS_LOG_WARN("{} of {} forgets did not match our lookup counts", mismatched, count);
    reply.none();
}

// ---- attributes -------------------------------------------------------------------------------

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Reply reply(req);
    fs::Attr a;
    if (int err = fs_of(req).getattr(ino, fi && fi->fh ? open_file(fi) : nullptr, &a))
        return (void)reply.err(err);
    reply.attr(a.attr, a.timeout);
}

// A released file (mode=move) must have its data back before it is opened for writing,
// truncated or linked: LocalFs answers kNeedsData, the data is fetched without holding this loop,
// and `op` runs again from the fetch's completion. A file released again in between (the
// migrator releases only unpinned files, so this needs a close in between) is fetched again, a
// bounded number of times. `op(reply)` answers the request and returns 0, or returns kNeedsData
// without answering.
constexpr int kFetchAttempts = 3;

template <class Op> void run_with_data(Reply reply, fuse_ino_t ino, Op op, int attempt = 0) {
    if (op(reply) != fs::kNeedsData) return;
    if (attempt >= kFetchAttempts) return (void)reply.err(EIO);
    fuse_req_t req = reply.req();
    auto pending = std::make_unique<std::pair<Reply, Op>>(std::move(reply), std::move(op));
    fs_of(req).fetch_data(ino, [pending = std::move(pending), ino, attempt](int fetched) mutable {
        if (fetched) return (void)pending->first.err(fetched);
        run_with_data(std::move(pending->first), ino, std::move(pending->second), attempt + 1);
    });
}

// Runs `body(reply)` on the blocking pool when `wait_long` (a call that may wait on the source
// for long: the loop goes on serving meanwhile), in place otherwise. The Reply travels with the
// body: a body that throws or never runs answers EIO through it.
template <class Body> void maybe_on_pool(bool wait_long, Reply reply, Body body) {
    io::Executor* executor = overlay(reply.req()).executor;
    if (!wait_long || !executor) return body(std::move(reply));
    executor->run_blocking(
        [reply = std::move(reply), body = std::move(body)]() mutable { body(std::move(reply)); });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
    fs::File* file = fi ? open_file(fi) : nullptr;
    auto body = [ino, values = *attr, to_set, file](Reply reply) {
        run_with_data(std::move(reply), ino, [ino, values, to_set, file](Reply& reply) {
            fs::Attr a;
            int err =
                fs_of(reply.req()).setattr(caller_of(reply.req()), ino, values, to_set, file, &a);
            if (err == fs::kNeedsData) return err;
            if (err) return reply.err(err), 0;
            return reply.attr(a.attr, a.timeout), 0;
        });
    };
    maybe_on_pool(fs::LocalFs::may_wait_long_setattr(to_set), Reply(req), std::move(body));
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
    Reply reply(req);
    char buf[PATH_MAX + 1];
    if (int err = fs_of(req).readlink(ino, buf, sizeof buf)) return (void)reply.err(err);
    reply.readlink(buf);
}

// ---- creating and removing names ------------------------------------------------------------

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    Reply reply(req);
    auto& fs = fs_of(req);
    fs::Entry e;
    reply_entry_or_err(reply, fs, fs.mknod(caller_of(req), parent, name, mode, rdev, &e), e);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    Reply reply(req);
    auto& fs = fs_of(req);
    fs::Entry e;
    reply_entry_or_err(reply, fs, fs.mkdir(caller_of(req), parent, name, mode, &e), e);
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    Reply reply(req);
    auto& fs = fs_of(req);
    fs::Entry e;
    reply_entry_or_err(reply, fs, fs.symlink(caller_of(req), target, parent, name, &e), e);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
    run_with_data(Reply(req), ino, [ino, newparent, name = std::string(newname)](Reply& reply) {
        auto& fs = fs_of(reply.req());
        fs::Entry e;
        int err = fs.link(ino, newparent, name.c_str(), &e);
        if (err == fs::kNeedsData) return err;
        reply_entry_or_err(reply, fs, err, e);
        return 0;
    });
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Reply reply(req);
    reply.err(fs_of(req).unlink(parent, name));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Reply reply(req);
    reply.err(fs_of(req).rmdir(parent, name));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
    Reply reply(req);
    reply.err(fs_of(req).rename(parent, name, newparent, newname, flags));
}

// ---- files ------------------------------------------------------------------------------------

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto body = [ino, info = *fi](Reply reply) {
        run_with_data(std::move(reply), ino, [ino, info](Reply& reply) mutable {
            auto& fs = fs_of(reply.req());
            fs::OpenResult open;
            int err = fs.open(caller_of(reply.req()), ino, info.flags, &open);
            if (err == fs::kNeedsData) return err;
            if (err) return reply.err(err), 0;
            fill_file_info(&info, open);
            if (reply.open(info) == -ENOENT) fs.discard(open.file);
            return 0;
        });
    };
    maybe_on_pool(fs::LocalFs::may_wait_long_open(fi->flags), Reply(req), std::move(body));
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) {
    Reply reply(req);
    auto& fs = fs_of(req);
    fs::Entry e;
    fs::OpenResult open;
    if (int err = fs.create(caller_of(req), parent, name, mode, fi->flags, &e, &open))
        return (void)reply.err(err);
    fill_file_info(fi, open);
    if (reply.create(to_param(e), *fi) == -ENOENT) {
        fs.discard(open.file);
        fs.forget(e.id, 1);
    }
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    Reply reply(req);
    fs_of(req).release(open_file(fi),
                       [reply = std::move(reply)](int err) mutable { reply.err(err); });
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    Reply reply(req);
    fs_of(req).read(*open_file(fi), size, off,
                    [reply = std::move(reply)](int err, const char* data, size_t n) mutable {
                        if (err) return (void)reply.err(err);
                        reply.buf(data, n);
                    });
}

void op_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off,
              fuse_file_info* fi) {
    Reply reply(req);
    // A page written back from the cache carries no caller; its write() was checked then.
    fs::Caller caller = caller_of(req);
    size_t written;
    int err = fs_of(req).write(fi->writepage ? nullptr : &caller, *open_file(fi), data, size, off,
                               &written);
    if (err) return (void)reply.err(err);
    reply.write(written);
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    Reply reply(req);
    fs_of(req).flush(*open_file(fi),
                     [reply = std::move(reply)](int err) mutable { reply.err(err); });
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
    Reply reply(req);
    fs_of(req).fsync(*open_file(fi), datasync != 0, [reply = std::move(reply)](int err) mutable {
#ifdef RFS_TEST_FAULTS
        if (g_test_fault == TestFault::throw_in_fsync) throw std::runtime_error("injected fault");
#endif
        reply.err(err);
    });
}

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length,
                  fuse_file_info* fi) {
    Reply reply(req);
    fs_of(req).fallocate(*open_file(fi), mode, offset, length,
                         [reply = std::move(reply)](int err) mutable { reply.err(err); });
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info* fi_in, fuse_ino_t,
                        off_t off_out, fuse_file_info* fi_out, size_t len, int flags) {
    Reply reply(req);
    fs_of(req).copy_file_range(*open_file(fi_in), off_in, *open_file(fi_out), off_out, len, flags,
                               [reply = std::move(reply)](int err, size_t n) mutable {
                                   if (err) return (void)reply.err(err);
                                   reply.write(n);
                               });
}

void op_lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
    Reply reply(req);
    off_t res;
    if (int err = fs_of(req).lseek(*open_file(fi), off, whence, &res)) return (void)reply.err(err);
    reply.lseek(res);
}

// ---- directories ------------------------------------------------------------------------------

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Reply reply(req);
    auto& fs = fs_of(req);
    fs::OpenDirResult open;
    if (int err = fs.opendir(ino, &open)) return (void)reply.err(err);
    fi->fh = reinterpret_cast<uint64_t>(open.dir);
    fi->keep_cache = open.keep_cache;
    fi->cache_readdir = open.cache_readdir;
    if (reply.open(*fi) == -ENOENT) fs.discard(open.dir);
}

// A READDIR(PLUS) reply being filled: entries are packed in libfuse's format until the kernel's
// buffer size is reached.
class DirReply final : public fs::DirSink {
public:
    DirReply(fuse_req_t req, size_t size) : req_(req), buf_(size) {}

    bool add(const char* name, const struct stat& st, off_t next) override {
        size_t n =
            fuse_add_direntry(req_, buf_.data() + used_, buf_.size() - used_, name, &st, next);
        if (n > buf_.size() - used_) return false;
        used_ += n;
        return true;
    }
    bool add_plus(const char* name, const fs::Entry& entry, off_t next) override {
        fuse_entry_param e = to_param(entry);
        size_t n =
            fuse_add_direntry_plus(req_, buf_.data() + used_, buf_.size() - used_, name, &e, next);
        if (n > buf_.size() - used_) return false;
        used_ += n;
        if (entry.id) carried_.push_back(entry.id);
        return true;
    }
    const char* data() const { return buf_.data(); }
    size_t used() const { return used_; }
    // The nodes whose lookup the placed entries counted ("." and ".." count none).
    const std::vector<fs::NodeId>& carried() const { return carried_; }

private:
    fuse_req_t req_;
    std::vector<char> buf_;
    size_t used_ = 0;
    std::vector<fs::NodeId> carried_;
};

void do_readdir(fuse_req_t req, size_t size, off_t offset, fuse_file_info* fi, bool plus) {
    Reply reply(req);
    DirReply out(req, size);
    // Taken now: a reply frees `req`, whether or not it reached the kernel.
    fs::LocalFs& fs = fs_of(req);
    int err = fs.readdir(*open_dir(fi), offset, plus, out);
    // LocalFs has let go of the directory's lock: once the kernel has the reply, the application
    // may close the directory and another loop may free it (RELEASEDIR) while this one still runs.
    // Entries already placed carry lookup counts: send them even if a later one failed.
    if (err && out.used() == 0) return (void)reply.err(err);
    // An interrupted reply never reached the kernel: the lookups its entries counted are undone,
    // as for LOOKUP and CREATE, or the nodes would never be forgotten.
    int sent;
#ifdef RFS_TEST_FAULTS
    if (plus && g_test_fault == TestFault::lose_readdirplus_reply)
        // As if the request had been interrupted: the entries never reach the kernel (which gets
        // EIO instead, so that the application's call ends), and libfuse reports -ENOENT.
        sent = (reply.err(EIO), -ENOENT);
    else
#endif
        sent = reply.buf(out.data(), out.used());
    if (sent == -ENOENT) {
        for (fs::NodeId id : out.carried())
            fs.forget(id, 1);
    }
}

void op_readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    do_readdir(req, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    do_readdir(req, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    Reply reply(req);
    fs_of(req).releasedir(open_dir(fi));
    reply.err(0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
    Reply reply(req);
    fs_of(req).fsyncdir(*open_dir(fi), datasync != 0,
                        [reply = std::move(reply)](int err) mutable { reply.err(err); });
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
    Reply reply(req);
    struct statvfs sv;
    if (int err = fs_of(req).statfs(ino, &sv)) return (void)reply.err(err);
    reply.statfs(sv);
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
    Reply reply(req);
    reply.err(fs_of(req).access(ino, mask));
}

// ---- extended attributes ----------------------------------------------------------------------

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) {
    Reply reply(req);
    reply.err(fs_of(req).setxattr(ino, name, value, size, flags));
}

// Size 0 asks for the size needed; otherwise the kernel's buffer size bounds the value.
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    Reply reply(req);
    std::vector<char> buf(size);
    size_t len;
    if (int err = fs_of(req).getxattr(ino, name, size ? buf.data() : nullptr, size, &len))
        return (void)reply.err(err);
    if (size == 0) return (void)reply.xattr(len);
    reply.buf(buf.data(), len);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    Reply reply(req);
    std::vector<char> names;
    size_t len;
    if (int err = fs_of(req).listxattr(caller_of(req), ino, size, &names, &len))
        return (void)reply.err(err);
    if (size == 0) return (void)reply.xattr(len);
    reply.buf(names.data(), len);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    Reply reply(req);
    reply.err(fs_of(req).removexattr(ino, name));
}

} // namespace

// After refusing a CREATE on an existing name, the kernel must forget that it took the name for
// absent. The notification waits for the directory lock the CREATE holds until our reply is
// processed, so it is sent from the blocking pool.
void Overlay::forget_negative_entry(fs::NodeId parent, std::string_view name) {
    if (!session || !executor) return;
    executor->run_blocking([se = session, parent, name = std::string(name)] {
        fuse_lowlevel_notify_inval_entry(se, parent, name.c_str(), name.size());
    });
}

// Attributes only (offset -1): the data did not change, so the kernel's pages stay valid, and no
// page lock is waited for. From the blocking pool all the same: a notification is a write to
// /dev/fuse, and the caller may be a loop or the migrator.
void Overlay::attributes_changed(fs::NodeId node) {
    if (!session || !executor) return;
    executor->run_blocking([se = session, node] {
        int err = fuse_lowlevel_notify_inval_inode(se, node, -1, 0);
        // ENOENT: the kernel forgot the inode meanwhile, nothing to invalidate.
        if (err != 0 && err != -ENOENT)
            RFS_LOG_DEBUG("cannot tell the kernel that inode {} changed: {}", node,
                          std::strerror(-err));
    });
}

#ifdef RFS_TEST_FAULTS
bool set_test_fault(std::string_view name, fs::LocalFs& fs) {
    if (name == "throw_in_open") {
        g_test_fault = TestFault::throw_in_open;
        fs.set_observer(&g_throw_on_open);
    } else if (name == "throw_in_fsync") {
        g_test_fault = TestFault::throw_in_fsync;
    } else if (name == "lose_readdirplus_reply") {
        g_test_fault = TestFault::lose_readdirplus_reply;
    } else {
        return test_faults::arm(name); // a C library call made to fail
    }
    return true;
}
#endif

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
