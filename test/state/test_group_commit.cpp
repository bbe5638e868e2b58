// GroupCommit on a real LevelDB: batches from many threads all land, in submission order per
// caller, each caller is told once its batch is durable, what is queued at destruction is
// applied, and merged writes make fewer syncs than batches under load; the linger gathers batches
// that trickle in, and a full batch or the end does not wait for it.
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "lib/state/group_commit.hpp"
#include "test/state/temp_dir.hpp"

using namespace rfs::state;
using rfs::state::test::TempDir;

namespace {

std::unique_ptr<StateStore> open_store(const TempDir& dir) {
    OpenOptions o;
    o.state_dir = dir / "state";
    o.source = "/srv/data";
    o.fingerprint = "group-commit test";
    auto store = StateStore::open(o);
    REQUIRE(store);
    return std::move(*store);
}

FileState in_phase(Phase phase, std::uint64_t size) {
    FileState s;
    s.phase = phase;
    s.size = size;
    return s;
}

} // namespace

TEST_CASE("group commit applies every caller's batches, in order, and tells each when durable",
          "[group_commit]") {
    TempDir dir;
    auto store = open_store(dir);
    constexpr int kThreads = 4, kEach = 150;
    std::atomic<int> done{0}, failed{0}, unseen{0};
    {
        GroupCommit commit(*store);
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < kEach; ++i) {
                    std::string path = "t" + std::to_string(t) + "/f" + std::to_string(i);
                    // Two batches for one path: the later one must win.
                    StateStore::Batch first, second;
                    first.put(path, in_phase(Phase::dirty, 1));
                    second.put(path, in_phase(Phase::verified, 2));
                    commit.submit(std::move(first), [&](Result<void> r) { (r ? done : failed)++; });
                    std::promise<void> durable;
                    commit.submit(std::move(second), [&](Result<void> r) {
                        (r ? done : failed)++;
                        durable.set_value();
                    });
                    durable.get_future().wait();
                    if (i % 50 == 0) {
                        // Once told, the record is there for every reader. Counted, not
                        // asserted here: Catch2's assertions are for the main thread only.
                        auto rec = store->get(path);
                        if (!rec || !*rec || (*rec)->phase != Phase::verified) ++unseen;
                    }
                }
            });
        }
        for (auto& t : threads)
            t.join();
        CHECK(commit.writes() <= std::uint64_t(kThreads * kEach * 2));
    }
    CHECK(failed == 0);
    CHECK(unseen == 0);
    CHECK(done == kThreads * kEach * 2);
    for (int t = 0; t < kThreads; ++t)
        for (int i = 0; i < kEach; ++i) {
            auto rec = store->get("t" + std::to_string(t) + "/f" + std::to_string(i));
            REQUIRE(rec);
            REQUIRE(*rec);
            CHECK((*rec)->phase == Phase::verified);
            CHECK((*rec)->size == 2);
        }
}

TEST_CASE("group commit applies what is still queued when it is destroyed", "[group_commit]") {
    TempDir dir;
    auto store = open_store(dir);
    std::atomic<int> done{0};
    {
        GroupCommit commit(*store);
        for (int i = 0; i < 100; ++i) {
            StateStore::Batch b;
            b.put("q" + std::to_string(i), in_phase(Phase::dirty, 0));
            commit.submit(std::move(b), [&](Result<void> r) {
                if (r) ++done;
            });
        }
    }
    CHECK(done == 100);
    for (int i = 0; i < 100; ++i) {
        auto rec = store->get("q" + std::to_string(i));
        REQUIRE(rec);
        CHECK(rec->has_value());
    }
}

TEST_CASE("group commit lingers: batches that trickle in share sync writes", "[group_commit]") {
    TempDir dir;
    auto store = open_store(dir);
    GroupCommit::Options options;
    options.linger = std::chrono::milliseconds(2);
    constexpr int kBatches = 40;
    std::atomic<int> answered{0}, done{0};
    std::chrono::steady_clock::duration span{};
    std::uint64_t writes = 0;
    {
        GroupCommit commit(*store, options);
        auto first = std::chrono::steady_clock::now();
        for (int i = 0; i < kBatches; ++i) {
            StateStore::Batch b;
            b.put("trickle/f" + std::to_string(i), in_phase(Phase::dirty, 0));
            commit.submit(std::move(b), [&](Result<void> r) {
                if (r) ++done;
                ++answered; // a failed write ends the wait below too, and fails the check after
            });
            // Files close a few hundred microseconds apart: as a copy workload submits.
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        span = std::chrono::steady_clock::now() - first;
        while (answered < kBatches)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        writes = commit.writes();
    }
    CHECK(done == kBatches);
    // Each write takes what arrived during one linger at least, so the writes are bounded by
    // the lingers the submissions spanned (measured, so a slow machine only loosens the bound);
    // without the linger nearly every batch got a write of its own.
    const auto lingers = static_cast<std::uint64_t>(span / options.linger);
    INFO("writes " << writes << " over " << lingers << " lingers");
    CHECK(writes <= lingers + 2);
    CHECK(writes < kBatches);
}

TEST_CASE("group commit writes a full batch, and what is queued at its end, without waiting out "
          "the linger",
          "[group_commit]") {
    TempDir dir;
    auto store = open_store(dir);
    GroupCommit::Options options;
    options.linger = std::chrono::minutes(10); // never waited out in this test
    options.max_batch = 8;
    auto commit = std::make_unique<GroupCommit>(*store, options);
    std::vector<std::promise<bool>> durable(options.max_batch);
    for (std::size_t i = 0; i < options.max_batch; ++i) {
        StateStore::Batch b;
        b.put("full/f" + std::to_string(i), in_phase(Phase::dirty, 0));
        commit->submit(std::move(b), [&, i](Result<void> r) { durable[i].set_value(bool(r)); });
    }
    for (auto& d : durable) {
        auto f = d.get_future();
        REQUIRE(f.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
        CHECK(f.get());
    }
    CHECK(commit->writes() == 1);

    // One batch, less than full: the linger would hold it; ending the commit writes it now.
    std::atomic<int> done{0};
    StateStore::Batch last;
    last.put("full/last", in_phase(Phase::dirty, 0));
    commit->submit(std::move(last), [&](Result<void> r) {
        if (r) ++done;
    });
    auto ended = std::async(std::launch::async, [&] { commit.reset(); });
    REQUIRE(ended.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    CHECK(done == 1);
    auto rec = store->get("full/last");
    REQUIRE(rec);
    CHECK(rec->has_value());
}
