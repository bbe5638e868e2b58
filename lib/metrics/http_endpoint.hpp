// The metrics endpoint: a small HTTP/1.1 server on its own thread that answers GET /metrics with
// the text a Render callback makes (lib/metrics/exposition.hpp).
//
// Why its own thread and io_context: a scrape must never wait for, or delay, a FUSE request or
// the migration loop. The listening socket is bound with plain system calls before the daemon
// mounts and forks (bind_listener), so a busy or bad address is refused in one line before
// anything is mounted, and no thread or io_uring exists before the fork; the endpoint takes the
// socket over once the daemon serves.
//
// Only GET and HEAD of /metrics are served (200), everything else is 404 or 405. Each connection
// has 10 s to send a request, at most 16 are open at once (more are closed at once), a request
// head above 8 KiB is refused (431), and a request that announces a body (Content-Length or
// chunked) is answered 400 and the connection closed, its body never read.
#pragma once

#include "lib/common/unique_fd.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>

namespace rfs::metrics {

// "127.0.0.1:9100", "[::1]:9100": an IP literal (no name lookups) and a port (0: any free one).
struct ListenAddress {
    std::string host; // without brackets
    std::uint16_t port = 0;
    bool loopback = false;
    std::string text() const; // "127.0.0.1:9100", "[::1]:9100"
};

// The address, or a one-line message saying what is wrong with it.
std::variant<ListenAddress, std::string> parse_listen_address(std::string_view text);

// A bound, listening TCP socket, and the address it really has (the port chosen for port 0).
struct BoundListener {
    UniqueFd fd;
    ListenAddress address;
};
// Plain system calls (socket, bind, listen): safe before fork. The error is one line.
std::variant<BoundListener, std::string> bind_listener(const ListenAddress& address);

class HttpEndpoint {
public:
    using Render = std::function<std::string()>;

    // Serves `listener` on a new thread (signals blocked) until destroyed. `render` runs on that
    // thread, once per scrape, and must be safe to call from it.
    HttpEndpoint(BoundListener listener, Render render);
    ~HttpEndpoint(); // stops serving and joins the thread
    HttpEndpoint(const HttpEndpoint&) = delete;
    HttpEndpoint& operator=(const HttpEndpoint&) = delete;

    const ListenAddress& address() const { return address_; }

private:
    struct Impl;
    ListenAddress address_;
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
};

} // namespace rfs::metrics
