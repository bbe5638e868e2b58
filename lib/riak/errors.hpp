// Errors of the Riak client as values: a kind (Errc, also a std::error_category so it can travel
// as a std::error_code), the errno the FUSE daemon should answer with, the HTTP status if the
// failure was an HTTP answer, and a one-line message. Result<T> holds a T or an Error.
// Plain value types: any thread, not shared between threads.
#pragma once

#include <cassert>
#include <cerrno>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

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
};

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
};

Error make_error(Errc code, std::string message, int sys_errno = 0);
// proto errors: HTTP answers become server_error/client_error with proto's errno; others keep
// their errno and become invalid_argument (EINVAL, ENAMETOOLONG, EMSGSIZE), object_too_large
// (EFBIG), server_error (EIO: an in-band {"error":...} of a listing) or malformed_response.
Error from_proto(const proto::Error& e);

// A T or an Error; the same member names as std::expected (C++23) and proto::Result.
template <typename T> class [[nodiscard]] Result {
public:
    // Default: an error. co_spawn needs it to build the value it hands over when the
    // coroutine exits with an exception instead.
    Result() : v_(std::in_place_index<1>, Error{Errc::cancelled, ECANCELED, 0, "no result"}) {}
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, Error> v_;
};

template <> class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}
    bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    void value() const { assert(ok_); }
    const Error& error() const& { return error_; }
    Error&& error() && { return std::move(error_); }

private:
    Error error_;
    bool ok_ = true;
};

} // namespace rfs::riak

template <> struct std::is_error_code_enum<rfs::riak::Errc> : std::true_type {};
