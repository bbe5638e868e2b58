// Integration-test support: mounts the daemon on a temporary directory and offers small helpers
// for running real syscalls through the mount.
//
// The daemon binary comes from the environment:
//   RIAKFS_BIN      path of the executable (meson passes the built riakfs).
//   RIAKFS_FLAVOR   "riakfs" (default) or "passthrough_ll"; the latter selects the command line of
//                   libfuse's example (`passthrough_ll -f -o source=SRC,... MNT`) so the suite can
//                   be validated against a known-good stand-in. Auto-detected from the binary's
//                   name.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace riakfs::it {

inline constexpr long kFuseSuperMagic = 0x65735546;
inline constexpr uid_t kNobody = 65534;
inline constexpr gid_t kNogroup = 65534;

// Native runs the test bodies on a plain directory (MOUNTPOINT == SOURCE, nothing mounted) to
// check what native Linux does; assertions about the mount itself are expected to fail there.
enum class Flavor { Riakfs, PassthroughLl, Native };

// Path of the daemon under test (empty when RIAKFS_BIN is unset).
std::string daemon_bin();
Flavor daemon_flavor();
inline bool is_riakfs() {
    return daemon_flavor() == Flavor::Riakfs;
}
// For a test (or the rest of one) about what only riakfs has (`what`: its options, messages,
// metrics, Riak modes): true with riakfs. With a stand-in daemon, false: the test is skipped,
// a warning says so, and the run counts it, so that it ends with meson's SKIP (77) rather than
// a pass that checked nothing (it_main.cpp).
bool riakfs_only(const char* what);
// Counts a check that cannot run here (`why`: the daemon under test cannot have it, or the
// kernel lacks what it measures by), with a warning, as riakfs_only() does; always true. The
// run then ends with meson's SKIP (77), which .ci/run counts as failed: a skipped check never
// passes there.
bool skipped(const char* why);
// How many checks riakfs_only() and skipped() skipped in this run.
int skipped_checks();
// The threads of process `pid` as they are now: each one's name (its comm: what the daemon
// named it, e.g. riakfs-loop1) and its /proc/PID/task/TID directory.
struct ThreadEntry {
    std::string name;
    std::string task_dir;
};
std::vector<ThreadEntry> threads_of(pid_t pid);
// The daemon's command line for the configured flavor (riakfs: SRC MNT [-f] -o
// mode=passthrough,...).
std::vector<std::string> daemon_argv(const std::string& source, const std::string& mountpoint,
                                     bool foreground, const std::vector<std::string>& opts,
                                     bool default_mode = false);

// The -o options of a riakfs mount whose test asks for `own`: RIAKFS_IT_OPTS (comma-separated,
// e.g. "cache=always,writeback_cache" to run a suite with the kernel's writeback cache) first,
// then `own`. When `own` names a cache= policy, the suite's cache= and writeback_cache are left
// out (the test checks that policy). Other flavors ignore RIAKFS_IT_OPTS.
std::vector<std::string> suite_options(const std::vector<std::string>& own);
// Whether the suite runs with the kernel's writeback cache (RIAKFS_IT_OPTS has writeback_cache,
// riakfs flavor). Written pages then reach SOURCE at close or fsync, not at write(): a test that
// looks at SOURCE beside the mount while a written descriptor is still open syncs it first.
bool suite_writeback();

// "OK" for 0, the symbolic name ("ENOENT") otherwise; used to make assertion output readable.
std::string errname(int e);

// Expands to the errno name of a syscall-style expression (-1 and errno on failure).
#define RIT_ERR(expr) ::riakfs::it::errname(((expr) == -1) ? errno : 0)
#define REQUIRE_OK(expr) REQUIRE(RIT_ERR(expr) == "OK")
#define CHECK_OK(expr) CHECK(RIT_ERR(expr) == "OK")
#define REQUIRE_ERRNO(expr, e) REQUIRE(RIT_ERR(expr) == ::riakfs::it::errname(e))
#define CHECK_ERRNO(expr, e) CHECK(RIT_ERR(expr) == ::riakfs::it::errname(e))

// lstat(2) that must succeed (fails the test, naming the path, otherwise).
struct stat lstat_ok(const std::string& path);
// stat(2) that must succeed.
struct stat stat_of(const std::string& path);

// Owning file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    int release() {
        int f = fd_;
        fd_ = -1;
        return f;
    }
    void reset(int fd = -1);
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

// Whole-file helpers; they fail the current test (REQUIRE) on any error.
void write_file(const std::string& path, std::string_view data, mode_t mode = 0644);
std::string read_file(const std::string& path);
// Returns std::nullopt (and sets errno) instead of failing.
std::optional<std::string> try_read_file(const std::string& path);
// write_file without Catch2 macros, for threads (Catch2 v2's INFO/REQUIRE are not thread-safe):
// 0, or the errno of the call that failed.
int try_write_file(const std::string& path, std::string_view data, mode_t mode = 0644);
std::vector<std::string> list_dir(const std::string& path); // without "." and ".."
std::string random_bytes(size_t n, uint64_t seed);
uint64_t fnv1a(std::string_view data, uint64_t h = 1469598103934665603ull);
// "size=N fnv=HEX" - compare these instead of large binary buffers to keep failures readable.
std::string digest(std::string_view data);

// Runs fn in a forked child after setgroups({gid})/setgid/setuid. fn returns an errno value
// (0 for success) which becomes the child's exit status; a crash becomes 200 + signal. The child
// must only use async-signal-safe-ish code (plain syscalls); no Catch2 assertions in fn.
int run_as(uid_t uid, gid_t gid, const std::function<int()>& fn);
inline int run_as_nobody(const std::function<int()>& fn) {
    return run_as(kNobody, kNogroup, fn);
}

// A user that exists nowhere else on the machine: a uid and a gid that no account, group or
// file uses, no supplementary groups, no capabilities (as `useradd` + `setpriv --reuid --regid
// --clear-groups` would give). Permission tests run their steps as one, and run the same steps on
// a native directory to know what Linux answers.
class FreshUser {
public:
    FreshUser();
    uid_t uid() const { return uid_; }
    gid_t gid() const { return gid_; }
    // fn in a forked child with the user's credentials; its return value (an errno, 0 for
    // success) comes back, a crash as 200 + signal. Plain syscalls only in fn.
    int run(const std::function<int()>& fn) const;
    // A program run as the user (argv[0] looked up in PATH).
    struct ProcResult exec(const std::vector<std::string>& argv) const;

private:
    uid_t uid_;
    gid_t gid_;
};

// Process helpers.
struct ProcResult {
    bool exited = false; // exited normally (not signalled / not timed out)
    int exit_code = -1;  // valid when exited
    bool timed_out = false;
    std::string output; // stdout+stderr when captured together
    std::string err;    // stderr
};
// Runs argv (argv[0] looked up in PATH) and waits at most `timeout`; kills it after that.
// pre_exec runs in the child just before exec (e.g. chdir, dropping capabilities).
// env, when given, is the child's whole environment ("NAME=value" each) instead of ours.
ProcResult run_cmd(const std::vector<std::string>& argv,
                   std::chrono::milliseconds timeout = std::chrono::seconds(20),
                   const std::function<void()>& pre_exec = {},
                   const std::vector<std::string>* env = nullptr);

// On SIGTERM/SIGINT/SIGHUP (e.g. a meson timeout) lazily unmounts every live fixture mount
// before dying, so that an interrupted run leaves no dead mounts behind.
void install_cleanup_handlers();

// Mount table (/proc/self/mountinfo) lookups; these never touch the FUSE daemon.
struct MountEntry {
    unsigned major = 0, minor = 0;
    std::string fstype;
    std::string options;       // per-mount options (rw,nosuid,...)
    std::string super_options; // file-system options (user_id=0,default_permissions,...)
};
std::optional<MountEntry> find_mount(const std::string& mountpoint);
bool is_fuse_mounted(const std::string& mountpoint);
// Writes 1 to /sys/fs/fuse/connections/N/abort (mounting fusectl first if needed).
bool abort_fuse_connection(unsigned major, unsigned minor);

// Where temporary directories go: $TMPDIR when it names a directory, else /tmp.
std::string temp_base();

// Empty when the file system holding `dir` stores user.* extended attributes, otherwise a
// message saying so and what to do. tmpfs has them only since Linux 6.6, so a TMPDIR on tmpfs
// fails xattr checks for reasons that have nothing to do with the daemon.
std::string user_xattrs_unsupported(const std::string& dir);

// Fails the test with that message when the temporary directories cannot hold user.* xattrs.
#define REQUIRE_USER_XATTRS()                                                                      \
    do {                                                                                           \
        std::string rit_why = ::riakfs::it::user_xattrs_unsupported(::riakfs::it::temp_base());    \
        if (!rit_why.empty()) FAIL(rit_why);                                                       \
    } while (0)

// A temporary directory under temp_base() (mode 0755) removed recursively on destruction, but
// only if nothing is mounted below it.
class TempDir {
public:
    explicit TempDir(std::string_view prefix = "riakfs-it");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(std::string_view rel) const;

private:
    std::string path_;
};

struct MountOptions {
    std::vector<std::string> extra_opts; // appended to -o (e.g. "allow_other")
    bool allow_other = false;            // shorthand for extra_opts += "allow_other"
    bool same_dir = false;               // mount over the source directory itself
    // An existing directory to serve instead of a fresh one (kept when the fixture goes), for
    // tests that mount the same SOURCE twice.
    std::string source_dir;
    // RLIMIT_NOFILE (soft and hard) for the daemon only; 0 keeps the one it inherits.
    unsigned long nofile_limit = 0;
    // The test makes the daemon fail on purpose: "ERROR" lines in its stderr are expected
    // (sanitizer reports still fail the test).
    bool errors_expected = false;
    // The test provokes warnings on purpose (e.g. Riak stopped while copies are made). Otherwise
    // a "WARNING" line fails the test: a lookup-count mismatch or a failed hand-over is a bug.
    bool warnings_expected = false;
    // No mode= on the command line: the daemon picks its default (migrate when riak= is given).
    bool default_mode = false;
    // Called with the (not yet mounted) source directory to prepopulate it.
    std::function<void(const std::string& source)> prepare;

    static MountOptions prepared(std::function<void(const std::string& source)> fn) {
        MountOptions o;
        o.prepare = std::move(fn);
        return o;
    }
    MountOptions& with_allow_other() {
        allow_other = true;
        return *this;
    }
    MountOptions& over_source() {
        same_dir = true;
        return *this;
    }
};

// Spawns the daemon in the foreground on a fresh SOURCE/MOUNTPOINT pair and waits until the mount
// is live. On destruction it unmounts with fusermount3 -u, waits for the daemon and checks that it
// exited 0 and that its stderr contains no "ERROR" or sanitizer report. A watchdog aborts the FUSE
// connection if the daemon hangs so that no syscall in the test can block forever.
class MountFixture {
public:
    explicit MountFixture(MountOptions opts = {});
    ~MountFixture();
    MountFixture(const MountFixture&) = delete;
    MountFixture& operator=(const MountFixture&) = delete;

    const std::string& source() const { return source_; }
    const std::string& mountpoint() const { return mnt_; }
    std::string src(std::string_view rel) const; // SOURCE/rel
    std::string mnt(std::string_view rel) const; // MOUNTPOINT/rel
    pid_t pid() const { return pid_; }
    // A crash: kills the daemon with SIGKILL and reaps it. Calls on the dead mount fail
    // (ENOTCONN) until the fixture goes, which detaches it lazily and checks nothing more.
    void kill_daemon();
    std::string stderr_text() const;

    // Unmounts (via `fusermount3 -u`, or `umount` when use_umount) and runs the exit checks.
    // Idempotent; the destructor calls it if the test did not.
    void unmount(bool use_umount = false);

private:
    void start();
    void stop_daemon(bool use_umount);
    void watchdog_loop();
    void stop_watchdog();
    void emergency_abort(const char* why);
    void keep_log(const std::string& text) const;

    MountOptions opts_;
    TempDir dir_;
    std::string source_, mnt_, stderr_path_;
    pid_t pid_ = -1;
    unsigned dev_major_ = 0, dev_minor_ = 0;
    bool mounted_ = false;
    bool done_ = false;
    bool killed_ = false; // kill_daemon(): a dead mount to detach
    int live_slot_ = -1;
    struct Watchdog;
    Watchdog* wd_ = nullptr;
};

} // namespace riakfs::it
