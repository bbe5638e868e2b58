#include "lib/migrate/lookup_prefetch.hpp"

namespace rfs::migrate {

bool LookupPrefetch::want(std::uint64_t node) {
    std::lock_guard lock(mu_);
    if (pause_left_ > 0) {
        if (--pause_left_ == 0) recent_.fill(0); // a fresh window: old fetches do not count
        return false;
    }
    if (fetched_ == kWindow) {
        // A window is full: judge it. The last few fetches may not have been opened yet; with
        // kMinHits well below kWindow that costs nothing to an application that opens them.
        bool pays = hits_ >= kMinHits;
        fetched_ = 0;
        hits_ = 0;
        if (!pays) {
            pause_left_ = kPause - 1; // this lookup is the first skipped
            return false;
        }
    }
    recent_[next_] = node;
    next_ = (next_ + 1) % kWindow;
    ++fetched_;
    return true;
}

void LookupPrefetch::opened(std::uint64_t node) {
    std::lock_guard lock(mu_);
    for (auto& n : recent_) {
        if (n == node) {
            n = 0; // one hit per fetch
            ++hits_;
            return;
        }
    }
}

bool LookupPrefetch::paused() const {
    std::lock_guard lock(mu_);
    return pause_left_ > 0;
}

} // namespace rfs::migrate
