#include "lib/migrate/lookup_prefetch.hpp"

#include <utility>

namespace rfs::migrate {

bool LookupPrefetch::want(std::uint64_t node) {
    std::lock_guard lock(mu_);
    if (pause_left_ > 0) {
        if (--pause_left_ == 0) { // a fresh window: old fetches do not count
            recent_.fill(0);
            found_.fill(std::nullopt);
        }
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
    for (unsigned i = 0; i < kWindow; ++i) {
        if (recent_[i] == node) { // looked up again before its open: the newer lookup counts
            recent_[i] = 0;
            found_[i].reset();
        }
    }
    recent_[next_] = node;
    found_[next_].reset();
    next_ = (next_ + 1) % kWindow;
    ++fetched_;
    return true;
}

void LookupPrefetch::found(std::uint64_t node, Found what, std::uint64_t generation) {
    std::lock_guard lock(mu_);
    if (generation != generation_) return; // a rename came between: the path may be stale
    for (unsigned i = 0; i < kWindow; ++i) {
        if (recent_[i] == node) {
            found_[i] = std::move(what);
            return;
        }
    }
}

std::optional<LookupPrefetch::Found> LookupPrefetch::opened(std::uint64_t node) {
    std::lock_guard lock(mu_);
    for (unsigned i = 0; i < kWindow; ++i) {
        if (recent_[i] == node) {
            recent_[i] = 0; // one hit per fetch
            ++hits_;
            return std::exchange(found_[i], std::nullopt);
        }
    }
    return std::nullopt;
}

void LookupPrefetch::forget_found() {
    std::lock_guard lock(mu_);
    ++generation_;
    found_.fill(std::nullopt);
}

std::uint64_t LookupPrefetch::generation() const {
    std::lock_guard lock(mu_);
    return generation_;
}

bool LookupPrefetch::paused() const {
    std::lock_guard lock(mu_);
    return pause_left_ > 0;
}

} // namespace rfs::migrate
