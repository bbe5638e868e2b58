#include "lib/metrics/http_endpoint.hpp"

#include "lib/common/await_tuple.hpp"
#include "lib/common/log.hpp"
#include "lib/io/executor.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/core.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace rfs::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::size_t kMaxConnections = 16;
constexpr std::size_t kMaxHeader = 8192;
constexpr auto kRequestTimeout = std::chrono::seconds(10);
constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

} // namespace

std::string ListenAddress::text() const {
    return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                               : fmt::format("{}:{}", host, port);
}

std::variant<ListenAddress, std::string> parse_listen_address(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return fmt::format("'{}': {} (expected IP:PORT, e.g. 127.0.0.1:9100)", text, why);
    };
    std::string_view host, port_text;
    if (text.starts_with("[")) {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return bad("an IPv6 address needs [ADDRESS]:PORT");
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad("no port");
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return bad("an IPv6 address needs brackets");
    }
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port > 65535)
        return bad("the port must be a number from 0 to 65535");
    boost::system::error_code parse_error;
    auto address = asio::ip::make_address(std::string(host), parse_error);
    if (parse_error) return bad("not an IP address (names are not looked up)");
    ListenAddress out;
    out.host = address.to_string();
    out.port = static_cast<std::uint16_t>(port);
    out.loopback = address.is_loopback();
    return out;
}

std::variant<BoundListener, std::string> bind_listener(const ListenAddress& address) {
    auto fail = [&](const char* what) {
        return fmt::format("metrics={}: {}: {}", address.text(), what, std::strerror(errno));
    };
    sockaddr_storage storage{};
    socklen_t length = 0;
    int family = AF_INET;
    if (address.host.find(':') != std::string::npos) {
        family = AF_INET6;
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(address.port);
        if (::inet_pton(AF_INET6, address.host.c_str(), &in6->sin6_addr) != 1)
            return fmt::format("metrics={}: not an IPv6 address", address.text());
        length = sizeof *in6;
    } else {
        auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
        in4->sin_family = AF_INET;
        in4->sin_port = htons(address.port);
        if (::inet_pton(AF_INET, address.host.c_str(), &in4->sin_addr) != 1)
            return fmt::format("metrics={}: not an IPv4 address", address.text());
        length = sizeof *in4;
    }
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail("socket");
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0)
        return fail("cannot listen");
    if (::listen(fd.get(), 16) != 0) return fail("cannot listen");
    // The port really bound (port 0 picks one).
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof bound;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0)
        return fail("getsockname");
    BoundListener out{std::move(fd), address};
    out.address.port = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return out;
}

struct HttpEndpoint::Impl {
    Impl(int fd, bool v6, Render render)
        : context(1), acceptor(context), render(std::move(render)) {
        acceptor.assign(v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd);
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto accept = acceptor.async_accept(kTuple);
            auto [ec, socket] = co_await std::move(accept);
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
            if (ec) {
                // EMFILE and friends: the daemon is short of descriptors; try again shortly.
                asio::steady_timer pause(context, std::chrono::milliseconds(100));
                auto wait = pause.async_wait(kTuple);
                co_await std::move(wait);
                continue;
            }
            if (connections >= kMaxConnections) continue; // closed as `socket` goes
            ++connections;
            asio::co_spawn(context, serve(beast::tcp_stream(std::move(socket))),
                           [this](std::exception_ptr failure) {
                               --connections;
                               if (failure) log_failure(failure);
                           });
        }
    }

    // A render or a connection that threw loses only that scrape.
    static void log_failure(std::exception_ptr failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            RFS_LOG_ERROR("metrics endpoint: {}", e.what());
        } catch (...) {
            RFS_LOG_ERROR("metrics endpoint: unknown exception");
        }
    }

    http::response<http::string_body> answer(const http::request<http::empty_body>& request) {
        http::response<http::string_body> response;
        response.version(11);
        response.keep_alive(request.keep_alive());
        std::string_view target = request.target();
        target = target.substr(0, target.find('?'));
        if (target != "/metrics") {
            response.result(http::status::not_found);
            response.set(http::field::content_type, "text/plain; charset=utf-8");
            response.body() = "riakfs serves its metrics at /metrics\n";
        } else if (request.method() != http::verb::get && request.method() != http::verb::head) {
            response.result(http::status::method_not_allowed);
            response.set(http::field::allow, "GET, HEAD");
        } else {
            response.result(http::status::ok);
            response.set(http::field::content_type, kContentType);
            response.body() = render();
        }
        response.prepare_payload(); // Content-Length (of the GET's body, for a HEAD too)
        return response;
    }

    // GCC 12 mishandles temporaries inside a co_await expression (lib/riak/README.md, "Calling
    // from coroutines"): every awaitable here is made in its own statement first.
    asio::awaitable<void> serve(beast::tcp_stream stream) {
        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::empty_body> parser;
            parser.header_limit(kMaxHeader);
            stream.expires_after(kRequestTimeout);
            // The head only: requests here carry no body, and one that announces one is refused
            // unread. Boost 1.81's parser aborts the process on a chunked body split right
            // after its final "0\r\n" (an assertion), which any local client could send.
            auto read = http::async_read_header(stream, buffer, parser, kTuple);
            auto [ec, n] = co_await std::move(read);
            if (!ec && (parser.chunked() || parser.content_length().value_or(0) > 0)) {
                http::response<http::string_body> refused{http::status::bad_request, 11};
                refused.set(http::field::content_type, "text/plain");
                refused.body() = "requests with a body are not served here\n";
                refused.keep_alive(false);
                refused.prepare_payload();
                auto write = http::async_write(stream, refused, kTuple);
                co_await std::move(write);
                break;
            }
            if (ec == http::error::header_limit) {
                http::response<http::string_body> too_large{
                    http::status::request_header_fields_too_large, 11};
                too_large.keep_alive(false);
                too_large.prepare_payload();
                auto write = http::async_write(stream, too_large, kTuple);
                co_await std::move(write);
                break;
            }
            if (ec) break; // closed, timed out, or not HTTP
            const bool head = parser.get().method() == http::verb::head;
            auto response = answer(parser.get());
            // A HEAD answer keeps the GET's Content-Length and sends no body.
            http::response_serializer<http::string_body> serializer(response);
            boost::system::error_code write_error;
            if (head) {
                auto write = http::async_write_header(stream, serializer, kTuple);
                write_error = std::get<0>(co_await std::move(write));
            } else {
                auto write = http::async_write(stream, serializer, kTuple);
                write_error = std::get<0>(co_await std::move(write));
            }
            if (write_error || !response.keep_alive()) break;
        }
        boost::system::error_code ignored;
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    }

    asio::io_context context;
    asio::ip::tcp::acceptor acceptor;
    Render render;
    std::size_t connections = 0; // the endpoint's thread only
};

HttpEndpoint::HttpEndpoint(BoundListener listener, Render render) : address_(listener.address) {
    bool v6 = address_.host.find(':') != std::string::npos;
    impl_ = std::make_unique<Impl>(listener.fd.release(), v6, std::move(render));
    asio::co_spawn(impl_->context, impl_->accept_loop(), asio::detached);
    thread_ = io::thread_without_signals(
        [impl = impl_.get()] {
            for (;;) {
                try {
                    impl->context.run();
                    return;
                } catch (...) {
                    Impl::log_failure(std::current_exception());
                }
            }
        },
        "riakfs-metrics", io::ThreadRole::background); // the operator's, not applications'
}

HttpEndpoint::~HttpEndpoint() {
    asio::post(impl_->context, [impl = impl_.get()] {
        boost::system::error_code ignored;
        impl->acceptor.close(ignored);
        impl->context.stop();
    });
    if (thread_.joinable()) thread_.join();
}

} // namespace rfs::metrics
