// fs::HeldMtimes: a stat that overlaps a hold beginning or ending (simulated by beginning or
// ending it from inside the stat) answers the held mtime or SOURCE's restored one, never the
// moment in between.
#include "lib/fs/held_mtimes.hpp"

#include <catch2/catch.hpp>

#include <cerrno>

using namespace rfs::fs;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_held_mtimes {

namespace {

const SrcId kFile{1, 42};
const SrcId kOther{1, 43};
const timespec kKept{1000000000, 5};
const timespec kMoved{1700000000, 7}; // what a punch or a fetch's write sets

struct stat with(SrcId id, const timespec& mtime) {
    struct stat st {};
    st.st_dev = id.dev;
    st.st_ino = id.ino;
    st.st_mtim = mtime;
    st.st_size = 4096;
    return st;
}

bool is(const struct stat& st, const timespec& t) {
    return st.st_mtim.tv_sec == t.tv_sec && st.st_mtim.tv_nsec == t.tv_nsec;
}

} // namespace

TEST_CASE("with nothing held a stat is SOURCE's, made once", "[held_mtimes]") {
    HeldMtimes held;
    int calls = 0;
    struct stat st;
    REQUIRE(held.stat(&st, [&](struct stat* out) {
        ++calls;
        *out = with(kFile, kMoved);
        return 0;
    }) == 0);
    CHECK(is(st, kMoved));
    CHECK(calls == 1);
    // Errors pass through.
    CHECK(held.stat(&st, [](struct stat*) { return ENOENT; }) == ENOENT);
}

TEST_CASE("a held file shows the held mtime; other files and other fields are their own",
          "[held_mtimes]") {
    HeldMtimes held;
    held.begin(kFile, kKept);
    struct stat st;
    REQUIRE(held.stat(&st, [](struct stat* out) {
        *out = with(kFile, kMoved);
        out->st_blocks = 0; // punched: shown as it is
        return 0;
    }) == 0);
    CHECK(is(st, kKept));
    CHECK(st.st_blocks == 0);
    CHECK(st.st_size == 4096);
    REQUIRE(held.stat(&st, [](struct stat* out) {
        *out = with(kOther, kMoved);
        return 0;
    }) == 0);
    CHECK(is(st, kMoved));
    // Holds nest: the file stays held until the last one ends.
    held.begin(kFile, kMoved);
    CHECK(held.end(kFile));
    REQUIRE(held.stat(&st, [](struct stat* out) {
        *out = with(kFile, kMoved);
        return 0;
    }) == 0);
    CHECK(is(st, kKept));
    CHECK(held.end(kFile));
    CHECK_FALSE(held.end(kFile)); // none left
    CHECK(held.held() == 0);
}

TEST_CASE("a stat that a hold began during answers the held mtime", "[held_mtimes]") {
    HeldMtimes held;
    int calls = 0;
    struct stat st;
    // The stat started before the hold, and saw the punch that followed it.
    REQUIRE(held.stat(&st, [&](struct stat* out) {
        if (++calls == 1) held.begin(kFile, kKept);
        *out = with(kFile, kMoved);
        return 0;
    }) == 0);
    CHECK(is(st, kKept));
    held.end(kFile);
}

TEST_CASE("a stat that a hold ended during is made again, once the times are back",
          "[held_mtimes]") {
    HeldMtimes held;
    held.begin(kFile, kKept);
    int calls = 0;
    struct stat st;
    // It saw the moved mtime; then the times were put back and the hold ended before it
    // looked at the holds: what it saw must not be answered.
    REQUIRE(held.stat(&st, [&](struct stat* out) {
        if (++calls == 1) {
            *out = with(kFile, kMoved);
            held.end(kFile);
        } else {
            *out = with(kFile, kKept);
        }
        return 0;
    }) == 0);
    CHECK(is(st, kKept));
    CHECK(calls == 2);
}

TEST_CASE("another file's hold changing during a stat costs one stat more, nothing else",
          "[held_mtimes]") {
    HeldMtimes held;
    held.begin(kOther, kKept);
    int calls = 0;
    struct stat st;
    REQUIRE(held.stat(&st, [&](struct stat* out) {
        if (++calls == 1) held.end(kOther);
        *out = with(kFile, kMoved);
        return 0;
    }) == 0);
    CHECK(is(st, kMoved));
    CHECK(calls == 2);
    // Held, but unchanged during the stat: one stat.
    held.begin(kOther, kKept);
    calls = 0;
    REQUIRE(held.stat(&st, [&](struct stat* out) {
        ++calls;
        *out = with(kFile, kMoved);
        return 0;
    }) == 0);
    CHECK(is(st, kMoved));
    CHECK(calls == 1);
    held.end(kOther);
}

} // namespace test_held_mtimes
