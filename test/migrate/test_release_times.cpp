// mode=move's release, its resumption after a stop, and a fetch back, with real files, a real
// state store, the in-memory object store and a LocalFs over the same SOURCE wired as the daemon
// wires it: the punch (or the fetch's writes) moves the file's mtime until futimens puts it back,
// and a lookup or getattr answered in that moment must still show the user's mtime, as must a
// namespace record of the directory made then.
//
// The moment is reached deterministically: this executable defines futimens(), which the
// library's calls bind to (an executable's own definition comes before libc's), and which asks
// LocalFs about the file just before it makes the real call.
#include "lib/common/timespec_ns.hpp"
#include "lib/fs/local_fs.hpp"
#include "lib/migrate/migrate_observer.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/namespace_sync.hpp"
#include "lib/migrate/release_gate.hpp"
#include "lib/migrate/riak_reader.hpp"
#include "lib/state/placeholder.hpp"
#include "test/migrate/migrate_test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace rfs;
using namespace std::chrono_literals;
using migrate::test::open_state;
using migrate::test::TempTree;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_release_times {
// Called with the descriptor of every futimens() (pwrite()) in this process while set.
std::atomic<std::function<void(int)>*> at_futimens{nullptr};
std::atomic<std::function<void(int)>*> at_pwrite{nullptr};
} // namespace test_release_times

extern "C" int futimens(int fd, const struct timespec times[2]) noexcept {
    if (auto* hook = test_release_times::at_futimens.load()) (*hook)(fd);
    return static_cast<int>(::syscall(SYS_utimensat, fd, nullptr, times, 0));
}

extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
    if (auto* hook = test_release_times::at_pwrite.load()) (*hook)(fd);
    return static_cast<ssize_t>(::syscall(SYS_pwrite64, fd, buf, n, offset));
}

namespace test_release_times {

namespace {

const timespec kKept{1000000000, 123456789}; // the user's mtime: long ago, with nanoseconds

bool same(const timespec& a, const timespec& b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

struct Notes final : fs::KernelNotifier {
    std::mutex mu;
    std::vector<fs::NodeId> changed;
    void forget_negative_entry(fs::NodeId, std::string_view) override {}
    void attributes_changed(fs::NodeId node) override {
        std::lock_guard lock(mu);
        changed.push_back(node);
    }
    std::size_t count(fs::NodeId node) {
        std::lock_guard lock(mu);
        return static_cast<std::size_t>(std::count(changed.begin(), changed.end(), node));
    }
};

// What the mount would have answered at the futimens that puts the file's times back.
struct Seen {
    int hits = 0;
    timespec source{};  // SOURCE's own mtime then (the punch's or the writes')
    timespec getattr{}; // LocalFs::getattr's
    timespec lookup{};  // LocalFs::lookup's
    blkcnt_t blocks = -1;
    // The file's mtime in its directory's namespace record, read then as the daemon's
    // NamespaceSync reads it (through LocalFs::lstat_as_shown), and with plain lstat.
    std::int64_t record_ns = -1, record_plain_ns = -1;
};

// The moment was seen once and was real (SOURCE showed a moved mtime: the punch's or the
// writes'), and the mount answered the user's mtime through getattr and lookup.
void check_moment_hidden(const Seen& seen) {
    REQUIRE(seen.hits == 1);
    CHECK_FALSE(same(seen.source, kKept));
    CHECK(same(seen.getattr, kKept));
    CHECK(same(seen.lookup, kKept));
    // Nor through the namespace record made then (it would keep that mtime until the next
    // change in the directory, and a restore would give it to the file), though SOURCE's plain
    // lstat shows the moment.
    CHECK(seen.record_ns == ns_of(kKept));
    CHECK(seen.record_plain_ns == ns_of(seen.source));
}

// SOURCE, served by a LocalFs as the daemon serves it, and a move-mode Migrator whose hooks are
// wired to it as daemon/main.cpp wires them.
struct Move {
    explicit Move(const TempTree& tree) : tree(tree) {
        state = open_state(tree.state_dir(), tree.source());
        int root = ::open(tree.source().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(root >= 0);
        struct stat st;
        REQUIRE(::fstat(root, &st) == 0);
        table = std::make_unique<fs::InodeTable>(UniqueFd(root), st);
        local = std::make_unique<fs::LocalFs>(*table, fs::LocalFs::Config{});
        local->set_notifier(&notes);
    }
    ~Move() {
        at_futimens.store(nullptr);
        at_pwrite.store(nullptr);
        observer.reset();
        reader.reset();
        if (migrator) migrator->stop(0ms);
    }

    void start_migrator() {
        migrate::MigratorOptions mo;
        mo.chunk_size = 1000;
        mo.retry_first = 20ms;
        mo.retry_max = 100ms;
        mo.release = &gate;
        mo.source_changing = [this](dev_t dev, ino_t ino, const timespec& mtime) {
            local->source_changing(dev, ino, mtime);
        };
        mo.source_changed = [this](dev_t dev, ino_t ino) { local->source_changed(dev, ino); };
        migrator = std::make_unique<migrate::Migrator>(
            tree.source_fd(), mapper, *state,
            [](boost::asio::io_context& context) {
                return std::make_unique<store::MemoryObjectStore>(context);
            },
            mo);
        migrator->start();
    }

    // A file with `data` and the user's old mtime, known to the kernel (looked up).
    fs::NodeId make(const std::string& name, const std::string& data) {
        tree.write(name, data);
        const timespec times[2] = {{0, UTIME_OMIT}, kKept};
        REQUIRE(::utimensat(AT_FDCWD, tree.src(name).c_str(), times, 0) == 0);
        fs::Entry e;
        REQUIRE(local->lookup(fs::kRootNodeId, name.c_str(), &e) == 0);
        REQUIRE(same(e.attr.st_mtim, kKept));
        struct stat st;
        REQUIRE(::stat(tree.src(name).c_str(), &st) == 0);
        ino = st.st_ino;
        return e.id;
    }

    // mode=move's hooks on LocalFs, as the daemon wires them once the migrator runs.
    void observe() {
        reader =
            std::make_shared<migrate::RiakReader>(migrator->context(), migrator->object_store());
        observer = std::make_unique<migrate::MigrateObserver>(
            *local, *migrator, *state, reader, gate, migrate::MigrateObserverOptions{true, true});
        local->set_observer(observer.get());
    }
    // A user's touch of `node` through the mount, setting its mtime to `mtime`.
    int touch(fs::NodeId node, const timespec& mtime) {
        struct stat values {};
        values.st_mtim = mtime;
        fs::Attr a;
        fs::Caller caller{0, 0, static_cast<pid_t>(::syscall(SYS_gettid)), {}};
        return local->setattr(caller, node, values, fs::kSetMtime, nullptr, &a);
    }

    // From now on, each futimens of the file records what the mount would answer then.
    void watch(fs::NodeId node, const std::string& name) {
        hook = [this, node, name](int fd) {
            struct stat st;
            if (::fstat(fd, &st) != 0 || st.st_ino != ino) return;
            std::lock_guard lock(seen_mu);
            ++seen.hits;
            seen.source = st.st_mtim;
            fs::Attr a;
            if (local->getattr(node, nullptr, &a) == 0) {
                seen.getattr = a.attr.st_mtim;
                seen.blocks = a.attr.st_blocks;
            }
            fs::Entry e;
            if (local->lookup(fs::kRootNodeId, name.c_str(), &e) == 0) {
                seen.lookup = e.attr.st_mtim;
                local->forget(e.id, 1);
            }
            // A descriptor each: a listing reads the directory to its end.
            UniqueFd dir(::open(tree.source().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            UniqueFd dir2(::open(tree.source().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            auto shown = migrate::read_local_dir(dir.get(), "", mapper, *state,
                                                 [this](int d, const char* n, struct stat* s) {
                                                     return local->lstat_as_shown(d, n, s);
                                                 });
            if (shown && shown->entries.count(name))
                seen.record_ns = shown->entries.at(name).mtime_ns;
            auto plain = migrate::read_local_dir(dir2.get(), "", mapper, *state);
            if (plain && plain->entries.count(name))
                seen.record_plain_ns = plain->entries.at(name).mtime_ns;
        };
        at_futimens.store(&hook);
    }
    Seen seen_now() {
        std::lock_guard lock(seen_mu);
        return seen;
    }

    bool released(const std::string& name) {
        return migrate::test::is_released_placeholder(tree.src(name));
    }
    // The release follows the copy's record, which wait_idle() does not wait for; it is over
    // once it is recorded.
    bool wait_released(const std::string& name) {
        auto deadline = std::chrono::steady_clock::now() + 20s;
        auto done = [&] {
            auto rec = record(name);
            return released(name) && rec && rec->phase == state::Phase::released;
        };
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(10ms);
        }
        return true;
    }
    std::optional<state::FileState> record(const std::string& path) {
        auto got = state->get(path);
        REQUIRE(got);
        return *got;
    }

    const TempTree& tree;
    layout::Mapper mapper = layout::Mapper::default_layout();
    std::unique_ptr<state::StateStore> state;
    std::unique_ptr<fs::InodeTable> table;
    std::unique_ptr<fs::LocalFs> local;
    Notes notes;
    migrate::ReleaseGate gate;
    std::unique_ptr<migrate::Migrator> migrator;
    std::shared_ptr<migrate::RiakReader> reader;
    std::unique_ptr<migrate::MigrateObserver> observer;
    ino_t ino = 0;
    std::function<void(int)> hook;
    std::mutex seen_mu;
    Seen seen;
};

} // namespace

} // namespace test_release_times

namespace test_release_times {

TEST_CASE("a release's punch never shows through lookup or getattr", "[release_times]") {
    TempTree tree;
    Move move(tree);
    move.start_migrator();
    const std::string data(5000, 'r');
    fs::NodeId node = move.make("f", data);
    struct stat st;
    REQUIRE(::stat(tree.src("f").c_str(), &st) == 0);
    const blkcnt_t blocks = st.st_blocks;
    move.watch(node, "f");
    move.migrator->file_closed("f", true);
    REQUIRE(move.wait_released("f"));
    REQUIRE(move.migrator->wait_idle(20s));
    Seen seen = move.seen_now();
    check_moment_hidden(seen);
    // The blocks were gone then (shown as they are: the file system may count a block for the
    // marker).
    CHECK(seen.blocks < blocks);
    // Afterwards: SOURCE's own times (put back), and the kernel was told to drop what it cached
    // meanwhile (blocks, ctime).
    fs::Attr a;
    REQUIRE(move.local->getattr(node, nullptr, &a) == 0);
    CHECK(same(a.attr.st_mtim, kKept));
    CHECK(a.attr.st_size == static_cast<off_t>(data.size()));
    CHECK(move.notes.count(node) == 1);
    CHECK(move.record("f")->phase == state::Phase::released);
}

TEST_CASE("a release resumed at start never shows its punch either", "[release_times]") {
    TempTree tree;
    Move move(tree);
    // A stop between the marker and the record `released`: the data is still there (the punch
    // had not happened), the record says releasing and the file carries its marker.
    const std::string data(5000, 's');
    fs::NodeId node = move.make("g", data);
    struct stat st;
    REQUIRE(::stat(tree.src("g").c_str(), &st) == 0);
    state::FileState rec;
    rec.phase = state::Phase::releasing;
    rec.version = "v1";
    rec.sha256 = std::string(64, 'a');
    rec.bucket = "riakfs";
    rec.key = "g";
    rec.size = data.size();
    rec.mtime_ns = ns_of(kKept);
    rec.ctime_ns = ns_of(st.st_ctim);
    rec.dev = st.st_dev;
    rec.ino = st.st_ino;
    {
        int fd = ::open(tree.src("g").c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(state::write_marker(fd, state::marker_of(rec)));
        ::close(fd);
    }
    REQUIRE(move.state->put("g", rec));
    move.watch(node, "g");
    move.start_migrator(); // resumes the release on its loop
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (move.record("g")->phase != state::Phase::released &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    REQUIRE(move.record("g")->phase == state::Phase::released);
    REQUIRE(move.released("g"));
    check_moment_hidden(move.seen_now());
    fs::Attr a;
    REQUIRE(move.local->getattr(node, nullptr, &a) == 0);
    CHECK(same(a.attr.st_mtim, kKept));
    CHECK(move.notes.count(node) == 1);
}

TEST_CASE("a fetch back's writes never show through lookup or getattr", "[release_times]") {
    TempTree tree;
    Move move(tree);
    move.start_migrator();
    const std::string data(5000, 'w');
    fs::NodeId node = move.make("h", data);
    // Capabilities, which the punch and the writes remove: kept through both.
    const std::string caps("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00"
                           "\x00\x00\x00\x00\x00\x00\x00\x00",
                           20);
    auto caps_of = [&] {
        std::string value(64, '\0');
        ssize_t n =
            ::getxattr(tree.src("h").c_str(), "security.capability", value.data(), value.size());
        value.resize(n < 0 ? 0 : static_cast<size_t>(n));
        return value;
    };
    REQUIRE(::setxattr(tree.src("h").c_str(), "security.capability", caps.data(), caps.size(), 0) ==
            0);
    move.migrator->file_closed("h", true);
    REQUIRE(move.wait_released("h"));
    REQUIRE(move.migrator->wait_idle(20s));
    CHECK(caps_of() == caps);
    move.reader = std::make_shared<migrate::RiakReader>(move.migrator->context(),
                                                        move.migrator->object_store());
    move.observer = std::make_unique<migrate::MigrateObserver>(
        *move.local, *move.migrator, *move.state, move.reader, move.gate,
        migrate::MigrateObserverOptions{true, true});
    move.watch(node, "h");
    int fd = ::open(tree.src("h").c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    std::promise<int> fetched;
    move.observer->fetch_data(node, UniqueFd(fd), [&](int err) { fetched.set_value(err); });
    auto done = fetched.get_future();
    REQUIRE(done.wait_for(20s) == std::future_status::ready);
    REQUIRE(done.get() == 0);
    check_moment_hidden(move.seen_now());
    fs::Attr a;
    REQUIRE(move.local->getattr(node, nullptr, &a) == 0);
    CHECK(same(a.attr.st_mtim, kKept));
    CHECK_FALSE(move.released("h"));
    CHECK(caps_of() == caps);
    CHECK(move.notes.count(node) == 2); // released, then fetched back
}

// A user's touch (a times-only setattr) while a release is in its local calls waits for the
// release to put the old times back, then sets its own: without that wait the release's futimens
// came after the touch and the user's mtime was lost.
TEST_CASE("a touch during a release is not overwritten by the release's times", "[release_times]") {
    TempTree tree;
    Move move(tree);
    move.start_migrator();
    fs::NodeId node = move.make("t", std::string(5000, 't'));
    move.observe();
    const timespec touched{1'700'000'000, 0};
    std::promise<int> touch_done;
    std::thread toucher;
    move.hook = [&](int fd) {
        struct stat st;
        if (::fstat(fd, &st) != 0 || st.st_ino != move.ino || toucher.joinable()) return;
        // In the release's futimens: a touch through the mount now.
        toucher = std::thread([&] { touch_done.set_value(move.touch(node, touched)); });
        // Time enough for it to land here if nothing holds it back.
        std::this_thread::sleep_for(300ms);
    };
    at_futimens.store(&move.hook);
    move.migrator->file_closed("t", true);
    REQUIRE(move.wait_released("t"));
    REQUIRE(move.migrator->wait_idle(20s));
    REQUIRE(toucher.joinable());
    auto done = touch_done.get_future();
    REQUIRE(done.wait_for(20s) == std::future_status::ready);
    CHECK(done.get() == 0);
    toucher.join();
    move.local->set_observer(nullptr);
    struct stat st;
    REQUIRE(::stat(tree.src("t").c_str(), &st) == 0);
    CHECK(same(st.st_mtim, touched)); // the user's, not the one the release put back
    CHECK(move.released("t"));
}

// The fetch back of a released file writes its data and then puts the marker's mtime back. A
// user's touch made meanwhile must survive that: one made while the data is written is applied
// again at the end (the writes move the mtime after it); one made while the fetch sets the
// times waits for it. Without that the fetch's futimens overwrote the user's mtime.
TEST_CASE("a touch during a fetch back is not overwritten by the fetch's times",
          "[release_times]") {
    TempTree tree;
    Move move(tree);
    move.start_migrator();
    fs::NodeId node = move.make("b", std::string(5000, 'b'));
    move.migrator->file_closed("b", true);
    REQUIRE(move.wait_released("b"));
    REQUIRE(move.migrator->wait_idle(20s));
    move.observe();
    const timespec touched{1'700'000'000, 0};
    auto touch = [&] { return move.touch(node, touched); };
    auto fetch_back = [&] {
        int fd = ::open(tree.src("b").c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        std::promise<int> fetched;
        move.observer->fetch_data(node, UniqueFd(fd), [&](int err) { fetched.set_value(err); });
        auto done = fetched.get_future();
        REQUIRE(done.wait_for(20s) == std::future_status::ready);
        REQUIRE(done.get() == 0);
    };
    auto mtime_now = [&] {
        struct stat st;
        REQUIRE(::stat(tree.src("b").c_str(), &st) == 0);
        return st.st_mtim;
    };

    SECTION("while the data is written back") {
        int touched_rc = -1;
        std::function<void(int)> hook = [&](int fd) {
            struct stat st;
            if (touched_rc != -1 || ::fstat(fd, &st) != 0 || st.st_ino != move.ino) return;
            touched_rc = touch(); // on the migration loop, before the fetch's write
        };
        at_pwrite.store(&hook);
        fetch_back();
        at_pwrite.store(nullptr);
        CHECK(touched_rc == 0);
        CHECK(same(mtime_now(), touched));
    }
    SECTION("while the fetch puts the times back") {
        std::promise<int> touch_done;
        std::thread toucher;
        move.hook = [&](int fd) {
            struct stat st;
            if (::fstat(fd, &st) != 0 || st.st_ino != move.ino || toucher.joinable()) return;
            // In the fetch's futimens: a touch through the mount now.
            toucher = std::thread([&] { touch_done.set_value(touch()); });
            // Time enough for it to land here if nothing holds it back.
            std::this_thread::sleep_for(300ms);
        };
        at_futimens.store(&move.hook);
        fetch_back();
        REQUIRE(toucher.joinable());
        auto done = touch_done.get_future();
        REQUIRE(done.wait_for(20s) == std::future_status::ready);
        CHECK(done.get() == 0);
        toucher.join();
        at_futimens.store(nullptr);
        CHECK(same(mtime_now(), touched));
    }
    CHECK_FALSE(move.released("b"));
    move.local->set_observer(nullptr);
}

} // namespace test_release_times
