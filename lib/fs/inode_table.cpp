#include "lib/fs/inode_table.hpp"

namespace rfs::fs {

InodeTable::InodeTable(UniqueFd root_fd, const struct stat& st)
    : root_(std::make_shared<Inode>(kRootNodeId, SrcId{st.st_dev, st.st_ino}, std::move(root_fd),
                                    st.st_mode & S_IFMT)) {
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
