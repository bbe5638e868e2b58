#include "lib/migrate/drain_pacing.hpp"

#include <algorithm>
#include <tuple>

namespace rfs::migrate {

RateLimiter::RateLimiter(std::uint64_t rate, Clock::time_point now)
    : rate_(rate), tokens_(static_cast<double>(rate)), last_(now) {}

void RateLimiter::refill(Clock::time_point now) {
    if (now <= last_) return;
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(static_cast<double>(rate_), tokens_ + elapsed * static_cast<double>(rate_));
    last_ = now;
}

void RateLimiter::set_rate(std::uint64_t rate, Clock::time_point now) {
    refill(now);
    // Coming from unlimited, the bucket starts full; otherwise what it holds is kept, within the
    // new bucket, and a debt made at a high rate is paid within a minute at the new one.
    const double cap = static_cast<double>(rate);
    tokens_ = rate_ == 0 ? cap : std::clamp(tokens_, -60 * cap, cap);
    rate_ = rate;
    last_ = now;
}

RateLimiter::Clock::time_point RateLimiter::ready_at(std::uint64_t amount, Clock::time_point now) {
    if (rate_ == 0) return now;
    refill(now);
    // More than the bucket holds passes once it is full.
    const double need = std::min(static_cast<double>(amount), static_cast<double>(rate_));
    if (tokens_ >= need) return now;
    const double seconds = (need - tokens_) / static_cast<double>(rate_);
    return now +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)) +
           Clock::duration(1); // never a hair early: a wake-up at that instant finds it ready
}

void RateLimiter::take(std::uint64_t amount, Clock::time_point now) {
    if (rate_ == 0) return;
    refill(now);
    tokens_ -= static_cast<double>(amount);
}

std::string_view to_string(DrainOrder order) {
    switch (order) {
    case DrainOrder::path:
        return "path";
    case DrainOrder::size:
        return "size";
    case DrainOrder::atime:
        return "atime";
    }
    return "?";
}

std::optional<DrainOrder> parse_drain_order(std::string_view text) {
    for (DrainOrder order : {DrainOrder::path, DrainOrder::size, DrainOrder::atime})
        if (text == to_string(order)) return order;
    return std::nullopt;
}

void order_candidates(std::vector<DrainCandidate>& files, DrainOrder order) {
    switch (order) {
    case DrainOrder::path:
        std::sort(files.begin(), files.end(),
                  [](const DrainCandidate& a, const DrainCandidate& b) { return a.path < b.path; });
        break;
    case DrainOrder::size:
        std::sort(files.begin(), files.end(), [](const DrainCandidate& a, const DrainCandidate& b) {
            return std::tie(b.size, a.path) < std::tie(a.size, b.path);
        });
        break;
    case DrainOrder::atime:
        std::sort(files.begin(), files.end(), [](const DrainCandidate& a, const DrainCandidate& b) {
            return std::tie(a.atime_ns, a.path) < std::tie(b.atime_ns, b.path);
        });
        break;
    }
}

void RateMeter::sample(Clock::time_point now, std::uint64_t files, std::uint64_t bytes) {
    samples_.push_back({now, files, bytes});
    // Keep the newest sample that is at least a window old, as the window's start.
    while (samples_.size() > 2 && now - samples_[1].at >= window_)
        samples_.erase(samples_.begin());
}

double RateMeter::per_second(std::uint64_t Sample::*field) const {
    if (samples_.size() < 2) return 0;
    const auto& first = samples_.front();
    const auto& last = samples_.back();
    const double seconds = std::chrono::duration<double>(last.at - first.at).count();
    if (seconds <= 0 || last.*field < first.*field) return 0;
    return static_cast<double>(last.*field - first.*field) / seconds;
}

double RateMeter::files_per_second() const {
    return per_second(&Sample::files);
}

double RateMeter::bytes_per_second() const {
    return per_second(&Sample::bytes);
}

bool ForegroundWatch::active(std::uint64_t requests, Clock::time_point now) {
    if (requests != seen_) {
        seen_ = requests;
        last_ = now;
        any_ = true;
    }
    return any_ && now - last_ < window_;
}

} // namespace rfs::migrate
