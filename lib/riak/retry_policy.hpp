// When and how long to wait before trying a request again.
//
// Only idempotent requests are retried (see client.hpp for which requests are), and only after
// failures that say nothing about the data: connection refused/reset, timeouts, truncated
// responses, 503 (Riak's "request timed out" and quorum failures) and 500 overload or
// insufficient_vnodes. Each retry goes to another healthy node when there is one. The delay is
// exponential with "equal jitter": half of the exponential step is fixed, half random, so
// clients that failed together do not retry together.
// Plain values; the random generator is the caller's (one per loop).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

#include "lib/riak/errors.hpp"

namespace rfs::riak {

struct RetryPolicy {
    unsigned max_attempts = 4; // including the first; 1 = never retry
    std::chrono::milliseconds base_delay{20};
    std::chrono::milliseconds max_delay{1000};

    // The wait before attempt number `attempt` (1 = the first retry): uniformly random in
    // [d/2, d] with d = min(max_delay, base_delay * 2^(attempt-1)).
    std::chrono::milliseconds delay(unsigned attempt, std::mt19937_64& rng) const;
};

// True for failures after which an idempotent request may be sent again.
bool is_transient(const Error& error) noexcept;

} // namespace rfs::riak
