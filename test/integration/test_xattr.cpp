// Passthrough mode: extended attributes (user.* on files and directories).
#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

using namespace riakfs::it;

namespace {

std::optional<std::string> getx(const std::string& p, const char* name) {
    char buf[65536];
    ssize_t n = ::lgetxattr(p.c_str(), name, buf, sizeof buf);
    if (n < 0) return std::nullopt;
    return std::string(buf, size_t(n));
}

std::set<std::string> listx(const std::string& p) {
    char buf[65536];
    ssize_t n = ::llistxattr(p.c_str(), buf, sizeof buf);
    INFO("listxattr " << p << ": " << errname(errno));
    REQUIRE(n >= 0);
    std::set<std::string> out;
    for (ssize_t i = 0; i < n;) {
        std::string name(buf + i);
        out.insert(name);
        i += ssize_t(name.size()) + 1;
    }
    return out;
}

} // namespace

TEST_CASE("set, get, list and remove user xattrs on files and directories", "[xattr]") {
    REQUIRE_USER_XATTRS();
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    REQUIRE_OK(::mkdir(fx.mnt("d").c_str(), 0755));
    for (const char* rel : {"f", "d"}) {
        INFO(rel);
        std::string m = fx.mnt(rel), s = fx.src(rel);
        REQUIRE_OK(::setxattr(m.c_str(), "user.one", "value-1", 7, 0));
        REQUIRE_OK(::setxattr(m.c_str(), "user.two", "", 0, 0)); // empty value
        std::string bin("\0\x01\xff binary", 10);
        REQUIRE_OK(::setxattr(m.c_str(), "user.bin", bin.data(), bin.size(), 0));

        CHECK(getx(m, "user.one") == std::optional<std::string>("value-1"));
        CHECK(getx(m, "user.two") == std::optional<std::string>(""));
        CHECK(getx(m, "user.bin") == std::optional<std::string>(bin));
        CHECK(getx(s, "user.one") == std::optional<std::string>("value-1"));
        CHECK(getx(s, "user.bin") == std::optional<std::string>(bin));

        auto names = listx(m);
        CHECK(names.count("user.one") == 1);
        CHECK(names.count("user.two") == 1);
        CHECK(names.count("user.bin") == 1);

        // Overwrite without flags.
        REQUIRE_OK(::setxattr(m.c_str(), "user.one", "v2", 2, 0));
        CHECK(getx(s, "user.one") == std::optional<std::string>("v2"));

        REQUIRE_OK(::removexattr(m.c_str(), "user.one"));
        CHECK_FALSE(getx(m, "user.one").has_value());
        CHECK_FALSE(getx(s, "user.one").has_value());
        CHECK(listx(m).count("user.one") == 0);
        CHECK(listx(s).count("user.one") == 0);
        CHECK_ERRNO(::removexattr(m.c_str(), "user.one"), ENODATA);
    }

    // Through a file descriptor.
    Fd fd(::open(fx.mnt("f").c_str(), O_RDONLY));
    REQUIRE(fd);
    REQUIRE_OK(::fsetxattr(fd.get(), "user.fd", "byfd", 4, 0));
    char buf[16];
    CHECK(::fgetxattr(fd.get(), "user.fd", buf, sizeof buf) == 4);
    CHECK(getx(fx.src("f"), "user.fd") == std::optional<std::string>("byfd"));
    REQUIRE_OK(::fremovexattr(fd.get(), "user.fd"));
    CHECK_FALSE(getx(fx.src("f"), "user.fd").has_value());

    // xattrs set in SOURCE are visible through the mount.
    REQUIRE_OK(::setxattr(fx.src("f").c_str(), "user.external", "e", 1, 0));
    CHECK(getx(fx.mnt("f"), "user.external") == std::optional<std::string>("e"));
}

TEST_CASE("xattr error cases: ENODATA, EEXIST, XATTR_REPLACE, size query, ERANGE", "[xattr]") {
    REQUIRE_USER_XATTRS();
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    std::string m = fx.mnt("f");
    char buf[64];

    CHECK_ERRNO(::getxattr(m.c_str(), "user.none", buf, sizeof buf), ENODATA);
    CHECK_ERRNO(::getxattr(fx.mnt("missing").c_str(), "user.none", buf, sizeof buf), ENOENT);

    CHECK_ERRNO(::setxattr(m.c_str(), "user.r", "v", 1, XATTR_REPLACE), ENODATA);
    CHECK_FALSE(getx(fx.src("f"), "user.r").has_value());
    REQUIRE_OK(::setxattr(m.c_str(), "user.c", "first", 5, XATTR_CREATE));
    CHECK_ERRNO(::setxattr(m.c_str(), "user.c", "second", 6, XATTR_CREATE), EEXIST);
    CHECK(getx(m, "user.c") == std::optional<std::string>("first"));
    REQUIRE_OK(::setxattr(m.c_str(), "user.c", "third", 5, XATTR_REPLACE));
    CHECK(getx(fx.src("f"), "user.c") == std::optional<std::string>("third"));

    // Size query with size 0 returns the needed size without copying.
    std::string big(300, 'v');
    REQUIRE_OK(::setxattr(m.c_str(), "user.big", big.data(), big.size(), 0));
    CHECK(::getxattr(m.c_str(), "user.big", nullptr, 0) == 300);
    CHECK_ERRNO(::getxattr(m.c_str(), "user.big", buf, sizeof buf), ERANGE);

    ssize_t need = ::listxattr(m.c_str(), nullptr, 0);
    REQUIRE(need > 0);
    CHECK(need == ssize_t(sizeof("user.c") + sizeof("user.big")));
    CHECK_ERRNO(::listxattr(m.c_str(), buf, 3), ERANGE);
    std::string lbuf(size_t(need), '\0');
    CHECK(::listxattr(m.c_str(), lbuf.data(), lbuf.size()) == need);

    // Large values (up to the underlying limit of ~4 KiB on ext4) round-trip.
    std::string v4k = random_bytes(3000, 5);
    REQUIRE_OK(::setxattr(m.c_str(), "user.large", v4k.data(), v4k.size(), 0));
    CHECK(digest(getx(m, "user.large").value_or("<none>")) == digest(v4k));

    // Unknown namespaces are rejected by the kernel.
    CHECK_ERRNO(::setxattr(m.c_str(), "bogus.x", "v", 1, 0), EOPNOTSUPP);
}

TEST_CASE("user xattrs respect permissions for non-owners", "[xattr]") {
    REQUIRE_USER_XATTRS();
    MountFixture fx(MountOptions().with_allow_other());
    write_file(fx.mnt("f"), "x", 0644);
    REQUIRE_OK(::chmod(fx.mnt("f").c_str(), 0644));
    REQUIRE_OK(::setxattr(fx.mnt("f").c_str(), "user.a", "v", 1, 0));
    std::string m = fx.mnt("f");
    CHECK(run_as_nobody([&] {
              char b[8];
              return ::getxattr(m.c_str(), "user.a", b, sizeof b) == 1 ? 0 : errno;
          }) == 0);
    CHECK(errname(run_as_nobody([&] {
              return ::setxattr(m.c_str(), "user.a", "w", 1, 0) == 0 ? 0 : errno;
          })) == "EACCES");
    CHECK(getx(fx.src("f"), "user.a") == std::optional<std::string>("v"));
}

TEST_CASE("xattrs on symlinks behave as on the native file system", "[xattr][symlink]") {
    // Native: user.* is not allowed on symlinks (set: EPERM, get: ENODATA), but root can keep
    // trusted.* attributes on the link itself (rsync -X, cp -a as root rely on that).
    MountFixture fx;
    write_file(fx.mnt("target"), "t");
    REQUIRE_OK(::symlink("target", fx.mnt("link").c_str()));
    std::string l = fx.mnt("link");
    char buf[16];
    CHECK_ERRNO(::lsetxattr(l.c_str(), "user.x", "v", 1, 0), EPERM);
    CHECK_ERRNO(::lgetxattr(l.c_str(), "user.x", buf, sizeof buf), ENODATA);
    // The target is unaffected by attempts on the link.
    CHECK(listx(fx.src("target")).count("user.x") == 0);

    REQUIRE_OK(::lsetxattr(l.c_str(), "trusted.t", "tv", 2, 0));
    CHECK(getx(l, "trusted.t") == std::optional<std::string>("tv"));
    CHECK(getx(fx.src("link"), "trusted.t") == std::optional<std::string>("tv"));
    CHECK(listx(l).count("trusted.t") == 1);
    CHECK_FALSE(getx(fx.src("target"), "trusted.t").has_value());
    REQUIRE_OK(::lremovexattr(l.c_str(), "trusted.t"));
    CHECK_FALSE(getx(fx.src("link"), "trusted.t").has_value());

    // A link deeper in the tree, named with a space, keeps its attributes across a rename of
    // its directory.
    REQUIRE_OK(::mkdir(fx.mnt("d").c_str(), 0755));
    REQUIRE_OK(::mkdir(fx.mnt("d/e").c_str(), 0755));
    REQUIRE_OK(::symlink("../../target", fx.mnt("d/e/a link").c_str()));
    REQUIRE_OK(::lsetxattr(fx.mnt("d/e/a link").c_str(), "trusted.deep", "dv", 2, 0));
    REQUIRE_OK(::rename(fx.mnt("d").c_str(), fx.mnt("d2").c_str()));
    CHECK(getx(fx.mnt("d2/e/a link"), "trusted.deep") == std::optional<std::string>("dv"));
    CHECK(getx(fx.src("d2/e/a link"), "trusted.deep") == std::optional<std::string>("dv"));
    CHECK(listx(fx.mnt("d2/e/a link")).count("trusted.deep") == 1);
}

TEST_CASE("trusted xattrs on files work for root", "[xattr]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    REQUIRE_OK(::setxattr(fx.mnt("f").c_str(), "trusted.k", "v", 1, 0));
    CHECK(getx(fx.src("f"), "trusted.k") == std::optional<std::string>("v"));
    CHECK(getx(fx.mnt("f"), "trusted.k") == std::optional<std::string>("v"));
}
