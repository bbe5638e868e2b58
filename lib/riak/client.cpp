// The Riak client: node choice, retries, budget, typed calls (see client.hpp).
#include "lib/riak/client.hpp"

#include "lib/common/await_tuple.hpp"
#include "lib/riak/telemetry.hpp"

#include <algorithm>
#include <cerrno>
#include <sstream>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/core.h>

namespace rfs::riak {

namespace asio = boost::asio;
namespace http = proto::http;
using Clock = std::chrono::steady_clock;

namespace {

// Bound on the attempts of one request resent because the node closed the connection before
// answering them (each such close answered other requests, or none were sent at all; the bound
// only stops a node that accepts and closes forever).
constexpr unsigned kMaxCloseResends = 8;

bool conditional(const proto::Conditions& c) {
    return c.if_none_match || c.if_match || c.if_unmodified_since || !c.if_not_modified.empty();
}

// 503 and 500 overload/insufficient_vnodes: the node could not serve the request now.
bool transient_status(const proto::Response& res) {
    const unsigned status = res.result_int();
    if (status == 503) return true;
    if (status != 500) return false;
    const std::string& body = res.body();
    return body.find("overload") != std::string::npos ||
           body.find("insufficient_vnodes") != std::string::npos;
}

std::size_t metadata_size(const proto::RiakObject& o) {
    std::size_t n = o.content_type.size() + o.content_encoding.size() + o.vclock.size();
    for (const auto& [name, value] : o.meta)
        n += name.size() + value.size();
    for (const auto& i : o.indexes)
        n += i.field.size() + i.value.size();
    return n;
}

} // namespace

std::string serialize_head(const proto::Request& request, const NodeAddress& node,
                           std::string_view authorization) {
    http::request_header<> head = request.base();
    head.set(http::field::host, node.host_header());
    if (!authorization.empty()) head.set(http::field::authorization, authorization);
    std::ostringstream out;
    out << head;
    return std::move(out).str();
}

struct Client::HealthLoop {
    explicit HealthLoop(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;
    bool stopped = false;
};

Result<void> Client::validate(const ClientConfig& c) {
    if (c.nodes.empty()) return make_error(Errc::invalid_argument, "no Riak node configured");
    if (c.connections_per_node == 0 || c.pipeline_depth == 0)
        return make_error(Errc::invalid_argument,
                          "connections_per_node and pipeline_depth must be at least 1");
    if (c.retry.max_attempts == 0)
        return make_error(Errc::invalid_argument, "retry.max_attempts must be at least 1");
    if (c.request_timeout <= Duration::zero() || c.connect_timeout <= Duration::zero())
        return make_error(Errc::invalid_argument, "timeouts must be positive");
    if (c.max_inflight_bytes == 0)
        return make_error(Errc::invalid_argument, "max_inflight_bytes must be positive");
    for (const auto& node : c.nodes) {
        if (node.tls && !c.tls)
            return make_error(
                Errc::invalid_argument,
                fmt::format("{} needs a TLS context (ClientConfig::tls)", node.url()));
        if (!node.tls && c.tls)
            return make_error(Errc::invalid_argument,
                              fmt::format("a TLS context is given but {} is http://", node.url()));
        if (!node.tls && !c.authorization.empty())
            return make_error(Errc::invalid_argument,
                              fmt::format("credentials with {}: basic authentication over "
                                          "http:// would send the password in clear",
                                          node.url()));
    }
    return {};
}

Client::Client(asio::io_context& context, ClientConfig config)
    : context_(context), config_(std::move(config)), rng_(std::random_device{}()) {
    if (auto ok = validate(config_); !ok) throw std::invalid_argument(ok.error().message);
    const Connection::Settings settings{config_.pipeline_depth, config_.connect_timeout,
                                        config_.max_response_body, config_.tls};
    for (const auto& address : config_.nodes) {
        nodes_.push_back(std::make_shared<Node>(context_.get_executor(), address,
                                                config_.connections_per_node, settings));
        if (config_.telemetry)
            nodes_.back()->mirror_health(&config_.telemetry->node(address.url()).up);
    }
    budget_ = std::make_shared<ByteBudget>(context_.get_executor(), config_.max_inflight_bytes);
}

Client::~Client() {
    stop();
}

void Client::start() {
    if (stopped_ || config_.health_interval <= Duration::zero() || !health_.empty()) return;
    for (const auto& node : nodes_) {
        auto loop = std::make_shared<HealthLoop>(context_.get_executor());
        health_.push_back(loop);
        asio::co_spawn(context_,
                       health_loop(node, loop, config_.health_interval, config_.health_timeout,
                                   config_.authorization),
                       asio::detached);
    }
}

void Client::stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& loop : health_) {
        loop->stopped = true;
        loop->timer.cancel();
    }
    health_.clear();
    const Error stopped = make_error(Errc::cancelled, "the Riak client is stopped");
    for (auto& node : nodes_)
        node->shutdown(stopped);
    budget_->cancel_waiters();
}

std::vector<NodeStatus> Client::nodes() const {
    std::vector<NodeStatus> out;
    for (const auto& node : nodes_)
        out.push_back(node->status());
    return out;
}

ClientCounters Client::counters() const {
    ClientCounters c = counters_;
    c.inflight_bytes = budget_->in_use();
    c.inflight_bytes_peak = budget_->peak();
    c.budget_waits = budget_->waits();
    return c;
}

std::shared_ptr<Node> Client::pick_node(const Node* avoid) {
    // Least-loaded healthy node other than `avoid`, starting the scan at a rotating index so
    // equally loaded nodes share the work; then any other node; then `avoid` itself.
    const std::size_t n = nodes_.size();
    const std::size_t start = next_node_++ % n;
    std::shared_ptr<Node> best;
    for (std::size_t i = 0; i < n; ++i) {
        const auto& node = nodes_[(start + i) % n];
        if (node.get() == avoid || !node->healthy()) continue;
        if (!best || node->load() < best->load()) best = node;
    }
    if (best) return best;
    for (std::size_t i = 0; i < n; ++i) {
        const auto& node = nodes_[(start + i) % n];
        if (node.get() != avoid) return node;
    }
    return nodes_[start];
}

asio::awaitable<void> Client::health_loop(std::shared_ptr<Node> node,
                                          std::shared_ptr<HealthLoop> loop, Duration interval,
                                          Duration timeout, std::string authorization) {
    // Static, with shared state only: this coroutine may outlive the Client by one wake-up.
    auto prepared = std::make_shared<Prepared>();
    prepared->message = proto::make_request(http::verb::get, "", proto::ping_target());
    // A secured Riak asks for credentials on /ping too.
    const std::string head = serialize_head(prepared->message, node->address(), authorization);
    auto ex = co_await asio::this_coro::executor;
    while (!loop->stopped) {
        loop->timer.expires_after(interval);
        co_await loop->timer.async_wait(kTuple);
        if (loop->stopped) co_return;
        if (node->healthy() && Clock::now() - node->last_answer() < interval) continue;
        auto call = std::make_shared<Call>(ex, prepared, head);
        node->submit(call);
        auto res = co_await call->wait(Clock::now() + timeout);
        if (loop->stopped) co_return;
        if (!res && call->closed_by_node) {
            // It met a pooled connection the node had closed (idle timeout): that says
            // nothing about the node, so ask once more on a fresh connection.
            call = std::make_shared<Call>(ex, prepared, head);
            node->submit(call);
            res = co_await call->wait(Clock::now() + timeout);
            if (loop->stopped) co_return;
        }
        if (!res) {
            node->mark_down(res.error().describe());
        } else if (auto ok = proto::check_ping_response(*res); !ok) {
            node->mark_down(ok.error().message);
        } else {
            node->mark_up();
        }
    }
}

namespace {

CallMethod call_method(http::verb verb) {
    switch (verb) {
    case http::verb::get:
        return CallMethod::get;
    case http::verb::put:
        return CallMethod::put;
    case http::verb::post:
        return CallMethod::post;
    case http::verb::head:
        return CallMethod::head;
    case http::verb::delete_:
        return CallMethod::del;
    default:
        return CallMethod::other;
    }
}

} // namespace

Task<proto::Response> Client::send(proto::Request request, bool idempotent, bool exclusive,
                                   const CallOptions& options) {
    if (!config_.telemetry)
        co_return co_await send_attempts(std::move(request), idempotent, exclusive, options);
    // The telemetry outlives this call even if the Client goes first.
    std::shared_ptr<Telemetry> telemetry = config_.telemetry;
    const CallMethod method = call_method(request.method());
    const std::uint64_t start = metrics::now_ns();
    auto call = send_attempts(std::move(request), idempotent, exclusive, options);
    auto result = co_await std::move(call);
    telemetry->record(method, metrics::now_ns() - start, result ? Errc::ok : result.error().code,
                      result ? result->result_int() : 0);
    co_return result;
}

Task<proto::Response> Client::send_attempts(proto::Request request, bool idempotent, bool exclusive,
                                            const CallOptions& options) {
    if (options.idempotent) idempotent = *options.idempotent;
    auto prepared = std::make_shared<Prepared>();
    prepared->message = std::move(request);
    prepared->idempotent = idempotent;
    prepared->exclusive = exclusive || !idempotent;
    const Duration timeout = options.timeout.value_or(config_.request_timeout);
    const unsigned attempts = std::max(1u, options.attempts.value_or(config_.retry.max_attempts));
    ++counters_.requests;
    if (stopped_) co_return make_error(Errc::cancelled, "the Riak client is stopped");

    auto grant = co_await budget_->acquire(prepared->wire_size(), Clock::now() + timeout);
    if (!grant) co_return std::move(grant).error();

    auto ex = context_.get_executor();
    const Node* avoid = nullptr;
    unsigned attempt = 0;       // failed attempts so far (retries use them up)
    unsigned close_resends = 0; // attempts lost to a close by the node, resent at once
    bool back_off = false;
    for (;;) {
        if (back_off) {
            asio::steady_timer pause(ex);
            pause.expires_after(config_.retry.delay(attempt, rng_));
            auto [ec] = co_await pause.async_wait(kTuple);
            if (ec) co_return make_error(Errc::cancelled, "request cancelled during retry backoff");
        }
        if (stopped_) co_return make_error(Errc::cancelled, "the Riak client is stopped");
        auto node = pick_node(avoid);
        ++counters_.attempts;
        auto call = std::make_shared<Call>(
            ex, prepared,
            serialize_head(prepared->message, node->address(), config_.authorization));
        node->submit(call);
        auto result = co_await call->wait(Clock::now() + timeout);
        const bool last = attempt + 1 >= attempts;
        if (result) {
            node->mark_up();
            if (idempotent && !last && transient_status(*result)) {
                avoid = node.get();
                ++attempt;
                ++counters_.retries;
                back_off = true;
                continue;
            }
            co_return std::move(*result);
        }
        Error error = std::move(result).error();
        if (error.code == Errc::cancelled) co_return error;
        if (call->closed_by_node && (!call->written || idempotent) &&
            close_resends < kMaxCloseResends) {
            // The node closed the kept-alive connection before answering any of it: nothing
            // reached it (not written), or a replay is harmless (idempotent). The node is fine,
            // so this is no failed attempt: send it again at once, on a fresh connection.
            ++close_resends;
            ++counters_.resent_after_close;
            back_off = false;
            continue;
        }
        if (call->written && !idempotent) {
            // The node may or may not have applied it; sending it again could apply it twice.
            ++counters_.outcome_unknown;
            Error unknown = make_error(
                Errc::outcome_unknown,
                fmt::format("{} {} was sent to {} but not answered; it may or may not have "
                            "been applied ({})",
                            std::string_view(prepared->message.method_string()),
                            std::string_view(prepared->message.target()),
                            node->address().host_header(), error.describe()));
            co_return unknown;
        }
        if (last || !is_transient(error)) co_return error;
        avoid = node.get();
        ++attempt;
        ++counters_.retries;
        back_off = true;
    }
}

// ---- Objects ------------------------------------------------------------------------------

Task<proto::ObjectResponse> Client::fetch(proto::ObjectId id, proto::FetchOptions options,
                                          CallOptions call) {
    auto request = proto::make_fetch_request("", id, options);
    if (!request) co_return from_proto(request.error());
    auto res = co_await send(std::move(*request), true, false, call);
    if (!res) co_return std::move(res).error();
    auto parsed = proto::parse_object_response(std::move(*res), options.head);
    if (!parsed) co_return from_proto(parsed.error());
    co_return std::move(*parsed);
}

Task<proto::ObjectResponse> Client::head(proto::ObjectId id, proto::FetchOptions options,
                                         CallOptions call) {
    options.head = true;
    co_return co_await fetch(id, std::move(options), call);
}

Task<proto::ObjectResponse> Client::store(proto::ObjectId id, proto::RiakObject object,
                                          proto::StoreOptions options, CallOptions call) {
    const std::size_t size = object.value.size() + metadata_size(object);
    if (size > config_.max_object_size)
        co_return make_error(Errc::object_too_large,
                             fmt::format("object of {} bytes (value and metadata) is larger than "
                                         "the maximum of {} bytes; not sent",
                                         size, config_.max_object_size));
    auto request = proto::make_store_request("", id, std::move(object), options);
    if (!request) co_return from_proto(request.error());
    const bool idempotent = !id.key.empty() && !conditional(options.conditions);
    auto res = co_await send(std::move(*request), idempotent, false, call);
    if (!res) co_return std::move(res).error();
    // A write has no "not found" outcome: 404 is an unknown bucket type.
    if (res->result_int() == 404) co_return from_proto(proto::error_from_response(*res));
    auto parsed = proto::parse_object_response(std::move(*res));
    if (!parsed) co_return from_proto(parsed.error());
    co_return std::move(*parsed);
}

Task<proto::ObjectResponse> Client::remove(proto::ObjectId id, proto::DeleteOptions options,
                                           CallOptions call) {
    auto request = proto::make_delete_request("", id, options);
    if (!request) co_return from_proto(request.error());
    auto res = co_await send(std::move(*request), !conditional(options.conditions), false, call);
    if (!res) co_return std::move(res).error();
    auto parsed = proto::parse_object_response(std::move(*res));
    if (!parsed) co_return from_proto(parsed.error());
    co_return std::move(*parsed);
}

Task<Siblings> Client::fetch_siblings(proto::ObjectId id, bool multipart, CallOptions call) {
    proto::FetchOptions options;
    options.multipart_siblings = multipart;
    auto res = co_await fetch(id, options, call);
    if (!res) co_return std::move(res).error();
    Siblings out;
    switch (res->outcome) {
    case proto::Outcome::ok:
        out.found = true;
        out.vclock = res->object.vclock;
        out.values.push_back(std::move(res->object));
        break;
    case proto::Outcome::siblings:
        out.found = true;
        out.vclock = res->vclock;
        out.values = std::move(res->siblings);
        if (out.values.empty()) {
            // A text list of vtags: fetch each sibling on its own.
            for (const auto& vtag : res->vtags) {
                proto::FetchOptions one;
                one.params.vtag = vtag;
                auto part = co_await fetch(id, one, call);
                if (!part) co_return std::move(part).error();
                if (part->outcome == proto::Outcome::not_found) continue; // resolved meanwhile
                if (part->outcome != proto::Outcome::ok)
                    co_return make_error(Errc::unexpected_response,
                                         fmt::format("?vtag={} answered {}", vtag, part->status));
                out.values.push_back(std::move(part->object));
            }
        }
        for (auto& v : out.values)
            v.vclock = out.vclock;
        break;
    case proto::Outcome::not_found:
        out.vclock = res->object.vclock;
        break;
    default:
        co_return make_error(Errc::unexpected_response,
                             fmt::format("GET answered {} without conditions", res->status));
    }
    co_return out;
}

Task<Resolved> Client::resolve(proto::ObjectId id, SiblingResolver resolver, CallOptions call) {
    constexpr int kRounds = 4; // concurrent writers can recreate siblings; give up eventually
    for (int round = 0; round < kRounds; ++round) {
        auto current = co_await fetch_siblings(id, true, call);
        if (!current) co_return std::move(current).error();
        if (!current->found) {
            Error e = make_error(Errc::client_error, "not found", ENOENT);
            e.http_status = 404;
            co_return e;
        }
        Resolved out;
        out.siblings = current->values.size();
        if (current->values.size() == 1) {
            out.object = std::move(current->values.front());
            out.vclock = std::move(current->vclock);
            co_return out;
        }
        Resolution r = resolve_siblings(std::move(current->values), current->vclock, resolver);
        out.dropped = std::move(r.dropped);
        out.written = true;
        if (r.winner.deleted) {
            proto::DeleteOptions del;
            del.vclock = r.vclock;
            auto gone = co_await remove(id, del, call);
            if (!gone) co_return std::move(gone).error();
            out.object = std::move(r.winner);
            co_return out;
        }
        proto::RiakObject winner = r.winner;
        winner.vclock = r.vclock; // dominates every sibling listed in the 300
        proto::StoreOptions store_options;
        store_options.params.returnbody = true;
        auto stored = co_await store(id, winner, store_options, call);
        if (!stored) co_return std::move(stored).error();
        if (stored->outcome == proto::Outcome::ok) {
            out.object = std::move(stored->object);
            out.vclock = out.object.vclock;
            co_return out;
        }
        // Still siblings: someone wrote concurrently; resolve again with what is there now.
    }
    co_return make_error(Errc::server_error,
                         "siblings keep reappearing: concurrent writers on this key", EAGAIN);
}

// ---- Listings and queries -----------------------------------------------------------------

Task<std::vector<std::string>> Client::list_keys(proto::BucketId bucket, bool stream,
                                                 CallOptions call) {
    auto target = proto::key_list_target(bucket, stream);
    if (!target) co_return from_proto(target.error());
    auto res = co_await send(proto::make_request(http::verb::get, "", std::move(*target)), true,
                             true, call);
    if (!res) co_return std::move(res).error();
    if (res->result_int() != 200) co_return from_proto(proto::error_from_response(*res));
    auto keys = stream ? proto::parse_key_stream(res->body()) : proto::parse_key_list(res->body());
    if (!keys) co_return from_proto(keys.error());
    co_return std::move(*keys);
}

Task<proto::IndexResults> Client::query_index(proto::BucketId bucket, proto::IndexQuery query,
                                              CallOptions call) {
    auto target = proto::index_target(bucket, query);
    if (!target) co_return from_proto(target.error());
    const bool stream = query.stream;
    auto res = co_await send(proto::make_request(http::verb::get, "", std::move(*target)), true,
                             stream, call);
    if (!res) co_return std::move(res).error();
    if (res->result_int() != 200) co_return from_proto(proto::error_from_response(*res));
    auto parsed = stream ? proto::parse_index_stream((*res)[http::field::content_type], res->body())
                         : proto::parse_index_results(res->body());
    if (!parsed) co_return from_proto(parsed.error());
    co_return std::move(*parsed);
}

// ---- Props, ping, stats -------------------------------------------------------------------

Task<proto::BucketProps> Client::get_bucket_props(proto::BucketId bucket, CallOptions call) {
    auto target = proto::bucket_props_target(bucket);
    if (!target) co_return from_proto(target.error());
    auto res = co_await send(proto::make_request(http::verb::get, "", std::move(*target)), true,
                             false, call);
    if (!res) co_return std::move(res).error();
    if (res->result_int() != 200) co_return from_proto(proto::error_from_response(*res));
    auto props = proto::parse_bucket_props(res->body());
    if (!props) co_return from_proto(props.error());
    co_return std::move(*props);
}

Task<std::monostate> Client::set_bucket_props(proto::BucketId bucket, proto::BucketProps props,
                                              CallOptions call) {
    auto request = proto::make_bucket_props_request("", bucket, props);
    if (!request) co_return from_proto(request.error());
    auto res = co_await send(std::move(*request), true, false, call);
    if (!res) co_return std::move(res).error();
    const unsigned status = res->result_int();
    if (status != 204 && status != 200) co_return from_proto(proto::error_from_response(*res));
    co_return std::monostate{};
}

Task<std::monostate> Client::ping(CallOptions call) {
    auto res = co_await send(proto::make_request(http::verb::get, "", proto::ping_target()), true,
                             false, call);
    if (!res) co_return std::move(res).error();
    if (auto ok = proto::check_ping_response(*res); !ok) {
        Error e = from_proto(ok.error());
        if (res->result_int() == 200) e.code = Errc::unexpected_response; // 200 but not "OK"
        co_return e;
    }
    co_return std::monostate{};
}

Task<proto::NodeStats> Client::stats(CallOptions call) {
    auto res = co_await send(proto::make_request(http::verb::get, "", proto::stats_target()), true,
                             false, call);
    if (!res) co_return std::move(res).error();
    if (res->result_int() != 200) co_return from_proto(proto::error_from_response(*res));
    auto stats = proto::parse_stats(res->body());
    if (!stats) co_return from_proto(stats.error());
    co_return std::move(*stats);
}

// ---- Sets ---------------------------------------------------------------------------------

Task<std::optional<proto::SetValue>>
Client::fetch_set(proto::ObjectId id, proto::RequestParams params, CallOptions call) {
    auto request = proto::make_set_fetch_request("", id, params);
    if (!request) co_return from_proto(request.error());
    auto res = co_await send(std::move(*request), true, false, call);
    if (!res) co_return std::move(res).error();
    auto value = proto::parse_set_fetch_response(*res);
    if (!value) co_return from_proto(value.error());
    co_return std::move(*value);
}

Task<std::optional<proto::SetValue>> Client::update_set(proto::ObjectId id, proto::SetUpdate update,
                                                        proto::RequestParams params,
                                                        CallOptions call) {
    auto request = proto::make_set_update_request("", id, update, params);
    if (!request) co_return from_proto(request.error());
    auto res = co_await send(std::move(*request), update.remove.empty(), false, call);
    if (!res) co_return std::move(res).error();
    auto value = proto::parse_set_update_response(*res);
    if (!value) co_return from_proto(value.error());
    co_return std::move(*value);
}

Task<proto::Response> Client::execute(proto::Request request, CallOptions call) {
    const bool is_conditional =
        request.count(http::field::if_match) || request.count(http::field::if_none_match) ||
        request.count(http::field::if_unmodified_since) || request.count("X-Riak-If-Not-Modified");
    const bool idempotent = request.method() != http::verb::post && !is_conditional;
    co_return co_await send(std::move(request), idempotent, false, call);
}

} // namespace rfs::riak
