// Connection handling of riak-devnode (see server.hpp).
#include "lib/devnode/server.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>

#include "lib/common/await_tuple.hpp"
#include "lib/devnode/encoding.hpp"
#include "lib/devnode/request_head.hpp"
#include "lib/devnode/security.hpp"
#include "proto/beast_feed.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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

constexpr std::chrono::seconds kIdleTimeout{300};   // mochiweb: waiting for the next request line
constexpr std::chrono::seconds kHeadersTimeout{30}; // mochiweb: the rest of the headers
// After closing with request bytes possibly still on their way, keep reading (and dropping) them
// this long, so that the kernel does not answer them with a reset that destroys our response
// before the client has read it.
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr uint64_t kMaxFlushBytes = 64ULL << 20; // webmachine main: max_flush_bytes
constexpr size_t kReadStep = 64 * 1024;          // socket reads and body buffer growth

using Parser = http::request_parser<http::buffer_body>;
// The Riak listener's connections: plain, or TLS with --tls-cert (the admin listener: plain).
using TcpStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
template <class Stream> constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

// The TCP side of either stream: timeouts, the socket.
template <class Stream> beast::tcp_stream& tcp_of(Stream& stream) {
    return beast::get_lowest_layer(stream);
}

Response plain(int status, std::string body) {
    Response r;
    r.status = status;
    r.set("Content-Type", "text/plain");
    r.body = std::move(body);
    return r;
}

// Riak's answer to an object above object.size.maximum (§7, lib/devnode/README.md).
Response too_large(uint64_t size) {
    return plain(500, fmt::format("Error:\n{{too_large,{}}}\n", size));
}

Response closing(Response r) {
    r.close = true;
    r.set("Connection", "close");
    return r;
}

enum class BodyEnd {
    complete,
    too_large,   // more than object.size.maximum arrived (chunked bodies)
    bad_framing, // e.g. a chunk size that is not hex
    timed_out,   // Config::body_timeout_ms passed
    closed,      // the peer went away
};

struct BodyRead {
    BodyEnd end = BodyEnd::complete;
    uint64_t bytes = 0; // body bytes received
};

BodyEnd classify_body_error(const boost::system::error_code& ec) {
    if (ec == beast::error::timeout) return BodyEnd::timed_out;
    if (ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
        ec != http::error::partial_message && ec != http::error::end_of_stream)
        return BodyEnd::bad_framing;
    return BodyEnd::closed;
}

} // namespace

bool is_loopback_address(const std::string& host) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) return false;
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).is_loopback();
    return addr.is_loopback();
}

struct Server::Impl {
    // One accepting socket and the connections it has open.
    struct Listener {
        Listener(asio::io_context& ioc, bool admin_routes) : acceptor(ioc), admin(admin_routes) {}
        tcp::acceptor acceptor;
        const bool admin; // serves the /devnode/ routes only, never refused or faulted
        uint16_t port = 0;
        std::atomic<uint64_t> active{0}; // open connections, at most Config::max_connections
    };

    // One request on a connection, from its header to its response.
    struct ExchangeState {
        beast::flat_buffer& buf;
        Parser& parser;
        Request req;
        bool expect_continue = false;
        bool continue_sent = false;
        bool drain_after = false; // answered early: read and drop the body after the response
    };
    template <class Stream> struct Exchange : ExchangeState {
        std::shared_ptr<Stream> holder; // keeps the stream for the body deadline
        Stream& stream;
    };

    const Config& config;
    Service& service;
    Stats& stats;
    Faults& faults;
    asio::io_context ioc;
    Listener riak{ioc, false};
    Listener admin{ioc, true};
    asio::signal_set signals{ioc, SIGINT, SIGTERM};

    // Graceful shutdown: Boost 1.81's io_uring service destroys still-pending operations after
    // the socket service they refer to, so every operation must have completed before the
    // io_context is destroyed. Sessions are tracked so shutdown() can close them all.
    std::mutex sessions_mu;
    std::map<uint64_t, std::weak_ptr<beast::tcp_stream>> sessions; // guarded by sessions_mu
    // The TCP layer of each (for TLS sessions an alias into their TlsStream).
    uint64_t next_session = 0; // guarded by sessions_mu
    bool stopping = false;     // guarded by sessions_mu
    asio::strand<asio::io_context::executor_type> control{asio::make_strand(ioc)};
    asio::steady_timer watchdog{control};
    std::atomic<bool> forced{false}; // the watchdog had to stop the io_context

    // --tls-cert: the Riak listener's TLS context (null: plain HTTP).
    std::unique_ptr<asio::ssl::context> tls;
    // --user: Riak's security over HTTP.
    const Access access;

    void shutdown();
    void session_ended(uint64_t id);

    Impl(const Config& c, Service& s, Stats& st, Faults& f)
        : config(c), service(s), stats(st), faults(f), access(c.users) {}

    bool make_tls(std::string& error);
    bool bind(Listener& l, const std::string& host, uint16_t port, std::string& error);
    awaitable<void> accept_loop(Listener& l);
    template <class Stream> awaitable<void> session(std::shared_ptr<Stream> holder, Listener& from);
    awaitable<bool> handshake(TlsStream& stream);
    awaitable<void> close_tls(TlsStream& stream);
    template <class Stream>
    awaitable<bool> request_arrived(Stream& stream, beast::flat_buffer& buf);
    template <class Stream> awaitable<BodyRead> read_body(Exchange<Stream>& x, std::string* into);
    template <class Stream>
    awaitable<boost::system::error_code> parse_body_some(Exchange<Stream>& x);
    template <class Stream>
    awaitable<std::optional<Response>> answer_riak(Exchange<Stream>& x, FaultConfig& fc,
                                                   bool& faulty);
    template <class Stream> awaitable<std::optional<Response>> answer_admin(Exchange<Stream>& x);
    template <class Stream>
    awaitable<bool> send(Stream& stream, std::string bytes, const FaultConfig* fc);
    template <class Stream> awaitable<void> linger(Stream& stream);
    Response admin_faults(const Request& req);
    std::optional<Response> call_service(Request& req, bool body_read);
    bool body_exceeds_maximum(const ExchangeState& x) const;
    Response answer_early(ExchangeState& x, Response res);
    std::optional<Response> body_failure(const BodyRead& body);
};

Server::Server(const Config& config, Service& service, Stats& stats)
    : impl_(std::make_unique<Impl>(config, service, stats, faults_)) {}

Server::~Server() {
    // After a forced stop operations may still be pending; destroying the io_context would then
    // touch freed services (see Impl). The process is exiting, so leave it to the OS.
    if (impl_->forced) (void)impl_.release();
}

bool Server::Impl::bind(Listener& l, const std::string& host, uint16_t port, std::string& error) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) {
        error = fmt::format("bad listen address {}: {}", host, ec.message());
        return false;
    }
    tcp::endpoint ep(addr, port);
    auto& acc = l.acceptor;
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(128, ec);
    if (ec) {
        error = fmt::format("cannot listen on {}:{}: {}", host, port, ec.message());
        return false;
    }
    l.port = acc.local_endpoint().port();
    return true;
}

namespace {
// OpenSSL's messages for a missing file are vague: the errno text instead.
bool readable(const std::string& path, const char* flag, std::string& error) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        error = fmt::format("{} {}: {}", flag, path, std::strerror(errno));
        return false;
    }
    std::fclose(f);
    return true;
}
// An encrypted key fails to load rather than prompting on the terminal.
int no_passphrase(char*, int, int, void*) {
    return 0;
}
// OpenSSL's refusal of a key that is not the certificate's.
bool key_mismatch(const boost::system::error_code& ec) {
    return ec.category() == asio::error::get_ssl_category() &&
           ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
}
} // namespace

bool Server::Impl::make_tls(std::string& error) {
    if (!config.tls()) return true;
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_default_passwd_cb(native, no_passphrase);
    boost::system::error_code ec;
    if (!readable(config.tls_cert, "--tls-cert", error)) return false;
    ctx->use_certificate_chain_file(config.tls_cert, ec);
    if (ec) {
        error = fmt::format("--tls-cert {}: {}", config.tls_cert, ec.message());
        return false;
    }
    if (!readable(config.tls_key, "--tls-key", error)) return false;
    ctx->use_private_key_file(config.tls_key, asio::ssl::context::pem, ec);
    if (ec && !key_mismatch(ec)) {
        error = fmt::format("--tls-key {}: {} (an unencrypted PEM key is needed)", config.tls_key,
                            ec.message());
        return false;
    }
    if (ec || SSL_CTX_check_private_key(native) != 1) {
        error = fmt::format("--tls-key {} does not belong to --tls-cert {}", config.tls_key,
                            config.tls_cert);
        return false;
    }
    // Clients may resume their sessions (session IDs and tickets, OpenSSL's defaults); the
    // context names whose sessions they are, which OpenSSL requires once clients are verified.
    static constexpr unsigned char kSessionContext[] = "riak-devnode";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
    if (!config.tls_client_ca.empty()) {
        if (!readable(config.tls_client_ca, "--tls-client-ca", error)) return false;
        ctx->load_verify_file(config.tls_client_ca, ec);
        if (ec) {
            error = fmt::format("--tls-client-ca {}: {}", config.tls_client_ca, ec.message());
            return false;
        }
        SSL_CTX_set_client_CA_list(native, SSL_load_client_CA_file(config.tls_client_ca.c_str()));
        ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    }
    tls = std::move(ctx);
    return true;
}

bool Server::listen(std::string& error) {
    const Config& c = impl_->config;
    if (!impl_->make_tls(error)) return false;
    if (!impl_->bind(impl_->riak, c.listen_host, c.listen_port, error)) return false;
    return !c.admin || impl_->bind(impl_->admin, c.admin_host, c.admin_port, error);
}

uint16_t Server::port() const {
    return impl_->riak.port;
}

uint16_t Server::admin_port() const {
    return impl_->admin.port;
}

void Server::run() {
    impl_->signals.async_wait([this](const boost::system::error_code& ec, int) {
        if (!ec) stop();
    });
    asio::co_spawn(impl_->ioc, impl_->accept_loop(impl_->riak), asio::detached);
    if (impl_->admin.acceptor.is_open())
        asio::co_spawn(impl_->ioc, impl_->accept_loop(impl_->admin), asio::detached);
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
        riak.acceptor.close(ec);
        admin.acceptor.close(ec);
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

awaitable<void> Server::Impl::accept_loop(Listener& l) {
    asio::steady_timer pause(ioc);
    for (;;) {
        // mochiweb serves at most `max` sockets; later ones wait in the backlog.
        while (l.active >= config.max_connections) {
            pause.expires_after(std::chrono::milliseconds(5));
            co_await pause.async_wait(kTuple);
        }
        auto [ec, sock] = co_await l.acceptor.async_accept(asio::make_strand(ioc), kTuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !l.acceptor.is_open()) co_return;
            continue;
        }
        if (!l.admin) {
            stats.connections_accepted++;
            if (faults.get().refuse_connections) {
                stats.faults_refused_connections++;
                boost::system::error_code ignored;
                sock.close(ignored);
                continue;
            }
        }
        boost::system::error_code ignored;
        sock.set_option(tcp::no_delay(true), ignored);
        l.active++;
        if (!l.admin) stats.connections_active++;
        auto ex = sock.get_executor();
        if (tls && !l.admin)
            asio::co_spawn(ex, session(std::make_shared<TlsStream>(std::move(sock), *tls), l),
                           asio::detached);
        else
            asio::co_spawn(ex, session(std::make_shared<TcpStream>(std::move(sock)), l),
                           asio::detached);
    }
}

// Writes `bytes`, slowly or with a mid-body reset when a fault says so. Returns false when the
// connection is gone (or was reset on purpose).
template <class Stream>
awaitable<bool> Server::Impl::send(Stream& stream, std::string bytes, const FaultConfig* fc) {
    tcp_of(stream).expires_after(kIdleTimeout);
    if (fc != nullptr && faults.happens(fc->reset_rate)) {
        stats.faults_injected++;
        size_t half = bytes.size() / 2;
        // Over TLS: half of the response's bytes in TLS records, then the TCP reset, without a
        // close_notify (a TLS stream dropped in the middle of a response).
        co_await asio::async_write(stream, asio::buffer(bytes.data(), half), kTuple);
        auto& sock = tcp_of(stream).socket();
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

// Waits up to the idle timeout for the first byte of the next request (mochiweb's 300 s), so
// that the shorter header timeout can start when the request does.
template <class Stream>
awaitable<bool> Server::Impl::request_arrived(Stream& stream, beast::flat_buffer& buf) {
    if (buf.size() > 0) co_return true; // pipelined behind the previous request
    tcp_of(stream).expires_after(kIdleTimeout);
    auto [ec, n] = co_await stream.async_read_some(buf.prepare(kReadStep), kTuple);
    buf.commit(n);
    co_return n > 0;
}

// Reads the rest of the body into `into`, or drops it when `into` is null. At most
// object.size.maximum bytes are kept: the buffer is filled only as bytes arrive (a claimed
// Content-Length commits no memory), with room for one byte more so that an oversize chunked
// body shows itself. The whole body must arrive within the body timeout.
template <class Stream>
awaitable<BodyRead> Server::Impl::read_body(Exchange<Stream>& x, std::string* into) {
    BodyRead out;
    if (into != nullptr) into->clear();
    if (x.parser.is_done()) co_return out;
    // The deadline cancels the socket's operations rather than closing it as a stream timeout
    // would: the socket (and its descriptor number) stays ours until they have completed, so a
    // connection accepted meanwhile cannot be handed the descriptor while the io_uring backend
    // still has operations for it.
    tcp_of(x.stream).expires_never();
    auto timed_out = std::make_shared<bool>(false);
    asio::steady_timer deadline(x.stream.get_executor());
    deadline.expires_after(std::chrono::milliseconds(config.body_timeout_ms));
    deadline.async_wait([holder = x.holder, timed_out](const boost::system::error_code& ec) {
        if (ec) return;
        *timed_out = true;
        boost::system::error_code ignored;
        tcp_of(*holder).socket().cancel(ignored);
    });
    if (x.expect_continue && x.req.version == 11 && !x.continue_sent) {
        // §9: the 100 goes out only when the body is about to be read.
        x.continue_sent = true;
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, w] = co_await asio::async_write(
            x.stream, asio::buffer(kContinue.data(), kContinue.size()), kTuple);
        if (wec) {
            out.end = *timed_out ? BodyEnd::timed_out : BodyEnd::closed;
            deadline.cancel();
            co_return out;
        }
    }
    const uint64_t limit = config.object_size_maximum;
    const uint64_t cap = std::min(x.parser.content_length().value_or(limit + 1), limit + 1);
    std::vector<char> scratch(into == nullptr ? kReadStep : 0);
    // Address space only: pages are committed as resize() below reaches them, and a known length
    // spares the copies of growing step by step.
    if (into != nullptr && x.parser.content_length()) into->reserve(cap);
    uint64_t got = 0;
    while (!x.parser.is_done()) {
        char* dst = scratch.data();
        size_t room = scratch.size();
        if (into != nullptr) {
            if (got == into->size()) {
                if (got >= cap) {
                    out.end = BodyEnd::too_large;
                    break;
                }
                into->resize(std::min<uint64_t>(cap, std::max<uint64_t>(got + kReadStep, got * 2)));
            }
            dst = into->data() + got;
            room = into->size() - got;
        }
        auto& body = x.parser.get().body();
        body.data = dst;
        body.size = room;
        auto ec = co_await parse_body_some(x);
        got += room - body.size;
        if (ec && ec != http::error::need_buffer) {
            out.end = classify_body_error(ec);
            break;
        }
        if (into != nullptr && got > limit) {
            out.end = BodyEnd::too_large;
            break;
        }
    }
    deadline.cancel();
    out.bytes = got;
    if (into != nullptr) into->resize(std::min<uint64_t>(got, into->size()));
    if (*timed_out && out.end != BodyEnd::complete) out.end = BodyEnd::timed_out;
    if (out.end == BodyEnd::timed_out) stats.body_timeouts++;
    co_return out;
}

// One step of reading the body: what http::async_read_some does, except that the parser is
// never handed fewer bytes than it can take (proto/beast_feed.hpp): Beast's own read loop hands
// it each byte as it arrives, and an empty chunked body sent a byte at a time aborted the node.
// Answers need_buffer when the body buffer is full, success after progress, or the error that
// ended the body.
template <class Stream>
awaitable<boost::system::error_code> Server::Impl::parse_body_some(Exchange<Stream>& x) {
    for (;;) {
        if (x.buf.size() > 0 && proto::parser_may_take(x.parser, x.buf.size())) {
            boost::system::error_code ec;
            const size_t used = x.parser.put(x.buf.data(), ec);
            x.buf.consume(used);
            if (ec != http::error::need_more && (ec || used > 0 || x.parser.is_done()))
                co_return ec;
        }
        auto [ec, n] = co_await x.stream.async_read_some(x.buf.prepare(kReadStep), kTuple);
        x.buf.commit(n);
        if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
            boost::system::error_code end;
            x.parser.put_eof(end);
            co_return end ? end : http::error::partial_message;
        }
        if (ec) co_return ec;
    }
}

// Reads and drops whatever the client still sends after our side was shut down, for a short
// while (see kLingerTimeout).
template <class Stream> awaitable<void> Server::Impl::linger(Stream& stream) {
    // The raw TCP bytes (over TLS too: after our close_notify they are only dropped).
    auto& tcp = tcp_of(stream);
    tcp.expires_after(kLingerTimeout);
    std::vector<char> scratch(kReadStep);
    for (;;) {
        auto [ec, n] = co_await tcp.async_read_some(asio::buffer(scratch), kTuple);
        if (ec) co_return;
    }
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

std::optional<Response> Server::Impl::call_service(Request& req, bool body_read) {
    try {
        return service.handle(req, body_read);
    } catch (const std::exception& e) {
        return plain(500, fmt::format("Error:\n{{exception,\"{}\"}}\n", e.what()));
    }
}

bool Server::Impl::body_exceeds_maximum(const ExchangeState& x) const {
    auto length = x.parser.content_length();
    return length && *length > config.object_size_maximum;
}

// An answer given before the body was read (§9): what becomes of the unread body.
Response Server::Impl::answer_early(ExchangeState& x, Response res) {
    if (x.parser.is_done()) return res;
    uint64_t pending = x.parser.content_length().value_or(kMaxFlushBytes + 1);
    if (config.compat == "3.0") {
        res.close = true; // silent close, no Connection: close header
    } else if (x.expect_continue) {
        // No 100 was sent, so no body is coming: keep the connection.
    } else if (pending <= kMaxFlushBytes) {
        x.drain_after = true;
    } else {
        res = closing(std::move(res));
    }
    return res;
}

// The answer to a body that could not be read whole; nullopt: close without one.
std::optional<Response> Server::Impl::body_failure(const BodyRead& body) {
    switch (body.end) {
    case BodyEnd::too_large:
        stats.too_large++;
        return closing(too_large(body.bytes));
    case BodyEnd::bad_framing:
        return closing(plain(400, "Bad chunked request body\n"));
    default:
        return std::nullopt;
    }
}

template <class Stream>
awaitable<std::optional<Response>> Server::Impl::answer_riak(Exchange<Stream>& x, FaultConfig& fc,
                                                             bool& faulty) {
    Request& req = x.req;
    fc = faults.get();
    std::string route = route_class(req.seg());
    faulty = fc.applies(route, req.method);
    if (faulty) {
        if (uint64_t ms = fc.latency_for(route); ms > 0) {
            stats.faults_injected++;
            asio::steady_timer timer(x.stream.get_executor());
            timer.expires_after(std::chrono::milliseconds(ms));
            co_await timer.async_wait(kTuple);
        }
        if (faults.happens(fc.error_rate)) {
            stats.faults_injected++;
            auto drop = read_body(x, nullptr);
            BodyRead body = co_await std::move(drop);
            if (body.end != BodyEnd::complete) co_return body_failure(body);
            co_return fc.error_status == 500 ? plain(500, "Error:\noverload\n")
                                             : plain(503, "request timed out\n");
        }
    }
    // Riak's security (--user): decided before the body is read, as webmachine does.
    if (auto refused = access.check(req, route, kTls<Stream>)) {
        stats.auth_refusals++;
        co_return answer_early(x, std::move(*refused));
    }
    if (req.has_body) {
        std::optional<Response> early = call_service(req, false);
        if (!early && body_exceeds_maximum(x)) {
            // Refused before a byte of it is read, where Riak would read it all first (§7).
            stats.too_large++;
            early = too_large(*x.parser.content_length());
        }
        if (early) co_return answer_early(x, std::move(*early));
    }
    auto read = read_body(x, &req.body);
    BodyRead body = co_await std::move(read);
    if (body.end != BodyEnd::complete) co_return body_failure(body);
    std::optional<Response> res = call_service(req, true);
    if (!res) res = plain(500, "Error:\nno_response\n");
    co_return res;
}

template <class Stream>
awaitable<std::optional<Response>> Server::Impl::answer_admin(Exchange<Stream>& x) {
    Request& req = x.req;
    const auto& s = req.seg();
    bool faults_route = s.size() == 2 && s[0] == "devnode" && s[1] == "faults";
    bool types_route = s.size() >= 2 && s[0] == "devnode" && s[1] == "types";
    if (!faults_route && !types_route) co_return answer_early(x, webmachine_404());
    if (body_exceeds_maximum(x)) {
        stats.too_large++;
        co_return answer_early(x, too_large(*x.parser.content_length()));
    }
    if (types_route) {
        std::optional<Response> early;
        try {
            early = service.admin_types(req, false);
        } catch (const std::exception& e) {
            early = plain(500, fmt::format("Error:\n{{exception,\"{}\"}}\n", e.what()));
        }
        if (early) co_return answer_early(x, std::move(*early));
    }
    auto read = read_body(x, &req.body);
    BodyRead body = co_await std::move(read);
    if (body.end != BodyEnd::complete) co_return body_failure(body);
    if (faults_route) co_return admin_faults(req);
    try {
        co_return service.admin_types(req, true);
    } catch (const std::exception& e) {
        co_return plain(500, fmt::format("Error:\n{{exception,\"{}\"}}\n", e.what()));
    }
}

// The TLS handshake of a new connection on the Riak listener, within the header timeout.
awaitable<bool> Server::Impl::handshake(TlsStream& stream) {
    tcp_of(stream).expires_after(kHeadersTimeout);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (ec) {
        stats.tls_failures++;
        if (config.verbose)
            std::fprintf(stderr, "riak-devnode: TLS handshake failed: %s\n", ec.message().c_str());
        co_return false;
    }
    stats.tls_handshakes++;
    if (SSL_session_reused(stream.native_handle()) == 1) stats.tls_resumed++;
    co_return true;
}

// Ends a TLS session as Riak's does: our close_notify before the TCP close, so the client can
// tell the end of the stream from a cut. The client's close_notify is not waited for.
awaitable<void> Server::Impl::close_tls(TlsStream& stream) {
    SSL_set_shutdown(stream.native_handle(), SSL_RECEIVED_SHUTDOWN);
    tcp_of(stream).expires_after(kLingerTimeout);
    co_await stream.async_shutdown(kTuple);
}

template <class Stream>
awaitable<void> Server::Impl::session(std::shared_ptr<Stream> holder, Listener& from) {
    Stream& stream = *holder;
    uint64_t id = 0;
    {
        std::lock_guard lk(sessions_mu);
        id = next_session++;
        // For shutdown(): the TCP layer, kept alive through the whole stream.
        sessions.emplace(id, std::shared_ptr<beast::tcp_stream>(holder, &tcp_of(stream)));
        if (stopping) {
            boost::system::error_code ec;
            tcp_of(stream).socket().close(ec);
        }
    }
    beast::flat_buffer buf;
    bool unread_input = false; // closing while the client may still be sending
    bool serving = true;       // false: a TLS handshake that failed, nothing to serve
    try {
        if constexpr (kTls<Stream>) {
            auto shake = handshake(stream);
            serving = co_await std::move(shake);
            // The client may have sent its request already (TLS 1.3 finishes on its side
            // first): read it away before closing, so our alert reaches the client instead of
            // being destroyed by the reset a close with unread data sends.
            unread_input = !serving;
        }
        while (serving) {
            auto arrival = request_arrived(stream, buf);
            if (!co_await std::move(arrival)) break;
            Parser parser;
            parser.header_limit(1 << 20);
            parser.body_limit(boost::none); // read_body() enforces object.size.maximum
            tcp_of(stream).expires_after(kHeadersTimeout);
            auto [ec, n] = co_await http::async_read_header(stream, buf, parser, kTuple);
            if (ec) {
                if (ec == http::error::header_limit) {
                    co_await send(stream, serialize_head(plain(431, ""), 11, false), nullptr);
                    unread_input = true;
                } else if (ec != http::error::end_of_stream && ec != asio::error::eof &&
                           ec != beast::error::timeout && ec != asio::error::connection_reset &&
                           ec != asio::error::operation_aborted) {
                    Response bad = plain(400, "");
                    co_await send(stream, serialize_head(bad, 11, false), nullptr);
                    unread_input = true;
                }
                break;
            }
            auto& msg = parser.get();
            Exchange<Stream> x{{buf, parser, {}}, holder, stream};
            Request& req = x.req;
            if (int refused = request_from_header(msg.base(), req)) {
                co_await send(stream, serialize_head(plain(refused, ""), 11, false), nullptr);
                unread_input = true;
                break;
            }
            req.has_body =
                parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
            bool keep_alive = msg.keep_alive();
            x.expect_continue = iequals(trim(req.header("Expect").value_or("")), "100-continue");

            FaultConfig fc;
            bool faulty = false;
            std::optional<Response> res;
            if (from.admin) {
                auto answer = answer_admin(x);
                res = co_await std::move(answer);
            } else {
                auto answer = answer_riak(x, fc, faulty);
                res = co_await std::move(answer);
            }
            if (!res) break; // the body timed out or the client went away
            // A request that ends the connection (HTTP/1.0, `Connection: close`) gets no
            // `Connection: close` header: Riak 3.2.0 sends none and just closes the socket.
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
            if (!keep_alive || res->close) {
                unread_input = !parser.is_done();
                break;
            }
            if (x.drain_after) {
                auto drop = read_body(x, nullptr);
                BodyRead rest = co_await std::move(drop);
                if (rest.end != BodyEnd::complete) break;
            }
        }
    } catch (const std::exception& e) {
        if (config.verbose) std::fprintf(stderr, "riak-devnode: connection error: %s\n", e.what());
    }
    auto& socket = tcp_of(stream).socket();
    if constexpr (kTls<Stream>) {
        if (serving && socket.is_open()) {
            try {
                auto close = close_tls(stream);
                co_await std::move(close);
            } catch (const std::exception&) {
            }
        }
    }
    boost::system::error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
    if (unread_input && socket.is_open()) {
        try {
            co_await linger(stream);
        } catch (const std::exception&) {
        }
    }
    socket.close(ec);
    from.active--;
    if (!from.admin) stats.connections_active--;
    session_ended(id);
}

} // namespace rfs::devnode
