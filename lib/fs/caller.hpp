// What the process behind a request may do, decided as the kernel decides it for a native call.
//
// With allow_other the daemon acts as root for callers who are not: the kernel checks most of
// their access (default_permissions), but some decisions are left to the file system and must be
// taken here for the caller, not for the daemon: clearing set-user-ID and set-group-ID bits on a
// write, truncate or O_TRUNC open by a caller without CAP_FSETID; showing trusted.* extended
// attribute names only to callers with CAP_SYS_ADMIN; opening an existing file that a CREATE met
// (the kernel believed the name absent and checked nothing on it).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <string_view>
#include <vector>

namespace rfs::fs {

// Linux capability numbers (linux/capability.h).
inline constexpr int kCapFsetid = 4;
inline constexpr int kCapSysAdmin = 21;

struct Caller {
    uid_t uid = 0;
    gid_t gid = 0;
    pid_t pid = 0;             // the calling thread (FUSE sends the thread id); 0 if unknown
    std::vector<gid_t> groups; // supplementary groups, when the decision needs them
    mode_t umask = 0;          // the caller's umask, when the kernel sends it (FUSE_CAP_DONT_MASK)
    // Supplementary groups cost a read of /proc, so a request's Caller is made without them and
    // with_groups() asks `load_groups` (if set) for them only when a decision needs them.
    // `source` is whatever the loader needs (the daemon: its fuse_req_t).
    void (*load_groups)(const void* source, std::vector<gid_t>& out) = nullptr;
    const void* source = nullptr;
};

// `caller` with its supplementary groups filled in.
Caller with_groups(const Caller& caller);

// True if thread `pid` has capability `cap` in its effective set (/proc/PID/status, CapEff).
// An unreadable or vanished process has none: every decision made from this fails closed.
bool has_capability(pid_t pid, int cap);

// The set-ID bits (S_ISUID | S_ISGID, possibly 0) that a write or truncate of a file whose
// attributes are `st` by `caller` must clear, as Linux's setattr_should_drop_suidgid() decides:
// set-user-ID always, set-group-ID when group-execute is set or the caller is outside the file's
// group; only on regular files, and only for callers without CAP_FSETID. The capability is read
// only when there is a bit to clear, so the common case costs nothing.
mode_t setid_bits_to_clear(const struct stat& st, const Caller& caller);

// Removes from a listxattr result (names, each NUL-terminated) those the caller may not see:
// trusted.* without CAP_SYS_ADMIN, and `hidden` names (riakfs's own) for everyone. Returns the
// new length; the kept names stay in order at the start of `list`.
std::size_t filter_xattr_names(char* list, std::size_t size, const Caller& caller,
                               bool (*hidden)(std::string_view name) = nullptr);

// Switches the calling thread's file-system credentials (fsuid, fsgid, supplementary groups) to
// the caller's for the object's lifetime, with raw per-thread system calls (glibc's setgroups
// would change every thread of the daemon). A nonzero fsuid drops the file-system capabilities
// (CAP_DAC_OVERRIDE, CAP_FOWNER, ...), so system calls made meanwhile are checked exactly as the
// caller's own, ACLs included. ok() is false if a switch failed; then the thread is back to its
// own credentials and the caller must be refused.
class ScopedFsCredentials {
public:
    explicit ScopedFsCredentials(const Caller& caller);
    ~ScopedFsCredentials();
    ScopedFsCredentials(const ScopedFsCredentials&) = delete;
    ScopedFsCredentials& operator=(const ScopedFsCredentials&) = delete;
    bool ok() const { return ok_; }

private:
    void restore();
    bool ok_ = false;
    bool switched_ = false;
    uid_t saved_uid_;
    gid_t saved_gid_;
    std::vector<gid_t> saved_groups_;
};

} // namespace rfs::fs
