#include "lib/io/executor.hpp"

#include "lib/common/log.hpp"

#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <exception>
#include <string>

namespace rfs::io {
namespace {
thread_local Loop* t_current = nullptr;

// The exception in flight, for the log line; any thread.
std::string describe_current_exception() {
    try {
        throw;
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

// A handler that throws (bad_alloc, a system_error from a library call) loses its own request,
// but letting the exception end the thread would terminate the daemon and leave the mount
// "Transport endpoint is not connected" for every application. Asio allows run() to be entered
// again after a handler threw, with the rest of the queue intact.
void run_loop(Loop& loop) {
    t_current = &loop;
    for (;;) {
        try {
            loop.context().run();
            break; // stopped, or out of work
        } catch (...) {
            // Out of memory, the log line itself may throw; the loop matters more than the line.
            try {
                RFS_LOG_ERROR("event loop {}: a handler failed: {}; the loop goes on", loop.index(),
                              describe_current_exception());
            } catch (...) {
            }
        }
    }
    t_current = nullptr;
}
} // namespace

void Executor::log_blocking_failure() {
    try {
        RFS_LOG_ERROR("blocking pool: a call failed: {}; the pool goes on",
                      describe_current_exception());
    } catch (...) {
    }
}

Loop::Loop(unsigned index) : index_(index) {}

Executor::SignalsBlocked::SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
}

void Executor::SignalsBlocked::restore() {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void name_this_thread(const char* name) {
    char cut[16] = {};
    std::strncpy(cut, name, sizeof cut - 1);
    (void)::pthread_setname_np(::pthread_self(), cut); // a name is a convenience: ignore failure
}

std::thread thread_without_signals(std::function<void()> body, const char* name, ThreadRole role) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    struct Restore {
        sigset_t& old;
        ~Restore() { pthread_sigmask(SIG_SETMASK, &old, nullptr); }
    } restore{old};
    return std::thread([body = std::move(body), name, role] {
        name_this_thread(name);
        (void)apply_thread_role(role); // a preference: the thread works the same without it
        body();
    });
}

Executor::Executor(unsigned loops, unsigned blocking_threads)
    : blocking_(blocking_threads), copies_(blocking_threads) {
    signals_blocked_.restore();
    for (unsigned i = 0; i < loops; ++i) {
        loops_.push_back(std::make_unique<Loop>(i));
        loops_.back()->work_.emplace(loops_.back()->context_.get_executor());
    }
}

Executor::~Executor() {
    stop();
    for (auto& l : loops_)
        l->work_.reset();
    for (auto& l : loops_)
        if (l->thread_.joinable()) l->thread_.join();
    blocking_.join();
    copies_.join();
}

Loop* Executor::current() {
    return t_current;
}

void Executor::run() {
    // Helper threads must not take process signals: libfuse-style shutdown signals are handled
    // by loop 0 through an Asio signal_set.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
        for (size_t i = 1; i < loops_.size(); ++i) {
            Loop& l = *loops_[i];
            l.thread_ = std::thread([&l] {
                std::string name = "riakfs-loop" + std::to_string(l.index());
                name_this_thread(name.c_str());
                run_loop(l);
            });
        }
    } catch (...) {
        // No thread for a loop: stop the ones already running before the caller unwinds the
        // objects they serve.
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        stop();
        for (auto& l : loops_)
            if (l->thread_.joinable()) l->thread_.join();
        throw;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    run_loop(*loops_[0]);
    for (size_t i = 1; i < loops_.size(); ++i)
        if (loops_[i]->thread_.joinable()) loops_[i]->thread_.join();
}

void Executor::stop() {
    for (auto& l : loops_)
        l->context_.stop();
}

} // namespace rfs::io
