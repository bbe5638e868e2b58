// The client's TLS context and per-node session cache (see tls.hpp).
#include "lib/riak/tls.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include <boost/asio/ssl/error.hpp>
#include <fmt/core.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace rfs::riak {

namespace ssl = boost::asio::ssl;

namespace {

// Where an SSL object keeps its node's TlsSessionCache (for on_new_session).
int cache_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

// OpenSSL's new-session callback: a session the server issued on `ssl` (after a TLS 1.2
// handshake, or a TLS 1.3 ticket read with the data). Returning 1 keeps the reference.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* cache = static_cast<TlsSessionCache*>(SSL_get_ex_data(ssl, cache_index()));
    if (cache == nullptr) return 0;
    cache->keep(session);
    return 1;
}

// Without this OpenSSL would ask for an encrypted key's passphrase on the terminal (and hang a
// daemon): no passphrase is given, so such a key fails to load with a clear error instead.
int no_passphrase(char*, int, int, void*) {
    return 0;
}

// The errno text when `path` cannot be opened for reading (OpenSSL's own messages for a
// missing file are vague).
std::optional<std::string> unreadable(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::string(std::strerror(errno));
    ::close(fd);
    return std::nullopt;
}

Error bad_file(const char* what, const std::string& path, const std::string& why) {
    ERR_clear_error();
    return make_error(Errc::invalid_argument, fmt::format("{} '{}': {}", what, path, why));
}

} // namespace

TlsContext::TlsContext() : context_(ssl::context::tls_client) {}

Result<std::shared_ptr<TlsContext>> TlsContext::make(const TlsFiles& files) {
    std::shared_ptr<TlsContext> out(new TlsContext());
    SSL_CTX* ctx = out->context_.native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    out->context_.set_verify_mode(ssl::verify_peer);
    boost::system::error_code ec;
    if (files.ca_file.empty()) {
        out->context_.set_default_verify_paths(ec);
        if (ec) {
            ERR_clear_error();
            return make_error(Errc::invalid_argument,
                              "cannot load the system's trust store: " + ec.message());
        }
    } else {
        if (auto why = unreadable(files.ca_file)) return bad_file("CA file", files.ca_file, *why);
        out->context_.load_verify_file(files.ca_file, ec);
        if (ec) return bad_file("CA file", files.ca_file, "no usable certificate: " + ec.message());
    }
    if (files.cert_file.empty() != files.key_file.empty())
        return make_error(Errc::invalid_argument,
                          "a client certificate needs its key, and a key its certificate");
    if (!files.cert_file.empty()) {
        if (auto why = unreadable(files.cert_file))
            return bad_file("client certificate", files.cert_file, *why);
        out->context_.use_certificate_chain_file(files.cert_file, ec);
        if (ec) return bad_file("client certificate", files.cert_file, ec.message());
        if (auto why = unreadable(files.key_file))
            return bad_file("client key", files.key_file, *why);
        out->context_.use_private_key_file(files.key_file, ssl::context::pem, ec);
        const bool mismatch =
            ec && ec.category() == boost::asio::error::get_ssl_category() &&
            ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
        if (ec && !mismatch)
            return bad_file("client key", files.key_file,
                            ec.message() + " (an unencrypted PEM key is needed)");
        if (mismatch || SSL_CTX_check_private_key(ctx) != 1)
            return bad_file("client key", files.key_file,
                            "does not belong to the certificate '" + files.cert_file + "'");
    }
    // Sessions go to the cache of the node they came from (on_new_session), not to OpenSSL's
    // own cache, which is keyed by nothing a client can look up.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return out;
}

void TlsSessionCache::attach(SSL* ssl) {
    SSL_set_ex_data(ssl, cache_index(), this);
    if (session_ && SSL_SESSION_is_resumable(session_.get()) == 1)
        SSL_set_session(ssl, session_.get());
}

void TlsSessionCache::handshake_done(SSL* ssl) {
    ++handshakes_;
    if (SSL_session_reused(ssl) == 1) ++resumed_;
}

void TlsSessionCache::keep(SSL_SESSION* session) {
    session_.reset(session, SSL_SESSION_free);
}

} // namespace rfs::riak
