// Errors as values. BasicResult<T, E> is a small stand-in for C++23 std::expected<T, E> (same
// member names, so switching later is mechanical): proto/ uses it as proto::Result<T> with the
// Error below (a positive errno plus a short message), lib/riak as riak::Result<T> with its own.
// lib/common will own the project-wide Result; until it lands, proto/ carries this one.
// Plain value types: safe to use from any thread, not shared between threads.
#pragma once

#include <cassert>
#include <concepts>
#include <string>
#include <utility>
#include <variant>

#include <fmt/core.h>

namespace rfs {

// E says which error a default-constructed BasicResult<T, E> holds.
template <typename E>
concept HasNoResult = requires {
    { E::no_result() } -> std::convertible_to<E>;
};

// Either a T or an E. Implicitly constructible from both, so functions can `return value;` or
// `return make_error(...);`. T must not be E. Default-constructible only when E says which error
// a default result holds (`static E no_result()`); otherwise there is no default.
template <typename T, typename E> class [[nodiscard]] BasicResult {
public:
    using value_type = T;
    using error_type = E;

    BasicResult() requires HasNoResult<E> : v_(std::in_place_index<1>, E::no_result()) {}
    BasicResult(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    BasicResult(E error) : v_(std::in_place_index<1>, std::move(error)) {}

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

    const E& error() const& { return std::get<1>(v_); }
    E&& error() && { return std::get<1>(std::move(v_)); }

    template <typename U> T value_or(U&& fallback) const& {
        return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
    }

private:
    std::variant<T, E> v_;
};

// Success without a value (the default) or an E.
template <typename E> class [[nodiscard]] BasicResult<void, E> {
public:
    using value_type = void;
    using error_type = E;

    BasicResult() = default;
    BasicResult(E error) : error_(std::move(error)), ok_(false) {}

    bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    void value() const { assert(ok_); }
    const E& error() const& { return error_; }
    E&& error() && { return std::move(error_); }

private:
    E error_;
    bool ok_ = true;
};

} // namespace rfs

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

// Result<T>: either a T or an Error (no default: a result is a value or an error).
template <typename T> using Result = BasicResult<T, Error>;

} // namespace rfs::proto
