#include "lib/migrate/tree_walk.hpp"

#include "lib/common/unique_fd.hpp"
#include "lib/migrate/namespace_paths.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace rfs::migrate {

namespace {

constexpr long kFuseSuperMagic = 0x65735546;

struct Pending {
    std::string path;
    dev_t parent_dev;
};

} // namespace

int open_file_beneath(int source_root, const std::string& rel, int flags) {
    open_how how{};
    // O_NONBLOCK: a FIFO never blocks the open. openat2 refuses it beside O_PATH.
    const int nonblock = (flags & O_PATH) ? 0 : O_NONBLOCK;
    how.flags = static_cast<std::uint64_t>(flags | O_NOFOLLOW | nonblock | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const char* path = rel.empty() ? "." : rel.c_str();
    return static_cast<int>(::syscall(SYS_openat2, source_root, path, &how, sizeof how));
}

bool walk_enters(int fd, const struct stat& st, dev_t parent_dev, dev_t skip_dev, ino_t skip_ino) {
    struct statfs fs_st;
    if (st.st_dev != parent_dev && ::fstatfs(fd, &fs_st) == 0 && fs_st.f_type == kFuseSuperMagic)
        return false;
    return !(skip_ino != 0 && st.st_dev == skip_dev && st.st_ino == skip_ino);
}

int walk_tree(int source_root, const std::string& rel, const WalkOptions& options,
              const std::function<bool(const WalkEntry&)>& visit,
              const std::function<void(const std::string&, int)>& on_error) {
    struct stat root_st;
    if (::fstat(source_root, &root_st) != 0) return errno;
    WalkEntry top;
    top.path = rel;
    {
        UniqueFd fd(open_file_beneath(source_root, rel, O_PATH));
        if (!fd) return errno == ELOOP ? ENOENT : errno;
        if (::fstat(fd.get(), &top.st) != 0) return errno;
    }
    top.is_dir = S_ISDIR(top.st.st_mode);
    if (!visit(top)) return 0;
    if (!top.is_dir) return 0;

    std::vector<Pending> dirs{{rel, root_st.st_dev}};
    while (!dirs.empty()) {
        Pending dir = std::move(dirs.back());
        dirs.pop_back();
        int fd = open_dir_beneath(source_root, dir.path);
        if (fd < 0) {
            if (errno != ENOENT && errno != ENOTDIR) on_error(dir.path, errno);
            continue;
        }
        DIR* listing = ::fdopendir(fd);
        if (!listing) {
            on_error(dir.path, errno);
            ::close(fd);
            continue;
        }
        struct stat dir_st;
        if (::fstat(fd, &dir_st) != 0 ||
            !walk_enters(fd, dir_st, dir.parent_dev, options.skip_dev, options.skip_ino)) {
            ::closedir(listing);
            continue;
        }
        std::vector<WalkEntry> entries;
        while (dirent* e = ::readdir(listing)) {
            std::string_view name = e->d_name;
            if (name == "." || name == "..") continue;
            WalkEntry entry;
            entry.path = child_of(dir.path, name);
            if (::fstatat(fd, e->d_name, &entry.st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            entry.is_dir = S_ISDIR(entry.st.st_mode);
            // Skipped directories are not even visited (state_dir is not SOURCE's content).
            if (entry.is_dir && options.skip_ino != 0 && entry.st.st_dev == options.skip_dev &&
                entry.st.st_ino == options.skip_ino)
                continue;
            entries.push_back(std::move(entry));
        }
        ::closedir(listing);
        std::sort(entries.begin(), entries.end(),
                  [](const WalkEntry& a, const WalkEntry& b) { return a.path < b.path; });
        std::vector<Pending> subdirs;
        for (const auto& entry : entries) {
            if (!visit(entry)) return 0;
            if (entry.is_dir) subdirs.push_back({entry.path, dir_st.st_dev});
        }
        // Depth first, in order: the stack takes them last to first.
        for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it)
            dirs.push_back(std::move(*it));
    }
    return 0;
}

} // namespace rfs::migrate
