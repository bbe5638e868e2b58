// Backoff delays and the transient-failure rule (see retry_policy.hpp).
#include "lib/riak/retry_policy.hpp"

#include <algorithm>
#include <cerrno>

namespace rfs::riak {

std::chrono::milliseconds RetryPolicy::delay(unsigned attempt, std::mt19937_64& rng) const {
    if (attempt == 0) return std::chrono::milliseconds(0);
    const unsigned shift = std::min(attempt - 1, 20u);
    const auto step = std::min<std::int64_t>(max_delay.count(), base_delay.count() << shift);
    std::uniform_int_distribution<std::int64_t> jitter(0, step / 2);
    return std::chrono::milliseconds(step - step / 2 + jitter(rng));
}

bool is_transient(const Error& error) noexcept {
    switch (error.code) {
    case Errc::connection_refused:
    case Errc::connection_reset:
    case Errc::timeout:
    case Errc::truncated_response:
        return true;
    case Errc::tls_failed:
        // Nothing reached the node (no session was made), and another node may be set up
        // right: the attempts, bounded by max_attempts, go to the others first.
        return true;
    case Errc::server_error:
        // 503: timeouts and unsatisfied quorums; 500 overload/insufficient_vnodes: EAGAIN.
        return error.http_status == 503 || error.sys_errno == EAGAIN;
    default:
        return false;
    }
}

} // namespace rfs::riak
