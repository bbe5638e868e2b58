// Test support for riak-devnode: starts the real binary (path from $DEVNODE_BIN) on a free port
// with a temporary data directory, and a small synchronous Beast HTTP/1.1 client.
// Single-threaded test code; one Client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

namespace rfs::devnode::test {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
    int status = 0;
    Headers headers;
    std::string body;
    bool keep_alive = true;

    std::optional<std::string> header(std::string_view name) const;
    size_t count(std::string_view name) const;
};

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Whether a test node serves the /devnode/ admin routes (on their own listener, see admin_port()).
enum class AdminRoutes { on, off };

class Devnode {
public:
    // Starts riak-devnode with `args` (plus --listen 127.0.0.1:0, --data and, with
    // AdminRoutes::on, --admin 127.0.0.1:0) and waits for it.
    explicit Devnode(std::vector<std::string> args = {}, std::string data_dir = {},
                     AdminRoutes admin = AdminRoutes::on);
    ~Devnode();
    Devnode(const Devnode&) = delete;
    Devnode& operator=(const Devnode&) = delete;

    uint16_t port() const { return port_; }
    uint16_t admin_port() const { return admin_port_; } // the /devnode/ routes; 0 when off
    const std::string& data_dir() const { return data_dir_; }
    void kill9();
    // SIGTERM and wait; returns the exit status (-1 when killed by a signal or after 10 s).
    int terminate();
    void restart(); // kill9() and start again on the same data directory (new port)
    std::string stderr_text() const;

    static std::string binary();
    // Runs the binary to completion (it is expected to fail); returns exit status and stderr.
    static std::pair<int, std::string> run_to_exit(const std::vector<std::string>& args);

private:
    void start();
    std::vector<std::string> args_;
    AdminRoutes admin_;
    std::optional<TempDir> owned_dir_;
    std::string data_dir_;
    std::string stderr_path_;
    int pid_ = -1;
    uint16_t port_ = 0;
    uint16_t admin_port_ = 0;
};

class Client {
public:
    explicit Client(uint16_t port) : Client("127.0.0.1", port) {}
    // Any HTTP node (host name or address), e.g. a real Riak node for the conformance test.
    Client(std::string host, uint16_t port);
    HttpResponse request(std::string_view method, std::string_view target, Headers headers = {},
                         std::string body = {});
    HttpResponse get(std::string_view target, Headers h = {}) { return request("GET", target, h); }
    HttpResponse put(std::string_view target, std::string body,
                     std::string content_type = "text/plain", Headers h = {});
    void close();

    // Raw access for pipelining tests.
    void connect();
    void write_raw(std::string_view bytes);
    HttpResponse read_response(bool head = false);
    // True once response bytes (or the server's close) can be read without blocking; false when
    // nothing came within `timeout`. Lets a test fail instead of hanging on a silent server.
    bool wait_readable(std::chrono::milliseconds timeout);

private:
    std::string host_;
    uint16_t port_;
    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::socket sock_;
    boost::beast::flat_buffer buf_;
};

// Milliseconds from `t0` to now.
inline long ms_since(std::chrono::steady_clock::time_point t0) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count());
}

// True when a socket can bind to ::1 (containers may have IPv6 switched off).
bool has_ipv6_loopback();

// Splits concatenated JSON objects (keys=stream bodies) into their parts.
std::vector<std::string> split_json_objects(std::string_view s);

} // namespace rfs::devnode::test
