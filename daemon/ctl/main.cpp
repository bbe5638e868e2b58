// riakfsctl: controls a running riakfs mount through its control socket (README "riakfsctl").
//
//   riakfsctl status MOUNTPOINT [--json] [--watch | --once] [--interval S] [--state-dir DIR]
//   riakfsctl drain MOUNTPOINT [--pause | --resume] [--rate SIZE] [--files N] [--state-dir DIR]
//
// Exit status: 0 done, 1 an error (one line on stderr: not a riakfs mount, daemon not answering,
// permission denied, refused by the daemon), 2 a usage error.
#include "daemon/ctl/status_view.hpp"
#include "lib/common/mount_options.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/control/control_socket.hpp"

#include <nlohmann/json.hpp>

#include <fmt/core.h>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using json = nlohmann::json;

const char* kUsage = R"(usage: riakfsctl COMMAND MOUNTPOINT [options]

Controls a running riakfs mount (mode shadow, migrate or move) through its control socket.
Needs root (or the user the daemon runs as).

commands:
  status MOUNTPOINT       mode, Riak nodes and their health, files and bytes migrated,
                          released and remaining (from the drain's walk), copy rates, queue
                          depth, recent errors
      --json              the status as one JSON object (schema in README "riakfsctl")
      --watch             refresh every --interval seconds until interrupted (the default on a
                          terminal, with a progress bar and ETA; piped: a block of plain lines,
                          or one JSON line with --json, per refresh)
      --once              print once and exit (the default when stdout is not a terminal)
      --interval S        seconds between refreshes (default 1)
  drain MOUNTPOINT        change the background drain, at once, without remounting:
      --pause             stop handing files over (copies in flight finish)
      --resume            continue a paused drain, or start a pass when it is off or finished
      --rate SIZE         at most SIZE bytes a second (e.g. 50M, 512K; 0 = unlimited)
      --files N           at most N files a second (0 = unlimited)

options for every command:
  --state-dir DIR         the mount's state_dir, when riakfsctl cannot find it from MOUNTPOINT
                          (see README: /run/riakfs, then the default state_dir of SOURCE)
  -h, --help              this text

exit status: 0 done; 1 error (not a riakfs mount, daemon not answering, permission denied,
refused); 2 bad usage.
)";

[[noreturn]] void die(const std::string& message, int status = 1) {
    std::fprintf(stderr, "riakfsctl: %s\n", message.c_str());
    std::exit(status);
}

[[noreturn]] void usage_error(const std::string& message) {
    die(message + " (see riakfsctl --help)", 2);
}

std::string unescape_mountinfo(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 3 < text.size() &&
            std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
            std::isdigit(static_cast<unsigned char>(text[i + 2])) &&
            std::isdigit(static_cast<unsigned char>(text[i + 3]))) {
            out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 +
                                     (text[i + 3] - '0'));
            i += 3;
        } else {
            out += text[i];
        }
    }
    return out;
}

struct Mount {
    std::string type;   // "fuse.riakfs", "ext4", ...
    std::string source; // the mount's source field (riakfs: SOURCE's absolute path)
};

// The topmost mount at exactly `dir` (later lines of mountinfo are stacked later).
std::optional<Mount> mount_at(const std::string& dir) {
    std::ifstream info("/proc/self/mountinfo");
    std::string line;
    std::optional<Mount> found;
    while (std::getline(info, line)) {
        std::istringstream fields(line);
        std::string id, parent, devno, root, mount_point;
        fields >> id >> parent >> devno >> root >> mount_point;
        if (unescape_mountinfo(mount_point) != dir) continue;
        size_t dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream rest(line.substr(dash + 3));
        Mount m;
        rest >> m.type >> m.source;
        m.source = unescape_mountinfo(m.source);
        found = m;
    }
    return found;
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
    if (!state_dir.empty()) return rfs::control::socket_path(state_dir);
    const std::string mountpoint = absolute_mountpoint(given);
    auto mount = mount_at(mountpoint);
    if (!mount) die("'" + given + "' is not a riakfs mount (nothing is mounted there)");
    if (mount->type != "fuse.riakfs")
        die("'" + given + "' is not a riakfs mount (it is " + mount->type + ")");
    char target[PATH_MAX];
    const std::string link = rfs::control::registry_path(mountpoint);
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n > 0) return std::string(target, static_cast<size_t>(n));
    const std::string fallback = rfs::control::socket_path(rfs::default_state_dir(mount->source));
    struct stat st;
    if (::stat(fallback.c_str(), &st) == 0 || errno == EACCES) return fallback;
    die("cannot find the control socket of '" + given + "': it is not registered in " +
        std::string(rfs::control::kRegistryDir) + " and the default state_dir of " + mount->source +
        " has none (mode=passthrough mounts have none; with -o state_dir=, give " +
        "--state-dir DIR)");
}

json ask(const std::string& given, const std::string& socket, const json& request) {
    rfs::UniqueFd fd(rfs::control::connect_to(socket));
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
    std::string line;
    // A failed write may still have an answer waiting (a refusal sent before the request was
    // read): it is read either way.
    (void)rfs::control::write_all(fd.get(), request.dump() + "\n");
    if (!rfs::control::read_line(fd.get(), &line)) {
        int err = errno;
        die("the riakfs daemon of '" + given + "' is not answering (" +
            (err == EAGAIN || err == EWOULDBLOCK ? std::string("no answer within 10 s")
             : err == 0                          ? std::string("it closed the connection")
                                                 : std::string(std::strerror(err))) +
            ")");
    }
    json answer;
    try {
        answer = json::parse(line);
    } catch (const std::exception&) {
        die("the daemon of '" + given + "' answered something that is not JSON");
    }
    if (!answer.is_object() || !answer.value("ok", false))
        die(answer.is_object() && answer.contains("error") && answer["error"].is_string()
                ? answer["error"].get<std::string>()
                : std::string("the daemon refused the request"));
    return answer;
}

// "50M" -> 52428800; binary K/M/G suffixes, as riakfs's -o options.
std::optional<std::uint64_t> parse_rate(std::string text) {
    if (text.empty()) return std::nullopt;
    std::uint64_t unit = 1;
    switch (std::toupper(static_cast<unsigned char>(text.back()))) {
    case 'K':
        unit = 1 << 10;
        break;
    case 'M':
        unit = 1 << 20;
        break;
    case 'G':
        unit = 1 << 30;
        break;
    default:
        break;
    }
    if (unit != 1) text.pop_back();
    if (text.empty() || text.size() > 12 ||
        text.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    return std::stoull(text) * unit;
}

int terminal_width() {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
    return 80;
}

int status_command(const std::string& given, const std::string& socket, bool as_json, int watch,
                   double interval) {
    const bool tty = ::isatty(STDOUT_FILENO) != 0;
    const bool live = watch > 0 || (watch == 0 && tty && !as_json);
    for (bool first = true;; first = false) {
        json status = ask(given, socket, {{"cmd", "status"}})["status"];
        if (as_json) {
            std::printf("%s\n", status.dump(live ? -1 : 2).c_str());
        } else if (live && tty) {
            // Home and clear, then the whole view: one write, so it never flickers half drawn.
            std::string view =
                "\x1b[H\x1b[2J" + rfs::ctl::render_status(status, true, terminal_width());
            std::fputs(view.c_str(), stdout);
        } else {
            if (!first) std::fputs("\n", stdout);
            std::fputs(rfs::ctl::render_status(status, false).c_str(), stdout);
        }
        std::fflush(stdout);
        if (!live) return 0;
        std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    }
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    for (const auto& a : args)
        if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        }
    if (args.empty()) usage_error("need a command: status or drain");
    const std::string command = args[0];
    if (command != "status" && command != "drain") usage_error("unknown command '" + command + "'");
    std::string mountpoint, state_dir;
    bool as_json = false, pause = false, resume = false;
    int watch = 0; // 1 --watch, -1 --once, 0 by terminal
    double interval = 1;
    std::optional<std::uint64_t> rate, files;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= args.size()) usage_error(a + " needs a value");
            return args[++i];
        };
        const bool status = command == "status";
        if (a == "--state-dir") {
            state_dir = value();
        } else if (status && a == "--json") {
            as_json = true;
        } else if (status && a == "--watch") {
            watch = 1;
        } else if (status && a == "--once") {
            watch = -1;
        } else if (status && a == "--interval") {
            std::string v = value();
            char* end = nullptr;
            interval = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end || !(interval >= 0.1 && interval <= 3600))
                usage_error("--interval needs seconds from 0.1 to 3600, not '" + v + "'");
        } else if (!status && a == "--pause") {
            pause = true;
        } else if (!status && a == "--resume") {
            resume = true;
        } else if (!status && a == "--rate") {
            std::string v = value();
            rate = parse_rate(v);
            if (!rate)
                usage_error("--rate needs bytes per second (e.g. 50M, 0 = unlimited), not '" + v +
                            "'");
        } else if (!status && a == "--files") {
            std::string v = value();
            files = parse_rate(v);
            if (!files || v.find_first_not_of("0123456789") != std::string::npos)
                usage_error("--files needs files per second (e.g. 200, 0 = unlimited), not '" + v +
                            "'");
        } else if (a.starts_with("-")) {
            usage_error("unknown option '" + a + "' for " + command);
        } else if (mountpoint.empty()) {
            mountpoint = a;
        } else {
            usage_error("unexpected argument '" + a + "'");
        }
    }
    if (mountpoint.empty()) usage_error(command + " needs a MOUNTPOINT");
    if (command == "drain" && !pause && !resume && !rate && !files)
        usage_error("drain needs --pause, --resume, --rate SIZE or --files N");
    if (pause && resume) usage_error("--pause and --resume together");

    const std::string socket = find_socket(mountpoint, state_dir);
    if (command == "status") return status_command(mountpoint, socket, as_json, watch, interval);

    json request = {{"cmd", "drain"}};
    if (pause) request["pause"] = true;
    if (resume) request["resume"] = true;
    if (rate) request["bytes_per_second"] = *rate;
    if (files) request["files_per_second"] = *files;
    json answer = ask(mountpoint, socket, request);
    const json& d = answer["drain"];
    auto limit = [](const json& v, const char* unit, bool bytes) {
        if (!v.is_number() || v.get<std::uint64_t>() == 0) return std::string("unlimited");
        return (bytes ? rfs::ctl::format_bytes(v.get<double>()) : v.dump()) + unit;
    };
    std::printf("drain %s: %s, limits %s and %s\n",
                pause    ? "paused"
                : resume ? "resumed"
                         : "limits changed",
                resume && (d.value("state", "") == "off" || d.value("state", "") == "finished")
                    ? "a new pass starts"
                    : d.value("state", "?").c_str(),
                limit(d["limits"]["bytes_per_second"], "/s", true).c_str(),
                limit(d["limits"]["files_per_second"], " files/s", false).c_str());
    return 0;
}
