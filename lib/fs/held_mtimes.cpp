#include "lib/fs/held_mtimes.hpp"

namespace rfs::fs {

void HeldMtimes::begin(SrcId id, const timespec& mtime) {
    std::lock_guard lock(mu_);
    auto [it, added] = held_.try_emplace(id, Held{mtime, 0});
    ++it->second.count;
    // Under the lock, so that a reader holding it sees the map and the state agree; and before
    // the caller changes the file (it returns first), so that a stat that sees the change reads
    // the new state after it.
    state_.fetch_add(kEvent + 1, std::memory_order_seq_cst);
}

bool HeldMtimes::end(SrcId id) {
    std::lock_guard lock(mu_);
    auto it = held_.find(id);
    if (it == held_.end()) return false;
    if (--it->second.count == 0) held_.erase(it);
    state_.fetch_add(kEvent - 1, std::memory_order_seq_cst);
    return true;
}

bool HeldMtimes::apply(struct stat* st) const {
    auto it = held_.find(SrcId{st->st_dev, st->st_ino});
    if (it == held_.end()) return false;
    st->st_mtim = it->second.mtime;
    return true;
}

std::size_t HeldMtimes::held() const {
    std::lock_guard lock(mu_);
    return held_.size();
}

} // namespace rfs::fs
