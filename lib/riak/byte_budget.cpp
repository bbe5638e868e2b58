// In-flight byte bound (see byte_budget.hpp).
#include "lib/riak/byte_budget.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

namespace rfs::riak {

namespace asio = boost::asio;

ByteBudget::Grant& ByteBudget::Grant::operator=(Grant&& other) noexcept {
    if (this != &other) {
        reset();
        budget_ = std::move(other.budget_);
        bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
}

void ByteBudget::Grant::reset() {
    if (budget_) budget_->release(bytes_);
    budget_.reset();
    bytes_ = 0;
}

void ByteBudget::take(std::size_t bytes) {
    in_use_ += bytes;
    peak_ = std::max(peak_, in_use_);
}

void ByteBudget::release(std::size_t bytes) {
    in_use_ -= std::min(in_use_, bytes);
    grant_waiters();
}

void ByteBudget::grant_waiters() {
    while (!waiters_.empty() && fits(waiters_.front()->bytes)) {
        auto w = std::move(waiters_.front());
        waiters_.pop_front();
        take(w->bytes);
        w->granted = true;
        w->timer.cancel();
    }
}

void ByteBudget::cancel_waiters() {
    auto waiters = std::exchange(waiters_, {});
    for (auto& w : waiters)
        w->timer.cancel(); // not granted: the waiter reports cancellation
}

asio::awaitable<Result<ByteBudget::Grant>>
ByteBudget::acquire(std::size_t bytes, std::chrono::steady_clock::time_point deadline) {
    auto self = shared_from_this();
    if (waiters_.empty() && fits(bytes)) {
        take(bytes);
        co_return Grant(self, bytes);
    }
    ++waits_;
    auto w = std::make_shared<Waiter>(ex_, bytes);
    waiters_.push_back(w);
    w->timer.expires_at(deadline);
    auto [ec] = co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (w->granted) co_return Grant(self, bytes);
    std::erase(waiters_, w);
    grant_waiters(); // a large waiter at the front may have held back smaller ones
    if (ec)
        co_return make_error(Errc::cancelled,
                             "request cancelled while waiting for in-flight bytes");
    co_return make_error(Errc::timeout,
                         fmt::format("timed out waiting for {} bytes of in-flight budget "
                                     "({} of {} in use)",
                                     bytes, in_use_, limit_));
}

} // namespace rfs::riak
