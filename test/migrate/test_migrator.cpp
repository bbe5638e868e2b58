// The Migrator with real files, a real state store and the in-memory object store: closed files
// reach Riak verified, failures are retried, unmapped paths stay local, and a restart resumes.
#include "lib/migrate/migrator.hpp"

#include "lib/layout/file_object.hpp"
#include "lib/layout/sha256.hpp"
#include "test/migrate/migrate_test_support.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <map>
#include <mutex>
#include <thread>

using namespace rfs;
using namespace std::chrono_literals;
using migrate::test::open_state;
using migrate::test::run_on;
using migrate::test::TempTree;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_migrator {

namespace {

struct Engine {
    Engine(const TempTree& tree, const layout::Mapper& mapper,
           std::function<void(store::MemoryObjectStore&)> prepare = {}) {
        state = open_state(tree.state_dir(), tree.source());
        migrate::MigratorOptions mo;
        mo.chunk_size = 1000;
        mo.retry_first = 20ms;
        mo.retry_max = 100ms;
        migrator = std::make_unique<migrate::Migrator>(
            tree.source_fd(), mapper, *state,
            [this, prepare](boost::asio::io_context& context) {
                auto made = std::make_unique<store::MemoryObjectStore>(context);
                mem = made.get();
                if (prepare) prepare(*made);
                return made;
            },
            mo);
        migrator->start();
    }
    ~Engine() { migrator->stop(0ms); }

    store::Fetched get(const std::string& key) {
        return *run_on(migrator->context(), mem->get(proto::ObjectId{"", "riakfs", key}));
    }
    std::optional<state::FileState> record(const std::string& path) {
        auto got = state->get(path);
        REQUIRE(got);
        return *got;
    }

    std::unique_ptr<state::StateStore> state;
    std::unique_ptr<migrate::Migrator> migrator;
    store::MemoryObjectStore* mem = nullptr;
};

} // namespace

TEST_CASE("closed files are copied, verified and recorded", "[migrator]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("a.txt", "alpha");
    tree.write("dir/b.bin", std::string(2500, 'b'));
    Engine engine(tree, mapper);
    engine.migrator->file_closed("a.txt", true);
    engine.migrator->file_closed("dir/b.bin", true);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.get("a.txt").object.value == "alpha");
    auto rec = engine.record("dir/b.bin");
    REQUIRE(rec);
    CHECK(rec->phase == state::Phase::verified);
    CHECK(rec->sha256 == layout::sha256_hex(std::string(2500, 'b')));
    CHECK(rec->key == "dir/b.bin");
    CHECK(rec->size == 2500);
    auto stats = engine.migrator->stats();
    CHECK(stats.files_copied == 2);
    CHECK(stats.queued == 0);

    // Read to the end again, unchanged: nothing is sent.
    engine.migrator->file_closed("a.txt", false);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.migrator->stats().files_copied == 2);
    // Written again: copied again, with the new content.
    tree.write("a.txt", "alpha, second version");
    engine.migrator->file_closed("a.txt", true);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.get("a.txt").object.value == "alpha, second version");
    CHECK(engine.record("a.txt")->phase == state::Phase::verified);
}

TEST_CASE("paths no rule maps stay local and unrecorded", "[migrator]") {
    TempTree tree;
    auto mapper = layout::Mapper::from_json(
        R"({"rules":[{"path":"/keep/{f}","bucket":"riakfs","key":"{f}"}]})");
    REQUIRE(mapper);
    tree.write("keep/x", "x");
    tree.write("local/y", "y");
    Engine engine(tree, *mapper);
    engine.migrator->file_closed("local/y", true);
    engine.migrator->file_closed("keep/x", true);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.get("x").object.value == "x");
    CHECK_FALSE(engine.record("local/y"));
    CHECK(engine.record("keep/x")->phase == state::Phase::verified);
}

TEST_CASE("Riak failures are retried until the copy is made", "[migrator]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("f", "survives outages");
    Engine engine(tree, mapper, [](store::MemoryObjectStore& mem) {
        mem.fail_next(5, riak::Errc::connection_refused);
    });
    engine.migrator->file_closed("f", true);
    REQUIRE(engine.migrator->wait_idle(30s));
    CHECK(engine.get("f").object.value == "survives outages");
    auto stats = engine.migrator->stats();
    CHECK(stats.failures >= 1);
    CHECK(engine.record("f")->phase == state::Phase::verified);
    CHECK(engine.record("f")->attempts == 0);
}

TEST_CASE("a restart resumes the copies left pending", "[migrator]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("pending", "left behind by a crash");
    {
        // A previous run recorded the close, then died before copying.
        state::OpenOptions options{tree.state_dir(), tree.source(), "test", false};
        auto st = state::StateStore::open(options);
        REQUIRE(st);
        REQUIRE((*st)->mark_dirty("pending"));
    }
    Engine engine(tree, mapper);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.get("pending").object.value == "left behind by a crash");
    CHECK(engine.record("pending")->phase == state::Phase::verified);
}

TEST_CASE("a file removed before its copy is forgotten", "[migrator]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    Engine engine(tree, mapper);
    engine.migrator->file_closed("never-there", true);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK_FALSE(engine.record("never-there"));
    CHECK_FALSE(engine.get("never-there").found);
}

TEST_CASE("drain_file: copies once, answers once; a verified file is current; unmapped skips",
          "[migrator][drain]") {
    TempTree tree;
    auto mapper = layout::Mapper::from_json(R"({"rules":[{"path":"/m/{f}","bucket":"riakfs",
                                              "key":"m/{f}"}]})");
    REQUIRE(mapper);
    tree.write("m/a.txt", "alpha");
    tree.write("m/gone.txt", "x");
    tree.write("local.txt", "stays");
    Engine engine(tree, *mapper);
    std::mutex mu;
    std::map<std::string, std::vector<migrate::CopyResult::Kind>> answers;
    // The answer comes once the copy is done, which may be just after wait_idle() returns.
    auto answered = [&](const std::string& path, size_t n) {
        for (int i = 0; i < 2000; ++i) {
            {
                std::lock_guard lock(mu);
                if (answers[path].size() >= n) return true;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    };
    auto ask = [&](const std::string& path) {
        engine.migrator->drain_file(path, [&, path](migrate::CopyResult r) {
            std::lock_guard lock(mu);
            answers[path].push_back(r.kind);
        });
    };
    ::unlink(tree.src("m/gone.txt").c_str());
    ask("m/a.txt");
    ask("m/gone.txt");
    ask("local.txt"); // not mapped: answered at once
    REQUIRE(answered("m/a.txt", 1));
    REQUIRE(answered("m/gone.txt", 1));
    REQUIRE(answered("local.txt", 1));
    {
        std::lock_guard lock(mu);
        CHECK(answers["m/a.txt"] == std::vector{migrate::CopyResult::Kind::copied});
        CHECK(answers["m/gone.txt"] == std::vector{migrate::CopyResult::Kind::skipped});
        CHECK(answers["local.txt"] == std::vector{migrate::CopyResult::Kind::skipped});
    }
    CHECK(engine.get("m/a.txt").object.value == "alpha");
    CHECK(engine.migrator->stats().files_copied == 1);
    // Again, unchanged: nothing is sent.
    ask("m/a.txt");
    REQUIRE(answered("m/a.txt", 2));
    std::lock_guard lock(mu);
    CHECK(answers["m/a.txt"] ==
          std::vector{migrate::CopyResult::Kind::copied, migrate::CopyResult::Kind::current});
    CHECK(engine.migrator->stats().files_copied == 1);
}

} // namespace test_migrator
