// The client over TLS, with and without credentials, against the real riak-devnode serving
// https (--tls-cert, --tls-key, --tls-client-ca, --user) and a canned TLS server for what
// devnode does not do: objects and pipelining over TLS, session resumption, every certificate
// failure (untrusted CA, expired, another host's name, the system store), a plain server behind
// an https:// URL, client certificates, 401 and 426 with Riak's answers, health checks with
// credentials, and TLS streams cut inside a response. Certificates are made with `openssl`
// (test/support/tls_certs.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <openssl/ssl.h>

#include "lib/riak/credentials.hpp"
#include "lib/riak/tls.hpp"
#include "test/riak/riak_test_support.hpp"
#include "test/support/tls_certs.hpp"

using namespace rfs::riak;
using namespace rfs::riak::test;
namespace proto = rfs::proto;
namespace ssl = boost::asio::ssl;
using Clock = std::chrono::steady_clock;
using rfs::devnode::test::TempDir;
using rfs::test::TestPki;

namespace {

// One set of certificates for the whole binary.
const TestPki& pki() {
    static TempDir dir;
    static TestPki made(dir.path());
    return made;
}

std::shared_ptr<TlsContext> tls_context(const std::string& ca, const std::string& cert = {},
                                        const std::string& key = {}) {
    auto made = TlsContext::make(TlsFiles{ca, cert, key});
    INFO((made ? "" : made.error().message));
    REQUIRE(made);
    return *made;
}

// One https:// node at `host`:`port`, no health checks, quick retries.
ClientConfig tls_config(std::uint16_t port, std::shared_ptr<TlsContext> tls,
                        const std::string& host = "127.0.0.1") {
    auto c = config_for({port});
    c.nodes[0].host = host;
    c.nodes[0].tls = true;
    c.tls = std::move(tls);
    c.health_interval = Duration::zero();
    c.request_timeout = std::chrono::seconds(5);
    return c;
}

// A client of `config` on its own io_context, stopped and drained at the end.
struct TlsClient {
    explicit TlsClient(ClientConfig config) : client(ioc, std::move(config)) {}
    ~TlsClient() {
        client.stop();
        drain(ioc);
    }
    template <typename T> T operator()(asio::awaitable<T> task) {
        return run(ioc, std::move(task));
    }
    asio::io_context ioc;
    Client client;
};

// A file holding `password` (for devnode's --user NAME:FILE).
std::string password_file(const TempDir& dir, const std::string& password) {
    const std::string path = dir.path() + "/password";
    std::ofstream(path) << password << "\n";
    return path;
}

std::vector<std::string> secured_args(const TempDir& dir, const std::string& password) {
    auto args = pki().devnode_args();
    args.push_back("--user");
    args.push_back("riakfs:" + password_file(dir, password));
    return args;
}

} // namespace

TEST_CASE("objects over https://, pipelined on one TLS connection", "[riak][tls]") {
    Devnode node(pki().devnode_args());
    auto config = tls_config(node.port(), tls_context(pki().ca()));
    config.connections_per_node = 1;
    config.pipeline_depth = 8;
    TlsClient c(config);
    REQUIRE(c(c.client.ping()));
    auto stored = c(c.client.store(kKey, text("over TLS")));
    REQUIRE(stored);
    auto got = c(c.client.fetch(kKey));
    REQUIRE(got);
    CHECK(got->object.value == "over TLS");

    // Slow answers: every request is written before the first response comes back.
    set_faults(node, {{"latency_ms", 100}, {"routes", {"object"}}});
    std::size_t done = 0, ok = 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < 8; ++i)
        asio::co_spawn(c.ioc, c.client.fetch(kKey), [&](std::exception_ptr, auto r) {
            ++done;
            ok += r && r->object.value == "over TLS";
        });
    run_until(c.ioc, [&] { return done >= 8; });
    CHECK(ok == 8);
    CHECK(c.client.nodes()[0].max_pipelined >= 4);
    // Answered one after another by the node (8 x 100 ms), but sent together: far less than 8
    // round trips plus 8 handshakes.
    CHECK(Clock::now() - t0 < std::chrono::milliseconds(2000));
    CHECK(c.client.nodes()[0].connections == 1);
    CHECK(c.client.nodes()[0].tls_handshakes == 1);
}

TEST_CASE("a new connection resumes the node's TLS session", "[riak][tls]") {
    Devnode node(pki().devnode_args());
    auto config = tls_config(node.port(), tls_context(pki().ca()));
    config.connections_per_node = 1;
    TlsClient c(config);
    // Each request asks the node to close afterwards (Riak closes without saying so): the next
    // one needs a new connection, and offers the session the last one was given.
    for (int i = 0; i < 4; ++i) {
        auto request = proto::make_request(proto::http::verb::get, "", proto::ping_target());
        request.set(proto::http::field::connection, "close");
        auto res = c(c.client.execute(std::move(request)));
        REQUIRE(res);
        CHECK(res->result_int() == 200);
        wait_for(c.ioc, std::chrono::milliseconds(50)); // the close reaches the client
    }
    const auto status = c.client.nodes()[0];
    CHECK(status.tls_handshakes == 4);
    CHECK(status.tls_resumed == 3);
    auto stats = c(c.client.stats());
    REQUIRE(stats);
    CHECK(stats->number("devnode_tls_resumed_total").value_or(0) >= 3);
}

TEST_CASE("failover and timeouts work over TLS as over TCP", "[riak][tls]") {
    SECTION("a killed node: requests go to the other one") {
        Devnode a(pki().devnode_args()), b(pki().devnode_args());
        auto config = tls_config(a.port(), tls_context(pki().ca()));
        auto second = config.nodes[0];
        second.port = b.port();
        config.nodes.push_back(second);
        config.health_interval = std::chrono::milliseconds(100);
        TlsClient c(config);
        c.client.start();
        REQUIRE(c(c.client.store(kKey, text("on both"))));
        a.kill9();
        // Each node has its own copy in this test, so only the answer, not the value, matters.
        int ok = 0;
        for (int i = 0; i < 10; ++i)
            ok += static_cast<bool>(c(c.client.ping()));
        CHECK(ok == 10);
        wait_for(c.ioc, std::chrono::milliseconds(400));
        CHECK_FALSE(c.client.nodes()[0].healthy);
        CHECK(c.client.nodes()[1].healthy);
    }
    SECTION("a node too slow for the request timeout: timeout, then the node again") {
        Devnode node(pki().devnode_args());
        auto config = tls_config(node.port(), tls_context(pki().ca()));
        config.request_timeout = std::chrono::milliseconds(300);
        config.retry.max_attempts = 1;
        TlsClient c(config);
        REQUIRE(c(c.client.store(kKey, text("slow"))));
        set_faults(node, {{"latency_ms", 2000}, {"routes", {"object"}}});
        auto r = c(c.client.fetch(kKey));
        REQUIRE_FALSE(r);
        CHECK(r.error().code == Errc::timeout);
        clear_faults(node);
        auto back = c(c.client.fetch(kKey));
        REQUIRE(back);
        CHECK(back->object.value == "slow");
    }
}

TEST_CASE("certificates that fail verification: tls_failed with the reason, at once",
          "[riak][tls]") {
    struct Case {
        const char* what;
        std::string cert;   // the node's
        std::string trust;  // the client's CA file ("" = the system store)
        std::string host;   // as in the URL
        const char* reason; // in the message
    };
    const std::vector<Case> cases = {
        {"a CA the client does not trust", pki().server_cert(), pki().other_ca(), "127.0.0.1",
         "unable to get local issuer certificate"},
        {"the system store (our CA is in no system store)", pki().server_cert(), "", "127.0.0.1",
         "unable to get local issuer certificate"},
        {"an expired certificate", pki().expired_cert(), pki().ca(), "127.0.0.1",
         "certificate has expired"},
        {"a certificate for another host, by IP address", pki().wrong_host_cert(), pki().ca(),
         "127.0.0.1", "IP address mismatch"},
        {"a certificate for another host, by name", pki().wrong_host_cert(), pki().ca(),
         "localhost", "hostname mismatch"},
    };
    for (const auto& k : cases) {
        SECTION(k.what) {
            Devnode node(pki().devnode_args(k.cert));
            auto made = TlsContext::make(TlsFiles{k.trust, "", ""});
            REQUIRE(made);
            auto config = tls_config(node.port(), *made, k.host);
            config.retry.max_attempts = 3;
            TlsClient c(config);
            const auto t0 = Clock::now();
            auto r = c(c.client.fetch(kKey));
            REQUIRE_FALSE(r);
            INFO(r.error().describe());
            CHECK(r.error().code == Errc::tls_failed);
            CHECK(r.error().to_errno() == EIO);
            CHECK(r.error().message.find(k.reason) != std::string::npos);
            CHECK(Clock::now() - t0 < std::chrono::seconds(3));
            // The node is down, and says why.
            const auto status = c.client.nodes()[0];
            CHECK_FALSE(status.healthy);
            CHECK(status.last_error.find(k.reason) != std::string::npos);
            CHECK(status.tls_handshakes == 0);
        }
    }
    SECTION("the same host by name, with the right certificate: fine (SNI and name check)") {
        Devnode node(pki().devnode_args());
        TlsClient c(tls_config(node.port(), tls_context(pki().ca()), "localhost"));
        CHECK(c(c.client.ping()));
    }
}

TEST_CASE("a node that accepts and never answers the handshake: timed out, never a hang",
          "[riak][tls]") {
    // A TCP listener that accepts every connection and then says nothing (a TLS port behind a
    // stuck proxy, or a node wedged before its handshake): connect_timeout bounds the handshake.
    asio::io_context ioc;
    tcp::acceptor silent(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::vector<std::unique_ptr<tcp::socket>> held;
    std::function<void()> accept_next = [&] {
        silent.async_accept([&](boost::system::error_code ec, tcp::socket s) {
            if (ec) return;
            held.push_back(std::make_unique<tcp::socket>(std::move(s)));
            accept_next();
        });
    };
    accept_next();
    auto config = tls_config(silent.local_endpoint().port(), tls_context(pki().ca()));
    config.connect_timeout = std::chrono::milliseconds(200);
    config.retry.max_attempts = 1;
    std::size_t fds_before = 0;
    {
        Client client(ioc, config);
        fds_before = std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                   std::filesystem::directory_iterator());
        for (int i = 0; i < 5; ++i) {
            const auto t0 = Clock::now();
            auto r = run(ioc, client.ping());
            REQUIRE_FALSE(r);
            INFO(r.error().describe());
            CHECK(r.error().code == Errc::connection_refused);
            CHECK(r.error().message.find("TLS handshake") != std::string::npos);
            CHECK(r.error().message.find("timed out") != std::string::npos);
            CHECK(Clock::now() - t0 < std::chrono::seconds(2));
        }
        CHECK(held.size() == 5); // each attempt reached the node: a handshake was waited for
        CHECK(client.nodes()[0].tls_handshakes == 0);
        client.stop();
        drain(ioc);
    }
    // The connections given up during their handshake closed their descriptors (the node's
    // ends are closed here; a little slack for what the loop opens on first use).
    held.clear();
    const std::size_t fds_after =
        std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                      std::filesystem::directory_iterator());
    CHECK(fds_after <= fds_before + 2);
}

TEST_CASE("no plain text: an https:// URL on a plain node, an http:// URL on a TLS node",
          "[riak][tls]") {
    SECTION("https:// to a plain HTTP node: the handshake fails, nothing is sent in clear") {
        Devnode node;
        TlsClient c(tls_config(node.port(), tls_context(pki().ca())));
        auto r = c(c.client.ping());
        REQUIRE_FALSE(r);
        INFO(r.error().describe());
        CHECK(r.error().code == Errc::tls_failed);
    }
    SECTION("http:// to a TLS node: no answer, never a request served") {
        Devnode node(pki().devnode_args());
        auto config = config_for({node.port()});
        config.health_interval = Duration::zero();
        config.retry.max_attempts = 2;
        TlsClient c(config);
        auto r = c(c.client.ping());
        REQUIRE_FALSE(r);
        INFO(r.error().describe());
        TlsClient secure(tls_config(node.port(), tls_context(pki().ca())));
        auto stats = secure(secure.client.stats());
        REQUIRE(stats);
        CHECK(stats->number("devnode_tls_failures_total").value_or(0) >= 1);
    }
}

TEST_CASE("client certificates: required by the node, sent by the client", "[riak][tls]") {
    auto args = pki().devnode_args();
    args.push_back("--tls-client-ca");
    args.push_back(pki().ca());
    Devnode node(args);
    SECTION("without one: tls_failed") {
        auto config = tls_config(node.port(), tls_context(pki().ca()));
        config.retry.max_attempts = 2;
        TlsClient c(config);
        auto r = c(c.client.ping());
        REQUIRE_FALSE(r);
        INFO(r.error().describe());
        CHECK(r.error().code == Errc::tls_failed);
    }
    SECTION("with one: served") {
        TlsClient c(tls_config(node.port(),
                               tls_context(pki().ca(), pki().client_cert(), pki().client_key())));
        CHECK(c(c.client.ping()));
        CHECK(c(c.client.store(kKey, text("mutual"))));
    }
}

TEST_CASE("credentials: 401 with Riak's answer when missing or wrong, served when right",
          "[riak][tls][auth]") {
    TempDir dir;
    Devnode node(secured_args(dir, "s3cret"));
    auto base = tls_config(node.port(), tls_context(pki().ca()));
    const std::string page =
        "<html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1>"
        "Unauthorized<p><hr><address>mochiweb+webmachine web server</address></body></html>";
    auto check_401 = [&](const std::string& authorization) {
        auto config = base;
        config.authorization = authorization;
        TlsClient c(config);
        auto res = c(c.client.execute(
            proto::make_request(proto::http::verb::get, "", proto::ping_target())));
        REQUIRE(res);
        CHECK(res->result_int() == 401);
        CHECK((*res)[proto::http::field::www_authenticate] == "Basic realm=\"Riak\"");
        CHECK(res->body() == page);
        // Typed calls: a client error, EACCES to the application, not retried.
        auto r = c(c.client.fetch(kKey));
        REQUIRE_FALSE(r);
        CHECK(r.error().http_status == 401);
        CHECK(r.error().to_errno() == EACCES);
        // A PUT refused before its body was read: the connection stays usable.
        auto put = c(c.client.store(kKey, text(std::string(100000, 'x'))));
        REQUIRE_FALSE(put);
        CHECK(put.error().http_status == 401);
        auto again = c(c.client.fetch(kKey));
        REQUIRE_FALSE(again);
        CHECK(again.error().http_status == 401);
        CHECK(c.client.nodes()[0].tls_handshakes == 1);
    };
    SECTION("missing") {
        check_401("");
    }
    SECTION("wrong password") {
        check_401(basic_authorization({"riakfs", "guess"}));
    }
    SECTION("unknown user") {
        check_401(basic_authorization({"nobody", "s3cret"}));
    }
    SECTION("not basic") {
        check_401("Bearer s3cret");
    }
    SECTION("right: every call works, and /stats needs none") {
        auto config = base;
        config.authorization = basic_authorization({"riakfs", "s3cret"});
        TlsClient c(config);
        CHECK(c(c.client.ping()));
        REQUIRE(c(c.client.store(kKey, text("authenticated"))));
        auto got = c(c.client.fetch(kKey));
        REQUIRE(got);
        CHECK(got->object.value == "authenticated");
        auto keys = c(c.client.list_keys(proto::BucketId{"", "b"}));
        REQUIRE(keys);
        CHECK(*keys == std::vector<std::string>{"k"});
        TlsClient anonymous(base);
        auto stats = anonymous(anonymous.client.stats());
        REQUIRE(stats);
        CHECK(stats->number("devnode_auth_refusals_total").value_or(-1) == 0);
    }
}

TEST_CASE("health checks carry the credentials", "[riak][tls][auth]") {
    TempDir dir;
    Devnode node(secured_args(dir, "s3cret"));
    auto config = tls_config(node.port(), tls_context(pki().ca()));
    config.health_interval = std::chrono::milliseconds(100);
    SECTION("right ones: the node stays up") {
        config.authorization = basic_authorization({"riakfs", "s3cret"});
        TlsClient c(config);
        c.client.start();
        wait_for(c.ioc, std::chrono::milliseconds(600));
        CHECK(c.client.nodes()[0].healthy);
    }
    SECTION("none: the ping's 401 marks the node down") {
        TlsClient c(config);
        c.client.start();
        wait_for(c.ioc, std::chrono::milliseconds(600));
        const auto status = c.client.nodes()[0];
        CHECK_FALSE(status.healthy);
        CHECK(status.last_error.find("401") != std::string::npos);
    }
}

TEST_CASE("security over plain HTTP: 426, as Riak", "[riak][auth]") {
    TempDir dir;
    auto args = std::vector<std::string>{"--user", "riakfs:" + password_file(dir, "s3cret")};
    Devnode node(args);
    TlsClient c(config_for({node.port()}));
    auto res =
        c(c.client.execute(proto::make_request(proto::http::verb::get, "", proto::ping_target())));
    REQUIRE(res);
    CHECK(res->result_int() == 426);
    CHECK(res->body() == "Security is enabled and Riak does not accept credentials over HTTP. "
                         "Try HTTPS instead.");
    // /stats has no authorization in Riak.
    CHECK(c(c.client.stats()));
}

TEST_CASE("riak-devnode refuses TLS and --user settings it cannot use, in one line",
          "[riak][tls][devnode]") {
    TempDir dir;
    const std::string colon = dir.path() + "/colon";
    std::ofstream(colon) << "pa:ss\n";
    const std::string empty = dir.path() + "/empty";
    std::ofstream(empty) << "\n";
    const std::vector<std::pair<std::vector<std::string>, const char*>> cases = {
        {{"--tls-cert", pki().server_cert()}, "--tls-cert and --tls-key go together"},
        {{"--tls-cert", dir.path() + "/missing.pem", "--tls-key", pki().server_key()},
         "No such file"},
        {{"--tls-cert", pki().server_cert(), "--tls-key", pki().client_key()}, "does not belong"},
        {{"--tls-client-ca", pki().ca()}, "--tls-client-ca needs --tls-cert"},
        {{"--user", "riakfs"}, "NAME:PASSWORD-FILE"},
        {{"--user", "riakfs:" + dir.path() + "/missing"}, "cannot read"},
        {{"--user", "riakfs:" + empty}, "no password"},
        {{"--user", "riakfs:" + colon}, "contains ':'"},
    };
    for (const auto& [args, why] : cases) {
        std::vector<std::string> argv = {"--data", dir.path() + "/data", "--listen", "127.0.0.1:0"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto [status, err] = Devnode::run_to_exit(argv);
        INFO(why << ": " << err);
        CHECK(status == 1);
        CHECK(err.find(why) != std::string::npos);
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    }
}

TEST_CASE("a TLS stream cut inside a response from devnode: an error, then the node again",
          "[riak][tls][faults]") {
    Devnode node(pki().devnode_args());
    auto config = tls_config(node.port(), tls_context(pki().ca()));
    config.retry.max_attempts = 3;
    TlsClient c(config);
    REQUIRE(c(c.client.store(kKey, text(std::string(200000, 'v')))));
    // Half of each response's bytes in TLS records, then a TCP reset without close_notify.
    set_faults(node, {{"reset_rate", 1.0}, {"routes", {"object"}}, {"methods", {"GET"}}});
    const auto t0 = Clock::now();
    auto r = c(c.client.fetch(kKey));
    REQUIRE_FALSE(r);
    INFO(r.error().describe());
    CHECK((r.error().code == Errc::connection_reset || r.error().code == Errc::truncated_response));
    CHECK(Clock::now() - t0 < std::chrono::seconds(5));
    clear_faults(node);
    auto stats = c(c.client.stats());
    REQUIRE(stats);
    CHECK(stats->number("devnode_faults_injected_total").value_or(0) == 3); // every attempt
    auto back = c(c.client.fetch(kKey));
    REQUIRE(back);
    CHECK(back->object.value.size() == 200000);
}

namespace {

// A TLS server that answers every request with `reply`, then ends the connection the way the
// test says: with a close_notify, by closing TCP without one, or with bytes that are no TLS.
class CannedTlsServer {
public:
    enum class End { close_notify, tcp_close, garbage };
    CannedTlsServer(asio::io_context& ioc, std::string reply, End end)
        : ioc_(ioc), reply_(std::move(reply)), end_(end), context_(ssl::context::tls_server),
          acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        context_.use_certificate_chain_file(pki().server_cert());
        context_.use_private_key_file(pki().server_key(), ssl::context::pem);
        asio::co_spawn(ioc_, accept_loop(), asio::detached);
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::size_t requests() const { return requests_; }

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, s] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            asio::co_spawn(
                ioc_, serve(std::make_shared<ssl::stream<tcp::socket>>(std::move(s), context_)),
                asio::detached);
        }
    }
    asio::awaitable<void> serve(std::shared_ptr<ssl::stream<tcp::socket>> s) {
        constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
        auto [hec] = co_await s->async_handshake(ssl::stream_base::server, tuple);
        if (hec) co_return;
        std::string in;
        std::vector<char> buf(4096);
        while (in.find("\r\n\r\n") == std::string::npos) {
            auto [ec, n] = co_await s->async_read_some(asio::buffer(buf), tuple);
            if (ec) co_return;
            in.append(buf.data(), n);
        }
        ++requests_;
        co_await asio::async_write(*s, asio::buffer(reply_), tuple);
        boost::system::error_code ignored;
        switch (end_) {
        case End::close_notify:
            SSL_set_shutdown(s->native_handle(), SSL_RECEIVED_SHUTDOWN);
            co_await s->async_shutdown(tuple);
            s->next_layer().close(ignored);
            break;
        case End::tcp_close:
            s->next_layer().close(ignored);
            break;
        case End::garbage: {
            static const std::string junk = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nclear";
            co_await asio::async_write(s->next_layer(), asio::buffer(junk), tuple);
            s->next_layer().close(ignored);
            break;
        }
        }
    }

    asio::io_context& ioc_;
    std::string reply_;
    End end_;
    ssl::context context_;
    tcp::acceptor acceptor_;
    std::size_t requests_ = 0;
};

} // namespace

TEST_CASE("TLS endings: a cut is never taken for the end of a response", "[riak][tls][faults]") {
    using End = CannedTlsServer::End;
    const std::string partial = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 100\r\n\r\nonly part of it";
    // Framed by the end of the connection (no Content-Length, not chunked).
    const std::string unframed = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it";
    struct Case {
        const char* what;
        std::string reply;
        End end;
        bool complete; // the response may be taken as whole
    };
    const std::vector<Case> cases = {
        {"Content-Length longer than the body, close_notify", partial, End::close_notify, false},
        {"Content-Length longer than the body, TCP closed", partial, End::tcp_close, false},
        {"unframed body, TCP closed without close_notify", unframed, End::tcp_close, false},
        {"unframed body, ended by close_notify", unframed, End::close_notify, true},
        {"plain text bytes where TLS records belong", partial, End::garbage, false},
    };
    for (const auto& k : cases) {
        SECTION(k.what) {
            asio::io_context ioc;
            CannedTlsServer server(ioc, k.reply, k.end);
            auto config = tls_config(server.port(), tls_context(pki().ca()));
            config.retry.max_attempts = 2;
            Client client(ioc, config);
            auto call = client.execute(proto::make_request(proto::http::verb::get, "", "/x"));
            auto r = run(ioc, std::move(call));
            client.stop();
            drain(ioc);
            if (k.complete) {
                REQUIRE(r);
                CHECK(r->body() == "all of it");
            } else {
                REQUIRE_FALSE(r);
                INFO(r.error().describe());
                CHECK((r.error().code == Errc::truncated_response ||
                       r.error().code == Errc::connection_reset ||
                       r.error().code == Errc::malformed_response));
                CHECK(server.requests() >= 1);
            }
        }
    }
}
