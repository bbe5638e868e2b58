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
#include "test/support/run_task.hpp"

namespace rfs::store::test {

namespace asio = boost::asio;

using rfs::test::run_task; // test/support/run_task.hpp

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
