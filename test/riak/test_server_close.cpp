// Connections the node closes without saying so. Riak sends no "Connection: close" (not even
// to a request that asked for it: observed on Riak KV 3.2.0), closes after an early error on
// Riak <= 3.0, and closes keep-alive connections idle for 300 s. The client must notice such a
// close itself: a request must not fail because its connection had been closed before it was
// written, idempotent requests caught by a close are resent, and a non-idempotent one that was
// written when the close came is outcome_unknown, never sent again.
// With attempts = 1, so that a resend can only be the free one after a close by the node.
#include <catch2/catch.hpp>

#include "test/riak/riak_test_support.hpp"

using namespace rfs::riak;
using namespace rfs::riak::test;
namespace proto = rfs::proto;

namespace {

// /ping -> "OK"; POST to a bucket -> 201 with a Location.
std::string respond(const std::string& head) {
    if (head.starts_with("POST "))
        return "HTTP/1.1 201 Created\r\nLocation: /buckets/b/keys/made\r\n"
               "Content-Length: 0\r\n\r\n";
    return "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nOK";
}

ClientConfig one_attempt(std::uint16_t port, std::size_t connections = 1) {
    auto c = pipelined_config(port, connections, 4);
    c.retry.max_attempts = 1;
    c.request_timeout = std::chrono::seconds(5);
    return c;
}

const proto::ObjectId kBucketOnly{"", "b", ""}; // POST to the bucket: not idempotent

Result<proto::ObjectResponse> post(asio::io_context& ioc, Client& client) {
    auto call = client.store(kBucketOnly, text("v"));
    return run(ioc, std::move(call));
}

Result<std::monostate> ping(asio::io_context& ioc, Client& client) {
    auto call = client.ping();
    return run(ioc, std::move(call));
}

} // namespace

TEST_CASE("a node that closes after every response without Connection: close", "[riak][close]") {
    asio::io_context ioc;
    ClosingServer server(ioc, respond);
    server.close_after_each = true;
    Client client(ioc, one_attempt(server.port()));
    for (int i = 0; i < 20; ++i) {
        INFO("ping " << i);
        auto r = ping(ioc, client);
        if (!r) FAIL(r.error().describe());
    }
    for (int i = 0; i < 20; ++i) {
        INFO("POST " << i);
        auto r = post(ioc, client);
        if (!r) FAIL(r.error().describe());
        CHECK(r->outcome == proto::Outcome::created);
    }
    CHECK(server.requests("POST") == 20); // each written once
    CHECK(server.requests("GET") == 20);
    // Pipelined idempotent requests behind a response after which the node closes.
    int ok = 0;
    for (int i = 0; i < 6; ++i)
        asio::co_spawn(ioc, client.ping(), [&](std::exception_ptr, Result<std::monostate> r) {
            if (r)
                ++ok;
            else
                FAIL_CHECK(r.error().describe());
        });
    run_until(ioc, [&] { return ok == 6; });
    CHECK(client.counters().outcome_unknown == 0);
    CHECK(client.counters().retries == 0);
    client.stop();
    drain(ioc);
}

TEST_CASE("a pooled connection the node closed while idle", "[riak][close]") {
    asio::io_context ioc;
    ClosingServer server(ioc, respond);
    Client client(ioc, one_attempt(server.port()));
    REQUIRE(ping(ioc, client));
    // Closed long enough ago for the client to have seen it.
    server.close_idle();
    wait_for(ioc, std::chrono::milliseconds(50));
    REQUIRE(ping(ioc, client));
    // Closed just before the next request, in the same handler: the client has not read the
    // close yet and finds the connection idle in its pool.
    auto closed_then = [&](auto make_call) {
        return run(ioc, [&]() -> asio::awaitable<bool> {
            server.close_idle();
            auto call = make_call();
            auto r = co_await std::move(call);
            if (!r) FAIL_CHECK(r.error().describe());
            co_return static_cast<bool>(r);
        }());
    };
    for (int i = 0; i < 5; ++i) {
        INFO("round " << i);
        CHECK(closed_then([&] { return client.ping(); }));
        CHECK(closed_then([&] { return client.store(kBucketOnly, text("v")); }));
    }
    CHECK(server.requests("POST") == 5); // written once each, on a live connection
    CHECK(client.counters().outcome_unknown == 0);
    CHECK(client.counters().retries == 0);
    CHECK(client.counters().resent_after_close >= 10);
    client.stop();
    drain(ioc);
}

TEST_CASE("a close crossing a written request: idempotent resent, otherwise outcome unknown",
          "[riak][close]") {
    asio::io_context ioc;
    ClosingServer server(ioc, respond);
    server.drop_nth = 2; // the second request on each connection is read, then the node closes
    Client client(ioc, one_attempt(server.port()));

    REQUIRE(ping(ioc, client));
    auto again = ping(ioc, client); // dropped, resent on a new connection
    if (!again) FAIL(again.error().describe());
    CHECK(server.requests("GET") == 3);
    CHECK(client.counters().resent_after_close == 1);

    // The next connection: one ping answered, then the POST is dropped after it was read.
    auto posted = post(ioc, client);
    REQUIRE_FALSE(posted);
    CHECK(posted.error().code == Errc::outcome_unknown);
    CHECK(posted.error().to_errno() == EIO);
    CHECK(server.requests("POST") == 1); // never sent again
    CHECK(client.counters().outcome_unknown == 1);
    client.stop();
    drain(ioc);
}

TEST_CASE("health checks are not fooled by a connection the node closed", "[riak][close]") {
    asio::io_context ioc;
    ClosingServer server(ioc, respond);
    server.drop_nth = 2; // every connection's second /ping is read and then the node closes
    auto config = one_attempt(server.port());
    config.health_interval = std::chrono::milliseconds(50);
    config.health_timeout = std::chrono::seconds(2);
    Client client(ioc, config);
    client.start();
    run_until(ioc, [&] { return server.requests("GET") >= 6; });
    // Each dropped ping was asked again on a fresh connection, which answered it.
    CHECK(client.nodes()[0].healthy);
    CHECK(client.nodes()[0].last_error.empty());
    client.stop();
    drain(ioc);
}
