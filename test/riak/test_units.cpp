// Unit tests of the client's pure parts: node URLs, errors, retry delays, sibling resolution,
// request heads, the in-flight byte budget (on an io_context, no sockets), and the security
// options: schemes, TLS files, the credentials file and its checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <random>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "lib/riak/byte_budget.hpp"
#include "lib/riak/client.hpp"
#include "lib/riak/config.hpp"
#include "lib/riak/credentials.hpp"
#include "lib/riak/errors.hpp"
#include "lib/riak/retry_policy.hpp"
#include "lib/riak/security.hpp"
#include "lib/riak/sibling_resolver.hpp"
#include "lib/riak/tls.hpp"

using namespace rfs::riak;
namespace asio = boost::asio;

namespace {

// A temporary directory with files written at a given mode (removed with it).
class TempFiles {
public:
    TempFiles() {
        char tmpl[] = "/tmp/riak-units-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
    }
    ~TempFiles() { std::system(("rm -rf '" + dir_ + "'").c_str()); }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    std::string write(const std::string& name, const std::string& text, mode_t mode) {
        const std::string p = path(name);
        ::unlink(p.c_str());
        std::ofstream(p, std::ios::binary) << text;
        ::chmod(p.c_str(), mode);
        return p;
    }

private:
    std::string dir_;
};

} // namespace

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
    for (const char* bad : {"ftp://h:1", "h:8098", "http://:80", "http://h:0", "http://h:99999",
                            "http://h:80/riak", "http://h:x", "http://[::1", "http://h:",
                            "http://user@h:80", "http://h:80/?x=1", "http://h:80#top", "http://h 1",
                            "http://[v1.x]:80", "https://user:pw@h:1", "https://h:1/riak", ""}) {
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

TEST_CASE("https:// node URLs, and one scheme for all nodes", "[riak][config][tls]") {
    auto a = parse_node_url("https://riak.example:8443");
    REQUIRE(a);
    CHECK(a->tls);
    CHECK(a->host == "riak.example");
    CHECK(a->port == 8443);
    CHECK(a->url() == "https://riak.example:8443");
    CHECK(a->host_header() == "riak.example:8443");
    auto b = parse_node_url("https://[::1]/");
    REQUIRE(b);
    CHECK(b->tls);
    CHECK(b->port == 8098);
    CHECK(b->url() == "https://[::1]:8098");
    CHECK_FALSE(parse_node_url("http://h:1")->tls);
    auto both = parse_node_list("https://a:1,https://b:2");
    REQUIRE(both);
    CHECK(((*both)[0].tls && (*both)[1].tls));
    auto mixed = parse_node_list("https://a:1,http://b:2");
    REQUIRE_FALSE(mixed);
    CHECK(mixed.error().message.find("mixes http:// and https://") != std::string::npos);
    // Credentials in a URL are refused, pointing at the credentials file.
    auto creds = parse_node_url("https://admin:secret@h:1");
    REQUIRE_FALSE(creds);
    CHECK(creds.error().message.find("credentials file") != std::string::npos);
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

TEST_CASE("validation: TLS only with https:// nodes, credentials never in clear", "[riak][tls]") {
    ClientConfig c;
    c.nodes.push_back(NodeAddress{"127.0.0.1", 1});
    c.authorization = basic_authorization({"u", "p"});
    auto clear = Client::validate(c);
    REQUIRE_FALSE(clear);
    CHECK(clear.error().message.find("in clear") != std::string::npos);

    c.authorization.clear();
    c.nodes[0].tls = true;
    CHECK_FALSE(Client::validate(c)); // https:// without a TLS context
    auto context = TlsContext::make(TlsFiles{});
    REQUIRE(context);
    c.tls = *context;
    CHECK(Client::validate(c));
    c.authorization = basic_authorization({"u", "p"});
    CHECK(Client::validate(c));
    c.nodes[0].tls = false; // a TLS context with an http:// node would be ignored: refused
    CHECK_FALSE(Client::validate(c));
}

TEST_CASE("the security options against the nodes", "[riak][tls]") {
    const auto https = *parse_node_list("https://a:1");
    const auto http = *parse_node_list("http://a:1");
    SecurityOptions o;
    CHECK(check_security_options(https, o, kMountOptionNames));
    CHECK(check_security_options(http, o, kMountOptionNames));

    o.credentials_file = "/x";
    CHECK(check_security_options(https, o, kMountOptionNames));
    auto clear = check_security_options(http, o, kMountOptionNames);
    REQUIRE_FALSE(clear);
    CHECK(clear.error().message.find("riak_credentials=") != std::string::npos);
    CHECK(clear.error().message.find("in clear") != std::string::npos);
    auto ctl = check_security_options(http, o, kCtlOptionNames);
    REQUIRE_FALSE(ctl);
    CHECK(ctl.error().message.find("--riak-credentials") != std::string::npos);

    SecurityOptions ca;
    ca.tls.ca_file = "/ca.pem";
    auto useless = check_security_options(http, ca, kMountOptionNames);
    REQUIRE_FALSE(useless);
    CHECK(useless.error().message.find("riak_ca= is for TLS") != std::string::npos);

    SecurityOptions half;
    half.tls.cert_file = "/c.pem";
    auto alone = check_security_options(https, half, kMountOptionNames);
    REQUIRE_FALSE(alone);
    CHECK(alone.error().message.find("riak_cert= and riak_key= go together") != std::string::npos);
    half.tls = TlsFiles{"", "", "/k.pem"};
    CHECK_FALSE(check_security_options(https, half, kMountOptionNames));
}

TEST_CASE("TLS files that cannot be used are one line naming the file", "[riak][tls]") {
    ClientConfig c;
    c.nodes = *parse_node_list("https://a:1");
    SecurityOptions o;
    o.tls.ca_file = "/no/such/ca.pem";
    auto missing = apply_security(o, kMountOptionNames, c);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("CA file '/no/such/ca.pem'") != std::string::npos);
    CHECK(missing.error().message.find("No such file") != std::string::npos);
    CHECK(missing.error().message.find('\n') == std::string::npos);

    TempFiles dir;
    const std::string junk = dir.write("junk.pem", "not a certificate\n", 0644);
    o.tls.ca_file = junk;
    auto garbage = apply_security(o, kMountOptionNames, c);
    REQUIRE_FALSE(garbage);
    CHECK(garbage.error().message.find("CA file '" + junk + "'") != std::string::npos);

    // The system store, and no credentials: a context and no Authorization.
    ClientConfig plain_store;
    plain_store.nodes = c.nodes;
    REQUIRE(apply_security(SecurityOptions{}, kMountOptionNames, plain_store));
    CHECK(plain_store.tls != nullptr);
    CHECK(plain_store.authorization.empty());
}

TEST_CASE("the credentials file: one USER:PASSWORD line, private to its owner",
          "[riak][credentials]") {
    TempFiles dir;
    auto read = [&](const std::string& text, mode_t mode = 0600) {
        return read_credentials_file(dir.write("cred", text, mode));
    };
    for (const char* good : {"riakfs:s3cret", "riakfs:s3cret\n", "riakfs:s3cret\r\n"}) {
        INFO(good);
        auto c = read(good);
        REQUIRE(c);
        CHECK(c->user == "riakfs");
        CHECK(c->password == "s3cret");
    }
    auto spaced = read("ops team:pass word with spaces\n");
    REQUIRE(spaced);
    CHECK(spaced->user == "ops team");
    CHECK(spaced->password == "pass word with spaces");

    const std::pair<const char*, const char*> bad[] = {
        {"no-colon", "no ':'"},
        {":pw", "user (before the ':') is empty"},
        {"user:", "password (after the ':') is empty"},
        {"user:pa:ss", "contains ':'"},
        {"user:pw\nsecond line\n", "more than one line"},
        {"", "no ':'"},
    };
    for (const auto& [text, why] : bad) {
        INFO(text);
        auto c = read(text);
        REQUIRE_FALSE(c);
        CHECK(c.error().message.find(why) != std::string::npos);
        // The content never appears in the message, only the file and what is wrong.
        CHECK(c.error().message.find("pa:ss") == std::string::npos);
        CHECK(c.error().message.find("credentials file '" + dir.path("cred") + "'") !=
              std::string::npos);
    }
    for (mode_t mode : {0640, 0604, 0660, 0620, 0602}) {
        INFO(std::oct << mode);
        auto c = read("user:hunter2", mode);
        REQUIRE_FALSE(c);
        CHECK(c.error().message.find("chmod 600") != std::string::npos);
        CHECK(c.error().message.find("hunter2") == std::string::npos);
    }
    CHECK(read("user:pw", 0400));
    // Owned by someone else (root can hand it over): refused, whatever its mode.
    const std::string other = dir.write("other", "user:pw", 0600);
    if (::geteuid() == 0) {
        REQUIRE(::chown(other.c_str(), 65534, 65534) == 0);
        auto c = read_credentials_file(other);
        REQUIRE_FALSE(c);
        CHECK(c.error().message.find("owned by uid 65534") != std::string::npos);
    } else {
        WARN("not root: the owner check is covered by the integration tests only");
    }
    auto missing = read_credentials_file(dir.path("missing"));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("No such file") != std::string::npos);
    auto directory = read_credentials_file(dir.path(""));
    REQUIRE_FALSE(directory);
    CHECK(directory.error().message.find("not a regular file") != std::string::npos);
}

TEST_CASE("basic authorization is base64 of user:password", "[riak][credentials]") {
    // RFC 7617's example.
    CHECK(basic_authorization({"Aladdin", "open sesame"}) == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    CHECK(basic_authorization({"a", "b"}) == "Basic YTpi");
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
    CHECK(head.find("Authorization") == std::string::npos);
    const std::string secured =
        serialize_head(req, NodeAddress{"10.0.0.1", 8098, true}, "Basic YTpi");
    CHECK(secured.find("Authorization: Basic YTpi\r\n") != std::string::npos);
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
