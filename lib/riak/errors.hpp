// Errors of the Riak client as values: a kind (Errc, also a std::error_category so it can travel
// as a std::error_code), the errno the FUSE daemon should answer with, the HTTP status if the
// failure was an HTTP answer, and a one-line message. Result<T> holds a T or an Error.
// Plain value types: any thread, not shared between threads.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

#include "proto/result.hpp"

namespace rfs::riak {

// What went wrong. The comment gives the errno each kind maps to by default.
enum class Errc {
    ok = 0,
    invalid_argument,    // EINVAL: a name or option the request builders refuse
    object_too_large,    // EFBIG: above max_object_size, refused before sending
    connection_refused,  // ECONNREFUSED: connect failed, or the node closed before answering
    connection_reset,    // ECONNRESET: the connection broke with the request unanswered
    outcome_unknown,     // EIO: a non-idempotent request was sent and no answer came back
    timeout,             // ETIMEDOUT: no answer within the request timeout
    cancelled,           // ECANCELED: cancelled by the caller (or the client stopped)
    no_node,             // EHOSTUNREACH: no node configured
    truncated_response,  // EIO: the connection ended inside a response (wrong Content-Length)
    malformed_response,  // EPROTO: bytes that are not a valid HTTP response, or bad framing
    server_error,        // 5xx: errno from proto's table (EIO, EAGAIN, ETIMEDOUT, EFBIG, EMLINK)
    client_error,        // 4xx: errno from proto's table (EINVAL, EACCES, ENOENT, EEXIST, ...)
    unexpected_response, // EPROTO: a valid response the call cannot use (e.g. ping body not OK)
    tls_failed,          // EIO: no TLS session with the node: its certificate failed verification
                         // (untrusted, expired, another host's), or the TLS handshake failed
};
// The last kind, for tables indexed by Errc.
inline constexpr Errc kLastErrc = Errc::tls_failed;

const char* to_string(Errc code) noexcept;
const std::error_category& riak_category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), riak_category()};
}
// The default errno of a kind (server_error and client_error carry their own).
int default_errno(Errc code) noexcept;

struct Error {
    Errc code = Errc::ok;
    int sys_errno = 0;        // positive errno for the FUSE reply
    unsigned http_status = 0; // the HTTP status if the failure is an HTTP answer
    std::string message;      // one line, no trailing newline

    int to_errno() const noexcept { return sys_errno != 0 ? sys_errno : default_errno(code); }
    std::error_code error_code() const noexcept { return make_error_code(code); }
    // "connection_reset: node 127.0.0.1:8098 closed the connection"
    std::string describe() const;
    // What a default-constructed Result<T> holds.
    static Error no_result() { return Error{Errc::cancelled, ECANCELED, 0, "no result"}; }
};

Error make_error(Errc code, std::string message, int sys_errno = 0);
// proto errors: HTTP answers become server_error/client_error with proto's errno; others keep
// their errno and become invalid_argument (EINVAL, ENAMETOOLONG, EMSGSIZE), object_too_large
// (EFBIG), server_error (EIO: an in-band {"error":...} of a listing) or malformed_response.
Error from_proto(const proto::Error& e);

// A T or an Error; the same template as proto::Result (proto/result.hpp), so the same member
// names as std::expected (C++23). Default-constructed: the Error::no_result() error, since
// co_spawn needs a default to build the value it hands over when the coroutine exits with an
// exception instead.
template <typename T> using Result = BasicResult<T, Error>;

} // namespace rfs::riak

template <> struct std::is_error_code_enum<rfs::riak::Errc> : std::true_type {};
