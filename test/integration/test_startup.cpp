// Start-up and shutdown: bad invocations fail before mounting with one line on stderr, mounting
// over SOURCE itself, daemonized mode, and unmounting with umount(8).
#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>
#include <utility>

using namespace riakfs::it;
using namespace std::chrono_literals;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_startup {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// Pids of processes (other than us) whose command line mentions `needle` as an argument and,
// when `exe` is given, whose executable is `exe`.
std::vector<pid_t> pids_with_arg(const std::string& needle, const std::string& exe = "") {
    std::error_code ec;
    std::string want_exe = exe.empty() ? "" : std::filesystem::canonical(exe, ec).string();
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0 || pid == ::getpid()) continue;
        if (!want_exe.empty()) {
            std::error_code ec2;
            auto target =
                std::filesystem::read_symlink("/proc/" + std::string(e->d_name) + "/exe", ec2);
            if (ec2 || target.string() != want_exe) continue;
        }
        std::ifstream in("/proc/" + std::string(e->d_name) + "/cmdline", std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        std::string cmd = ss.str();
        size_t start = 0;
        for (size_t i = 0; i <= cmd.size(); ++i) {
            if (i == cmd.size() || cmd[i] == '\0') {
                if (cmd.substr(start, i - start) == needle) {
                    out.push_back(pid);
                    break;
                }
                start = i + 1;
            }
        }
    }
    ::closedir(d);
    return out;
}

// Makes sure a test that mounted by mistake leaves nothing behind.
void force_cleanup(const std::string& mnt) {
    if (is_fuse_mounted(mnt)) {
        if (auto e = find_mount(mnt)) abort_fuse_connection(e->major, e->minor);
        run_cmd({"fusermount3", "-uz", mnt}, 10s);
    }
    for (pid_t p : pids_with_arg(mnt))
        ::kill(p, SIGKILL);
}

// Makes the empty directories "src" and "mnt" in `dir` and returns their paths (SOURCE and
// MOUNTPOINT of a daemon a test starts itself).
std::pair<std::string, std::string> make_src_mnt(const TempDir& dir) {
    const std::string src = dir / "src", mnt = dir / "mnt";
    REQUIRE_OK(::mkdir(src.c_str(), 0755));
    REQUIRE_OK(::mkdir(mnt.c_str(), 0755));
    return {src, mnt};
}

struct Spawned {
    ProcResult r;
    bool mounted = false; // MOUNTPOINT was mounted when the command returned
};

// Runs the daemon command `argv` (see run_cmd), notes whether `mnt` was mounted when it returned
// and then makes sure nothing is left mounted or running there.
Spawned run_and_clean_up(const std::vector<std::string>& argv, const std::string& mnt,
                         std::chrono::milliseconds timeout,
                         const std::function<void()>& pre_exec = {}) {
    Spawned out;
    out.r = run_cmd(argv, timeout, pre_exec);
    out.mounted = is_fuse_mounted(mnt);
    force_cleanup(mnt);
    return out;
}

struct BadCase {
    const char* what;
    std::vector<std::string> args; // after the binary; SRC/MNT are substituted
    const char* expect_in_message; // lower-case substring, or nullptr
    bool single_line = true;
};

// A start-up the daemon must refuse: it exits non-zero without mounting and says why on
// stderr (in one line when `single_line`).
void check_refused(const ProcResult& r, bool mounted, bool single_line) {
    INFO("stderr: [" << r.err << "] stdout: [" << r.output << "]");
    CHECK_FALSE(r.timed_out);
    CHECK(r.exited);
    CHECK(r.exit_code != 0);
    CHECK_FALSE(mounted);
    CHECK_FALSE(r.err.empty());
    if (single_line) {
        std::string e = r.err;
        if (!e.empty() && e.back() == '\n') e.pop_back();
        CHECK(std::count(e.begin(), e.end(), '\n') == 0);
    }
}

} // namespace

TEST_CASE("bad invocations exit non-zero with one line on stderr and mount nothing", "[startup]") {
    if (!riakfs_only("command line")) return;
    TempDir dir;
    const auto [src, mnt] = make_src_mnt(dir);
    const std::string file = dir / "file";
    write_file(file, "not a directory");
    const std::string missing = dir / "missing";

    const std::vector<BadCase> cases = {
        {"mode=shadow without riak=", {src, mnt, "-f", "-o", "mode=shadow"}, "riak="},
        {"mode=migrate without riak=", {src, mnt, "-f", "-o", "mode=migrate"}, "riak="},
        {"mode=move without riak=", {src, mnt, "-f", "-o", "mode=move"}, "riak="},
        {"mode=bogus", {src, mnt, "-f", "-o", "mode=bogus"}, nullptr},
        {"mode= (empty)", {src, mnt, "-f", "-o", "mode="}, nullptr},
        {"unknown option", {src, mnt, "-f", "-o", "mode=passthrough,no_such_option_xyz"}, nullptr},
        {"unknown option first", {src, mnt, "-f", "-o", "frobnicate=1,mode=passthrough"}, nullptr},
        {"riak= with a bad URL", {src, mnt, "-f", "-o", "riak=ftp://x:8098"}, "riak="},
        {"riak= with a bad second URL",
         {src, mnt, "-f", "-o", "riak=http://127.0.0.1:8098,http://:x"},
         "riak="},
        {"missing SOURCE", {missing, mnt, "-f", "-o", "mode=passthrough"}, nullptr},
        {"SOURCE is a regular file", {file, mnt, "-f", "-o", "mode=passthrough"}, nullptr},
        {"missing MOUNTPOINT argument", {src, "-f", "-o", "mode=passthrough"}, "mountpoint"},
        {"no arguments", {}, "mountpoint"},
    };
    for (const auto& c : cases) {
        SECTION(c.what) {
            std::vector<std::string> argv = {daemon_bin()};
            argv.insert(argv.end(), c.args.begin(), c.args.end());
            auto [r, mounted] = run_and_clean_up(argv, mnt, 10s);
            check_refused(r, mounted, c.single_line);
            if (c.expect_in_message)
                CHECK(lower(r.err).find(c.expect_in_message) != std::string::npos);
        }
    }
}

TEST_CASE("an unreadable SOURCE is refused before mounting", "[startup]") {
    if (!riakfs_only("command line")) return;
    // Root reads everything, so run the daemon without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH
    // (it keeps CAP_SYS_ADMIN for mounting). SOURCE is mode 000: unreadable for it.
    TempDir dir;
    const auto [src, mnt] = make_src_mnt(dir);
    write_file(src + "/f", "x");
    REQUIRE_OK(::chmod(src.c_str(), 0));
    std::vector<std::string> argv = {daemon_bin(), src, mnt, "-f", "-o", "mode=passthrough"};
    auto [r, mounted] = run_and_clean_up(argv, mnt, 5s, [] {
        ::prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0);
        ::prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0);
    });
    ::chmod(src.c_str(), 0755);
    check_refused(r, mounted, true);
}

TEST_CASE("mounting over the SOURCE directory itself shows the old content", "[startup]") {
    MountFixture fx(MountOptions::prepared([](const std::string& src) {
                        write_file(src + "/old", "old content");
                        ::mkdir((src + "/olddir").c_str(), 0755);
                        write_file(src + "/olddir/f", "nested");
                    }).over_source());
    REQUIRE(fx.source() == fx.mountpoint());
    struct statfs sfs {};
    REQUIRE_OK(::statfs(fx.mountpoint().c_str(), &sfs));
    CHECK(sfs.f_type == kFuseSuperMagic);
    CHECK(read_file(fx.mnt("old")) == "old content");
    CHECK(read_file(fx.mnt("olddir/f")) == "nested");
    auto names = list_dir(fx.mnt(""));
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"old", "olddir"});

    write_file(fx.mnt("new"), "written through the mount");
    REQUIRE_OK(::rename(fx.mnt("old").c_str(), fx.mnt("olddir/renamed").c_str()));
    CHECK(read_file(fx.mnt("olddir/renamed")) == "old content");
    fx.unmount();
    // After unmounting, the changes are in the underlying directory.
    CHECK(read_file(fx.source() + "/new") == "written through the mount");
    CHECK(read_file(fx.source() + "/olddir/renamed") == "old content");
    CHECK_ERRNO(::access((fx.source() + "/old").c_str(), F_OK), ENOENT);
}

namespace {

// Runs the daemon without -f (optionally from `cwd` with the given SOURCE/MOUNTPOINT spelling),
// checks that it returns only once the mount is live, uses the mount, unmounts it and checks that
// the detached daemon exits 0.
void check_daemonized(const std::string& cwd, const std::string& src_arg,
                      const std::string& mnt_arg, const std::string& src, const std::string& mnt) {
    // Become a subreaper so the detached daemon is re-parented to us and we can see its status.
    REQUIRE_OK(::prctl(PR_SET_CHILD_SUBREAPER, 1));
    write_file(src + "/hello", "hi");

    ProcResult r = run_cmd(daemon_argv(src_arg, mnt_arg, /*foreground=*/false, {}), 15s, [&] {
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    });
    INFO("stderr: [" << r.err << "] stdout: [" << r.output << "]");
    bool mounted = is_fuse_mounted(mnt); // must already be mounted when the command returns
    std::vector<pid_t> daemons = pids_with_arg(mnt_arg, daemon_bin());
    if (!r.exited || r.exit_code != 0 || !mounted || daemons.size() != 1) force_cleanup(mnt);
    if (!r.exited || r.exit_code != 0 || !mounted || daemons.size() != 1)
        for (pid_t p : daemons)
            ::kill(p, SIGKILL);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exited);
    REQUIRE(r.exit_code == 0);
    REQUIRE(mounted);
    REQUIRE(daemons.size() == 1);
    const pid_t daemon = daemons[0];

    struct statfs sfs {};
    CHECK_OK(::statfs(mnt.c_str(), &sfs));
    CHECK(sfs.f_type == kFuseSuperMagic);
    auto hello = try_read_file(mnt + "/hello");
    int read_err = errno;
    INFO("reading through the daemonized mount: " << errname(hello ? 0 : read_err));
    CHECK(hello.value_or("<error>") == "hi");
    auto listed = list_dir(mnt);
    CHECK(std::find(listed.begin(), listed.end(), "hello") != listed.end());
    Fd w(::open((mnt + "/bye").c_str(), O_CREAT | O_WRONLY, 0644));
    int create_err = errno;
    INFO("creating through the daemonized mount: " << errname(w ? 0 : create_err));
    CHECK(w);
    if (w) CHECK(::write(w.get(), "bye", 3) == 3);
    w.reset();

    ProcResult u = run_cmd({"fusermount3", "-u", mnt}, 10s);
    INFO("fusermount3: " << u.err);
    CHECK(u.exit_code == 0);

    int status = -1;
    bool gone = false;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        pid_t wp = ::waitpid(daemon, &status, WNOHANG);
        if (wp == daemon) {
            gone = true;
            break;
        }
        if (wp < 0 && errno == ECHILD) { // not re-parented to us; watch /proc instead
            if (::kill(daemon, 0) != 0) {
                gone = true;
                status = 0;
                break;
            }
        }
        std::this_thread::sleep_for(10ms);
    }
    if (!gone) force_cleanup(mnt);
    CHECK(gone);
    if (gone) {
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    CHECK_FALSE(is_fuse_mounted(mnt));
    CHECK(try_read_file(src + "/bye").value_or("<missing>") == "bye");
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

} // namespace

TEST_CASE("daemonized mode returns after mounting and exits after fusermount3 -u", "[startup]") {
    TempDir dir;
    const auto [src, mnt] = make_src_mnt(dir);
    check_daemonized("", src, mnt, src, mnt);
}

TEST_CASE("daemonized mode with relative SOURCE and MOUNTPOINT", "[startup]") {
    // The daemon changes to / when it detaches: relative paths must be resolved before that.
    TempDir dir;
    const auto [src, mnt] = make_src_mnt(dir);
    check_daemonized(dir.path(), "src", "mnt", src, mnt);
}

TEST_CASE("umount(8) also ends the daemon cleanly", "[startup]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    fx.unmount(/*use_umount=*/true);
    CHECK_FALSE(is_fuse_mounted(fx.mountpoint()));
    CHECK(read_file(fx.src("f")) == "x");
}

TEST_CASE("extra mount options such as allow_other are accepted", "[startup]") {
    MountFixture fx(MountOptions().with_allow_other());
    auto e = find_mount(fx.mountpoint());
    REQUIRE(e.has_value());
    INFO("super options: " << e->super_options);
    CHECK(e->super_options.find("allow_other") != std::string::npos);
    CHECK(e->super_options.find("default_permissions") != std::string::npos);
    write_file(fx.mnt("f"), "x");
    std::string p = fx.mnt("f");
    CHECK(errname(run_as_nobody([&] { return ::access(p.c_str(), R_OK) == 0 ? 0 : errno; })) ==
          "OK");
}

TEST_CASE("the standard ro option makes the mount read-only", "[startup]") {
    MountOptions opts;
    opts.extra_opts.push_back("ro");
    opts.prepare = [](const std::string& source) { write_file(source + "/f", "old"); };
    MountFixture fx(opts);
    CHECK(read_file(fx.mnt("f")) == "old");
    CHECK_ERRNO(::open(fx.mnt("f").c_str(), O_WRONLY), EROFS);
    CHECK_ERRNO(::open(fx.mnt("new").c_str(), O_CREAT | O_WRONLY, 0644), EROFS);
    CHECK_ERRNO(::mkdir(fx.mnt("d").c_str(), 0755), EROFS);
    CHECK_ERRNO(::unlink(fx.mnt("f").c_str()), EROFS);
    CHECK(read_file(fx.src("f")) == "old");
}

// An fstab line switched back to passthrough may keep its riak= list: it mounts, serves SOURCE
// and touches no node (none listens on these ports).
TEST_CASE("mode=passthrough accepts and ignores a riak= node list", "[startup]") {
    if (!riakfs_only("option")) return;
    MountOptions opts;
    opts.extra_opts.push_back("riak=http://127.0.0.1:9,http://127.0.0.1:10");
    opts.warnings_expected = true; // it says that the list is ignored
    MountFixture fx(opts);
    CHECK(fx.stderr_text().find("does not use Riak") != std::string::npos);
    write_file(fx.mnt("f"), "x");
    CHECK(read_file(fx.src("f")) == "x");
    auto e = find_mount(fx.mountpoint());
    REQUIRE(e.has_value());
    CHECK(e->super_options.find("127.0.0.1") == std::string::npos);
}

TEST_CASE("after a lazy unmount the daemon exits once the last file is closed", "[startup]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "abc");
    Fd fd(::open(fx.mnt("f").c_str(), O_RDWR));
    REQUIRE(fd);
    ProcResult u = run_cmd({"fusermount3", "-uz", fx.mountpoint()}, 10s);
    INFO("fusermount3 -uz: " << u.err);
    REQUIRE(u.exit_code == 0);
    CHECK_FALSE(is_fuse_mounted(fx.mountpoint()));
    // The open descriptor still works through the detached mount.
    CHECK(::pwrite(fd.get(), "XYZ", 3, 3) == 3);
    char buf[8] = {};
    CHECK(::pread(fd.get(), buf, sizeof buf, 0) == 6);
    CHECK(std::string(buf, 6) == "abcXYZ");
    fd.reset();
    fx.unmount(); // waits for the daemon and checks exit status 0
    CHECK(read_file(fx.src("f")) == "abcXYZ");
}

TEST_CASE("SIGTERM unmounts and ends the daemon cleanly", "[startup]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    REQUIRE(fx.pid() > 0);
    REQUIRE_OK(::kill(fx.pid(), SIGTERM));
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (is_fuse_mounted(fx.mountpoint()) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    CHECK_FALSE(is_fuse_mounted(fx.mountpoint()));
    fx.unmount(); // the daemon must have exited with status 0
    CHECK(read_file(fx.src("f")) == "x");
}

TEST_CASE("a failure to start serving after mounting is one line and a clean unmount",
          "[startup]") {
    if (!riakfs_only("messages")) return;
    // A descriptor limit just big enough to mount, but not to set up the event loops (io_uring,
    // Asio's signal pipe), makes the set-up after mounting fail. Which limit that is depends on
    // libfuse and Asio, so raise it one at a time until the daemon either reports that failure
    // or serves.
    TempDir dir;
    const auto [src, mnt] = make_src_mnt(dir);
    bool seen = false;
    for (rlim_t limit = 4; limit <= 32 && !seen; ++limit) {
        auto [r, mounted] = run_and_clean_up(
            {daemon_bin(), src, mnt, "-f", "-o", "mode=passthrough"}, mnt, 3s, [&] {
                struct rlimit lim {
                    limit, limit
                };
                ::setrlimit(RLIMIT_NOFILE, &lim);
            });
        if (r.timed_out) break; // it served: every later limit would too
        INFO("RLIMIT_NOFILE " << limit << ", stderr: [" << r.err << "]");
        if (r.err.find("cannot serve") == std::string::npos) continue; // refused before mounting
        seen = true;
        CHECK(r.exited);
        CHECK(r.exit_code == 1);
        CHECK_FALSE(mounted); // unmounted, not left "Transport endpoint is not connected"
        int error_lines = 0;
        std::istringstream lines(r.err);
        for (std::string line; std::getline(lines, line);)
            if (lower(line).find("error") != std::string::npos) ++error_lines;
        CHECK(error_lines == 1);
    }
    if (!seen)
        WARN("NOT APPLICABLE: no descriptor limit made riakfs fail after mounting on this "
             "machine, so the clean-unmount path was not exercised");
}

// Hidden self-test of the fixture's hang protection (run explicitly with "[.fixture]" and
// RIAKFS_IT_TEST_TIMEOUT=3): a stopped daemon must not hang the runner. It is expected to FAIL
// with "watchdog had to abort the FUSE connection", but return within seconds.
TEST_CASE("fixture: a wedged daemon is aborted by the watchdog", "[.fixture]") {
    MountFixture fx;
    REQUIRE(fx.pid() > 0);
    REQUIRE_OK(::kill(fx.pid(), SIGSTOP));
    struct stat st {};
    int rc = ::stat(fx.mnt("anything").c_str(), &st); // blocks until the watchdog aborts
    int err = errno;
    WARN("stat on the wedged mount returned " << rc << " " << errname(rc ? err : 0));
    CHECK(rc == -1);
}

// The fstab / systemd path: mount(8) runs mount.fuse3, which starts riakfs (here named by its
// full path in the "program#source" form, since PATH is not passed through); the daemon
// detaches, and umount(8) ends it.
TEST_CASE("mount(8) starts it through mount.fuse3 and umount(8) stops it", "[startup]") {
    if (!riakfs_only("command line")) return;
    TempDir dir;
    const auto [src, mnt] = make_src_mnt(dir);
    write_file(src + "/f", "via fstab");
    ProcResult r = run_cmd({"mount", "-t", "fuse", daemon_bin() + "#" + src, mnt, "-o",
                            "mode=passthrough,allow_other"},
                           20s);
    INFO("mount: " << r.err);
    REQUIRE(r.exited);
    REQUIRE(r.exit_code == 0);
    bool mounted = is_fuse_mounted(mnt);
    CHECK(mounted);
    if (mounted) CHECK(read_file(mnt + "/f") == "via fstab");
    std::vector<pid_t> daemons = pids_with_arg(mnt, daemon_bin());
    CHECK(daemons.size() == 1);
    ProcResult u = run_cmd({"umount", mnt}, 20s);
    INFO("umount: " << u.err);
    CHECK(u.exit_code == 0);
    // The daemon notices the unmount and exits on its own.
    for (int i = 0; i < 100 && !pids_with_arg(mnt, daemon_bin()).empty(); ++i)
        std::this_thread::sleep_for(50ms);
    CHECK(pids_with_arg(mnt, daemon_bin()).empty());
    force_cleanup(mnt);
}

// Operators script mounts: a second riakfs on a live one would hide it (and, over SOURCE itself,
// serve its own mount). It is refused in one line, and the first mount keeps serving.
TEST_CASE("mounting on a live riakfs mount is refused", "[startup]") {
    if (!riakfs_only("refusal")) return;
    for (bool over_source : {false, true}) {
        INFO((over_source ? "over SOURCE" : "separate MOUNTPOINT"));
        MountOptions opts;
        opts.same_dir = over_source;
        MountFixture fx(opts);
        write_file(fx.mnt("f"), "first");
        auto count_mounts = [&] {
            int n = 0;
            std::ifstream info("/proc/self/mountinfo");
            for (std::string line; std::getline(info, line);)
                if (line.find(" " + fx.mountpoint() + " ") != std::string::npos) ++n;
            return n;
        };
        int before = count_mounts();
        ProcResult r = run_cmd(daemon_argv(fx.source(), fx.mountpoint(), true, {}), 15s);
        INFO("stderr: " << r.err);
        CHECK(r.exited);
        CHECK(r.exit_code == 1);
        CHECK(r.err.find("already a riakfs mount") != std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(count_mounts() == before);
        CHECK(read_file(fx.mnt("f")) == "first");
    }
}

} // namespace test_startup
