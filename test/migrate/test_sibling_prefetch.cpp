// SiblingPrefetch: the files of a directory fetched ahead of a reader that opens them in order
// (name order or the directory's own), nothing for a reader out of order, and the listing made
// once per directory (again only for a file created since). Its decisions alone, with listings
// the test makes; the fetches through a real mount are in test/integration/test_migrate.cpp.
#include "lib/migrate/sibling_prefetch.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

using namespace rfs;
using migrate::SiblingPrefetch;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_sibling_prefetch {

namespace {

struct Listings {
    std::map<std::string, std::vector<std::string>> dirs; // absent: cannot be listed
    unsigned calls = 0;
    SiblingPrefetch::List list() {
        return [this](const std::string& dir) -> std::optional<std::vector<std::string>> {
            ++calls;
            auto it = dirs.find(dir);
            if (it == dirs.end()) return std::nullopt;
            return it->second;
        };
    }
};

std::vector<std::string> names(const std::string& prefix, int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i)
        out.push_back(prefix + std::to_string(100 + i));
    return out;
}

} // namespace

TEST_CASE("siblings: a reader in name order has the next files fetched ahead",
          "[sibling_prefetch]") {
    Listings l;
    // Listed in another order than the names' (as a hashed directory lists them).
    auto listed = names("f", 0, 30);
    std::reverse(listed.begin(), listed.end());
    l.dirs["d"] = listed;
    SiblingPrefetch s(l.list());

    CHECK(s.opened("d/f100").empty()); // one open says nothing of an order
    // Its neighbour: the next kAhead (8) are fetched.
    CHECK(s.opened("d/f101") == names("d/f", 2, 10));
    // Each further open in order fetches one more.
    CHECK(s.opened("d/f102") == names("d/f", 10, 11));
    CHECK(s.opened("d/f103") == names("d/f", 11, 12));
    CHECK(l.calls == 1); // listed once

    // Out of order: nothing, and nothing for the first open after it either.
    CHECK(s.opened("d/f120").empty());
    CHECK(s.opened("d/f105").empty());
    // In order again: ahead of it, again.
    CHECK(s.opened("d/f106") == names("d/f", 7, 15));

    // The end of the directory: only what is left.
    CHECK(s.opened("d/f126").empty());
    CHECK(s.opened("d/f127") == names("d/f", 28, 30));
    CHECK(s.opened("d/f128").empty());
    CHECK(s.opened("d/f129").empty());
}

TEST_CASE("siblings: an open is noted without listing only where the directory is listed",
          "[sibling_prefetch]") {
    Listings l;
    l.dirs["d"] = names("f", 0, 30);
    l.dirs["e"] = names("g", 0, 30);
    SiblingPrefetch s(l.list());
    // Never listed: nothing noted, nothing listed (the caller lists after its reply).
    CHECK_FALSE(s.opened_if_listed("d/f100"));
    CHECK(l.calls == 0);
    CHECK(s.opened("d/f100").empty());
    CHECK(l.calls == 1);
    // Listed now: the same answers as opened(), without a listing.
    CHECK(s.opened_if_listed("d/f101") == names("d/f", 2, 10));
    CHECK(s.opened_if_listed("d/f102") == names("d/f", 10, 11));
    CHECK(l.calls == 1);
    // Another directory is listed apart; the first keeps its reader's run.
    CHECK_FALSE(s.opened_if_listed("e/g100"));
    CHECK(s.opened("e/g100").empty());
    CHECK(s.opened_if_listed("d/f103") == names("d/f", 11, 12));
    // A name the listing does not have, once the listing is old enough to be made again: not
    // without listing.
    l.dirs["d"].push_back("f130");
    std::this_thread::sleep_for(SiblingPrefetch::kRelist);
    CHECK_FALSE(s.opened_if_listed("d/f130"));
    CHECK(l.calls == 2); // d and e once each
    CHECK(s.opened("d/f130").empty());
    CHECK(l.calls == 3);
}

TEST_CASE("siblings: a reader in the directory's own order is followed too", "[sibling_prefetch]") {
    Listings l;
    l.dirs[""] = {"zeta", "alpha", "mid", "beta", "omega", "gamma"}; // SOURCE itself
    SiblingPrefetch s(l.list());
    CHECK(s.opened("zeta").empty());
    CHECK(s.opened("alpha") == std::vector<std::string>{"mid", "beta", "omega", "gamma"});
    CHECK(s.opened("mid").empty()); // all fetched already
}

TEST_CASE("siblings: two names that are neighbours in both orders keep the reader's order",
          "[sibling_prefetch]") {
    Listings l;
    // a3 and a4 happen to be neighbours in the listing too.
    l.dirs["d"] = {"a0", "x", "a3", "a4", "y", "a1", "z", "a2", "a5", "a6"};
    SiblingPrefetch s(l.list());
    CHECK(s.opened("d/a0").empty());
    CHECK(s.opened("d/a1").size() == 8); // a2 .. a6, x, y, z
    CHECK(s.opened("d/a2").empty());
    CHECK(s.opened("d/a3").empty());
    // Next in both orders: the reader's run in name order is the longer, so nothing from the
    // listing (y, a1, ...) is fetched.
    CHECK(s.opened("d/a4").empty());
    // The reader goes on in the listing's order (a3, a4, y): now that run is the longer.
    CHECK(s.opened("d/y") == std::vector<std::string>{"d/a1", "d/z", "d/a2", "d/a5", "d/a6"});
}

TEST_CASE("siblings: nothing for a directory that cannot be listed; a new file relists",
          "[sibling_prefetch]") {
    Listings l;
    SiblingPrefetch s(l.list());
    CHECK(s.opened("gone/a").empty());
    CHECK(s.opened("gone/b").empty());
    CHECK(l.calls == 2); // tried at each open: it may be listable later

    l.dirs["d"] = {"a", "b", "c"};
    CHECK(s.opened("d/a").empty());
    CHECK(s.opened("d/b") == std::vector<std::string>{"d/c"});
    CHECK(l.calls == 3);
    // A file created since the listing, opened at once: not listed again within kRelist.
    l.dirs["d"] = {"a", "b", "c", "d", "e"};
    CHECK(s.opened("d/d").empty());
    CHECK(l.calls == 3);
    // Once kRelist has passed, it is.
    std::this_thread::sleep_for(SiblingPrefetch::kRelist);
    CHECK(s.opened("d/e").empty()); // relisted; "d" then "e" are neighbours, nothing after
    CHECK(l.calls == 4);
}

TEST_CASE("siblings: at most kDirs directories are followed", "[sibling_prefetch]") {
    Listings l;
    for (unsigned i = 0; i <= SiblingPrefetch::kDirs; ++i)
        l.dirs["d" + std::to_string(i)] = {"a", "b", "c"};
    SiblingPrefetch s(l.list());
    for (unsigned i = 0; i <= SiblingPrefetch::kDirs; ++i)
        CHECK(s.opened("d" + std::to_string(i) + "/a").empty());
    CHECK(l.calls == SiblingPrefetch::kDirs + 1);
    // The last kDirs are still known, in order; the first was forgotten and is listed again
    // (its last open forgotten with it).
    CHECK(s.opened("d1/b") == std::vector<std::string>{"d1/c"});
    CHECK(l.calls == SiblingPrefetch::kDirs + 1);
    CHECK(s.opened("d0/b").empty());
    CHECK(l.calls == SiblingPrefetch::kDirs + 2);
}

} // namespace test_sibling_prefetch
