// The executor: a few event loops, each an Asio io_context running on io_uring in its own
// thread, plus a small pool for calls that may block for long.
//
// Event loops read FUSE requests, run local I/O and (later) Riak HTTP calls concurrently, and
// reply asynchronously. A loop's io_context, buffers and I/O objects belong to its thread;
// other threads reach a loop only through post().
#pragma once

#include <signal.h>

#include <functional>
#include <thread>

#include "lib/io/buffer_pool.hpp"
#include "lib/io/thread_role.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace rfs::io {

class Loop {
public:
    explicit Loop(unsigned index);
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    unsigned index() const { return index_; }
    boost::asio::io_context& context() { return context_; }
    BufferPool& buffers() { return buffers_; } // this loop's thread only

private:
    friend class Executor;
    unsigned index_;
    boost::asio::io_context context_{1}; // one thread per context: Asio may skip locking
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    BufferPool buffers_;
    std::thread thread_;
};

class Executor {
public:
    Executor(unsigned loops, unsigned blocking_threads);
    ~Executor();
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    unsigned size() const { return static_cast<unsigned>(loops_.size()); }
    Loop& loop(unsigned i) { return *loops_[i]; }

    // The loop whose thread is calling, or null on any other thread.
    static Loop* current();

    // Runs every loop: loops 1..n-1 on new threads, loop 0 on the calling thread. Returns when
    // stop() was called and every loop has finished its queued work. A handler that throws is
    // logged and its loop keeps running the others.
    void run();
    // Any thread. Loops return from run() as soon as their current handler returns; requests
    // still in flight are abandoned, so call it only once the FUSE connection is gone.
    void stop();

    // Runs `fn` on the blocking pool (fsync, fallocate, flush, truncates...). An exception from
    // `fn` is logged; like one from a loop handler, it must not end the daemon.
    template <class F> void run_blocking(F&& fn) { post_guarded(blocking_, std::forward<F>(fn)); }
    // Runs `fn`, a copy (copy_file_range), on a pool of its own with as many threads: one copy
    // may move gigabytes, and copies sharing the blocking pool would hold back every fsync
    // behind them. Copies wait only for other copies.
    template <class F> void run_copy(F&& fn) { post_guarded(copies_, std::forward<F>(fn)); }
    // Waits for every blocking call and copy to finish. Call after run() returned.
    void join_blocking() {
        blocking_.join();
        copies_.join();
    }

private:
    template <class F> static void post_guarded(boost::asio::thread_pool& pool, F&& fn) {
        boost::asio::post(pool, [fn = std::forward<F>(fn)]() mutable {
            try {
                fn();
            } catch (...) {
                log_blocking_failure();
            }
        });
    }
    static void log_blocking_failure(); // inside a catch block only
    std::vector<std::unique_ptr<Loop>> loops_;
    // Blocks every signal in the calling thread from its construction until restore(): the
    // pools' threads, made in between, inherit the mask and never take a process signal
    // (shutdown signals belong to loop 0's signal_set).
    struct SignalsBlocked {
        SignalsBlocked();
        void restore();
        sigset_t old;
    } signals_blocked_;
    boost::asio::thread_pool blocking_;
    boost::asio::thread_pool copies_;
};

// Starts a thread with every signal blocked, as every helper thread of the daemon must be.
// `name` (at most 15 bytes) is what top -H, ps -L and perf show for it; `role` is how it shares
// the CPU (thread_role.hpp).
std::thread thread_without_signals(std::function<void()> body, const char* name, ThreadRole role);

// Names the calling thread (at most 15 bytes; longer names are cut).
void name_this_thread(const char* name);

} // namespace rfs::io
