// riak-devnode's exposure and resource limits (issue 9), against the real binary over sockets:
// the /devnode/ admin routes exist only on the --admin listener and stay reachable while faults
// refuse Riak connections, a listener beyond loopback is warned about, slow or partial request
// bodies time out instead of holding connection slots, oversize bodies are refused before they
// are buffered, and broken chunked framing gets a 400.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "devnode_fixture.hpp"

using namespace rfs::devnode::test;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Long enough for any answer on a loopback socket; a server that never answers fails the test
// after it instead of hanging it.
constexpr milliseconds kAnswerWait{3000};

const std::string kPutHead = "PUT /buckets/b/keys/k HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: text/plain\r\n";

std::string stderr_lines_with(const Devnode& node, std::string_view word) {
    std::string out;
    std::string err = node.stderr_text();
    size_t start = 0;
    while (start < err.size()) {
        size_t end = err.find('\n', start);
        if (end == std::string::npos) end = err.size();
        std::string_view line(err.data() + start, end - start);
        if (line.find(word) != std::string_view::npos) {
            out += line;
            out += '\n';
        }
        start = end + 1;
    }
    return out;
}

// What the node answers for a path no route matches (webmachine's 404, as real Riak).
HttpResponse unknown_path(uint16_t port) {
    return Client(port).get("/no/such/route");
}

void check_same_answer(const HttpResponse& got, const HttpResponse& unknown) {
    CHECK(got.status == 404);
    CHECK(got.status == unknown.status);
    CHECK(got.header("Content-Type") == unknown.header("Content-Type"));
    CHECK(got.body == unknown.body);
}

} // namespace

TEST_CASE("admin routes are served only on the --admin listener", "[devnode][security]") {
    SECTION("without --admin they answer like an unknown path") {
        Devnode node({"--bucket-type", "mult"}, {}, AdminRoutes::off);
        CHECK(node.admin_port() == 0);
        Client c(node.port());
        auto unknown = unknown_path(node.port());
        CHECK(unknown.header("Content-Type") == "text/html");
        CHECK(unknown.body.find("Not Found") != std::string::npos);
        check_same_answer(c.get("/devnode/faults"), unknown);
        check_same_answer(c.request("POST", "/devnode/faults",
                                    {{"Content-Type", "application/json"}},
                                    R"({"refuse_connections":true,"error_rate":1.0})"),
                          unknown);
        check_same_answer(c.request("DELETE", "/devnode/faults"), unknown);
        check_same_answer(c.request("PUT", "/devnode/types/late",
                                    {{"Content-Type", "application/json"}},
                                    R"({"props":{"n_val":1}})"),
                          unknown);
        check_same_answer(c.get("/devnode/types/mult"), unknown);
        // None of them took effect: no fault, no new type, new connections still served.
        CHECK(Client(node.port()).get("/ping").status == 200);
        CHECK(c.get("/types/late/props").status == 404);
        auto stats = json::parse(c.get("/stats").body);
        CHECK(stats["devnode_faults_injected_total"] == 0);
        CHECK(stats["devnode_connections_refused_total"] == 0);
    }
    SECTION("with --admin they live on their own listener") {
        Devnode node;
        REQUIRE(node.admin_port() != 0);
        CHECK(node.admin_port() != node.port());
        Client c(node.port());
        Client admin(node.admin_port());
        check_same_answer(c.get("/devnode/faults"), unknown_path(node.port()));
        auto r = admin.get("/devnode/faults");
        CHECK(r.status == 200);
        CHECK(json::parse(r.body)["refuse_connections"] == false);
        CHECK(admin
                  .request("PUT", "/devnode/types/late", {{"Content-Type", "application/json"}},
                           R"({"props":{"n_val":1}})")
                  .status == 201);
        CHECK(json::parse(c.get("/types/late/props").body)["props"]["n_val"] == 1);
        // The admin listener serves nothing else.
        check_same_answer(admin.get("/ping"), unknown_path(node.admin_port()));
        check_same_answer(admin.get("/buckets/b/keys/k"), unknown_path(node.admin_port()));
    }
}

TEST_CASE("refusing connections does not lock out the admin", "[devnode][security]") {
    Devnode node;
    {
        Client admin(node.admin_port());
        REQUIRE(admin
                    .request("POST", "/devnode/faults", {{"Content-Type", "application/json"}},
                             R"({"refuse_connections":true,"latency_ms":1000,"error_rate":1.0})")
                    .status == 200);
    }
    Client refused(node.port());
    refused.connect();
    refused.write_raw("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(refused.wait_readable(kAnswerWait));
    CHECK_THROWS(refused.read_response());

    // A brand-new admin connection is accepted, neither delayed nor failed, and clears it all.
    Client admin(node.admin_port());
    auto t0 = Clock::now();
    auto r = admin.get("/devnode/faults");
    CHECK(ms_since(t0) < 500);
    REQUIRE(r.status == 200);
    CHECK(json::parse(r.body)["refuse_connections"] == true);
    CHECK(admin.request("DELETE", "/devnode/faults").status == 204);
    CHECK(Client(node.port()).get("/ping").status == 200);
    auto stats = json::parse(Client(node.port()).get("/stats").body);
    CHECK(stats["devnode_connections_refused_total"] == 1);
}

TEST_CASE("a listener beyond loopback is warned about", "[devnode][security]") {
    SECTION("loopback: no warning") {
        Devnode node;
        CHECK(Client(node.port()).get("/ping").status == 200);
        CHECK(stderr_lines_with(node, "beyond loopback").empty());
    }
    SECTION("--listen 0.0.0.0") {
        Devnode node({"--listen", "0.0.0.0:0"});
        CHECK(Client(node.port()).get("/ping").status == 200);
        std::string lines = stderr_lines_with(node, "beyond loopback");
        CHECK(std::count(lines.begin(), lines.end(), '\n') == 1);
        CHECK(lines.find(fmt::format("warning: listening on 0.0.0.0:{}", node.port())) !=
              std::string::npos);
    }
    SECTION("--listen [::] names the address in brackets") {
        if (!has_ipv6_loopback())
            FAIL("this machine has no IPv6 loopback (::1), which this test needs");
        Devnode node({"--listen", "[::]:0"});
        CHECK(Client("::1", node.port()).get("/ping").status == 200);
        std::string lines = stderr_lines_with(node, "beyond loopback");
        CHECK(std::count(lines.begin(), lines.end(), '\n') == 1);
        CHECK(lines.find(fmt::format("warning: listening on [::]:{}", node.port())) !=
              std::string::npos);
    }
    SECTION("--admin 0.0.0.0") {
        Devnode node({"--admin", "0.0.0.0:0"});
        CHECK(Client(node.admin_port()).get("/devnode/faults").status == 200);
        std::string lines = stderr_lines_with(node, "beyond loopback");
        CHECK(std::count(lines.begin(), lines.end(), '\n') == 1);
        CHECK(lines.find(fmt::format("admin routes on 0.0.0.0:{}", node.admin_port())) !=
              std::string::npos);
    }
}

TEST_CASE("partial request bodies time out and free their connections", "[devnode][security]") {
    // Four connection slots, all taken by requests whose bodies never finish.
    Devnode node({"--body-timeout", "400", "--max-connections", "4"});
    std::vector<std::unique_ptr<Client>> stuck;
    for (int i = 0; i < 4; ++i) {
        auto& c = stuck.emplace_back(std::make_unique<Client>(node.port()));
        c->connect();
        c->write_raw(kPutHead + "Content-Length: 100\r\n\r\n" + std::string(i * 10, 'x'));
    }
    // A chunked body that stops mid-chunk is just as partial.
    auto& chunked = stuck.emplace_back(std::make_unique<Client>(node.port()));
    chunked->connect();
    chunked->write_raw(kPutHead + "Transfer-Encoding: chunked\r\n\r\n10\r\nabc");
    auto t0 = Clock::now();

    // Queued behind them, a normal request is served once their bodies time out.
    Client next(node.port());
    next.connect();
    next.write_raw("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(next.wait_readable(kAnswerWait));
    auto r = next.read_response();
    CHECK(r.status == 200);
    CHECK(r.body == "OK");
    CHECK(ms_since(t0) >= 350);

    // Each stuck connection was closed without an answer.
    for (auto& c : stuck) {
        REQUIRE(c->wait_readable(kAnswerWait));
        CHECK_THROWS(c->read_response());
    }
    auto stats = json::parse(Client(node.port()).get("/stats").body);
    CHECK(stats["devnode_body_timeouts_total"] == 5);
    CHECK(Client(node.port()).get("/buckets/b/keys/k").status == 404);
}

TEST_CASE("a body that arrives in time is stored whole", "[devnode][security]") {
    Devnode node({"--body-timeout", "1000"});
    Client c(node.port());
    c.connect();
    c.write_raw(kPutHead + "Content-Length: 6\r\n\r\nabc");
    std::this_thread::sleep_for(milliseconds(300));
    c.write_raw("def");
    REQUIRE(c.wait_readable(kAnswerWait));
    CHECK(c.read_response().status == 204);
    CHECK(Client(node.port()).get("/buckets/b/keys/k").body == "abcdef");
}

TEST_CASE("a Content-Length above the object maximum is refused before the body",
          "[devnode][security]") {
    Devnode node({"--object-size-maximum", "1MB"});
    SECTION("1000 MiB: refused at once, connection closed") {
        Client c(node.port());
        c.connect();
        c.write_raw(kPutHead + "Content-Length: 1048576000\r\n\r\n");
        REQUIRE(c.wait_readable(kAnswerWait)); // not a byte of the body was sent
        auto r = c.read_response();
        CHECK(r.status == 500);
        CHECK(r.header("Content-Type") == "text/plain");
        CHECK(r.body == "Error:\n{too_large,1048576000}\n");
        CHECK_FALSE(r.keep_alive);
        CHECK(r.header("Connection") == "close");
    }
    SECTION("just above: refused at once, the body is drained, the connection stays") {
        Client c(node.port());
        c.connect();
        const size_t size = (1 << 20) + 1;
        c.write_raw(kPutHead + fmt::format("Content-Length: {}\r\n\r\n", size));
        REQUIRE(c.wait_readable(kAnswerWait));
        auto r = c.read_response();
        CHECK(r.status == 500);
        CHECK(r.body == fmt::format("Error:\n{{too_large,{}}}\n", size));
        CHECK(r.keep_alive);
        c.write_raw(std::string(size, 'x') + "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
        REQUIRE(c.wait_readable(kAnswerWait));
        CHECK(c.read_response().body == "OK");
    }
    SECTION("with Expect: 100-continue: no 100, and no body is expected") {
        Client c(node.port());
        c.connect();
        c.write_raw(kPutHead + "Content-Length: 2097152\r\nExpect: 100-continue\r\n\r\n");
        REQUIRE(c.wait_readable(kAnswerWait));
        auto r = c.read_response();
        CHECK(r.status == 500);
        CHECK(r.body == "Error:\n{too_large,2097152}\n");
        c.write_raw("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
        REQUIRE(c.wait_readable(kAnswerWait));
        CHECK(c.read_response().body == "OK");
    }
    Client c(node.port());
    CHECK(c.get("/buckets/b/keys/k").status == 404);
    CHECK(json::parse(c.get("/stats").body)["devnode_too_large_total"] == 1);
    // At the maximum the size check is the usual one on the stored object.
    CHECK(c.put("/buckets/b/keys/small", std::string(1000, 's')).status == 204);
}

TEST_CASE("a chunked body is refused as soon as it exceeds the object maximum",
          "[devnode][security]") {
    Devnode node({"--object-size-maximum", "1MB"});
    Client c(node.port());
    c.connect();
    c.write_raw(kPutHead + "Transfer-Encoding: chunked\r\n\r\n");
    // 1.5 MiB in 64 KiB chunks and no last chunk: the server must answer without the end.
    auto writer = std::async(std::launch::async, [&c] {
        const std::string chunk = fmt::format("{:x}\r\n{}\r\n", 65536, std::string(65536, 'c'));
        try {
            for (int i = 0; i < 24; ++i)
                c.write_raw(chunk);
        } catch (const std::exception&) {
            // The server may close before the last chunk; that is fine.
        }
    });
    REQUIRE(c.wait_readable(kAnswerWait));
    auto r = c.read_response();
    writer.get();
    CHECK(r.status == 500);
    CHECK(r.header("Connection") == "close");
    REQUIRE(r.body.rfind("Error:\n{too_large,", 0) == 0);
    uint64_t n = std::stoull(r.body.substr(r.body.find(',') + 1));
    CHECK(n > (1u << 20));
    CHECK(n < (1u << 20) + 65536 * 2);
    Client other(node.port());
    CHECK(other.get("/buckets/b/keys/k").status == 404);
    CHECK(json::parse(other.get("/stats").body)["devnode_too_large_total"] == 1);
}

TEST_CASE("a bad chunk size gets a 400", "[devnode][security]") {
    Devnode node;
    for (std::string size : {"zz", "-1", "fffffffffffffffffffff"}) {
        CAPTURE(size);
        Client c(node.port());
        c.connect();
        c.write_raw(kPutHead + "Transfer-Encoding: chunked\r\n\r\n" + size +
                    "\r\nabc\r\n0\r\n\r\n");
        REQUIRE(c.wait_readable(kAnswerWait));
        HttpResponse r;
        REQUIRE_NOTHROW(r = c.read_response());
        CHECK(r.status == 400);
        CHECK(r.header("Connection") == "close");
    }
    Client c(node.port());
    CHECK(c.get("/buckets/b/keys/k").status == 404);
    // Well-formed chunks, extensions included, still work.
    c.connect();
    c.write_raw(kPutHead + "Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n");
    REQUIRE(c.wait_readable(kAnswerWait));
    CHECK(c.read_response().status == 204);
    CHECK(Client(node.port()).get("/buckets/b/keys/k").body == "abc");
}
