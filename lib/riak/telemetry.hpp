// What a Client reports for the metrics endpoint: requests and their latency by HTTP method,
// failures by kind, and each node's health. Shared between the Client's loop (which records)
// and any thread that reads (a scrape), so everything is atomic; recording takes no lock.
//
// Give one to ClientConfig::telemetry (null: nothing is recorded). Several Clients may share
// one: their counts add up, and a node both know is one entry.
#pragma once

#include "lib/metrics/histogram.hpp"
#include "lib/riak/errors.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace rfs::riak {

enum class CallMethod { get, put, post, head, del, other };
inline constexpr std::size_t kCallMethods = 6;
std::string_view to_string(CallMethod method); // "GET", "PUT", ...

class Telemetry {
public:
    // One node's health as the Client last saw it (a failed connection or ping marks it down,
    // any answer up). Stable address for the Telemetry's lifetime.
    struct NodeHealth {
        explicit NodeHealth(std::string url) : url(std::move(url)) {}
        const std::string url; // "http://host:port" (node URLs never carry credentials)
        std::atomic<bool> up{true};
    };

    // Client's construction: the entry for `url`, made on first use.
    NodeHealth& node(const std::string& url);

    // A request (all its attempts) finished after `ns` nanoseconds, failing with `failure`
    // (Errc::ok: it got an answer, whatever its status; `status` is then its HTTP status).
    void record(CallMethod method, std::uint64_t ns, Errc failure, unsigned status) noexcept;

    // For the endpoint (any thread).
    metrics::HistogramSnapshot latency(CallMethod method) const;
    // Requests that failed with `code`; Errc::server_error also counts answers with a 5xx.
    std::uint64_t failures(Errc code) const;
    void for_each_node(const std::function<void(const std::string& url, bool up)>& fn) const;

private:
    static constexpr std::size_t kErrcs = static_cast<std::size_t>(kLastErrc) + 1;
    std::array<metrics::LatencyHistogram, kCallMethods> latency_;
    std::array<metrics::Counter, kErrcs> failures_;
    mutable std::mutex nodes_mu_; // nodes_'s shape (entries are added, never removed)
    std::deque<NodeHealth> nodes_;
};

} // namespace rfs::riak
