// Request/response helpers for riak-devnode (see http.hpp). Any thread.
#include "lib/devnode/http.hpp"

#include <cctype>
#include <ctime>

#include <fmt/format.h>

#include "lib/devnode/encoding.hpp"

namespace rfs::devnode {

namespace {
// Riak 3.0 (webmachine 1.11.1 on mochiweb) announces itself this way; clients only log it.
constexpr std::string_view kServer = "MochiWeb/1.1 WebMachine/1.11.1 (riak-devnode)";
} // namespace

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    }
    return true;
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

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

std::optional<std::string> Request::param(std::string_view name) const {
    for (const auto& [n, v] : query) {
        if (n == name) return v;
    }
    return std::nullopt;
}

void parse_target(Request& req) {
    std::string_view t = req.target;
    std::string_view path = t, qs;
    if (auto q = t.find('?'); q != std::string_view::npos) {
        path = t.substr(0, q);
        qs = t.substr(q + 1);
    }
    if (auto h = qs.find('#'); h != std::string_view::npos) qs = qs.substr(0, h);
    // Split like string:tokens: empty segments vanish.
    size_t i = 0;
    while (i <= path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        if (j > i) {
            req.raw.emplace_back(path.substr(i, j - i));
            req.seg.push_back(url_unquote(path.substr(i, j - i)));
        }
        i = j + 1;
    }
    i = 0;
    while (i < qs.size()) {
        size_t j = qs.find_first_of("&;", i);
        if (j == std::string_view::npos) j = qs.size();
        std::string_view kv = qs.substr(i, j - i);
        if (!kv.empty()) {
            auto eq = kv.find('=');
            if (eq == std::string_view::npos) {
                req.query.emplace_back(url_unquote(kv), "");
            } else {
                req.query.emplace_back(url_unquote(kv.substr(0, eq)),
                                       url_unquote(kv.substr(eq + 1)));
            }
        }
        i = j + 1;
    }
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
    out += http_date(std::time(nullptr));
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
