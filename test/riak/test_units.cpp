// Unit tests of the client's pure parts: node URLs, errors, retry delays, sibling resolution,
// request heads, and the in-flight byte budget (on an io_context, no sockets).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <random>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "lib/riak/byte_budget.hpp"
#include "lib/riak/client.hpp"
#include "lib/riak/config.hpp"
#include "lib/riak/errors.hpp"
#include "lib/riak/retry_policy.hpp"
#include "lib/riak/sibling_resolver.hpp"

using namespace rfs::riak;
namespace asio = boost::asio;

TEST_CASE("node URLs", "[riak][config]") {
    auto a = parse_node_url("http://127.0.0.1:8098");
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 8098);
    CHECK(a->host_header() == "127.0.0.1:8098");
    auto b = parse_node_url("http://riak.example/");
    REQUIRE(b);
    CHECK(b->port == 8098);
    auto c = parse_node_url("http://[::1]:9000");
    REQUIRE(c);
    CHECK(c->host == "::1");
    CHECK(c->host_header() == "[::1]:9000");
    auto d = parse_node_url("http://[::1]/");
    REQUIRE(d);
    CHECK(d->host == "::1");
    CHECK(d->port == 8098);
    CHECK(d->url() == "http://[::1]:8098");
    for (const char* bad :
         {"https://h:1", "h:8098", "http://:80", "http://h:0", "http://h:99999", "http://h:80/riak",
          "http://h:x", "http://[::1", "http://h:", "http://user@h:80", "http://h:80/?x=1",
          "http://h:80#top", "http://h 1", "http://[v1.x]:80", ""}) {
        auto r = parse_node_url(bad);
        INFO(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == Errc::invalid_argument);
        CHECK(r.error().to_errno() == EINVAL);
    }
    auto list = parse_node_list("http://a:1,http://b:2");
    REQUIRE(list);
    REQUIRE(list->size() == 2);
    CHECK((*list)[1].host == "b");
    CHECK_FALSE(parse_node_list("http://a:1,"));
}

TEST_CASE("configuration defaults and validation", "[riak][config]") {
    ClientConfig c;
    CHECK(c.max_object_size == 50u * 1024 * 1024);
    CHECK_FALSE(Client::validate(c)); // no nodes
    c.nodes.push_back(NodeAddress{"127.0.0.1", 1});
    CHECK(Client::validate(c));
    c.pipeline_depth = 0;
    CHECK_FALSE(Client::validate(c));
}

TEST_CASE("errors carry a kind, an errno and a category", "[riak][errors]") {
    CHECK(make_error(Errc::timeout, "x").to_errno() == ETIMEDOUT);
    CHECK(make_error(Errc::connection_refused, "x").to_errno() == ECONNREFUSED);
    CHECK(make_error(Errc::connection_reset, "x").to_errno() == ECONNRESET);
    CHECK(make_error(Errc::outcome_unknown, "x").to_errno() == EIO);
    CHECK(make_error(Errc::object_too_large, "x").to_errno() == EFBIG);
    CHECK(make_error(Errc::cancelled, "x").to_errno() == ECANCELED);
    CHECK(make_error(Errc::malformed_response, "x").to_errno() == EPROTO);
    std::error_code ec = Errc::truncated_response;
    CHECK(ec.category().name() == std::string("riak"));
    CHECK(ec.message() == "truncated_response");

    rfs::proto::Response res;
    res.result(503);
    res.body() = "request timed out\n";
    auto e = from_proto(rfs::proto::error_from_response(res));
    CHECK(e.code == Errc::server_error);
    CHECK(e.http_status == 503);
    CHECK(e.to_errno() == ETIMEDOUT);
    CHECK(is_transient(e));
    res.result(412);
    res.body().clear();
    e = from_proto(rfs::proto::error_from_response(res));
    CHECK(e.code == Errc::client_error);
    CHECK(e.to_errno() == EEXIST);
    CHECK_FALSE(is_transient(e));
    res.result(500);
    res.body() = "Error:\n{too_large,60000000}\n";
    e = from_proto(rfs::proto::error_from_response(res));
    CHECK(e.to_errno() == EFBIG);
    CHECK_FALSE(is_transient(e));
    res.body() = "Error:\noverload\n";
    CHECK(is_transient(from_proto(rfs::proto::error_from_response(res))));
    CHECK(e.describe().find("HTTP 500") != std::string::npos);

    // Errors that are not HTTP answers.
    auto listing = rfs::proto::parse_key_list(R"({"error":"timeout"})");
    REQUIRE_FALSE(listing);
    CHECK(from_proto(listing.error()).code == Errc::server_error);
    auto garbage = rfs::proto::parse_key_list("{not json");
    REQUIRE_FALSE(garbage);
    CHECK(from_proto(garbage.error()).code == Errc::malformed_response);
    CHECK(from_proto(garbage.error()).to_errno() == EPROTO);
    auto bad_name = rfs::proto::object_target(rfs::proto::ObjectId{"", "", "k"});
    REQUIRE_FALSE(bad_name);
    CHECK(from_proto(bad_name.error()).code == Errc::invalid_argument);
}

TEST_CASE("retry delays grow exponentially with bounded jitter", "[riak][retry]") {
    RetryPolicy p;
    p.base_delay = std::chrono::milliseconds(10);
    p.max_delay = std::chrono::milliseconds(100);
    std::mt19937_64 rng(42);
    for (int i = 0; i < 200; ++i) {
        auto d1 = p.delay(1, rng).count();
        CHECK(d1 >= 5);
        CHECK(d1 <= 10);
        auto d3 = p.delay(3, rng).count();
        CHECK(d3 >= 20);
        CHECK(d3 <= 40);
        auto d9 = p.delay(9, rng).count();
        CHECK(d9 >= 50);
        CHECK(d9 <= 100);
    }
    // Jitter actually varies.
    std::set<long> seen;
    for (int i = 0; i < 50; ++i)
        seen.insert(static_cast<long>(p.delay(4, rng).count()));
    CHECK(seen.size() > 5);
    CHECK(is_transient(make_error(Errc::connection_reset, "")));
    CHECK(is_transient(make_error(Errc::timeout, "")));
    CHECK_FALSE(is_transient(make_error(Errc::malformed_response, "")));
    CHECK_FALSE(is_transient(make_error(Errc::outcome_unknown, "")));
}

namespace {
rfs::proto::RiakObject version(std::string value, std::string date, std::string etag,
                               bool deleted = false) {
    rfs::proto::RiakObject o;
    o.value = std::move(value);
    o.last_modified = std::move(date);
    o.etag = std::move(etag);
    o.deleted = deleted;
    return o;
}
} // namespace

TEST_CASE("sibling resolution keeps the newest write", "[riak][siblings]") {
    SiblingResolver r;
    const std::string t1 = "Tue, 24 Nov 2026 10:00:00 GMT";
    const std::string t2 = "Tue, 24 Nov 2026 10:00:01 GMT";
    std::vector<rfs::proto::RiakObject> s = {version("new", t2, "a"), version("old", t1, "z")};
    CHECK(s[r.pick(s)].value == "new");
    std::swap(s[0], s[1]);
    CHECK(s[r.pick(s)].value == "new"); // order of siblings does not matter

    // A missing date is oldest.
    s = {version("undated", "", "zz"), version("dated", t1, "a")};
    CHECK(s[r.pick(s)].value == "dated");

    // Same second: the configured fine version decides.
    SiblingResolver fine{"rfs-version"};
    auto a = version("a", t1, "z");
    a.set_meta("rfs-version", "100");
    auto b = version("b", t1, "a");
    b.set_meta("X-Riak-Meta-Rfs-Version", "200"); // not a bare name: ignored
    b.set_meta("Rfs-Version", "200");             // meta names match case-insensitively
    s = {a, b};
    CHECK(s[fine.pick(s)].value == "b");

    // Same second: a live value beats a tombstone, then the larger vtag wins, deterministically.
    s = {version("", t1, "zzz", true), version("live", t1, "aaa")};
    CHECK(s[r.pick(s)].value == "live");
    s = {version("x", t1, "b"), version("y", t1, "c"), version("w", t1, "a")};
    CHECK(s[r.pick(s)].value == "y");
    std::reverse(s.begin(), s.end());
    CHECK(s[r.pick(s)].value == "y");

    // A newer tombstone wins: the delete was the last write.
    s = {version("v", t1, "z"), version("", t2, "a", true)};
    auto res = resolve_siblings(s, "clock");
    CHECK(res.winner.deleted);
    CHECK(res.vclock == "clock");
    REQUIRE(res.dropped.size() == 1);
    CHECK(res.dropped[0].value == "v");
}

TEST_CASE("request heads carry the node's Host", "[riak][wire]") {
    auto req = rfs::proto::make_request(rfs::proto::http::verb::get, "", "/ping");
    const std::string head = serialize_head(req, NodeAddress{"10.0.0.1", 8098});
    CHECK(head.rfind("GET /ping HTTP/1.1\r\n", 0) == 0);
    CHECK(head.find("Host: 10.0.0.1:8098\r\n") != std::string::npos);
    CHECK(head.size() >= 4);
    CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
}

TEST_CASE("the byte budget admits in FIFO order and times out", "[riak][budget]") {
    asio::io_context ioc;
    auto budget = std::make_shared<ByteBudget>(ioc.get_executor(), 100);
    std::vector<int> order;
    std::vector<ByteBudget::Grant> held;
    std::optional<Error> timed_out;
    auto take = [&](int id, std::size_t n,
                    std::chrono::milliseconds wait) -> asio::awaitable<void> {
        auto g = co_await budget->acquire(n, std::chrono::steady_clock::now() + wait);
        if (!g) {
            timed_out = g.error();
            co_return;
        }
        order.push_back(id);
        held.push_back(std::move(*g));
    };
    // Runs the handlers until `held()` is true: no fixed window is long enough for them on a
    // loaded machine. The limit only turns a hang into a failure.
    auto settle = [&](auto held) {
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!held() && std::chrono::steady_clock::now() < end) {
            ioc.restart();
            ioc.run_for(std::chrono::milliseconds(10));
        }
        return held();
    };
    ByteBudget::Grant g0;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            auto g = co_await budget->acquire(80, std::chrono::steady_clock::now() +
                                                      std::chrono::seconds(1));
            g0 = std::move(*g);
        },
        asio::detached);
    CHECK(settle([&] { return budget->in_use() == 80; }));
    asio::co_spawn(ioc, take(1, 50, std::chrono::seconds(5)), asio::detached);
    asio::co_spawn(ioc, take(2, 10, std::chrono::seconds(5)), asio::detached); // fits, but FIFO
    asio::co_spawn(ioc, take(3, 30, std::chrono::milliseconds(30)), asio::detached);
    REQUIRE(settle([&] { return timed_out.has_value(); })); // the 30 ms one
    CHECK(order.empty());
    CHECK(timed_out->code == Errc::timeout);
    CHECK(budget->waiting() == 2);
    g0.reset();
    CHECK(settle([&] { return order.size() == 2; }));
    CHECK(order == std::vector<int>{1, 2});
    CHECK(budget->in_use() == 60);
    CHECK(budget->peak() == 80);
    CHECK(budget->waits() == 3);
    held.clear();
    CHECK(budget->in_use() == 0);
    // Larger than the whole bound: admitted when nothing else is held.
    bool big = false;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            auto g = co_await budget->acquire(500, std::chrono::steady_clock::now() +
                                                       std::chrono::seconds(1));
            big = g.has_value();
        },
        asio::detached);
    CHECK(settle([&] { return big; }));
}
