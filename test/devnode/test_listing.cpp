// riak-devnode listings over real HTTP: key and bucket listing (plain and streamed), secondary
// index queries with pagination, bucket/type properties and the set data type.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "devnode_fixture.hpp"

using namespace rfs::devnode::test;
using json = nlohmann::json;

TEST_CASE("key listing of thousands of keys", "[devnode]") {
    Devnode node({"--bucket-type", "mult"});
    Client c(node.port());
    std::set<std::string> want;
    for (int i = 0; i < 3000; ++i) {
        std::string key = fmt::format("key-{:05}", i);
        want.insert(key);
        REQUIRE(c.put("/buckets/many/keys/" + key + "?dw=0", "v").status == 204);
    }
    c.put("/buckets/other/keys/x", "v");
    c.put("/types/mult/buckets/typed/keys/y", "v");

    auto r = c.get("/buckets/many/keys?keys=true");
    REQUIRE(r.status == 200);
    CHECK(r.header("Content-Type") == "application/json");
    auto keys = json::parse(r.body)["keys"];
    CHECK(keys.size() == 3000);
    CHECK(std::set<std::string>(keys.begin(), keys.end()) == want);

    r = c.get("/buckets/many/keys?keys=stream");
    REQUIRE(r.status == 200);
    CHECK(r.header("Transfer-Encoding") == "chunked");
    auto parts = split_json_objects(r.body);
    REQUIRE(parts.size() >= 2);
    std::set<std::string> got;
    for (const auto& p : parts) {
        json part = json::parse(p);
        for (const auto& k : part["keys"])
            got.insert(k.get<std::string>());
    }
    CHECK(got == want);
    CHECK(json::parse(parts.back()) == json::parse(R"({"keys":[]})"));

    CHECK(c.get("/buckets/many/keys").status == 400);
    CHECK(c.get("/buckets/many/keys?keys=true&timeout=x").status == 400);
    CHECK(json::parse(c.get("/buckets/empty/keys?keys=true").body)["keys"].empty());

    r = c.get("/buckets?buckets=true");
    REQUIRE(r.status == 200);
    auto buckets = json::parse(r.body)["buckets"];
    CHECK(std::set<std::string>(buckets.begin(), buckets.end()) ==
          std::set<std::string>{"many", "other"});
    r = c.get("/buckets?buckets=stream");
    parts = split_json_objects(r.body);
    CHECK(json::parse(parts.back()) == json::parse(R"({"buckets":[]})"));
    r = c.get("/types/mult/buckets?buckets=true");
    CHECK(json::parse(r.body)["buckets"] == json::array({"typed"}));
    CHECK(json::parse(c.get("/types/mult/buckets/typed/keys?keys=true").body)["keys"] ==
          json::array({"y"}));
}

TEST_CASE("secondary index queries", "[devnode]") {
    Devnode node;
    Client c(node.port());
    for (int i = 0; i < 25; ++i) {
        std::string key = fmt::format("k{:02}", i);
        REQUIRE(c.put("/buckets/b/keys/" + key, "v", "text/plain",
                      {{"X-Riak-Index-parent_bin", i % 2 ? "odd" : "even"},
                       {"X-Riak-Index-n_int", std::to_string(i - 10)},
                       {"X-Riak-Index-name_bin", "name" + key}})
                    .status == 204);
    }
    auto keys_of = [](const std::string& body) {
        auto j = json::parse(body);
        std::vector<std::string> out;
        for (const auto& k : j["keys"])
            out.push_back(k.get<std::string>());
        return out;
    };
    // Exact match.
    auto r = c.get("/buckets/b/index/parent_bin/odd");
    REQUIRE(r.status == 200);
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(keys_of(r.body).size() == 12);
    CHECK(keys_of(c.get("/buckets/b/index/n_int/0").body) == std::vector<std::string>{"k10"});
    // Integer range (negative values sort numerically).
    auto range = keys_of(c.get("/buckets/b/index/n_int/-3/2").body);
    CHECK(range == std::vector<std::string>{"k07", "k08", "k09", "k10", "k11", "k12"});
    // Binary range with terms.
    r = c.get("/buckets/b/index/name_bin/namek03/namek05?return_terms=true");
    auto results = json::parse(r.body)["results"];
    CHECK(results == json::parse(R"([{"namek03":"k03"},{"namek04":"k04"},{"namek05":"k05"}])"));
    // return_terms is ignored for exact matches.
    CHECK(json::parse(c.get("/buckets/b/index/parent_bin/odd?return_terms=true").body)
              .contains("keys"));
    // term_regex on a binary range.
    r = c.get("/buckets/b/index/name_bin/namek00/namek24?term_regex=1%5B0-2%5D%24");
    CHECK(keys_of(r.body) == std::vector<std::string>{"k10", "k11", "k12"});
    CHECK(c.get("/buckets/b/index/n_int/1/3?term_regex=x").status == 400);
    // $bucket and $key.
    CHECK(keys_of(c.get("/buckets/b/index/$bucket/_").body).size() == 25);
    CHECK(keys_of(c.get("/buckets/b/index/%24key/k03/k06").body) ==
          std::vector<std::string>{"k03", "k04", "k05", "k06"});

    // Pagination over $bucket: pages of 10, 10, 5, with a continuation after full pages.
    std::vector<std::string> all;
    std::string cont;
    int pages = 0;
    for (;;) {
        std::string url = "/buckets/b/index/$bucket/_?max_results=10";
        if (!cont.empty()) url += "&continuation=" + cont;
        auto j = json::parse(c.get(url).body);
        ++pages;
        for (const auto& k : j["keys"])
            all.push_back(k.get<std::string>());
        if (!j.contains("continuation")) break;
        cont = j["continuation"].get<std::string>();
        REQUIRE(pages < 10);
    }
    CHECK(pages == 3);
    CHECK(all.size() == 25);
    CHECK(std::is_sorted(all.begin(), all.end()));

    // Pagination of a range query: a final full page is followed by an empty one.
    all.clear();
    cont.clear();
    pages = 0;
    for (;;) {
        std::string url = "/buckets/b/index/n_int/-10/14?max_results=5&return_terms=true";
        if (!cont.empty()) url += "&continuation=" + cont;
        auto j = json::parse(c.get(url).body);
        ++pages;
        for (const auto& e : j["results"])
            all.push_back(e.begin().value().get<std::string>());
        if (!j.contains("continuation")) break;
        cont = j["continuation"].get<std::string>();
        REQUIRE(pages < 20);
    }
    CHECK(pages == 6);
    CHECK(all.size() == 25);

    // Streaming.
    r = c.get("/buckets/b/index/parent_bin/even?stream=true&max_results=5");
    REQUIRE(r.status == 200);
    auto ct = r.header("Content-Type").value_or("");
    REQUIRE(ct.rfind("multipart/mixed;boundary=", 0) == 0);
    std::string boundary = ct.substr(ct.find('=') + 1);
    CHECK(r.body.find("--" + boundary + "--") != std::string::npos);
    auto parts = split_json_objects(r.body);
    REQUIRE(parts.size() == 2);
    CHECK(json::parse(parts[0])["keys"].size() == 5);
    CHECK(json::parse(parts[1]).contains("continuation"));

    // Index entries follow updates and deletes.
    c.put("/buckets/b/keys/k01", "v", "text/plain", {{"X-Riak-Index-parent_bin", "moved"}});
    CHECK(keys_of(c.get("/buckets/b/index/parent_bin/odd").body).size() == 11);
    CHECK(keys_of(c.get("/buckets/b/index/parent_bin/moved").body) ==
          std::vector<std::string>{"k01"});
    c.request("DELETE", "/buckets/b/keys/k01");
    CHECK(keys_of(c.get("/buckets/b/index/parent_bin/moved").body).empty());

    // Errors.
    CHECK(c.get("/buckets/b/index/parent/odd").status == 400);
    CHECK(c.get("/buckets/b/index/n_int/abc").status == 400);
    CHECK(c.get("/buckets/b/index/n_int/1/abc").status == 400);
    CHECK(c.get("/buckets/b/index/parent_bin/odd?max_results=0").status == 400);
    CHECK(c.get("/buckets/b/index/parent_bin/odd?max_results=x").status == 400);
    CHECK(c.get("/buckets/b/index/parent_bin/odd?continuation=@@").status == 400);
}

TEST_CASE("bucket and bucket type properties", "[devnode]") {
    Devnode node({"--bucket-type", "mult", "--bucket-type", R"(sets={"datatype":"set"})"});
    Client c(node.port());
    auto r = c.get("/buckets/b/props");
    REQUIRE(r.status == 200);
    CHECK(r.header("Content-Type") == "application/json");
    auto p = json::parse(r.body)["props"];
    CHECK(p["name"] == "b");
    CHECK(p["allow_mult"] == false);
    CHECK(p["dvv_enabled"] == false);
    CHECK(p["last_write_wins"] == false);
    CHECK(p["n_val"] == 3);
    CHECK(p["r"] == "quorum");
    CHECK(p["pw"] == 0);
    CHECK(p["notfound_ok"] == true);
    CHECK(p["basic_quorum"] == false);

    p = json::parse(c.get("/types/mult/buckets/b/props").body)["props"];
    CHECK(p["allow_mult"] == true);
    CHECK(p["dvv_enabled"] == true);
    p = json::parse(c.get("/types/sets/buckets/b/props").body)["props"];
    CHECK(p["datatype"] == "set");

    auto put_props = [&](const std::string& url, const std::string& body,
                         const std::string& ct = "application/json") {
        return c.request("PUT", url, {{"Content-Type", ct}}, body);
    };
    CHECK(put_props("/buckets/b/props", R"({"props":{"n_val":2,"last_write_wins":true}})").status ==
          204);
    p = json::parse(c.get("/buckets/b/props").body)["props"];
    CHECK(p["n_val"] == 2);
    CHECK(p["last_write_wins"] == true);
    // n_val 2 now bounds the quorums.
    CHECK(c.put("/buckets/b/keys/k?w=3", "x").status == 400);
    CHECK(c.put("/buckets/b/keys/k?w=2", "x").status == 204);

    CHECK(put_props("/buckets/b/props", R"({"props":{"n_val":"three"}})").status == 400);
    CHECK(put_props("/buckets/b/props", R"({"props":{"allow_mult":"yes"}})").status == 400);
    CHECK(put_props("/buckets/b/props", R"({"nope":{}})").status == 400);
    CHECK(put_props("/buckets/b/props", "not json").status == 400);
    CHECK(put_props("/buckets/b/props", R"({"props":{}})", "text/plain").status == 415);
    CHECK(put_props("/types/sets/buckets/b/props", R"({"props":{"datatype":"counter"}})").status ==
          400);
    CHECK(put_props("/types/nosuch/buckets/b/props", R"({"props":{}})").status == 404);

    CHECK(c.request("DELETE", "/buckets/b/props").status == 204);
    p = json::parse(c.get("/buckets/b/props").body)["props"];
    CHECK(p["n_val"] == 3);
    CHECK(p["last_write_wins"] == false);

    // Bucket type properties.
    r = c.get("/types/mult/props");
    REQUIRE(r.status == 200);
    CHECK(json::parse(r.body)["props"]["allow_mult"] == true);
    CHECK(put_props("/types/mult/props", R"({"props":{"n_val":5}})").status == 204);
    CHECK(json::parse(c.get("/types/mult/buckets/z/props").body)["props"]["n_val"] == 5);
    CHECK(put_props("/types/nosuch/props", R"({"props":{"n_val":5}})").status == 404);
    CHECK(put_props("/types/sets/props", R"({"props":{"datatype":"map"}})").status == 400);
    // An unknown type's props are webmachine's HTML 404, as on Riak 3.2.0 (no "Unknown bucket
    // type" text, which the object routes give); a method the resource lacks is still a 405.
    r = c.get("/types/nosuch/props");
    CHECK(r.status == 404);
    CHECK(r.header("Content-Type") == "text/html");
    CHECK(r.body.find("<TITLE>404 Not Found</TITLE>") != std::string::npos);
    CHECK(r.body.find("Unknown bucket type") == std::string::npos);
    CHECK(c.request("DELETE", "/types/nosuch/props").status == 405);

    // Types can also be created at run time over the admin endpoint.
    CHECK(Client(node.admin_port())
              .request("PUT", "/devnode/types/late", {}, R"({"props":{"n_val":1}})")
              .status == 201);
    CHECK(json::parse(c.get("/types/late/buckets/b/props").body)["props"]["n_val"] == 1);
}

TEST_CASE("set data type", "[devnode]") {
    Devnode node({"--bucket-type", R"(sets={"datatype":"set"})", "--bucket-type", "mult",
                  "--bucket-type", R"(counters={"datatype":"counter"})"});
    Client c(node.port());
    const std::string url = "/types/sets/buckets/b/datatypes/s";
    auto post = [&](const std::string& u, const std::string& body,
                    const std::string& ct = "application/json") {
        return c.request("POST", u, {{"Content-Type", ct}}, body);
    };
    auto r = c.get(url);
    CHECK(r.status == 404);
    CHECK(json::parse(r.body) == json::parse(R"({"type":"set","error":"notfound"})"));

    CHECK(post(url, R"({"add_all":["c","a","b"]})").status == 204);
    CHECK(post(url, R"({"add":"d"})").status == 204);
    r = c.get(url);
    REQUIRE(r.status == 200);
    CHECK(r.header("Content-Type") == "application/json");
    auto j = json::parse(r.body);
    CHECK(j["type"] == "set");
    CHECK(j["value"] == json::array({"a", "b", "c", "d"}));
    REQUIRE(j["context"].is_string());
    std::string ctx = j["context"].get<std::string>();

    // Remove with context; an element added after the fetch survives a remove of it.
    CHECK(post(url, R"({"add":"e"})").status == 204);
    CHECK(post(url, json{{"remove_all", {"a", "e"}}, {"context", ctx}}.dump()).status == 204);
    j = json::parse(c.get(url).body);
    CHECK(j["value"] == json::array({"b", "c", "d", "e"}));
    // Remove without context works for present members...
    CHECK(post(url, R"({"remove":"b"})").status == 204);
    // ... and is a precondition failure for absent ones.
    r = post(url, R"({"remove":"zz"})");
    CHECK(r.status == 500);
    CHECK(r.body.find("precondition") != std::string::npos);
    // Several operations in one update, with returnbody.
    r = post(url + "?returnbody=true", R"({"remove_all":["c"],"add":"z"})");
    CHECK(r.status == 200);
    CHECK(json::parse(r.body)["value"] == json::array({"d", "e", "z"}));
    r = c.get(url + "?include_context=false");
    CHECK_FALSE(json::parse(r.body).contains("context"));

    CHECK(post(url, R"({"add":1})").status == 400);
    CHECK(post(url, R"({"frobnicate":"x"})").status == 400);
    CHECK(post(url, "{not json").status == 400);
    CHECK(post(url, R"({"add":"x"})", "text/plain").status == 406);

    // Server-chosen key.
    r = post("/types/sets/buckets/b/datatypes", R"({"add":"x"})");
    CHECK(r.status == 201);
    CHECK(r.body.empty());
    // Riak 3.2.0 answers with the object resource's path (`/keys/`), not `/datatypes/`.
    auto loc = r.header("Location").value_or("");
    REQUIRE(loc.rfind("/types/sets/buckets/b/keys/", 0) == 0);
    const std::string made = loc.substr(loc.rfind('/') + 1);
    CHECK_FALSE(made.empty());
    CHECK(json::parse(c.get("/types/sets/buckets/b/datatypes/" + made).body)["value"] ==
          json::array({"x"}));

    // Default type redirects to the legacy counter URL; a type without datatype is refused.
    r = c.get("/types/default/buckets/b/datatypes/k");
    CHECK(r.status == 301);
    CHECK(r.header("Location") == "/buckets/b/counters/k");
    CHECK(c.get("/types/mult/buckets/b/datatypes/k").status == 404);

    // Deleting goes through the object resource.
    CHECK(c.request("DELETE", "/types/sets/buckets/b/keys/s").status == 204);
    CHECK(c.get(url).status == 404);
    CHECK(post(url, R"({"add":"fresh"})").status == 204);
    CHECK(json::parse(c.get(url).body)["value"] == json::array({"fresh"}));

    // Counter.
    const std::string curl = "/types/counters/buckets/b/datatypes/c";
    CHECK(post(curl, "5").status == 204);
    CHECK(post(curl, R"({"decrement":2})").status == 204);
    CHECK(post(curl, R"("increment")").status == 204);
    CHECK(json::parse(c.get(curl).body) == json::parse(R"({"type":"counter","value":4})"));
}
