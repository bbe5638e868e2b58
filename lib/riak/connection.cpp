// Pipelined keep-alive connection (see connection.hpp).
#include "lib/riak/connection.hpp"

#include <algorithm>
#include <vector>

#include <poll.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/core.h>

#include "lib/common/await_tuple.hpp"

namespace rfs::riak {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
} // namespace

Connection::Connection(asio::any_io_executor ex, NodeAddress address, Settings settings,
                       std::weak_ptr<Owner> owner, std::shared_ptr<TlsSessionCache> sessions)
    : ex_(ex), address_(std::move(address)), settings_(std::move(settings)),
      owner_(std::move(owner)), sessions_(std::move(sessions)),
      stream_(ex, address_.tls ? settings_.tls : nullptr, sessions_.get()), writer_wake_(ex),
      decoder_(proto::PipelineDecoder::Limits{1u << 20, settings_.max_response_body}) {}

void Connection::start() {
    state_ = State::connecting;
    asio::co_spawn(ex_, run(), asio::detached);
}

bool Connection::can_accept(const Call& call) const noexcept {
    if (state_ == State::closing || state_ == State::closed) return false;
    if (exclusive_ || last_request_queued_) return false;
    if (call.request().exclusive) return load() == 0;
    return load() < settings_.pipeline_depth;
}

void Connection::submit(std::shared_ptr<Call> call) {
    if (call->request().exclusive) exclusive_ = true;
    if (!call->request().message.keep_alive()) last_request_queued_ = true;
    call->withdraw = [weak = weak_from_this()](Call& c, Call::Withdraw why) {
        if (auto self = weak.lock()) self->withdraw(c, why);
    };
    to_write_.push_back(std::move(call));
    writer_wake_.cancel();
}

void Connection::withdraw(Call& call, Call::Withdraw why) {
    const auto queued = std::find_if(to_write_.begin(), to_write_.end(),
                                     [&](const auto& c) { return c.get() == &call; });
    if (queued != to_write_.end()) {
        if (call.request().exclusive) exclusive_ = false;
        // Never written, so the connection can go on serving.
        if (!call.request().message.keep_alive()) last_request_queued_ = false;
        to_write_.erase(queued);
        if (auto owner = owner_.lock()) owner->on_connection_ready(*this);
        return;
    }
    // Written: its response will come in order. After a timeout the node is too slow or
    // stuck, and everything pipelined behind would wait as long, so give the connection up.
    // A cancelled call just has its response dropped when it arrives.
    if (why == Call::Withdraw::timeout)
        close(make_error(Errc::connection_reset,
                         fmt::format("connection to {} dropped: a request on it timed out",
                                     address_.host_header())));
}

void Connection::abort(const Error& error) {
    close(error);
}

void Connection::stop_connecting() {
    if (connect_pending_) connect_cancel_.emit(asio::cancellation_type::all);
    stream_.close();
}

void Connection::close(const Error& error) {
    if (state_ == State::closed) return;
    state_ = State::closed;
    stop_connecting();
    writer_wake_.cancel();
    fail_calls(error, error);
    if (auto owner = owner_.lock()) owner->on_connection_closed(*this, error, answered_);
}

bool Connection::peer_closed() noexcept {
    // The socket's read side is shut once the node's FIN (or a reset) arrived, whether or not
    // the reader has seen it yet; a pending read does not consume that state.
    pollfd p{};
    p.fd = stream_.socket().native_handle();
    p.events = POLLIN | POLLRDHUP;
    if (::poll(&p, 1, 0) != 1) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void Connection::closed_by_node(const std::string& why) {
    for (auto& call : in_flight_)
        call->closed_by_node = true;
    for (auto& call : to_write_)
        call->closed_by_node = true;
    close(make_error(Errc::connection_reset, why));
}

void Connection::fail_calls(const Error& front_error, const Error& rest_error) {
    auto in_flight = std::exchange(in_flight_, {});
    auto to_write = std::exchange(to_write_, {});
    exclusive_ = false;
    bool first = true;
    for (auto& call : in_flight) {
        call->complete(first ? front_error : rest_error);
        first = false;
    }
    for (auto& call : to_write)
        call->complete(rest_error);
}

asio::awaitable<void> Connection::run() {
    auto self = shared_from_this();
    tcp::resolver resolver(ex_);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(address_.host, std::to_string(address_.port), kTuple);
    if (state_ == State::closed) co_return;
    if (rec) {
        close(make_error(Errc::connection_refused,
                         fmt::format("resolve {}: {}", address_.host, rec.message())));
        co_return;
    }
    // The guard stops connecting (and the handshake) if it takes too long; it only touches
    // members of `self`, which it keeps alive.
    auto guard = std::make_shared<asio::steady_timer>(ex_);
    auto timed_out = std::make_shared<bool>(false);
    guard->expires_after(settings_.connect_timeout);
    guard->async_wait([this, self, timed_out](boost::system::error_code ec) {
        if (ec || state_ != State::connecting) return;
        *timed_out = true;
        stop_connecting();
    });
    // Stopped through its cancellation slot, not by closing the socket (see Stream::close):
    // the composed connect then also stops trying the host's other addresses.
    connect_pending_ = true;
    auto [cec, endpoint] = co_await asio::async_connect(
        stream_.socket(), endpoints, asio::bind_cancellation_slot(connect_cancel_.slot(), kTuple));
    connect_pending_ = false;
    if (state_ == State::closed) co_return;
    if (*timed_out) {
        close(make_error(Errc::connection_refused,
                         fmt::format("connect to {}: timed out", address_.host_header()),
                         ETIMEDOUT));
        co_return;
    }
    if (cec) {
        guard->cancel();
        close(make_error(Errc::connection_refused,
                         fmt::format("connect to {}: {}", address_.host_header(), cec.message())));
        co_return;
    }
    boost::system::error_code ignored;
    // Small pipelined requests would otherwise wait for delayed ACKs (Nagle).
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    // TLS: the handshake, under the same guard (a node that accepts and never answers the
    // handshake is as dead as one that never accepts).
    auto shaken = co_await stream_.handshake(address_);
    guard->cancel();
    if (state_ == State::closed) co_return;
    if (*timed_out) {
        close(make_error(Errc::connection_refused,
                         fmt::format("TLS handshake with {}: timed out", address_.host_header()),
                         ETIMEDOUT));
        co_return;
    }
    if (!shaken) {
        close(std::move(shaken).error());
        co_return;
    }
    state_ = State::open;
    asio::co_spawn(ex_, read_loop(), asio::detached);
    asio::co_spawn(ex_, write_loop(), asio::detached);
    if (auto owner = owner_.lock()) owner->on_connection_ready(*this);
}

asio::awaitable<void> Connection::write_loop() {
    auto self = shared_from_this();
    while (state_ == State::open) {
        if (to_write_.empty()) {
            writer_wake_.expires_at(asio::steady_timer::time_point::max());
            co_await writer_wake_.async_wait(kTuple);
            continue;
        }
        if (in_flight_.empty() && answered_ && peer_closed()) {
            // An idle keep-alive connection the node has closed (its idle timeout, or a close
            // after the last response without "Connection: close"): send nothing on it.
            closed_by_node(fmt::format("{} had closed the idle connection; {} requests not sent",
                                       address_.host_header(), to_write_.size()));
            co_return;
        }
        // Everything queued goes out in one gathered write: this is the pipelining. The batch
        // keeps the calls (and so the buffers) alive even if the connection fails meanwhile.
        std::vector<std::shared_ptr<Call>> batch;
        std::vector<asio::const_buffer> buffers;
        while (!to_write_.empty()) {
            auto call = std::move(to_write_.front());
            to_write_.pop_front();
            call->written = true;
            decoder_.expect(call->request().message.method());
            buffers.push_back(asio::buffer(call->head()));
            if (!call->body().empty()) buffers.push_back(asio::buffer(call->body()));
            in_flight_.push_back(call);
            batch.push_back(std::move(call));
        }
        max_pipelined_ = std::max(max_pipelined_, in_flight_.size());
        auto [ec, n] = co_await stream_.write(buffers);
        if (state_ == State::closed) co_return;
        if (ec) {
            close(make_error(Errc::connection_reset,
                             fmt::format("write to {}: {}", address_.host_header(), ec.message())));
            co_return;
        }
    }
}

void Connection::deliver_ready() {
    while (decoder_.has_response() && !in_flight_.empty()) {
        auto call = std::move(in_flight_.front());
        in_flight_.pop_front();
        if (call->request().exclusive) exclusive_ = false;
        call->complete(std::move(*decoder_.next()));
    }
}

asio::awaitable<void> Connection::read_loop() {
    auto self = shared_from_this();
    std::vector<char> buffer(kReadChunk);
    const std::string node = address_.host_header();
    while (true) {
        auto [ec, n] = co_await stream_.read_some(asio::buffer(buffer));
        if (state_ == State::closed) co_return;
        if (ec && Stream::is_tls_error(ec)) {
            // A TLS alert or a record that does not decrypt: the stream is unusable. Before
            // any answer it is the TLS setup (e.g. a TLS 1.3 server refusing our client
            // certificate after the handshake); afterwards the connection broke.
            close(make_error(
                answered_ ? Errc::connection_reset : Errc::tls_failed,
                fmt::format("TLS error on the connection to {}: {}", node, ec.message())));
            co_return;
        }
        if (ec && Stream::is_truncation(ec) && decoder_.in_progress()) {
            // The TCP stream ended inside a response without the node's close_notify: the
            // response is not complete, whatever its framing says (an EOF-delimited body
            // included).
            fail_calls(
                make_error(Errc::truncated_response,
                           fmt::format("TLS connection to {} ended inside a response "
                                       "without close_notify",
                                       node)),
                make_error(Errc::connection_reset, fmt::format("{} closed the connection", node)));
            close(make_error(Errc::truncated_response, "TLS stream cut short"));
            co_return;
        }
        if (ec) {
            if (ec == asio::error::eof) {
                auto finished = decoder_.finish(); // completes an EOF-delimited response
                deliver_ready();
                if (!finished) {
                    // The node closed inside a response: a Content-Length longer than the body
                    // or a body cut short.
                    fail_calls(make_error(Errc::truncated_response,
                                          fmt::format("response from {} cut short: {}", node,
                                                      finished.error().message)),
                               make_error(Errc::connection_reset,
                                          fmt::format("{} closed the connection", node)));
                    close(make_error(Errc::truncated_response, "response cut short"));
                    co_return;
                }
            }
            if (in_flight_.empty() && to_write_.empty())
                close(make_error(Errc::ok, fmt::format("{} closed an idle connection", node)));
            else if (answered_ && !decoder_.in_progress() && decoder_.buffered() == 0)
                // A close at a response boundary, with no byte of the next response: Riak's
                // silent close after a response, or an idle close that crossed our write.
                closed_by_node(fmt::format("{} closed the connection with {} requests "
                                           "unanswered and {} unsent ({})",
                                           node, in_flight_.size(), to_write_.size(),
                                           ec.message()));
            else if (!answered_)
                // Nothing ever came back: the node accepted and closed (or reset) at once.
                close(make_error(Errc::connection_refused,
                                 fmt::format("{} closed the connection without answering ({})",
                                             node, ec.message())));
            else
                close(
                    make_error(Errc::connection_reset,
                               fmt::format("connection to {} lost with {} requests unanswered: {}",
                                           node, in_flight_.size(), ec.message())));
            co_return;
        }
        answered_ = true;
        auto fed = decoder_.feed(std::string_view(buffer.data(), n));
        if (!fed) {
            const auto& err = fed.error();
            if (decoder_.pending() == 0 && decoder_.ready() > 0) {
                // Bytes after the last expected response: that response's Content-Length was
                // wrong, so it is not trusted either.
                while (decoder_.ready() > 1 && !in_flight_.empty()) {
                    auto call = std::move(in_flight_.front());
                    in_flight_.pop_front();
                    call->complete(std::move(*decoder_.next()));
                }
            } else {
                deliver_ready();
            }
            close(make_error(Errc::malformed_response,
                             fmt::format("bad response from {}: {}", node, err.message),
                             err.code == EFBIG ? EFBIG : EPROTO));
            co_return;
        }
        deliver_ready();
        // A request of ours that asked for the close is answered: the node closes now without
        // saying so, and not waiting for its FIN keeps the pool from handing this connection
        // another call (none was queued behind that request: can_accept).
        const bool asked_close_answered =
            last_request_queued_ && in_flight_.empty() && to_write_.empty();
        if (decoder_.closing() || asked_close_answered) {
            // "Connection: close": nothing more will be answered here. Unwritten calls go
            // elsewhere; written ones fail when the node closes.
            state_ = State::closing;
            auto to_write = std::exchange(to_write_, {});
            for (auto& call : to_write) {
                call->closed_by_node = true;
                call->complete(make_error(Errc::connection_reset,
                                          fmt::format("{} is closing the connection", node)));
            }
            if (in_flight_.empty()) {
                close(make_error(Errc::ok, "closed by the node"));
                co_return;
            }
        }
        if (auto owner = owner_.lock()) owner->on_connection_ready(*this);
    }
}

} // namespace rfs::riak
