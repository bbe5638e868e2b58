// The background drain's pacing and ordering, kept apart from its thread so that they can be
// tested without one: a token bucket per limit (bytes per second, files per second) and the
// order in which the files found by the walk are handed to the migrator.
//
// Time is always passed in, never read here: the tests give the instants, and nothing in the
// logic depends on how long a test takes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rfs::migrate {

// A token bucket: `rate` tokens a second, holding at most one second's worth. An amount larger
// than the bucket passes once the bucket is full and leaves it in debt, so a file larger than
// one second of budget is never stuck, and the files after it wait for the debt to be paid.
// Rate 0 is unlimited. Not thread-safe: the drain's thread owns it.
class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;

    explicit RateLimiter(std::uint64_t rate = 0, Clock::time_point now = Clock::time_point{});
    // A new rate keeps the tokens held (within the new bucket; full when the limit was 0);
    // 0 lifts the limit.
    void set_rate(std::uint64_t rate, Clock::time_point now);
    std::uint64_t rate() const { return rate_; }

    // The instant from which `amount` may pass (`now` when it may at once). Takes nothing.
    Clock::time_point ready_at(std::uint64_t amount, Clock::time_point now);
    // Spends `amount` (the bucket may go below zero: see above).
    void take(std::uint64_t amount, Clock::time_point now);

private:
    void refill(Clock::time_point now);

    std::uint64_t rate_ = 0;
    double tokens_ = 0;
    Clock::time_point last_{};
};

enum class DrainOrder {
    path,  // bytewise order of the path relative to SOURCE (a directory's files together)
    size,  // largest first: the most space freed soonest in mode=move
    atime, // least recently read first: the coldest data leaves first
};

std::string_view to_string(DrainOrder order);
std::optional<DrainOrder> parse_drain_order(std::string_view text);

// A file the walk found that Riak does not hold yet.
struct DrainCandidate {
    std::string path; // relative to SOURCE
    std::uint64_t size = 0;
    std::int64_t atime_ns = 0;
};

// Sorts `files` into the order the drain hands them over; ties go by path, so the order is the
// same at every pass over the same tree.
void order_candidates(std::vector<DrainCandidate>& files, DrainOrder order);

// Copies per second over a sliding window, from samples of the migrator's cumulative counters.
class RateMeter {
public:
    using Clock = std::chrono::steady_clock;
    explicit RateMeter(std::chrono::seconds window = std::chrono::seconds(10)) : window_(window) {}
    void sample(Clock::time_point now, std::uint64_t files, std::uint64_t bytes);
    double files_per_second() const;
    double bytes_per_second() const;

private:
    struct Sample {
        Clock::time_point at;
        std::uint64_t files, bytes;
    };
    double per_second(std::uint64_t Sample::*field) const;

    std::chrono::seconds window_;
    std::vector<Sample> samples_; // oldest first, spanning at most window_
};

// How busy the applications keep the mount: the FUSE requests received so far. The FUSE loops
// bump it (one relaxed atomic addition per request); the drain reads it. Any thread.
class ForegroundActivity {
public:
    void note_request() noexcept { requests_.fetch_add(1, std::memory_order_relaxed); }
    std::uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> requests_{0};
};

// Whether applications are using the mount now: a request arrived within `window` of `now`.
// The drain yields while they are (DrainOptions::yield_in_flight): on 2 cores, each file it
// copies (read, hash, PUT, records, and in mode=move the release's fsyncs) takes CPU and disk
// from the requests served meanwhile. Fed from ForegroundActivity's counter; not thread-safe.
class ForegroundWatch {
public:
    using Clock = std::chrono::steady_clock;
    explicit ForegroundWatch(std::chrono::milliseconds window = std::chrono::milliseconds(200))
        : window_(window) {}

    // `requests`: ForegroundActivity::requests() at `now`.
    bool active(std::uint64_t requests, Clock::time_point now);
    std::chrono::milliseconds window() const { return window_; }

private:
    std::chrono::milliseconds window_;
    std::uint64_t seen_ = 0;
    bool any_ = false;         // a request was ever seen
    Clock::time_point last_{}; // when the count last moved
};

} // namespace rfs::migrate
