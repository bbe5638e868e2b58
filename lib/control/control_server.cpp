#include "lib/control/control_server.hpp"

#include "lib/common/log.hpp"
#include "lib/control/control_socket.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rfs::control {

nlohmann::json error_answer(const std::string& message) {
    return {{"ok", false}, {"error", message}};
}

ControlServer::ControlServer(std::string socket_path, Handler handler)
    : path_(std::move(socket_path)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() {
    stop();
}

std::string ControlServer::start() {
    std::string error;
    listener_.reset(listen_at(path_, &error));
    if (!listener_) return error;
    wakeup_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wakeup_) return std::string("eventfd: ") + std::strerror(errno);
    thread_ = std::thread([this] {
        (void)::pthread_setname_np(::pthread_self(), "riakfs-control"); // for top -H and perf
        run();
    });
    return {};
}

void ControlServer::add_stream(std::string cmd, StreamHandler handler) {
    streams_by_cmd_[std::move(cmd)] = std::move(handler);
}

void ControlServer::stop() {
    if (!thread_.joinable()) return;
    stopping_ = true;
    std::uint64_t one = 1;
    (void)!::write(wakeup_.get(), &one, sizeof one);
    thread_.join();
    reap_streams(true); // their emit() answers false from now on: they end at their next line
    listener_.reset();
    ::unlink(path_.c_str()); // best effort: a long path is replaced at the next start anyway
}

void ControlServer::run() {
    for (;;) {
        pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wakeup_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            RFS_LOG_ERROR("control socket: poll: {}", std::strerror(errno));
            return;
        }
        if (fds[1].revents) return;
        if (!(fds[0].revents & POLLIN)) continue;
        UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client) continue;
        reap_streams(false);
        try {
            serve(client);
        } catch (const std::exception& e) {
            RFS_LOG_WARN("control socket: {}", e.what());
        }
    }
}

void ControlServer::reap_streams(bool all) {
    for (auto it = streams_.begin(); it != streams_.end();) {
        if (all || it->done->load()) {
            it->thread.join();
            it = streams_.erase(it);
        } else {
            ++it;
        }
    }
}

void ControlServer::start_stream(UniqueFd client, const StreamHandler& handler,
                                 nlohmann::json request) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    auto fd = std::make_shared<UniqueFd>(std::move(client));
    std::thread thread([this, fd, done, &handler, request = std::move(request)] {
        auto line = [fd](const nlohmann::json& reply) {
            return write_all(fd->get(),
                             reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                                 "\n");
        };
        bool client_gone = false;
        Emit emit = [&](const nlohmann::json& reply) {
            if (client_gone || stopping_) return false;
            client_gone = !line(reply);
            return !client_gone;
        };
        nlohmann::json answer;
        try {
            answer = handler(request, emit);
        } catch (const std::exception& e) {
            answer = error_answer(e.what());
        }
        if (!client_gone) line(answer);
        done->store(true);
    });
    streams_.push_back(Stream{std::move(thread), std::move(done)});
}

void ControlServer::serve(UniqueFd& owned) {
    const int client = owned.get();
    // A client that sends nothing must not hold the socket: 5 s for the request, 5 s to take
    // the answer.
    timeval timeout{5, 0};
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    auto answer = [client](const nlohmann::json& reply) {
        write_all(client,
                  reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    };
    // The request is read first, refused or not: closing on unread bytes would reset the
    // connection, and the caller would never see why.
    std::string line;
    const bool got_line = read_line(client, &line);
    ucred peer{};
    socklen_t len = sizeof peer;
    if (::getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0)
        return answer(error_answer("cannot tell who is calling"));
    if (peer.uid != 0 && peer.uid != ::geteuid()) {
        RFS_LOG_WARN("control socket: refused a request from uid {} (pid {})", peer.uid, peer.pid);
        return answer(error_answer(
            "permission denied: only root (or the daemon's user) may control this mount"));
    }
    if (!got_line) return answer(error_answer("no request line received"));
    nlohmann::json request;
    try {
        request = nlohmann::json::parse(line);
    } catch (const std::exception&) {
        return answer(error_answer("the request is not JSON"));
    }
    if (!request.is_object() || !request.contains("cmd") || !request["cmd"].is_string())
        return answer(error_answer("the request needs a \"cmd\" string"));
    if (auto it = streams_by_cmd_.find(request["cmd"].get<std::string>());
        it != streams_by_cmd_.end()) {
        reap_streams(false);
        if (streams_.size() >= kMaxStreams)
            return answer(error_answer("busy: " + std::to_string(streams_.size()) +
                                       " verify, recall or plan requests are running; try again "
                                       "when one ends"));
        // The answer may take long: no send timeout beyond the 5 s per line.
        return start_stream(std::move(owned), it->second, std::move(request));
    }
    try {
        answer(handler_(request));
    } catch (const std::exception& e) {
        answer(error_answer(e.what()));
    }
}

} // namespace rfs::control
