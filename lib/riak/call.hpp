// Call: one attempt of one request, from the node queue through a connection to its response.
//
// The request's bytes are shared between attempts (a retry makes a new Call with the same
// Prepared request). Whoever holds the call (a node queue, a connection) sets `withdraw` so the
// waiter can take it back on timeout or cancellation; complete() hands over the result once.
// The waiter sleeps on a steady_timer set to the deadline: complete() cancels the timer, expiry
// means timeout, and the timer's own cancellation slot carries the caller's cancellation.
// One loop's thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "lib/riak/errors.hpp"
#include "proto/riak_messages.hpp"

namespace rfs::riak {

// A request ready to send, shared by its attempts.
struct Prepared {
    proto::Request message; // Host is set per node when an attempt is made
    // Safe to send again after a failure that left its outcome unknown.
    bool idempotent = true;
    // Sent only on an idle connection, with nothing pipelined behind it until it is answered:
    // non-idempotent requests (so a failure is theirs alone) and key streams (long bodies).
    bool exclusive = false;
    std::size_t wire_size() const noexcept { return message.body().size() + 512; }
};

class Call {
public:
    enum class Withdraw { timeout, cancelled };
    using Clock = std::chrono::steady_clock;

    Call(boost::asio::any_io_executor ex, std::shared_ptr<const Prepared> request,
         std::string head);
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

    const Prepared& request() const noexcept { return *request_; }
    const std::string& head() const noexcept { return head_; } // serialized start line + headers
    const std::string& body() const noexcept { return request_->message.body(); }
    bool is_head_request() const noexcept {
        return request_->message.method() == proto::http::verb::head;
    }

    // Bytes of this call may have reached the server (set when its write starts).
    bool written = false;
    // The node closed the connection (already used, at a response boundary) without sending
    // a byte of this call's response: a keep-alive connection it timed out or closed after its
    // previous response without "Connection: close". Not written: nothing reached the node.
    // Written: the close crossed the request; its outcome is unknown unless it is idempotent.
    bool closed_by_node = false;
    // The caller gave up; a response that still arrives is dropped.
    bool abandoned() const noexcept { return abandoned_; }
    bool done() const noexcept { return result_.has_value(); }

    // Set by the current holder: removes the call from its queue (or deals with a written one).
    std::function<void(Call&, Withdraw)> withdraw;

    // First result wins; later ones are ignored. Wakes the waiter (through the executor).
    void complete(Result<proto::Response> result);

    // Waits for complete(), the deadline (-> Errc::timeout) or cancellation of the awaiting
    // coroutine (-> Errc::cancelled). Call once.
    boost::asio::awaitable<Result<proto::Response>> wait(Clock::time_point deadline);

private:
    std::shared_ptr<const Prepared> request_;
    std::string head_;
    boost::asio::steady_timer wake_;
    std::optional<Result<proto::Response>> result_;
    bool abandoned_ = false;
};

} // namespace rfs::riak
