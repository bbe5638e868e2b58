// Lock-free counters and latency histograms for the Prometheus endpoint (lib/metrics/README.md).
//
// Recording is what hot paths do (a FUSE request, a Riak call): a few relaxed atomic additions,
// no lock, no allocation, no floating point. Reading (a scrape, on the endpoint's own thread)
// sums what it finds; a snapshot taken while others record may be a moment behind on some
// buckets, never wrong by more than the requests in flight.
//
// Buckets are fixed and log-scale: bucket i counts durations up to 2^(i + kFirstBucketLog2) ns,
// doubling from 4.096 us to about 17.2 s, then +Inf. Choosing a bucket is one bit_width, so the
// cost does not depend on the duration; doubling bounds are fine enough to tell a p99 that moved
// by 2x.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <ctime>

namespace rfs::metrics {

// Nanoseconds on CLOCK_MONOTONIC (a vDSO call, no system call).
inline std::uint64_t now_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

inline constexpr unsigned kFirstBucketLog2 = 12;            // 4096 ns
inline constexpr std::size_t kFiniteBuckets = 23;           // up to 2^34 ns (17.18 s)
inline constexpr std::size_t kBuckets = kFiniteBuckets + 1; // and +Inf

// The upper bound of finite bucket i, in seconds (the `le` label).
inline double bucket_upper_seconds(std::size_t i) {
    return static_cast<double>(std::uint64_t{1} << (i + kFirstBucketLog2)) / 1e9;
}

// The bucket a duration of `ns` nanoseconds falls in (kFiniteBuckets for +Inf).
constexpr std::size_t bucket_of(std::uint64_t ns) noexcept {
    // ns <= 2^k  <=>  bit_width(ns - 1) <= k (ns = 0 lands in the first bucket).
    unsigned width = static_cast<unsigned>(std::bit_width(ns == 0 ? 0 : ns - 1));
    return width <= kFirstBucketLog2
               ? 0
               : std::min<std::size_t>(width - kFirstBucketLog2, kFiniteBuckets);
}

// What a histogram held at one moment: per-bucket counts (not cumulative), their sum and total.
struct HistogramSnapshot {
    std::array<std::uint64_t, kBuckets> buckets{};
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;

    HistogramSnapshot& operator+=(const HistogramSnapshot& other) {
        for (std::size_t i = 0; i < kBuckets; ++i)
            buckets[i] += other.buckets[i];
        count += other.count;
        sum_ns += other.sum_ns;
        return *this;
    }
};

class LatencyHistogram {
public:
    void record(std::uint64_t ns) noexcept {
        buckets_[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
        sum_ns_.fetch_add(ns, std::memory_order_relaxed);
    }

    // The count is the sum of the buckets, so a scrape never shows a _count that disagrees
    // with the +Inf bucket.
    void add_to(HistogramSnapshot& out) const noexcept {
        for (std::size_t i = 0; i < kBuckets; ++i) {
            std::uint64_t n = buckets_[i].load(std::memory_order_relaxed);
            out.buckets[i] += n;
            out.count += n;
        }
        out.sum_ns += sum_ns_.load(std::memory_order_relaxed);
    }

private:
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
    std::atomic<std::uint64_t> sum_ns_{0};
};

// A monotonically increasing count.
class Counter {
public:
    void add(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

} // namespace rfs::metrics
