// For work that runs on a thread of its own (riakfsctl's verify and recall in the daemon) and
// needs the object store, which lives on the Migrator's loop: runs one coroutine there and waits
// for its result on the calling thread, calling `tick` about every 250 ms meanwhile (progress
// lines keep the control client's connection alive during a long fetch).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <functional>
#include <future>

namespace rfs::migrate {

template <class T>
T wait_on_loop(boost::asio::io_context& loop, boost::asio::awaitable<T> work,
               const std::function<void()>& tick) {
    auto future = boost::asio::co_spawn(loop, std::move(work), boost::asio::use_future);
    while (future.wait_for(std::chrono::milliseconds(250)) != std::future_status::ready)
        if (tick) tick();
    return future.get();
}

} // namespace rfs::migrate
