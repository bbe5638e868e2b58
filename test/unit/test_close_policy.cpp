// Which opens skip FLUSH: only those on file systems whose close() has nothing to report.
#include "lib/fs/close_policy.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

using rfs::fs::close_never_fails;
using rfs::fs::ClosePolicy;

namespace {
constexpr long kFuseMagic = 0x65735546;
constexpr long kNfsMagic = 0x6969;
constexpr long kCifsMagic = 0xFF534D42;

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

TEST_CASE("local file systems without a flush operation skip FLUSH", "[close]") {
    CHECK(close_never_fails(EXT4_SUPER_MAGIC));
    CHECK(close_never_fails(XFS_SUPER_MAGIC));
    CHECK(close_never_fails(TMPFS_MAGIC));
    CHECK(close_never_fails(RAMFS_MAGIC));
}

TEST_CASE("network and FUSE sources, and unknown ones, keep FLUSH", "[close]") {
    CHECK_FALSE(close_never_fails(kNfsMagic));
    CHECK_FALSE(close_never_fails(kCifsMagic));
    CHECK_FALSE(close_never_fails(kFuseMagic));
    CHECK_FALSE(close_never_fails(0x12345678));
}

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
