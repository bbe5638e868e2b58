// Plain or TLS byte stream of one connection (see stream.hpp).
#include "lib/riak/stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/core.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "lib/common/await_tuple.hpp"

namespace rfs::riak {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;

Stream::Stream(asio::any_io_executor ex, std::shared_ptr<TlsContext> tls, TlsSessionCache* sessions)
    : socket_(std::move(ex)), context_(std::move(tls)), sessions_(sessions) {
    if (context_)
        tls_ = std::make_unique<ssl::stream<asio::ip::tcp::socket&>>(socket_, context_->context());
}

bool Stream::is_tls_error(const boost::system::error_code& ec) noexcept {
    return ec.category() == asio::error::get_ssl_category() ||
           (ec.category() == ssl::error::get_stream_category() &&
            ec != ssl::error::stream_truncated);
}

bool Stream::is_truncation(const boost::system::error_code& ec) noexcept {
    return ec == ssl::error::stream_truncated;
}

asio::awaitable<Result<void>> Stream::handshake(const NodeAddress& node) {
    if (!tls_) co_return Result<void>{};
    SSL* ssl = tls_->native_handle();
    const std::string name = node.host_header();
    // The certificate must name the host the URL names: an IP address against the
    // certificate's IP addresses, a name against its DNS names. A name also goes out as SNI, so
    // a server with several certificates shows the right one (SNI carries no IP addresses).
    boost::system::error_code not_ip;
    asio::ip::make_address(node.host, not_ip);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const bool named = !not_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, node.host.c_str()) == 1
                               : SSL_set_tlsext_host_name(ssl, node.host.c_str()) == 1 &&
                                     X509_VERIFY_PARAM_set1_host(param, node.host.c_str(), 0) == 1;
    if (!named)
        co_return make_error(Errc::tls_failed,
                             fmt::format("TLS with {}: cannot check the certificate against the "
                                         "host '{}'",
                                         name, node.host));
    if (sessions_ != nullptr) sessions_->attach(ssl);
    auto [ec] = co_await tls_->async_handshake(ssl::stream_base::client, kTuple);
    if (!ec) {
        if (sessions_ != nullptr) sessions_->handshake_done(ssl);
        co_return Result<void>{};
    }
    if (sessions_ != nullptr) sessions_->forget();
    const long verified = SSL_get_verify_result(ssl);
    if (verified != X509_V_OK)
        co_return make_error(Errc::tls_failed,
                             fmt::format("TLS handshake with {} failed: certificate verify "
                                         "failed: {}",
                                         name, X509_verify_cert_error_string(verified)));
    if (is_tls_error(ec))
        co_return make_error(Errc::tls_failed,
                             fmt::format("TLS handshake with {} failed: {}", name, ec.message()));
    // The TCP connection ended or broke during the handshake: as a refused connection, the
    // node may be going away (or be no TLS server at all: then every attempt ends the same way).
    co_return make_error(
        Errc::connection_refused,
        fmt::format("TLS handshake with {}: the connection ended ({})", name, ec.message()));
}

asio::awaitable<Stream::IoResult> Stream::write(const std::vector<asio::const_buffer>& buffers) {
    if (tls_) co_return co_await asio::async_write(*tls_, buffers, kTuple);
    co_return co_await asio::async_write(socket_, buffers, kTuple);
}

asio::awaitable<Stream::IoResult> Stream::read_some(asio::mutable_buffer buffer) {
    if (tls_) co_return co_await tls_->async_read_some(buffer, kTuple);
    co_return co_await socket_.async_read_some(buffer, kTuple);
}

void Stream::close() noexcept {
    // No close_notify: the connection is dropped either way, and waiting for the node's answer
    // to one would hold the close up. But OpenSSL marks the session of a connection freed
    // without one as not resumable (as after a cut), and the node's cached session is that
    // session: say the shutdown was ours. A session a fatal alert ended is marked bad by
    // OpenSSL when the alert is sent or received, so it stays unresumable.
    if (tls_ && SSL_is_init_finished(tls_->native_handle()) == 1)
        SSL_set_shutdown(tls_->native_handle(),
                         SSL_get_shutdown(tls_->native_handle()) | SSL_SENT_SHUTDOWN);
    // The descriptor itself is closed only when the stream goes, after the connection's
    // coroutines (which keep it) have seen their operations end: with io_uring, a descriptor
    // closed under pending operations can be handed to a new connection while the kernel still
    // completes the old ones against it (another connection's bytes, freed operations).
    // Shutting the socket down ends pending reads and writes at once; cancel ends a connect.
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.cancel(ignored);
}

} // namespace rfs::riak
