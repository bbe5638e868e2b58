#include "lib/fs/inode_table.hpp"

#include "lib/common/log.hpp"

#include <sys/sysmacros.h>

#include <algorithm>

namespace rfs::fs {

ino_t InoMap::map(dev_t dev, ino_t ino) {
    if (dev == home_) return ino;
    constexpr std::uint64_t kLowMask = (std::uint64_t(1) << kShift) - 1;
    constexpr size_t kMaxIndex = (std::uint64_t(1) << (64 - kShift)) - 1;
    std::lock_guard lock(mu_);
    auto it = std::find(others_.begin(), others_.end(), dev);
    size_t index = static_cast<size_t>(it - others_.begin()) + 1;
    if (it == others_.end() && others_.size() < kMaxIndex) others_.push_back(dev);
    if (index > kMaxIndex) index = kMaxIndex; // 65535 devices in one tree: share the last index
    if ((ino & ~kLowMask) != 0 && !warned_) {
        // A file system using the top bits itself (overlayfs xino, some network file systems):
        // XOR still keeps its numbers distinct from each other, only not from other devices'.
        warned_ = true;
        RFS_LOG_WARN("inode {} on device {}:{} uses the top 16 bits; inode numbers of different "
                     "file systems inside SOURCE may coincide",
                     ino, major(dev), minor(dev));
    }
    return ino ^ (std::uint64_t(index) << kShift);
}

InodeTable::InodeTable(UniqueFd root_fd, const struct stat& st)
    : root_(std::make_shared<Inode>(kRootNodeId, SrcId{st.st_dev, st.st_ino}, std::move(root_fd),
                                    st.st_mode & S_IFMT)),
      inos_(st.st_dev) {
    root_->nlookup_ = 1;
    by_id_.emplace(kRootNodeId, root_);
    by_src_.emplace(root_->src(), kRootNodeId);
}

std::shared_ptr<Inode> InodeTable::add_lookup(UniqueFd fd, const struct stat& st) {
    SrcId src{st.st_dev, st.st_ino};
    std::lock_guard lock(mu_);
    if (auto it = by_src_.find(src); it != by_src_.end()) {
        auto& inode = by_id_.at(it->second);
        ++inode->nlookup_;
        return inode;
    }
    NodeId id = next_id_++;
    auto inode = std::make_shared<Inode>(id, src, std::move(fd), st.st_mode & S_IFMT);
    inode->nlookup_ = 1;
    by_id_.emplace(id, inode);
    by_src_.emplace(src, id);
    return inode;
}

std::shared_ptr<Inode> InodeTable::get(NodeId id) const {
    if (id == kRootNodeId) return root_;
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
}

bool InodeTable::forget(NodeId id, std::uint64_t n) {
    if (id == kRootNodeId) return true;
    std::shared_ptr<Inode> dropped; // destroyed (fd closed) outside the lock
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return false;
    Inode& inode = *it->second;
    // An underflow means the kernel and we disagree; dropping the inode is the safe reading.
    bool ok = inode.nlookup_ >= n;
    inode.nlookup_ = ok ? inode.nlookup_ - n : 0;
    if (inode.nlookup_ == 0) {
        by_src_.erase(inode.src());
        dropped = std::move(it->second);
        by_id_.erase(it);
    }
    return ok;
}

size_t InodeTable::size() const {
    std::lock_guard lock(mu_);
    return by_id_.size();
}

std::uint64_t InodeTable::lookup_count(NodeId id) const {
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    return it == by_id_.end() ? 0 : it->second->nlookup_;
}

} // namespace rfs::fs
