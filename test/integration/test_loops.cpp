// Nothing slow on an event loop, no lock held across a system call: a request stuck on a slow
// source (riakfs-it-slowfs mounted inside SOURCE, slow_fs.hpp) must hold back no request on
// anything else. Each case shows the other request answered while the stuck one still waits;
// the bound in completes() only turns a hang into a failure.
#include "mount_fixture.hpp"
#include "slow_fs.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <set>
#include <string>
#include <thread>

using namespace riakfs::it;

namespace {

MountOptions with_plain_files(unsigned threads) {
    MountOptions o = MountOptions::prepared([](const std::string& src) {
        write_file(src + "/plain", "plain");
        REQUIRE_OK(::mkdir((src + "/d").c_str(), 0755));
        write_file(src + "/d/x", "x");
    });
    o.extra_opts.push_back("threads=" + std::to_string(threads));
    return o;
}

// Runs `stuck` on a thread until the slowfs reports `arrival`, then checks that a stat of
// `other` through the mount is answered while `stuck` still waits.
void check_not_held_back(MountFixture& fx, SlowFs& slow, char arrival,
                         const std::function<void()>& stuck, const std::string& other) {
    std::atomic<bool> stuck_done{false};
    std::thread t([&] {
        stuck();
        stuck_done = true;
    });
    // On every way out (a failed REQUIRE too) the gate opens and the thread is joined: left
    // joinable, it would end the run in std::terminate instead of the failure's message.
    struct OpenAndJoin {
        SlowFs& slow;
        std::thread& t;
        ~OpenAndJoin() {
            slow.open_gate();
            if (t.joinable()) t.join();
        }
    } open_and_join{slow, t};
    REQUIRE(slow.wait_arrival() == arrival);
    int rc = -1;
    bool still_stuck = false;
    bool answered = completes(
        [&] {
            struct stat st;
            rc = ::stat(fx.mnt(other).c_str(), &st);
            still_stuck = !stuck_done;
        },
        [&] { slow.open_gate(); });
    slow.open_gate();
    t.join();
    CHECK(answered);
    CHECK(rc == 0);
    CHECK(still_stuck);
}

} // namespace

// FLUSH is sent exactly for sources like this one (FUSE, NFS), whose close() may take long. With
// one loop, a FLUSH served on it would leave every other request waiting.
TEST_CASE("a FLUSH stuck on the source holds back no other request", "[loops]") {
    MountFixture fx(with_plain_files(1));
    SlowFs slow(fx, fx.src("slow"), "flush");
    int fd = ::open(fx.mnt("slow/a").c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    int rc = -1;
    check_not_held_back(
        fx, slow, 'f', [&] { rc = ::close(fd); }, "plain");
    CHECK(rc == 0);
}

// The final close of a file on such a source sends it a FLUSH as well, whether or not the file
// was written (close(2) always asks a FUSE file system to flush), and the kernel's RELEASE that
// makes riakfs close its own descriptor comes after the application's close() has returned.
TEST_CASE("a RELEASE stuck on the source holds back no other request", "[loops]") {
    MountFixture fx(with_plain_files(1));
    SlowFs slow(fx, fx.src("slow"), "flush");
    std::thread closer; // joined last: the application's close() need not wait for the RELEASE
    SECTION("read only: riakfs gets no FLUSH, only the RELEASE") {
        int fd = ::open(fx.mnt("slow/a").c_str(), O_RDONLY);
        REQUIRE(fd >= 0);
        CHECK_OK(::close(fd));
    }
    SECTION("written: the FLUSH's close of a duplicate, then the RELEASE's own") {
        int fd = ::open(fx.mnt("slow/b").c_str(), O_WRONLY);
        REQUIRE(fd >= 0);
        closer = std::thread([fd] { ::close(fd); });
        REQUIRE(slow.wait_arrival() == 'f'); // FLUSH: riakfs closes a duplicate
        slow.let_one_go();
    }
    // riakfs's final close of its descriptor now waits in the slowfs's FLUSH.
    REQUIRE(slow.wait_arrival() == 'f');
    int rc = -1;
    bool answered = completes(
        [&] {
            struct stat st;
            rc = ::stat(fx.mnt("plain").c_str(), &st);
        },
        [&] { slow.open_gate(); });
    slow.open_gate();
    if (closer.joinable()) closer.join();
    CHECK(answered);
    CHECK(rc == 0);
}

TEST_CASE("a truncate stuck on the source holds back no other request", "[loops]") {
    MountFixture fx(with_plain_files(1));
    SlowFs slow(fx, fx.src("slow"), "setattr");
    int rc = -1;
    SECTION("by path") {
        check_not_held_back(
            fx, slow, 's', [&] { rc = ::truncate(fx.mnt("slow/a").c_str(), 10); }, "plain");
    }
    SECTION("through an open file") {
        Fd f(::open(fx.mnt("slow/b").c_str(), O_WRONLY));
        REQUIRE(f);
        check_not_held_back(
            fx, slow, 's', [&] { rc = ::ftruncate(f.get(), 10); }, "plain");
    }
    SECTION("by O_TRUNC") {
        Fd f;
        check_not_held_back(
            fx, slow, 's', [&] { f.reset(::open(fx.mnt("slow/c").c_str(), O_WRONLY | O_TRUNC)); },
            "plain");
        rc = f ? 0 : -1;
    }
    CHECK(rc == 0);
}

// copy_file_range may copy gigabytes in one request; fsync must not wait behind two of them.
TEST_CASE("an fsync is not held back by copies in flight", "[loops]") {
    MountFixture fx(with_plain_files(2));
    SlowFs slow(fx, fx.src("slow"), "read");
    Fd plain(::open(fx.mnt("plain").c_str(), O_WRONLY));
    REQUIRE(plain);
    // As many copies as the blocking pool has threads (blocking_threads, 2 by default).
    std::atomic<int> copied{0};
    std::atomic<bool> copies_done{false};
    std::vector<std::thread> copies;
    for (const char* name : {"a", "b"}) {
        copies.emplace_back([&, name] {
            Fd in(::open(fx.mnt(std::string("slow/") + name).c_str(), O_RDONLY));
            Fd out(::open(fx.mnt(std::string("copy-") + name).c_str(), O_CREAT | O_WRONLY, 0644));
            if (!in || !out) return;
            loff_t off_in = 1 << 19, off_out = 0;
            if (::copy_file_range(in.get(), &off_in, out.get(), &off_out, 1 << 19, 0) > 0) ++copied;
        });
    }
    REQUIRE(slow.wait_arrival() == 'r');
    REQUIRE(slow.wait_arrival() == 'r');
    int rc = -1;
    bool still_copying = false;
    bool answered = completes(
        [&] {
            rc = ::fsync(plain.get());
            still_copying = copied == 0;
        },
        [&] { slow.open_gate(); });
    slow.open_gate();
    for (auto& t : copies)
        t.join();
    CHECK(answered);
    CHECK(rc == 0);
    CHECK(still_copying);
    CHECK(copied == 2);
}

// The inode table is shared by the loops: a lookup that waits on a slow source (here the first
// sight of the slowfs opens a directory on it) must not hold the table while it waits.
TEST_CASE("a lookup stuck on the source holds back no lookup on the other loop", "[loops]") {
    MountFixture fx(with_plain_files(2));
    SlowFs slow(fx, fx.src("slow"), "opendir");
    lstat_ok(fx.mnt("d")); // known to the kernel: "d/x" is then one LOOKUP in d
    int rc = -1;
    check_not_held_back(
        fx, slow, 'o',
        [&] {
            struct stat st;
            rc = ::stat(fx.mnt("slow").c_str(), &st);
        },
        "d/x");
    CHECK(rc == 0);
}

// threads=N serves the mount with N event loops: loop 0 on the daemon's main thread, each other
// one on a thread of its own named riakfs-loopI (for top -H and perf). Without threads= there
// are two. Counted in the running daemon, not read back from the parsed options.
TEST_CASE("threads= sets how many event loops serve the mount", "[loops][options]") {
    if (!riakfs_only("option threads=")) return;
    auto loop_threads = [](pid_t pid) {
        std::set<std::string> names;
        for (const auto& thread : threads_of(pid))
            if (thread.name.rfind("riakfs-loop", 0) == 0) names.insert(thread.name);
        return names;
    };
    auto expected = [](unsigned loops) {
        std::set<std::string> names;
        for (unsigned i = 1; i < loops; ++i)
            names.insert("riakfs-loop" + std::to_string(i));
        return names;
    };
    // Each loop thread names itself once it runs, which may be a little after the mount already
    // serves (a loaded machine, a sanitizer build): the names are awaited, for a bound.
    auto settled_loop_threads = [&](pid_t pid, unsigned loops) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        auto names = loop_threads(pid);
        while (names != expected(loops) && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            names = loop_threads(pid);
        }
        return names;
    };
    for (unsigned n : {1u, 3u}) {
        MountFixture fx(with_plain_files(n));
        CHECK(read_file(fx.mnt("plain")) == "plain");
        INFO("threads=" << n);
        CHECK(settled_loop_threads(fx.pid(), n) == expected(n));
    }
    MountFixture fx;
    CHECK(settled_loop_threads(fx.pid(), 2) == expected(2));
}
