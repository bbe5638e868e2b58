// Transport-neutral request/response values passed between the devnode's socket layer
// (server.cpp) and its Riak logic (service.cpp), plus response serialisation. Plain data; any
// thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rfs::devnode {

struct Request {
    std::string method;           // as sent ("GET", "PUT", ...)
    std::string target;           // raw request target
    std::vector<std::string> raw; // raw (still percent-encoded) non-empty path segments
    std::vector<std::string> seg; // the same segments, url_unquote()d
    std::vector<std::pair<std::string, std::string>> query;   // decoded name, value
    std::vector<std::pair<std::string, std::string>> headers; // name as sent, value
    std::string body;
    unsigned version = 11; // 10 or 11
    bool has_body = false; // Content-Length > 0 or chunked

    // Value of a header (case-insensitive); repeated headers joined with ", " as mochiweb does.
    std::optional<std::string> header(std::string_view name) const;
    std::optional<std::string> param(std::string_view name) const;
};

// Parses the target into raw/seg/query.
void parse_target(Request& req);

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

bool iequals(std::string_view a, std::string_view b);
std::string to_lower(std::string_view s);
std::string_view trim(std::string_view s);

} // namespace rfs::devnode
