// A request whose handler throws is still answered (issue 14): the daemon's Reply answers EIO
// when it is destroyed unanswered, so the application's system call fails at once instead of
// hanging until the connection is aborted, and what the handler had half made (the descriptor
// of an open) is not leaked. And a C library call that fails (daemon/syscall_faults.hpp) ends as
// the daemon promises: one line and exit status 1 at start, or an errno for the application and
// a line for the operator, with the daemon serving on. Runs riakfs-test-faults, the daemon built
// with RIAKFS_TEST_FAULT.
#include "mount_fixture.hpp"
#include "nested_mount.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

using namespace riakfs::it;

namespace {

// Selects the fault for the daemons started while it lives (they inherit the environment).
struct Fault {
    explicit Fault(const char* name) { ::setenv("RIAKFS_TEST_FAULT", name, 1); }
    ~Fault() { ::unsetenv("RIAKFS_TEST_FAULT"); }
};

size_t open_fds(pid_t pid) {
    size_t n = 0;
    for ([[maybe_unused]] auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        ++n;
    return n;
}

// How many times `what` occurs in `text`.
size_t occurrences(const std::string& text, std::string_view what) {
    size_t n = 0;
    for (size_t at = 0; (at = text.find(what, at)) != std::string::npos; at += what.size())
        ++n;
    return n;
}

MountOptions with_file() {
    MountOptions o = MountOptions::prepared(
        [](const std::string& source) { write_file(source + "/f", "contents"); });
    o.errors_expected = true;
    return o;
}

} // namespace

TEST_CASE("an OPEN whose handler throws fails with EIO and leaks no descriptor", "[faults]") {
    Fault fault("throw_in_open");
    MountFixture m(with_file());
    lstat_ok(m.mnt("f")); // its inode (and that inode's own descriptor) exists from here on
    size_t before = open_fds(m.pid());
    for (int i = 0; i < 50; ++i)
        CHECK_ERRNO(::open(m.mnt("f").c_str(), O_RDONLY), EIO);
    CHECK(open_fds(m.pid()) == before);
    // The daemon goes on serving other requests.
    CHECK(lstat_ok(m.mnt("f")).st_size == 8);
    CHECK(m.stderr_text().find("answering EIO") != std::string::npos);
}

TEST_CASE("an FSYNC whose body throws on the blocking pool fails with EIO", "[faults]") {
    Fault fault("throw_in_fsync");
    MountFixture m(with_file());
    Fd fd(::open(m.mnt("f").c_str(), O_WRONLY));
    REQUIRE(fd);
    CHECK_ERRNO(::fsync(fd.get()), EIO);
    CHECK_ERRNO(::fdatasync(fd.get()), EIO);
    CHECK_OK(::write(fd.get(), "x", 1));
    fd.reset();
    CHECK(lstat_ok(m.mnt("f")).st_size == 8);
}

namespace {

// riakfs_inodes from the daemon's metrics endpoint (metrics=127.0.0.1:0; the port is logged).
std::uint64_t inodes_remembered(const MountFixture& m) {
    std::string log = m.stderr_text();
    auto at = log.find("msg=\"metrics endpoint listening\" address=127.0.0.1:");
    INFO(log);
    REQUIRE(at != std::string::npos);
    at = log.find("127.0.0.1:", at);
    std::string url = "http://" + log.substr(at, log.find_first_of(" \n", at) - at) + "/metrics";
    ProcResult got = run_cmd({"curl", "-s", "-S", url}, std::chrono::seconds(20));
    REQUIRE(got.exit_code == 0);
    auto line = got.output.find("\nriakfs_inodes ");
    INFO(got.output);
    REQUIRE(line != std::string::npos);
    return std::stoull(got.output.substr(line + 15));
}

// Lists `path` to its end: 0, or the errno readdir failed with.
int list_error(const std::string& path) {
    DIR* dir = ::opendir(path.c_str());
    if (!dir) return errno;
    int err = 0;
    for (;;) {
        errno = 0;
        if (::readdir(dir) == nullptr) {
            err = errno;
            break;
        }
    }
    ::closedir(dir);
    return err;
}

void drop_kernel_caches() {
    Fd fd(::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC));
    REQUIRE(fd); // root, as the integration suite runs
    REQUIRE(::write(fd.get(), "2", 1) == 1);
}

} // namespace

// A READDIRPLUS reply that never reaches the kernel (an interrupted request) carried entries
// whose lookups riakfs had counted: they are undone, or the kernel, never having seen them, would
// never FORGET them and the daemon would remember them for the mount's whole life.
TEST_CASE("a READDIRPLUS reply lost to an interruption leaves no inode remembered", "[faults]") {
    Fault fault("lose_readdirplus_reply");
    MountOptions o = MountOptions::prepared([](const std::string& source) {
        REQUIRE(::mkdir((source + "/d").c_str(), 0755) == 0);
        for (int i = 0; i < 100; ++i)
            write_file(source + "/d/f" + std::to_string(i), "x");
    });
    o.extra_opts = {"metrics=127.0.0.1:0"};
    MountFixture m(o);
    // The kernel asks for READDIRPLUS on a directory's first listing; the reply is lost.
    CHECK(list_error(m.mnt("d")) == EIO);
    // Everything the kernel knows is dropped and forgotten: only the root stays.
    drop_kernel_caches();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::uint64_t nodes = inodes_remembered(m);
    while (nodes > 1 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        drop_kernel_caches();
        nodes = inodes_remembered(m);
    }
    CHECK(nodes == 1);
}

// Each event loop reads /dev/fuse through a non-blocking duplicate of the session descriptor; a
// blocking one would stall the loop in read(). A failure to make it non-blocking ends the start:
// one error line, exit status 1, nothing left mounted. Run as an operator runs it (in the
// background), the failure reaches the command that started it.
TEST_CASE("a /dev/fuse descriptor that cannot be made non-blocking fails the start in one line",
          "[faults]") {
    Fault fault("fuse_nonblock_fails");
    TempDir dir;
    const std::string src = dir / "src", mnt = dir / "mnt";
    REQUIRE_OK(::mkdir(src.c_str(), 0755));
    REQUIRE_OK(::mkdir(mnt.c_str(), 0755));
    ProcResult r =
        run_cmd({daemon_bin(), src, mnt, "-o", "mode=passthrough"}, std::chrono::seconds(30));
    bool mounted = is_fuse_mounted(mnt);
    if (mounted) ::umount2(mnt.c_str(), MNT_DETACH);
    INFO("stderr: [" << r.err << "] stdout: [" << r.output << "]");
    CHECK_FALSE(r.timed_out);
    CHECK(r.exited);
    CHECK(r.exit_code == 1);
    CHECK_FALSE(mounted);
    std::vector<std::string> errors;
    std::istringstream lines(r.err);
    for (std::string line; std::getline(lines, line);)
        if (line.find("ERROR") != std::string::npos || line.find("error") != std::string::npos)
            errors.push_back(line);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find("make /dev/fuse non-blocking: Invalid argument") != std::string::npos);
}

// A file or node that a user (allow_other) creates is made by the daemon, handed over to the
// user with chown, which clears set-user-ID and set-group-ID bits, and then given its bits back.
// When that last step fails the object is the user's without the bits (the safe side), the
// create itself succeeds, and the operator reads why.
TEST_CASE("set-ID bits that cannot be given back after a hand-over are missing and logged",
          "[faults]") {
    Fault fault("setid_restore_fails");
    MountOptions o = MountOptions::prepared([](const std::string& src) {
        REQUIRE_OK(::mkdir((src + "/pub").c_str(), 0777));
        REQUIRE_OK(::chmod((src + "/pub").c_str(), 0777));
    });
    o.with_allow_other();
    o.warnings_expected = true;
    MountFixture m(o);
    FreshUser user;
    const std::string pub = m.mnt("pub");
    int err = user.run([&] {
        ::umask(022);
        int fd = ::open((pub + "/created").c_str(), O_CREAT | O_EXCL | O_WRONLY, 06755);
        if (fd < 0) return errno;
        ::close(fd);
        if (::mknod((pub + "/made").c_str(), S_IFREG | 06755, 0) != 0) return errno;
        return 0;
    });
    CHECK(errname(err) == "OK");
    for (const char* name : {"pub/created", "pub/made"}) {
        INFO(name);
        struct stat s = lstat_ok(m.src(name));
        CHECK(s.st_uid == user.uid());
        CHECK((s.st_mode & 07777) == 0755);
        CHECK((lstat_ok(m.mnt(name)).st_mode & 07777) == 0755);
    }
    std::string log = m.stderr_text();
    INFO(log);
    CHECK(occurrences(log, "cannot restore the set-ID bits of a new object: Operation not "
                           "permitted") == 2);
}

// Objects on a file system without file handles (ramfs here) are reached by name, so a rename
// tells the inode table what moved, which it learns with fstatat. A rename whose object cannot
// be stat'ed is refused with that errno and moves nothing; made anyway, the inode would be
// reopened by a name that is gone.
TEST_CASE("a rename whose object cannot be stat'ed is refused and moves nothing", "[faults]") {
    Fault fault("rename_stat_fails"); // for names beginning with "fault-"
    std::string ramfs;
    MountOptions o = MountOptions::prepared([&](const std::string& src) {
        ramfs = src + "/r";
        REQUIRE_OK(::mkdir(ramfs.c_str(), 0755));
        REQUIRE_OK(::mount("none", ramfs.c_str(), "ramfs", 0, nullptr));
        write_file(ramfs + "/fault-a", "a");
        write_file(ramfs + "/b", "b");
    });
    MountFixture m(o);
    Unmounter unmount_ramfs{m, {ramfs}};
    lstat_ok(m.mnt("r/fault-a"));
    lstat_ok(m.mnt("r/b"));
    CHECK_ERRNO(::rename(m.mnt("r/fault-a").c_str(), m.mnt("r/moved").c_str()), EIO);
    // With RENAME_EXCHANGE both objects move: the second one cannot be stat'ed.
    CHECK_ERRNO(::renameat2(AT_FDCWD, m.mnt("r/b").c_str(), AT_FDCWD, m.mnt("r/fault-a").c_str(),
                            RENAME_EXCHANGE),
                EIO);
    auto names = list_dir(m.src("r"));
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"b", "fault-a"});
    CHECK(read_file(m.mnt("r/fault-a")) == "a");
    CHECK(read_file(m.mnt("r/b")) == "b");
    // A rename the table can follow is made, and the inode follows it.
    CHECK_OK(::rename(m.mnt("r/b").c_str(), m.mnt("r/moved").c_str()));
    CHECK(read_file(m.mnt("r/moved")) == "b");
}

// A READ needs a request buffer of its own (the one the channel read the request into is read
// into again right away). With no memory for one, the READ fails with EIO, the loop logs it and
// serves on, and nothing is leaked.
TEST_CASE("a READ that finds no memory for its buffer fails with EIO and the daemon serves on",
          "[faults]") {
    Fault fault("no_request_buffers"); // each loop has the buffer its channel reads into
    MountFixture m(with_file());
    lstat_ok(m.mnt("f"));
    size_t before = open_fds(m.pid());
    for (int i = 0; i < 20; ++i) {
        Fd fd(::open(m.mnt("f").c_str(), O_RDONLY));
        REQUIRE(fd);
        char buf[16];
        CHECK_ERRNO(::read(fd.get(), buf, sizeof buf), EIO);
    }
    // Other requests are served, a write among them (its data came with the request).
    CHECK(lstat_ok(m.mnt("f")).st_size == 8);
    {
        Fd fd(::open(m.mnt("f").c_str(), O_WRONLY | O_APPEND));
        REQUIRE(fd);
        CHECK(::write(fd.get(), "+more", 5) == 5);
    }
    CHECK(lstat_ok(m.src("f")).st_size == 13);
    // The kernel sends RELEASE without waiting for it: give the last ones time to arrive.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (open_fds(m.pid()) != before && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(open_fds(m.pid()) == before);
    std::string log = m.stderr_text();
    INFO(log);
    CHECK(log.find("a handler failed: std::bad_alloc") != std::string::npos);
}
