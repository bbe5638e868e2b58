// The daemon's side of the control socket: one thread that accepts a connection, checks who is
// calling, reads one JSON request line, answers with one JSON line from the handler, and closes.
// Requests are handled one at a time (they are small: a status, a drain change).
//
// Only root and the daemon's own user may talk to a mount: the socket's mode (0600, in a 0700
// state_dir) already keeps others out, and the peer's credentials (SO_PEERCRED) are checked
// again, so that loosened permissions never give control away. Others get
// {"ok":false,"error":"permission denied: ..."}.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "lib/common/unique_fd.hpp"

namespace rfs::control {

class ControlServer {
public:
    // Answers a request (an object with "cmd"); it may throw, which answers with the message.
    using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

    ControlServer(std::string socket_path, Handler handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Listens and starts the thread; an empty string, or why it cannot.
    std::string start();
    void stop();

private:
    void run();
    void serve(int client);

    std::string path_;
    Handler handler_;
    UniqueFd listener_;
    UniqueFd wakeup_; // eventfd: stop() rings it
    std::thread thread_;
};

// The answer to a request the server refuses or cannot parse.
nlohmann::json error_answer(const std::string& message);

} // namespace rfs::control
