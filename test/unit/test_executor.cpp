// Executor: a handler (or a blocking call) that throws is logged and its loop keeps serving, since
// an exception escaping a loop thread would terminate the daemon and leave a dead mount.
#include "lib/io/executor.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <future>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

namespace {

using boost::asio::post;

// Sends this process's stderr (where the log goes in the foreground) to a file for the
// object's lifetime; text() reads what was written so far.
class StderrCapture {
public:
    StderrCapture() {
        const char* dir = std::getenv("TMPDIR");
        path_ = std::string(dir && *dir ? dir : "/tmp") + "/rfs-unit-stderr-XXXXXX";
        int fd = ::mkstemp(path_.data());
        REQUIRE(fd >= 0);
        std::fflush(stderr);
        saved_ = ::dup(STDERR_FILENO);
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
    }
    ~StderrCapture() {
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        ::unlink(path_.c_str());
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;
    std::string text() const {
        std::fflush(stderr);
        std::ifstream in(path_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

private:
    std::string path_;
    int saved_ = -1;
};

} // namespace

TEST_CASE("a throwing handler is logged and the loop serves later posts", "[executor]") {
    StderrCapture err;
    rfs::io::Executor ex(1, 1);
    auto& loop = ex.loop(0).context();
    int ran = 0;
    post(loop, [] { throw std::runtime_error("boom"); });
    post(loop, [&] { ++ran; });
    post(loop, [] { throw std::bad_alloc(); });
    post(loop, [] { throw std::system_error(ENOMEM, std::generic_category(), "io_uring"); });
    post(loop, [] { throw 42; }); // not a std::exception
    post(loop, [&] {
        ++ran;
        // Still this loop's thread as far as the executor knows.
        CHECK(rfs::io::Executor::current() == &ex.loop(0));
        // Work posted after the failures runs too.
        post(ex.loop(0).context(), [&] {
            ++ran;
            ex.stop();
        });
    });
    ex.run(); // returns (instead of terminating) once stop() is called
    CHECK(ran == 3);
    CHECK(rfs::io::Executor::current() == nullptr);

    std::string log = err.text();
    INFO(log);
    CHECK(log.find("event loop 0: a handler failed: boom") != std::string::npos);
    CHECK(log.find("std::bad_alloc") != std::string::npos);
    CHECK(log.find("io_uring") != std::string::npos);
    CHECK(log.find("not derived from std::exception") != std::string::npos);
}

TEST_CASE("a throwing handler on a helper loop leaves that loop running", "[executor]") {
    StderrCapture err;
    rfs::io::Executor ex(2, 1);
    std::atomic<int> ran{0};
    post(ex.loop(1).context(), [] { throw std::runtime_error("helper"); });
    post(ex.loop(1).context(), [&] {
        if (rfs::io::Executor::current() == &ex.loop(1)) ++ran;
        // Loop 0 ends the run once the helper served this.
        post(ex.loop(0).context(), [&] { ex.stop(); });
    });
    ex.run();
    CHECK(ran == 1);
    CHECK(err.text().find("event loop 1: a handler failed: helper") != std::string::npos);
}

TEST_CASE("a throwing blocking call is logged and the pool serves later calls", "[executor]") {
    StderrCapture err;
    rfs::io::Executor ex(1, 1); // one pool thread: the later calls run on the thread that threw
    std::atomic<int> ran{0};
    ex.run_blocking([] { throw std::runtime_error("fsync"); });
    ex.run_blocking([&] { ++ran; });
    ex.run_blocking([&] { ++ran; });
    ex.join_blocking();
    CHECK(ran == 2);
    CHECK(err.text().find("blocking pool: a call failed: fsync") != std::string::npos);
}

TEST_CASE("blocking-pool threads take no process signals", "[executor]") {
    rfs::io::Executor executor(1, 2);
    std::promise<bool> blocked;
    executor.run_blocking([&] {
        sigset_t mask;
        pthread_sigmask(SIG_SETMASK, nullptr, &mask);
        blocked.set_value(sigismember(&mask, SIGTERM) == 1 && sigismember(&mask, SIGINT) == 1);
    });
    CHECK(blocked.get_future().get());
    // The constructing thread got its own mask back.
    sigset_t mine;
    pthread_sigmask(SIG_SETMASK, nullptr, &mine);
    CHECK(sigismember(&mine, SIGTERM) == 0);
    executor.join_blocking();
}

// Two copies that take as long as they like (each waits here until the blocking call ran) must
// not keep a blocking call waiting: the copies run on their own threads. Sharing the blocking
// pool, they would hold both its threads and the call would never run (the test would hang).
TEST_CASE("copies in flight hold back no blocking call", "[executor]") {
    rfs::io::Executor executor(1, 2);
    std::promise<void> fsynced;
    std::shared_future<void> fsync_done = fsynced.get_future().share();
    std::atomic<int> copies_waiting{0};
    for (int i = 0; i < 2; ++i)
        executor.run_copy([&, fsync_done] {
            ++copies_waiting;
            fsync_done.wait();
        });
    while (copies_waiting < 2) // both copies in flight
        std::this_thread::yield();
    executor.run_blocking([&] { fsynced.set_value(); });
    fsync_done.wait();
    executor.join_blocking();
}

TEST_CASE("copy threads take no process signals", "[executor]") {
    rfs::io::Executor executor(1, 1);
    std::promise<bool> blocked;
    executor.run_copy([&] {
        sigset_t mask;
        pthread_sigmask(SIG_SETMASK, nullptr, &mask);
        blocked.set_value(sigismember(&mask, SIGTERM) == 1 && sigismember(&mask, SIGINT) == 1);
    });
    CHECK(blocked.get_future().get());
    executor.join_blocking();
}

TEST_CASE("max_write never outgrows the request buffers, whatever the page size", "[buffers]") {
    // What libfuse offers is 256 pages: 1 MiB with 4 KiB pages, 16 MiB with 64 KiB pages.
    for (unsigned page : {4096u, 16384u, 65536u}) {
        unsigned offered = 256 * page;
        unsigned chosen = rfs::io::fuse_max_write(offered);
        CHECK(chosen <= offered);
        CHECK(chosen + 4096 <= rfs::io::BufferPool::kBufferSize); // a WRITE's headers fit too
        CHECK(chosen == rfs::io::BufferPool::kMaxWrite);
    }
    CHECK(rfs::io::fuse_max_write(65536) == 65536); // a smaller offer is kept
}

TEST_CASE("helper threads carry their name and take no signal", "[executor]") {
    std::string name;
    bool sigterm_blocked = false;
    auto t = rfs::io::thread_without_signals(
        [&] {
            char buf[16] = {};
            ::pthread_getname_np(::pthread_self(), buf, sizeof buf);
            name = buf;
            sigset_t mask;
            ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
            sigterm_blocked = sigismember(&mask, SIGTERM) == 1;
        },
        "riakfs-a-name-longer-than-15", rfs::io::ThreadRole::background);
    t.join();
    CHECK(name == "riakfs-a-name-l"); // cut to the kernel's 15 bytes, not refused
    CHECK(sigterm_blocked);
}

namespace {
// The calling thread's time slice in ns as the kernel reports it ("se.slice" in
// /proc/thread-self/sched, Linux 6.6 and later); nullopt on kernels that do not show it.
std::optional<long long> own_slice_ns() {
    std::ifstream in("/proc/thread-self/sched");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("se.slice", 0) != 0) continue;
        auto colon = line.find(':');
        if (colon == std::string::npos) return std::nullopt;
        return std::stoll(line.substr(colon + 1));
    }
    return std::nullopt;
}
} // namespace

TEST_CASE("serving threads get the shortest slice, background threads the kernel's default",
          "[executor]") {
    // Run in threads of their own, so that the test runner's thread keeps its attributes.
    std::optional<long long> serving, inherited, background;
    bool serving_applied = false;
    std::thread([&] {
        serving_applied = rfs::io::apply_thread_role(rfs::io::ThreadRole::serving);
        serving = own_slice_ns();
        // A thread started by a serving thread inherits its slice (the daemon's FUSE loops and
        // pools), unless it is started as a background one.
        std::thread([&] { inherited = own_slice_ns(); }).join();
        rfs::io::thread_without_signals([&] { background = own_slice_ns(); }, "riakfs-bg",
                                        rfs::io::ThreadRole::background)
            .join();
    }).join();
    REQUIRE(serving_applied); // the kernel takes the call, whatever its version
    if (!serving) {
        WARN("this kernel does not report its threads' slices (/proc/thread-self/sched)");
        return;
    }
    CHECK(*serving == 100'000);
    CHECK(inherited == serving);
    REQUIRE(background);
    CHECK(*background > 100'000); // the default: 700 us to 3 ms depending on the CPUs
}
