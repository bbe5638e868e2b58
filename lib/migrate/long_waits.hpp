// Work kept waiting for long. The migrator's copies and removals wait, by design, for the work
// they must not overtake (Migrator::copy_must_wait, next_removal): a copy for the move of the
// copy still at its key, a removal for the copy writing its key. Each such wait should end by
// itself; one that does not leaves a copy or a removal pending in `riakfsctl status` for good,
// with nothing failing and so nothing in the log. The migrator therefore looks at what waits
// now and then: a wait seen for longer than a threshold is logged once, with what it waits for,
// and its end once too.
//
// Not thread-safe: used on the migrator's loop only.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rfs::migrate {

class LongWaits {
public:
    using Clock = std::chrono::steady_clock;

    // One look: begin(), then waiting() for each piece of work that waits now, then end().
    void begin(Clock::time_point now) {
        now_ = now;
        ++look_;
    }
    // `what` (a copy or a removal of a path, say) waits now. True exactly once per wait: when
    // it has been seen waiting for at least `threshold` (log it then).
    bool waiting(const std::string& what, Clock::duration threshold) {
        auto [it, added] = waits_.try_emplace(what, Wait{now_, look_, false});
        Wait& w = it->second;
        w.look = look_;
        if (w.logged || now_ - w.since < threshold) return false;
        w.logged = true;
        return true;
    }
    // Ends the look: work not seen waiting in it waits no longer. Returns the ended waits that
    // were logged, with how long each lasted (at least), so that their end is logged too.
    std::vector<std::pair<std::string, Clock::duration>> end() {
        std::vector<std::pair<std::string, Clock::duration>> ended;
        for (auto it = waits_.begin(); it != waits_.end();) {
            if (it->second.look == look_) {
                ++it;
                continue;
            }
            if (it->second.logged) ended.emplace_back(it->first, now_ - it->second.since);
            it = waits_.erase(it);
        }
        return ended;
    }
    // The waits seen for longer than the threshold (those waiting() said to log).
    std::size_t long_ones() const {
        std::size_t n = 0;
        for (const auto& [what, w] : waits_)
            n += w.logged;
        return n;
    }

private:
    struct Wait {
        Clock::time_point since; // the first look that saw it
        unsigned long look = 0;  // the last look that saw it
        bool logged = false;
    };
    std::unordered_map<std::string, Wait> waits_;
    Clock::time_point now_{};
    unsigned long look_ = 0;
};

} // namespace rfs::migrate
