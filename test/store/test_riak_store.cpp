// RiakObjectStore against a real riak-devnode process (the shared contract of
// store_contract.hpp), plus what only a real node shows: quorum parameters reaching the node,
// and failures (node killed, closed port, 503s, garbled answers, foreign 404 pages, in-band
// listing errors) that must be errors and never "not found" or an empty listing.
#include <catch2/catch.hpp>

#include <cstdint>

#include "lib/store/riak_object_store.hpp"
#include "test/riak/riak_test_support.hpp"
#include "test/store/store_contract.hpp"

using namespace rfs::store;
using namespace rfs::store::test;
namespace proto = rfs::proto;
namespace riak = rfs::riak;
namespace rt = rfs::riak::test;

namespace {

riak::ClientConfig fast_failing(std::uint16_t port) {
    auto c = rt::config_for({port});
    c.request_timeout = std::chrono::seconds(2);
    c.connect_timeout = std::chrono::milliseconds(500);
    c.retry.max_attempts = 3;
    return c;
}

// A riak-devnode with a bucket type "mult" (allow_mult=true), a Client and a store over it.
struct DevnodeHarness : Harness {
    DevnodeHarness()
        : node({"--bucket-type", "mult"}), client(ioc, fast_failing(node.port())),
          riak_store(client) {
        client.start();
    }
    ~DevnodeHarness() override {
        client.stop();
        rt::drain(ioc);
    }
    ObjectStore& store() override { return riak_store; }
    asio::io_context& context() override { return ioc; }

    rt::Devnode node;
    asio::io_context ioc;
    riak::Client client;
    RiakObjectStore riak_store;
};

// A store whose only node is `port` (a canned server or a closed port).
struct PortHarness : Harness {
    explicit PortHarness(std::uint16_t port)
        : client(ioc, fast_failing(port)), riak_store(client) {}
    ~PortHarness() override {
        client.stop();
        rt::drain(ioc);
    }
    ObjectStore& store() override { return riak_store; }
    asio::io_context& context() override { return ioc; }

    asio::io_context ioc;
    riak::Client client;
    RiakObjectStore riak_store;
};

// A canned server (same answer to every request) and a store whose only node it is, on one
// io_context.
struct CannedHarness : Harness {
    explicit CannedHarness(std::string reply)
        : server(ioc, std::move(reply), false), client(ioc, fast_failing(server.port())),
          riak_store(client) {}
    ~CannedHarness() override {
        client.stop();
        rt::drain(ioc);
    }
    ObjectStore& store() override { return riak_store; }
    asio::io_context& context() override { return ioc; }

    asio::io_context ioc;
    rt::CannedServer server;
    riak::Client client;
    RiakObjectStore riak_store;
};

// get, head and list_keys must all fail, whether or not the key exists.
void check_reads_fail(Harness& h, const char* what) {
    INFO(what);
    ObjectStore& s = h.store();
    for (const std::string key : {"k", "absent"}) {
        auto get = h(s.get(proto::ObjectId{"", "b", key}));
        REQUIRE_FALSE(get);
        INFO(get.error().describe());
        CHECK(get.error().code != Errc::ok);
        auto head = h(s.head(proto::ObjectId{"", "b", key}));
        REQUIRE_FALSE(head);
    }
    auto list = h(s.list_keys(proto::BucketId{"", "b"}));
    REQUIRE_FALSE(list);
}

std::string canned(std::string status_line, std::string content_type, std::string body) {
    return status_line + "\r\nContent-Type: " + content_type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::uint64_t stat(const rt::Devnode& node, const char* name) {
    return rt::node_stats(node).value(name, std::uint64_t{0});
}

} // namespace

TEST_CASE("riak store: put, get, head round trip", "[store][riak]") {
    DevnodeHarness h;
    contract_round_trip(h);
}

TEST_CASE("riak store: not found", "[store][riak]") {
    DevnodeHarness h;
    contract_not_found(h);
}

TEST_CASE("riak store: siblings", "[store][riak]") {
    DevnodeHarness h;
    contract_siblings(h);
}

TEST_CASE("riak store: no siblings in the default type", "[store][riak]") {
    DevnodeHarness h;
    contract_default_type_has_no_siblings(h);
}

TEST_CASE("riak store: conditional removes", "[store][riak]") {
    DevnodeHarness h;
    contract_remove(h);
}

TEST_CASE("riak store: create only", "[store][riak]") {
    DevnodeHarness h;
    contract_create_only(h);
}

TEST_CASE("riak store: put_and_read", "[store][riak]") {
    DevnodeHarness h;
    contract_put_and_read(h);
}

TEST_CASE("riak store: hostile names", "[store][riak]") {
    DevnodeHarness h;
    contract_hostile_names(h);
}

TEST_CASE("riak store: invalid input", "[store][riak]") {
    DevnodeHarness h;
    contract_invalid_input(h);
}

TEST_CASE("riak store: durable writes wait for dw, others do not", "[store][riak]") {
    DevnodeHarness h;
    ObjectStore& s = h.store();
    const auto sync0 = stat(h.node, "devnode_sync_writes_total");
    const auto async0 = stat(h.node, "devnode_async_writes_total");
    REQUIRE(h(s.put(proto::ObjectId{"", "d", "durable"}, object("v"), {})));
    CHECK(stat(h.node, "devnode_sync_writes_total") == sync0 + 1);
    PutOptions fast;
    fast.durable = false;
    REQUIRE(h(s.put(proto::ObjectId{"", "d", "fast"}, object("v"), fast)));
    CHECK(stat(h.node, "devnode_async_writes_total") == async0 + 1);
    CHECK(stat(h.node, "devnode_sync_writes_total") == sync0 + 1);
}

TEST_CASE("riak store: a quorum the bucket cannot meet is an error", "[store][riak]") {
    rt::Devnode node;
    asio::io_context ioc;
    riak::Client client(ioc, fast_failing(node.port()));
    RiakStoreConfig config;
    config.r = proto::Quorum::n(5); // n_val is 3: Riak answers 400
    RiakObjectStore store(client, config);
    auto got = run_task(ioc, store.get(proto::ObjectId{"", "b", "k"}));
    REQUIRE_FALSE(got);
    CHECK(got.error().http_status == 400);
    client.stop();
    rt::drain(ioc);
}

TEST_CASE("riak store: a stopped node gives errors, never not-found", "[store][riak]") {
    DevnodeHarness h;
    ObjectStore& s = h.store();
    REQUIRE(h(s.put(proto::ObjectId{"", "b", "k"}, object("v"), {})));
    auto before = h(s.get(proto::ObjectId{"", "b", "k"}));
    REQUIRE(before);
    REQUIRE(before->found);
    h.node.kill9();
    check_reads_fail(h, "devnode killed");
    REQUIRE_FALSE(h(s.put(proto::ObjectId{"", "b", "k2"}, object("v"), {})));
    REQUIRE_FALSE(h(s.remove(proto::ObjectId{"", "b", "k"}, RemoveOptions::matching(*before))));
}

TEST_CASE("riak store: a closed port gives errors", "[store][riak]") {
    std::uint16_t port = 0;
    {
        asio::io_context probe;
        asio::ip::tcp::acceptor a(probe,
                                  asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = a.local_endpoint().port();
    }
    PortHarness h(port);
    check_reads_fail(h, "closed port");
    auto get = h(h.store().get(proto::ObjectId{"", "b", "k"}));
    REQUIRE_FALSE(get);
    CHECK(get.error().code == Errc::connection_refused);
}

TEST_CASE("riak store: failure answers are errors, never not-found", "[store][riak]") {
    SECTION("503 request timed out") {
        CannedHarness c(
            canned("HTTP/1.1 503 Service Unavailable", "text/plain", "request timed out\n"));
        auto get = c(c.store().get(proto::ObjectId{"", "b", "k"}));
        REQUIRE_FALSE(get);
        CHECK(get.error().code == Errc::server_error);
        CHECK(get.error().http_status == 503);
        CHECK(c.server.requests() >= 2); // retried before giving up
        check_reads_fail(c, "503");
    }
    SECTION("500 overload") {
        CannedHarness c(
            canned("HTTP/1.1 500 Internal Server Error", "text/plain", "Error:\noverload\n"));
        check_reads_fail(c, "500 overload");
    }
    SECTION("not HTTP") {
        CannedHarness c("SSH-2.0-OpenSSH_9.2\r\n\r\n");
        check_reads_fail(c, "garbage");
    }
    SECTION("a 404 that is not Riak's object answer") {
        CannedHarness c(canned("HTTP/1.1 404 Object Not Found", "text/html",
                               "<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD></HTML>"));
        auto get = c(c.store().get(proto::ObjectId{"", "b", "k"}));
        REQUIRE_FALSE(get);
        CHECK(get.error().code == Errc::unexpected_response);
    }
    SECTION("a listing with an in-band error") {
        CannedHarness c(canned("HTTP/1.1 200 OK", "application/json",
                               R"({"keys":["a","b"]}{"error":"timeout"})"));
        auto list = c(c.store().list_keys(proto::BucketId{"", "b"}));
        REQUIRE_FALSE(list);
    }
    SECTION("a listing that is not JSON") {
        CannedHarness c(canned("HTTP/1.1 200 OK", "application/json", "<html>oops</html>"));
        auto list = c(c.store().list_keys(proto::BucketId{"", "b"}));
        REQUIRE_FALSE(list);
    }
}
