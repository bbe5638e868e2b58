// riak-devnode object resource over real HTTP: reads/writes, headers, parameters, siblings and
// vclock causality, tombstones, conditional requests, object size limits.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "devnode_fixture.hpp"

using namespace rfs::devnode::test;
using json = nlohmann::json;

namespace {
const std::vector<std::string> kTypes = {"--bucket-type", "mult", "--bucket-type",
                                         R"(sets={"datatype":"set"})"};
} // namespace

TEST_CASE("ping, stats and unknown routes", "[devnode]") {
    Devnode node;
    Client c(node.port());
    auto r = c.get("/ping");
    CHECK(r.status == 200);
    CHECK(r.body == "OK");
    CHECK(r.header("Content-Type") == "text/html");
    CHECK(r.header("Server").value_or("").find("MochiWeb") != std::string::npos);
    CHECK(r.header("Date"));

    c.put("/buckets/b/keys/k", "v");
    c.get("/buckets/b/keys/k");
    r = c.get("/stats");
    REQUIRE(r.status == 200);
    CHECK(r.header("Content-Type") == "application/json");
    auto j = json::parse(r.body);
    CHECK(j["node_puts_total"] == 1);
    CHECK(j["node_gets_total"] == 1);
    CHECK(j["node_puts"] == 1);
    CHECK(j["storage_backend"] == "riak_kv_eleveldb_backend");
    CHECK(j["ring_members"].size() == 1);

    CHECK(c.get("/nope").status == 404);
    CHECK(c.get("/buckets/b").status == 404);
    CHECK(c.request("POST", "/ping").status == 405);
}

TEST_CASE("object put/get/head/delete and headers", "[devnode]") {
    Devnode node;
    Client c(node.port());
    auto r = c.put("/buckets/b/keys/a%2Fb%20c", "hello", "text/plain; charset=utf-8",
                   {{"X-Riak-Meta-MTime", "1234"},
                    {"X-Riak-Meta-A-Very-Long-Header-Name", "x"},
                    {"X-Riak-Index-Parent_bin", "dir1, dir2"},
                    {"X-Riak-Index-size_int", "42"},
                    {"Link", "</buckets/other/keys/k2>; riaktag=\"child\""},
                    {"Content-Encoding", "identity"}});
    CHECK(r.status == 204);
    CHECK(r.header("Content-Length") == "0");
    CHECK(r.header("Vary") == "Accept-Encoding");
    CHECK_FALSE(r.header("X-Riak-Vclock"));

    r = c.get("/buckets/b/keys/a%2Fb%20c");
    REQUIRE(r.status == 200);
    CHECK(r.body == "hello");
    CHECK(r.header("Content-Type") == "text/plain; charset=utf-8");
    CHECK(r.header("Content-Encoding") == "identity");
    CHECK(r.header("X-Riak-Vclock"));
    auto etag = r.header("ETag").value_or("");
    CHECK(etag.size() > 2);
    CHECK(etag.front() == '"');
    CHECK(etag.back() == '"');
    CHECK(r.header("Last-Modified"));
    CHECK(r.header("Vary") == "Accept-Encoding");
    CHECK(r.header("X-Riak-Meta-Mtime") == "1234");
    // Names over 20 characters keep the sender's case.
    bool long_name = false;
    for (const auto& [n, v] : r.headers)
        long_name |= n == "X-Riak-Meta-A-Very-Long-Header-Name";
    CHECK(long_name);
    bool lower_index = false;
    for (const auto& [n, v] : r.headers)
        lower_index |= n == "x-riak-index-parent_bin" && v == "dir1, dir2";
    CHECK(lower_index);
    CHECK(r.header("x-riak-index-size_int") == "42");
    auto link = r.header("Link").value_or("");
    CHECK(link.find("</buckets/other/keys/k2>; riaktag=\"child\"") != std::string::npos);
    CHECK(link.find("</buckets/b>; rel=\"up\"") != std::string::npos);

    // The '+' of a path is a space (form decoding).
    CHECK(c.get("/buckets/b/keys/a%2Fb+c").status == 200);
    // Trailing slash is ignored, empty segments collapse.
    CHECK(c.get("/buckets//b/keys/a%2Fb%20c/").status == 200);

    auto h = c.request("HEAD", "/buckets/b/keys/a%2Fb%20c");
    CHECK(h.status == 200);
    CHECK(h.body.empty());
    CHECK(h.header("Content-Length") == "5");
    CHECK(h.header("ETag") == etag);

    r = c.get("/buckets/b/keys/missing");
    CHECK(r.status == 404);
    CHECK(r.body == "not found\n");
    CHECK(r.header("Content-Type") == "text/plain");

    CHECK(c.request("DELETE", "/buckets/b/keys/a%2Fb%20c").status == 204);
    CHECK(c.request("DELETE", "/buckets/b/keys/missing").status == 404);

    // Objects without a stored type are served as application/octet-stream is impossible over
    // HTTP (Content-Type is required), but typed and default forms address the same data.
    c.put("/types/default/buckets/b/keys/t", "typed");
    CHECK(c.get("/buckets/b/keys/t").body == "typed");
}

TEST_CASE("write validation and status codes", "[devnode]") {
    Devnode node;
    Client c(node.port());
    // Riak 3.2 (default compat) answers a PUT without Content-Type with a 500.
    CHECK(c.request("PUT", "/buckets/b/keys/k", {}, "x").status == 500);
    CHECK(c.put("/buckets/b/keys/k", "x", "nonsense").status == 415);
    auto r = c.put("/buckets/b/keys/k", "x", "text/plain", {{"X-Riak-Index-foo", "1"}});
    CHECK(r.status == 400);
    CHECK(r.body.find("Unknown field type") != std::string::npos);
    r = c.put("/buckets/b/keys/k", "x", "text/plain", {{"X-Riak-Index-foo_int", "abc"}});
    CHECK(r.status == 400);
    CHECK(c.put("/buckets/b/keys/k", "x", "text/plain", {{"Link", "garbage"}}).status == 400);
    CHECK(c.put("/buckets/b/keys/k", "x", "text/plain", {{"Link", "</buckets/other>; rel=\"up\""}})
              .status == 400);
    r = c.put("/buckets/b/keys/k?w=lots", "x");
    CHECK(r.status == 400);
    CHECK(r.body.find("w query parameter must be an integer") != std::string::npos);
    r = c.put("/buckets/b/keys/k?dw=4", "x");
    CHECK(r.status == 400);
    CHECK(r.body == "Specified w/dw/pw/node_confirms values invalid for bucket n value of 3\n");
    CHECK(c.get("/buckets/b/keys/k?r=7").status == 400);
    CHECK(c.get("/buckets/b/keys/k?timeout=soon").status == 400);
    CHECK(c.put("/buckets/b/keys/k?w=one&dw=all&pw=0", "x").status == 204);
    CHECK(c.get("/buckets/b/keys/k?r=one&pr=quorum").status == 200);
    r = c.put("/types/nosuch/buckets/b/keys/k", "x");
    CHECK(r.status == 404);
    CHECK(r.body == "Unknown bucket type: nosuch");
    CHECK(c.request("PATCH", "/buckets/b/keys/k").status == 405);

    // returnbody
    r = c.put("/buckets/b/keys/rb?returnbody=true", "body!", "application/json");
    CHECK(r.status == 200);
    CHECK(r.body == "body!");
    CHECK(r.header("X-Riak-Vclock"));
    CHECK(r.header("Content-Type") == "application/json");

    // POST without a key: 201 + Location with a generated key.
    r = c.request("POST", "/buckets/new%20b/keys", {{"Content-Type", "text/plain"}}, "gen");
    REQUIRE(r.status == 201);
    auto loc = r.header("Location").value_or("");
    CHECK(loc.rfind("/buckets/new b/keys/", 0) == 0);
    auto key = loc.substr(std::string("/buckets/new b/keys/").size());
    CHECK_FALSE(key.empty());
    CHECK(key.size() <= 27);
    CHECK(c.get("/buckets/new%20b/keys/" + key).body == "gen");
    r = c.request("POST", "/types/mult2/buckets/b/keys", {{"Content-Type", "text/plain"}}, "x");
    CHECK(r.status == 404);
    // POST to a key is a PUT.
    CHECK(c.request("POST", "/buckets/b/keys/p", {{"Content-Type", "text/plain"}}, "pp").status ==
          204);
    CHECK(c.get("/buckets/b/keys/p").body == "pp");

    // Content negotiation: an Accept that excludes the stored type is a 406.
    CHECK(c.get("/buckets/b/keys/p", {{"Accept", "application/json"}}).status == 406);
    CHECK(c.get("/buckets/b/keys/p", {{"Accept", "text/*"}}).status == 200);
    CHECK(c.get("/buckets/b/keys/p", {{"Accept", "multipart/mixed"}}).status == 406);
}

TEST_CASE("content encodings", "[devnode]") {
    Devnode node;
    Client c(node.port());
    std::string text(1000, 'a');
    c.put("/buckets/b/keys/plain", text);
    // No Accept-Encoding: identity.
    auto r = c.get("/buckets/b/keys/plain");
    CHECK(r.body == text);
    CHECK_FALSE(r.header("Content-Encoding"));
    // Accept-Encoding: gzip -> Riak gzips on the fly.
    r = c.get("/buckets/b/keys/plain", {{"Accept-Encoding", "gzip"}});
    CHECK(r.header("Content-Encoding") == "gzip");
    REQUIRE(r.body.size() > 10);
    CHECK(static_cast<unsigned char>(r.body[0]) == 0x1f);
    CHECK(static_cast<unsigned char>(r.body[1]) == 0x8b);
    CHECK(r.body.size() < text.size());
    CHECK(c.get("/buckets/b/keys/plain", {{"Accept-Encoding", "identity;q=0"}}).status == 406);
    // A stored Content-Encoding is the only one offered.
    c.put("/buckets/b/keys/gz", "opaque", "text/plain", {{"Content-Encoding", "gzip"}});
    r = c.get("/buckets/b/keys/gz");
    CHECK(r.status == 200);
    CHECK(r.body == "opaque");
    CHECK(r.header("Content-Encoding") == "gzip");
    CHECK(c.get("/buckets/b/keys/gz", {{"Accept-Encoding", "identity"}}).status == 406);
    // A stored charset is the only one offered.
    c.put("/buckets/b/keys/cs", "x", "text/plain; charset=ISO-8859-1");
    CHECK(c.get("/buckets/b/keys/cs", {{"Accept-Charset", "utf-8"}}).status == 406);
    CHECK(c.get("/buckets/b/keys/cs", {{"Accept-Charset", "iso-8859-1, utf-8"}}).status == 200);
    CHECK(c.get("/buckets/b/keys/cs", {{"Accept-Charset", "*"}}).status == 200);
    CHECK(c.get("/buckets/b/keys/plain", {{"Accept-Charset", "utf-8"}}).status == 200);
}

TEST_CASE("compat 3.0: 400 for missing Content-Type and silent close", "[devnode]") {
    Devnode node({"--compat", "3.0"});
    Client c(node.port());
    c.connect();
    c.write_raw("PUT /buckets/b/keys/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = c.read_response();
    CHECK(r.status == 400);
    CHECK(r.body == "Missing Content-Type request header\n");
    CHECK_FALSE(r.header("Connection"));
    // The socket is closed without reading the body; the pipelined ping is lost.
    CHECK_THROWS(c.read_response());
}

TEST_CASE("siblings and vclock causality", "[devnode]") {
    Devnode node(kTypes);
    Client c(node.port());
    const std::string url = "/types/mult/buckets/b/keys/k";
    CHECK(c.put(url, "one").status == 204);
    CHECK(c.put(url, "two").status == 204); // no vclock: concurrent -> sibling
    auto r = c.get(url);
    REQUIRE(r.status == 300);
    CHECK(r.header("Content-Type") == "text/plain");
    CHECK(r.body.rfind("Siblings:\n", 0) == 0);
    std::vector<std::string> vtags;
    {
        std::string rest = r.body.substr(10);
        size_t p = 0;
        while ((p = rest.find('\n')) != std::string::npos) {
            vtags.push_back(rest.substr(0, p));
            rest = rest.substr(p + 1);
        }
    }
    REQUIRE(vtags.size() == 2);
    auto vclock = r.header("X-Riak-Vclock").value_or("");
    CHECK_FALSE(vclock.empty());
    CHECK(r.header("ETag"));

    // ?vtag= picks one sibling.
    std::set<std::string> bodies;
    for (const auto& v : vtags) {
        auto s = c.get(url + "?vtag=" + v);
        CHECK(s.status == 200);
        CHECK(s.header("X-Riak-Vclock") == vclock);
        bodies.insert(s.body);
    }
    CHECK(bodies == std::set<std::string>{"one", "two"});
    CHECK(c.get(url + "?vtag=nope").status == 404);

    // multipart/mixed
    r = c.get(url, {{"Accept", "multipart/mixed, */*;q=0.5"}});
    REQUIRE(r.status == 300);
    auto ct = r.header("Content-Type").value_or("");
    REQUIRE(ct.rfind("multipart/mixed; boundary=", 0) == 0);
    std::string boundary = ct.substr(ct.find('=') + 1);
    CHECK(r.body.rfind("\r\n--" + boundary + "\r\n", 0) == 0);
    CHECK(r.body.find("\r\n--" + boundary + "--\r\n") != std::string::npos);
    CHECK(r.body.find("Etag: " + vtags[0]) != std::string::npos);
    CHECK(r.body.find("\r\n\r\none\r\n") != std::string::npos);
    CHECK(r.body.find("\r\n\r\ntwo\r\n") != std::string::npos);

    // A stale vclock (from before the second write) keeps the sibling it has not seen.
    c.put("/types/mult/buckets/b/keys/s", "s1");
    auto v1 = c.get("/types/mult/buckets/b/keys/s").header("X-Riak-Vclock").value_or("");
    c.put("/types/mult/buckets/b/keys/s", "s2", "text/plain", {{"X-Riak-Vclock", v1}});
    CHECK(c.get("/types/mult/buckets/b/keys/s").status == 200); // s2 descends s1
    c.put("/types/mult/buckets/b/keys/s", "s3", "text/plain", {{"X-Riak-Vclock", v1}});
    r = c.get("/types/mult/buckets/b/keys/s");
    CHECK(r.status == 300); // s3 is concurrent with s2
    CHECK(std::count(r.body.begin(), r.body.end(), '\n') == 3);

    // Resolving with the 300's vclock collapses the siblings.
    r = c.put(url + "?returnbody=true", "merged", "text/plain", {{"X-Riak-Vclock", vclock}});
    CHECK(r.status == 200);
    CHECK(r.body == "merged");
    r = c.get(url);
    CHECK(r.status == 200);
    CHECK(r.body == "merged");

    // returnbody with siblings answers 300.
    r = c.put(url + "?returnbody=true", "again");
    CHECK(r.status == 300);

    // Default type: allow_mult=false, last write wins, no siblings.
    c.put("/buckets/d/keys/k", "a");
    c.put("/buckets/d/keys/k", "b");
    r = c.get("/buckets/d/keys/k");
    CHECK(r.status == 200);
    CHECK(r.body == "b");
    // ... unless the bucket is switched to allow_mult.
    REQUIRE(c.request("PUT", "/buckets/d/props", {{"Content-Type", "application/json"}},
                      R"({"props":{"allow_mult":true}})")
                .status == 204);
    c.put("/buckets/d/keys/k", "c");
    CHECK(c.get("/buckets/d/keys/k").status == 300);

    // A garbage vclock is refused.
    CHECK(c.put(url, "x", "text/plain", {{"X-Riak-Vclock", "!!!"}}).status == 500);
}

TEST_CASE("sibling maximum", "[devnode]") {
    Devnode node({"--bucket-type", "mult", "--siblings-maximum", "3"});
    Client c(node.port());
    for (int i = 0; i < 3; ++i)
        CHECK(c.put("/types/mult/buckets/b/keys/k", "x").status == 204);
    auto r = c.put("/types/mult/buckets/b/keys/k", "x");
    CHECK(r.status == 500);
    CHECK(r.body == "Error:\n{too_many_siblings,4}\n");
}

TEST_CASE("tombstones and X-Riak-Deleted", "[devnode]") {
    // A reap window long enough that a loaded machine cannot let it pass between the delete
    // and the checks below; the reap is then waited for, with a generous limit.
    Devnode node({"--bucket-type", "mult", "--delete-mode", "3000"});
    Client c(node.port());
    c.put("/buckets/b/keys/k", "v");
    CHECK(c.request("DELETE", "/buckets/b/keys/k").status == 204);
    auto r = c.get("/buckets/b/keys/k");
    CHECK(r.status == 404);
    CHECK(r.body == "not found\n");
    CHECK(r.header("X-Riak-Deleted") == "true");
    CHECK(r.header("X-Riak-Vclock"));
    // Listed until reaped.
    auto keys = json::parse(c.get("/buckets/b/keys?keys=true").body)["keys"];
    CHECK(keys == json::array({"k"}));
    // A second delete without vclock: already a tombstone -> 404.
    CHECK(c.request("DELETE", "/buckets/b/keys/k").status == 404);
    auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    do {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        r = c.get("/buckets/b/keys/k");
    } while (r.header("X-Riak-Deleted") && std::chrono::steady_clock::now() < limit);
    CHECK(r.status == 404);
    CHECK_FALSE(r.header("X-Riak-Deleted"));
    CHECK(json::parse(c.get("/buckets/b/keys?keys=true").body)["keys"].empty());

    // DELETE with a vclock writes the tombstone blindly (3.0.13+).
    auto vc = c.put("/buckets/b/keys/x?returnbody=true", "x").header("X-Riak-Vclock").value();
    CHECK(c.request("DELETE", "/buckets/b/keys/never", {{"X-Riak-Vclock", vc}}).status == 204);

    // allow_mult: a blind re-create within the window becomes a sibling of the tombstone...
    const std::string url = "/types/mult/buckets/b/keys/t";
    c.put(url, "v1");
    CHECK(c.request("DELETE", url).status == 204);
    c.put(url, "v2");
    r = c.get(url, {{"Accept", "multipart/mixed, */*;q=0.5"}});
    CHECK(r.status == 300);
    CHECK(r.body.find("X-Riak-Deleted: true") != std::string::npos);
    // ... while re-creating with the tombstone's vclock does not.
    const std::string url2 = "/types/mult/buckets/b/keys/t2";
    c.put(url2, "v1");
    c.request("DELETE", url2);
    auto tvc = c.get(url2).header("X-Riak-Vclock").value();
    c.put(url2, "v2", "text/plain", {{"X-Riak-Vclock", tvc}});
    r = c.get(url2);
    CHECK(r.status == 200);
    CHECK(r.body == "v2");
    // Deleting with a 300's vclock removes all siblings.
    c.put(url2, "v3");
    r = c.get(url2);
    REQUIRE(r.status == 300);
    CHECK(
        c.request("DELETE", url2, {{"X-Riak-Vclock", r.header("X-Riak-Vclock").value()}}).status ==
        204);
    r = c.get(url2);
    CHECK(r.status == 404);
    CHECK(r.header("X-Riak-Deleted") == "true");
}

TEST_CASE("delete mode immediate", "[devnode]") {
    Devnode node({"--delete-mode", "immediate"});
    Client c(node.port());
    c.put("/buckets/b/keys/k", "v");
    CHECK(c.request("DELETE", "/buckets/b/keys/k").status == 204);
    auto r = c.get("/buckets/b/keys/k");
    CHECK(r.status == 404);
    CHECK_FALSE(r.header("X-Riak-Deleted"));
}

TEST_CASE("conditional requests", "[devnode]") {
    Devnode node;
    Client c(node.port());
    const std::string url = "/buckets/b/keys/k";
    // Create-only-if-absent.
    CHECK(c.put(url, "v1", "text/plain", {{"If-None-Match", "*"}}).status == 204);
    CHECK(c.put(url, "v2", "text/plain", {{"If-None-Match", "*"}}).status == 412);
    auto r = c.get(url);
    CHECK(r.body == "v1");
    auto etag = r.header("ETag").value();
    auto lm = r.header("Last-Modified").value();
    // Compare-and-swap.
    CHECK(c.put(url, "v2", "text/plain", {{"If-Match", "\"wrong\""}}).status == 412);
    CHECK(c.put(url, "v2", "text/plain", {{"If-Match", etag}}).status == 204);
    CHECK(c.put(url, "v3", "text/plain", {{"If-Match", etag}}).status == 412); // etag changed
    r = c.get(url);
    etag = r.header("ETag").value();
    lm = r.header("Last-Modified").value();
    // GET conditionals.
    r = c.get(url, {{"If-None-Match", etag}});
    CHECK(r.status == 304);
    CHECK(r.body.empty());
    CHECK(c.get(url, {{"If-None-Match", "\"other\""}}).status == 200);
    // Unquoted tags never match.
    std::string unquoted = etag.substr(1, etag.size() - 2);
    CHECK(c.get(url, {{"If-None-Match", unquoted}}).status == 200);
    CHECK(c.get(url, {{"If-Match", "\"other\""}}).status == 412);
    CHECK(c.get(url, {{"If-Match", etag}}).status == 200);
    CHECK(c.get(url, {{"If-Modified-Since", lm}}).status == 304);
    CHECK(c.get(url, {{"If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}}).status == 200);
    CHECK(c.get(url, {{"If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}}).status == 412);
    CHECK(c.get(url, {{"If-Unmodified-Since", lm}}).status == 200);
    CHECK(c.request("HEAD", url, {{"If-None-Match", etag}}).status == 304);
    // If-Match on a missing key.
    CHECK(c.put("/buckets/b/keys/missing", "x", "text/plain", {{"If-Match", "*"}}).status == 412);
    CHECK(c.get("/buckets/b/keys/missing", {{"If-Match", "*"}}).status == 412);
    // DELETE conditionals.
    CHECK(c.request("DELETE", url, {{"If-Match", "\"other\""}}).status == 412);
    CHECK(c.request("DELETE", url, {{"If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}})
              .status == 412);
    CHECK(c.request("DELETE", url, {{"If-None-Match", "*"}}).status == 412);
    CHECK(c.request("DELETE", url, {{"If-None-Match", etag}}).status == 412);
    CHECK(c.get(url).status == 200);
    // X-Riak-If-Not-Modified (3.0.13+).
    auto vc = c.get(url).header("X-Riak-Vclock").value();
    CHECK(c.put(url, "v4", "text/plain", {{"X-Riak-If-Not-Modified", vc}}).status == 204);
    CHECK(c.put(url, "v5", "text/plain", {{"X-Riak-If-Not-Modified", vc}}).status == 409);
    CHECK(c.get(url).body == "v4");
}

TEST_CASE("object size limits", "[devnode]") {
    Devnode node({"--object-size-maximum", "1MB", "--object-size-warning", "512KB"});
    Client c(node.port());
    CHECK(c.put("/buckets/b/keys/ok", std::string(700 * 1024, 'a')).status == 204);
    CHECK(node.stderr_text().find("large object") != std::string::npos);
    auto r = c.put("/buckets/b/keys/big", std::string(1536 * 1024, 'b'));
    CHECK(r.status == 500);
    CHECK(r.header("Content-Type") == "text/plain");
    CHECK(r.body.rfind("Error:\n{too_large,", 0) == 0);
    CHECK(r.body.back() == '\n');
    CHECK(c.get("/buckets/b/keys/big").status == 404);
    CHECK(c.get("/buckets/b/keys/ok").body.size() == 700 * 1024);
}

TEST_CASE("default 50 MB object maximum", "[devnode][slow]") {
    Devnode node;
    Client c(node.port());
    auto r = c.put("/buckets/b/keys/eight", std::string(8 << 20, 'x'));
    CHECK(r.status == 204);
    CHECK(c.get("/buckets/b/keys/eight").body.size() == (8u << 20));
    r = c.put("/buckets/b/keys/sixty", std::string(60 << 20, 'y'));
    CHECK(r.status == 500);
    CHECK(r.body.rfind("Error:\n{too_large,", 0) == 0);
    CHECK(c.get("/buckets/b/keys/sixty").status == 404);
}

TEST_CASE("the legacy /riak/B/K object route, and the old routes that are gone", "[devnode]") {
    Devnode node;
    Client c(node.port());
    auto r =
        c.put("/riak/old/k", "v1", "text/plain", {{"Link", "</riak/old/other>; riaktag=\"next\""}});
    CHECK(r.status == 204);
    r = c.get("/riak/old/k");
    CHECK(r.status == 200);
    CHECK(r.body == "v1");
    auto link = r.header("Link").value_or("");
    CHECK(link.find("</riak/old/other>; riaktag=\"next\"") != std::string::npos);
    CHECK(link.find("</riak/old>; rel=\"up\"") != std::string::npos);
    // Same data as the v2 path, which renders links in its own form (names quote_plus'd).
    r = c.get("/buckets/old/keys/k");
    CHECK(r.body == "v1");
    CHECK(r.header("Link").value_or("").find("</buckets/old/keys/other>") != std::string::npos);
    REQUIRE(c.put("/buckets/a%20b/keys/k", "v", "text/plain",
                  {{"Link", "</buckets/x%2By/keys/c%20d>; riaktag=\"t\""}})
                .status == 204);
    link = c.get("/buckets/a%20b/keys/k").header("Link").value_or("");
    CHECK(link.find("</buckets/x%2By/keys/c+d>; riaktag=\"t\"") != std::string::npos);
    CHECK(link.find("</buckets/a+b>; rel=\"up\"") != std::string::npos);
    CHECK(c.request("DELETE", "/riak/old/k").status == 204);
    CHECK(c.get("/riak/old/k").header("X-Riak-Deleted") == "true");

    // Not served (nothing uses them): the rest of the old API v1, link walking and the Riak 1.4
    // counters. They get webmachine's 404, like any path no route matches.
    REQUIRE(c.request("PUT", "/buckets/cnt/props", {{"Content-Type", "application/json"}},
                      R"({"props":{"allow_mult":true}})")
                .status == 204);
    const std::vector<std::pair<std::string, std::string>> gone = {
        {"GET", "/riak/old?keys=true"},
        {"POST", "/riak/old"},
        {"PUT", "/riak/old"},
        {"GET", "/riak/old/k/_,_,_"},
        {"GET", "/buckets/old/keys/k/_,_,_"},
        {"GET", "/buckets/cnt/counters/c"},
        {"POST", "/buckets/cnt/counters/c"},
    };
    for (const auto& [method, target] : gone) {
        INFO(method << " " << target);
        r = c.request(method, target, {{"Content-Type", "text/plain"}}, "5");
        CHECK(r.status == 404);
        CHECK(r.body.find("<TITLE>404 Not Found</TITLE>") != std::string::npos);
    }
}
