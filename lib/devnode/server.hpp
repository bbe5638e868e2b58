// The socket side of riak-devnode: an Asio (io_uring backend) acceptor and one C++20 coroutine
// per connection that reads requests with Beast, answers them strictly in order (keep-alive and
// pipelining as mochiweb does, riak-http.md §9), and applies injected faults.
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

class Server {
public:
    Server(const Config& config, Service& service, Stats& stats);
    ~Server();

    // Binds and listens; false with a one-line `error` (e.g. the port is busy).
    bool listen(std::string& error);
    uint16_t port() const;
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
