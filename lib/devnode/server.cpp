// Connection handling of riak-devnode (see server.hpp).
#include "lib/devnode/server.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fmt/format.h>

#include "lib/devnode/encoding.hpp"

// GCC 12 misreads Asio's recycling allocator for coroutine frames (aligned_alloc paired with its
// own operator delete) as a mismatch; the pairing is correct.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace rfs::devnode {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds kIdleTimeout{300}; // mochiweb: next request line
constexpr uint64_t kMaxRecvBody = 1ULL << 30;     // webmachine max_recv_body
constexpr uint64_t kMaxFlushBytes = 64ULL << 20;  // webmachine main: max_flush_bytes
constexpr size_t kMaxLine = 8192;                 // mochiweb recbuf: longer lines -> 431
constexpr size_t kMaxHeaders = 1000;
constexpr uint64_t kMaxConnections = 2048; // mochiweb `max`

double uniform01() {
    thread_local std::mt19937_64 gen{random_u64()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

Response plain(int status, std::string body) {
    Response r;
    r.status = status;
    r.set("Content-Type", "text/plain");
    r.body = std::move(body);
    return r;
}

} // namespace

struct Server::Impl {
    const Config& config;
    Service& service;
    Stats& stats;
    Faults& faults;
    asio::io_context ioc;
    tcp::acceptor acceptor{ioc};
    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    uint16_t port = 0;

    // Graceful shutdown: Boost 1.81's io_uring service destroys still-pending operations after
    // the socket service they refer to, so every operation must have completed before the
    // io_context is destroyed. Sessions are tracked so shutdown() can close them all.
    std::mutex sessions_mu;
    std::map<uint64_t, std::weak_ptr<beast::tcp_stream>> sessions; // guarded by sessions_mu
    uint64_t next_session = 0;                                     // guarded by sessions_mu
    bool stopping = false;                                         // guarded by sessions_mu
    asio::strand<asio::io_context::executor_type> control{asio::make_strand(ioc)};
    asio::steady_timer watchdog{control};
    std::atomic<bool> forced{false}; // the watchdog had to stop the io_context

    void shutdown();
    void session_ended(uint64_t id);

    Impl(const Config& c, Service& s, Stats& st, Faults& f)
        : config(c), service(s), stats(st), faults(f) {}

    awaitable<void> accept_loop();
    awaitable<void> session(tcp::socket sock);
    awaitable<bool> send(beast::tcp_stream& stream, std::string bytes, const FaultConfig* fc);
    Response admin_faults(const Request& req);
};

Server::Server(const Config& config, Service& service, Stats& stats)
    : impl_(std::make_unique<Impl>(config, service, stats, faults_)) {}

Server::~Server() {
    // After a forced stop operations may still be pending; destroying the io_context would then
    // touch freed services (see Impl). The process is exiting, so leave it to the OS.
    if (impl_->forced) (void)impl_.release();
}

bool Server::listen(std::string& error) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(impl_->config.listen_host, ec);
    if (ec) {
        error = fmt::format("bad listen address {}: {}", impl_->config.listen_host, ec.message());
        return false;
    }
    tcp::endpoint ep(addr, impl_->config.listen_port);
    auto& acc = impl_->acceptor;
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(128, ec);
    if (ec) {
        error = fmt::format("cannot listen on {}:{}: {}", impl_->config.listen_host,
                            impl_->config.listen_port, ec.message());
        return false;
    }
    impl_->port = acc.local_endpoint().port();
    return true;
}

uint16_t Server::port() const {
    return impl_->port;
}

void Server::run() {
    impl_->signals.async_wait([this](const boost::system::error_code& ec, int) {
        if (!ec) stop();
    });
    asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
    std::vector<std::thread> threads;
    for (int i = 1; i < std::max(1, impl_->config.threads); ++i)
        threads.emplace_back([this] { impl_->ioc.run(); });
    impl_->ioc.run();
    for (auto& t : threads)
        t.join();
}

void Server::stop() {
    asio::post(impl_->control, [this] { impl_->shutdown(); });
}

// control strand
void Server::Impl::shutdown() {
    std::vector<std::shared_ptr<beast::tcp_stream>> open;
    {
        std::lock_guard lk(sessions_mu);
        if (stopping) return;
        stopping = true;
        for (auto& [id, w] : sessions)
            if (auto s = w.lock()) open.push_back(std::move(s));
    }
    asio::post(ioc, [this] {
        boost::system::error_code ec;
        acceptor.close(ec);
        signals.cancel(ec);
    });
    for (auto& s : open) {
        asio::post(s->get_executor(), [s] {
            boost::system::error_code ec;
            s->socket().shutdown(tcp::socket::shutdown_both, ec);
            s->close();
        });
    }
    // Sessions blocked in a slow write or a long injected latency get a few seconds to notice.
    watchdog.expires_after(std::chrono::seconds(3));
    watchdog.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        forced = true;
        ioc.stop();
    });
    if (open.empty()) watchdog.cancel();
}

// any thread
void Server::Impl::session_ended(uint64_t id) {
    std::lock_guard lk(sessions_mu);
    sessions.erase(id);
    if (stopping && sessions.empty()) asio::post(control, [this] { watchdog.cancel(); });
}

awaitable<void> Server::Impl::accept_loop() {
    asio::steady_timer pause(ioc);
    for (;;) {
        // mochiweb serves at most kMaxConnections sockets; later ones wait in the backlog.
        while (stats.connections_active >= kMaxConnections) {
            pause.expires_after(std::chrono::milliseconds(5));
            co_await pause.async_wait(kTuple);
        }
        auto [ec, sock] = co_await acceptor.async_accept(asio::make_strand(ioc), kTuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
            continue;
        }
        stats.connections_accepted++;
        if (faults.get().refuse_connections) {
            stats.faults_refused_connections++;
            boost::system::error_code ignored;
            sock.close(ignored);
            continue;
        }
        boost::system::error_code ignored;
        sock.set_option(tcp::no_delay(true), ignored);
        stats.connections_active++;
        auto ex = sock.get_executor();
        asio::co_spawn(ex, session(std::move(sock)), asio::detached);
    }
}

// Writes `bytes`, slowly or with a mid-body reset when a fault says so. Returns false when the
// connection is gone (or was reset on purpose).
awaitable<bool> Server::Impl::send(beast::tcp_stream& stream, std::string bytes,
                                   const FaultConfig* fc) {
    stream.expires_after(kIdleTimeout);
    if (fc != nullptr && fc->reset_rate > 0.0 && uniform01() < fc->reset_rate) {
        stats.faults_injected++;
        size_t half = bytes.size() / 2;
        co_await asio::async_write(stream, asio::buffer(bytes.data(), half), kTuple);
        auto& sock = stream.socket();
        boost::system::error_code ec;
        sock.set_option(asio::socket_base::linger(true, 0), ec);
        sock.close(ec);
        co_return false;
    }
    if (fc != nullptr && fc->slow_body_bps > 0) {
        stats.faults_injected++;
        size_t slice = std::max<size_t>(1, fc->slow_body_bps / 10);
        asio::steady_timer timer(stream.get_executor());
        for (size_t off = 0; off < bytes.size(); off += slice) {
            size_t n = std::min(slice, bytes.size() - off);
            auto [ec, w] =
                co_await asio::async_write(stream, asio::buffer(bytes.data() + off, n), kTuple);
            if (ec) co_return false;
            if (off + n < bytes.size()) {
                timer.expires_after(std::chrono::milliseconds(100));
                co_await timer.async_wait(kTuple);
            }
        }
        co_return true;
    }
    auto [ec, w] = co_await asio::async_write(stream, asio::buffer(bytes), kTuple);
    co_return !ec;
}

Response Server::Impl::admin_faults(const Request& req) {
    if (req.method == "GET") {
        Response r = plain(200, faults.get().to_json().dump());
        r.headers[0].second = "application/json";
        return r;
    }
    if (req.method == "DELETE") {
        faults.set(FaultConfig{});
        Response r;
        r.status = 204;
        return r;
    }
    if (req.method != "POST" && req.method != "PUT") {
        Response r;
        r.status = 405;
        r.set("Allow", "GET, POST, PUT, DELETE");
        return r;
    }
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    std::string error;
    std::optional<FaultConfig> fc;
    if (j.is_discarded()) {
        error = "body is not JSON";
    } else {
        fc = FaultConfig::from_json(j, error);
    }
    if (!fc) return plain(400, error + "\n");
    faults.set(*fc);
    Response r = plain(200, fc->to_json().dump());
    r.headers[0].second = "application/json";
    return r;
}

awaitable<void> Server::Impl::session(tcp::socket sock) {
    auto holder = std::make_shared<beast::tcp_stream>(std::move(sock));
    beast::tcp_stream& stream = *holder;
    uint64_t id = 0;
    {
        std::lock_guard lk(sessions_mu);
        id = next_session++;
        sessions.emplace(id, holder);
        if (stopping) {
            boost::system::error_code ec;
            stream.socket().close(ec);
        }
    }
    beast::flat_buffer buf;
    try {
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(1 << 20);
            parser.body_limit(kMaxRecvBody);
            stream.expires_after(kIdleTimeout);
            auto [ec, n] = co_await http::async_read_header(stream, buf, parser, kTuple);
            if (ec) {
                if (ec == http::error::header_limit) {
                    co_await send(stream, serialize_head(plain(431, ""), 11, false), nullptr);
                } else if (ec != http::error::end_of_stream && ec != asio::error::eof &&
                           ec != beast::error::timeout && ec != asio::error::connection_reset &&
                           ec != asio::error::operation_aborted) {
                    Response bad = plain(400, "");
                    co_await send(stream, serialize_head(bad, 11, false), nullptr);
                }
                break;
            }
            auto& msg = parser.get();
            Request req;
            req.method = std::string(msg.method_string());
            req.target = std::string(msg.target());
            req.version = msg.version();
            size_t count = 0;
            bool too_long = req.target.size() + req.method.size() + 10 > kMaxLine;
            for (const auto& f : msg) {
                req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
                too_long = too_long || f.name_string().size() + f.value().size() + 2 > kMaxLine;
                ++count;
            }
            if (too_long || count > kMaxHeaders) {
                Response r = plain(too_long ? 431 : 400, "");
                co_await send(stream, serialize_head(r, 11, false), nullptr);
                break;
            }
            req.has_body =
                parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
            bool keep_alive = msg.keep_alive();
            bool expect_continue = iequals(trim(req.header("Expect").value_or("")), "100-continue");
            parse_target(req);

            auto read_body = [&]() -> awaitable<bool> {
                if (!parser.is_done()) {
                    if (expect_continue && req.version == 11) {
                        std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
                        auto [wec, w] =
                            co_await asio::async_write(stream, asio::buffer(cont), kTuple);
                        if (wec) co_return false;
                    }
                    stream.expires_never();
                    auto [rec, r] = co_await http::async_read(stream, buf, parser, kTuple);
                    if (rec) co_return false;
                }
                req.body = std::move(parser.get().body());
                co_return true;
            };

            std::optional<Response> res;
            FaultConfig fc;
            bool admin = req.seg.size() == 2 && req.seg[0] == "devnode" && req.seg[1] == "faults";
            bool faulty = false;
            if (admin) {
                if (!co_await read_body()) break;
                res = admin_faults(req);
            } else {
                fc = faults.get();
                std::string route = route_class(req.seg);
                bool admin_path = !req.seg.empty() && req.seg[0] == "devnode";
                faulty = !admin_path && fc.applies(route, req.method);
                if (faulty) {
                    if (uint64_t ms = fc.latency_for(route); ms > 0) {
                        stats.faults_injected++;
                        asio::steady_timer timer(stream.get_executor());
                        timer.expires_after(std::chrono::milliseconds(ms));
                        co_await timer.async_wait(kTuple);
                    }
                    if (fc.error_rate > 0.0 && uniform01() < fc.error_rate) {
                        stats.faults_injected++;
                        if (!co_await read_body()) break;
                        res = fc.error_status == 500 ? plain(500, "Error:\noverload\n")
                                                     : plain(503, "request timed out\n");
                    }
                }
                if (!res && req.has_body) {
                    try {
                        res = service.handle(req, false);
                    } catch (const std::exception& e) {
                        res = plain(500, fmt::format("Error:\n{{exception,\"{}\"}}\n", e.what()));
                    }
                    if (res && !parser.is_done()) {
                        // Answered before reading the body (§9).
                        uint64_t pending = parser.content_length().value_or(kMaxFlushBytes + 1);
                        if (config.compat == "3.0") {
                            res->close = true; // silent close, no Connection: close header
                        } else if (expect_continue) {
                            // No 100 was sent, so no body is coming: keep the connection.
                        } else if (pending <= kMaxFlushBytes) {
                            if (!co_await read_body()) break;
                        } else {
                            res->close = true;
                            res->set("Connection", "close");
                        }
                    }
                }
                if (!res) {
                    if (!co_await read_body()) {
                        if (parser.get().body().size() >= kMaxRecvBody) {
                            co_await send(stream, serialize_head(plain(413, ""), 11, false),
                                          nullptr);
                        }
                        break;
                    }
                    try {
                        res = service.handle(req, true);
                    } catch (const std::exception& e) {
                        res = plain(500, fmt::format("Error:\n{{exception,\"{}\"}}\n", e.what()));
                    }
                }
            }
            if (!res) res = plain(500, "Error:\nno_response\n");
            if (!keep_alive && !res->close) res->set("Connection", "close");
            if (req.version == 10 && res->chunked) {
                for (auto& c : res->chunks)
                    res->body += c;
                res->chunks.clear();
                res->chunked = false;
            }
            bool head = res->head || req.method == "HEAD";
            std::string out = serialize_head(*res, req.version, keep_alive && !res->close);
            if (!head) {
                if (res->chunked) {
                    for (const auto& c : res->chunks)
                        if (!c.empty()) out += chunk_frame(c);
                    out += chunk_frame("");
                } else {
                    out += res->body;
                }
            }
            if (!co_await send(stream, std::move(out), faulty ? &fc : nullptr)) break;
            if (!keep_alive || res->close) break;
        }
    } catch (const std::exception& e) {
        if (config.verbose) std::fprintf(stderr, "riak-devnode: connection error: %s\n", e.what());
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.socket().close(ec);
    stats.connections_active--;
    session_ended(id);
}

} // namespace rfs::devnode
