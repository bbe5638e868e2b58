// riak-devnode connection behaviour, durability, fault injection and startup errors, against the
// real binary over real sockets.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <fmt/format.h>

#include "devnode_fixture.hpp"
#include "support/test_seed.hpp"

using namespace rfs::devnode::test;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

TEST_CASE("pipelined requests are answered in order", "[devnode]") {
    Devnode node;
    Client c(node.port());
    c.connect();
    c.write_raw("PUT /buckets/p/keys/k HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                "Content-Length: 5\r\n\r\nhello"
                "GET /buckets/p/keys/k HTTP/1.1\r\nHost: x\r\n\r\n"
                "DELETE /buckets/p/keys/k HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r1 = c.read_response();
    auto r2 = c.read_response();
    auto r3 = c.read_response();
    CHECK(r1.status == 204);
    CHECK(r2.status == 200);
    CHECK(r2.body == "hello");
    CHECK(r3.status == 204);
    // More: GET of the tombstone, ping, HEAD, all in one write.
    c.write_raw("GET /buckets/p/keys/k HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
                "HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(c.read_response().status == 404);
    CHECK(c.read_response().body == "OK");
    auto h = c.read_response(true);
    CHECK(h.status == 200);
    CHECK(h.header("Content-Length") == "2");
    CHECK(c.read_response().body == "OK");
}

TEST_CASE("keep-alive, Connection: close, HTTP/1.0, 100-continue, chunked uploads", "[devnode]") {
    Devnode node;
    Client c(node.port());
    c.connect();
    for (int i = 0; i < 5; ++i) {
        c.write_raw("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
        auto r = c.read_response();
        CHECK(r.status == 200);
        CHECK(r.keep_alive);
    }
    // Riak 3.2.0 answers `Connection: close` without echoing the header and then closes.
    c.write_raw("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK_FALSE(r.header("Connection"));
    CHECK_THROWS(c.read_response());

    c.connect();
    c.write_raw("GET /ping HTTP/1.0\r\n\r\n");
    r = c.read_response();
    CHECK(r.status == 200);
    CHECK_FALSE(r.header("Connection"));
    CHECK_THROWS(c.read_response());
    c.connect();
    c.write_raw("GET /ping HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    r = c.read_response();
    CHECK(r.keep_alive);
    c.write_raw("GET /ping HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    CHECK(c.read_response().status == 200);

    // 100 Continue is sent when the body is wanted.
    c.connect();
    c.write_raw("PUT /buckets/b/keys/c HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    r = c.read_response();
    CHECK(r.status == 100);
    c.write_raw("abc");
    CHECK(c.read_response().status == 204);
    // An early refusal comes without 100; in 3.2 mode the unread body is drained.
    c.write_raw("PUT /buckets/b/keys/c HTTP/1.1\r\nHost: x\r\nContent-Type: nonsense\r\n"
                "Content-Length: 3\r\n\r\nabcGET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(c.read_response().status == 415);
    CHECK(c.read_response().status == 200);

    // With Expect: 100-continue an early refusal means no body follows; the socket stays usable.
    c.write_raw("PUT /buckets/b/keys/c HTTP/1.1\r\nHost: x\r\nContent-Type: nonsense\r\n"
                "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    CHECK(c.read_response().status == 415);
    c.write_raw("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(c.read_response().status == 200);

    // Chunked request body.
    c.write_raw("PUT /buckets/b/keys/ch HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    CHECK(c.read_response().status == 204);
    CHECK(Client(node.port()).get("/buckets/b/keys/ch").body == "abcde");

    // Over-long request line -> 431.
    c.connect();
    c.write_raw("GET /buckets/b/keys/" + std::string(9000, 'k') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(c.read_response().status == 431);
}

// Boost 1.81's parser aborts when handed fewer than 5 bytes once it has seen a chunked body's
// final "0\r\n" at the start of its input; Beast's read loop hands it every byte as it arrives,
// so before the node fed it 5 at a time, an empty chunked body sent a byte at a time killed it.
TEST_CASE("chunked request bodies sent a byte at a time", "[devnode]") {
    Devnode node;
    Client c(node.port());
    c.connect();
    const std::string head = "PUT /buckets/b/keys/bytewise HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const std::string body :
         {"0\r\n\r\n", "3\r\nabc\r\n0\r\n\r\n", "1\r\nz\r\n0;x=y\r\n\r\n"}) {
        CAPTURE(body);
        c.write_raw(head);
        for (char byte : body) {
            c.write_raw(std::string_view(&byte, 1));
            // Apart, so that the node reads them one by one.
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        CHECK(c.read_response().status == 204);
        std::string expected = body.substr(0, 1) == "3"   ? "abc"
                               : body.substr(0, 1) == "1" ? "z"
                                                          : "";
        CHECK(Client(node.port()).get("/buckets/b/keys/bytewise").body == expected);
    }
    c.write_raw("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(c.read_response().status == 200);
}

TEST_CASE("many concurrent connections", "[devnode]") {
    Devnode node;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&, t] {
            Client c(node.port());
            for (int i = 0; i < 50; ++i) {
                std::string url = fmt::format("/buckets/conc/keys/t{}-{}", t, i);
                auto w = c.put(url, std::to_string(i));
                auto r = c.get(url);
                if (w.status == 204 && r.status == 200 && r.body == std::to_string(i)) ++ok;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    CHECK(ok == 16 * 50);
    auto keys = json::parse(Client(node.port()).get("/buckets/conc/keys?keys=true").body)["keys"];
    CHECK(keys.size() == 16 * 50);
}

TEST_CASE("acknowledged writes survive kill -9", "[devnode]") {
    TempDir dir;
    Devnode node({"--bucket-type", "mult"}, dir.path() + "/data");
    {
        Client c(node.port());
        for (int i = 0; i < 200; ++i) {
            REQUIRE(c.put(fmt::format("/buckets/dur/keys/k{}", i), fmt::format("v{}", i),
                          "text/plain", {{"X-Riak-Index-i_int", std::to_string(i)}})
                        .status == 204);
        }
        // dw=0 writes are not fsynced but are handed to the kernel before the 204.
        for (int i = 0; i < 50; ++i)
            REQUIRE(c.put(fmt::format("/buckets/nosync/keys/k{}?dw=0", i), "x").status == 204);
        c.put("/types/mult/buckets/s/keys/k", "a");
        c.put("/types/mult/buckets/s/keys/k", "b");
        c.request("PUT", "/buckets/dur/props", {{"Content-Type", "application/json"}},
                  R"({"props":{"allow_mult":true}})");
    }
    node.restart();
    Client c(node.port());
    for (int i = 0; i < 200; ++i) {
        auto r = c.get(fmt::format("/buckets/dur/keys/k{}", i));
        REQUIRE(r.status == 200);
        CHECK(r.body == fmt::format("v{}", i));
    }
    CHECK(json::parse(c.get("/buckets/nosync/keys?keys=true").body)["keys"].size() == 50);
    CHECK(json::parse(c.get("/buckets/dur/index/i_int/10/19").body)["keys"].size() == 10);
    CHECK(c.get("/types/mult/buckets/s/keys/k").status == 300);
    CHECK(json::parse(c.get("/buckets/dur/props").body)["props"]["allow_mult"] == true);
}

TEST_CASE("fault injection", "[devnode]") {
    Devnode node;
    Client c(node.port());
    Client admin(node.admin_port());
    auto set_faults = [&](const std::string& body) {
        return admin.request("POST", "/devnode/faults", {{"Content-Type", "application/json"}},
                             body);
    };
    c.put("/buckets/f/keys/k", std::string(20000, 'x'));

    SECTION("latency, global and per route") {
        REQUIRE(set_faults(R"({"latency_ms":200})").status == 200);
        auto t0 = Clock::now();
        CHECK(c.get("/ping").status == 200);
        CHECK(ms_since(t0) >= 190);
        REQUIRE(set_faults(R"({"route_latency_ms":{"object":400}})").status == 200);
        t0 = Clock::now();
        c.get("/ping");
        CHECK(ms_since(t0) < 250);
        t0 = Clock::now();
        c.get("/buckets/f/keys/k");
        CHECK(ms_since(t0) >= 390);
        // The admin endpoint itself is never delayed.
        t0 = Clock::now();
        auto r = admin.get("/devnode/faults");
        CHECK(ms_since(t0) < 250);
        CHECK(json::parse(r.body)["route_latency_ms"]["object"] == 400);
    }
    SECTION("error rate") {
        REQUIRE(set_faults(R"({"error_rate":1.0})").status == 200);
        auto r = c.get("/buckets/f/keys/k");
        CHECK(r.status == 503);
        CHECK(r.body == "request timed out\n");
        REQUIRE(set_faults(R"({"error_rate":1.0,"error_status":500,"methods":["PUT"]})").status ==
                200);
        r = c.put("/buckets/f/keys/k2", "x");
        CHECK(r.status == 500);
        CHECK(r.body == "Error:\noverload\n");
        CHECK(c.get("/buckets/f/keys/k").status == 200); // GET not selected
        CHECK(c.get("/buckets/f/keys/k2").status == 404);
        const auto seed = rfs::test::test_seed("devnode fault injection");
        INFO("fault seed " << seed << " (RIAKFS_TEST_SEED=" << seed << " replays it)");
        REQUIRE(set_faults(fmt::format(R"({{"error_rate":0.5,"routes":["ping"],"seed":{}}})", seed))
                    .status == 200);
        int errors = 0;
        for (int i = 0; i < 200; ++i)
            errors += c.get("/ping").status == 503;
        CHECK(errors > 50);
        CHECK(errors < 150);
    }
    SECTION("a seed replays the same faults") {
        const auto seed = rfs::test::test_seed("devnode fault seed");
        INFO("fault seed " << seed);
        // One connection, one request at a time: the requests meet the draws in order.
        auto pattern = [&](std::uint64_t s) {
            REQUIRE(
                set_faults(fmt::format(R"({{"error_rate":0.5,"routes":["ping"],"seed":{}}})", s))
                    .status == 200);
            std::string out;
            for (int i = 0; i < 64; ++i)
                out += c.get("/ping").status == 503 ? 'E' : '.';
            return out;
        };
        std::string first = pattern(seed);
        INFO("with the seed: " << first);
        CHECK(first.find('E') != std::string::npos);
        CHECK(first.find('.') != std::string::npos);
        CHECK(pattern(seed) == first);
        // Another seed draws otherwise (64 equal coin flips: 2^-64).
        CHECK(pattern(seed + 1) != first);
        CHECK(json::parse(admin.get("/devnode/faults").body)["seed"] == seed + 1);
        CHECK(set_faults(R"({"seed":-1})").status == 400);
        CHECK(set_faults(R"({"seed":"1"})").status == 400);
        CHECK(set_faults(R"({"seed":1.5})").status == 400);
    }
    SECTION("connection reset mid-body") {
        REQUIRE(set_faults(R"({"reset_rate":1.0,"routes":["object"]})").status == 200);
        Client raw(node.port());
        raw.connect();
        raw.write_raw("GET /buckets/f/keys/k HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_THROWS(raw.read_response());
        CHECK(c.get("/ping").status == 200);
    }
    SECTION("slow bodies") {
        REQUIRE(set_faults(R"({"slow_body_bps":40000,"routes":["object"]})").status == 200);
        auto t0 = Clock::now();
        auto r = c.get("/buckets/f/keys/k");
        CHECK(r.body.size() == 20000);
        CHECK(ms_since(t0) >= 400);
    }
    SECTION("refusing new connections") {
        REQUIRE(set_faults(R"({"refuse_connections":true})").status == 200);
        Client fresh(node.port());
        fresh.connect();
        fresh.write_raw("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_THROWS(fresh.read_response());
        // The existing connection still works; clearing (on the admin listener, which is never
        // refused) restores service.
        CHECK(c.get("/ping").status == 200);
        CHECK(admin.request("DELETE", "/devnode/faults").status == 204);
        Client again(node.port());
        CHECK(again.get("/ping").status == 200);
    }
    SECTION("invalid configurations and clearing") {
        CHECK(set_faults("nope").status == 400);
        CHECK(set_faults(R"({"error_rate":2})").status == 400);
        CHECK(set_faults(R"({"bogus":1})").status == 400);
        CHECK(set_faults(R"({"routes":["nowhere"]})").status == 400);
        REQUIRE(set_faults(R"({"error_rate":1.0})").status == 200);
        CHECK(c.get("/ping").status == 503);
        CHECK(admin.request("DELETE", "/devnode/faults").status == 204);
        CHECK(c.get("/ping").status == 200);
        auto stats = json::parse(c.get("/stats").body);
        CHECK(stats["devnode_faults_injected_total"].get<int>() >= 1);
    }
    admin.request("DELETE", "/devnode/faults");
}

TEST_CASE("SIGTERM shuts down cleanly with open connections", "[devnode]") {
    TempDir dir;
    Devnode node({}, dir.path() + "/d");
    Client idle(node.port());
    CHECK(idle.get("/ping").status == 200); // keeps an idle kept-alive connection
    Client c(node.port());
    CHECK(c.put("/buckets/b/keys/k", "v").status == 204);
    CHECK(node.terminate() == 0);
    // The database was closed properly: a new node opens it and finds the data.
    Devnode again({}, dir.path() + "/d");
    CHECK(Client(again.port()).get("/buckets/b/keys/k").body == "v");
}

TEST_CASE("startup errors", "[devnode]") {
    SECTION("busy port") {
        Devnode node;
        TempDir dir;
        auto [status, err] = Devnode::run_to_exit(
            {"--listen", fmt::format("127.0.0.1:{}", node.port()), "--data", dir.path() + "/d"});
        CHECK(status != 0);
        CHECK(err.find("cannot listen on") != std::string::npos);
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    }
    SECTION("data directory is a file") {
        TempDir dir;
        std::string file = dir.path() + "/file";
        std::ofstream(file) << "x";
        auto [status, err] = Devnode::run_to_exit({"--listen", "127.0.0.1:0", "--data", file});
        CHECK(status != 0);
        CHECK(err.find("data directory") != std::string::npos);
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    }
    SECTION("data directory cannot be created") {
        auto [status, err] =
            Devnode::run_to_exit({"--listen", "127.0.0.1:0", "--data", "/proc/nope/data"});
        CHECK(status != 0);
        CHECK(err.find("data directory") != std::string::npos);
    }
    SECTION("data directory in use by another node") {
        TempDir dir;
        Devnode node({}, dir.path() + "/d");
        auto [status, err] =
            Devnode::run_to_exit({"--listen", "127.0.0.1:0", "--data", dir.path() + "/d"});
        CHECK(status != 0);
        CHECK(err.find("data directory") != std::string::npos);
    }
    SECTION("bad options") {
        CHECK(Devnode::run_to_exit({"--listen", "127.0.0.1:0"}).first != 0);
        CHECK(Devnode::run_to_exit({"--data", "/tmp/x", "--bogus", "1"}).first != 0);
        CHECK(Devnode::run_to_exit({"--data", "/tmp/x", "--listen", "nonsense"}).first != 0);
    }
    SECTION("--listen and --admin take HOST:PORT, an IPv6 host in brackets") {
        for (const char* bad : {"::1:8098", "[::1]", "[::1]x:80", "127.0.0.1", "127.0.0.1:",
                                "user@127.0.0.1:1", "127.0.0.1:8098/x", "[v1.x]:80"}) {
            for (const char* flag : {"--listen", "--admin"}) {
                INFO(flag << " " << bad);
                auto [status, err] = Devnode::run_to_exit({"--data", "/tmp/x", flag, bad});
                CHECK(status == 1);
                CHECK(err.find("expects HOST:PORT") != std::string::npos);
            }
        }
        auto [status, err] = Devnode::run_to_exit({"--data", "/tmp/x", "--listen", "[::1]:70000"});
        CHECK(status == 1);
        CHECK(err.find("port out of range") != std::string::npos);
    }
}

TEST_CASE("--listen and --admin on the IPv6 loopback", "[devnode]") {
    if (!has_ipv6_loopback())
        FAIL("this machine has no IPv6 loopback (::1), which this test needs");
    Devnode node({"--listen", "[::1]:0", "--admin", "[::1]:0"});
    Client c("::1", node.port());
    CHECK(c.get("/ping").status == 200);
    REQUIRE(c.put("/buckets/b/keys/k", "v6").status == 204);
    CHECK(c.get("/buckets/b/keys/k").body == "v6");
    CHECK(Client("::1", node.admin_port()).get("/devnode/faults").status == 200);
    // ::1 is loopback: no warning.
    CHECK(node.stderr_text().find("beyond loopback") == std::string::npos);
}
