// Helpers of the store tests: running a store call to completion on a test's io_context,
// building objects, and checking results. Single-threaded test code.
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "lib/store/object_store.hpp"

namespace rfs::store::test {

namespace asio = boost::asio;

// Runs `task` on `ioc` until it completes (other work on `ioc` runs meanwhile).
template <typename T> T run_task(asio::io_context& ioc, asio::awaitable<T> task) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, T value) {
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

// A text/plain object with the riakfs version stamp `version` ("" = none) and more meta.
inline Object object(std::string value, std::string version = {},
                     std::vector<std::pair<std::string, std::string>> meta = {}) {
    Object o;
    o.value = std::move(value);
    o.content_type = "text/plain";
    o.meta = std::move(meta);
    if (!version.empty()) o.meta.emplace_back(std::string(kVersionMeta), std::move(version));
    return o;
}

inline std::string version_of(const Fetched& f) {
    const std::string* v = f.object.find_meta(kVersionMeta);
    return v ? *v : std::string();
}

} // namespace rfs::store::test
