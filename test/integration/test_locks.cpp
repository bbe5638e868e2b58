// Passthrough mode: POSIX record locks and flock() between processes.
#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

using namespace riakfs::it;

namespace {

// Runs fn in a forked child (same credentials); returns its errno-style result.
int in_child(const std::function<int()>& fn) {
    return run_as(0, 0, fn);
}

struct flock make_lock(short type, off_t start, off_t len) {
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    return fl;
}

} // namespace

TEST_CASE("POSIX locks conflict between processes and F_GETLK reports the holder", "[locks]") {
    MountFixture fx;
    write_file(fx.mnt("f"), std::string(1000, 'x'));
    std::string path = fx.mnt("f");
    Fd fd(::open(path.c_str(), O_RDWR));
    REQUIRE(fd);
    struct flock wl = make_lock(F_WRLCK, 0, 100);
    REQUIRE_OK(::fcntl(fd.get(), F_SETLK, &wl));
    const pid_t me = ::getpid();

    // A conflicting write lock from another process: EAGAIN (or EACCES, POSIX allows both).
    int r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDWR);
        if (cfd < 0) return 100;
        struct flock l = make_lock(F_WRLCK, 50, 10);
        int rc = ::fcntl(cfd, F_SETLK, &l) == 0 ? 0 : errno;
        return rc;
    });
    CHECK((errname(r) == "EAGAIN" || errname(r) == "EACCES"));

    // A read lock on an overlapping range conflicts too; a non-overlapping one does not.
    r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDONLY);
        if (cfd < 0) return 100;
        struct flock l = make_lock(F_RDLCK, 99, 1);
        return ::fcntl(cfd, F_SETLK, &l) == 0 ? 0 : errno;
    });
    CHECK((errname(r) == "EAGAIN" || errname(r) == "EACCES"));
    r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDWR);
        if (cfd < 0) return 100;
        struct flock l = make_lock(F_WRLCK, 100, 50);
        return ::fcntl(cfd, F_SETLK, &l) == 0 ? 0 : errno;
    });
    CHECK(errname(r) == "OK");

    // F_GETLK from the child reports our lock and pid. The child encodes the answer in its exit
    // status: 0 = correct, 1 = unlocked reported, 2 = wrong type/range, 3 = wrong pid.
    r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDWR);
        if (cfd < 0) return 100;
        struct flock l = make_lock(F_WRLCK, 10, 5);
        if (::fcntl(cfd, F_GETLK, &l) != 0) return 101;
        if (l.l_type == F_UNLCK) return 1;
        if (l.l_type != F_WRLCK || l.l_start != 0 || l.l_len != 100) return 2;
        if (l.l_pid != me) return 3;
        return 0;
    });
    CHECK(r == 0);

    // After unlocking, the child can take the lock.
    struct flock ul = make_lock(F_UNLCK, 0, 0);
    REQUIRE_OK(::fcntl(fd.get(), F_SETLK, &ul));
    r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDWR);
        if (cfd < 0) return 100;
        struct flock l = make_lock(F_WRLCK, 0, 100);
        return ::fcntl(cfd, F_SETLK, &l) == 0 ? 0 : errno;
    });
    CHECK(errname(r) == "OK");

    // Shared read locks from two processes coexist.
    struct flock rl = make_lock(F_RDLCK, 0, 0);
    REQUIRE_OK(::fcntl(fd.get(), F_SETLK, &rl));
    r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDONLY);
        if (cfd < 0) return 100;
        struct flock l = make_lock(F_RDLCK, 0, 0);
        return ::fcntl(cfd, F_SETLK, &l) == 0 ? 0 : errno;
    });
    CHECK(errname(r) == "OK");
}

TEST_CASE("a lock is released when the holder closes the file", "[locks]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    std::string path = fx.mnt("f");
    {
        Fd fd(::open(path.c_str(), O_RDWR));
        REQUIRE(fd);
        struct flock wl = make_lock(F_WRLCK, 0, 0);
        REQUIRE_OK(::fcntl(fd.get(), F_SETLK, &wl));
    }
    int r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDWR);
        if (cfd < 0) return 100;
        struct flock l = make_lock(F_WRLCK, 0, 0);
        return ::fcntl(cfd, F_SETLK, &l) == 0 ? 0 : errno;
    });
    CHECK(errname(r) == "OK");
}

TEST_CASE("flock LOCK_EX|LOCK_NB conflicts with another holder", "[locks]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    std::string path = fx.mnt("f");
    Fd fd(::open(path.c_str(), O_RDONLY));
    REQUIRE(fd);
    REQUIRE_OK(::flock(fd.get(), LOCK_EX | LOCK_NB));

    int r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDONLY);
        if (cfd < 0) return 100;
        return ::flock(cfd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
    });
    CHECK(errname(r) == errname(EWOULDBLOCK));
    r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDONLY);
        if (cfd < 0) return 100;
        return ::flock(cfd, LOCK_SH | LOCK_NB) == 0 ? 0 : errno;
    });
    CHECK(errname(r) == errname(EWOULDBLOCK));

    // Two open file descriptions in one process conflict as well.
    Fd other(::open(path.c_str(), O_RDONLY));
    REQUIRE(other);
    CHECK_ERRNO(::flock(other.get(), LOCK_EX | LOCK_NB), EWOULDBLOCK);

    // Downgrade to shared: other shared holders succeed, exclusive still fails.
    REQUIRE_OK(::flock(fd.get(), LOCK_SH | LOCK_NB));
    r = in_child([&] {
        int cfd = ::open(path.c_str(), O_RDONLY);
        if (cfd < 0) return 100;
        return ::flock(cfd, LOCK_SH | LOCK_NB) == 0 ? 0 : errno;
    });
    CHECK(errname(r) == "OK");
    CHECK_ERRNO(::flock(other.get(), LOCK_EX | LOCK_NB), EWOULDBLOCK);

    REQUIRE_OK(::flock(fd.get(), LOCK_UN));
    CHECK_OK(::flock(other.get(), LOCK_EX | LOCK_NB));
}
