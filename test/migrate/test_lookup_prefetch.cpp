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
