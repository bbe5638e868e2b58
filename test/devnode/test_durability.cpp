// riak-devnode's fsync mapping (lib/devnode/README.md, "Durability"): which writes are LevelDB
// sync writes, observed through the devnode_sync_writes_total / devnode_async_writes_total
// counters of /stats. The survival of acknowledged writes across kill -9 is in
// test_connection.cpp.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "devnode_fixture.hpp"

using namespace rfs::devnode::test;
using json = nlohmann::json;

namespace {

struct WriteCounts {
    uint64_t sync = 0, async = 0;
    bool operator==(const WriteCounts& o) const { return sync == o.sync && async == o.async; }
};

std::ostream& operator<<(std::ostream& os, const WriteCounts& w) {
    return os << "{sync " << w.sync << ", async " << w.async << "}";
}

WriteCounts counts(Client& c) {
    auto r = c.get("/stats");
    REQUIRE(r.status == 200);
    auto j = json::parse(r.body);
    REQUIRE(j.contains("devnode_sync_writes_total"));
    REQUIRE(j.contains("devnode_async_writes_total"));
    return {j["devnode_sync_writes_total"].get<uint64_t>(),
            j["devnode_async_writes_total"].get<uint64_t>()};
}

// Runs `write` and returns how the counters moved.
template <class F> WriteCounts delta(Client& c, F&& write) {
    WriteCounts before = counts(c);
    write();
    WriteCounts after = counts(c);
    return {after.sync - before.sync, after.async - before.async};
}

const WriteCounts kOneSync{1, 0};
const WriteCounts kOneAsync{0, 1};
const WriteCounts kNone{0, 0};

void set_props(Client& c, const std::string& bucket_url, const std::string& props) {
    REQUIRE(c.request("PUT", bucket_url + "/props", {{"Content-Type", "application/json"}},
                      R"({"props":)" + props + "}")
                .status == 204);
}

} // namespace

TEST_CASE("object writes: dw and pw decide the fsync", "[devnode][durability]") {
    Devnode node;
    Client c(node.port());
    CHECK(counts(c) == kNone);
    auto put = [&](const std::string& url) { CHECK(c.put(url, "v").status == 204); };

    // The default bucket has dw=quorum (2 of n_val 3): synced.
    CHECK(delta(c, [&] { put("/buckets/b/keys/default"); }) == kOneSync);
    CHECK(delta(c, [&] { put("/buckets/b/keys/dw0?dw=0"); }) == kOneAsync);
    CHECK(delta(c, [&] { put("/buckets/b/keys/dw1?dw=1"); }) == kOneSync);
    CHECK(delta(c, [&] { put("/buckets/b/keys/dwone?dw=one"); }) == kOneSync);
    CHECK(delta(c, [&] { put("/buckets/b/keys/dwall?dw=all"); }) == kOneSync);
    // A primary acknowledgement asks for durability as well.
    CHECK(delta(c, [&] { put("/buckets/b/keys/pw?dw=0&pw=1"); }) == kOneSync);
    CHECK(delta(c, [&] { put("/buckets/b/keys/pw0?dw=0&pw=0"); }) == kOneAsync);
    // w alone never makes a write durable.
    CHECK(delta(c, [&] { put("/buckets/b/keys/w?dw=0&w=all"); }) == kOneAsync);
    // POST without a key (a generated one) follows the same rule.
    CHECK(delta(c, [&] {
              CHECK(c.request("POST", "/buckets/b/keys?dw=0", {{"Content-Type", "text/plain"}}, "v")
                        .status == 201);
          }) == kOneAsync);
    // Rejected requests write nothing.
    CHECK(delta(c, [&] { CHECK(c.put("/buckets/b/keys/bad?dw=4", "v").status == 400); }) == kNone);
    CHECK(delta(c, [&] { CHECK(c.put("/buckets/b/keys/bad?dw=x", "v").status == 400); }) == kNone);
}

TEST_CASE("bucket properties dw and pw resolve the default", "[devnode][durability]") {
    Devnode node;
    Client c(node.port());
    set_props(c, "/buckets/lazy", R"({"dw":0})");
    CHECK(delta(c, [&] { CHECK(c.put("/buckets/lazy/keys/k", "v").status == 204); }) == kOneAsync);
    // dw=default resolves to the bucket's value.
    CHECK(delta(c, [&] { CHECK(c.put("/buckets/lazy/keys/k?dw=default", "v").status == 204); }) ==
          kOneAsync);
    CHECK(delta(c, [&] { CHECK(c.put("/buckets/lazy/keys/k?dw=quorum", "v").status == 204); }) ==
          kOneSync);
    set_props(c, "/buckets/lazy", R"({"dw":0,"pw":"one"})");
    CHECK(delta(c, [&] { CHECK(c.put("/buckets/lazy/keys/k", "v").status == 204); }) == kOneSync);
}

TEST_CASE("sync_on_write one|all forces the fsync", "[devnode][durability]") {
    Devnode node;
    Client c(node.port());
    auto put_dw0 = [&](const std::string& url) {
        return delta(c, [&] { CHECK(c.put(url + "?dw=0", "v").status == 204); });
    };
    // Riak's bucket property, as a props PUT sets it; the default "backend" leaves dw in charge.
    CHECK(json::parse(c.get("/buckets/s/props").body)["props"]["sync_on_write"] == "backend");
    CHECK(put_dw0("/buckets/s/keys/k") == kOneAsync);
    for (const std::string v : {"one", "all"}) {
        INFO("bucket property sync_on_write=" << v);
        set_props(c, "/buckets/s", R"({"sync_on_write":")" + v + R"("})");
        CHECK(put_dw0("/buckets/s/keys/k") == kOneSync);
    }
    set_props(c, "/buckets/s", R"({"sync_on_write":"backend"})");
    CHECK(put_dw0("/buckets/s/keys/k") == kOneAsync);
    // devnode's per-request parameter does the same for one request.
    for (const std::string v : {"one", "all"}) {
        INFO("parameter sync_on_write=" << v);
        CHECK(delta(c, [&] {
                  CHECK(c.put("/buckets/p/keys/k?dw=0&sync_on_write=" + v, "v").status == 204);
              }) == kOneSync);
    }
    CHECK(delta(c, [&] {
              CHECK(c.put("/buckets/p/keys/k?dw=0&sync_on_write=backend", "v").status == 204);
          }) == kOneAsync);
}

TEST_CASE("deletes and data-type updates follow the same mapping", "[devnode][durability]") {
    Devnode node({"--bucket-type", R"(sets={"datatype":"set"})", "--bucket-type",
                  R"(counters={"datatype":"counter"})"});
    Client c(node.port());
    for (const char* k : {"a", "b", "c"})
        REQUIRE(c.put(std::string("/buckets/b/keys/") + k, "v").status == 204);

    auto del = [&](const std::string& url) {
        return delta(c, [&] { CHECK(c.request("DELETE", url).status == 204); });
    };
    CHECK(del("/buckets/b/keys/a") == kOneSync);
    CHECK(del("/buckets/b/keys/b?dw=0") == kOneAsync);
    CHECK(del("/buckets/b/keys/c?dw=0&sync_on_write=all") == kOneSync);
    // Nothing to delete: nothing written.
    CHECK(delta(c, [&] { CHECK(c.request("DELETE", "/buckets/b/keys/none").status == 404); }) ==
          kNone);

    auto post = [&](const std::string& url, const std::string& body) {
        return delta(c, [&] {
            CHECK(c.request("POST", url, {{"Content-Type", "application/json"}}, body).status ==
                  204);
        });
    };
    CHECK(post("/types/sets/buckets/b/datatypes/s", R"({"add":"x"})") == kOneSync);
    CHECK(post("/types/sets/buckets/b/datatypes/s?dw=0", R"({"add":"y"})") == kOneAsync);
    CHECK(post("/types/counters/buckets/b/datatypes/n", R"({"increment":1})") == kOneSync);
    CHECK(post("/types/counters/buckets/b/datatypes/n?dw=0", R"({"increment":1})") == kOneAsync);
}
