#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

namespace riakfs::it {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string env_or(const char* name, const char* dflt) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::string(dflt);
}

// Reports a failure from fixture code. Inside a destructor that runs because an assertion threw,
// Catch2 must not be called; print instead.
void report_failure(const std::string& msg) {
    if (std::uncaught_exceptions() > 0) {
        std::fprintf(stderr, "mount_fixture: %s\n", msg.c_str());
    } else {
        FAIL_CHECK(msg);
    }
}

std::string read_fd_all(int fd) {
    std::string out;
    ::lseek(fd, 0, SEEK_SET);
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::string unescape_mountinfo(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        auto octal = [&](size_t k) {
            return i + k < s.size() && s[i + k] >= '0' && s[i + k] <= '7';
        };
        if (s[i] == '\\' && octal(1) && octal(2) && octal(3)) {
            int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
            out.push_back(static_cast<char>(v));
            i += 3;
            continue;
        }
        out.push_back(s[i]);
    }
    return out;
}

// Waits for pid with a deadline; returns true and sets *status when it exited.
// Forks `argv` (looked up in PATH) with stdin on /dev/null and stdout/stderr on `out`/`err`;
// the child dies with the test process. `pre_exec` runs in the child just before exec. The
// argument array is built before fork: the test process has threads, so the child must not
// allocate.
pid_t spawn_child(const std::vector<std::string>& argv, int out, int err,
                  const std::function<void()>& pre_exec = {},
                  const std::vector<std::string>* env = nullptr) {
    std::vector<char*> cargv;
    for (auto& a : argv)
        cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    // Built before fork: the child only execs.
    std::vector<char*> cenv;
    if (env) {
        for (auto& e : *env)
            cenv.push_back(const_cast<char*>(e.c_str()));
        cenv.push_back(nullptr);
    }
    std::fflush(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        if (pre_exec) pre_exec();
        if (env)
            ::execvpe(cargv[0], cargv.data(), cenv.data());
        else
            ::execvp(cargv[0], cargv.data());
        ::dprintf(2, "exec %s: %s\n", cargv[0], ::strerror(errno));
        ::_exit(127);
    }
    return pid;
}

bool wait_pid_for(pid_t pid, std::chrono::milliseconds timeout, int* status) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        pid_t r = ::waitpid(pid, status, WNOHANG);
        if (r == pid) return true;
        if (r < 0 && errno != EINTR) {
            *status = -1;
            return true; // not our child any more
        }
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
}

std::string describe_status(int status) {
    if (status == -1) return "unknown (not a child)";
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("signal ") + ::strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
}

// Mount points of live fixtures, for the signal handler (fixed storage: async-signal-safe).
constexpr int kMaxLive = 8;
char g_live[kMaxLive][PATH_MAX];
volatile sig_atomic_t g_live_used[kMaxLive];

int register_live(const std::string& mnt) {
    for (int i = 0; i < kMaxLive; ++i) {
        if (!g_live_used[i] && mnt.size() < PATH_MAX) {
            std::memcpy(g_live[i], mnt.c_str(), mnt.size() + 1);
            g_live_used[i] = 1;
            return i;
        }
    }
    return -1;
}

void unregister_live(int slot) {
    if (slot >= 0) g_live_used[slot] = 0;
}

extern "C" void cleanup_on_signal(int sig) {
    for (int i = 0; i < kMaxLive; ++i)
        if (g_live_used[i]) ::umount2(g_live[i], MNT_DETACH);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

} // namespace

void install_cleanup_handlers() {
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
        ::signal(sig, cleanup_on_signal);
}

// ------------------------------------------------------------------------------------------------
// Small helpers

std::string daemon_bin() {
    return env_or("RIAKFS_BIN", "");
}

Flavor daemon_flavor() {
    std::string f = env_or("RIAKFS_FLAVOR", "");
    if (f == "passthrough_ll") return Flavor::PassthroughLl;
    if (f == "riakfs") return Flavor::Riakfs;
    if (f == "native") return Flavor::Native;
    std::string bin = daemon_bin();
    if (bin.find("passthrough_ll") != std::string::npos) return Flavor::PassthroughLl;
    return Flavor::Riakfs;
}

namespace {
std::atomic<int> checks_skipped{0};
} // namespace

bool skipped(const char* why) {
    ++checks_skipped;
    WARN("skipped: " << why);
    return true;
}

bool riakfs_only(const char* what) {
    if (is_riakfs()) return true;
    skipped((std::string("riakfs-specific ") + what + ", for the stand-in daemon").c_str());
    return false;
}

int skipped_checks() {
    return checks_skipped.load();
}

std::vector<ThreadEntry> threads_of(pid_t pid) {
    std::vector<ThreadEntry> out;
    std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks)) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        std::getline(comm, name);
        out.push_back({name, task.path().string()});
    }
    return out;
}

std::vector<std::string> daemon_argv(const std::string& source, const std::string& mountpoint,
                                     bool foreground, const std::vector<std::string>& opts,
                                     bool default_mode) {
    std::vector<std::string> argv;
    if (daemon_flavor() == Flavor::PassthroughLl) {
        std::string o = "source=" + source + ",default_permissions,xattr";
        for (auto& x : opts)
            o += "," + x;
        argv = {daemon_bin()};
        if (foreground) argv.push_back("-f");
        argv.insert(argv.end(), {"-o", o, mountpoint});
    } else {
        std::string o = default_mode ? "" : "mode=passthrough";
        for (auto& x : opts)
            o += (o.empty() ? "" : ",") + x;
        argv = {daemon_bin(), source, mountpoint};
        if (foreground) argv.push_back("-f");
        argv.insert(argv.end(), {"-o", o});
    }
    return argv;
}

std::vector<std::string> suite_options(const std::vector<std::string>& own) {
    std::vector<std::string> out;
    const char* env = std::getenv("RIAKFS_IT_OPTS");
    if (env && *env && daemon_flavor() == Flavor::Riakfs) {
        // A test that names its cache policy tests that policy: the suite's cache= and the
        // writeback cache it needs give way.
        bool own_cache = false;
        for (const auto& o : own)
            if (o.rfind("cache=", 0) == 0) own_cache = true;
        std::string_view list(env);
        while (!list.empty()) {
            auto comma = list.find(',');
            std::string word(list.substr(0, comma));
            list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
            if (word.empty()) continue;
            if (own_cache && (word.rfind("cache=", 0) == 0 || word == "writeback_cache")) continue;
            out.push_back(std::move(word));
        }
    }
    out.insert(out.end(), own.begin(), own.end());
    return out;
}

bool suite_writeback() {
    const char* env = std::getenv("RIAKFS_IT_OPTS");
    if (!env || daemon_flavor() != Flavor::Riakfs) return false;
    for (const auto& word : suite_options({}))
        if (word == "writeback_cache") return true;
    return false;
}

std::string errname(int e) {
    if (e == 0) return "OK";
    const char* n = ::strerrorname_np(e);
    return n ? std::string(n) : "errno " + std::to_string(e);
}

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
}

void Fd::reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

int try_write_file(const std::string& path, std::string_view data, mode_t mode) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) return errno;
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? errno : EIO;
        off += static_cast<size_t>(n);
    }
    return ::close(fd.release()) == 0 ? 0 : errno;
}

void write_file(const std::string& path, std::string_view data, mode_t mode) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    INFO("write_file " << path << ": " << errname(errno));
    REQUIRE(fd);
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        INFO("write " << path << ": " << errname(errno));
        REQUIRE(n > 0);
        off += static_cast<size_t>(n);
    }
    INFO("close " << path << ": " << errname(errno));
    REQUIRE(::close(fd.release()) == 0);
}

std::optional<std::string> try_read_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    std::string out;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::string read_file(const std::string& path) {
    auto r = try_read_file(path);
    INFO("read_file " << path << ": " << errname(errno));
    REQUIRE(r.has_value());
    return *r;
}

std::vector<std::string> list_dir(const std::string& path) {
    std::vector<std::string> out;
    DIR* d = ::opendir(path.c_str());
    INFO("opendir " << path << ": " << errname(errno));
    REQUIRE(d != nullptr);
    errno = 0;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(n);
        errno = 0;
    }
    int err = errno;
    ::closedir(d);
    INFO("readdir " << path << ": " << errname(err));
    REQUIRE(err == 0);
    return out;
}

std::string random_bytes(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string out(n, '\0');
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = rng();
        std::memcpy(out.data() + i, &v, 8);
    }
    for (; i < n; ++i)
        out[i] = static_cast<char>(rng());
    return out;
}

uint64_t fnv1a(std::string_view data, uint64_t h) {
    for (unsigned char c : data) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

std::string digest(std::string_view data) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "size=%zu fnv=%016llx", data.size(),
                  static_cast<unsigned long long>(fnv1a(data)));
    return buf;
}

int run_as(uid_t uid, gid_t gid, const std::function<int()>& fn) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(250);
        int r = fn();
        ::_exit(r & 0xff);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 200 + WTERMSIG(status);
    return 255;
}

namespace {
// Drops every privilege of the calling (child) process: groups, gid, uid.
bool become(uid_t uid, gid_t gid) {
    return ::setgroups(0, nullptr) == 0 && ::setgid(gid) == 0 && ::setuid(uid) == 0;
}
} // namespace

FreshUser::FreshUser() {
    // Ids above every account useradd makes by default, spread by pid so parallel test
    // processes do not share one; each is checked against the user and group databases.
    static unsigned next = 0;
    unsigned base = 3000000u + (static_cast<unsigned>(::getpid()) % 100000u) * 16u;
    for (;; ++next) {
        uid_ = static_cast<uid_t>(base + next);
        gid_ = static_cast<gid_t>(base + next);
        if (!::getpwuid(uid_) && !::getgrgid(gid_)) break;
    }
    ++next;
}

int FreshUser::run(const std::function<int()>& fn) const {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!become(uid_, gid_)) ::_exit(250);
        int r = fn();
        ::_exit(r & 0xff);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 200 + WTERMSIG(status);
    return 255;
}

namespace {

// The sanitizer builds' run-time options (test/sanitizers/meson.build) name files under the
// build directory: suppression files to read and a log_path to write reports to. A process run
// as another user cannot reach them when the checkout lies where only root may look (a clone in
// a mode-0700 temporary directory): TSan then fails to read its suppressions, cannot write that
// complaint either, and exits 66 before the program runs. Such a process gets copies of the
// suppression files and a log_path in a directory of its own; its reports are moved beside the
// others when it has ended, so the sanitizer_reports test still sees every one of them.
class UserSanitizerFiles {
public:
    UserSanitizerFiles(uid_t uid, gid_t gid) {
        static constexpr std::array kOptions = {
            "ASAN_OPTIONS=", "LSAN_OPTIONS=", "UBSAN_OPTIONS=", "TSAN_OPTIONS="};
        bool rewritten = false;
        for (char** e = environ; *e; ++e) {
            std::string entry = *e;
            for (std::string_view prefix : kOptions) {
                if (!entry.starts_with(prefix)) continue;
                if (dir_.empty()) make_dir(uid, gid);
                entry = std::string(prefix) + rewrite(entry.substr(prefix.size()));
                rewritten = true;
            }
            env_.push_back(std::move(entry));
        }
        if (!rewritten) env_.clear();
    }
    ~UserSanitizerFiles() {
        if (dir_.empty()) return;
        std::error_code ec;
        if (!reports_dir_.empty()) {
            for (const auto& f : std::filesystem::directory_iterator(dir_, ec)) {
                const std::string name = f.path().filename();
                if (!name.starts_with(report_prefix_)) continue;
                std::filesystem::copy_file(f.path(), reports_dir_ / name, ec);
            }
        }
        std::filesystem::remove_all(dir_, ec);
    }
    UserSanitizerFiles(const UserSanitizerFiles&) = delete;
    UserSanitizerFiles& operator=(const UserSanitizerFiles&) = delete;
    // The environment to run the process with; null outside a sanitizer build.
    const std::vector<std::string>* env() const { return env_.empty() ? nullptr : &env_; }

private:
    void make_dir(uid_t uid, gid_t gid) {
        std::string tmpl = "/tmp/riakfs-user-sanitizer.XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        dir_ = tmpl;
        REQUIRE(::chown(dir_.c_str(), uid, gid) == 0);
    }
    std::string rewrite(const std::string& options) {
        std::string out;
        std::stringstream in(options);
        std::string opt;
        while (std::getline(in, opt, ':')) {
            if (opt.starts_with("suppressions=")) {
                const std::filesystem::path from = opt.substr(13);
                const auto to = dir_ / from.filename();
                std::error_code ec;
                std::filesystem::copy_file(from, to,
                                           std::filesystem::copy_options::overwrite_existing, ec);
                ::chmod(to.c_str(), 0644);
                opt = "suppressions=" + to.string();
            } else if (opt.starts_with("log_path=")) {
                const std::filesystem::path log = opt.substr(9);
                reports_dir_ = log.parent_path();
                report_prefix_ = log.filename();
                opt = "log_path=" + (dir_ / report_prefix_).string();
            }
            if (!out.empty()) out += ':';
            out += opt;
        }
        return out;
    }

    std::filesystem::path dir_;
    std::filesystem::path reports_dir_;
    std::string report_prefix_;
    std::vector<std::string> env_;
};

} // namespace

ProcResult FreshUser::exec(const std::vector<std::string>& argv) const {
    uid_t uid = uid_;
    gid_t gid = gid_;
    UserSanitizerFiles sanitizer_files(uid, gid);
    return run_cmd(
        argv, std::chrono::seconds(20),
        [uid, gid] {
            if (!become(uid, gid)) ::_exit(250);
        },
        sanitizer_files.env());
}

struct stat lstat_ok(const std::string& path) {
    struct stat st {};
    INFO("lstat " << path);
    REQUIRE_OK(::lstat(path.c_str(), &st));
    return st;
}

struct stat stat_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st;
}

ProcResult run_cmd(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                   const std::function<void()>& pre_exec, const std::vector<std::string>* env) {
    ProcResult res;
    Fd out(::memfd_create("run_cmd_out", MFD_CLOEXEC));
    Fd err(::memfd_create("run_cmd_err", MFD_CLOEXEC));
    REQUIRE(out);
    REQUIRE(err);
    pid_t pid = spawn_child(argv, out.get(), err.get(), pre_exec, env);
    int status = 0;
    if (!wait_pid_for(pid, timeout, &status)) {
        res.timed_out = true;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    if (!res.timed_out && WIFEXITED(status)) {
        res.exited = true;
        res.exit_code = WEXITSTATUS(status);
    }
    res.output = read_fd_all(out.get());
    res.err = read_fd_all(err.get());
    return res;
}

std::optional<MountEntry> find_mount(const std::string& mountpoint) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    std::optional<MountEntry> found;
    while (std::getline(in, line)) {
        std::istringstream ss(line);
        std::string id, parent, devs, root, mp, opts;
        ss >> id >> parent >> devs >> root >> mp >> opts;
        if (unescape_mountinfo(mp) != mountpoint) continue;
        std::string tok;
        while (ss >> tok && tok != "-") {
        }
        MountEntry e;
        std::string source;
        ss >> e.fstype >> source >> e.super_options;
        e.options = opts;
        std::sscanf(devs.c_str(), "%u:%u", &e.major, &e.minor);
        found = e; // the last entry for a mount point is the one on top
    }
    return found;
}

bool is_fuse_mounted(const std::string& mountpoint) {
    auto e = find_mount(mountpoint);
    return e && e->fstype.rfind("fuse", 0) == 0;
}

bool abort_fuse_connection(unsigned major, unsigned minor) {
    const char* base = "/sys/fs/fuse/connections";
    std::string path = std::string(base) + "/" + std::to_string((major << 20) | minor) + "/abort";
    if (::access(path.c_str(), F_OK) != 0) {
        // fusectl may not be mounted in containers.
        ::mount("fusectl", base, "fusectl", 0, nullptr);
    }
    Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) {
        std::fprintf(stderr, "mount_fixture: cannot open %s: %s\n", path.c_str(),
                     ::strerror(errno));
        return false;
    }
    return ::write(fd.get(), "1", 1) == 1;
}

// ------------------------------------------------------------------------------------------------
// TempDir

std::string temp_base() {
    const char* env = std::getenv("TMPDIR");
    struct stat st;
    if (env && env[0] == '/' && ::stat(env, &st) == 0 && S_ISDIR(st.st_mode)) {
        std::string base = env;
        while (base.size() > 1 && base.back() == '/')
            base.pop_back();
        return base;
    }
    return "/tmp";
}

std::string user_xattrs_unsupported(const std::string& dir) {
    std::string probe = dir + "/riakfs-it-xattr-probe-XXXXXX";
    Fd fd(::mkstemp(probe.data()));
    if (!fd) return "cannot create a file in " + dir + " to probe user xattrs: " + errname(errno);
    int rc = ::fsetxattr(fd.get(), "user.riakfs-probe", "1", 1, 0);
    int e = errno;
    ::unlink(probe.c_str());
    if (rc == 0) return "";
    return "the file system of " + dir + " does not store user.* extended attributes (" +
           errname(e) + "; tmpfs has them only since Linux 6.6): set TMPDIR to a directory on " +
           "ext4, xfs or btrfs to run this test";
}

TempDir::TempDir(std::string_view prefix) {
    // Tests run parts as nobody, so every directory above must let others through (0755 below).
    std::string tmpl = temp_base() + "/" + std::string(prefix) + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* p = ::mkdtemp(buf.data());
    if (!p) throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    path_ = p;
    ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
    // Never recurse into a live mount: that would delete through it (or hang on it).
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ss(line);
        std::string a, b, c, d, mp;
        ss >> a >> b >> c >> d >> mp;
        mp = unescape_mountinfo(mp);
        if (mp == path_ || mp.rfind(path_ + "/", 0) == 0) {
            std::fprintf(stderr, "mount_fixture: %s still mounted, not removing %s\n", mp.c_str(),
                         path_.c_str());
            return;
        }
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string TempDir::operator/(std::string_view rel) const {
    return path_ + "/" + std::string(rel);
}

// ------------------------------------------------------------------------------------------------
// MountFixture

struct MountFixture::Watchdog {
    std::mutex mu;
    std::condition_variable cv;
    Clock::time_point deadline = Clock::time_point::max();
    const char* phase = "";
    bool stop = false;
    bool fired = false;
    std::thread thread;
};

MountFixture::MountFixture(MountOptions opts) : opts_(std::move(opts)) {
    source_ = opts_.source_dir.empty() ? dir_ / "src" : opts_.source_dir;
    mnt_ = opts_.same_dir || daemon_flavor() == Flavor::Native ? source_ : dir_ / "mnt";
    stderr_path_ = dir_ / "daemon.stderr";
    if (opts_.source_dir.empty()) REQUIRE(::mkdir(source_.c_str(), 0755) == 0);
    if (mnt_ != source_) REQUIRE(::mkdir(mnt_.c_str(), 0755) == 0);
    if (opts_.prepare) opts_.prepare(source_);
    if (daemon_flavor() == Flavor::Native) {
        done_ = true;
        return;
    }
    wd_ = new Watchdog;
    wd_->thread = std::thread([this] { watchdog_loop(); });
    try {
        start();
    } catch (...) {
        stop_daemon(false);
        // No destructor runs for a fixture whose constructor throws: the watchdog, which reads
        // this object, must end here (ASan saw it read the test's stack after the test's frame
        // was gone when the daemon failed to start).
        stop_watchdog();
        throw;
    }
}

MountFixture::~MountFixture() {
    if (killed_) run_cmd({"fusermount3", "-uz", mnt_}, 10s);
    try {
        unmount();
    } catch (...) {
        std::fprintf(stderr, "mount_fixture: exception during teardown\n");
    }
    stop_watchdog();
}

void MountFixture::stop_watchdog() {
    if (!wd_) return;
    {
        std::lock_guard lk(wd_->mu);
        wd_->stop = true;
    }
    wd_->cv.notify_all();
    wd_->thread.join();
    delete wd_;
    wd_ = nullptr;
}

std::string MountFixture::src(std::string_view rel) const {
    return rel.empty() ? source_ : source_ + "/" + std::string(rel);
}

std::string MountFixture::mnt(std::string_view rel) const {
    return rel.empty() ? mnt_ : mnt_ + "/" + std::string(rel);
}

std::string MountFixture::stderr_text() const {
    std::ifstream in(stderr_path_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void MountFixture::watchdog_loop() {
    std::unique_lock lk(wd_->mu);
    while (!wd_->stop) {
        if (Clock::now() >= wd_->deadline) {
            const char* phase = wd_->phase;
            wd_->deadline = Clock::time_point::max();
            wd_->fired = true;
            lk.unlock();
            emergency_abort(phase);
            lk.lock();
            continue;
        }
        if (wd_->deadline == Clock::time_point::max())
            wd_->cv.wait(lk);
        else
            wd_->cv.wait_until(lk, wd_->deadline);
    }
}

void MountFixture::emergency_abort(const char* why) {
    std::fprintf(stderr, "mount_fixture: watchdog fired (%s); aborting FUSE connection of %s\n",
                 why, mnt_.c_str());
    if (dev_major_ || dev_minor_) abort_fuse_connection(dev_major_, dev_minor_);
    if (pid_ > 0) ::kill(pid_, SIGKILL);
}

void MountFixture::start() {
    std::string bin = daemon_bin();
    REQUIRE(!bin.empty());
    std::vector<std::string> opts = suite_options(opts_.extra_opts);
    if (opts_.allow_other) opts.push_back("allow_other");
    std::vector<std::string> argv = daemon_argv(source_, mnt_, true, opts, opts_.default_mode);

    Fd errfd(::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(errfd);
    const rlim_t nofile = opts_.nofile_limit;
    pid_t pid = spawn_child(argv, errfd.get(), errfd.get(), [nofile] {
        if (nofile == 0) return;
        const rlimit lim{nofile, nofile};
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            ::dprintf(2, "mount_fixture: setrlimit(RLIMIT_NOFILE): %s\n", ::strerror(errno));
            ::_exit(126);
        }
    });
    pid_ = pid;

    {
        std::lock_guard lk(wd_->mu);
        wd_->deadline = Clock::now() + 10s;
        wd_->phase = "mount did not come up within 10 s";
    }
    wd_->cv.notify_all();

    auto deadline = Clock::now() + 10s;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            FAIL("daemon exited before the mount came up (" << describe_status(status)
                                                            << "); stderr:\n"
                                                            << stderr_text());
        }
        if (auto e = find_mount(mnt_); e && e->fstype.rfind("fuse", 0) == 0) {
            dev_major_ = e->major;
            dev_minor_ = e->minor;
            if (!mounted_) live_slot_ = register_live(mnt_);
            mounted_ = true;
            struct statfs sfs {};
            // statfs goes through the daemon; the watchdog aborts the connection if it hangs.
            if (::statfs(mnt_.c_str(), &sfs) == 0 && sfs.f_type == kFuseSuperMagic) break;
        }
        if (Clock::now() >= deadline) FAIL("mount did not come up within 10 s");
        std::this_thread::sleep_for(10ms);
    }

    long body = std::strtol(env_or("RIAKFS_IT_TEST_TIMEOUT", "240").c_str(), nullptr, 10);
    {
        std::lock_guard lk(wd_->mu);
        wd_->deadline = Clock::now() + std::chrono::seconds(body);
        wd_->phase = "test body exceeded RIAKFS_IT_TEST_TIMEOUT";
    }
    wd_->cv.notify_all();
}

// For a failure seen once: every mount's daemon log, appended to RIAKFS_IT_KEEP_LOG (with the
// settings file's log_level = debug, through RIAKFS_IT_OPTS=settings=FILE).
void MountFixture::keep_log(const std::string& text) const {
    if (const char* keep = std::getenv("RIAKFS_IT_KEEP_LOG"); keep && *keep) {
        std::ofstream out(keep, std::ios::app | std::ios::binary);
        out << "==== daemon log of " << mnt_ << (killed_ ? " (killed)" : "") << "\n" << text;
    }
}

void MountFixture::kill_daemon() {
    done_ = true;
    if (wd_) {
        std::lock_guard lk(wd_->mu);
        wd_->deadline = Clock::time_point::max();
    }
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
    killed_ = true; // the dead mount stays until the fixture goes: calls on it fail (ENOTCONN)
    keep_log(stderr_text());
}

void MountFixture::unmount(bool use_umount) {
    if (done_) return;
    done_ = true;
    stop_daemon(use_umount);
}

void MountFixture::stop_daemon(bool use_umount) {
    done_ = true;
    bool fired = false;
    if (wd_) {
        std::lock_guard lk(wd_->mu);
        wd_->deadline = Clock::time_point::max();
        fired = wd_->fired;
    }
    if (fired) report_failure("watchdog had to abort the FUSE connection (daemon hung)");

    int status = 0;
    bool exited = false;
    const bool still_mounted = is_fuse_mounted(mnt_);
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited = true;
        // Exiting on its own is fine after an unmount the test did itself (lazy unmount,
        // SIGTERM); dying while still mounted is not, and the status must be 0 either way.
        if (still_mounted || !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            report_failure("daemon exited early (" + describe_status(status) +
                           (still_mounted ? ", still mounted" : "") + "); stderr:\n" +
                           stderr_text());
    }

    if (still_mounted) {
        ProcResult r =
            use_umount ? run_cmd({"umount", mnt_}, 10s) : run_cmd({"fusermount3", "-u", mnt_}, 10s);
        if (!r.exited || r.exit_code != 0) {
            report_failure(std::string(use_umount ? "umount" : "fusermount3 -u") + " " + mnt_ +
                           " failed: " + r.output + r.err);
            run_cmd({"fusermount3", "-uz", mnt_}, 10s);
        }
    }

    if (pid_ > 0 && !exited) {
        // Generous: a daemon releasing tens of thousands of inodes on a loaded 2-core CI
        // machine is slow, not hung.
        if (wait_pid_for(pid_, 30s, &status)) {
            exited = true;
            if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                report_failure("daemon did not exit cleanly after unmount (" +
                               describe_status(status) + "); stderr:\n" + stderr_text());
        } else {
            report_failure("daemon still running 30 s after unmount; aborting connection");
            if (dev_major_ || dev_minor_) abort_fuse_connection(dev_major_, dev_minor_);
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
        }
    }
    pid_ = -1;

    if (is_fuse_mounted(mnt_)) {
        report_failure("mount point still mounted after teardown: " + mnt_);
        if (dev_major_ || dev_minor_) abort_fuse_connection(dev_major_, dev_minor_);
        run_cmd({"fusermount3", "-uz", mnt_}, 10s);
    }
    mounted_ = false;
    unregister_live(live_slot_);
    live_slot_ = -1;

    // libfuse's output_checker: any error or sanitizer report fails the test.
    std::string text = stderr_text();
    keep_log(text);
    // The daemon's log lines are logfmt ("level=error msg=..."); "ERROR" is kept for the stand-in.
    static const std::array<const char*, 8> bad = {
        "level=error",     "ERROR",          "AddressSanitizer",           "LeakSanitizer",
        "ThreadSanitizer", "runtime error:", "UndefinedBehaviorSanitizer", "MemorySanitizer"};
    for (const char* b : bad) {
        if (opts_.errors_expected &&
            (std::string_view(b) == "ERROR" || std::string_view(b) == "level=error"))
            continue;
        if (text.find(b) != std::string::npos) {
            report_failure(std::string("daemon stderr contains \"") + b + "\":\n" + text);
            return;
        }
    }
    // Warnings point at bookkeeping bugs (a FORGET that does not match the lookup count): they
    // fail the test that caused them, unless it provokes them on purpose.
    // Except the daemon's note that its connection was aborted: the watchdog reports its own
    // aborts above, and a connection number reused by the kernel can be aborted by a stale
    // cleanup elsewhere, which says nothing about this daemon.
    std::string warnings;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.find("level=warning") == std::string::npos &&
            line.find("WARNING") == std::string::npos)
            continue;
        if (line.find("FUSE connection was aborted") == std::string::npos) warnings += line + "\n";
    }
    if (!warnings.empty() && !opts_.warnings_expected) {
        report_failure("daemon stderr has warnings:\n" + text);
        return;
    }
}

} // namespace riakfs::it
