#include "daemon/ctl/connection.hpp"

#include "lib/common/log.hpp"
#include "lib/common/mount_options.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/control/control_socket.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace rfs::ctl {

using json = nlohmann::json;

namespace {

int g_error_status = 1;

} // namespace

void set_error_status(int status) {
    g_error_status = status;
}

[[noreturn]] void die(const std::string& message) {
    // The message may quote a --riak URL: no credentials (README, "Metrics and logs").
    std::fprintf(stderr, "riakfsctl: %s\n", log::redact_credentials(message).c_str());
    std::exit(g_error_status);
}

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "riakfsctl: %s (see riakfsctl --help)\n", message.c_str());
    std::exit(2);
}

// MOUNTPOINT as the mount table names it. A dead mount (daemon gone) cannot be stat'ed: its
// path is then made absolute without resolving symlinks.
std::string absolute_mountpoint(const std::string& path) {
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved)) return resolved;
    if (errno == ENOENT) die("MOUNTPOINT '" + path + "' does not exist");
    std::string normal = std::filesystem::absolute(path).lexically_normal().string();
    while (normal.size() > 1 && normal.back() == '/')
        normal.pop_back();
    return normal;
}

// Where the control socket of the mount at `mountpoint` is; one line and exit 1 when there is
// none to find.
std::string find_socket(const std::string& given, const std::string& state_dir) {
    if (!state_dir.empty()) return control::socket_path(state_dir);
    const std::string mountpoint = absolute_mountpoint(given);
    auto mount = topmost_mount(mountpoint);
    if (!mount) die("'" + given + "' is not a riakfs mount (nothing is mounted there)");
    if (mount->type != "fuse.riakfs")
        die("'" + given + "' is not a riakfs mount (it is " + mount->type + ")");
    char target[PATH_MAX];
    const std::string link = control::registry_path(mountpoint);
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n > 0) return std::string(target, static_cast<size_t>(n));
    const std::string fallback = control::socket_path(default_state_dir(mount->source));
    struct stat st;
    if (::stat(fallback.c_str(), &st) == 0 || errno == EACCES) return fallback;
    die("cannot find the control socket of '" + given + "': it is not registered in " +
        std::string(control::kRegistryDir) + " and the default state_dir of " + mount->source +
        " has none (mode=passthrough mounts have none; with -o state_dir=, give " +
        "--state-dir DIR)");
}

namespace {

UniqueFd connect_or_die(const std::string& given, const std::string& socket) {
    UniqueFd fd(control::connect_to(socket));
    if (!fd) {
        int err = errno;
        if (err == EACCES || err == EPERM)
            die("permission denied: cannot reach the control socket of '" + given +
                "' (riakfsctl needs root)");
        die("the riakfs daemon of '" + given + "' is not answering (" + socket + ": " +
            std::strerror(err) + ")");
    }
    timeval timeout{10, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    return fd;
}

json read_answer(const std::string& given, int fd) {
    std::string line;
    if (!control::read_line(fd, &line)) {
        int err = errno;
        die("the riakfs daemon of '" + given + "' is not answering (" +
            (err == EAGAIN || err == EWOULDBLOCK ? std::string("no answer within 10 s")
             : err == 0                          ? std::string("it closed the connection")
                                                 : std::string(std::strerror(err))) +
            ")");
    }
    try {
        return json::parse(line);
    } catch (const std::exception&) {
        die("the daemon of '" + given + "' answered something that is not JSON");
    }
}

json checked(json answer) {
    if (!answer.is_object() || !answer.value("ok", false))
        die(answer.is_object() && answer.contains("error") && answer["error"].is_string()
                ? answer["error"].get<std::string>()
                : std::string("the daemon refused the request"));
    return answer;
}

} // namespace

json ask(const std::string& given, const std::string& socket, const json& request) {
    UniqueFd fd = connect_or_die(given, socket);
    // A failed write may still have an answer waiting (a refusal sent before the request was
    // read): it is read either way.
    (void)control::write_all(fd.get(), request.dump() + "\n");
    return checked(read_answer(given, fd.get()));
}

json ask_stream(const std::string& given, const std::string& socket, const json& request,
                const std::function<void(const json&)>& on_event) {
    UniqueFd fd = connect_or_die(given, socket);
    (void)control::write_all(fd.get(), request.dump() + "\n");
    // Event lines come at least four times a second while the daemon works: 10 s of silence
    // means it is stuck or gone.
    for (;;) {
        json line = read_answer(given, fd.get());
        if (line.is_object() && line.contains("event")) {
            on_event(line);
            continue;
        }
        return checked(std::move(line));
    }
}

} // namespace rfs::ctl
