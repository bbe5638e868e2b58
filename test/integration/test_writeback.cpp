// -o writeback_cache (issue 13) through real mounts: the kernel keeps written pages and owns the
// sizes and mtimes of regular files, so the option is refused at start unless nothing but the
// mount changes SOURCE (cache=always or exclusive); through the mount every change is seen at
// once; and in the Riak modes, whose copies start when a writer closes, the object in Riak
// always holds the final bytes, mmap'ed writes included, and mode=move never releases a file
// whose dirty pages have not reached SOURCE.
#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

using namespace riakfs::it;
using namespace std::chrono_literals;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_writeback {

namespace {

struct stat fstat_of(int fd) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return st;
}

void pwrite_all(int fd, std::string_view data, off_t off) {
    REQUIRE(::pwrite(fd, data.data(), data.size(), off) == static_cast<ssize_t>(data.size()));
}

void write_all(int fd, std::string_view data) {
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
}

std::string pread_all(int fd, size_t n, off_t off) {
    std::string out(n, '\0');
    ssize_t got = ::pread(fd, out.data(), n, off);
    REQUIRE(got >= 0);
    out.resize(static_cast<size_t>(got));
    return out;
}

bool same_time(const timespec& a, const timespec& b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// The daemon run by hand with `opts`: its exit and stderr (it must refuse before mounting).
ProcResult run_daemon(const std::string& src, const std::string& mnt,
                      const std::vector<std::string>& opts) {
    return run_cmd(daemon_argv(src, mnt, /*foreground=*/true, opts), 15s);
}

} // namespace

TEST_CASE("writeback: refused at start unless nothing but the mount changes SOURCE",
          "[writeback]") {
    TempDir dir("riakfs-wb");
    std::string src = dir / "src", mnt = dir / "mnt";
    REQUIRE(::mkdir(src.c_str(), 0755) == 0);
    REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
    for (const char* cache : {"cache=never", "cache=auto", ""}) {
        // "": no cache=, SOURCE is not MOUNTPOINT, so the daemon picks auto.
        std::vector<std::string> opts = {"writeback_cache"};
        if (*cache) opts.push_back(cache);
        ProcResult r = run_daemon(src, mnt, opts);
        INFO(cache << ": stderr: " << r.err);
        CHECK(r.exited);
        CHECK(r.exit_code == 1);
        CHECK(r.err.find("writeback_cache needs cache=always or cache=exclusive") !=
              std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1); // one clear line
        CHECK(!is_fuse_mounted(mnt));
    }
    // The option takes no value.
    ProcResult r = run_daemon(src, mnt, {"cache=always", "writeback_cache=1"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("writeback_cache takes no value") != std::string::npos);
}

TEST_CASE("writeback: accepted with cache=always, and over SOURCE (cache=exclusive)",
          "[writeback]") {
    {
        MountOptions opts;
        opts.extra_opts = {"cache=always", "writeback_cache"};
        MountFixture fx(opts);
        write_file(fx.mnt("f"), "through the cache");
        CHECK(read_file(fx.mnt("f")) == "through the cache");
        fx.unmount();
        CHECK(read_file(fx.src("f")) == "through the cache");
    }
    {
        MountOptions opts;
        opts.extra_opts = {"writeback_cache"};
        opts.same_dir = true; // SOURCE hidden under the mount: exclusive, chosen by the daemon
        MountFixture fx(opts);
        write_file(fx.mnt("g"), "over source");
        CHECK(read_file(fx.mnt("g")) == "over source");
    }
}

TEST_CASE("writeback: changes through the mount are seen at once", "[writeback]") {
    MountOptions opts = MountOptions::prepared([](const std::string& src) {
        write_file(src + "/digits", "0123456789");
        write_file(src + "/pages", std::string(3 * 4096 + 100, 'p'));
    });
    opts.extra_opts = {"cache=always", "writeback_cache"};
    MountFixture fx(opts);

    SECTION("size after append, seen by stat and by another descriptor") {
        Fd w(::open(fx.mnt("grow").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        REQUIRE(w);
        Fd r(::open(fx.mnt("grow").c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(r);
        size_t size = 0;
        for (int i = 0; i < 5; ++i) {
            std::string piece(1000 + i, static_cast<char>('a' + i));
            write_all(w.get(), piece);
            size += piece.size();
            CHECK(stat_of(fx.mnt("grow")).st_size == static_cast<off_t>(size));
            CHECK(fstat_of(r.get()).st_size == static_cast<off_t>(size));
            CHECK(pread_all(r.get(), piece.size(), static_cast<off_t>(size - piece.size())) ==
                  piece);
        }
        w.reset();
        CHECK(stat_of(fx.src("grow")).st_size == static_cast<off_t>(size));
    }

    SECTION("mtime after write, and SOURCE's mtime once the writer closed") {
        struct stat before = stat_of(fx.mnt("digits"));
        std::this_thread::sleep_for(20ms);
        Fd w(::open(fx.mnt("digits").c_str(), O_WRONLY | O_CLOEXEC));
        REQUIRE(w);
        pwrite_all(w.get(), "x", 4);
        struct stat during = stat_of(fx.mnt("digits"));
        CHECK((during.st_mtim.tv_sec > before.st_mtim.tv_sec ||
               (during.st_mtim.tv_sec == before.st_mtim.tv_sec &&
                during.st_mtim.tv_nsec > before.st_mtim.tv_nsec)));
        w.reset();
        struct stat after = stat_of(fx.mnt("digits"));
        CHECK(same_time(after.st_mtim, during.st_mtim));
        // The kernel's mtime went to SOURCE with the close (SETATTR before RELEASE).
        CHECK(same_time(stat_of(fx.src("digits")).st_mtim, after.st_mtim));
        CHECK(read_file(fx.src("digits")) == "0123x56789");
    }

    SECTION("part of a page written through a write-only descriptor keeps the rest") {
        // The kernel reads the page before changing part of it, through this very handle.
        Fd w(::open(fx.mnt("digits").c_str(), O_WRONLY | O_CLOEXEC));
        REQUIRE(w);
        pwrite_all(w.get(), "XY", 3);
        pwrite_all(w.get(), "z", 4096 + 5); // past the end: a hole, then one byte
        w.reset();
        std::string want = "012XY56789" + std::string(4096 + 5 - 10, '\0') + "z";
        CHECK(read_file(fx.mnt("digits")) == want);
        CHECK(read_file(fx.src("digits")) == want);
        // Also in the middle of a file of several pages.
        Fd w2(::open(fx.mnt("pages").c_str(), O_WRONLY | O_CLOEXEC));
        REQUIRE(w2);
        pwrite_all(w2.get(), "MID", 4096 + 10);
        w2.reset();
        std::string pages = std::string(3 * 4096 + 100, 'p').replace(4096 + 10, 3, "MID");
        CHECK(read_file(fx.src("pages")) == pages);
        CHECK(read_file(fx.mnt("pages")) == pages);
    }

    SECTION("O_APPEND from two descriptors: each write lands at the current end") {
        Fd a(::open(fx.mnt("log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
        Fd b(::open(fx.mnt("log").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
        REQUIRE(a);
        REQUIRE(b);
        std::string want;
        for (int i = 0; i < 20; ++i) {
            std::string line = (i % 2 ? "b" : "a") + std::to_string(i) + "\n";
            write_all(i % 2 ? b.get() : a.get(), line);
            want += line;
            CHECK(::lseek(i % 2 ? b.get() : a.get(), 0, SEEK_CUR) ==
                  static_cast<off_t>(want.size()));
        }
        CHECK(read_file(fx.mnt("log")) == want);
        a.reset();
        b.reset();
        CHECK(read_file(fx.src("log")) == want);
        // An existing file opened for appending (OPEN, not CREATE).
        Fd c(::open(fx.mnt("digits").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
        REQUIRE(c);
        write_all(c.get(), "ab");
        c.reset();
        CHECK(read_file(fx.src("digits")) == "0123456789ab");
    }

    SECTION("truncate, then read") {
        Fd rw(::open(fx.mnt("pages").c_str(), O_RDWR | O_CLOEXEC));
        REQUIRE(rw);
        pwrite_all(rw.get(), "dirty", 2 * 4096);
        REQUIRE(::ftruncate(rw.get(), 100) == 0);
        CHECK(stat_of(fx.mnt("pages")).st_size == 100);
        CHECK(pread_all(rw.get(), 8192, 0) == std::string(100, 'p'));
        // Grown again by path: the dirty page cut off above must not come back.
        REQUIRE(::truncate(fx.mnt("pages").c_str(), 3 * 4096) == 0);
        CHECK(pread_all(rw.get(), 3 * 4096, 0) ==
              std::string(100, 'p') + std::string(3 * 4096 - 100, '\0'));
        rw.reset();
        CHECK(read_file(fx.src("pages")) ==
              std::string(100, 'p') + std::string(3 * 4096 - 100, '\0'));
    }
}

// ---- the Riak modes ----------------------------------------------------------------------------

namespace {

MountOptions riak_mount(const RiakNode& node, const TempDir& dir, const std::string& mode) {
    MountOptions opts;
    opts.extra_opts = {"mode=" + mode, "riak=" + node.url(), "state_dir=" + dir / "state",
                       "cache=always", "writeback_cache"};
    return opts;
}

// Waits up to 60 s for Riak's object at `key` to hold `want`.
bool riak_holds(const RiakNode& node, const std::string& key, const std::string& want) {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        HttpReply r = node.get(object_path(key));
        if (r.status == 200 && r.body == want) return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

// The file is written through a shared mapping, its descriptor closed while the mapping (and
// its dirty pages) live on; the pages reach the daemon at munmap's last reference, before the
// RELEASE that starts the copy.
std::string write_through_mapping(const std::string& path, size_t size) {
    Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(fd);
    void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    REQUIRE(map != MAP_FAILED);
    fd.reset();
    std::string content = random_bytes(size, 7);
    std::memcpy(map, content.data(), size);
    REQUIRE(::munmap(map, size) == 0);
    return content;
}

} // namespace

TEST_CASE("writeback: shadow, migrate and move copy the final bytes of each close",
          "[writeback][riak]") {
    for (const char* mode : {"shadow", "migrate", "move"}) {
        INFO("mode=" << mode);
        TempDir dir("riakfs-wb-riak");
        RiakNode node(dir.path());
        MountFixture fx(riak_mount(node, dir, mode));

        // Written in pieces smaller than a page, closed: the pages the kernel held reach the
        // daemon before the RELEASE that starts the copy.
        std::string small;
        {
            Fd w(::open(fx.mnt("small").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
            REQUIRE(w);
            for (int i = 0; i < 50; ++i) {
                std::string piece = "line " + std::to_string(i) + "\n";
                write_all(w.get(), piece);
                small += piece;
            }
        }
        CHECK(riak_holds(node, "small", small));

        // A second version, rewritten in the middle through a write-only descriptor.
        {
            Fd w(::open(fx.mnt("small").c_str(), O_WRONLY | O_CLOEXEC));
            REQUIRE(w);
            pwrite_all(w.get(), "CHANGED", 10);
            small.replace(10, 7, "CHANGED");
        }
        CHECK(riak_holds(node, "small", small));

        // Several pages written through a mapping only.
        write_file(fx.mnt("mapped"), std::string(3 * 4096, '.'));
        CHECK(riak_holds(node, "mapped", std::string(3 * 4096, '.')));
        std::string mapped = write_through_mapping(fx.mnt("mapped"), 3 * 4096);
        CHECK(riak_holds(node, "mapped", mapped));
        CHECK(read_file(fx.mnt("mapped")) == mapped);
        if (std::string(mode) == "move") {
            auto deadline = std::chrono::steady_clock::now() + 60s;
            while (!is_released(fx.src("mapped")) && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(50ms);
            CHECK(is_released(fx.src("mapped")));
            CHECK(read_file(fx.mnt("mapped")) == mapped);
        } else {
            CHECK(read_file(fx.src("mapped")) == mapped);
        }
    }
}

TEST_CASE("writeback: mode=move keeps a file whose mapping still holds dirty pages",
          "[writeback][riak]") {
    TempDir dir("riakfs-wb-move");
    RiakNode node(dir.path());
    MountFixture fx(riak_mount(node, dir, "move"));

    write_file(fx.mnt("f"), std::string(2 * 4096, 'o'));
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!is_released(fx.src("f")) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    REQUIRE(is_released(fx.src("f")));

    // Mapped for writing (its data comes back first), changed, the descriptor closed: the
    // mapping holds the file open, so it is neither copied nor released while its pages are
    // dirty in the kernel.
    Fd fd(::open(fx.mnt("f").c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(fd);
    CHECK(!is_released(fx.src("f")));
    void* map = ::mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    REQUIRE(map != MAP_FAILED);
    fd.reset();
    std::string content = random_bytes(2 * 4096, 11);
    std::memcpy(map, content.data(), content.size());
    std::this_thread::sleep_for(3s); // time for a copy and a release, were either started
    CHECK(!is_released(fx.src("f")));
    CHECK(node.get(object_path("f")).body == std::string(2 * 4096, 'o'));
    REQUIRE(::munmap(map, 2 * 4096) == 0);

    // The last reference gone: the pages reach SOURCE, then the copy, then the release.
    CHECK(riak_holds(node, "f", content));
    deadline = std::chrono::steady_clock::now() + 60s;
    while (!is_released(fx.src("f")) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    CHECK(is_released(fx.src("f")));
    CHECK(read_file(fx.mnt("f")) == content);
}

TEST_CASE("writeback: a write that reaches the daemon after a copy was made is copied again",
          "[writeback][riak]") {
    for (const char* mode : {"shadow", "move"}) {
        INFO("mode=" << mode);
        TempDir dir("riakfs-wb-again");
        RiakNode node(dir.path());
        MountFixture fx(riak_mount(node, dir, mode));

        // A second writer stays open the whole time: the kernel may send any dirty page of the
        // file through it, and it pins the file (mode=move) until it closes.
        Fd keep(::open(fx.mnt("f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
        REQUIRE(keep);
        {
            Fd w(::open(fx.mnt("f").c_str(), O_WRONLY | O_CLOEXEC));
            REQUIRE(w);
            write_all(w.get(), "first version");
        }
        CHECK(riak_holds(node, "f", "first version"));
        // Written after that copy, kept in the kernel's cache for now.
        pwrite_all(keep.get(), "SECOND", 0);
        std::this_thread::sleep_for(2s); // time for a release, were one started
        CHECK(!is_released(fx.src("f")));
        keep.reset();
        CHECK(riak_holds(node, "f", "SECONDversion"));
        CHECK(read_file(fx.mnt("f")) == "SECONDversion");
        if (std::string(mode) == "move") {
            auto deadline = std::chrono::steady_clock::now() + 60s;
            while (!is_released(fx.src("f")) && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(50ms);
            CHECK(is_released(fx.src("f")));
            CHECK(read_file(fx.mnt("f")) == "SECONDversion");
        }
    }
}

} // namespace test_writeback
