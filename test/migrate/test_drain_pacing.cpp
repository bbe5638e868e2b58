// The background drain's pacing and order (lib/migrate/drain_pacing.hpp): token buckets and the
// rate meter with instants given by the test (nothing here depends on how long the test takes),
// and the order the walk's files are handed over in.
#include "lib/migrate/drain.hpp"
#include "lib/migrate/drain_pacing.hpp"

#include <catch2/catch.hpp>

using namespace rfs::migrate;
using namespace std::chrono_literals;
using Clock = RateLimiter::Clock;

TEST_CASE("rate 0 never waits", "[drain][pacing]") {
    const auto t0 = Clock::time_point{} + 1h;
    RateLimiter limit(0, t0);
    for (int i = 0; i < 1000; ++i) {
        CHECK(limit.ready_at(1 << 30, t0) == t0);
        limit.take(1 << 30, t0);
    }
}

TEST_CASE("a token bucket passes one second's worth, then the rate", "[drain][pacing]") {
    const auto t0 = Clock::time_point{} + 1h;
    RateLimiter files(10, t0); // 10 files a second
    for (int i = 0; i < 10; ++i) {
        REQUIRE(files.ready_at(1, t0) == t0);
        files.take(1, t0);
    }
    // The 11th waits a tenth of a second.
    auto ready = files.ready_at(1, t0);
    CHECK(ready > t0);
    CHECK(ready - t0 >= 99ms);
    CHECK(ready - t0 <= 101ms);
    CHECK(files.ready_at(1, ready) == ready);
    // Over a minute at that pace, 10 files a second pass.
    auto now = ready;
    int passed = 0;
    while (now < ready + 60s) {
        auto at = files.ready_at(1, now);
        now = std::max(now, at);
        files.take(1, now);
        ++passed;
    }
    CHECK(passed >= 600);
    CHECK(passed <= 602);
}

TEST_CASE("an amount above the bucket passes when it is full and leaves a debt",
          "[drain][pacing]") {
    const auto t0 = Clock::time_point{} + 1h;
    RateLimiter bytes(1000, t0);
    CHECK(bytes.ready_at(5000, t0) == t0); // a file larger than a second's budget is not stuck
    bytes.take(5000, t0);
    // 4000 of debt, then 100 more: 4.1 s at 1000/s.
    auto ready = bytes.ready_at(100, t0);
    CHECK(ready - t0 >= 4099ms);
    CHECK(ready - t0 <= 4101ms);
}

TEST_CASE("changing the rate takes effect at once", "[drain][pacing]") {
    const auto t0 = Clock::time_point{} + 1h;
    RateLimiter files(1, t0);
    files.take(1, t0);
    CHECK(files.ready_at(1, t0) - t0 >= 999ms);
    files.set_rate(1000, t0); // faster: the next file waits a millisecond
    CHECK(files.ready_at(1, t0) - t0 <= 2ms);
    files.set_rate(0, t0); // unlimited
    CHECK(files.ready_at(1, t0) == t0);
    files.set_rate(2, t0 + 10s); // slower again, from a full bucket of the new size
    CHECK(files.ready_at(2, t0 + 10s) == t0 + 10s);
    files.take(2, t0 + 10s);
    CHECK(files.ready_at(1, t0 + 10s) - (t0 + 10s) >= 499ms);
}

TEST_CASE("the foreground watch sees applications for one window after their last request",
          "[drain][pacing]") {
    const auto t0 = Clock::time_point{} + 1h;
    ForegroundWatch watch(200ms);
    ForegroundActivity activity;
    CHECK_FALSE(watch.active(activity.requests(), t0)); // nothing yet: full speed from the start
    activity.note_request();
    CHECK(watch.active(activity.requests(), t0 + 1s));
    CHECK(watch.active(activity.requests(), t0 + 1s + 199ms));
    CHECK_FALSE(watch.active(activity.requests(), t0 + 1s + 200ms)); // quiet for a window
    activity.note_request();
    activity.note_request();
    CHECK(watch.active(activity.requests(), t0 + 5s)); // any request counts, however old
    CHECK_FALSE(watch.active(activity.requests(), t0 + 6s));
}

TEST_CASE("the walk's files are ordered by path, size or atime; ties by path", "[drain][order]") {
    std::vector<DrainCandidate> files = {
        {"b/x", 10, 300}, {"a", 10, 100}, {"c", 5000, 200}, {"a/b", 1, 100}, {"b", 10, 50}};
    auto paths = [&] {
        std::vector<std::string> out;
        for (auto& f : files)
            out.push_back(f.path);
        return out;
    };
    order_candidates(files, DrainOrder::path);
    CHECK(paths() == std::vector<std::string>{"a", "a/b", "b", "b/x", "c"});
    order_candidates(files, DrainOrder::size);
    CHECK(paths() == std::vector<std::string>{"c", "a", "b", "b/x", "a/b"});
    order_candidates(files, DrainOrder::atime);
    CHECK(paths() == std::vector<std::string>{"b", "a", "a/b", "c", "b/x"});
}

TEST_CASE("drain_order names", "[drain][order]") {
    for (auto order : {DrainOrder::path, DrainOrder::size, DrainOrder::atime})
        CHECK(parse_drain_order(to_string(order)) == order);
    CHECK_FALSE(parse_drain_order("random"));
    CHECK_FALSE(parse_drain_order(""));
}

TEST_CASE("the rate meter reports copies per second over its window", "[drain][pacing]") {
    const auto t0 = Clock::time_point{} + 1h;
    RateMeter meter(10s);
    CHECK(meter.files_per_second() == 0);
    meter.sample(t0, 0, 0);
    meter.sample(t0 + 1s, 5, 5000);
    CHECK(meter.files_per_second() == Approx(5));
    CHECK(meter.bytes_per_second() == Approx(5000));
    // A long quiet spell pushes the busy second out of the window.
    for (int s = 2; s <= 30; ++s)
        meter.sample(t0 + std::chrono::seconds(s), 5, 5000);
    CHECK(meter.files_per_second() == 0);
}

TEST_CASE("the drain's persisted record round-trips; junk is refused", "[drain]") {
    DrainProgress p;
    p.state = DrainProgress::State::running;
    p.pass = 3;
    p.total = {1000, 1 << 20};
    p.migrated = {400, 1 << 19};
    p.released = {300, 1 << 18};
    p.failed = {2, 20};
    p.last_error = "a.txt: 503";
    auto back = decode_drain_record(encode_drain_record(p));
    REQUIRE(back);
    CHECK(back->state == DrainProgress::State::running);
    CHECK(back->pass == 3);
    CHECK(back->total.files == 1000);
    CHECK(back->migrated.bytes == 1 << 19);
    CHECK(back->released.files == 300);
    CHECK(back->failed.files == 2);
    CHECK(back->last_error == "a.txt: 503");
    CHECK(back->remaining().files == 600);
    for (const char* junk : {"", "{", "[]", "{\"format\":2}", "{\"format\":1}"})
        CHECK_FALSE(decode_drain_record(junk));
}

TEST_CASE("a drain record with counts that are not integers >= 0 is refused", "[drain]") {
    const std::string good = R"({"format": 1, "state": "running", "pass": 2,
        "total": {"files": 10, "bytes": 1000}, "migrated": {"files": 5, "bytes": 500},
        "released": {"files": 1, "bytes": 10}, "failed": {"files": 0, "bytes": 0},
        "last_error": ""})";
    REQUIRE(decode_drain_record(good));
    // Found by test/fuzz (corpus/state_records/crash-drain-float-count): a float beyond 2^64
    // was converted to uint64_t, which is undefined behaviour.
    auto with = [&](std::string_view from, std::string_view to) {
        std::string text = good;
        text.replace(text.find(from), from.size(), to);
        return text;
    };
    CHECK_FALSE(decode_drain_record(with("\"bytes\": 1000", "\"bytes\": 1.0055555e+28")));
    CHECK_FALSE(decode_drain_record(with("\"bytes\": 1000", "\"bytes\": 1000.5")));
    CHECK_FALSE(decode_drain_record(with("\"pass\": 2", "\"pass\": -2")));
    CHECK_FALSE(decode_drain_record(with("\"format\": 1", "\"format\": 1.0")));
    CHECK_FALSE(decode_drain_record(with("\"files\": 5", "\"files\": 1e300")));
}
