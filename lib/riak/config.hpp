// Client configuration: the nodes (from URLs like http://127.0.0.1:8098 or https://node1:8098),
// TLS and credentials for a secured cluster, pool and pipeline sizes, timeouts, retry policy and
// the memory bounds. Plain values (the TLS context is shared and read-only): any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/riak/errors.hpp"
#include "lib/riak/retry_policy.hpp"

namespace rfs::riak {

class Telemetry;  // lib/riak/telemetry.hpp
class TlsContext; // lib/riak/tls.hpp

using Duration = std::chrono::steady_clock::duration;

struct NodeAddress {
    std::string host; // name or IP literal, without brackets
    std::uint16_t port = 8098;
    bool tls = false;                // https://: TLS, the certificate checked against `host`
    std::string host_header() const; // "host:port" ([v6]:port), the Host header sent
    std::string url() const;         // "http://host:port" or "https://host:port"
};

// "http://HOST[:PORT][/]" or "https://HOST[:PORT][/]" (port 8098 by default, Riak's HTTP port,
// for both; IPv6 literals in brackets), parsed by Boost.URL. Credentials in the URL, a query
// and paths other than "/" are refused (EINVAL): the client speaks to Riak's root, and
// credentials come from a file (security.hpp), never from a URL that logs and `ps` would show.
Result<NodeAddress> parse_node_url(std::string_view url);
// A comma-separated list, as given to "-o riak=URL[,URL...]". All nodes use one scheme: a
// cluster reached partly in clear would undo what TLS protects.
Result<std::vector<NodeAddress>> parse_node_list(std::string_view urls);

struct ClientConfig {
    std::vector<NodeAddress> nodes;
    // Connections per node. Riak serves one request at a time per connection, so throughput
    // comes from connections; pipelining only hides the round trip.
    std::size_t connections_per_node = 4;
    // Requests written on one connection before their responses are read (1 = no pipelining).
    std::size_t pipeline_depth = 4;
    // One attempt's limit: from dispatch to the end of the response. Also bounds the wait for
    // in-flight byte budget.
    Duration request_timeout = std::chrono::seconds(30);
    Duration connect_timeout = std::chrono::seconds(3);
    // GET /ping of every node at this interval; a failing node gets no new requests until a
    // ping succeeds again. Zero disables the periodic checks (failures still mark nodes down).
    Duration health_interval = std::chrono::seconds(2);
    Duration health_timeout = std::chrono::seconds(2);
    RetryPolicy retry;
    // Bytes of requests (headers + bodies) admitted at once; more requests wait. A single
    // request larger than the bound is admitted when nothing else is in flight.
    std::size_t max_inflight_bytes = std::size_t{256} << 20;
    // Riak's object.size.maximum (50 MB default). Larger values are refused before sending.
    std::size_t max_object_size = std::size_t{50} << 20;
    // Largest response body accepted (key listings can exceed the object limit).
    std::uint64_t max_response_body = std::uint64_t{256} << 20;
    // Requests, latency, failures and node health for the metrics endpoint (null: none kept).
    std::shared_ptr<Telemetry> telemetry;
    // TLS for https:// nodes: required with them, refused without them (security.hpp makes it).
    std::shared_ptr<TlsContext> tls;
    // "Basic <base64(user:password)>", sent as Authorization with every request (health pings
    // included); "" = none. Only with https:// nodes: never sent in clear.
    std::string authorization;
};

} // namespace rfs::riak
