// The socket side of riak-devnode: Asio (io_uring backend) acceptors and one C++20 coroutine
// per connection that reads requests with Beast, answers them strictly in order (keep-alive and
// pipelining as mochiweb does, §9 of lib/devnode/README.md), and applies injected faults.
//
// Two listeners: the Riak one (--listen) serves Riak's HTTP API, and the optional admin one
// (--admin) serves only the /devnode/ routes. The admin listener is never refused, delayed or
// otherwise faulted, so a test can always switch faults off again.
//
// Request bodies are bounded: one whose Content-Length exceeds object.size.maximum is refused
// before it is read, a chunked one as soon as it grows past it, and every body must arrive
// within Config::body_timeout_ms, so partial bodies cannot hold connection slots for good.
//
// Threads: `run()` drives one io_context from Config::threads threads. Each connection lives on
// its own strand; Service and Faults are shared and thread safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "lib/devnode/faults.hpp"
#include "lib/devnode/service.hpp"

namespace rfs::devnode {

// True for 127.0.0.0/8, ::1 and ::ffff:127.x.y.z; false for anything else, unparsable included.
bool is_loopback_address(const std::string& host);

class Server {
public:
    Server(const Config& config, Service& service, Stats& stats);
    ~Server();

    // Binds and listens (both listeners); false with a one-line `error` (e.g. the port is busy).
    bool listen(std::string& error);
    uint16_t port() const;
    uint16_t admin_port() const; // 0 without --admin
    // Serves until stop() or SIGINT/SIGTERM.
    void run();
    void stop();

    Faults& faults() { return faults_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    Faults faults_;
};

} // namespace rfs::devnode
