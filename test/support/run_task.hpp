// Runs a coroutine to completion on a test's own io_context (other work queued there, such as
// health checks, runs meanwhile). Single-threaded test code.
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace rfs::test {

// Throws if the task has not completed within two minutes, rather than hang the test.
template <typename T> T run_task(boost::asio::io_context& ioc, boost::asio::awaitable<T> task) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    boost::asio::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) out.emplace(std::move(value));
        done = true;
    });
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    ioc.restart();
    while (!done) {
        if (std::chrono::steady_clock::now() > limit) throw std::runtime_error("test task hung");
        if (ioc.run_one_for(std::chrono::milliseconds(50)) == 0 && ioc.stopped()) ioc.restart();
    }
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

} // namespace rfs::test
