// Errors as values for proto/: a positive errno plus a short message, and Result<T>, a small
// stand-in for C++23 std::expected<T, Error> (same member names, so switching later is mechanical).
// lib/common will own the project-wide Result; until it lands, proto/ carries this one.
// Plain value types: safe to use from any thread, not shared between threads.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include <fmt/core.h>

namespace rfs::proto {

struct Error {
    int code = 0;             // positive errno (EINVAL, ENOENT, EPROTO, ...)
    std::string message;      // short context, no trailing newline
    unsigned http_status = 0; // the HTTP status this came from, 0 if none
};

inline Error make_error(int code, std::string message, unsigned http_status = 0) {
    return Error{code, std::move(message), http_status};
}

template <typename... Args>
Error make_error(int code, fmt::format_string<Args...> format, Args&&... args) {
    return Error{code, fmt::format(format, std::forward<Args>(args)...), 0};
}

// Result<T>: either a T or an Error. Implicitly constructible from both, so functions can
// `return value;` or `return make_error(...);`. T must not be Error.
template <typename T> class [[nodiscard]] Result {
public:
    using value_type = T;
    using error_type = Error;

    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

    template <typename U> T value_or(U&& fallback) const& {
        return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
    }

private:
    std::variant<T, Error> v_;
};

template <> class [[nodiscard]] Result<void> {
public:
    using value_type = void;
    using error_type = Error;

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

} // namespace rfs::proto
