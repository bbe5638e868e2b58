// Passthrough mode: error codes, permissions for non-root users (allow_other +
// default_permissions), ownership of objects created by them, and unusual names.
#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

using namespace riakfs::it;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_errors {

namespace {

// Result of fn run as `uid:gid` converted to an errno name.
std::string as_user(uid_t uid, gid_t gid, const std::function<int()>& fn) {
    return errname(run_as(uid, gid, fn));
}

int err_of(int rc) {
    return rc == -1 ? errno : 0;
}

// Creates `path` (O_CREAT, write-only) with `mode` and closes it; 0 or the errno. Plain
// syscalls only, so it may run in an as_user() child.
int create_file(const std::string& path, mode_t mode) {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, mode);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
}

} // namespace

TEST_CASE("basic errno values match native Linux", "[errors]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    REQUIRE_OK(::mkdir(fx.mnt("d").c_str(), 0755));
    write_file(fx.mnt("d/in"), "y");
    struct stat st {};

    CHECK_ERRNO(::stat(fx.mnt("nope").c_str(), &st), ENOENT);
    CHECK_ERRNO(::open(fx.mnt("nope").c_str(), O_RDONLY), ENOENT);
    CHECK_ERRNO(::unlink(fx.mnt("nope").c_str()), ENOENT);
    CHECK_ERRNO(::rmdir(fx.mnt("nope").c_str()), ENOENT);
    CHECK_ERRNO(::chmod(fx.mnt("nope").c_str(), 0644), ENOENT);
    CHECK_ERRNO(::truncate(fx.mnt("nope").c_str(), 0), ENOENT);
    CHECK_ERRNO(::mkdir(fx.mnt("nope/x").c_str(), 0755), ENOENT);

    CHECK_ERRNO(::mkdir(fx.mnt("f").c_str(), 0755), EEXIST);
    CHECK_ERRNO(::mkdir(fx.mnt("d").c_str(), 0755), EEXIST);
    CHECK_ERRNO(::symlink("t", fx.mnt("f").c_str()), EEXIST);
    CHECK_ERRNO(::link(fx.mnt("f").c_str(), fx.mnt("d/in").c_str()), EEXIST);
    CHECK_ERRNO(::mkfifo(fx.mnt("d").c_str(), 0644), EEXIST);
    CHECK_ERRNO(::open(fx.mnt("f").c_str(), O_CREAT | O_EXCL | O_RDWR, 0644), EEXIST);

    CHECK_ERRNO(::rmdir(fx.mnt("d").c_str()), ENOTEMPTY);

    CHECK_ERRNO(::stat(fx.mnt("f/x").c_str(), &st), ENOTDIR);
    CHECK_ERRNO(::rmdir(fx.mnt("f").c_str()), ENOTDIR);
    CHECK_ERRNO(::open(fx.mnt("f").c_str(), O_RDONLY | O_DIRECTORY), ENOTDIR);
    CHECK_ERRNO(::mkdir(fx.mnt("f/x").c_str(), 0755), ENOTDIR);

    CHECK_ERRNO(::unlink(fx.mnt("d").c_str()), EISDIR);
    CHECK_ERRNO(::open(fx.mnt("d").c_str(), O_WRONLY), EISDIR);
    CHECK_ERRNO(::truncate(fx.mnt("d").c_str(), 0), EISDIR);
    Fd dfd(::open(fx.mnt("d").c_str(), O_RDONLY | O_DIRECTORY));
    REQUIRE(dfd);
    char c;
    CHECK_ERRNO(::read(dfd.get(), &c, 1), EISDIR);

    // Nothing above may have changed SOURCE.
    auto names = list_dir(fx.src(""));
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"d", "f"});
    CHECK(list_dir(fx.src("d")) == std::vector<std::string>{"in"});
}

TEST_CASE("EACCES for a non-root user (allow_other, default_permissions)", "[errors][perm]") {
    MountFixture fx(MountOptions().with_allow_other());
    write_file(fx.mnt("private"), "secret", 0600);
    REQUIRE_OK(::chmod(fx.mnt("private").c_str(), 0600));
    write_file(fx.mnt("public"), "open", 0644);
    REQUIRE_OK(::chmod(fx.mnt("public").c_str(), 0644));
    REQUIRE_OK(::mkdir(fx.mnt("closed").c_str(), 0700));
    REQUIRE_OK(::chmod(fx.mnt("closed").c_str(), 0700));
    write_file(fx.mnt("closed/inner"), "x");
    REQUIRE_OK(::chmod(fx.mnt("").c_str(), 0755));

    std::string priv = fx.mnt("private"), pub = fx.mnt("public"), closed = fx.mnt("closed"),
                root = fx.mnt("");
    auto nobody = [&](const std::function<int()>& fn) { return as_user(kNobody, kNogroup, fn); };

    CHECK(nobody([&] { return err_of(::open(priv.c_str(), O_RDONLY)); }) == "EACCES");
    CHECK(nobody([&] { return err_of(::open(pub.c_str(), O_WRONLY)); }) == "EACCES");
    CHECK(nobody([&] {
              int fd = ::open(pub.c_str(), O_RDONLY);
              if (fd < 0) return errno;
              char b[8];
              int r = ::read(fd, b, sizeof b) == 4 ? 0 : 99;
              ::close(fd);
              return r;
          }) == "OK");
    CHECK(nobody([&] {
              return err_of(::open((root + "/new").c_str(), O_CREAT | O_WRONLY, 0644));
          }) == "EACCES");
    CHECK(nobody([&] { return err_of(::mkdir((root + "/newdir").c_str(), 0755)); }) == "EACCES");
    CHECK(nobody([&] { return err_of(::unlink(pub.c_str())); }) == "EACCES");
    CHECK(nobody([&] { return err_of(::rename(pub.c_str(), (root + "/p2").c_str())); }) ==
          "EACCES");
    CHECK(nobody([&] {
              struct stat st {};
              return err_of(::stat((closed + "/inner").c_str(), &st));
          }) == "EACCES");
    CHECK(nobody([&] { return err_of(::truncate(pub.c_str(), 0)); }) == "EACCES");
    CHECK(nobody([&] { return err_of(::chmod(pub.c_str(), 0777)); }) == "EPERM");
    CHECK(nobody([&] { return err_of(::chown(pub.c_str(), kNobody, kNogroup)); }) == "EPERM");
    CHECK(nobody([&] { return err_of(::setxattr(pub.c_str(), "user.x", "v", 1, 0)); }) == "EACCES");

    // Nothing changed in SOURCE.
    CHECK(read_file(fx.src("public")) == "open");
    CHECK((lstat_ok(fx.src("public")).st_mode & 0777) == 0644);
    CHECK(lstat_ok(fx.src("public")).st_uid == 0u);
    CHECK_ERRNO(::access(fx.src("new").c_str(), F_OK), ENOENT);
    CHECK_ERRNO(::access(fx.src("newdir").c_str(), F_OK), ENOENT);

    // utimensat: "now" needs write permission only, explicit times need ownership.
    write_file(fx.mnt("shared"), "s", 0666);
    REQUIRE_OK(::chmod(fx.mnt("shared").c_str(), 0666));
    std::string shared = fx.mnt("shared");
    CHECK(nobody([&] { return err_of(::utimensat(AT_FDCWD, shared.c_str(), nullptr, 0)); }) ==
          "OK");
    CHECK(nobody([&] {
              struct timespec t[2] = {{5, 0}, {5, 0}};
              return err_of(::utimensat(AT_FDCWD, shared.c_str(), t, 0));
          }) == "EPERM");
    CHECK(lstat_ok(fx.src("shared")).st_mtim.tv_sec != 5);
    CHECK(nobody([&] { return err_of(::utimensat(AT_FDCWD, pub.c_str(), nullptr, 0)); }) ==
          "EACCES");

    // Sticky directory: a user cannot remove another user's file.
    REQUIRE_OK(::mkdir(fx.mnt("tmp").c_str(), 0777));
    REQUIRE_OK(::chmod(fx.mnt("tmp").c_str(), 01777));
    write_file(fx.mnt("tmp/roots"), "r");
    std::string tmp = fx.mnt("tmp");
    CHECK(nobody([&] { return err_of(::unlink((tmp + "/roots").c_str())); }) == "EPERM");
}

TEST_CASE("objects created by a non-root user are owned by that user in SOURCE too",
          "[errors][perm]") {
    MountFixture fx(MountOptions().with_allow_other());
    REQUIRE_OK(::mkdir(fx.mnt("pub").c_str(), 0777));
    REQUIRE_OK(::chmod(fx.mnt("pub").c_str(), 0777));
    std::string pub = fx.mnt("pub");

    const uid_t uid = 4242;
    const gid_t gid = 4343; // distinct from the uid so a swapped/forgotten gid is noticed
    std::string r = as_user(uid, gid, [&] {
        int fd = ::open((pub + "/file").c_str(), O_CREAT | O_WRONLY | O_EXCL, 0640);
        if (fd < 0) return errno;
        if (::write(fd, "mine", 4) != 4) return errno;
        ::close(fd);
        if (::mkdir((pub + "/dir").c_str(), 0750) != 0) return errno;
        if (::symlink("file", (pub + "/link").c_str()) != 0) return errno;
        if (::mkfifo((pub + "/fifo").c_str(), 0600) != 0) return errno;
        if (::mknod((pub + "/node").c_str(), S_IFREG | 0600, 0) != 0) return errno;
        return 0;
    });
    REQUIRE(r == "OK");
    for (const char* rel : {"file", "dir", "link", "fifo", "node"}) {
        INFO(rel);
        struct stat m = lstat_ok(fx.mnt(std::string("pub/") + rel));
        struct stat s = lstat_ok(fx.src(std::string("pub/") + rel));
        CHECK(m.st_uid == uid);
        CHECK(m.st_gid == gid);
        CHECK(s.st_uid == uid);
        CHECK(s.st_gid == gid);
    }
    CHECK((lstat_ok(fx.src("pub/file")).st_mode & 0777) == 0640);

    // The owner can then chmod and write its own file; another user cannot.
    std::string file = pub + "/file";
    CHECK(as_user(uid, gid, [&] { return err_of(::chmod(file.c_str(), 0600)); }) == "OK");
    CHECK((lstat_ok(fx.src("pub/file")).st_mode & 0777) == 0600);
    CHECK(as_user(kNobody, kNogroup, [&] { return err_of(::open(file.c_str(), O_RDONLY)); }) ==
          "EACCES");

    // The group comes from the setgid bit of the parent directory when it is set.
    REQUIRE_OK(::mkdir(fx.mnt("sgid").c_str(), 0777));
    REQUIRE_OK(::chown(fx.mnt("sgid").c_str(), 0, 777));
    REQUIRE_OK(::chmod(fx.mnt("sgid").c_str(), 02777));
    std::string sg = fx.mnt("sgid");
    REQUIRE(as_user(uid, gid, [&] { return create_file(sg + "/f", 0644); }) == "OK");
    CHECK(lstat_ok(fx.src("sgid/f")).st_uid == uid);
    CHECK(lstat_ok(fx.src("sgid/f")).st_gid == 777u);
}

TEST_CASE("unusual names round-trip through the mount", "[errors][names]") {
    MountFixture fx;
    const std::vector<std::string> names = {
        "with space",  " leading", "trailing ", "new\nline", "tab\there",   "100%",
        "%2F%41",      "a+b",      "what?",     "#hash",     "back\\slash", "\xff\xfe",
        "caf\xc3\xa9", "\x01ctl",  "-dash",     "..dots",    "...",         "quote\"'",
        "*star*",      "[br]",     "{c}",       "&amp;",     "~tilde",      "=eq",
    };
    for (const auto& n : names) {
        INFO("name: " << n);
        write_file(fx.mnt(n), "content:" + n);
        CHECK(read_file(fx.src(n)) == "content:" + n);
        CHECK(read_file(fx.mnt(n)) == "content:" + n);
    }
    auto listed = list_dir(fx.mnt(""));
    auto expect = names;
    std::sort(listed.begin(), listed.end());
    std::sort(expect.begin(), expect.end());
    CHECK(listed == expect);
    auto src_listed = list_dir(fx.src(""));
    std::sort(src_listed.begin(), src_listed.end());
    CHECK(src_listed == expect);

    // Directories, renames and xattrs with such names.
    REQUIRE_OK(::mkdir(fx.mnt("dir ?#%+\xff").c_str(), 0755));
    REQUIRE_OK(::rename(fx.mnt("new\nline").c_str(), fx.mnt("dir ?#%+\xff/moved\n%").c_str()));
    CHECK(read_file(fx.src("dir ?#%+\xff/moved\n%")) == "content:new\nline");
    REQUIRE_OK(::unlink(fx.mnt("\xff\xfe").c_str()));
    CHECK_ERRNO(::access(fx.src("\xff\xfe").c_str(), F_OK), ENOENT);

    // Names created in SOURCE show up unchanged.
    write_file(fx.src("ext %41 \xfe"), "e");
    CHECK(read_file(fx.mnt("ext %41 \xfe")) == "e");
}

TEST_CASE("255-byte names work, 256 bytes give ENAMETOOLONG", "[errors][names]") {
    MountFixture fx;
    std::string n255(255, 'n');
    std::string n256(256, 'n');
    write_file(fx.mnt(n255), "long");
    CHECK(read_file(fx.src(n255)) == "long");
    CHECK(list_dir(fx.mnt("")) == std::vector<std::string>{n255});
    std::string d255(255, 'd');
    REQUIRE_OK(::mkdir(fx.mnt(d255).c_str(), 0755));
    REQUIRE_OK(::rename(fx.mnt(n255).c_str(), fx.mnt(d255 + "/" + n255).c_str()));
    CHECK(read_file(fx.mnt(d255 + "/" + n255)) == "long");

    CHECK_ERRNO(::open(fx.mnt(n256).c_str(), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
    CHECK_ERRNO(::mkdir(fx.mnt(n256).c_str(), 0755), ENAMETOOLONG);
    struct stat st {};
    CHECK_ERRNO(::lstat(fx.mnt(n256).c_str(), &st), ENAMETOOLONG);
    CHECK_ERRNO(::symlink("x", fx.mnt(n256).c_str()), ENAMETOOLONG);
    CHECK_ERRNO(::rename(fx.mnt(d255).c_str(), fx.mnt(n256).c_str()), ENAMETOOLONG);
    // A multi-byte (non-ASCII) name of 255 bytes is fine too.
    std::string mb;
    while (mb.size() + 2 <= 255)
        mb += "\xc3\xa9";
    mb += "x";
    REQUIRE(mb.size() == 255);
    write_file(fx.mnt(mb), "mb");
    CHECK(read_file(fx.src(mb)) == "mb");
}

TEST_CASE("a write or truncate by a non-root user clears setuid/setgid", "[errors][perm]") {
    MountFixture fx(MountOptions().with_allow_other());
    write_file(fx.mnt("suid"), "data", 0777);
    REQUIRE_OK(::chmod(fx.mnt("suid").c_str(), 06777));
    write_file(fx.mnt("suid2"), "data", 0777);
    REQUIRE_OK(::chmod(fx.mnt("suid2").c_str(), 06777));
    std::string p1 = fx.mnt("suid"), p2 = fx.mnt("suid2");

    CHECK(as_user(kNobody, kNogroup, [&] {
              int fd = ::open(p1.c_str(), O_WRONLY);
              if (fd < 0) return errno;
              int r = ::write(fd, "w", 1) == 1 ? 0 : errno;
              ::close(fd);
              return r;
          }) == "OK");
    // Native Linux: both bits go (the group-execute bit is set).
    CHECK((lstat_ok(fx.src("suid")).st_mode & 07777) == 0777);
    CHECK((lstat_ok(fx.mnt("suid")).st_mode & 07777) == 0777);

    CHECK(as_user(kNobody, kNogroup, [&] { return err_of(::truncate(p2.c_str(), 1)); }) == "OK");
    CHECK((lstat_ok(fx.src("suid2")).st_mode & 07777) == 0777);

    // A write by root (CAP_FSETID) keeps them.
    REQUIRE_OK(::chmod(fx.mnt("suid").c_str(), 06777));
    write_file(fx.mnt("suid"), "root");
    CHECK((lstat_ok(fx.src("suid")).st_mode & 07777) == 06777);
}

TEST_CASE("a non-root user may create files with setuid/setgid modes", "[errors][perm]") {
    // Native: open(O_CREAT, 06755) by uid 4242 in a world-writable directory yields an
    // S_ISUID|S_ISGID file owned by 4242 (S_ISGID stays as the group is the creator's own).
    MountFixture fx(MountOptions().with_allow_other());
    REQUIRE_OK(::mkdir(fx.mnt("pub").c_str(), 0777));
    REQUIRE_OK(::chmod(fx.mnt("pub").c_str(), 0777));
    std::string pub = fx.mnt("pub");
    REQUIRE(as_user(4242, 4343, [&] {
                ::umask(022);
                if (int err = create_file(pub + "/suid", 06755)) return err;
                if (::mkdir((pub + "/sgiddir").c_str(), 02755) != 0) return errno;
                // The umask still applies to the other bits.
                ::umask(027);
                return create_file(pub + "/masked", 06777);
            }) == "OK");
    struct stat s = lstat_ok(fx.src("pub/suid"));
    CHECK(s.st_uid == 4242u);
    CHECK(s.st_gid == 4343u);
    CHECK((s.st_mode & 07777) == 06755);
    // mkdir never takes S_ISGID from the mode (only from a set-group-ID parent).
    s = lstat_ok(fx.src("pub/sgiddir"));
    CHECK(s.st_uid == 4242u);
    CHECK((s.st_mode & 07777) == 0755);
    CHECK((lstat_ok(fx.src("pub/masked")).st_mode & 07777) == 06750);
}

// Without allow_other the kernel leaves access checks to the daemon (no default_permissions);
// access() must still answer for the mounting user exactly as the source does.
TEST_CASE("access() without allow_other answers as the source does", "[errors][perm]") {
    MountFixture fx;
    write_file(fx.mnt("plain"), "x");
    write_file(fx.mnt("script"), "#!/bin/sh\n");
    REQUIRE_OK(::chmod(fx.mnt("plain").c_str(), 0644));
    REQUIRE_OK(::chmod(fx.mnt("script").c_str(), 0700));
    for (const char* name : {"plain", "script"}) {
        for (int mask : {F_OK, R_OK, W_OK, X_OK, R_OK | X_OK}) {
            INFO(name << " mask " << mask);
            int native = err_of(::access(fx.src(name).c_str(), mask));
            CHECK(errname(err_of(::access(fx.mnt(name).c_str(), mask))) == errname(native));
            CHECK(errname(err_of(::faccessat(AT_FDCWD, fx.mnt(name).c_str(), mask, AT_EACCESS))) ==
                  errname(native));
        }
    }
    // Executing follows the same rule: a file without any execute bit cannot be run.
    CHECK_ERRNO(::access(fx.mnt("plain").c_str(), X_OK), EACCES);
    CHECK_ERRNO(::access(fx.mnt("missing").c_str(), F_OK), ENOENT);
}

namespace {
// Opens `path` for reading as nobody; returns the errno (0 when it opened).
int open_as_nobody(const std::string& path) {
    return run_as_nobody([&] {
        int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) return errno;
        ::close(fd);
        return 0;
    });
}

void setfacl(const std::string& args) {
    INFO("setfacl " << args);
    REQUIRE(std::system(("setfacl " + args).c_str()) == 0);
}
} // namespace

// With other users on the mount the kernel checks access itself: a named-user ACL entry must
// count exactly as on the source, in both directions.
TEST_CASE("POSIX ACLs grant and deny as on the source (allow_other)", "[errors][perm][acl]") {
    MountFixture fx(MountOptions().with_allow_other());
    write_file(fx.mnt("granted"), "g", 0600);
    write_file(fx.mnt("denied"), "d", 0644);
    setfacl("-m u:nobody:r " + fx.mnt("granted"));
    setfacl("-m u:nobody:- " + fx.mnt("denied"));
    REQUIRE(open_as_nobody(fx.src("granted")) == 0);
    REQUIRE(open_as_nobody(fx.src("denied")) == EACCES);
    CHECK(errname(open_as_nobody(fx.mnt("granted"))) == "OK");
    CHECK(errname(open_as_nobody(fx.mnt("denied"))) == errname(EACCES));
}

// A default ACL on the parent replaces the umask for new objects, natively and on the mount.
TEST_CASE("a parent's default ACL decides new modes, the umask otherwise", "[errors][acl]") {
    bool shared = GENERATE(false, true);
    INFO("allow_other " << shared);
    MountOptions opts;
    if (shared) opts.with_allow_other();
    MountFixture fx(opts);
    REQUIRE_OK(::mkdir(fx.mnt("inherit").c_str(), 0777));
    setfacl("-d -m u::rwx,g::rwx,o::rwx " + fx.mnt("inherit"));
    mode_t old = ::umask(077);
    int created = ::open(fx.mnt("inherit/f").c_str(), O_CREAT | O_WRONLY, 0666);
    int plain = ::open(fx.mnt("plain").c_str(), O_CREAT | O_WRONLY, 0666);
    int dir_rc = ::mkdir(fx.mnt("inherit/d").c_str(), 0777);
    ::umask(old);
    REQUIRE(created >= 0);
    REQUIRE(plain >= 0);
    ::close(created);
    ::close(plain);
    REQUIRE(dir_rc == 0);
    CHECK((lstat_ok(fx.src("inherit/f")).st_mode & 0777) == 0666);
    CHECK((lstat_ok(fx.src("inherit/d")).st_mode & 0777) == 0777);
    CHECK((lstat_ok(fx.src("plain")).st_mode & 0777) == 0600);
}

// The set-ID bits the daemon restores after handing a new file over are the ones the source
// gave it: with a default ACL on the parent, the ACL (not the asked mode) decides the others.
TEST_CASE("setuid files created under a default ACL keep the ACL's permissions", "[errors][acl]") {
    MountFixture fx(MountOptions().with_allow_other());
    REQUIRE_OK(::mkdir(fx.mnt("pub").c_str(), 0777));
    REQUIRE_OK(::chmod(fx.mnt("pub").c_str(), 0777));
    setfacl("-d -m u::rwx,g::r-x,o::--- " + fx.mnt("pub"));
    std::string pub = fx.mnt("pub");
    REQUIRE(as_user(4242, 4343, [&] { return create_file(pub + "/suid", 06777); }) == "OK");
    struct stat s = lstat_ok(fx.src("pub/suid"));
    CHECK(s.st_uid == 4242u);
    CHECK((s.st_mode & 07777) == 06750);
}

// The kernel may send CREATE for a name created in SOURCE beside the mount after it cached the
// name as absent. The existing file must not be truncated, re-owned or reported as new.
TEST_CASE("O_CREAT on a name that appeared beside the mount", "[errors][create]") {
    MountOptions opts;
    opts.extra_opts.push_back("negative_timeout=60");
    MountFixture fx(opts);
    struct stat st {};
    REQUIRE(::stat(fx.mnt("late").c_str(), &st) == -1); // cached as absent for 60 s
    write_file(fx.src("late"), "keep me");
    REQUIRE_OK(::chown(fx.src("late").c_str(), 1234, 1234));

    CHECK_ERRNO(::open(fx.mnt("late").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600), EEXIST);
    int fd = ::open(fx.mnt("late").c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
    CHECK(read_file(fx.src("late")) == "keep me");
    CHECK(lstat_ok(fx.src("late")).st_uid == 1234u);
}

} // namespace test_errors
