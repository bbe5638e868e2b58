// Connection: one keep-alive HTTP/1.1 connection to one Riak node, with pipelining, over plain
// TCP or TLS (Stream: the pipelining below does not depend on which).
//
// Calls are queued with submit(); a writer coroutine writes every queued request in one
// gathered write (so several requests are on the wire before the first response is read) and
// a reader coroutine feeds received bytes to proto::PipelineDecoder, which matches responses to
// requests in send order. At most `pipeline_depth` calls are queued or unanswered at once.
// A call marked exclusive is accepted only by an idle connection, and nothing is accepted
// behind it until it is answered.
//
// When the connection breaks every call on it is completed with an error: calls never written
// (Call::written false) can be sent anywhere again; for written ones the client decides by
// idempotency. Riak closes connections without saying so (no "Connection: close": after a
// request that asked for it, after an early error on Riak <= 3.0, after 300 s idle), so a
// connection that had answered and is idle is checked for a close by the node before anything
// is written on it, and calls lost to a close at a response boundary are marked
// Call::closed_by_node. A written call that times out aborts the connection (its response would
// block every response behind it); a cancelled one stays, and its response is dropped on arrival.
//
// Over TLS the connection is up once the handshake is done (connect_timeout bounds connect and
// handshake together); a failed handshake is Errc::tls_failed. The end of the TLS stream without
// the node's close_notify never completes a response (anyone on the path can cut a TCP stream):
// inside a response it is truncated_response, at a response boundary it is a close by the node.
//
// Lifetime: shared_ptr, kept alive by its coroutines; the owner (a Node) is told about spare
// capacity and about the end of the connection through Owner. One loop's thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "lib/riak/call.hpp"
#include "lib/riak/config.hpp"
#include "lib/riak/errors.hpp"
#include "lib/riak/stream.hpp"
#include "lib/riak/tls.hpp"
#include "proto/pipeline_decoder.hpp"

namespace rfs::riak {

class Connection : public std::enable_shared_from_this<Connection> {
public:
    class Owner {
    public:
        virtual ~Owner() = default;
        // A call was answered or the connection came up: it may accept more.
        virtual void on_connection_ready(Connection& connection) = 0;
        // The connection is closed; `error` is why (Errc::ok for an orderly close). `answered`
        // is false if the node never sent a byte on it (refused or dead node).
        virtual void on_connection_closed(Connection& connection, const Error& error,
                                          bool answered) = 0;
    };

    struct Settings {
        std::size_t pipeline_depth = 4;
        Duration connect_timeout = std::chrono::seconds(3);
        std::uint64_t max_response_body = std::uint64_t{256} << 20;
        std::shared_ptr<TlsContext> tls; // required for an https:// node, unused otherwise
    };

    // `sessions`: the node's TLS session cache (https:// nodes), kept alive by the connection.
    Connection(boost::asio::any_io_executor ex, NodeAddress address, Settings settings,
               std::weak_ptr<Owner> owner, std::shared_ptr<TlsSessionCache> sessions = nullptr);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Connects, then runs the reader and writer. Calls may be submitted before it is up.
    void start();
    bool can_accept(const Call& call) const noexcept;
    // Precondition: can_accept(*call).
    void submit(std::shared_ptr<Call> call);
    // Closes the socket and completes every call on it with `error`.
    void abort(const Error& error);

    bool closed() const noexcept { return state_ == State::closed; }
    // Calls queued or unanswered.
    std::size_t load() const noexcept { return to_write_.size() + in_flight_.size(); }
    // Most calls that were written and unanswered at the same time (for tests and stats).
    std::size_t max_pipelined() const noexcept { return max_pipelined_; }

private:
    enum class State { idle, connecting, open, closing, closed };

    boost::asio::awaitable<void> run();
    boost::asio::awaitable<void> write_loop();
    boost::asio::awaitable<void> read_loop();
    void deliver_ready();
    void fail_calls(const Error& front_error, const Error& rest_error);
    void close(const Error& error);
    // Ends a pending connect (and any other operation) without closing the descriptor.
    void stop_connecting();
    // The node closed (or reset) the socket: every call still here fails with
    // connection_reset, marked closed_by_node.
    void closed_by_node(const std::string& why);
    // Whether the node has already closed its side (poll, no wait).
    bool peer_closed() noexcept;
    void withdraw(Call& call, Call::Withdraw why);

    boost::asio::any_io_executor ex_;
    NodeAddress address_;
    Settings settings_;
    std::weak_ptr<Owner> owner_;
    std::shared_ptr<TlsSessionCache> sessions_; // before stream_, which points to it
    Stream stream_;
    boost::asio::steady_timer writer_wake_; // cancelled when to_write_ gains a call
    proto::PipelineDecoder decoder_;
    State state_ = State::idle;
    std::deque<std::shared_ptr<Call>> to_write_;  // queued, not written
    std::deque<std::shared_ptr<Call>> in_flight_; // written, unanswered, in send order
    bool exclusive_ = false;                      // an exclusive call is queued or in flight
    bool answered_ = false;                       // any byte received
    // A call carrying "Connection: close" was queued: it is the last request this connection
    // sends (RFC 9112 9.6), and the node closes after answering it without saying so.
    bool last_request_queued_ = false;
    boost::asio::cancellation_signal connect_cancel_; // stops async_connect (stop_connecting)
    bool connect_pending_ = false;                    // async_connect is running
    std::size_t max_pipelined_ = 0;
};

} // namespace rfs::riak
