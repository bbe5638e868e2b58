#include "lib/io/executor.hpp"

#include <pthread.h>
#include <signal.h>

namespace rfs::io {
namespace {
thread_local Loop* t_current = nullptr;

void run_loop(Loop& loop) {
    t_current = &loop;
    loop.context().run();
    t_current = nullptr;
}
} // namespace

Loop::Loop(unsigned index) : index_(index) {}

Executor::Executor(unsigned loops, unsigned blocking_threads) : blocking_(blocking_threads) {
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
    for (size_t i = 1; i < loops_.size(); ++i) {
        Loop& l = *loops_[i];
        l.thread_ = std::thread([&l] { run_loop(l); });
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
