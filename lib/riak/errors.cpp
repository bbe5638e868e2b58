// Error kinds, their category and errno defaults (see errors.hpp).
#include "lib/riak/errors.hpp"

#include <cerrno>

#include <fmt/core.h>

namespace rfs::riak {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "riak"; }
    std::string message(int ev) const override { return to_string(static_cast<Errc>(ev)); }
};

} // namespace

const char* to_string(Errc code) noexcept {
    switch (code) {
    case Errc::ok:
        return "ok";
    case Errc::invalid_argument:
        return "invalid_argument";
    case Errc::object_too_large:
        return "object_too_large";
    case Errc::connection_refused:
        return "connection_refused";
    case Errc::connection_reset:
        return "connection_reset";
    case Errc::outcome_unknown:
        return "outcome_unknown";
    case Errc::timeout:
        return "timeout";
    case Errc::cancelled:
        return "cancelled";
    case Errc::no_node:
        return "no_node";
    case Errc::truncated_response:
        return "truncated_response";
    case Errc::malformed_response:
        return "malformed_response";
    case Errc::server_error:
        return "server_error";
    case Errc::client_error:
        return "client_error";
    case Errc::unexpected_response:
        return "unexpected_response";
    case Errc::tls_failed:
        return "tls_failed";
    }
    return "unknown";
}

const std::error_category& riak_category() noexcept {
    static const Category category;
    return category;
}

int default_errno(Errc code) noexcept {
    switch (code) {
    case Errc::ok:
        return 0;
    case Errc::invalid_argument:
        return EINVAL;
    case Errc::object_too_large:
        return EFBIG;
    case Errc::connection_refused:
        return ECONNREFUSED;
    case Errc::connection_reset:
        return ECONNRESET;
    case Errc::outcome_unknown:
        return EIO;
    case Errc::timeout:
        return ETIMEDOUT;
    case Errc::cancelled:
        return ECANCELED;
    case Errc::no_node:
        return EHOSTUNREACH;
    case Errc::truncated_response:
        return EIO;
    case Errc::malformed_response:
        return EPROTO;
    case Errc::server_error:
        return EIO;
    case Errc::client_error:
        return EPROTO;
    case Errc::unexpected_response:
        return EPROTO;
    case Errc::tls_failed:
        return EIO;
    }
    return EIO;
}

std::string Error::describe() const {
    if (http_status != 0)
        return fmt::format("{} (HTTP {}): {}", to_string(code), http_status, message);
    return fmt::format("{}: {}", to_string(code), message);
}

Error make_error(Errc code, std::string message, int sys_errno) {
    return Error{code, sys_errno != 0 ? sys_errno : default_errno(code), 0, std::move(message)};
}

Error from_proto(const proto::Error& e) {
    Error out;
    out.sys_errno = e.code;
    out.http_status = e.http_status;
    out.message = e.message;
    if (e.http_status >= 500)
        out.code = Errc::server_error;
    else if (e.http_status >= 400)
        out.code = Errc::client_error;
    else if (e.http_status != 0)
        out.code = Errc::unexpected_response;
    else if (e.code == EINVAL || e.code == ENAMETOOLONG || e.code == EMSGSIZE)
        out.code = Errc::invalid_argument;
    else if (e.code == EFBIG)
        out.code = Errc::object_too_large;
    else if (e.code == EIO)
        out.code = Errc::server_error; // an error reported in-band, e.g. {"error":"timeout"}
    else
        out.code = Errc::malformed_response;
    if (out.sys_errno == 0) out.sys_errno = default_errno(out.code);
    return out;
}

} // namespace rfs::riak
