// A request whose handler throws is still answered (issue 14): the daemon's Reply answers EIO
// when it is destroyed unanswered, so the application's system call fails at once instead of
// hanging until the connection is aborted, and what the handler had half made (the descriptor
// of an open) is not leaked. Runs riakfs-test-faults, the daemon built with RIAKFS_TEST_FAULT.
#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
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
