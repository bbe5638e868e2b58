// TLS for the Riak client (https:// nodes): the context every secured connection is made from,
// and each node's session cache.
//
// TlsContext: TLS 1.2 or later, the peer's certificate always verified (against the system's
// trust store, or only against TlsFiles::ca_file when one is given), an optional client
// certificate. There is deliberately no way to turn verification off. Each connection also
// checks that the certificate names the node's host (Stream::handshake). Made once at start,
// then only read: OpenSSL lets any number of threads make connections from one SSL_CTX.
//
// TlsSessionCache: the newest session a node's server issued, offered by the next connection
// to that node, so that reconnecting resumes the session (an abbreviated handshake, no
// certificate exchange) rather than paying a full handshake. Servers issue sessions after the
// handshake (TLS 1.3 tickets arrive with the first data read), so the context hands each new
// session to the cache of the connection it came on. One Client's loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "lib/riak/errors.hpp"

namespace rfs::riak {

struct TlsFiles {
    std::string ca_file;   // PEM certificates to trust instead of the system store ("" = system)
    std::string cert_file; // client certificate chain, PEM ("" = none)
    std::string key_file;  // its unencrypted private key, PEM (given exactly with cert_file)
};

class TlsContext {
public:
    // Loads the files; one line naming the file and what is wrong with it on failure (an
    // encrypted key is refused rather than prompting for a passphrase).
    static Result<std::shared_ptr<TlsContext>> make(const TlsFiles& files);
    boost::asio::ssl::context& context() noexcept { return context_; }

private:
    TlsContext();
    boost::asio::ssl::context context_;
};

class TlsSessionCache {
public:
    TlsSessionCache() = default;
    TlsSessionCache(const TlsSessionCache&) = delete;
    TlsSessionCache& operator=(const TlsSessionCache&) = delete;

    // Before the handshake on `ssl`: offers the cached session, and routes the sessions the
    // server issues on this connection here. The cache must outlive `ssl`.
    void attach(SSL* ssl);
    // After a successful handshake: counts it, and whether the server resumed the session.
    void handshake_done(SSL* ssl);
    // Called by the context's callback: keeps `session` (takes its reference).
    void keep(SSL_SESSION* session);
    // After a failed handshake: a session is not offered again to a server that failed.
    void forget() { session_.reset(); }

    std::uint64_t handshakes() const noexcept { return handshakes_; }
    std::uint64_t resumed() const noexcept { return resumed_; }

private:
    std::shared_ptr<SSL_SESSION> session_;
    std::uint64_t handshakes_ = 0;
    std::uint64_t resumed_ = 0;
};

} // namespace rfs::riak
