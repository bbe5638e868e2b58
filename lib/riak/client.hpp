// rfs::riak::Client: the pipelined Riak HTTP client the daemon uses.
//
// Threading: a Client belongs to one event loop (one io_context, see lib/io/executor.hpp) and
// is used only from that loop's thread, so it takes no locks. Make one Client per loop.
// Every call is a coroutine, `co_await client.fetch(...)`, and returns a Result: the value, or
// an Error whose to_errno() is the FUSE answer. Calls can be cancelled through Asio's
// per-operation cancellation (e.g. co_spawn(..., bind_cancellation_slot(signal.slot(), ...))):
// they complete with Errc::cancelled. The Client must outlive the calls made on it; stop()
// fails the outstanding ones. Arguments are taken by value (move large objects in): a call
// that is co_spawned starts after the caller's temporaries are gone.
// GCC 12: make the awaitable in its own statement, then await it:
//     auto call = client.fetch(proto::ObjectId{"", b, k});  auto r = co_await std::move(call);
// Never `co_await client.fetch(...)` with a class temporary among the arguments (braced or T{}
// arguments, or a defaulted FetchOptions/StoreOptions/...): GCC 12.2 mishandles temporaries in
// a co_await expression and the call's parameter copy frees memory in the caller's frame
// (ASan bad-free). See lib/riak/README.md, "Calling from coroutines (GCC 12)".
//
// Transport: per node a bounded pool of keep-alive HTTP/1.1 connections, each pipelining up to
// pipeline_depth requests (Riak answers them strictly in order); nodes are health-checked with
// GET /ping and requests go to healthy nodes first; every request has a timeout; the bytes of
// requests in flight are bounded (max_inflight_bytes), and later requests wait for room.
//
// Idempotency, retries and pipelining (decided from Riak's semantics):
//   * GET, HEAD, key listings, 2i queries, props, /ping, /stats: idempotent.
//   * PUT (or POST) to an existing key name, without conditional headers: idempotent. A replay
//     stores the same bytes again; with allow_mult=false the newest timestamp wins anyway, with
//     allow_mult=true it may add a sibling holding the same value, which resolve() collapses.
//   * DELETE without conditional headers: idempotent; a replayed delete answers 404, which
//     remove() reports as Outcome::not_found, not as an error.
//   * Set updates that only add members: idempotent (adding twice leaves the same set).
//   * NOT idempotent: POST to a bucket (the server picks a new key each time), any write or
//     delete with If-Match / If-None-Match / If-Unmodified-Since / X-Riak-If-Not-Modified (a
//     replay could fail its own precondition after the first try succeeded), and set updates
//     that remove members. These are sent alone on an idle connection with nothing pipelined
//     behind them, are never retried once any byte was written, and a broken connection,
//     timeout or garbled answer after that is reported as Errc::outcome_unknown.
//   * Idempotent requests are retried (RetryPolicy: exponential backoff with jitter, on
//     another node when one is healthy) after connection failures, timeouts, truncated
//     responses, 503 and 500 overload/insufficient_vnodes. Any request is retried if it was
//     never written (e.g. refused connection). CallOptions::idempotent overrides the rule.
//   * Key listings are also sent alone: their long bodies would delay everything behind them.
//
// Size: a value (plus its metadata) above max_object_size (Riak's 50 MB default) is refused
// with Errc::object_too_large before anything is sent.
//
// Security: https:// nodes are spoken to over TLS only (ClientConfig::tls; certificate and host
// name verified, sessions resumed per node), and ClientConfig::authorization goes with every
// request, health pings included. validate() refuses credentials with http:// nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "lib/riak/byte_budget.hpp"
#include "lib/riak/call.hpp"
#include "lib/riak/config.hpp"
#include "lib/riak/errors.hpp"
#include "lib/riak/node_pool.hpp"
#include "lib/riak/sibling_resolver.hpp"
#include "proto/riak_messages.hpp"
#include "proto/riak_paths.hpp"

namespace rfs::riak {

template <typename T> using Task = boost::asio::awaitable<Result<T>>;

struct CallOptions {
    std::optional<Duration> timeout;  // per attempt; default ClientConfig::request_timeout
    std::optional<bool> idempotent;   // override the rule above
    std::optional<unsigned> attempts; // override RetryPolicy::max_attempts
};

// Every version of an object.
struct Siblings {
    bool found = false;                    // false: 404 (vclock then is a tombstone's, if any)
    std::vector<proto::RiakObject> values; // one for a plain object; each carries `vclock`
    std::string vclock;                    // covers all values: send it with the next write
};

struct Resolved {
    proto::RiakObject object;               // the surviving version (deleted: a tombstone won)
    std::string vclock;                     // for the next write of this key
    std::size_t siblings = 1;               // how many versions there were
    std::vector<proto::RiakObject> dropped; // the versions that lost (older or tied)
    bool written = false;                   // a resolving write (or delete) was made
};

struct ClientCounters {
    std::uint64_t requests = 0; // calls started
    std::uint64_t attempts = 0; // attempts sent to a node (requests + retries)
    std::uint64_t retries = 0;
    // Attempts sent again at once, not counted as retries, because the node had closed the
    // keep-alive connection before answering anything of them (see Call::closed_by_node).
    std::uint64_t resent_after_close = 0;
    std::uint64_t outcome_unknown = 0;
    std::size_t inflight_bytes = 0;
    std::size_t inflight_bytes_peak = 0;
    std::size_t budget_waits = 0; // requests that waited for in-flight bytes
};

class Client {
public:
    // EINVAL-style problems (no nodes, zero sizes) are reported by validate(); the constructor
    // throws std::invalid_argument on them (start-up configuration, not a runtime path).
    static Result<void> validate(const ClientConfig& config);
    Client(boost::asio::io_context& context, ClientConfig config);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Starts the periodic health checks (if health_interval > 0).
    void start();
    // Stops health checks, closes every connection and fails outstanding calls (cancelled).
    void stop();

    const ClientConfig& config() const noexcept { return config_; }
    std::vector<NodeStatus> nodes() const;
    ClientCounters counters() const;

    // ---- Objects (ids: proto::ObjectId{type, bucket, key}; type "" = default type) ----
    // GET (or HEAD with options.head): Outcome ok, siblings, not_modified or not_found.
    Task<proto::ObjectResponse> fetch(proto::ObjectId id, proto::FetchOptions options = {},
                                      CallOptions call = {});
    Task<proto::ObjectResponse> head(proto::ObjectId id, proto::FetchOptions options = {},
                                     CallOptions call = {});
    // PUT (POST with options.use_post); an empty id.key POSTs to the bucket and the new key is
    // in the result (Outcome::created). Outcome no_content, or ok/siblings with returnbody.
    Task<proto::ObjectResponse> store(proto::ObjectId id, proto::RiakObject object,
                                      proto::StoreOptions options = {}, CallOptions call = {});
    // DELETE: Outcome no_content or not_found (both success).
    Task<proto::ObjectResponse> remove(proto::ObjectId id, proto::DeleteOptions options = {},
                                       CallOptions call = {});
    // All versions: a 300 is fetched as multipart/mixed (one request), or, with `multipart`
    // false or when the node lists vtags only, sibling by sibling with ?vtag=.
    Task<Siblings> fetch_siblings(proto::ObjectId id, bool multipart = true, CallOptions call = {});
    // Fetches and, if there are siblings, picks one with `resolver` and writes it back with
    // the 300's vclock (a tombstone winner is written back as a DELETE with that vclock), so
    // the siblings collapse. Retries the round if a concurrent writer made new siblings.
    // ENOENT (Errc::client_error, 404) if the key does not exist.
    Task<Resolved> resolve(proto::ObjectId id, SiblingResolver resolver = {},
                           CallOptions call = {});

    // ---- Listings and queries ----
    Task<std::vector<std::string>> list_keys(proto::BucketId bucket, bool stream = false,
                                             CallOptions call = {});
    Task<proto::IndexResults> query_index(proto::BucketId bucket, proto::IndexQuery query,
                                          CallOptions call = {});

    // ---- Bucket properties, node endpoints ----
    Task<proto::BucketProps> get_bucket_props(proto::BucketId bucket, CallOptions call = {});
    Task<std::monostate> set_bucket_props(proto::BucketId bucket, proto::BucketProps props,
                                          CallOptions call = {});
    Task<std::monostate> ping(CallOptions call = {});
    Task<proto::NodeStats> stats(CallOptions call = {});

    // ---- Set data type (/types/T/buckets/B/datatypes/K) ----
    // nullopt: the set does not exist.
    Task<std::optional<proto::SetValue>>
    fetch_set(proto::ObjectId id, proto::RequestParams params = {}, CallOptions call = {});
    // nullopt unless params.returnbody.
    Task<std::optional<proto::SetValue>> update_set(proto::ObjectId id, proto::SetUpdate update,
                                                    proto::RequestParams params = {},
                                                    CallOptions call = {});

    // Any request (Host is set per node). Idempotent unless POST or conditional. Returns the
    // response whatever its status; only transport failures are errors.
    Task<proto::Response> execute(proto::Request request, CallOptions call = {});

private:
    struct HealthLoop;

    // send(): send_attempts() timed and counted in config_.telemetry, when there is one.
    Task<proto::Response> send(proto::Request request, bool idempotent, bool exclusive,
                               const CallOptions& call);
    Task<proto::Response> send_attempts(proto::Request request, bool idempotent, bool exclusive,
                                        const CallOptions& call);
    std::shared_ptr<Node> pick_node(const Node* avoid);
    static boost::asio::awaitable<void> health_loop(std::shared_ptr<Node> node,
                                                    std::shared_ptr<HealthLoop> loop,
                                                    Duration interval, Duration timeout,
                                                    std::string authorization);

    boost::asio::io_context& context_;
    ClientConfig config_;
    std::vector<std::shared_ptr<Node>> nodes_;
    std::shared_ptr<ByteBudget> budget_;
    std::vector<std::shared_ptr<HealthLoop>> health_;
    std::mt19937_64 rng_;
    std::size_t next_node_ = 0;
    bool stopped_ = false;
    ClientCounters counters_;
};

// The start line and headers of `request` as sent to `node` (Host set, and Authorization when
// `authorization` is not empty), ending in CRLF CRLF.
std::string serialize_head(const proto::Request& request, const NodeAddress& node,
                           std::string_view authorization = {});

} // namespace rfs::riak
