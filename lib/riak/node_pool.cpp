// Connection pool and dispatch of one node (see node_pool.hpp).
#include "lib/riak/node_pool.hpp"

#include <algorithm>

namespace rfs::riak {

Node::Node(boost::asio::any_io_executor ex, NodeAddress address, std::size_t max_connections,
           Connection::Settings settings)
    : ex_(std::move(ex)), address_(std::move(address)),
      max_connections_(std::max<std::size_t>(1, max_connections)), settings_(std::move(settings)),
      tls_sessions_(address_.tls ? std::make_shared<TlsSessionCache>() : nullptr) {}

void Node::mark_down(std::string reason) {
    healthy_ = false;
    if (health_mirror_) health_mirror_->store(false, std::memory_order_relaxed);
    last_error_ = std::move(reason);
}

std::size_t Node::load() const noexcept {
    std::size_t n = waiting_.size();
    for (const auto& c : connections_)
        n += c->load();
    return n;
}

NodeStatus Node::status() const {
    NodeStatus s;
    s.url = address_.url();
    s.healthy = healthy_;
    s.connections = connections_.size();
    s.load = load();
    s.max_pipelined = max_pipelined_;
    for (const auto& c : connections_)
        s.max_pipelined = std::max(s.max_pipelined, c->max_pipelined());
    s.last_error = last_error_;
    if (tls_sessions_) {
        s.tls_handshakes = tls_sessions_->handshakes();
        s.tls_resumed = tls_sessions_->resumed();
    }
    return s;
}

void Node::submit(std::shared_ptr<Call> call) {
    if (shut_down_) {
        call->complete(make_error(Errc::cancelled, "the Riak client is stopped"));
        return;
    }
    call->withdraw = [weak = weak_from_this()](Call& c, Call::Withdraw) {
        if (auto self = weak.lock()) self->withdraw(c);
    };
    waiting_.push_back(std::move(call));
    dispatch();
}

void Node::withdraw(Call& call) {
    std::erase_if(waiting_, [&](const auto& c) { return c.get() == &call; });
}

void Node::dispatch() {
    // Connections call back into dispatch() (ready/closed); one pass at a time is enough.
    if (dispatching_) return;
    dispatching_ = true;
    // In order, but a call that fits nowhere yet (an exclusive one waiting for an idle
    // connection) does not hold back later calls that fit. The scan is bounded so a long
    // queue costs little per response.
    constexpr std::size_t kScan = 64;
    std::size_t scanned = 0;
    for (auto it = waiting_.begin(); it != waiting_.end() && scanned < kScan && !shut_down_;
         ++scanned) {
        const Call& call = **it;
        Connection* best = nullptr;
        for (const auto& c : connections_)
            if (c->can_accept(call) && (best == nullptr || c->load() < best->load()))
                best = c.get();
        if ((best == nullptr || best->load() > 0) && connections_.size() < max_connections_) {
            auto fresh = std::make_shared<Connection>(ex_, address_, settings_, weak_from_this(),
                                                      tls_sessions_);
            connections_.push_back(fresh);
            fresh->start();
            best = fresh.get();
        }
        if (best == nullptr) {
            ++it;
            continue;
        }
        auto next = std::move(*it);
        it = waiting_.erase(it);
        next->withdraw = nullptr;
        best->submit(std::move(next));
    }
    dispatching_ = false;
}

void Node::on_connection_ready(Connection&) {
    dispatch();
}

void Node::on_connection_closed(Connection& connection, const Error& error, bool answered) {
    max_pipelined_ = std::max(max_pipelined_, connection.max_pipelined());
    std::erase_if(connections_, [&](const auto& c) { return c.get() == &connection; });
    if (!answered && error.code != Errc::ok && error.code != Errc::cancelled)
        mark_down(error.message);
    dispatch();
}

void Node::shutdown(const Error& error) {
    shut_down_ = true;
    auto waiting = std::exchange(waiting_, {});
    for (auto& call : waiting)
        call->complete(error);
    auto connections = connections_; // abort() calls back into on_connection_closed
    for (auto& c : connections)
        c->abort(error);
    connections_.clear();
}

} // namespace rfs::riak
