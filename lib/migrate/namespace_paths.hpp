// Small helpers shared by the namespace records' writer (namespace_sync) and reader (restore):
// paths relative to SOURCE, record keys, and local entries as layout::DirEntry.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/common/timespec_ns.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/layout/dir_record.hpp"

namespace rfs::migrate {

// "a/b" -> "a", "a" -> "" (SOURCE).
inline std::string parent_of(std::string_view rel) {
    auto slash = rel.rfind('/');
    return slash == std::string_view::npos ? std::string() : std::string(rel.substr(0, slash));
}

inline std::string child_of(std::string_view rel_dir, std::string_view name) {
    return rel_dir.empty() ? std::string(name) : std::string(rel_dir) + "/" + std::string(name);
}

// The inverse of layout::dir_record_key: "/" -> "", "/a/b" -> "a/b".
inline std::string rel_of_key(std::string_view key) {
    return key.size() <= 1 ? std::string() : std::string(key.substr(1));
}

// For messages: the directory as its record key names it ("/" for SOURCE).
inline std::string display_dir(std::string_view rel_dir) {
    return layout::dir_record_key(rel_dir);
}

// Opens the directory `rel` ("" = SOURCE) beneath SOURCE: no symlink followed, nothing outside
// SOURCE reached. -1 with errno (ENOTDIR when it is not a directory). O_NOATIME when allowed:
// listing a directory to record it must not change the atime its parent's record holds.
inline int open_dir_beneath(int root, const std::string& rel) {
    open_how how{};
    how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const char* path = rel.empty() ? "." : rel.c_str();
    int fd = static_cast<int>(::syscall(SYS_openat2, root, path, &how, sizeof how));
    if (fd < 0 && errno == EPERM) { // not the owner, without CAP_FOWNER
        how.flags &= ~static_cast<std::uint64_t>(O_NOATIME);
        fd = static_cast<int>(::syscall(SYS_openat2, root, path, &how, sizeof how));
    }
    return fd;
}

// lstat of `rel` beneath SOURCE (no symlink followed on the way): 0, or an errno.
inline int lstat_beneath(int root, const std::string& rel, struct stat* st) {
    open_how how{};
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how)));
    if (!fd || ::fstat(fd.get(), st) != 0) return errno;
    return 0;
}

// The id shared by the names of one file, unless a restore mapped it (AuxKind::inode_id).
inline std::string local_inode_id(const struct stat& st) {
    return std::to_string(static_cast<std::uint64_t>(st.st_dev)) + ":" +
           std::to_string(static_cast<std::uint64_t>(st.st_ino));
}

// The entry of a local object, without `target` and `inode` (the caller reads those).
inline layout::DirEntry entry_of(const struct stat& st) {
    layout::DirEntry e;
    switch (st.st_mode & S_IFMT) {
    case S_IFDIR:
        e.type = layout::EntryType::dir;
        break;
    case S_IFLNK:
        e.type = layout::EntryType::lnk;
        break;
    case S_IFIFO:
        e.type = layout::EntryType::fifo;
        break;
    case S_IFCHR:
        e.type = layout::EntryType::chr;
        break;
    case S_IFBLK:
        e.type = layout::EntryType::blk;
        break;
    case S_IFSOCK:
        e.type = layout::EntryType::sock;
        break;
    default:
        e.type = layout::EntryType::reg;
        break;
    }
    e.mode = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.mtime_ns = ns_of(st.st_mtim);
    e.ctime_ns = ns_of(st.st_ctim);
    e.atime_ns = ns_of(st.st_atim);
    e.size = static_cast<std::uint64_t>(st.st_size);
    e.nlink = static_cast<std::uint32_t>(st.st_nlink);
    if (e.type == layout::EntryType::chr || e.type == layout::EntryType::blk) e.rdev = st.st_rdev;
    return e;
}

// The part count kept in AuxKind::dir_record (0 when unreadable).
inline std::uint32_t parse_parts(std::string_view text) {
    std::uint32_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    return ec == std::errc() && end == text.data() + text.size() ? n : 0;
}

} // namespace rfs::migrate
