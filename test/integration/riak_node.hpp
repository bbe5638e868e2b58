// A riak-devnode process for the Riak-mode integration tests, and plain HTTP reads of it with
// curl, as any other Riak client would read the objects riakfs writes.
#pragma once

#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace riakfs::it {

struct HttpReply {
    int status = 0;
    std::string headers; // as received, lower-cased
    std::string body;
    bool has_header(const std::string& lower_line_start) const {
        return headers.find(lower_line_start) != std::string::npos;
    }
};

class RiakNode {
public:
    // Starts riak-devnode ($DEVNODE_BIN) on a free port (or `port`) with its data in `dir`, and
    // `extra_args` on its command line (e.g. {"--delete-mode", "immediate"}).
    explicit RiakNode(std::string dir, unsigned port = 0, std::vector<std::string> extra_args = {})
        : dir_(std::move(dir)), extra_args_(std::move(extra_args)) {
        start(port);
    }
    ~RiakNode() { stop(); }
    RiakNode(const RiakNode&) = delete;
    RiakNode& operator=(const RiakNode&) = delete;

    unsigned port() const { return port_; }
    // With --admin 127.0.0.1:0 among the extra arguments: the admin listener's port (faults).
    unsigned admin_port() const { return admin_port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
    // Starts again on the same port and data.
    void start_again() { start(port_); }
    // Stops, then starts on the same port and data with other extra arguments (e.g. another
    // TLS certificate).
    void restart_with(std::vector<std::string> extra_args) {
        stop();
        extra_args_ = std::move(extra_args);
        start(port_);
    }

    // GET of bucket/key (both already percent-encoded for the URL).
    HttpReply get(const std::string& path) const {
        std::string head = dir_ + "/.curl-head", body = dir_ + "/.curl-body";
        ProcResult r =
            run_cmd({"curl", "-s", "-D", head, "-o", body, url() + path}, std::chrono::seconds(20));
        HttpReply reply;
        if (!r.exited || r.exit_code != 0) return reply;
        reply.headers = slurp(head);
        for (auto& c : reply.headers)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        reply.body = slurp(body);
        std::istringstream status_line(reply.headers);
        std::string http;
        status_line >> http >> reply.status;
        return reply;
    }
    // Waits up to `limit` for GET `path` to answer 200.
    HttpReply wait_for(const std::string& path,
                       std::chrono::seconds limit = std::chrono::seconds(60)) const {
        auto deadline = std::chrono::steady_clock::now() + limit;
        HttpReply reply;
        while (std::chrono::steady_clock::now() < deadline) {
            reply = get(path);
            if (reply.status == 200) return reply;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return reply;
    }

    // The keys of `bucket` (GET /buckets/B/keys?keys=true), as listed; {"<error>"} when the
    // listing fails. Keys holding '"' or '\\' are not expected in these tests.
    std::set<std::string> keys(const std::string& bucket) const {
        HttpReply reply = get("/buckets/" + url_key_segment(bucket) + "/keys?keys=true");
        if (reply.status != 200) return {"<error>"};
        std::set<std::string> out;
        auto at = reply.body.find("\"keys\":[");
        if (at == std::string::npos) return {"<error>"};
        at += 8;
        while (at < reply.body.size() && reply.body[at] != ']') {
            auto open = reply.body.find('"', at);
            if (open == std::string::npos) break;
            auto close = reply.body.find('"', open + 1);
            if (close == std::string::npos) break;
            out.insert(reply.body.substr(open + 1, close - open - 1));
            at = close + 1;
        }
        return out;
    }

private:
    static std::string url_key_segment(const std::string& name);
    static std::string slurp(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }

    // Starts riak-devnode on `port` (0: any free one). A restart on the port a killed node had
    // can find it still in use for a moment ("Address already in use": test_tls, in 4 of 12
    // runs, under a mount whose clients kept connecting to it; the port came from the ephemeral
    // range, which a real Riak's 8098 is not). So a restart (a port given) is tried again for a
    // few seconds, each failed attempt reported as a warning, and a failed start says devnode's
    // own message (it went to a log in the test's temporary directory, lost with it).
    void start(unsigned port) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(port ? 10 : 0);
        std::string said;
        while (!try_start(port, &said)) {
            INFO("riak-devnode did not start: " << said);
            REQUIRE((port != 0 && std::chrono::steady_clock::now() < deadline));
            WARN("riak-devnode did not start on port " << port << ", trying again: " << said);
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    }

    // One start: true once devnode listens; false (its stderr in *said) when it exited first.
    bool try_start(unsigned port, std::string* said) {
        const char* bin = std::getenv("DEVNODE_BIN");
        REQUIRE(bin != nullptr);
        int pipefd[2];
        REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
        std::string listen = "127.0.0.1:" + std::to_string(port);
        std::string log = dir_ + "/devnode.log";
        const auto log_before = slurp(log).size();
        std::vector<std::string> argv = {bin, "--listen", listen, "--data", dir_ + "/data"};
        argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
        std::vector<char*> cargv;
        for (auto& a : argv)
            cargv.push_back(a.data());
        cargv.push_back(nullptr);
        std::fflush(nullptr);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::dup2(pipefd[1], 1);
            int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(err, 2);
            ::execv(cargv[0], cargv.data());
            ::_exit(127);
        }
        ::close(pipefd[1]);
        auto read_line = [&] {
            std::string line;
            char c;
            while (::read(pipefd[0], &c, 1) == 1 && c != '\n')
                line += c;
            return line;
        };
        std::string line = read_line();
        if (line.find("listening on") == std::string::npos) {
            ::close(pipefd[0]);
            int status;
            ::waitpid(pid_, &status, 0); // its stdout closed: it is exiting
            pid_ = -1;
            *said = slurp(log).substr(log_before);
            return false;
        }
        port_ = static_cast<unsigned>(std::stoul(line.substr(line.rfind(':') + 1)));
        if (std::find(extra_args_.begin(), extra_args_.end(), "--admin") != extra_args_.end()) {
            std::string admin = read_line();
            INFO("devnode said: " << admin);
            REQUIRE(admin.find("admin routes on") != std::string::npos);
            admin_port_ = static_cast<unsigned>(std::stoul(admin.substr(admin.rfind(':') + 1)));
        }
        ::close(pipefd[0]);
        return true;
    }

    std::string dir_;
    std::vector<std::string> extra_args_;
    pid_t pid_ = -1;
    unsigned port_ = 0;
    unsigned admin_port_ = 0;
};

// "dir/a b" -> "dir%2Fa%20b": a key as a URL path segment.
inline std::string url_key(const std::string& key) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : key) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

inline std::string RiakNode::url_key_segment(const std::string& name) {
    return url_key(name);
}

// The HTTP path of the object at `key` in `bucket` (default type), for RiakNode::get and curl.
inline std::string object_path(const std::string& key, const std::string& bucket = "riakfs") {
    return "/buckets/" + bucket + "/keys/" + url_key(key);
}

// The attribute mode=move puts on a released placeholder in SOURCE.
inline constexpr const char* kReleasedMarker = "trusted.riakfs.released";

// The marker is on the local file `path` (whatever its data).
inline bool has_marker(const std::string& path) {
    return ::getxattr(path.c_str(), kReleasedMarker, nullptr, 0) > 0;
}

// The local file is a released placeholder: the marker is on it and it holds no data.
inline bool is_released(const std::string& src_path) {
    if (!has_marker(src_path)) return false;
    Fd fd(::open(src_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    return ::lseek(fd.get(), 0, SEEK_DATA) < 0 && errno == ENXIO;
}

// Waits (up to 60 s) until is_released(src_path) is `want`.
inline bool wait_released(const std::string& src_path, bool want = true) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        if (is_released(src_path) == want) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

} // namespace riakfs::it
