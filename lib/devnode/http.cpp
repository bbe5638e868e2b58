// Request/response helpers for riak-devnode (see http.hpp). Any thread.
#include "lib/devnode/http.hpp"
#include "lib/devnode/encoding.hpp"

#include <ctime>

#include <fmt/format.h>

namespace rfs::devnode {

namespace {
// Riak 3.0 (webmachine 1.11.1 on mochiweb) announces itself this way; clients only log it.
constexpr std::string_view kServer = "MochiWeb/1.1 WebMachine/1.11.1 (riak-devnode)";
} // namespace

std::optional<std::string> Request::header(std::string_view name) const {
    std::optional<std::string> out;
    for (const auto& [n, v] : headers) {
        if (!iequals(n, name)) continue;
        if (out) {
            *out += ", ";
            *out += v;
        } else {
            out = v;
        }
    }
    return out;
}

std::string_view reason_phrase(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Object Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Request Entity Too Large";
    case 415:
        return "Unsupported Media Type";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

Response webmachine_404() {
    Response r;
    r.status = 404;
    r.set("Content-Type", "text/html");
    r.body = "<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD><BODY><H1>Not Found</H1>"
             "The requested document was not found on this server.<P><HR><ADDRESS>"
             "mochiweb+webmachine web server</ADDRESS></BODY></HTML>";
    return r;
}

std::string serialize_head(const Response& res, unsigned version, bool keep_alive) {
    std::string out = fmt::format("HTTP/1.{} {} {}\r\n", version == 10 ? 0 : 1, res.status,
                                  reason_phrase(res.status));
    for (const auto& [n, v] : res.headers) {
        out += n;
        out += ": ";
        out += v;
        out += "\r\n";
    }
    out += "Server: ";
    out += kServer;
    out += "\r\nDate: ";
    out += proto::format_http_date(static_cast<std::time_t>(now_seconds()));
    out += "\r\n";
    if (res.chunked) {
        out += "Transfer-Encoding: chunked\r\n";
    } else if (res.status != 304 && res.status != 204 && res.status >= 200) {
        out += fmt::format("Content-Length: {}\r\n", res.body.size());
    } else if (res.status == 204) {
        out += "Content-Length: 0\r\n";
    }
    if (version == 10 && keep_alive) out += "Connection: Keep-Alive\r\n";
    out += "\r\n";
    return out;
}

std::string chunk_frame(std::string_view data) {
    if (data.empty()) return "0\r\n\r\n";
    return fmt::format("{:x}\r\n{}\r\n", data.size(), data);
}

} // namespace rfs::devnode
