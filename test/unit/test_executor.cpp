// Executor: a handler (or a blocking call) that throws is logged and its loop keeps serving, since
// an exception escaping a loop thread would terminate the daemon and leave a dead mount.
#include "lib/io/executor.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <future>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
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

// The slices themselves (100 us for serving threads and the threads they start, the default for
// background ones) are checked on the daemon's own threads, where the kernel reports them
// (test/integration/test_drain.cpp); here, what holds on every kernel.
TEST_CASE("a thread's role keeps its nice value, and leaves other policies alone", "[executor]") {
    // In threads of their own, so that the test runner's thread keeps its attributes.
    bool serving = false, background = false, idle_applied = true;
    int nice_serving = 0, nice_background = 0, idle_policy = -1;
    std::thread([&] {
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 3); // as `nice -n 3 riakfs`
        serving = rfs::io::apply_thread_role(rfs::io::ThreadRole::serving);
        nice_serving = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
        background = rfs::io::apply_thread_role(rfs::io::ThreadRole::background);
        nice_background = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    }).join();
    CHECK(serving);
    CHECK(background);
    CHECK(nice_serving == 3);
    CHECK(nice_background == 3);
    bool idle_set = false; // a REQUIRE in another thread would end the run, not the test
    std::thread([&] {
        sched_param none{};
        idle_set = ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &none) == 0;
        idle_applied = rfs::io::apply_thread_role(rfs::io::ThreadRole::serving);
        idle_policy = ::sched_getscheduler(0);
    }).join();
    REQUIRE(idle_set);
    CHECK_FALSE(idle_applied);
    CHECK(idle_policy == SCHED_IDLE);
}
