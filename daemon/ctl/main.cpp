// riakfsctl: controls a running riakfs mount through its control socket (README "riakfsctl").
//
//   riakfsctl status MOUNTPOINT [--json] [--watch | --once] [--interval S] [--state-dir DIR]
//   riakfsctl drain MOUNTPOINT [--pause | --resume] [--rate SIZE] [--files N] [--state-dir DIR]
//
// Exit status: 0 done, 1 an error (one line on stderr: not a riakfs mount, daemon not answering,
// permission denied, refused by the daemon), 2 a usage error.
#include "daemon/ctl/connection.hpp"
#include "daemon/ctl/offline_migrate.hpp"
#include "daemon/ctl/status_view.hpp"
#include "daemon/ctl/tree_commands.hpp"
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
using rfs::ctl::ask;
using rfs::ctl::die;
using rfs::ctl::find_socket;
using rfs::ctl::usage_error;

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
  verify MOUNTPOINT [PATH]
                          compare the files under PATH (default: all) with their Riak copies:
                          size, SHA-256 (Riak's bytes are read and hashed), mode, owner, mtime,
                          and each directory's namespace record; released files: the object
                          the marker names, its version and checksum. One line per difference
                          on stdout, progress on a terminal's stderr.
      --repair            queue what differs again (files copied again, records rewritten)
      --json              one JSON object per difference, then {"summary":{...}}
                          exit status: 0 all agree, 1 differences, 2 errors (Riak unreachable,
                          unreadable files) or bad usage
  recall MOUNTPOINT PATH  bring the released files under PATH back to local disk, byte for
                          byte, and keep everything under PATH local from now on (never
                          released again; still copied to Riak)
      --delete-from-riak  then delete their Riak copies and state records, and keep PATH out of
                          Riak from now on (no copies, no namespace entries)
                          exit status: 0 all local, 1 some files could not be brought back
  plan SOURCE|MOUNTPOINT  dry run: files and bytes the layout maps, what Riak holds already,
                          what would be sent, the local space mode=move would free, and the
                          time at the current copy rate
      --rate SIZE         the time at SIZE bytes a second instead
      --config FILE       SOURCE only: the mapping rules (as -o config=)
      --bucket B          SOURCE only: the default layout's bucket (default riakfs)
      --bucket-type T     SOURCE only: its bucket type
      --json              the plan as one JSON object
  migrate SOURCE --riak URL[,URL...]
                          the migration without a mount: copies every file the layout maps
                          into Riak (copy, read back, verify; never released) with the
                          namespace records, recording it in the state_dir a mount of SOURCE
                          uses, so that the mount then sends nothing again. A progress line on
                          a terminal; waits out Riak failures (Ctrl-C stops; run it again)
      --state-dir DIR     the state_dir (default: the default state_dir of SOURCE)
      --config FILE, --bucket B, --bucket-type T
                          the layout, as for plan (mount with the same options)
      --riak-ca FILE, --riak-cert FILE, --riak-key FILE, --riak-credentials FILE
                          a secured cluster (https:// nodes), as the mount's riak_ca=,
                          riak_cert=, riak_key= and riak_credentials= options
                          exit status: 0 every mapped file copied, 1 otherwise

  PATH is relative to MOUNTPOINT, or an absolute path under it.

options for every command:
  --state-dir DIR         the mount's state_dir, when riakfsctl cannot find it from MOUNTPOINT
                          (see README: /run/riakfs, then the default state_dir of SOURCE)
  -h, --help              this text

exit status: 0 done; 1 error (not a riakfs mount, daemon not answering, permission denied,
refused); 2 bad usage (verify: see above).
)";

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
    if (args.empty()) usage_error("need a command: status, drain, verify, recall, plan or migrate");
    const std::string command = args[0];
    const bool status = command == "status", drain = command == "drain",
               verify = command == "verify", recall = command == "recall", plan = command == "plan",
               migrate = command == "migrate";
    if (!status && !drain && !verify && !recall && !plan && !migrate)
        usage_error("unknown command '" + command + "'");
    // verify's exit status 1 means "differences": its errors are 2.
    if (verify) rfs::ctl::set_error_status(2);
    std::string mountpoint, state_dir, path, config, bucket, bucket_type, riak_urls;
    rfs::riak::SecurityOptions riak_security;
    bool as_json = false, pause = false, resume = false, repair = false, delete_from_riak = false;
    bool has_path = false;
    int watch = 0; // 1 --watch, -1 --once, 0 by terminal
    double interval = 1;
    std::optional<std::uint64_t> rate, files;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= args.size()) usage_error(a + " needs a value");
            return args[++i];
        };
        if (a == "--state-dir") {
            state_dir = value();
        } else if ((status || verify || plan) && a == "--json") {
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
        } else if (drain && a == "--pause") {
            pause = true;
        } else if (drain && a == "--resume") {
            resume = true;
        } else if ((drain || plan) && a == "--rate") {
            std::string v = value();
            rate = parse_rate(v);
            if (!rate)
                usage_error("--rate needs bytes per second (e.g. 50M, 0 = unlimited), not '" + v +
                            "'");
        } else if (drain && a == "--files") {
            std::string v = value();
            files = parse_rate(v);
            if (!files || v.find_first_not_of("0123456789") != std::string::npos)
                usage_error("--files needs files per second (e.g. 200, 0 = unlimited), not '" + v +
                            "'");
        } else if (verify && a == "--repair") {
            repair = true;
        } else if (recall && a == "--delete-from-riak") {
            delete_from_riak = true;
        } else if ((plan || migrate) && a == "--config") {
            config = value();
        } else if ((plan || migrate) && a == "--bucket") {
            bucket = value();
        } else if ((plan || migrate) && a == "--bucket-type") {
            bucket_type = value();
        } else if (migrate && a == "--riak") {
            riak_urls = value();
        } else if (migrate && a == "--riak-ca") {
            riak_security.tls.ca_file = value();
        } else if (migrate && a == "--riak-cert") {
            riak_security.tls.cert_file = value();
        } else if (migrate && a == "--riak-key") {
            riak_security.tls.key_file = value();
        } else if (migrate && a == "--riak-credentials") {
            riak_security.credentials_file = value();
        } else if (a.starts_with("-")) {
            usage_error("unknown option '" + a + "' for " + command);
        } else if (mountpoint.empty()) {
            mountpoint = a;
        } else if ((verify || recall) && !has_path) {
            path = a;
            has_path = true;
        } else {
            usage_error("unexpected argument '" + a + "'");
        }
    }
    if (mountpoint.empty())
        usage_error(command + (plan      ? " needs a SOURCE or a MOUNTPOINT"
                               : migrate ? " needs a SOURCE"
                                         : " needs a MOUNTPOINT"));
    if (drain && !pause && !resume && !rate && !files)
        usage_error("drain needs --pause, --resume, --rate SIZE or --files N");
    if (pause && resume) usage_error("--pause and --resume together");
    if (recall && !has_path)
        usage_error("recall needs a PATH (the mount itself is '" + mountpoint + "')");
    if (!config.empty() && !bucket.empty()) usage_error("--config or --bucket, not both");

    if (migrate) {
        if (riak_urls.empty()) usage_error("migrate needs --riak URL[,URL...]");
        rfs::ctl::MigrateArgs m;
        m.source = mountpoint;
        m.riak = riak_urls;
        m.security = riak_security;
        m.state_dir = state_dir;
        m.config = config;
        m.bucket = bucket;
        m.bucket_type = bucket_type;
        return rfs::ctl::migrate_command(m);
    }
    if (plan) {
        rfs::ctl::PlanArgs p;
        p.given = mountpoint;
        p.rate = rate;
        p.as_json = as_json;
        struct stat st;
        const int err = ::stat(mountpoint.c_str(), &st) != 0 ? errno
                        : S_ISDIR(st.st_mode)                ? 0
                                                             : ENOTDIR;
        if (state_dir.empty() && err != 0)
            die("'" + mountpoint +
                "' is not a directory (a SOURCE or a MOUNTPOINT): " + std::strerror(err));
        auto mount = state_dir.empty()
                         ? rfs::topmost_mount(rfs::ctl::absolute_mountpoint(mountpoint))
                         : std::nullopt;
        if (!state_dir.empty() || (mount && mount->type == "fuse.riakfs")) {
            if (!config.empty() || !bucket.empty() || !bucket_type.empty())
                usage_error("--config, --bucket and --bucket-type are for a SOURCE: a mount "
                            "plans with its own layout");
            p.socket = find_socket(mountpoint, state_dir);
        } else {
            p.config = config;
            p.bucket = bucket;
            p.bucket_type = bucket_type;
        }
        return rfs::ctl::plan_command(p);
    }
    const std::string socket = find_socket(mountpoint, state_dir);
    if (status) return status_command(mountpoint, socket, as_json, watch, interval);
    if (verify || recall) {
        // PATH is under MOUNTPOINT as the operator sees it; the daemon takes it relative.
        const std::string rel = rfs::ctl::path_in_mount(
            state_dir.empty() ? rfs::ctl::absolute_mountpoint(mountpoint) : mountpoint, path);
        if (verify) return rfs::ctl::verify_command({mountpoint, socket, rel, repair, as_json});
        return rfs::ctl::recall_command({mountpoint, socket, rel, delete_from_riak});
    }

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
