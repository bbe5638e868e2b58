// LookupPrefetch: fetching at lookup stays on while lookups lead to opens, and stops for a while
// when they do not (a stat scan).
#include <catch2/catch.hpp>

#include "lib/migrate/lookup_prefetch.hpp"

using rfs::migrate::LookupPrefetch;

TEST_CASE("lookups followed by opens keep fetching at lookup on") {
    LookupPrefetch policy;
    for (std::uint64_t node = 1; node <= 10 * LookupPrefetch::kWindow; ++node) {
        REQUIRE(policy.want(node));
        policy.opened(node);
    }
    CHECK_FALSE(policy.paused());
}

TEST_CASE("a scan without opens pauses fetching at lookup, then it is tried again") {
    LookupPrefetch policy;
    std::uint64_t node = 1;
    for (unsigned i = 0; i < LookupPrefetch::kWindow; ++i)
        REQUIRE(policy.want(node++));
    // The window is judged at the next lookup: no hits, so it pauses.
    CHECK_FALSE(policy.want(node++));
    CHECK(policy.paused());
    for (unsigned i = 1; i < LookupPrefetch::kPause; ++i)
        REQUIRE_FALSE(policy.want(node++));
    CHECK_FALSE(policy.paused());
    CHECK(policy.want(node++)); // a new window
}

TEST_CASE("a window with enough opens stays on; opens of nodes not fetched count nothing") {
    LookupPrefetch policy;
    std::uint64_t node = 1;
    for (unsigned i = 0; i < LookupPrefetch::kWindow; ++i) {
        std::uint64_t n = node++;
        REQUIRE(policy.want(n));
        if (i < LookupPrefetch::kMinHits) {
            policy.opened(n);
            policy.opened(n); // a second open of the same fetch is not a second hit
        }
        policy.opened(100000 + i); // never fetched at lookup
    }
    CHECK(policy.want(node++));
    CHECK_FALSE(policy.paused());
    // The next window has fewer than kMinHits hits: it pauses.
    for (unsigned i = 1; i < LookupPrefetch::kWindow; ++i) {
        std::uint64_t n = node++;
        REQUIRE(policy.want(n));
        if (i < LookupPrefetch::kMinHits - 1) policy.opened(n);
    }
    CHECK_FALSE(policy.want(node++));
    CHECK(policy.paused());
}

namespace {
LookupPrefetch::Found found_at(const std::string& path) {
    LookupPrefetch::Found f;
    f.path = path;
    f.rec.key = path;
    return f;
}
} // namespace

TEST_CASE("what a lookup's fetch found is handed to the node's open, once") {
    LookupPrefetch policy;
    REQUIRE(policy.want(7));
    policy.found(7, found_at("dir/a"), policy.generation());
    auto got = policy.opened(7);
    REQUIRE(got);
    CHECK(got->path == "dir/a");
    CHECK(got->rec.key == "dir/a");
    CHECK_FALSE(policy.opened(7)); // a second open looks the record up itself
}

TEST_CASE("a lookup's find is dropped when the open came first, for a node not fetched, and "
          "after a rename") {
    LookupPrefetch policy;
    SECTION("the open came before the record") {
        REQUIRE(policy.want(7));
        CHECK_FALSE(policy.opened(7));
        policy.found(7, found_at("a"), policy.generation());
        CHECK_FALSE(policy.opened(7));
    }
    SECTION("a node not fetched at lookup") {
        policy.found(8, found_at("b"), policy.generation());
        CHECK_FALSE(policy.opened(8));
    }
    SECTION("a rename between the lookup and its record: the path may be stale") {
        REQUIRE(policy.want(7));
        auto generation = policy.generation();
        policy.forget_found();
        policy.found(7, found_at("a"), generation);
        CHECK_FALSE(policy.opened(7));
    }
    SECTION("a rename after the record") {
        REQUIRE(policy.want(7));
        policy.found(7, found_at("a"), policy.generation());
        policy.forget_found();
        CHECK_FALSE(policy.opened(7));
    }
    SECTION("the node looked up again: the newer lookup's record counts") {
        REQUIRE(policy.want(7));
        policy.found(7, found_at("old"), policy.generation());
        REQUIRE(policy.want(7));
        CHECK_FALSE(policy.opened(7)); // the newer fetch has found nothing yet
        REQUIRE(policy.want(7));
        policy.found(7, found_at("new"), policy.generation());
        auto got = policy.opened(7);
        REQUIRE(got);
        CHECK(got->path == "new");
    }
    SECTION("a slot reused kWindow lookups later") {
        REQUIRE(policy.want(7));
        policy.found(7, found_at("a"), policy.generation());
        for (std::uint64_t n = 100; n < 100 + LookupPrefetch::kWindow; ++n) {
            if (policy.want(n)) policy.opened(n);
        }
        CHECK_FALSE(policy.opened(7));
    }
}
