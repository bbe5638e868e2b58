// Node: one Riak node, its bounded pool of pipelined connections, the calls waiting for room
// on them, and its health.
//
// Dispatch policy: a call goes to the least-loaded connection that accepts it; a new connection
// is opened (up to `max_connections`) rather than pipelining behind busy ones, so pipelining
// starts once every connection is busy. Calls that fit nowhere wait here in FIFO order; a
// waiting exclusive call does not hold back later calls that fit on a busy connection.
// Health: a node is marked down when a connection fails without the node ever answering on it
// (refused, reset at once, connect timeout) or when a health ping fails, and up again when a
// ping or any request gets an answer. The client sends new requests to healthy nodes first.
// A node that answered a request within the last health interval is not pinged: under load a
// ping would sit behind slow requests and could time out although the node is fine.
// TLS (https:// nodes): the node keeps the newest session its server issued, and every new
// connection offers it, so reconnecting resumes rather than paying a full handshake.
// Lifetime: shared_ptr (connections hold a weak_ptr to it). One loop's thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "lib/riak/call.hpp"
#include "lib/riak/config.hpp"
#include "lib/riak/connection.hpp"

namespace rfs::riak {

struct NodeStatus {
    std::string url;
    bool healthy = true;
    std::size_t connections = 0;      // open or connecting
    std::size_t load = 0;             // calls waiting here or on its connections
    std::size_t max_pipelined = 0;    // most requests ever written and unanswered on one connection
    std::string last_error;           // why it was last marked down ("" if never)
    std::uint64_t tls_handshakes = 0; // TLS handshakes completed (https:// nodes)
    std::uint64_t tls_resumed = 0;    // of which resumed a cached session
};

class Node : public Connection::Owner, public std::enable_shared_from_this<Node> {
public:
    Node(boost::asio::any_io_executor ex, NodeAddress address, std::size_t max_connections,
         Connection::Settings settings);

    const NodeAddress& address() const noexcept { return address_; }
    bool healthy() const noexcept { return healthy_; }
    // Called on every response from the node: it is alive, whatever the status.
    void mark_up() {
        if (!healthy_ && health_mirror_) health_mirror_->store(true, std::memory_order_relaxed);
        healthy_ = true;
        last_answer_ = std::chrono::steady_clock::now();
    }
    // Where the health is also written for other threads (Telemetry::NodeHealth::up).
    void mirror_health(std::atomic<bool>* mirror) {
        health_mirror_ = mirror;
        if (mirror) mirror->store(healthy_, std::memory_order_relaxed);
    }
    std::chrono::steady_clock::time_point last_answer() const noexcept { return last_answer_; }
    void mark_down(std::string reason);
    std::size_t load() const noexcept;
    NodeStatus status() const;

    // Queues `call` and sends it as soon as a connection has room.
    void submit(std::shared_ptr<Call> call);
    // Closes every connection and fails every call with `error`; later submits fail at once.
    void shutdown(const Error& error);

    void on_connection_ready(Connection& connection) override;
    void on_connection_closed(Connection& connection, const Error& error, bool answered) override;

private:
    void dispatch();
    void withdraw(Call& call);

    boost::asio::any_io_executor ex_;
    NodeAddress address_;
    std::size_t max_connections_;
    Connection::Settings settings_;
    std::shared_ptr<TlsSessionCache> tls_sessions_; // https:// nodes only
    std::vector<std::shared_ptr<Connection>> connections_;
    std::deque<std::shared_ptr<Call>> waiting_;
    bool healthy_ = true;
    bool shut_down_ = false;
    bool dispatching_ = false;
    std::size_t max_pipelined_ = 0; // of connections already closed
    std::string last_error_;
    std::chrono::steady_clock::time_point last_answer_{};
    std::atomic<bool>* health_mirror_ = nullptr;
};

} // namespace rfs::riak
