// A request whose handler throws is still answered (issue 14): the daemon's Reply answers EIO
// when it is destroyed unanswered, so the application's system call fails at once instead of
// hanging until the connection is aborted, and what the handler had half made (the descriptor
// of an open) is not leaked. Runs riakfs-test-faults, the daemon built with RIAKFS_TEST_FAULT.
#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

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
