// The daemon's side of the control socket: one thread that accepts a connection, checks who is
// calling, reads one JSON request line, answers with one JSON line from the handler, and closes.
// Requests are handled one at a time (they are small: a status, a drain change), except the
// *streamed* ones (add_stream: verify, recall, plan), which walk a tree and may take minutes:
// each gets a thread of its own, sends lines as it goes (progress, findings) and a final answer
// line, so status and drain keep answering meanwhile. At most kMaxStreams run at once.
//
// Only root and the daemon's own user may talk to a mount: the socket's mode (0600, in a 0700
// state_dir) already keeps others out, and the peer's credentials (SO_PEERCRED) are checked
// again, so that loosened permissions never give control away. Others get
// {"ok":false,"error":"permission denied: ..."}.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/common/unique_fd.hpp"

namespace rfs::control {

class ControlServer {
public:
    // Answers a request (an object with "cmd"); it may throw, which answers with the message.
    using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

    // Sends one line of a streamed answer; false once the client is gone (or did not take the
    // line within 5 s) or the server stops: the handler should then end soon.
    using Emit = std::function<bool(const nlohmann::json& line)>;
    // Answers a streamed request: lines through `emit`, then returns the final answer. It may
    // throw, which answers with the message.
    using StreamHandler =
        std::function<nlohmann::json(const nlohmann::json& request, const Emit& emit)>;
    static constexpr unsigned kMaxStreams = 2;

    ControlServer(std::string socket_path, Handler handler);
    // Requests whose "cmd" is `cmd` are streamed. Before start().
    void add_stream(std::string cmd, StreamHandler handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Listens and starts the thread; an empty string, or why it cannot.
    std::string start();
    void stop();

private:
    struct Stream {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };
    void run();
    void serve(UniqueFd& client);
    void start_stream(UniqueFd client, const StreamHandler& handler, nlohmann::json request);
    void reap_streams(bool all);

    std::string path_;
    Handler handler_;
    std::map<std::string, StreamHandler> streams_by_cmd_;
    std::vector<Stream> streams_; // server thread, and stop() once it is joined
    std::atomic<bool> stopping_{false};
    UniqueFd listener_;
    UniqueFd wakeup_; // eventfd: stop() rings it
    std::thread thread_;
};

// The answer to a request the server refuses or cannot parse.
nlohmann::json error_answer(const std::string& message);

} // namespace rfs::control
