#include "lib/fs/caller.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rfs::fs {

Caller with_groups(const Caller& caller) {
    Caller out = caller;
    if (out.groups.empty() && out.load_groups) out.load_groups(out.source, out.groups);
    return out;
}

bool has_capability(pid_t pid, int cap) {
    if (pid <= 0) return false;
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    const char* line = std::strstr(buf, "\nCapEff:");
    if (!line) return false;
    char* end = nullptr;
    unsigned long long caps = std::strtoull(line + 8, &end, 16);
    if (end == line + 8) return false;
    return (caps >> cap) & 1u;
}

namespace {

bool in_group(const Caller& caller, gid_t gid) {
    return caller.gid == gid ||
           std::find(caller.groups.begin(), caller.groups.end(), gid) != caller.groups.end();
}

} // namespace

mode_t setid_bits_to_clear(const struct stat& st, const Caller& caller) {
    if (!S_ISREG(st.st_mode)) return 0;
    mode_t kill = 0;
    if (st.st_mode & S_ISUID) kill |= S_ISUID;
    if (st.st_mode & S_ISGID) {
        // Without group-execute the bit means mandatory locking, kept for group members.
        if ((st.st_mode & S_IXGRP) || !in_group(caller, st.st_gid)) kill |= S_ISGID;
    }
    if (kill == 0 || has_capability(caller.pid, kCapFsetid)) return 0;
    return kill;
}

std::size_t filter_xattr_names(char* list, std::size_t size, const Caller& caller,
                               bool (*hidden)(std::string_view name)) {
    constexpr std::string_view kTrusted = "trusted.";
    int may_see_trusted = -1; // decided at the first trusted.* name: one /proc read at most
    std::size_t out = 0;
    for (std::size_t at = 0; at < size;) {
        std::size_t len = ::strnlen(list + at, size - at);
        std::string_view name(list + at, len);
        std::size_t next = at + len + 1;
        bool keep = !(hidden && hidden(name));
        if (keep && name.substr(0, kTrusted.size()) == kTrusted) {
            if (may_see_trusted < 0)
                may_see_trusted = has_capability(caller.pid, kCapSysAdmin) ? 1 : 0;
            keep = may_see_trusted == 1;
        }
        if (keep) {
            std::size_t bytes = std::min(next, size) - at;
            if (out != at) std::memmove(list + out, list + at, bytes);
            out += bytes;
        }
        at = next;
    }
    return out;
}

ScopedFsCredentials::ScopedFsCredentials(const Caller& caller) {
    // setfsuid/setfsgid answer the previous value whatever happens; asking again with an
    // invalid id (-1) reads the current one back, which tells whether the switch took.
    saved_uid_ = static_cast<uid_t>(::syscall(SYS_setfsuid, -1));
    saved_gid_ = static_cast<gid_t>(::syscall(SYS_setfsgid, -1));
    long n = ::syscall(SYS_getgroups, 0, nullptr);
    if (n < 0) return;
    saved_groups_.resize(static_cast<std::size_t>(n));
    if (n > 0 && ::syscall(SYS_getgroups, n, saved_groups_.data()) != n) return;
    switched_ = true;
    if (::syscall(SYS_setgroups, caller.groups.size(), caller.groups.data()) != 0) {
        restore();
        return;
    }
    ::syscall(SYS_setfsgid, caller.gid);
    ::syscall(SYS_setfsuid, caller.uid);
    ok_ = static_cast<gid_t>(::syscall(SYS_setfsgid, -1)) == caller.gid &&
          static_cast<uid_t>(::syscall(SYS_setfsuid, -1)) == caller.uid;
    if (!ok_) restore();
}

ScopedFsCredentials::~ScopedFsCredentials() {
    if (switched_) restore();
}

void ScopedFsCredentials::restore() {
    ::syscall(SYS_setfsuid, saved_uid_);
    ::syscall(SYS_setfsgid, saved_gid_);
    if (::syscall(SYS_setgroups, saved_groups_.size(), saved_groups_.data()) != 0) {
        // The thread would keep the caller's groups: nothing safe is left to do but stop.
        std::fputs("riakfs: fatal: cannot restore the daemon's groups\n", stderr);
        std::abort();
    }
    switched_ = false;
}

} // namespace rfs::fs
