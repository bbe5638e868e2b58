// Shared helpers of the Riak client tests: running a coroutine to completion on a test's
// io_context (or until a condition holds), a client configured for one or more devnodes, a
// devnode with a client of it, devnode fault switching and stats, a TCP relay that records
// pipelining on the wire, a raw server that answers with canned bytes (for malformed
// responses devnode cannot produce), and one whose closes the test controls.
// Single-threaded test code: everything runs on the test's io_context.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/algorithm/string/case_conv.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "lib/riak/client.hpp"
#include "test/devnode/devnode_fixture.hpp"
#include "test/support/run_task.hpp"

namespace rfs::riak::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using json = nlohmann::json;
using devnode::test::Devnode;

// The object the fault and TLS tests store and fetch: key k of bucket b (default type).
inline const proto::ObjectId kKey{"", "b", "k"};

// Runs `task` on `ioc` until it completes (test/support/run_task.hpp).
template <typename T> T run(asio::io_context& ioc, asio::awaitable<T> task) {
    return rfs::test::run_task(ioc, std::move(task));
}

// Lets queued handlers run for `d` (e.g. so a stopped client's coroutines finish).
inline void drain(asio::io_context& ioc,
                  std::chrono::milliseconds d = std::chrono::milliseconds(50)) {
    ioc.restart();
    ioc.run_for(d);
}

// Runs `ioc` until `done()` holds (e.g. the completion handlers of co_spawn'ed calls have run),
// looking every `poll`.
template <typename Done>
void run_until(asio::io_context& ioc, Done done,
               std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
    run(ioc, [&]() -> asio::awaitable<int> {
        asio::steady_timer t(co_await asio::this_coro::executor);
        while (!done()) {
            t.expires_after(poll);
            co_await t.async_wait(asio::use_awaitable);
        }
        co_return 0;
    }());
}

// Runs `ioc` until `done()` holds or `limit` passed (a bound that only turns a hang into a
// failure: generous, so that a loaded machine never reaches it); returns whether it held.
template <typename Done>
bool wait_until(asio::io_context& ioc, Done done,
                std::chrono::milliseconds limit = std::chrono::milliseconds(20000)) {
    auto end = std::chrono::steady_clock::now() + limit;
    run_until(ioc, [&] { return done() || std::chrono::steady_clock::now() >= end; });
    return done();
}

// Runs `ioc` for `d` (health checks and other background work run meanwhile).
inline void wait_for(asio::io_context& ioc, std::chrono::milliseconds d) {
    run(ioc, [&]() -> asio::awaitable<int> {
        asio::steady_timer t(co_await asio::this_coro::executor);
        t.expires_after(d);
        co_await t.async_wait(asio::use_awaitable);
        co_return 0;
    }());
}

// A text/plain object.
inline proto::RiakObject text(std::string value) {
    proto::RiakObject o;
    o.value = std::move(value);
    o.content_type = "text/plain";
    return o;
}

inline NodeAddress local(std::uint16_t port) {
    return NodeAddress{"127.0.0.1", port};
}

inline ClientConfig config_for(std::vector<std::uint16_t> ports) {
    ClientConfig c;
    for (auto p : ports)
        c.nodes.push_back(local(p));
    c.request_timeout = std::chrono::seconds(10);
    c.health_interval = std::chrono::milliseconds(200);
    c.health_timeout = std::chrono::milliseconds(500);
    c.retry.base_delay = std::chrono::milliseconds(5);
    c.retry.max_delay = std::chrono::milliseconds(50);
    return c;
}

// config_for({port}) without health checks: up to `connections` connections, each with up to
// `depth` requests pipelined.
inline ClientConfig pipelined_config(std::uint16_t port, std::size_t connections,
                                     std::size_t depth) {
    auto c = config_for({port});
    c.connections_per_node = connections;
    c.pipeline_depth = depth;
    c.health_interval = Duration::zero();
    return c;
}

// A devnode (started with `node_args`) and a client of it (configured by `make_config`, from the
// node's port; config_for by default) on one io_context; f(task) runs a call to completion. The
// client is stopped and its coroutines drained before the members go.
struct ClientFixture {
    explicit ClientFixture(std::vector<std::string> node_args = {})
        : ClientFixture(std::move(node_args),
                        [](std::uint16_t port) { return config_for({port}); }) {}
    ClientFixture(std::vector<std::string> node_args, ClientConfig (*make_config)(std::uint16_t))
        : node(std::move(node_args)), client(ioc, make_config(node.port())) {}
    ~ClientFixture() {
        client.stop();
        drain(ioc);
    }
    template <typename T> T operator()(asio::awaitable<T> task) {
        return run(ioc, std::move(task));
    }

    Devnode node;
    asio::io_context ioc;
    Client client;
};

// POST /devnode/faults (replaces the whole fault configuration).
inline void set_faults(const Devnode& node, const json& faults) {
    devnode::test::Client c(node.admin_port());
    auto r =
        c.request("POST", "/devnode/faults", {{"Content-Type", "application/json"}}, faults.dump());
    if (r.status != 200) throw std::runtime_error("set_faults: " + r.body);
}
inline void clear_faults(const Devnode& node) {
    devnode::test::Client c(node.admin_port());
    c.request("DELETE", "/devnode/faults");
}
inline json node_stats(const Devnode& node) {
    devnode::test::Client c(node.port());
    return json::parse(c.get("/stats").body);
}
inline std::uint64_t faults_injected(const Devnode& node) {
    return node_stats(node).value("devnode_faults_injected_total", std::uint64_t{0});
}

// A TCP relay in front of a node. For every connection it records how many complete request
// lines had arrived from the client when the first response byte came from the node: more
// than one means the client pipelined.
// Its coroutines may outlive it on the io_context, which the test goes on running: they hold
// the relay's state, not the relay, and its destructor closes the acceptor to end them.
class Relay {
public:
    Relay(asio::io_context& ioc, std::uint16_t target)
        : state_(std::make_shared<State>(ioc, target)) {
        asio::co_spawn(ioc, accept_loop(state_), asio::detached);
    }
    ~Relay() {
        boost::system::error_code ignored;
        state_->acceptor.close(ignored);
    }
    std::uint16_t port() const { return state_->acceptor.local_endpoint().port(); }
    // Per connection: requests seen before the first response byte.
    std::vector<std::size_t> requests_before_first_response() const {
        std::vector<std::size_t> out;
        for (const auto& c : state_->conns)
            if (c->first_response_seen) out.push_back(c->requests_at_first_response);
        return out;
    }
    std::size_t connections() const { return state_->conns.size(); }

private:
    struct Conn {
        std::string upstream;     // bytes from the client so far
        std::size_t requests = 0; // request lines among them
        bool first_response_seen = false;
        std::size_t requests_at_first_response = 0;
    };
    struct State {
        State(asio::io_context& io, std::uint16_t to)
            : ioc(io), target(to),
              acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
        asio::io_context& ioc;
        std::uint16_t target;
        tcp::acceptor acceptor;
        std::vector<std::shared_ptr<Conn>> conns;
    };

    static std::size_t count_request_lines(const std::string& s) {
        std::size_t n = 0;
        for (auto pos = s.find(" HTTP/1.1\r\n"); pos != std::string::npos;
             pos = s.find(" HTTP/1.1\r\n", pos + 1))
            ++n;
        return n;
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<State> st) {
        for (;;) {
            auto [ec, client] =
                co_await st->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            auto c = std::make_shared<tcp::socket>(std::move(client));
            auto s = std::make_shared<tcp::socket>(st->ioc);
            auto [cec] = co_await s->async_connect(
                tcp::endpoint(asio::ip::make_address("127.0.0.1"), st->target),
                asio::as_tuple(asio::use_awaitable));
            if (cec) continue;
            auto conn = std::make_shared<Conn>();
            st->conns.push_back(conn);
            auto running = std::make_shared<int>(2);
            asio::co_spawn(st->ioc, pump(c, s, conn, true, running), asio::detached);
            asio::co_spawn(st->ioc, pump(s, c, conn, false, running), asio::detached);
        }
    }

    // Copies one direction. An end of stream is passed on as one (the other direction goes on
    // until its own end); an error stops both. The sockets are closed only once both pumps have
    // ended (`running`): under io_uring, a descriptor closed while the other pump's read is still
    // pending could be given to the next connection and that read completed against it (Boost
    // 1.81), which once left a request of the next connection unanswered until its timeout.
    static asio::awaitable<void> pump(std::shared_ptr<tcp::socket> from,
                                      std::shared_ptr<tcp::socket> to, std::shared_ptr<Conn> conn,
                                      bool upstream, std::shared_ptr<int> running) {
        std::vector<char> buf(64 * 1024);
        boost::system::error_code ignored;
        for (;;) {
            auto [ec, n] = co_await from->async_read_some(asio::buffer(buf),
                                                          asio::as_tuple(asio::use_awaitable));
            if (ec == asio::error::eof) {
                to->shutdown(tcp::socket::shutdown_send, ignored);
                break;
            }
            if (ec) {
                from->cancel(ignored);
                to->cancel(ignored);
                break;
            }
            if (upstream) {
                conn->upstream.append(buf.data(), n);
                conn->requests = count_request_lines(conn->upstream);
            } else if (!conn->first_response_seen) {
                conn->first_response_seen = true;
                conn->requests_at_first_response = conn->requests;
            }
            auto [wec, w] = co_await asio::async_write(*to, asio::buffer(buf.data(), n),
                                                       asio::as_tuple(asio::use_awaitable));
            if (wec) {
                from->cancel(ignored);
                to->cancel(ignored);
                break;
            }
        }
        if (--*running == 0) {
            from->close(ignored);
            to->close(ignored);
        }
    }

    std::shared_ptr<State> state_;
};

// Answers every request on every connection with `reply`, then closes if `close_after`.
// Its coroutines may outlive it on the io_context (as Relay's).
class CannedServer {
public:
    CannedServer(asio::io_context& ioc, std::string reply, bool close_after)
        : state_(std::make_shared<State>(ioc, std::move(reply), close_after)) {
        asio::co_spawn(ioc, accept_loop(state_), asio::detached);
    }
    ~CannedServer() {
        boost::system::error_code ignored;
        state_->acceptor.cancel(ignored);
        // The cancelled accept ends here, before the listening descriptor is closed: with its
        // number taken by the next test's listener, a late completion of the old accept took
        // the next test's connection and answered it with this server's reply.
        for (int i = 0; i < 500 && !state_->accept_ended; ++i) {
            state_->ioc.restart();
            state_->ioc.run_one_for(std::chrono::milliseconds(10));
        }
        state_->acceptor.close(ignored);
    }
    std::uint16_t port() const { return state_->acceptor.local_endpoint().port(); }
    std::size_t requests() const { return state_->requests; }

private:
    struct State {
        State(asio::io_context& io, std::string r, bool close)
            : ioc(io), reply(std::move(r)), close_after(close),
              acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
        asio::io_context& ioc;
        std::string reply;
        bool close_after;
        tcp::acceptor acceptor;
        std::size_t requests = 0;
        bool accept_ended = false;
    };

    static asio::awaitable<void> accept_loop(std::shared_ptr<State> st) {
        for (;;) {
            auto [ec, s] = co_await st->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                st->accept_ended = true;
                co_return;
            }
            asio::co_spawn(st->ioc, serve(st, std::make_shared<tcp::socket>(std::move(s))),
                           asio::detached);
        }
    }
    static asio::awaitable<void> serve(std::shared_ptr<State> st, std::shared_ptr<tcp::socket> s) {
        std::string in;
        std::vector<char> buf(4096);
        for (;;) {
            auto [ec, n] =
                co_await s->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            in.append(buf.data(), n);
            for (auto end = in.find("\r\n\r\n"); end != std::string::npos;
                 end = in.find("\r\n\r\n")) {
                in.erase(0, end + 4); // test requests carry no body
                ++st->requests;
                co_await asio::async_write(*s, asio::buffer(st->reply),
                                           asio::as_tuple(asio::use_awaitable));
                if (st->close_after) {
                    boost::system::error_code ignored;
                    s->close(ignored);
                    co_return;
                }
            }
        }
    }

    std::shared_ptr<State> state_;
};

// A raw HTTP server whose connection closes the test controls, all without a
// "Connection: close" header (as Riak closes). Every request (a Content-Length body is read
// and skipped) is answered with respond(request head), then:
//  * close_after_each: the socket is closed right after the answer, in the same handler, so the
//    client sees the response and the close together (Riak after a `Connection: close` request);
//  * drop_nth = N > 0: the Nth request on each connection is not answered, the socket is closed
//    once it has been read (a close that crosses a request already written).
// close_idle() closes every open connection at once, like Riak's keep-alive idle timeout.
class ClosingServer {
public:
    using Responder = std::function<std::string(const std::string& head)>;
    ClosingServer(asio::io_context& ioc, Responder respond)
        : ioc_(ioc), respond_(std::move(respond)),
          acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(ioc_, accept_loop(), asio::detached);
    }
    bool close_after_each = false;
    std::size_t drop_nth = 0;

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::size_t connections() const { return sockets_.size(); }
    // Requests received (answered or dropped) whose request line starts with `method`.
    std::size_t requests(const std::string& method = "") const {
        std::size_t n = 0;
        for (const auto& m : methods_)
            n += method.empty() || m == method;
        return n;
    }
    void close_idle() {
        for (auto& w : sockets_)
            if (auto s = w.lock()) {
                boost::system::error_code ignored;
                s->close(ignored);
            }
    }

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, s] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            auto sock = std::make_shared<tcp::socket>(std::move(s));
            sockets_.push_back(sock);
            asio::co_spawn(ioc_, serve(sock), asio::detached);
        }
    }
    asio::awaitable<void> serve(std::shared_ptr<tcp::socket> s) {
        std::string in;
        std::vector<char> buf(64 * 1024);
        std::size_t on_this_connection = 0;
        for (;;) {
            auto end = in.find("\r\n\r\n");
            std::size_t body = 0;
            if (end != std::string::npos) {
                const std::string head = boost::algorithm::to_lower_copy(in.substr(0, end + 2));
                if (auto cl = head.find("\r\ncontent-length:"); cl != std::string::npos)
                    body = std::stoul(head.substr(cl + 17));
            }
            if (end == std::string::npos || in.size() < end + 4 + body) {
                auto [ec, n] = co_await s->async_read_some(asio::buffer(buf),
                                                           asio::as_tuple(asio::use_awaitable));
                if (ec) co_return;
                in.append(buf.data(), n);
                continue;
            }
            const std::string head = in.substr(0, end + 4);
            in.erase(0, end + 4 + body);
            methods_.push_back(head.substr(0, head.find(' ')));
            boost::system::error_code ignored;
            if (drop_nth > 0 && ++on_this_connection == drop_nth) {
                s->close(ignored);
                co_return;
            }
            // Written synchronously, so that nothing runs between the answer and the close.
            asio::write(*s, asio::buffer(respond_(head)), ignored);
            if (close_after_each) {
                s->close(ignored);
                co_return;
            }
        }
    }

    asio::io_context& ioc_;
    Responder respond_;
    tcp::acceptor acceptor_;
    std::vector<std::weak_ptr<tcp::socket>> sockets_;
    std::vector<std::string> methods_;
};

} // namespace rfs::riak::test
