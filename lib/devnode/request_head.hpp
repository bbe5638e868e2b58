// A parsed request header (Beast's) -> the Request that Service answers: what the socket layer
// (server.cpp) does with the header of each request before any routing, kept apart so that the
// fuzz target test/fuzz/fuzz_devnode_request.cpp runs exactly the same code.
#pragma once

#include <cstddef>

#include <boost/beast/http/message.hpp>

#include "lib/devnode/http.hpp"

namespace rfs::devnode {

// mochiweb's receive buffer (recbuf): a request or header line longer than this gets 431.
inline constexpr std::size_t kMaxRequestLine = 8192;
// mochiweb's limit on the number of header lines: more gets 400.
inline constexpr std::size_t kMaxRequestHeaders = 1000;

// Fills method, target (split and decoded by parse_target()), version and headers (as sent, in
// order) of `req`. Returns the status to refuse the request with (431 or 400, above), else 0.
// `has_body` and `body` are the caller's: they depend on how the body is read.
int request_from_header(const boost::beast::http::request_header<>& head, Request& req);

} // namespace rfs::devnode
