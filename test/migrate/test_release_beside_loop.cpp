// mode=move's releases run beside the migration loop: a release whose local calls are held (here
// in the hook the release calls just before it punches, MigratorOptions::source_changing) holds
// up neither the copies nor the releases of other files, and a namespace operation on a file
// being released waits until that release is recorded, so that the records end where the file
// is. Real files, a real state store, the in-memory object store.
#include "lib/migrate/migrator.hpp"

#include "lib/migrate/release_gate.hpp"
#include "lib/state/placeholder.hpp"
#include "test/migrate/migrate_test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace rfs;
using namespace std::chrono_literals;
using migrate::test::open_state;
using migrate::test::run_on;
using migrate::test::TempTree;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_release_beside_loop {

namespace {

// Holds the release of one file (by inode) in its hook until open() is called.
class Hold {
public:
    void hold(ino_t ino) {
        std::lock_guard lock(mu_);
        ino_ = ino;
    }
    // On a release thread: waits while `ino` is the held file.
    void at_release(ino_t ino) {
        std::unique_lock lock(mu_);
        if (ino != ino_) return;
        reached_ = true;
        cv_.notify_all();
        cv_.wait(lock, [&] { return opened_; });
    }
    bool wait_reached() {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, 20s, [&] { return reached_; });
    }
    void open() {
        std::lock_guard lock(mu_);
        opened_ = true;
        cv_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    ino_t ino_ = 0;
    bool reached_ = false;
    bool opened_ = false;
};

struct Move {
    explicit Move(const TempTree& tree) : tree(tree) {
        state = open_state(tree.state_dir(), tree.source());
        migrate::MigratorOptions mo;
        mo.chunk_size = 1000;
        mo.retry_first = 20ms;
        mo.retry_max = 100ms;
        mo.release = &gate;
        mo.source_changing = [this](dev_t, ino_t ino, const timespec&) { hold.at_release(ino); };
        migrator = std::make_unique<migrate::Migrator>(
            tree.source_fd(), mapper, *state,
            [this](boost::asio::io_context& context) {
                auto made = std::make_unique<store::MemoryObjectStore>(context);
                mem = made.get();
                return made;
            },
            mo);
        migrator->start();
    }
    ~Move() {
        hold.open(); // never leave a release thread waiting
        migrator->stop(0ms);
    }

    ino_t ino_of(const std::string& name) {
        struct stat st;
        REQUIRE(::stat(tree.src(name).c_str(), &st) == 0);
        return st.st_ino;
    }
    std::optional<state::FileState> record(const std::string& path) {
        auto got = state->get(path);
        REQUIRE(got);
        return *got;
    }
    bool wait_phase(const std::string& path, state::Phase phase) {
        auto deadline = std::chrono::steady_clock::now() + 20s;
        for (;;) {
            auto rec = record(path);
            if (rec && rec->phase == phase) return true;
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(5ms);
        }
    }
    bool released(const std::string& name) {
        return migrate::test::is_released_placeholder(tree.src(name));
    }
    // Closes `name` as written; returns once its release waits in the hold.
    void release_held(const std::string& name) {
        hold.hold(ino_of(name));
        migrator->file_closed(name, true);
        REQUIRE(hold.wait_reached());
    }
    bool in_riak(const std::string& key) {
        auto got = run_on(migrator->context(), mem->get(proto::ObjectId{"", "riakfs", key}));
        REQUIRE(got);
        return got->found;
    }

    const TempTree& tree;
    layout::Mapper mapper = layout::Mapper::default_layout();
    std::unique_ptr<state::StateStore> state;
    migrate::ReleaseGate gate;
    Hold hold;
    std::unique_ptr<migrate::Migrator> migrator;
    store::MemoryObjectStore* mem = nullptr;
};

} // namespace

TEST_CASE("a release held in its local calls holds up no other copy or release",
          "[release_beside_loop]") {
    TempTree tree;
    tree.write("held.txt", "the release of this file waits");
    tree.write("other.txt", "this one goes through meanwhile");
    Move m(tree);
    m.release_held("held.txt");
    // Its record says a release is under way; its data is still there.
    REQUIRE(m.record("held.txt")->phase == state::Phase::releasing);
    CHECK_FALSE(m.released("held.txt"));

    // Another file is copied, verified and released while that release waits.
    m.migrator->file_closed("other.txt", true);
    REQUIRE(m.wait_phase("other.txt", state::Phase::released));
    CHECK(m.released("other.txt"));
    CHECK(m.record("held.txt")->phase == state::Phase::releasing);

    m.hold.open();
    REQUIRE(m.migrator->wait_idle(20s));
    CHECK(m.record("held.txt")->phase == state::Phase::released);
    CHECK(m.released("held.txt"));
}

TEST_CASE("a rename of a file being released waits for the release; the records follow the file",
          "[release_beside_loop]") {
    TempTree tree;
    tree.write("a.txt", "renamed while its data is being released");
    Move m(tree);
    m.release_held("a.txt");
    // The mount renames the file (the release holds its descriptor, not its name).
    REQUIRE(std::rename(tree.src("a.txt").c_str(), tree.src("c.txt").c_str()) == 0);
    m.migrator->path_renamed("a.txt", "c.txt", false);
    // Held until the release is recorded: nothing moved yet, and not idle.
    std::this_thread::sleep_for(100ms);
    CHECK(m.record("a.txt")->phase == state::Phase::releasing);
    CHECK_FALSE(m.record("c.txt"));
    CHECK_FALSE(m.migrator->wait_idle(0ms));

    m.hold.open();
    REQUIRE(m.migrator->wait_idle(20s));
    // The release ended first (recorded at a.txt), then the rename moved that record: nothing is
    // left at the old name, and the copy moved to the new key inside Riak.
    CHECK_FALSE(m.record("a.txt"));
    auto moved = m.record("c.txt");
    REQUIRE(moved);
    CHECK(moved->phase == state::Phase::released);
    CHECK(moved->key == "c.txt");
    CHECK(m.released("c.txt"));
    CHECK(m.in_riak("c.txt"));
    CHECK_FALSE(m.in_riak("a.txt"));
}

TEST_CASE("an unlink of a file being released waits for the release; nothing is left behind",
          "[release_beside_loop]") {
    TempTree tree;
    tree.write("gone.txt", "unlinked while its data is being released");
    Move m(tree);
    m.release_held("gone.txt");
    REQUIRE(::unlink(tree.src("gone.txt").c_str()) == 0);
    m.migrator->path_removed("gone.txt");
    std::this_thread::sleep_for(100ms);
    CHECK(m.record("gone.txt")->phase == state::Phase::releasing);

    m.hold.open();
    REQUIRE(m.migrator->wait_idle(20s));
    CHECK_FALSE(m.record("gone.txt"));
    CHECK_FALSE(m.in_riak("gone.txt"));
    auto removal = m.state->get_removal("gone.txt");
    REQUIRE(removal);
    CHECK_FALSE(*removal);
}

TEST_CASE("a drain asking for a file whose copy ends in a release is answered by that copy",
          "[release_beside_loop]") {
    // The copy of a close is verified and forgotten by the queue, and its release runs: the
    // drain asks for the file in that moment. The copy's end answers the drain, and nothing is
    // left queued (a drain entry once stayed queued for ever, and the daemon stopped with "1
    // copy pending").
    TempTree tree;
    tree.write("a.txt", "its release runs when the drain asks for it");
    Move m(tree);
    m.release_held("a.txt");
    std::mutex mu;
    std::vector<migrate::CopyResult::Kind> answers;
    m.migrator->drain_file("a.txt", [&](migrate::CopyResult r) {
        std::lock_guard lock(mu);
        answers.push_back(r.kind);
    });
    std::this_thread::sleep_for(100ms); // the drain's call reaches the loop
    CHECK_FALSE(m.migrator->wait_idle(0ms));

    m.hold.open();
    REQUIRE(m.migrator->wait_idle(20s));
    CHECK(m.migrator->stats().queued == 0);
    CHECK(m.released("a.txt"));
    std::lock_guard lock(mu);
    REQUIRE(answers.size() == 1);
    CHECK(answers[0] == migrate::CopyResult::Kind::copied);
}

TEST_CASE("the gate's try_with_file never waits: nothing runs while the file is being released",
          "[release]") {
    // For the migration loop, which a release in progress needs (a released file's reader that
    // finds its data back pins the file there).
    migrate::ReleaseGate gate;
    const migrate::FileId id{1, 2};
    REQUIRE(gate.begin_release(id));
    bool ran = false;
    CHECK_FALSE(gate.try_with_file(id, [&](auto) { ran = true; }));
    CHECK_FALSE(ran);
    gate.end_release(id);
    CHECK(gate.try_with_file(id, [&](auto pin) {
        ran = true;
        pin();
    }));
    CHECK(ran);
    CHECK(gate.pinned_files() == 1);
    CHECK_FALSE(gate.begin_release(id)); // pinned: no release begins
    gate.unpin(id);
    CHECK(gate.pinned_files() == 0);
    CHECK(gate.begin_release(id));
    gate.end_release(id);
}

} // namespace test_release_beside_loop
