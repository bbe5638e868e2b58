// Passthrough mode: file data operations (create/open/read/write, open flags, sync, fallocate,
// copy_file_range, mmap, a large file and concurrent I/O).
#include "metrics_scrape.hpp"
#include "mount_fixture.hpp"
#include "nested_mount.hpp"
#include "slow_fs.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

using namespace riakfs::it;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_io {

namespace {

void pwrite_all(int fd, std::string_view data, off_t off) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off + off_t(done));
        if (n < 0 && errno == EINTR) continue;
        INFO("pwrite at " << off + off_t(done) << ": " << errname(errno));
        REQUIRE(n > 0);
        done += size_t(n);
    }
}

std::string pread_n(int fd, size_t len, off_t off) {
    std::string out(len, '\0');
    size_t done = 0;
    while (done < len) {
        ssize_t n = ::pread(fd, out.data() + done, len - done, off + off_t(done));
        if (n < 0 && errno == EINTR) continue;
        INFO("pread at " << off + off_t(done) << ": " << errname(errno));
        REQUIRE(n >= 0);
        if (n == 0) break;
        done += size_t(n);
    }
    out.resize(done);
    return out;
}

// copy_file_range from the current offsets until `size` bytes went over; each call must move some.
void copy_whole(int in, int out, size_t size) {
    size_t copied = 0;
    while (copied < size) {
        ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, size - copied, 0);
        INFO("copy_file_range after " << copied << " bytes: " << errname(errno));
        REQUIRE(n > 0);
        copied += size_t(n);
    }
}

// Drops SOURCE's cached pages of `path` (clean after the fdatasync).
void evict(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY));
    REQUIRE(fd);
    ::fdatasync(fd.get());
    REQUIRE(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED) == 0);
}

// How many of the first `pages` pages of `path` are in the page cache.
size_t resident_pages(const std::string& path, size_t pages) {
    Fd fd(::open(path.c_str(), O_RDONLY));
    REQUIRE(fd);
    void* map = ::mmap(nullptr, pages * 4096, PROT_READ, MAP_SHARED, fd.get(), 0);
    REQUIRE(map != MAP_FAILED);
    std::vector<unsigned char> vec(pages);
    int rc = ::mincore(map, pages * 4096, vec.data());
    ::munmap(map, pages * 4096);
    REQUIRE(rc == 0);
    return static_cast<size_t>(std::count_if(vec.begin(), vec.end(), [](auto v) { return v & 1; }));
}
} // namespace

TEST_CASE("create, write, read back, and the file appears in SOURCE", "[io]") {
    MountFixture fx;
    Fd fd(::open(fx.mnt("new").c_str(), O_CREAT | O_RDWR | O_EXCL, 0640));
    REQUIRE(fd);
    CHECK(S_ISREG(lstat_ok(fx.src("new")).st_mode));
    CHECK((lstat_ok(fx.src("new")).st_mode & 0777) == 0640);

    CHECK(::write(fd.get(), "hello ", 6) == 6);
    CHECK(::write(fd.get(), "world", 5) == 5);
    CHECK(::lseek(fd.get(), 0, SEEK_CUR) == 11);
    char buf[64] = {};
    CHECK(::lseek(fd.get(), 0, SEEK_SET) == 0);
    CHECK(::read(fd.get(), buf, sizeof buf) == 11);
    CHECK(std::string(buf, 11) == "hello world");
    CHECK(::read(fd.get(), buf, sizeof buf) == 0); // EOF
    REQUIRE_OK(::fsync(fd.get()));
    CHECK(read_file(fx.src("new")) == "hello world");
    REQUIRE_OK(::close(fd.release()));
    CHECK(read_file(fx.src("new")) == "hello world");
    CHECK(read_file(fx.mnt("new")) == "hello world");
    CHECK(lstat_ok(fx.mnt("new")).st_size == 11);
}

TEST_CASE("pread and pwrite at offsets, holes read as zeros", "[io]") {
    MountFixture fx;
    Fd fd(::open(fx.mnt("f").c_str(), O_CREAT | O_RDWR, 0644));
    REQUIRE(fd);
    pwrite_all(fd.get(), "AAAA", 0);
    pwrite_all(fd.get(), "BBBB", 1 << 20); // 1 MiB hole
    pwrite_all(fd.get(), "cc", 2);
    CHECK(lstat_ok(fx.mnt("f")).st_size == (1 << 20) + 4);
    CHECK(pread_n(fd.get(), 6, 0) == std::string("AAcc\0\0", 6));
    CHECK(pread_n(fd.get(), 4, 1 << 20) == "BBBB");
    CHECK(pread_n(fd.get(), 10, (1 << 20) + 2) == "BB"); // short read at EOF
    CHECK(pread_n(fd.get(), 10, 5 << 20).empty());       // beyond EOF
    std::string hole = pread_n(fd.get(), 4096, 8192);
    CHECK(digest(hole) == digest(std::string(4096, '\0')));
    // The file position is unaffected by pread/pwrite.
    CHECK(::lseek(fd.get(), 0, SEEK_CUR) == 0);
    REQUIRE_OK(::fdatasync(fd.get()));
    std::string s = read_file(fx.src("f"));
    REQUIRE(s.size() == (1 << 20) + 4);
    CHECK(s.substr(0, 4) == "AAcc");
    CHECK(s.substr(1 << 20) == "BBBB");
}

TEST_CASE("O_APPEND appends at the end, also with pwrite and two descriptors", "[io]") {
    MountFixture fx;
    write_file(fx.mnt("log"), "start\n");
    Fd a(::open(fx.mnt("log").c_str(), O_WRONLY | O_APPEND));
    Fd b(::open(fx.mnt("log").c_str(), O_WRONLY | O_APPEND));
    REQUIRE(a);
    REQUIRE(b);
    CHECK(::write(a.get(), "a1\n", 3) == 3);
    CHECK(::write(b.get(), "b1\n", 3) == 3);
    CHECK(::write(a.get(), "a2\n", 3) == 3);
    // Linux: pwrite on an O_APPEND descriptor appends regardless of the offset.
    CHECK(::pwrite(b.get(), "b2\n", 3, 0) == 3);
    CHECK(read_file(fx.mnt("log")) == "start\na1\nb1\na2\nb2\n");
    CHECK(read_file(fx.src("log")) == "start\na1\nb1\na2\nb2\n");

    // After a truncate through the mount, appends start again at the (new) end.
    REQUIRE_OK(::truncate(fx.mnt("log").c_str(), 2));
    CHECK(::write(a.get(), "X", 1) == 1);
    if (suite_writeback()) REQUIRE_OK(::fsync(a.get())); // the page is the kernel's until then
    CHECK(read_file(fx.src("log")) == "stX");

    // O_APPEND | O_RDWR: reads still honour the position.
    Fd c(::open(fx.mnt("log").c_str(), O_RDWR | O_APPEND));
    REQUIRE(c);
    char buf[4] = {};
    CHECK(::read(c.get(), buf, 2) == 2);
    CHECK(std::string(buf, 2) == "st");
    CHECK(::write(c.get(), "Y", 1) == 1);
    CHECK(read_file(fx.mnt("log")) == "stXY");
}

TEST_CASE("O_TRUNC truncates an existing file on open", "[io]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "some old content");
    Fd ro(::open(fx.mnt("f").c_str(), O_RDONLY)); // cached pages must not survive O_TRUNC
    REQUIRE(ro);
    char buf[32];
    CHECK(::read(ro.get(), buf, sizeof buf) == 16);
    {
        Fd fd(::open(fx.mnt("f").c_str(), O_WRONLY | O_TRUNC));
        REQUIRE(fd);
        CHECK(lstat_ok(fx.mnt("f")).st_size == 0);
        CHECK(lstat_ok(fx.src("f")).st_size == 0);
        CHECK(::write(fd.get(), "new", 3) == 3);
    }
    CHECK(read_file(fx.mnt("f")) == "new");
    CHECK(read_file(fx.src("f")) == "new");
    CHECK(::pread(ro.get(), buf, sizeof buf, 0) == 3);
    CHECK(std::string(buf, 3) == "new");

    // O_CREAT | O_TRUNC on an existing file keeps its mode and inode.
    REQUIRE_OK(::chmod(fx.mnt("f").c_str(), 0600));
    ino_t ino = lstat_ok(fx.mnt("f")).st_ino;
    Fd again(::open(fx.mnt("f").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666));
    REQUIRE(again);
    CHECK(lstat_ok(fx.mnt("f")).st_ino == ino);
    CHECK((lstat_ok(fx.src("f")).st_mode & 0777) == 0600);
    CHECK(lstat_ok(fx.src("f")).st_size == 0);
}

TEST_CASE("O_EXCL and other open errors", "[io]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    REQUIRE_OK(::mkdir(fx.mnt("d").c_str(), 0755));
    REQUIRE_OK(::symlink("nowhere", fx.mnt("dangling").c_str()));
    CHECK_ERRNO(::open(fx.mnt("f").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    CHECK_ERRNO(::open(fx.mnt("d").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    // O_EXCL does not follow a dangling symlink: EEXIST, and no target is created.
    CHECK_ERRNO(::open(fx.mnt("dangling").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    CHECK_ERRNO(::access(fx.src("nowhere").c_str(), F_OK), ENOENT);
    CHECK_ERRNO(::open(fx.mnt("missing").c_str(), O_RDONLY), ENOENT);
    CHECK_ERRNO(::open(fx.mnt("missing/x").c_str(), O_CREAT | O_WRONLY, 0644), ENOENT);
    CHECK_ERRNO(::open(fx.mnt("f/x").c_str(), O_CREAT | O_WRONLY, 0644), ENOTDIR);
    CHECK_ERRNO(::open(fx.mnt("f").c_str(), O_RDONLY | O_DIRECTORY), ENOTDIR);
    CHECK_ERRNO(::open(fx.mnt("d").c_str(), O_WRONLY), EISDIR);
    CHECK_ERRNO(::open(fx.mnt("d").c_str(), O_RDWR), EISDIR);

    // Read on a write-only descriptor, write on a read-only one.
    Fd w(::open(fx.mnt("f").c_str(), O_WRONLY));
    Fd r(::open(fx.mnt("f").c_str(), O_RDONLY));
    REQUIRE(w);
    REQUIRE(r);
    char c;
    CHECK_ERRNO(::read(w.get(), &c, 1), EBADF);
    CHECK_ERRNO(::write(r.get(), "y", 1), EBADF);

    // Two O_EXCL creators racing: exactly one wins.
    std::atomic<int> wins{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 8; ++i) {
        ts.emplace_back([&] {
            int fd = ::open(fx.mnt("race").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
            if (fd >= 0) {
                ++wins;
                ::close(fd);
            }
        });
    }
    for (auto& t : ts)
        t.join();
    CHECK(wins == 1);
}

TEST_CASE("fsync, fdatasync and close of files and directories succeed", "[io]") {
    MountFixture fx;
    Fd fd(::open(fx.mnt("f").c_str(), O_CREAT | O_RDWR, 0644));
    REQUIRE(fd);
    CHECK(::write(fd.get(), "abc", 3) == 3);
    CHECK_OK(::fsync(fd.get()));
    CHECK_OK(::fdatasync(fd.get()));
    CHECK(read_file(fx.src("f")) == "abc");
    Fd dup(::dup(fd.get()));
    REQUIRE(dup);
    CHECK_OK(::close(dup.release())); // flush of a duplicate
    CHECK(::write(fd.get(), "d", 1) == 1);
    CHECK_OK(::close(fd.release()));
    CHECK(read_file(fx.src("f")) == "abcd");

    Fd dfd(::open(fx.mnt("").c_str(), O_RDONLY | O_DIRECTORY));
    REQUIRE(dfd);
    CHECK_OK(::fsync(dfd.get()));
    CHECK_OK(::fdatasync(dfd.get()));
    CHECK_OK(::syncfs(dfd.get()));
    CHECK_OK(::close(dfd.release()));
}

TEST_CASE("O_DIRECT reads and writes", "[io]") {
    MountFixture fx;
    void* mem = nullptr;
    REQUIRE(::posix_memalign(&mem, 4096, 8192) == 0);
    std::unique_ptr<void, decltype(&std::free)> guard(mem, &std::free);
    std::string data = random_bytes(8192, 7);
    std::memcpy(mem, data.data(), data.size());
    Fd fd(::open(fx.mnt("direct").c_str(), O_CREAT | O_RDWR | O_DIRECT, 0644));
    REQUIRE(fd);
    ssize_t w = ::pwrite(fd.get(), mem, 8192, 0);
    int werr = errno;
    std::memset(mem, 0, 8192);
    ssize_t r = ::pread(fd.get(), mem, 8192, 0);
    int rerr = errno;
    INFO("O_DIRECT pwrite: " << errname(w < 0 ? werr : 0)
                             << ", pread: " << errname(r < 0 ? rerr : 0));
    CHECK(w == 8192);
    CHECK(r == 8192);
    CHECK(digest(std::string_view(static_cast<char*>(mem), 8192)) == digest(data));
    CHECK(digest(read_file(fx.src("direct"))) == digest(data));
}

TEST_CASE("fallocate: allocate, KEEP_SIZE and PUNCH_HOLE", "[io]") {
    MountFixture fx;
    write_file(fx.mnt("f"), std::string(65536, 'z'));
    Fd fd(::open(fx.mnt("f").c_str(), O_RDWR));
    REQUIRE(fd);

    // Mode 0 extends the file.
    REQUIRE_OK(::fallocate(fd.get(), 0, 0, 1 << 20));
    CHECK(lstat_ok(fx.mnt("f")).st_size == 1 << 20);
    CHECK(lstat_ok(fx.src("f")).st_size == 1 << 20);
    CHECK(pread_n(fd.get(), 4, 65536) == std::string(4, '\0'));
    CHECK(pread_n(fd.get(), 4, 0) == "zzzz");

    // KEEP_SIZE allocates blocks beyond EOF without changing the size.
    blkcnt_t before = lstat_ok(fx.src("f")).st_blocks;
    REQUIRE_OK(::fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20));
    CHECK(lstat_ok(fx.mnt("f")).st_size == 1 << 20);
    CHECK(lstat_ok(fx.src("f")).st_size == 1 << 20);
    CHECK(lstat_ok(fx.src("f")).st_blocks > before);

    // PUNCH_HOLE zeroes the range and keeps the size.
    REQUIRE_OK(::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192));
    CHECK(lstat_ok(fx.mnt("f")).st_size == 1 << 20);
    CHECK(digest(pread_n(fd.get(), 4096, 0)) == digest(std::string(4096, 'z')));
    CHECK(digest(pread_n(fd.get(), 8192, 4096)) == digest(std::string(8192, '\0')));
    CHECK(digest(pread_n(fd.get(), 4096, 12288)) == digest(std::string(4096, 'z')));
    std::string s = read_file(fx.src("f"));
    CHECK(digest(s.substr(4096, 8192)) == digest(std::string(8192, '\0')));
    CHECK(digest(s.substr(12288, 4096)) == digest(std::string(4096, 'z')));

    // PUNCH_HOLE without KEEP_SIZE is invalid (EOPNOTSUPP on Linux).
    CHECK_ERRNO(::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE, 0, 4096), EOPNOTSUPP);
    // posix_fallocate on a read-only descriptor fails with EBADF.
    Fd ro(::open(fx.mnt("f").c_str(), O_RDONLY));
    REQUIRE(ro);
    CHECK_ERRNO(::fallocate(ro.get(), 0, 0, 4096), EBADF);
}

TEST_CASE("copy_file_range between two files in the mount", "[io]") {
    MountFixture fx;
    std::string data = random_bytes(3 << 20, 42);
    write_file(fx.mnt("a"), data);
    REQUIRE_OK(::mkdir(fx.mnt("sub").c_str(), 0755));
    Fd in(::open(fx.mnt("a").c_str(), O_RDONLY));
    Fd out(::open(fx.mnt("sub/b").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644));
    REQUIRE(in);
    REQUIRE(out);
    copy_whole(in.get(), out.get(), data.size());
    out.reset();
    CHECK(digest(read_file(fx.mnt("sub/b"))) == digest(data));
    CHECK(digest(read_file(fx.src("sub/b"))) == digest(data));

    // With explicit offsets, into the middle of an existing file.
    Fd out2(::open(fx.mnt("sub/b").c_str(), O_WRONLY));
    REQUIRE(out2);
    loff_t off_in = 100, off_out = 5000;
    ssize_t n = ::copy_file_range(in.get(), &off_in, out2.get(), &off_out, 1000, 0);
    INFO("copy_file_range with offsets: " << errname(errno));
    REQUIRE(n == 1000);
    CHECK(off_in == 1100);
    CHECK(off_out == 6000);
    out2.reset();
    std::string expect = data;
    expect.replace(5000, 1000, data.substr(100, 1000));
    CHECK(digest(read_file(fx.src("sub/b"))) == digest(expect));
    CHECK(digest(read_file(fx.mnt("sub/b"))) == digest(expect));
}

TEST_CASE("mmap MAP_SHARED read and write", "[io]") {
    MountFixture fx;
    std::string data = random_bytes(3 * 4096 + 100, 9);
    write_file(fx.mnt("m"), data);
    Fd fd(::open(fx.mnt("m").c_str(), O_RDWR));
    REQUIRE(fd);
    size_t len = data.size();
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    INFO("mmap: " << errname(errno));
    REQUIRE(p != MAP_FAILED);
    char* c = static_cast<char*>(p);
    CHECK(digest(std::string_view(c, len)) == digest(data));
    std::memcpy(c + 10, "MMAPWRITE", 9);
    std::memcpy(c + 2 * 4096 + 5, "SECOND", 6);
    CHECK(::msync(p, len, MS_SYNC) == 0);
    ::munmap(p, len);
    fd.reset();
    std::string expect = data;
    expect.replace(10, 9, "MMAPWRITE");
    expect.replace(2 * 4096 + 5, 6, "SECOND");
    CHECK(digest(read_file(fx.src("m"))) == digest(expect));
    CHECK(digest(read_file(fx.mnt("m"))) == digest(expect));

    // Read-only private mapping of the same file.
    Fd ro(::open(fx.mnt("m").c_str(), O_RDONLY));
    REQUIRE(ro);
    void* q = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, ro.get(), 0);
    REQUIRE(q != MAP_FAILED);
    CHECK(digest(std::string_view(static_cast<char*>(q), len)) == digest(expect));
    ::munmap(q, len);
}

TEST_CASE("a 64 MiB file written and read back with the same checksum", "[io][large]") {
    MountFixture fx;
    constexpr size_t kSize = 64u << 20;
    uint64_t expect_hash = 0;
    {
        Fd fd(::open(fx.mnt("big").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644));
        REQUIRE(fd);
        uint64_t h = fnv1a("");
        for (size_t off = 0; off < kSize; off += 1 << 20) {
            std::string chunk = random_bytes(1 << 20, off);
            h = fnv1a(chunk, h);
            size_t done = 0;
            while (done < chunk.size()) {
                ssize_t n = ::write(fd.get(), chunk.data() + done, chunk.size() - done);
                INFO("write at " << off + done << ": " << errname(errno));
                REQUIRE(n > 0);
                done += size_t(n);
            }
        }
        expect_hash = h;
        REQUIRE_OK(::fsync(fd.get()));
        REQUIRE_OK(::close(fd.release()));
    }
    CHECK(lstat_ok(fx.mnt("big")).st_size == off_t(kSize));
    CHECK(lstat_ok(fx.src("big")).st_size == off_t(kSize));

    // Read back through the mount with an odd buffer size, and from SOURCE.
    auto hash_file = [](const std::string& p, size_t bufsz) {
        Fd fd(::open(p.c_str(), O_RDONLY));
        REQUIRE(fd);
        std::string buf(bufsz, '\0');
        uint64_t h = fnv1a("");
        size_t total = 0;
        for (;;) {
            ssize_t n = ::read(fd.get(), buf.data(), buf.size());
            INFO("read " << p << " at " << total << ": " << errname(errno));
            REQUIRE(n >= 0);
            if (n == 0) break;
            h = fnv1a(std::string_view(buf.data(), size_t(n)), h);
            total += size_t(n);
        }
        return std::make_pair(h, total);
    };
    auto [hm, nm] = hash_file(fx.mnt("big"), 131071);
    CHECK(nm == kSize);
    CHECK(hm == expect_hash);
    auto [hs, ns] = hash_file(fx.src("big"), 1 << 20);
    CHECK(ns == kSize);
    CHECK(hs == expect_hash);
}

TEST_CASE("concurrent readers and writers on different files", "[io][concurrency]") {
    MountFixture fx;
    constexpr int kThreads = 8;
    constexpr size_t kSize = 4u << 20;
    std::vector<std::string> contents(kThreads);
    for (int i = 0; i < kThreads; ++i)
        contents[i] = random_bytes(kSize, 1000 + i);
    std::string shared = random_bytes(2u << 20, 77);
    write_file(fx.mnt("shared"), shared);

    std::atomic<int> failures{0};
    std::vector<std::string> errors(kThreads * 2);
    std::vector<std::thread> ts;
    for (int i = 0; i < kThreads; ++i) {
        // Writer: random-sized pwrites in a shuffled order, then a full read-back.
        ts.emplace_back([&, i] {
            std::string path = fx.mnt("w" + std::to_string(i));
            int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
            if (fd < 0) {
                errors[i] = "open: " + errname(errno);
                ++failures;
                return;
            }
            std::mt19937 rng(i);
            std::vector<std::pair<size_t, size_t>> pieces;
            for (size_t off = 0; off < kSize;) {
                size_t len = std::min<size_t>(kSize - off, 1 + rng() % 200000);
                pieces.emplace_back(off, len);
                off += len;
            }
            std::shuffle(pieces.begin(), pieces.end(), rng);
            for (auto [off, len] : pieces) {
                if (::pwrite(fd, contents[i].data() + off, len, off_t(off)) != ssize_t(len)) {
                    errors[i] = "pwrite: " + errname(errno);
                    ++failures;
                    break;
                }
            }
            std::string back(kSize, '\0');
            size_t got = 0;
            while (got < kSize) {
                ssize_t n = ::pread(fd, back.data() + got, kSize - got, off_t(got));
                if (n <= 0) break;
                got += size_t(n);
            }
            if (got != kSize || back != contents[i]) {
                errors[i] = "read-back mismatch after " + std::to_string(got) + " bytes";
                ++failures;
            }
            ::close(fd);
        });
        // Reader: rereads the shared file repeatedly.
        ts.emplace_back([&, i] {
            for (int rep = 0; rep < 5; ++rep) {
                auto r = try_read_file(fx.mnt("shared"));
                if (!r || *r != shared) {
                    errors[kThreads + i] = "shared read mismatch";
                    ++failures;
                    return;
                }
            }
        });
    }
    for (auto& t : ts)
        t.join();
    for (auto& e : errors)
        if (!e.empty()) UNSCOPED_INFO(e);
    CHECK(failures == 0);
    for (int i = 0; i < kThreads; ++i)
        CHECK(fnv1a(read_file(fx.src("w" + std::to_string(i)))) == fnv1a(contents[i]));
}

TEST_CASE("mmap writes through an O_APPEND descriptor land at the mapped offset", "[io][mmap]") {
    // Native Linux: O_APPEND only affects write(2); a shared mapping writes pages where they
    // are. A daemon that opens its backing file with O_APPEND would append these pages instead.
    MountFixture fx;
    write_file(fx.mnt("f"), "0123456789");
    {
        Fd fd(::open(fx.mnt("f").c_str(), O_RDWR | O_APPEND));
        REQUIRE(fd);
        void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
        INFO("mmap: " << errname(errno));
        REQUIRE(p != MAP_FAILED);
        static_cast<char*>(p)[0] = 'X';
        static_cast<char*>(p)[5] = 'Y';
        CHECK(::msync(p, 4096, MS_SYNC) == 0);
        ::munmap(p, 4096);
        CHECK_OK(::fsync(fd.get()));
    }
    CHECK(read_file(fx.src("f")) == "X1234Y6789");
    CHECK(read_file(fx.mnt("f")) == "X1234Y6789");
    struct stat st = lstat_ok(fx.src("f"));
    CHECK(st.st_size == 10);
}

TEST_CASE("a file opened with O_DIRECT can still be mapped shared", "[io][mmap]") {
    // Native ext4/tmpfs allow MAP_SHARED on an O_DIRECT descriptor.
    MountFixture fx;
    write_file(fx.mnt("f"), std::string(8192, 'a'));
    Fd fd(::open(fx.mnt("f").c_str(), O_RDWR | O_DIRECT));
    REQUIRE(fd);
    void* p = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    int err = errno;
    INFO("mmap(MAP_SHARED) of an O_DIRECT descriptor: " << errname(p == MAP_FAILED ? err : 0));
    REQUIRE(p != MAP_FAILED);
    CHECK(static_cast<char*>(p)[100] == 'a');
    static_cast<char*>(p)[100] = 'b';
    CHECK(::msync(p, 8192, MS_SYNC) == 0);
    ::munmap(p, 8192);
    fd.reset();
    CHECK(read_file(fx.src("f"))[100] == 'b');
}

TEST_CASE("SEEK_DATA and SEEK_HOLE report the holes of a sparse file", "[io]") {
    MountFixture fx;
    Fd fd(::open(fx.mnt("sparse").c_str(), O_CREAT | O_RDWR, 0644));
    REQUIRE(fd);
    std::string block(4096, 'd');
    pwrite_all(fd.get(), block, 0);
    pwrite_all(fd.get(), block, 1 << 20);
    REQUIRE_OK(::fsync(fd.get()));
    // The same answers as on SOURCE itself.
    Fd sfd(::open(fx.src("sparse").c_str(), O_RDONLY));
    REQUIRE(sfd);
    for (off_t off : {off_t(0), off_t(100), off_t(4096), off_t(500000), off_t(1 << 20)}) {
        INFO("offset " << off);
        CHECK(::lseek(fd.get(), off, SEEK_HOLE) == ::lseek(sfd.get(), off, SEEK_HOLE));
        CHECK(::lseek(fd.get(), off, SEEK_DATA) == ::lseek(sfd.get(), off, SEEK_DATA));
    }
    CHECK_ERRNO(::lseek(fd.get(), (1 << 20) + 4096, SEEK_DATA), ENXIO);
    CHECK(::lseek(fd.get(), 0, SEEK_END) == (1 << 20) + 4096);
}

TEST_CASE("offsets beyond 4 GiB work (sparse)", "[io]") {
    MountFixture fx;
    const off_t far = (5LL << 30) + 123;
    Fd fd(::open(fx.mnt("far").c_str(), O_CREAT | O_RDWR, 0644));
    REQUIRE(fd);
    pwrite_all(fd.get(), "far away", far);
    CHECK(lstat_ok(fx.mnt("far")).st_size == far + 8);
    if (suite_writeback()) REQUIRE_OK(::fsync(fd.get())); // the page is the kernel's until then
    CHECK(lstat_ok(fx.src("far")).st_size == far + 8);
    CHECK(pread_n(fd.get(), 8, far) == "far away");
    CHECK(pread_n(fd.get(), 4, far - 4) == std::string(4, '\0'));
    REQUIRE_OK(::ftruncate(fd.get(), far + 3));
    CHECK(pread_n(fd.get(), 100, far) == "far");
}

TEST_CASE("st_blocks reflects allocated data", "[io]") {
    MountFixture fx;
    write_file(fx.mnt("f"), std::string(65536, 'b'));
    Fd fd(::open(fx.mnt("f").c_str(), O_RDONLY));
    REQUIRE(fd);
    REQUIRE_OK(::fsync(fd.get()));
    struct stat m = lstat_ok(fx.mnt("f"));
    struct stat s = lstat_ok(fx.src("f"));
    CHECK(m.st_blocks >= 128);
    CHECK(m.st_blocks == s.st_blocks);
    CHECK(m.st_blksize > 0);
}

TEST_CASE("writes update mtime and ctime in SOURCE and through the mount", "[io]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    REQUIRE_OK(::utimensat(AT_FDCWD, fx.mnt("f").c_str(), old, 0));
    struct stat before = lstat_ok(fx.mnt("f"));
    REQUIRE(before.st_mtim.tv_sec == 1000);
    {
        Fd fd(::open(fx.mnt("f").c_str(), O_WRONLY));
        REQUIRE(fd);
        CHECK(::write(fd.get(), "y", 1) == 1);
    }
    CHECK(lstat_ok(fx.src("f")).st_mtim.tv_sec > 1000);
    CHECK(lstat_ok(fx.mnt("f")).st_mtim.tv_sec > 1000);
    struct stat c1 = lstat_ok(fx.mnt("f"));
    REQUIRE_OK(::chmod(fx.mnt("f").c_str(), 0600));
    struct stat c2 = lstat_ok(fx.mnt("f"));
    CHECK((c2.st_ctim.tv_sec > c1.st_ctim.tv_sec ||
           (c2.st_ctim.tv_sec == c1.st_ctim.tv_sec && c2.st_ctim.tv_nsec >= c1.st_ctim.tv_nsec)));
}

TEST_CASE("changes made to SOURCE directly become visible within a few seconds", "[io][external]") {
    // With the default cache policy attributes and entries may be cached briefly, but not for
    // long: a passthrough mount of a directory that other programs also modify must catch up.
    // Named, so that a suite run with another policy (RIAKFS_IT_OPTS) keeps this one.
    MountOptions opts;
    opts.extra_opts = {"cache=auto"};
    MountFixture fx(opts);
    write_file(fx.mnt("f"), "version one");
    CHECK(read_file(fx.mnt("f")) == "version one");
    write_file(fx.src("f"), "version two, longer"); // same inode, new content and size
    REQUIRE_OK(::mkdir(fx.src("newdir").c_str(), 0755));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::string seen;
    struct stat st {};
    bool dir_seen = false;
    while (std::chrono::steady_clock::now() < deadline) {
        seen = try_read_file(fx.mnt("f")).value_or("<error>");
        dir_seen = ::stat(fx.mnt("newdir").c_str(), &st) == 0;
        if (seen == "version two, longer" && dir_seen) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(seen == "version two, longer");
    CHECK(dir_seen);
}

TEST_CASE("a file read through several event loops closes cleanly", "[io][threads]") {
    // With threads=N, reads of one open file that miss the page cache run on io_uring on several
    // loops at once, each through an Asio object of its own loop (Asio objects are not
    // thread-safe) that must borrow, never close, the shared descriptor. The fixture then checks
    // a clean exit with no sanitizer report.
    if (!riakfs_only("option threads=")) return;
    MountOptions opts;
    opts.extra_opts = {"threads=4"};
    MountFixture fx(opts);
    constexpr size_t kSize = 4 << 20, kChunk = 256 << 10;
    const std::string data = random_bytes(kSize, 11);
    write_file(fx.src("f"), data);
    for (int round = 0; round < 20; ++round) {
        // Out of the page cache, so that reads go through io_uring rather than RWF_NOWAIT.
        evict(fx.src("f"));
        Fd f(::open(fx.mnt("f").c_str(), O_RDONLY | O_DIRECT));
        REQUIRE(f);
        std::atomic<int> bad{0};
        std::vector<std::thread> readers;
        for (int t = 0; t < 4; ++t) {
            readers.emplace_back([&, t] {
                void* mem = nullptr;
                if (::posix_memalign(&mem, 4096, kChunk) != 0) return (void)++bad;
                std::unique_ptr<char, decltype(&std::free)> buf(static_cast<char*>(mem), std::free);
                for (size_t off = t * kChunk; off < kSize; off += 4 * kChunk) {
                    ssize_t n = ::pread(f.get(), buf.get(), kChunk, static_cast<off_t>(off));
                    if (n != static_cast<ssize_t>(kChunk) ||
                        std::memcmp(buf.get(), data.data() + off, kChunk) != 0)
                        ++bad;
                }
            });
        }
        for (auto& r : readers)
            r.join();
        CHECK(bad == 0);
    }
    fx.unmount();
}

TEST_CASE("an open for reading starts reading the file's first window in SOURCE", "[io][cache]") {
    // The READ that follows an OPEN then finds its data in flight rather than starting it: a cold
    // small file is read in one disk wait instead of one plus a round trip.
    if (!riakfs_only("open-time readahead")) return;
    MountFixture fx;
    write_file(fx.src("f"), random_bytes(64 << 10, 5));
    evict(fx.src("f"));
    if (resident_pages(fx.src("f"), 16) != 0)
        FAIL("the temporary directory keeps files in memory (tmpfs?): nothing to read ahead; "
             "set TMPDIR to a directory on a disk file system");
    SECTION("O_RDONLY: the pages are coming before any read") {
        Fd f(::open(fx.mnt("f").c_str(), O_RDONLY));
        REQUIRE(f);
        // mincore counts a page once its read has completed: give the disk a moment.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (resident_pages(fx.src("f"), 16) < 16 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        CHECK(resident_pages(fx.src("f"), 16) == 16);
    }
    SECTION("O_WRONLY and O_TRUNC: nothing to read, nothing read") {
        Fd w(::open(fx.mnt("f").c_str(), O_WRONLY));
        REQUIRE(w);
        CHECK(resident_pages(fx.src("f"), 16) == 0);
        Fd t(::open(fx.mnt("f").c_str(), O_RDWR | O_TRUNC));
        REQUIRE(t);
        CHECK(resident_pages(fx.src("f"), 16) == 0);
    }
}

// SOURCE may hold other file systems. Through the mount everything is one file system, so the
// kernel hands copy_file_range between them to us; the source's EXDEV must not reach the
// application, which would not expect it within one file system: we copy by hand instead.
TEST_CASE("copy_file_range across file systems inside SOURCE", "[io][exdev]") {
    std::string nested;
    MountFixture fx(MountOptions::prepared([&](const std::string& src) {
        nested = src + "/other";
        REQUIRE_OK(::mkdir(nested.c_str(), 0755));
        REQUIRE_OK(::mount("tmpfs", nested.c_str(), "tmpfs", 0, "size=8m"));
    }));
    Unmounter unmounter{fx, {nested}}; // destroyed before fx: FUSE first, then the tmpfs
    std::string data = random_bytes((1 << 20) + 123, 7);
    write_file(fx.mnt("a"), data);
    Fd in(::open(fx.mnt("a").c_str(), O_RDONLY));
    Fd out(::open(fx.mnt("other/b").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644));
    REQUIRE(in);
    REQUIRE(out);
    copy_whole(in.get(), out.get(), data.size());
    out.reset();
    CHECK(digest(read_file(fx.src("other/b"))) == digest(data));
    // The other direction, with offsets.
    Fd back(::open(fx.mnt("other/b").c_str(), O_RDONLY));
    Fd dst(::open(fx.mnt("c").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644));
    REQUIRE(back);
    REQUIRE(dst);
    loff_t off_in = 10, off_out = 0;
    ssize_t n = ::copy_file_range(back.get(), &off_in, dst.get(), &off_out, 5000, 0);
    INFO("copy_file_range back: " << errname(errno));
    REQUIRE(n == 5000);
    dst.reset();
    CHECK(read_file(fx.src("c")) == data.substr(10, 5000));
}

// FLUSH lets close() report what the source reports at close, which only a source with a close
// of its own can (FUSE here; NFS and CIFS alike): each close of a file written there asks the
// daemon. Read-only opens have nothing to flush, and a local file system's close() (tmpfs here)
// nothing to report: those closes skip the round trip. Counted from the daemon's own requests.
TEST_CASE("FLUSH comes exactly for the closes of files written on a source with a close of its own",
          "[io][flush]") {
    if (!riakfs_only("FLUSH count, from riakfs's metrics")) return;
    std::string local;
    MountOptions opts = MountOptions::prepared([&](const std::string& src) {
        local = src + "/local";
        REQUIRE_OK(::mkdir(local.c_str(), 0755));
        REQUIRE_OK(::mount("tmpfs", local.c_str(), "tmpfs", 0, "size=1m"));
        write_file(local + "/r", "read me");
    });
    opts.extra_opts = {"metrics=127.0.0.1:0"};
    MountFixture fx(opts);
    Unmounter unmounter{fx, {local}}; // destroyed before fx: FUSE first, then the tmpfs
    SlowFs fuse_source(fx, fx.src("fuse"), "none"); // a FUSE source on which nothing waits
    const unsigned port = metrics_port(fx);
    auto flushes = [&] {
        const std::string series = "riakfs_fuse_requests_total{op=\"flush\"}";
        Exposition e = scrape(port);
        return e.has(series) ? e.at(series) : 0.0;
    };
    // Opens `path` with `flags` three times, writing one byte through each descriptor that can
    // write, closes each, and returns how many FLUSH requests the daemon answered meanwhile.
    auto flushes_for = [&](const std::string& path, int flags) {
        double before = flushes();
        for (int i = 0; i < 3; ++i) {
            Fd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
            INFO(path << ": " << errname(fd ? 0 : errno));
            REQUIRE(fd);
            if ((flags & O_ACCMODE) != O_RDONLY) REQUIRE(::pwrite(fd.get(), "x", 1, 0) == 1);
        }
        return flushes() - before;
    };
    // With the kernel's writeback cache every close flushes (the kernel writes its dirty pages
    // and times first, and sends FLUSH whatever noflush says).
    const double skipped = suite_writeback() ? 3 : 0;
    CHECK(flushes_for(fx.mnt("fuse/a"), O_WRONLY) == 3);
    CHECK(flushes_for(fx.mnt("fuse/b"), O_RDWR) == 3);
    CHECK(flushes_for(fx.mnt("fuse/c"), O_RDONLY) == skipped);
    CHECK(flushes_for(fx.mnt("local/w"), O_WRONLY | O_CREAT) == skipped); // a create, then opens
    CHECK(flushes_for(fx.mnt("local/w"), O_RDWR) == skipped);
    CHECK(flushes_for(fx.mnt("local/r"), O_RDONLY) == skipped);
    CHECK(read_file(fx.src("local/w")) == "x");
}

} // namespace test_io
