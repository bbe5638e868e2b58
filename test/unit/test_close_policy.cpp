// ClosePolicy's memory per device. Which closes get FLUSH through a real mount is tested in
// test/integration/test_io.cpp ("FLUSH comes exactly for ..."), from the daemon's request counts.
#include "lib/fs/close_policy.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

using rfs::fs::ClosePolicy;

namespace {
struct Opened {
    explicit Opened(const char* path) : fd(::open(path, O_RDONLY | O_CLOEXEC)) {
        REQUIRE(fd >= 0);
        REQUIRE(::fstat(fd, &st) == 0);
        REQUIRE(::fstatfs(fd, &sf) == 0);
    }
    ~Opened() { ::close(fd); }
    int fd;
    struct stat st;
    struct statfs sf;
};
} // namespace

TEST_CASE("the policy asks each device's file system once", "[close]") {
    ClosePolicy policy;
    Opened proc("/proc/self/status"); // procfs: not on the list
    CHECK(policy.needs_flush(proc.st.st_dev, proc.fd));
    // The answer is remembered per device: a descriptor that can no longer be asked is not used.
    CHECK(policy.needs_flush(proc.st.st_dev, -1));

    Opened shm("/dev/shm");
    if (static_cast<unsigned long>(shm.sf.f_type) == TMPFS_MAGIC) {
        CHECK_FALSE(policy.needs_flush(shm.st.st_dev, shm.fd));
        CHECK_FALSE(policy.needs_flush(shm.st.st_dev, -1));
    }
    // A device never seen, whose file system cannot be asked: FLUSH stays, to be safe.
    CHECK(policy.needs_flush(makedev(4095, 4095), -1));
}
