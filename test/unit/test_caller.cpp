// fs::Caller decisions without a mount: which set-ID bits a write clears, which xattr names a
// caller sees, and per-thread credential switching.
#include "lib/fs/caller.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <string>

using rfs::fs::Caller;

namespace {

struct stat file_with(mode_t mode, gid_t gid) {
    struct stat st {};
    st.st_mode = S_IFREG | mode;
    st.st_gid = gid;
    return st;
}

// A caller no process is: has_capability() finds nothing for it, as for any caller without
// the capability.
Caller unprivileged(gid_t gid = 4242) {
    return Caller{1234, gid, 0, {}};
}

} // namespace

TEST_CASE("set-ID bits cleared as Linux's setattr_should_drop_suidgid", "[caller]") {
    CHECK(rfs::fs::setid_bits_to_clear(file_with(04755, 0), unprivileged()) == S_ISUID);
    CHECK(rfs::fs::setid_bits_to_clear(file_with(06775, 0), unprivileged()) == (S_ISUID | S_ISGID));
    // set-group-ID without group-execute: kept for a member of the file's group only.
    CHECK(rfs::fs::setid_bits_to_clear(file_with(02745, 4242), unprivileged(4242)) == 0);
    CHECK(rfs::fs::setid_bits_to_clear(file_with(02745, 7), unprivileged(4242)) == S_ISGID);
    Caller member = unprivileged(4242);
    member.groups = {7};
    CHECK(rfs::fs::setid_bits_to_clear(file_with(02745, 7), member) == 0);
    CHECK(rfs::fs::setid_bits_to_clear(file_with(0755, 0), unprivileged()) == 0);
    struct stat dir = file_with(04755, 0);
    dir.st_mode = S_IFDIR | 04755;
    CHECK(rfs::fs::setid_bits_to_clear(dir, unprivileged()) == 0);
    // This test runs as root with CAP_FSETID: its own writes keep the bits.
    if (::geteuid() == 0) {
        Caller self{0, 0, static_cast<pid_t>(::syscall(SYS_gettid)), {}};
        CHECK(rfs::fs::has_capability(self.pid, rfs::fs::kCapFsetid));
        CHECK(rfs::fs::setid_bits_to_clear(file_with(04755, 0), self) == 0);
    }
}

TEST_CASE("listxattr names filtered for the caller", "[caller]") {
    std::string list("user.a\0trusted.x\0security.selinux\0trusted.riakfs.released\0user.b\0", 65);
    std::string buf = list;
    size_t n = rfs::fs::filter_xattr_names(buf.data(), buf.size(), unprivileged());
    CHECK(buf.substr(0, n) == std::string("user.a\0security.selinux\0user.b\0", 31));

    auto hide_ours = [](std::string_view name) { return name.rfind("trusted.riakfs.", 0) == 0; };
    if (::geteuid() == 0) {
        buf = list;
        Caller self{0, 0, static_cast<pid_t>(::syscall(SYS_gettid)), {}};
        n = rfs::fs::filter_xattr_names(buf.data(), buf.size(), self, +hide_ours);
        CHECK(buf.substr(0, n) == std::string("user.a\0trusted.x\0security.selinux\0user.b\0", 41));
    }
    buf = std::string();
    CHECK(rfs::fs::filter_xattr_names(buf.data(), 0, unprivileged()) == 0);
}

TEST_CASE("file-system credentials switch for one thread only, and back", "[caller]") {
    if (::geteuid() != 0) FAIL("needs root (CI runs as root)");
    char dir_template[] = "/tmp/riakfs-caller-XXXXXX";
    REQUIRE(::mkdtemp(dir_template));
    std::string secret = std::string(dir_template) + "/secret";
    int fd = ::open(secret.c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
    // A thread started before the switch (a new thread would inherit the switched credentials)
    // keeps the daemon's own meanwhile.
    std::promise<void> switched;
    std::future<bool> other_ok = std::async(std::launch::async, [&, go = switched.get_future()] {
        go.wait();
        int f = ::open(secret.c_str(), O_RDONLY);
        if (f >= 0) ::close(f);
        return f >= 0;
    });
    {
        rfs::fs::ScopedFsCredentials as_user(Caller{4242, 4242, 0, {}});
        REQUIRE(as_user.ok());
        CHECK(::open(secret.c_str(), O_RDONLY) == -1);
        CHECK(errno == EACCES);
        switched.set_value();
        CHECK(other_ok.get());
    }
    fd = ::open(secret.c_str(), O_RDONLY);
    CHECK(fd >= 0);
    if (fd >= 0) ::close(fd);
    ::unlink(secret.c_str());
    ::rmdir(dir_template);
}
