// Call completion and waiting (see call.hpp).
#include "lib/riak/call.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace rfs::riak {

namespace asio = boost::asio;

Call::Call(asio::any_io_executor ex, std::shared_ptr<const Prepared> request, std::string head)
    : request_(std::move(request)), head_(std::move(head)), wake_(std::move(ex)) {}

void Call::complete(Result<proto::Response> result) {
    if (result_) return;
    result_.emplace(std::move(result));
    withdraw = nullptr;
    wake_.cancel();
}

asio::awaitable<Result<proto::Response>> Call::wait(Clock::time_point deadline) {
    if (!result_) {
        wake_.expires_at(deadline);
        auto [ec] = co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!result_) {
            // Not completed: either the deadline passed or our coroutine was cancelled.
            const Withdraw why = ec ? Withdraw::cancelled : Withdraw::timeout;
            abandoned_ = true;
            // The result is set first: withdrawing may abort the connection, which completes
            // every call on it, this one included.
            result_.emplace(why == Withdraw::timeout
                                ? make_error(Errc::timeout, "no response before the deadline")
                                : make_error(Errc::cancelled, "request cancelled"));
            auto w = std::move(withdraw);
            withdraw = nullptr;
            if (w) w(*this, why);
        }
    }
    co_return std::move(*result_);
}

} // namespace rfs::riak
