// Passthrough mode: directory listing (small and 5,000-entry directories, seekdir/telldir,
// d_type, listings racing with creates).
#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

using namespace riakfs::it;

namespace {

constexpr int kLarge = 5000;

std::string entry_name(int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "entry-%05d", i);
    return buf;
}

struct Listed {
    std::string name;
    unsigned char type;
    ino_t ino;
    long pos_after; // telldir() after reading this entry
};

std::vector<Listed> read_all(DIR* d) {
    std::vector<Listed> out;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
        out.push_back({e->d_name, e->d_type, e->d_ino, ::telldir(d)});
        errno = 0;
    }
    INFO("readdir: " << errname(errno));
    REQUIRE(errno == 0);
    return out;
}

} // namespace

TEST_CASE("readdir lists names, dot entries and types", "[readdir]") {
    MountFixture fx(MountOptions::prepared([](const std::string& src) {
        write_file(src + "/file", "x");
        ::mkdir((src + "/dir").c_str(), 0755);
        ::symlink("file", (src + "/link").c_str());
        ::mkfifo((src + "/fifo").c_str(), 0644);
    }));
    DIR* d = ::opendir(fx.mnt("").c_str());
    REQUIRE(d != nullptr);
    auto all = read_all(d);
    ::closedir(d);
    std::map<std::string, unsigned char> types;
    for (auto& e : all) {
        INFO("duplicate entry " << e.name);
        CHECK(types.count(e.name) == 0);
        types[e.name] = e.type;
    }
    CHECK(types.size() == 6);
    CHECK(types.count(".") == 1);
    CHECK(types.count("..") == 1);
    auto type_ok = [&](const std::string& n, unsigned char t) {
        INFO(n);
        REQUIRE(types.count(n) == 1);
        CHECK((types[n] == t || types[n] == DT_UNKNOWN));
    };
    type_ok("file", DT_REG);
    type_ok("dir", DT_DIR);
    type_ok("link", DT_LNK);
    type_ok("fifo", DT_FIFO);

    // d_ino agrees with lstat for the entries (passthrough: the same numbers as st_ino).
    for (auto& e : all) {
        if (e.name == "." || e.name == "..") continue;
        struct stat st {};
        REQUIRE_OK(::lstat(fx.mnt(e.name).c_str(), &st));
        INFO(e.name);
        CHECK(e.ino == st.st_ino);
    }

    // Empty directory: only . and ..
    REQUIRE_OK(::mkdir(fx.mnt("empty").c_str(), 0755));
    CHECK(list_dir(fx.mnt("empty")).empty());

    // Creating and deleting entries is reflected in the next listing.
    write_file(fx.mnt("dir/new"), "");
    CHECK(list_dir(fx.mnt("dir")) == std::vector<std::string>{"new"});
    REQUIRE_OK(::unlink(fx.mnt("dir/new").c_str()));
    CHECK(list_dir(fx.mnt("dir")).empty());
    CHECK_ERRNO(::open(fx.mnt("file").c_str(), O_RDONLY | O_DIRECTORY), ENOTDIR);
}

TEST_CASE("a directory of 5,000 entries lists every entry exactly once", "[readdir][large]") {
    MountFixture fx;
    REQUIRE_OK(::mkdir(fx.mnt("big").c_str(), 0755));
    for (int i = 0; i < kLarge; ++i) {
        int fd = ::open(fx.mnt("big/" + entry_name(i)).c_str(), O_CREAT | O_WRONLY, 0644);
        INFO(entry_name(i) << ": " << errname(errno));
        REQUIRE(fd >= 0);
        ::close(fd);
    }
    CHECK(list_dir(fx.src("big")).size() == size_t(kLarge));

    for (int round = 0; round < 2; ++round) { // second round may be served from a cache
        DIR* d = ::opendir(fx.mnt("big").c_str());
        REQUIRE(d != nullptr);
        auto all = read_all(d);
        ::closedir(d);
        std::map<std::string, int> seen;
        for (auto& e : all)
            ++seen[e.name];
        int dups = 0, missing = 0;
        for (auto& [n, c] : seen)
            if (c != 1) ++dups;
        for (int i = 0; i < kLarge; ++i)
            if (!seen.count(entry_name(i))) ++missing;
        CHECK(dups == 0);
        CHECK(missing == 0);
        CHECK(all.size() == size_t(kLarge + 2));
    }

    // getdents64 with a tiny buffer works too (many round trips).
    {
        Fd fd(::open(fx.mnt("big").c_str(), O_RDONLY | O_DIRECTORY));
        REQUIRE(fd);
        std::set<std::string> names;
        size_t total = 0;
        char buf[512];
        for (;;) {
            long n = ::getdents64(fd.get(), buf, sizeof buf);
            INFO("getdents64: " << errname(errno));
            REQUIRE(n >= 0);
            if (n == 0) break;
            for (long off = 0; off < n;) {
                auto* e = reinterpret_cast<struct dirent64*>(buf + off);
                names.insert(e->d_name);
                ++total;
                off += e->d_reclen;
            }
        }
        CHECK(total == size_t(kLarge + 2));
        CHECK(names.size() == size_t(kLarge + 2));
    }

    // Remove all through the mount; the listing becomes empty, SOURCE too.
    for (int i = 0; i < kLarge; ++i)
        REQUIRE_OK(::unlink(fx.mnt("big/" + entry_name(i)).c_str()));
    CHECK(list_dir(fx.mnt("big")).empty());
    CHECK(list_dir(fx.src("big")).empty());
    REQUIRE_OK(::rmdir(fx.mnt("big").c_str()));
}

TEST_CASE("seekdir/telldir resume at the right entry", "[readdir]") {
    MountFixture fx(MountOptions::prepared([](const std::string& src) {
        ::mkdir((src + "/d").c_str(), 0755);
        for (int i = 0; i < 1500; ++i)
            write_file(src + "/d/" + entry_name(i), "");
    }));
    DIR* d = ::opendir(fx.mnt("d").c_str());
    REQUIRE(d != nullptr);
    auto all = read_all(d);
    REQUIRE(all.size() == 1502);

    // Seek back to several positions (including ones beyond the first getdents buffer) and
    // check that the following entries are the same as in the full listing.
    for (size_t idx : {size_t(0), size_t(1), size_t(10), size_t(700), size_t(1499), size_t(1500)}) {
        INFO("resume after entry " << idx);
        ::seekdir(d, all[idx].pos_after);
        for (size_t k = idx + 1; k < std::min(all.size(), idx + 5); ++k) {
            dirent* e = ::readdir(d);
            REQUIRE(e != nullptr);
            CHECK(std::string(e->d_name) == all[k].name);
        }
    }
    // Seek to the end: nothing more.
    ::seekdir(d, all.back().pos_after);
    errno = 0;
    CHECK(::readdir(d) == nullptr);
    CHECK(errno == 0);
    // rewinddir restarts.
    ::rewinddir(d);
    auto again = read_all(d);
    CHECK(again.size() == all.size());
    ::closedir(d);
}

TEST_CASE("entries created during a listing do not cause duplicates", "[readdir]") {
    MountFixture fx(MountOptions::prepared([](const std::string& src) {
        ::mkdir((src + "/d").c_str(), 0755);
        for (int i = 0; i < 2000; ++i)
            write_file(src + "/d/" + entry_name(i), "");
    }));
    DIR* d = ::opendir(fx.mnt("d").c_str());
    REQUIRE(d != nullptr);
    std::map<std::string, int> seen;
    int n = 0;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
        ++seen[e->d_name];
        if (++n % 100 == 0) {
            // Only create: every pre-existing name must still be listed exactly once.
            write_file(fx.mnt("d/zz-new-" + std::to_string(n)), "");
        }
        errno = 0;
    }
    CHECK(errno == 0);
    ::closedir(d);
    for (int i = 0; i < 2000; ++i) {
        INFO(entry_name(i));
        CHECK(seen[entry_name(i)] == 1);
    }
    for (auto& [name, c] : seen) {
        INFO(name);
        CHECK(c == 1);
    }
}

TEST_CASE("entries removed during a listing are never listed twice", "[readdir]") {
    MountFixture fx(MountOptions::prepared([](const std::string& src) {
        ::mkdir((src + "/d").c_str(), 0755);
        for (int i = 0; i < 3000; ++i)
            write_file(src + "/d/" + entry_name(i), "");
    }));
    DIR* d = ::opendir(fx.mnt("d").c_str());
    REQUIRE(d != nullptr);
    std::map<std::string, int> seen;
    int n = 0;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        ++seen[name];
        // Remove every other entry as soon as it has been seen, plus an unseen-or-seen one.
        if (name.rfind("entry-", 0) == 0 && ++n % 2 == 0) {
            ::unlink(fx.mnt("d/" + name).c_str());
            ::unlink(fx.mnt("d/" + entry_name((n * 7) % 3000)).c_str());
        }
        errno = 0;
    }
    CHECK(errno == 0);
    ::closedir(d);
    int dups = 0;
    for (auto& [name, c] : seen)
        if (c != 1) ++dups;
    CHECK(dups == 0);
}

TEST_CASE("listing a directory with long names", "[readdir]") {
    MountFixture fx;
    REQUIRE_OK(::mkdir(fx.mnt("d").c_str(), 0755));
    std::set<std::string> expect;
    for (int i = 0; i < 1000; ++i) {
        std::string n = entry_name(i) + std::string(240, 'L');
        write_file(fx.mnt("d/" + n), "");
        expect.insert(n);
    }
    auto got = list_dir(fx.mnt("d"));
    CHECK(got.size() == expect.size());
    CHECK(std::set<std::string>(got.begin(), got.end()) == expect);
}

TEST_CASE("stat of more files than the daemon's descriptor limit", "[readdir][scale]") {
    // Natively, looking up N files costs no descriptors. A daemon that pins one descriptor per
    // inode the kernel remembers runs out once N exceeds RLIMIT_NOFILE (the daemon inherits ours
    // and can raise its soft limit only to the hard limit) and then fails lookups with EMFILE.
    struct rlimit lim {};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
    // Exceeding a large limit (systemd's default hard limit is 524288) would take too long, and
    // skipping then would pass without testing anything: give the daemon a smaller one instead.
    MountOptions opts;
    rlim_t daemon_max = lim.rlim_max;
    if (daemon_max == RLIM_INFINITY || daemon_max > 60000) daemon_max = opts.nofile_limit = 4096;
    const int n = static_cast<int>(daemon_max) + 5000;
    opts.prepare = [&](const std::string& src) {
        ::mkdir((src + "/many").c_str(), 0755);
        for (int i = 0; i < n; ++i) {
            int fd = ::open((src + "/many/" + entry_name(i)).c_str(), O_CREAT | O_WRONLY, 0644);
            REQUIRE(fd >= 0);
            ::close(fd);
        }
    };
    MountFixture fx(opts);
    int failures = 0, first_err = 0;
    for (int i = 0; i < n; ++i) {
        struct stat st {};
        if (::lstat(fx.mnt("many/" + entry_name(i)).c_str(), &st) != 0) {
            if (!failures) first_err = errno;
            ++failures;
        }
    }
    INFO(failures << " of " << n << " lookups failed, first with " << errname(first_err));
    CHECK(failures == 0);
    // A listing with attributes (readdirplus) of the same directory.
    DIR* d = ::opendir(fx.mnt("many").c_str());
    REQUIRE(d != nullptr);
    auto all = read_all(d);
    ::closedir(d);
    CHECK(all.size() == size_t(n + 2));
    // Objects past the daemon's descriptor budget still open, and again after a rename.
    for (int i : {0, n / 2, n - 1}) {
        INFO("file " << i);
        std::string p = fx.mnt("many/" + entry_name(i));
        CHECK(::access(p.c_str(), R_OK) == 0);
        Fd f(::open(p.c_str(), O_RDWR));
        CHECK(f);
        CHECK(::write(f.get(), "x", 1) == 1);
        std::string moved = p + ".moved";
        REQUIRE_OK(::rename(p.c_str(), moved.c_str()));
        CHECK(read_file(moved) == "x");
    }
    // Every file the kernel remembers is looked up, and an application now holds open three
    // quarters as many files as the daemon's limit: the descriptors the daemon kept for itself
    // must give way rather than fail the application's opens with EMFILE.
    struct rlimit mine = lim;
    mine.rlim_cur = mine.rlim_max;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &mine) == 0);
    const int held = static_cast<int>(daemon_max) * 3 / 4;
    std::vector<Fd> open_files;
    open_files.reserve(held);
    int open_failures = 0, open_err = 0;
    for (int i = 1; i <= held; ++i) {
        std::string name = entry_name(i) + (i == n / 2 ? ".moved" : ""); // renamed above
        Fd f(::open(fx.mnt("many/" + name).c_str(), O_RDONLY));
        if (!f) {
            if (!open_failures) open_err = errno;
            ++open_failures;
        }
        open_files.push_back(std::move(f));
    }
    INFO(open_failures << " of " << held << " opens failed, first with " << errname(open_err));
    CHECK(open_failures == 0);
    open_files.clear();
    ::setrlimit(RLIMIT_NOFILE, &lim);
}
