#include "lib/fs/close_policy.hpp"

#include <linux/magic.h>
#include <sys/vfs.h>

namespace rfs::fs {

bool close_never_fails(long f_type) {
    switch (static_cast<unsigned long>(f_type)) {
    case EXT4_SUPER_MAGIC: // also ext2 and ext3
    case XFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
    case RAMFS_MAGIC:
        return true;
    default:
        return false;
    }
}

bool ClosePolicy::needs_flush(dev_t dev, int fd) {
    std::lock_guard lock(mu_);
    for (const auto& [d, flush] : known_)
        if (d == dev) return flush;
    struct statfs sf;
    // Unknown if statfs fails: keep FLUSH, and ask again next time.
    if (::fstatfs(fd, &sf) != 0) return true;
    bool flush = !close_never_fails(sf.f_type);
    known_.emplace_back(dev, flush);
    return flush;
}

} // namespace rfs::fs
