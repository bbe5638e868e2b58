// Stream: the bytes of one connection to a Riak node, over plain TCP (http://) or TLS over TCP
// (https://). Connection's pipelining (one gathered write of everything queued, one reader)
// sees only write() and read_some(); which transport carries them is decided here.
//
// TLS: handshake() sends the node's host name (SNI, for names only), requires a certificate
// that the context trusts and that names that host (DNS name or IP address, no partial
// wildcards), and offers the node's cached session for resumption. A failure is Errc::tls_failed
// with the verification's reason ("certificate has expired", "hostname mismatch", ...). There is
// no fallback to plain text: an https:// node is only ever spoken to through a verified session.
//
// One loop's thread; one write and one read may be outstanding at the same time (Asio's SSL
// stream allows that pairing, as a socket does).
#pragma once

#include <cstddef>
#include <memory>
#include <tuple>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "lib/riak/config.hpp"
#include "lib/riak/errors.hpp"
#include "lib/riak/tls.hpp"

namespace rfs::riak {

class Stream {
public:
    using IoResult = std::tuple<boost::system::error_code, std::size_t>;

    // `tls` null: plain TCP. Otherwise TLS with that context, and `sessions` (the node's cache,
    // which must outlive the stream) for resumption and the handshake counts.
    Stream(boost::asio::any_io_executor ex, std::shared_ptr<TlsContext> tls,
           TlsSessionCache* sessions);
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    // The TCP socket underneath: connect it, poll it, close it.
    boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
    bool secure() const noexcept { return tls_ != nullptr; }

    // After connect: the TLS handshake with `node` (nothing for plain TCP).
    boost::asio::awaitable<Result<void>> handshake(const NodeAddress& node);
    boost::asio::awaitable<IoResult> write(const std::vector<boost::asio::const_buffer>& buffers);
    boost::asio::awaitable<IoResult> read_some(boost::asio::mutable_buffer buffer);
    // Ends the connection: pending reads and writes fail at once. The descriptor is closed
    // when the Stream goes (see stream.cpp), so a connection must outlive its operations.
    void close() noexcept;

    // A read error that means the TLS layer failed (a bad record, an alert from the node), as
    // opposed to the TCP connection ending or breaking.
    static bool is_tls_error(const boost::system::error_code& ec) noexcept;
    // The connection ended without the node's TLS close_notify: the last bytes may have been
    // cut by anyone on the path, so they end no response (a truncation, not an end of body).
    static bool is_truncation(const boost::system::error_code& ec) noexcept;

private:
    boost::asio::ip::tcp::socket socket_;
    std::shared_ptr<TlsContext> context_;
    TlsSessionCache* sessions_;
    std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
};

} // namespace rfs::riak
