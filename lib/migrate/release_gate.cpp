#include "lib/migrate/release_gate.hpp"

namespace rfs::migrate {

void ReleaseGate::unpin(FileId id) {
    std::lock_guard lock(mu_);
    auto it = pins_.find(id);
    if (it == pins_.end()) return;
    if (--it->second == 0) pins_.erase(it);
}

bool ReleaseGate::begin_release(FileId id) {
    std::lock_guard lock(mu_);
    if (pins_.count(id) || releasing_.count(id)) return false;
    releasing_.insert(id);
    return true;
}

void ReleaseGate::end_release(FileId id) {
    {
        std::lock_guard lock(mu_);
        releasing_.erase(id);
    }
    released_cv_.notify_all();
}

std::size_t ReleaseGate::pinned_files() const {
    std::lock_guard lock(mu_);
    return pins_.size();
}

} // namespace rfs::migrate
