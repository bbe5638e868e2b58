// ByteBudget: a bound on the bytes of requests in flight. acquire() waits (FIFO, so a large
// request is not starved by small ones) until the bytes fit, or until the deadline or the
// caller's cancellation. One request larger than the whole bound is let through when nothing
// else holds bytes, so it cannot wait forever.
// Lifetime: shared_ptr; grants keep it alive. One loop's thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "lib/riak/errors.hpp"

namespace rfs::riak {

class ByteBudget : public std::enable_shared_from_this<ByteBudget> {
public:
    // Bytes held until destroyed (or moved from).
    class Grant {
    public:
        Grant() = default;
        Grant(std::shared_ptr<ByteBudget> budget, std::size_t bytes)
            : budget_(std::move(budget)), bytes_(bytes) {}
        Grant(Grant&& other) noexcept
            : budget_(std::move(other.budget_)), bytes_(std::exchange(other.bytes_, 0)) {}
        Grant& operator=(Grant&& other) noexcept;
        Grant(const Grant&) = delete;
        Grant& operator=(const Grant&) = delete;
        ~Grant() { reset(); }
        void reset();
        std::size_t bytes() const noexcept { return bytes_; }

    private:
        std::shared_ptr<ByteBudget> budget_;
        std::size_t bytes_ = 0;
    };

    ByteBudget(boost::asio::any_io_executor ex, std::size_t limit)
        : ex_(std::move(ex)), limit_(limit) {}

    // Errc::timeout at the deadline, Errc::cancelled when the awaiting coroutine is cancelled.
    boost::asio::awaitable<Result<Grant>> acquire(std::size_t bytes,
                                                  std::chrono::steady_clock::time_point deadline);

    // Wakes every waiter with Errc::cancelled (the client is stopping).
    void cancel_waiters();

    std::size_t limit() const noexcept { return limit_; }
    std::size_t in_use() const noexcept { return in_use_; }
    std::size_t peak() const noexcept { return peak_; }
    std::size_t waits() const noexcept { return waits_; } // acquisitions that had to wait
    std::size_t waiting() const noexcept { return waiters_.size(); }

private:
    struct Waiter {
        explicit Waiter(boost::asio::any_io_executor ex, std::size_t n) : bytes(n), timer(ex) {}
        std::size_t bytes;
        boost::asio::steady_timer timer;
        bool granted = false;
    };

    bool fits(std::size_t bytes) const noexcept {
        return in_use_ == 0 || in_use_ + bytes <= limit_;
    }
    void take(std::size_t bytes);
    void release(std::size_t bytes);
    void grant_waiters();

    boost::asio::any_io_executor ex_;
    std::size_t limit_;
    std::size_t in_use_ = 0;
    std::size_t peak_ = 0;
    std::size_t waits_ = 0;
    std::deque<std::shared_ptr<Waiter>> waiters_;
};

} // namespace rfs::riak
