// Transport-neutral request/response values passed between the devnode's socket layer
// (server.cpp) and its Riak logic (service.cpp), plus response serialisation. Plain data; any
// thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/riak_paths.hpp"
#include "proto/text.hpp"

namespace rfs::devnode {

struct Request {
    std::string method;         // as sent ("GET", "PUT", ...)
    std::string target;         // raw request target
    proto::ParsedTarget parsed; // decoded path segments and query, by parse_target()
    std::vector<std::pair<std::string, std::string>> headers; // name as sent, value
    std::string body;
    unsigned version = 11; // 10 or 11
    bool has_body = false; // Content-Length > 0 or chunked

    // Value of a header (case-insensitive); repeated headers joined with ", " as mochiweb does.
    std::optional<std::string> header(std::string_view name) const;
    std::optional<std::string> param(std::string_view name) const { return parsed.param(name); }
    const std::vector<std::string>& seg() const { return parsed.segments; }
};

// Splits and decodes the target as Riak's router does (proto::parse_target).
inline void parse_target(Request& req) {
    req.parsed = proto::parse_target(req.target);
}

struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool head = false;    // HEAD: send the headers (incl. Content-Length), no body
    bool chunked = false; // send `chunks` with Transfer-Encoding: chunked
    std::vector<std::string> chunks;
    bool close = false; // close the connection after this response

    Response& set(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

std::string_view reason_phrase(int status);

// webmachine's own 404 page, Riak's answer for a path no route matches.
Response webmachine_404();

// Serialises the status line and headers (adding Server, Date, Content-Length or
// Transfer-Encoding, and Connection when closing an HTTP/1.0 keep-alive). The body (or chunks)
// is not included.
std::string serialize_head(const Response& res, unsigned version, bool keep_alive);
// One chunk in chunked framing; an empty `data` gives the terminating chunk.
std::string chunk_frame(std::string_view data);

// The header text helpers and HTTP dates are proto's; devnode code names them unqualified.
using proto::format_http_date;
using proto::iequals;
using proto::parse_http_date;
using proto::split_index_values;
using proto::to_lower;
using proto::trim;

} // namespace rfs::devnode
