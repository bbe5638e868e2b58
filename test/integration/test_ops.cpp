// Running riakfs for an operator (issue 11): the Prometheus endpoint scraped over HTTP and its
// text checked against the exposition format, credentials kept out of every line, the settings=
// file's drain limits (at start, and at a SIGHUP, read back with riakfsctl), and the systemd
// service unit's ExecStart run by hand with NOTIFY_SOCKET pointing at this test (READY=1 once
// the mount answers, SIGHUP reloads the settings file, SIGTERM stops cleanly).
#include "metrics_scrape.hpp"
#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace riakfs::it;
using namespace std::chrono_literals;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_ops {

TEST_CASE("metrics: a scrape is valid exposition text, and counters move with I/O and copies",
          "[ops][metrics]") {
    if (!riakfs_only("operations (metrics, logs, settings)")) return;
    TempDir dir("riakfs-ops");
    RiakNode node(dir.path());
    MountOptions opts;
    opts.extra_opts = {"mode=migrate", "riak=" + node.url(), "state_dir=" + dir / "state",
                       "cache=never", "metrics=127.0.0.1:0"};
    MountFixture fx(opts);
    const unsigned port = metrics_port(fx);

    Exposition before = scrape(port);
    CHECK(before.at("riakfs_info{mode=\"migrate\",version=\"0.1.0\"}") == 1);
    CHECK(before.at("riakfs_riak_node_up{node=\"" + node.url() + "\"}") == 1);
    CHECK(before.types.at("riakfs_fuse_request_duration_seconds") == "histogram");

    std::uint64_t bytes = 0;
    for (int i = 0; i < 3; ++i) {
        std::string data = random_bytes(1000 + 100 * i, i);
        write_file(fx.mnt("f" + std::to_string(i)), data);
        bytes += data.size();
    }
    list_dir(fx.mountpoint());
    // Copies are made in the background: wait until the metrics say all three are verified.
    Exposition after;
    auto deadline = std::chrono::steady_clock::now() + 60s;
    for (;;) {
        after = scrape(port);
        if (after.at("riakfs_migrate_files_migrated_total") >= 3) break;
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(100ms);
    }
    // Verified: this read is served from Riak (a cache miss, then the object is kept).
    CHECK(read_file(fx.mnt("f1")).size() == 1100);
    CHECK(read_file(fx.mnt("f1")).size() == 1100);
    after = scrape(port);

    auto fuse = [](const std::string& metric, const std::string& op) {
        return metric + "{op=\"" + op + "\"}";
    };
    CHECK(after.at(fuse("riakfs_fuse_requests_total", "create")) >= 3);
    CHECK(after.at(fuse("riakfs_fuse_requests_total", "write")) >= 3);
    CHECK(after.at(fuse("riakfs_fuse_requests_total", "read")) >= 1);
    CHECK(after.at(fuse("riakfs_fuse_request_duration_seconds_count", "write")) ==
          after.at(fuse("riakfs_fuse_requests_total", "write")));
    CHECK(after.at(fuse("riakfs_fuse_request_duration_seconds_sum", "write")) > 0);
    CHECK(after.at("riakfs_riak_requests_total{method=\"PUT\"}") >= 3);
    CHECK(after.at("riakfs_riak_request_duration_seconds_count{method=\"PUT\"}") >= 3);
    CHECK(after.at("riakfs_riak_requests_total{method=\"GET\"}") >= 1);
    CHECK(after.at("riakfs_migrate_bytes_migrated_total") >= static_cast<double>(bytes));
    CHECK(after.at("riakfs_migrate_queue_depth") >= 0);
    CHECK(after.at("riakfs_read_cache_misses_total") >= 1);
    CHECK(after.at("riakfs_read_cache_hits_total") + after.at("riakfs_read_cache_misses_total") >=
          2);
    CHECK(after.at("riakfs_read_cache_limit_bytes") == 256.0 * 1024 * 1024);
    CHECK(after.has("riakfs_read_cache_bytes"));
    CHECK(after.at("riakfs_read_dropped_behind_total") == 0); // no large file read
    CHECK(after.at("riakfs_errors_total{kind=\"fuse_eio\"}") == 0);
    CHECK(after.has("riakfs_errors_total{kind=\"riak_timeout\"}"));
    CHECK(after.has("riakfs_migrate_files_released_total"));
    CHECK(after.at("riakfs_drain_state{state=\"off\"}") == 1); // no drain=on
    CHECK(after.has("riakfs_drain_files{state=\"remaining\"}"));
    CHECK(after.at("riakfs_drain_limit{unit=\"bytes\"}") == 0);
    // Counters never go back.
    for (const auto& [series, value] : before.samples) {
        auto name = series.substr(0, series.find('{'));
        if (!name.ends_with("_total") && !name.ends_with("_count") && !name.ends_with("_bucket"))
            continue;
        INFO(series);
        if (after.has(series)) CHECK(after.at(series) >= value);
    }
    CHECK(http_get(port, "/").status == 404);

    // A request with a body is refused unread: a chunked one, empty and sent a byte at a time
    // from its final "0\r\n" on, once aborted the daemon (Boost 1.81's parser asserts).
    {
        Fd fd = connect_loopback(port);
        const std::string head = "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n";
        REQUIRE(::write(fd.get(), head.data(), head.size()) == static_cast<ssize_t>(head.size()));
        for (char c : std::string("0\r\n\r\n")) {
            std::this_thread::sleep_for(20ms);
            (void)::send(fd.get(), &c, 1, MSG_NOSIGNAL); // the endpoint may have closed already
        }
        std::string answer;
        char buf[4096];
        for (;;) {
            pollfd p{fd.get(), POLLIN, 0};
            REQUIRE(::poll(&p, 1, 20000) == 1);
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n <= 0) break;
            answer.append(buf, static_cast<std::size_t>(n));
        }
        CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
    }
    CHECK(scrape(port).has("riakfs_info{mode=\"migrate\",version=\"0.1.0\"}")); // still serving
    CHECK(::access(fx.mnt("f1").c_str(), F_OK) == 0);
}

TEST_CASE("metrics= is checked before mounting: a bad or busy address is one line",
          "[ops][metrics]") {
    if (!riakfs_only("operations (metrics, logs, settings)")) return;
    TempDir dir("riakfs-ops");
    const std::string src = dir / "src", mnt = dir / "mnt";
    REQUIRE_OK(::mkdir(src.c_str(), 0755));
    REQUIRE_OK(::mkdir(mnt.c_str(), 0755));
    // A port this test holds.
    Fd busy(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE_OK(::bind(busy.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    REQUIRE_OK(::listen(busy.get(), 1));
    socklen_t len = sizeof addr;
    REQUIRE_OK(::getsockname(busy.get(), reinterpret_cast<sockaddr*>(&addr), &len));
    const std::string busy_address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

    for (const std::string& value : {std::string("localhost:9100"), std::string("127.0.0.1"),
                                     std::string("127.0.0.1:70000"), busy_address}) {
        INFO("metrics=" << value);
        ProcResult r = run_cmd({daemon_bin(), src, mnt, "-f", "-o", "metrics=" + value}, 10s);
        INFO(r.err);
        CHECK(r.exited);
        CHECK(r.exit_code == 1);
        CHECK_FALSE(is_fuse_mounted(mnt));
        CHECK(r.err.find("metrics=") != std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
}

TEST_CASE("credentials in a Riak URL never appear in the daemon's output", "[ops][logs]") {
    if (!riakfs_only("operations (metrics, logs, settings)")) return;
    TempDir dir("riakfs-ops");
    const std::string src = dir / "src", mnt = dir / "mnt";
    REQUIRE_OK(::mkdir(src.c_str(), 0755));
    REQUIRE_OK(::mkdir(mnt.c_str(), 0755));
    // Refused in every mode (riak= takes no credentials), and the refusal does not repeat them.
    for (const char* mode : {"mode=shadow", "mode=passthrough"}) {
        ProcResult r = run_cmd({daemon_bin(), src, mnt, "-f", "-o",
                                std::string(mode) + ",riak=http://admin:hunter2@127.0.0.1:9", "-o",
                                "state_dir=" + dir / "state"},
                               10s);
        INFO(mode << ": " << r.err);
        CHECK(r.exit_code == 1);
        CHECK_FALSE(is_fuse_mounted(mnt));
        CHECK(r.err.find("riak=http://***@127.0.0.1:9") != std::string::npos);
        CHECK(r.err.find("hunter2") == std::string::npos);
        CHECK(r.err.find("admin") == std::string::npos);
    }
}

TEST_CASE("settings=: the drain's limits come from the file at start and change at a reload",
          "[ops][settings]") {
    if (!riakfs_only("operations (metrics, logs, settings)")) return;
    TempDir dir("riakfs-ops");
    RiakNode node(dir.path());
    const std::string settings = dir / "settings.conf";
    write_file(settings, "drain_rate = 1M\ndrain_files = 7\n");
    MountOptions opts;
    opts.extra_opts = {"mode=shadow", "riak=" + node.url(), "state_dir=" + dir / "state",
                       "drain_rate=5M", "settings=" + settings};
    MountFixture fx(opts);
    const char* ctl = std::getenv("RIAKFSCTL_BIN");
    REQUIRE(ctl != nullptr);
    auto limits = [&] {
        ProcResult r = run_cmd({ctl, "status", fx.mountpoint(), "--json"}, 30s);
        INFO("riakfsctl: " << r.output << r.err);
        REQUIRE(r.exit_code == 0);
        return nlohmann::json::parse(r.output)["drain"]["limits"];
    };
    // The file replaces -o drain_rate= at start.
    auto start = limits();
    CHECK(start["bytes_per_second"] == 1 << 20);
    CHECK(start["files_per_second"] == 7);

    // A reload sets the limits the file names and leaves the others.
    write_file(settings, "drain_rate = 2M\n");
    REQUIRE_OK(::kill(fx.pid(), SIGHUP));
    auto deadline = std::chrono::steady_clock::now() + 30s;
    auto now = limits();
    while (now["bytes_per_second"] != 2 << 20) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(50ms);
        now = limits();
    }
    CHECK(now["files_per_second"] == 7);
    fx.unmount();
    CHECK(fx.stderr_text().find("msg=\"drain limits set from the settings file\" "
                                "bytes_per_second=2097152 files_per_second=7") !=
          std::string::npos);
}

// ---- systemd ------------------------------------------------------------------------------------

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    INFO("reading " << path);
    REQUIRE(in);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Where meson put the configured units (scripts/systemd in the build and source trees).
std::string unit_dir(const char* variable) {
    const char* dir = std::getenv(variable);
    INFO(variable << " is not set (meson sets it)");
    REQUIRE(dir != nullptr);
    return dir;
}

// The value of `key=` in the unit's text (the first one).
std::string unit_setting(const std::string& unit, const std::string& key) {
    std::istringstream lines(unit);
    for (std::string line; std::getline(lines, line);)
        if (line.starts_with(key + "=")) return line.substr(key.size() + 1);
    return "";
}

// A datagram socket that receives what the daemon sends with sd_notify.
class NotifyListener {
public:
    explicit NotifyListener(std::string path) : path_(std::move(path)) {
        fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd_);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(path_.size() < sizeof addr.sun_path);
        std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
        REQUIRE_OK(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    }
    const std::string& path() const { return path_; }
    // The next message holding `field` (e.g. "READY=1"); every message read is kept in seen().
    std::string wait_for(const std::string& field, std::chrono::seconds limit = 20s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            INFO("waiting for " << field << "; received so far: " << seen_);
            REQUIRE(left.count() > 0);
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) != 1) continue;
            char buf[4096];
            ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
            if (n <= 0) continue;
            std::string message(buf, static_cast<size_t>(n));
            seen_ += "[" + message + "]";
            if (("\n" + message + "\n").find("\n" + field + "\n") != std::string::npos)
                return message;
        }
    }
    const std::string& seen() const { return seen_; }

private:
    std::string path_;
    Fd fd_;
    std::string seen_;
};

} // namespace

TEST_CASE("systemd: the service's ExecStart, run by hand, sends READY=1 once the mount answers, "
          "reloads on SIGHUP and stops cleanly on SIGTERM",
          "[ops][systemd]") {
    if (!riakfs_only("operations (metrics, logs, settings)")) return;
    const std::string unit = slurp(unit_dir("RIAKFS_UNIT_BUILD_DIR") + "/riakfs@.service");
    CHECK(unit_setting(unit, "Type") == "notify");
    CHECK(unit_setting(unit, "ExecReload") == "/bin/kill -HUP $MAINPID");
    std::string exec = unit_setting(unit, "ExecStart");
    INFO("ExecStart=" << exec);
    REQUIRE(exec.find(" -f ") != std::string::npos); // Type=notify: no fork

    TempDir dir("riakfs-ops");
    const std::string src = dir / "src", mnt = dir / "mnt", settings = dir / "settings.conf";
    REQUIRE_OK(::mkdir(src.c_str(), 0755));
    REQUIRE_OK(::mkdir(mnt.c_str(), 0755));
    write_file(src + "/old", "old");
    write_file(settings, "log_level = info\n");
    // What systemd would run for this instance: %f is the mount point, the environment file
    // gives SOURCE and the options; the binary is the one under test.
    std::map<std::string, std::string> substitutions = {
        {"${RIAKFS_SOURCE}", src},
        {"%f", mnt},
        {"${RIAKFS_OPTIONS}", "mode=passthrough,settings=" + settings}};
    std::vector<std::string> argv;
    std::istringstream words(exec);
    for (std::string word; words >> word;) {
        if (substitutions.count(word)) word = substitutions[word];
        argv.push_back(word);
    }
    REQUIRE(argv.at(0).ends_with("/riakfs"));
    argv[0] = daemon_bin();

    NotifyListener notify(dir / "notify.sock");
    const std::string err_path = dir / "daemon.stderr";
    std::vector<char*> cargv;
    for (auto& a : argv)
        cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::string notify_env = "NOTIFY_SOCKET=" + notify.path();
    Fd err(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    std::fflush(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(err.get(), 2);
        ::putenv(notify_env.data());
        ::execv(cargv[0], cargv.data());
        ::_exit(127);
    }
    struct Reap {
        pid_t pid;
        std::string mnt;
        ~Reap() {
            if (pid <= 0) return;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            run_cmd({"fusermount3", "-uz", mnt}, 10s);
        }
    } reap{pid, mnt};

    std::string ready = notify.wait_for("READY=1");
    // The first READY=1 comes once the kernel's INIT was answered: the mount is there, answers
    // statfs as riakfs, and serves SOURCE.
    CHECK(is_fuse_mounted(mnt));
    struct statfs sfs {};
    REQUIRE_OK(::statfs(mnt.c_str(), &sfs));
    CHECK(sfs.f_type == kFuseSuperMagic);
    CHECK(read_file(mnt + "/old") == "old");
    CHECK(ready.find("STATUS=serving " + mnt) != std::string::npos);

    // ExecReload: SIGHUP re-reads the settings file; the log level changes at once.
    write_file(settings, "log_level = debug\n");
    REQUIRE_OK(::kill(pid, SIGHUP));
    notify.wait_for("RELOADING=1");
    notify.wait_for("READY=1");
    write_file(mnt + "/new", "new");
    std::string text = slurp(err_path);
    INFO(text);
    CHECK(text.find("msg=\"settings reloaded\"") != std::string::npos);
    CHECK(text.find("log_level=debug") != std::string::npos);
    // A bad file changes nothing, says why in one error line, and the mount serves on.
    write_file(settings, "log_level = loud\n");
    REQUIRE_OK(::kill(pid, SIGHUP));
    notify.wait_for("RELOADING=1");
    std::string failed = notify.wait_for("READY=1");
    CHECK(failed.find("the last reload failed") != std::string::npos);
    CHECK(read_file(mnt + "/new") == "new");

    // systemctl stop: SIGTERM, STOPPING=1, unmounted, exit status 0.
    REQUIRE_OK(::kill(pid, SIGTERM));
    notify.wait_for("STOPPING=1");
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (::waitpid(pid, &status, WNOHANG) != pid) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(20ms);
    }
    reap.pid = -1;
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_FALSE(is_fuse_mounted(mnt));
    text = slurp(err_path);
    INFO(text);
    int error_lines = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (line.find("level=error") != std::string::npos) ++error_lines;
    CHECK(error_lines == 1); // the bad settings file's
    CHECK(text.find("reload: settings not changed") != std::string::npos);
    CHECK(read_file(src + "/new") == "new");
}

TEST_CASE("systemd: the units pass systemd-analyze verify", "[ops][systemd]") {
    if (!riakfs_only("operations (metrics, logs, settings)")) return;
    ProcResult which = run_cmd({"sh", "-c", "command -v systemd-analyze"}, 10s);
    // A prerequisite (scripts/setup installs package systemd), not a reason to pass unverified.
    if (which.exit_code != 0)
        FAIL("systemd-analyze is not installed: the units cannot be verified (scripts/setup "
             "installs it, package systemd)");
    TempDir dir("riakfs-units");
    // The service as installed, but naming the binary under test (verify checks that
    // ExecStart's program exists), and the example .mount unit as shipped.
    std::string service = slurp(unit_dir("RIAKFS_UNIT_BUILD_DIR") + "/riakfs@.service");
    std::string exec = unit_setting(service, "ExecStart");
    std::string program = exec.substr(0, exec.find(' '));
    service.replace(service.find("ExecStart=" + program), 10 + program.size(),
                    "ExecStart=" + daemon_bin());
    write_file(dir / "riakfs@.service", service);
    write_file(dir / "srv-data.mount",
               slurp(unit_dir("RIAKFS_UNIT_SOURCE_DIR") + "/srv-data.mount"));
    ProcResult r = run_cmd({"systemd-analyze", "verify", "--man=no",
                            dir / "riakfs@srv-data.service", dir / "srv-data.mount"},
                           60s);
    INFO("systemd-analyze verify: exit " << r.exit_code << "\n" << r.output << r.err);
    CHECK(r.exited);
    CHECK(r.exit_code == 0);
    // Warnings about the units themselves (not about the host's other units).
    for (const char* unit_name : {"riakfs@", "srv-data.mount"}) {
        std::istringstream lines(r.output + r.err);
        for (std::string line; std::getline(lines, line);)
            if (line.find(unit_name) != std::string::npos) FAIL_CHECK(line);
    }
}

} // namespace test_ops
