// Paths kept local by riakfsctl recall (lib/migrate/local_pins.hpp): what a pin covers, that it
// survives reopening the state store, that local_only excludes paths from the layout, and the
// tree walk and plan figures the recall, verify and plan commands are built on.
#include "lib/layout/mapping.hpp"
#include "lib/migrate/local_pins.hpp"
#include "lib/migrate/plan.hpp"
#include "lib/migrate/tree_walk.hpp"
#include "migrate_test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

using namespace rfs;
using namespace rfs::migrate;
using rfs::migrate::test::open_state;
using rfs::migrate::test::TempTree;

TEST_CASE("a pin covers its path and everything under it, nothing beside it", "[pins]") {
    TempTree tree;
    auto state = open_state(tree.state_dir(), tree.source());
    auto pins = LocalPins::load(*state);
    REQUIRE(pins);
    CHECK(!(*pins)->covers("a"));
    REQUIRE((*pins)->pin("a/b", PinKind::keep));
    CHECK((*pins)->covers("a/b") == PinKind::keep);
    CHECK((*pins)->covers("a/b/c/d") == PinKind::keep);
    CHECK(!(*pins)->covers("a"));
    CHECK(!(*pins)->covers("a/bc"));
    CHECK(!(*pins)->covers("a/b!"));
    CHECK(!(*pins)->local_only("a/b/c"));
    // local_only wins over keep, and is never weakened back.
    REQUIRE((*pins)->pin("a", PinKind::local_only));
    CHECK((*pins)->covers("a/b/c") == PinKind::local_only);
    REQUIRE((*pins)->pin("a", PinKind::keep));
    CHECK((*pins)->local_only("a/x"));
    // "" is all of SOURCE.
    REQUIRE((*pins)->pin("", PinKind::keep));
    CHECK((*pins)->covers("z") == PinKind::keep);
}

TEST_CASE("pins survive a restart, and local_only paths map to nothing", "[pins]") {
    TempTree tree;
    {
        auto state = open_state(tree.state_dir(), tree.source());
        auto pins = LocalPins::load(*state);
        REQUIRE(pins);
        REQUIRE((*pins)->pin("logs", PinKind::local_only));
        REQUIRE((*pins)->pin("keep/me", PinKind::keep));
    }
    auto state = open_state(tree.state_dir(), tree.source());
    auto pins = LocalPins::load(*state);
    REQUIRE(pins);
    CHECK((*pins)->covers("logs/a") == PinKind::local_only);
    CHECK((*pins)->covers("keep/me") == PinKind::keep);
    auto mapper = layout::Mapper::default_layout();
    mapper.set_exclusion([p = pins->get()](std::string_view path) { return p->local_only(path); });
    CHECK(!mapper.map("logs/a"));
    CHECK(mapper.map("keep/me"));
    CHECK(mapper.map("other"));
}

TEST_CASE("the tree walk visits the subtree in order; plan counts a known tree", "[pins][plan]") {
    TempTree tree;
    tree.write("a/x", "12345");
    tree.write("a/b/y", std::string(70000, 'y'));
    tree.write("c/z", "");
    REQUIRE(::symlink("a", tree.src("link").c_str()) == 0);
    std::vector<std::string> seen;
    int err = walk_tree(
        tree.source_fd(), "a", {},
        [&](const WalkEntry& e) {
            seen.push_back(e.path + (e.is_dir ? "/" : ""));
            return true;
        },
        [](const std::string&, int) { FAIL("no error expected"); });
    CHECK(err == 0);
    CHECK(seen == std::vector<std::string>{"a/", "a/b/", "a/x", "a/b/y"});
    CHECK(walk_tree(
              tree.source_fd(), "missing", {}, [](const WalkEntry&) { return true; },
              [](const std::string&, int) {}) == ENOENT);

    auto mapper = layout::Mapper::default_layout();
    mapper.set_exclusion([](std::string_view path) { return path.starts_with("c/"); });
    PlanReport report;
    REQUIRE(plan_tree(tree.source_fd(), "", mapper, nullptr, {}, &report, nullptr) == 0);
    CHECK(report.mapped.files == 2);
    CHECK(report.mapped.bytes == 70005);
    CHECK(report.unmapped.files == 1);
    CHECK(report.to_send.bytes == 70005);
    struct stat a, b;
    REQUIRE(::stat(tree.src("a/x").c_str(), &a) == 0);
    REQUIRE(::stat(tree.src("a/b/y").c_str(), &b) == 0);
    CHECK(report.freeable_bytes == static_cast<std::uint64_t>(a.st_blocks + b.st_blocks) * 512);
    CHECK(report.directories == 4); // SOURCE, a, a/b, c
}
