// mode=move through a real mount against a real riak-devnode: once a file's copy is verified its
// local data is released (a sparse placeholder with the marker stays in SOURCE), `stat` shows the
// same file, reads come from Riak, writes bring the data back first and the new version is
// released again; renames move the copy inside Riak; Riak down is EIO for released data, never
// zeros; losing state_dir never turns a placeholder into a file of zeros.
#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include "../support/test_seed.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace riakfs::it;
using namespace std::chrono_literals;

namespace {

MountOptions move_mount(const RiakNode& node, const TempDir& dir,
                        std::vector<std::string> more = {}) {
    MountOptions opts;
    opts.extra_opts = {"mode=move", "riak=" + node.url(), "state_dir=" + dir / "state",
                       "chunk_size=65536", "cache=never"};
    for (auto& o : more)
        opts.extra_opts.push_back(o);
    return opts;
}

} // namespace

TEST_CASE("move: verified files are released; stat is unchanged and reads come from Riak",
          "[move]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    const std::string small = "hello, released world\n";
    const std::string big = random_bytes(5 * 65536 + 17, 1); // a manifest and 6 chunks
    const std::string edge = random_bytes(65536, 2);         // exactly one chunk
    std::string sparse(3 * 65536, '\0');                     // a hole in the middle
    sparse.replace(0, 10, "head bytes");
    sparse.replace(2 * 65536, 10, "tail bytes");
    write_file(fx.mnt("small.txt"), small);
    write_file(fx.mnt("big.bin"), big);
    write_file(fx.mnt("edge.bin"), edge);
    write_file(fx.mnt("sparse.bin"), sparse);
    write_file(fx.mnt("empty"), "");
    for (const char* name : {"small.txt", "big.bin", "edge.bin", "sparse.bin"}) {
        INFO(name);
        struct stat before = lstat_ok(fx.mnt(name));
        REQUIRE(wait_released(fx.src(name)));
        struct stat after = lstat_ok(fx.mnt(name));
        CHECK(after.st_size == before.st_size);
        CHECK(after.st_mode == before.st_mode);
        CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
        CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
        CHECK(after.st_ino == before.st_ino);
    }
    // A 0-byte file has nothing to release.
    CHECK(::getxattr(fx.src("empty").c_str(), kReleasedMarker, nullptr, 0) < 0);
    // The marker is riakfs's own: not shown through the mount.
    CHECK(::getxattr(fx.mnt("small.txt").c_str(), kReleasedMarker, nullptr, 0) < 0);
    CHECK(errno == ENODATA);
    CHECK(::setxattr(fx.mnt("small.txt").c_str(), kReleasedMarker, "x", 1, 0) < 0);
    CHECK(errno == EPERM);
    CHECK(::removexattr(fx.mnt("small.txt").c_str(), kReleasedMarker) < 0);
    CHECK(is_released(fx.src("small.txt")));
    CHECK(read_file(fx.mnt("small.txt")) == small);
    CHECK(digest(read_file(fx.mnt("big.bin"))) == digest(big));
    CHECK(digest(read_file(fx.mnt("edge.bin"))) == digest(edge));
    CHECK(read_file(fx.mnt("sparse.bin")) == sparse);
    CHECK(read_file(fx.mnt("empty")).empty());
    // Other Riak clients read the object at its path key.
    CHECK(node.get(object_path("small.txt")).body == small);
    // Nothing read made the files local again.
    CHECK(is_released(fx.src("big.bin")));
}

TEST_CASE("move: stat and listings while many files are released never show a moved mtime",
          "[move][concurrency]") {
    // A release punches the file (which sets its mtime to now) and then puts the mtime back:
    // what the mount answers in between must still be the user's mtime. cache=never: every stat
    // and every listing asks the daemon.
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    constexpr int kFiles = 40;
    std::vector<std::string> names;
    for (int i = 0; i < kFiles; ++i) {
        names.push_back("m" + std::to_string(i));
        write_file(fx.mnt(names.back()), random_bytes(20000 + 3000 * i, 300 + i));
    }
    std::map<std::string, struct timespec> mtimes;
    for (const auto& name : names)
        mtimes[name] = lstat_ok(fx.mnt(name)).st_mtim;
    std::atomic<bool> stop{false};
    std::atomic<int> moved{0}, stats{0};
    std::mutex first_mu;
    std::string first; // the first difference seen, for the report
    auto check = [&](const std::string& name, const struct stat& st) {
        const struct timespec& want = mtimes.at(name);
        ++stats;
        if (st.st_mtim.tv_sec == want.tv_sec && st.st_mtim.tv_nsec == want.tv_nsec) return;
        if (moved++ == 0) {
            std::lock_guard lock(first_mu);
            first = name + ": mtime " + std::to_string(st.st_mtim.tv_sec) + "." +
                    std::to_string(st.st_mtim.tv_nsec) + ", was " + std::to_string(want.tv_sec) +
                    "." + std::to_string(want.tv_nsec);
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) // stat by name, each file in turn
        threads.emplace_back([&, t] {
            for (int i = t; !stop.load(); i = (i + 1) % kFiles) {
                struct stat st;
                if (::lstat(fx.mnt(names[i]).c_str(), &st) == 0) check(names[i], st);
            }
        });
    threads.emplace_back([&] { // ls -l: a listing, then each entry's attributes
        while (!stop.load()) {
            DIR* d = ::opendir(fx.mnt("").c_str());
            if (!d) continue;
            while (dirent* ent = ::readdir(d)) {
                if (!mtimes.count(ent->d_name)) continue;
                struct stat st;
                if (::fstatat(::dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                    check(ent->d_name, st);
            }
            ::closedir(d);
        }
    });
    bool all_released = true;
    for (const auto& name : names)
        all_released = wait_released(fx.src(name)) && all_released;
    std::this_thread::sleep_for(300ms);
    stop = true;
    for (auto& t : threads)
        t.join();
    CHECK(all_released);
    INFO(first);
    CHECK(moved == 0);
    CHECK(stats > 1000);
    // And after: every file shows its own mtime, as it did before it was released.
    for (const auto& name : names) {
        struct stat st = lstat_ok(fx.mnt(name));
        INFO(name);
        CHECK(st.st_mtim.tv_sec == mtimes[name].tv_sec);
        CHECK(st.st_mtim.tv_nsec == mtimes[name].tv_nsec);
    }
}

TEST_CASE("move: writes to a released file bring its data back; the new version is released",
          "[move]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    std::string big = random_bytes(3 * 65536 + 100, 3);
    write_file(fx.mnt("big.bin"), big);
    write_file(fx.mnt("log.txt"), "line 1\n");
    write_file(fx.mnt("cut.bin"), big);
    for (const char* name : {"big.bin", "log.txt", "cut.bin"})
        REQUIRE(wait_released(fx.src(name)));

    SECTION("append") {
        FILE* f = std::fopen(fx.mnt("log.txt").c_str(), "a");
        REQUIRE(f);
        std::fputs("line 2\n", f);
        std::fclose(f);
        CHECK(read_file(fx.mnt("log.txt")) == "line 1\nline 2\n");
        REQUIRE(wait_released(fx.src("log.txt")));
        CHECK(read_file(fx.mnt("log.txt")) == "line 1\nline 2\n");
        CHECK(node.get(object_path("log.txt")).body == "line 1\nline 2\n");
    }
    SECTION("random write in the middle of a chunked file") {
        Fd fd(::open(fx.mnt("big.bin").c_str(), O_WRONLY | O_CLOEXEC));
        REQUIRE(fd);
        REQUIRE(::pwrite(fd.get(), "XYZ", 3, 70000) == 3);
        fd.reset();
        big.replace(70000, 3, "XYZ");
        CHECK(digest(read_file(fx.mnt("big.bin"))) == digest(big));
        REQUIRE(wait_released(fx.src("big.bin")));
        CHECK(digest(read_file(fx.mnt("big.bin"))) == digest(big));
    }
    SECTION("truncate by path, shorter and longer") {
        REQUIRE(::truncate(fx.mnt("cut.bin").c_str(), 1000) == 0);
        CHECK(read_file(fx.mnt("cut.bin")) == big.substr(0, 1000));
        REQUIRE(::truncate(fx.mnt("cut.bin").c_str(), 5000) == 0);
        CHECK(read_file(fx.mnt("cut.bin")) == big.substr(0, 1000) + std::string(4000, '\0'));
        REQUIRE(wait_released(fx.src("cut.bin")));
        CHECK(read_file(fx.mnt("cut.bin")) == big.substr(0, 1000) + std::string(4000, '\0'));
    }
    SECTION("O_TRUNC open") {
        write_file(fx.mnt("big.bin"), "short now");
        CHECK(read_file(fx.mnt("big.bin")) == "short now");
        REQUIRE(wait_released(fx.src("big.bin")));
        CHECK(read_file(fx.mnt("big.bin")) == "short now");
    }
}

TEST_CASE("move: a file open for reading or writing is not released until it is closed", "[move]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    write_file(fx.mnt("held.txt"), "held open");
    Fd reader(::open(fx.mnt("held.txt").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(reader);
    // Its copy is made (the key appears), but the open handle keeps the data local.
    node.wait_for(object_path("held.txt"));
    std::this_thread::sleep_for(1500ms);
    CHECK_FALSE(is_released(fx.src("held.txt")));
    char buf[32] = {};
    CHECK(::pread(reader.get(), buf, sizeof buf, 0) == 9);
    CHECK(std::string(buf, 9) == "held open");
    reader.reset();
    CHECK(wait_released(fx.src("held.txt")));
}

// The handle of the CREATE that made a file pins it as an open does (on_created_open): a reader's
// close gets the file copied meanwhile, and still nothing is released until the creator closes.
TEST_CASE("move: a file is not released while the handle that created it is open", "[move]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    Fd creator(::open(fx.mnt("made.txt").c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644));
    REQUIRE(creator);
    REQUIRE(::write(creator.get(), "made here", 9) == 9);
    REQUIRE(::fsync(creator.get()) == 0);
    CHECK(read_file(fx.mnt("made.txt")) == "made here"); // read to the end: a copy is made
    node.wait_for(object_path("made.txt"));
    std::this_thread::sleep_for(1500ms);
    CHECK_FALSE(is_released(fx.src("made.txt")));
    creator.reset();
    CHECK(wait_released(fx.src("made.txt")));
    CHECK(read_file(fx.mnt("made.txt")) == "made here");
}

TEST_CASE("move: Riak down: reads of released files fail with EIO, then work again", "[move]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountOptions opts = move_mount(node, dir);
    opts.warnings_expected = true; // the failed reads are logged
    MountFixture fx(opts);
    std::string big = random_bytes(2 * 65536 + 5, 4);
    write_file(fx.mnt("big.bin"), big);
    REQUIRE(wait_released(fx.src("big.bin")));
    node.stop();
    write_file(fx.mnt("local.txt"), "local files keep working");
    CHECK(read_file(fx.mnt("local.txt")) == "local files keep working");
    auto started = std::chrono::steady_clock::now();
    Fd fd(::open(fx.mnt("big.bin").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    char buf[4096];
    errno = 0;
    CHECK(::pread(fd.get(), buf, sizeof buf, 0) == -1);
    CHECK(errno == EIO);
    // Writing needs the data back: refused the same way, and the placeholder stays as it was.
    Fd w(::open(fx.mnt("big.bin").c_str(), O_WRONLY | O_CLOEXEC));
    CHECK_FALSE(w);
    CHECK(errno == EIO);
    CHECK(std::chrono::steady_clock::now() - started < 40s);
    CHECK(is_released(fx.src("big.bin")));
    CHECK(lstat_ok(fx.mnt("big.bin")).st_size == static_cast<off_t>(big.size()));
    node.start_again();
    CHECK(digest(read_file(fx.mnt("big.bin"))) == digest(big));
}

TEST_CASE("move: renames move the copy inside Riak, leaving nothing at the old keys", "[move]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    std::string big = random_bytes(4 * 65536 + 3, 5);
    REQUIRE(::mkdir(fx.mnt("d").c_str(), 0755) == 0);
    write_file(fx.mnt("d/big.bin"), big);
    write_file(fx.mnt("d/small.txt"), "small");
    write_file(fx.mnt("top.txt"), "top");
    for (const char* name : {"d/big.bin", "d/small.txt", "top.txt"})
        REQUIRE(wait_released(fx.src(name)));
    std::set<std::string> chunks_before;
    for (const auto& k : node.keys("riakfs"))
        if (k.rfind(".riakfs/", 0) == 0) chunks_before.insert(k);

    REQUIRE(::rename(fx.mnt("top.txt").c_str(), fx.mnt("moved.txt").c_str()) == 0);
    REQUIRE(::rename(fx.mnt("d").c_str(), fx.mnt("e").c_str()) == 0);
    std::set<std::string> want = {"moved.txt", "e/big.bin", "e/small.txt"};
    auto deadline = std::chrono::steady_clock::now() + 60s;
    std::set<std::string> plain;
    while (std::chrono::steady_clock::now() < deadline) {
        plain.clear();
        for (const auto& k : node.keys("riakfs"))
            if (k.rfind(".riakfs/", 0) != 0) plain.insert(k);
        if (plain == want) break;
        std::this_thread::sleep_for(100ms);
    }
    CHECK(plain == want);
    // The large file's manifest moved; its chunks did not (no new chunk objects, none deleted).
    std::set<std::string> chunks_after;
    for (const auto& k : node.keys("riakfs"))
        if (k.rfind(".riakfs/", 0) == 0) chunks_after.insert(k);
    CHECK(chunks_after == chunks_before);
    CHECK(is_released(fx.src("e/big.bin")));
    CHECK(digest(read_file(fx.mnt("e/big.bin"))) == digest(big));
    CHECK(read_file(fx.mnt("e/small.txt")) == "small");
    CHECK(read_file(fx.mnt("moved.txt")) == "top");
    CHECK(node.get(object_path("moved.txt")).body == "top");
    // Swapping a released file with another cannot be done in Riak in one step: refused.
    write_file(fx.mnt("other.txt"), "other");
    CHECK(::syscall(SYS_renameat2, AT_FDCWD, fx.mnt("moved.txt").c_str(), AT_FDCWD,
                    fx.mnt("other.txt").c_str(), RENAME_EXCHANGE) == -1);
    CHECK(errno == EINVAL);
    CHECK(read_file(fx.mnt("moved.txt")) == "top");
}

TEST_CASE("move: released files stay readable across a remount, and without state_dir", "[move]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    const std::string source = dir / "src";
    REQUIRE(::mkdir(source.c_str(), 0755) == 0);
    std::string big = random_bytes(3 * 65536 + 1, 6);
    {
        MountOptions opts = move_mount(node, dir);
        opts.source_dir = source;
        MountFixture fx(opts);
        write_file(fx.mnt("big.bin"), big);
        write_file(fx.mnt("a.txt"), "aaa");
        REQUIRE(wait_released(fx.src("big.bin")));
        REQUIRE(wait_released(fx.src("a.txt")));
    }
    {
        MountOptions opts = move_mount(node, dir);
        opts.source_dir = source;
        MountFixture fx(opts);
        CHECK(digest(read_file(fx.mnt("big.bin"))) == digest(big));
        CHECK(read_file(fx.mnt("a.txt")) == "aaa");
    }
    std::filesystem::remove_all(dir / "state");
    {
        // The markers alone say where the content is; nothing is uploaded as zeros.
        MountOptions opts = move_mount(node, dir);
        opts.source_dir = source;
        MountFixture fx(opts);
        CHECK(digest(read_file(fx.mnt("big.bin"))) == digest(big));
        CHECK(read_file(fx.mnt("a.txt")) == "aaa");
        std::this_thread::sleep_for(1s);
        CHECK(node.get(object_path("a.txt")).body == "aaa");
    }
}

namespace {

// A loopback port free right now (for riak-devnode's --admin listener).
unsigned free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(s >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ::close(s);
    return ntohs(addr.sin_port);
}

void set_faults(unsigned admin_port, const std::string& json) {
    std::string url = "http://127.0.0.1:" + std::to_string(admin_port) + "/devnode/faults";
    ProcResult r = json.empty() ? run_cmd({"curl", "-sf", "-XDELETE", url}, 10s)
                                : run_cmd({"curl", "-sf", "-XPOST", url, "-d", json}, 10s);
    REQUIRE(r.exited);
    REQUIRE(r.exit_code == 0);
}

// A read of the whole file through the mount: its bytes, or the errno of the failed read.
std::pair<int, std::string> read_or_errno(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {errno, ""};
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) return {errno, out};
        if (n == 0) return {0, out};
        out.append(buf, static_cast<size_t>(n));
    }
}

} // namespace

TEST_CASE("move: Riak answering 503, resetting and stalling: EIO or the right bytes, never "
          "zeros; local files unaffected; all recovers",
          "[move][faults]") {
    TempDir dir("riakfs-move");
    unsigned admin = free_port();
    RiakNode node(dir.path(), 0, {"--admin", "127.0.0.1:" + std::to_string(admin)});
    // A request the stalled node holds fails after riak_timeout (30 s by default).
    MountOptions opts = move_mount(node, dir, {"riak_timeout=4"});
    opts.warnings_expected = true; // failed copies and reads are logged
    MountFixture fx(opts);
    const std::string big = random_bytes(6 * 65536 + 9, 7);
    write_file(fx.mnt("big.bin"), big);
    write_file(fx.mnt("small.txt"), "small and released");
    REQUIRE(wait_released(fx.src("big.bin")));
    REQUIRE(wait_released(fx.src("small.txt")));

    // 503 for everything: released data fails with EIO, bounded; local work goes on at once.
    set_faults(admin, R"({"error_rate":1.0,"error_status":503})");
    auto started = std::chrono::steady_clock::now();
    CHECK(read_or_errno(fx.mnt("big.bin")).first == EIO);
    CHECK(std::chrono::steady_clock::now() - started < 40s);
    write_file(fx.mnt("pending.txt"), "written while Riak fails");
    CHECK(read_file(fx.mnt("pending.txt")) == "written while Riak fails");
    CHECK(lstat_ok(fx.mnt("big.bin")).st_size == static_cast<off_t>(big.size()));

    // Connections reset mid-response: every read is all right or EIO, never other bytes.
    const auto seed = rfs::test::test_seed("move: resets mid-response");
    INFO("devnode fault seed " << seed << " (RIAKFS_TEST_SEED=" << seed << " replays it)");
    set_faults(admin, R"({"reset_rate":0.5,"seed":)" + std::to_string(seed) + "}");
    for (int i = 0; i < 5; ++i) {
        auto [err, data] = read_or_errno(fx.mnt("big.bin"));
        if (err == 0)
            CHECK(digest(data) == digest(big));
        else
            CHECK(err == EIO);
    }

    // A stalled node: the read gives up within the bound instead of hanging.
    set_faults(admin, R"({"route_latency_ms":{"object":60000}})");
    started = std::chrono::steady_clock::now();
    CHECK(read_or_errno(fx.mnt("small.txt")).first == EIO);
    // Bounded by riak_timeout=4 (and the retries it allows), not by the 60 s stall nor by the
    // default 30 s.
    CHECK(std::chrono::steady_clock::now() - started < 25s);

    // Healthy again: everything reads (a request the stall still holds ends at the client's
    // request timeout), and the file written meanwhile is copied and released.
    set_faults(admin, "");
    CHECK(digest(read_file(fx.mnt("big.bin"))) == digest(big));
    auto deadline = std::chrono::steady_clock::now() + 60s;
    std::pair<int, std::string> small = read_or_errno(fx.mnt("small.txt"));
    while (small.first == EIO && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(500ms);
        small = read_or_errno(fx.mnt("small.txt"));
    }
    CHECK(small.first == 0);
    CHECK(small.second == "small and released");
    CHECK(wait_released(fx.src("pending.txt")));
    CHECK(read_file(fx.mnt("pending.txt")) == "written while Riak fails");
}

TEST_CASE("move: a multi-GiB sparse file is migrated, released and read back", "[move][large]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountOptions opts;
    opts.extra_opts = {"mode=move", "riak=" + node.url(), "state_dir=" + dir / "state",
                       "cache=never"}; // the default 1 MiB chunks
    MountFixture fx(opts);
    const off_t size = (off_t{3} << 30) + 12345; // 3 GiB and a bit: offsets beyond 32 bits
    const std::string head = random_bytes(100000, 8), middle = random_bytes(70000, 9),
                      tail = random_bytes(5000, 10);
    const off_t mid_at = (off_t{2} << 30) + 777;
    {
        Fd fd(::open(fx.mnt("huge.img").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        REQUIRE(fd);
        REQUIRE(::pwrite(fd.get(), head.data(), head.size(), 0) == ssize_t(head.size()));
        REQUIRE(::pwrite(fd.get(), middle.data(), middle.size(), mid_at) == ssize_t(middle.size()));
        REQUIRE(::pwrite(fd.get(), tail.data(), tail.size(), size - off_t(tail.size())) ==
                ssize_t(tail.size()));
    }
    REQUIRE(wait_released(fx.src("huge.img")));
    CHECK(lstat_ok(fx.mnt("huge.img")).st_size == size);
    // Only the chunks with data were stored: holes are not objects.
    std::size_t chunks = 0;
    for (const auto& k : node.keys("riakfs"))
        if (k.rfind(".riakfs/", 0) == 0) ++chunks;
    CHECK(chunks <= 5);
    Fd fd(::open(fx.mnt("huge.img").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    auto read_at = [&](off_t at, size_t n) {
        std::string out(n, '\0');
        size_t got = 0;
        while (got < n) {
            ssize_t r = ::pread(fd.get(), out.data() + got, n - got, at + off_t(got));
            REQUIRE(r > 0);
            got += size_t(r);
        }
        return out;
    };
    CHECK(read_at(0, head.size()) == head);
    CHECK(read_at(mid_at, middle.size()) == middle);
    CHECK(read_at(size - off_t(tail.size()), tail.size()) == tail);
    CHECK(read_at(off_t{1} << 30, 4096) == std::string(4096, '\0'));
    // Writing one byte in the middle brings the data back (holes stay holes) and re-releases.
    fd.reset();
    {
        Fd w(::open(fx.mnt("huge.img").c_str(), O_WRONLY | O_CLOEXEC));
        REQUIRE(w);
        REQUIRE(::pwrite(w.get(), "!", 1, mid_at) == 1);
    }
    struct stat st = lstat_ok(fx.src("huge.img"));
    CHECK(st.st_blocks * 512 < (off_t{64} << 20)); // not 3 GiB of zeros on disk
    REQUIRE(wait_released(fx.src("huge.img")));
    Fd again(::open(fx.mnt("huge.img").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(again);
    std::string m(middle.size(), '\0');
    REQUIRE(::pread(again.get(), m.data(), m.size(), mid_at) == ssize_t(m.size()));
    CHECK(m == "!" + middle.substr(1));
}

TEST_CASE("move: copying, seeking and linking a released file see its content, not the holes",
          "[move]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    const std::string big = random_bytes(3 * 65536 + 50, 11);
    write_file(fx.mnt("big.bin"), big);
    REQUIRE(wait_released(fx.src("big.bin")));

    // cp uses copy_file_range and SEEK_DATA/SEEK_HOLE: neither may see the placeholder's holes.
    ProcResult cp = run_cmd({"cp", "--sparse=auto", fx.mnt("big.bin"), fx.mnt("copy.bin")}, 60s);
    REQUIRE(cp.exited);
    CHECK(cp.exit_code == 0);
    CHECK(digest(read_file(fx.mnt("copy.bin"))) == digest(big));
    Fd fd(::open(fx.mnt("big.bin").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    CHECK(::lseek(fd.get(), 100, SEEK_DATA) == 100);
    CHECK(::lseek(fd.get(), 100, SEEK_HOLE) == static_cast<off_t>(big.size()));
    fd.reset();

    // A second name brings the data back (two names never share a placeholder); removing the
    // first name leaves the second whole.
    REQUIRE(::link(fx.mnt("big.bin").c_str(), fx.mnt("second.bin").c_str()) == 0);
    CHECK_FALSE(is_released(fx.src("big.bin")));
    REQUIRE(::unlink(fx.mnt("big.bin").c_str()) == 0);
    CHECK(digest(read_file(fx.mnt("second.bin"))) == digest(big));
    // With one name again (the one the kernel first met is gone), a change through it is
    // copied under that name and released.
    Fd w(::open(fx.mnt("second.bin").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    REQUIRE(w);
    REQUIRE(::write(w.get(), "!", 1) == 1);
    w.reset();
    REQUIRE(wait_released(fx.src("second.bin")));
    CHECK(digest(read_file(fx.mnt("second.bin"))) == digest(big + "!"));
    CHECK(node.get(object_path("second.bin")).status == 200);
}

namespace {

// A self-checking file body: "<seed> <size>\n" and then random_bytes(size, seed). A read that
// returns anything else (zeros, a mix of two versions, a short file) is caught.
std::string versioned_body(std::uint64_t seed, std::size_t size) {
    return std::to_string(seed) + " " + std::to_string(size) + "\n" + random_bytes(size, seed);
}

bool is_whole_version(const std::string& data) {
    auto nl = data.find('\n');
    if (nl == std::string::npos) return false;
    std::uint64_t seed = 0;
    std::size_t size = 0;
    if (std::sscanf(data.substr(0, nl).c_str(), "%lu %zu", &seed, &size) != 2) return false;
    return data == versioned_body(seed, size);
}

// Writes `count` files `prefix`0, `prefix`1, ... through the mount (versioned_body(first + i,
// size)) and waits until each is released.
void write_released(const MountFixture& fx, const std::string& prefix, int count, int first,
                    std::size_t size) {
    for (int i = 0; i < count; ++i)
        write_file(fx.mnt(prefix + std::to_string(i)), versioned_body(first + i, size));
    for (int i = 0; i < count; ++i)
        REQUIRE(wait_released(fx.src(prefix + std::to_string(i))));
}

} // namespace

TEST_CASE("move: readers and writers on the same files while they are copied, moved and "
          "released never see a torn or empty version",
          "[move][concurrency]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    constexpr int kFiles = 6;
    for (int i = 0; i < kFiles; ++i)
        write_file(fx.mnt("f" + std::to_string(i)), versioned_body(i, 1000 + i * 40000));
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0}, reads{0}, writes{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937_64 rng(100 + t);
            while (!stop.load()) {
                std::string name = fx.mnt("f" + std::to_string(rng() % kFiles));
                if (t < 2) { // readers
                    auto data = try_read_file(name);
                    if (!data || !is_whole_version(*data)) ++bad;
                    ++reads;
                } else { // writers: a new version replaces the file atomically, by rename
                    std::string tmp = fx.mnt("tmp" + std::to_string(t));
                    if (try_write_file(tmp, versioned_body(rng(), rng() % 200000)) != 0 ||
                        ::rename(tmp.c_str(), name.c_str()) != 0)
                        ++bad;
                    ++writes;
                    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 200));
                }
            }
        });
    }
    std::this_thread::sleep_for(8s);
    stop = true;
    for (auto& t : threads)
        t.join();
    CHECK(bad == 0);
    CHECK(reads > 100);
    CHECK(writes > 10);
    // Settled: every file released and whole, and Riak holds exactly the files' keys.
    for (int i = 0; i < kFiles; ++i) {
        std::string name = "f" + std::to_string(i);
        INFO(name);
        CHECK(wait_released(fx.src(name)));
        auto data = try_read_file(fx.mnt(name));
        REQUIRE(data);
        CHECK(is_whole_version(*data));
    }
    // No leftovers: the files' keys, and exactly the chunks their manifests name.
    std::set<std::string> want, plain;
    std::size_t chunks_wanted = 0, chunks = 0;
    for (int i = 0; i < kFiles; ++i) {
        want.insert("f" + std::to_string(i));
        off_t size = lstat_ok(fx.mnt("f" + std::to_string(i))).st_size;
        if (size > 65536) chunks_wanted += static_cast<std::size_t>((size + 65535) / 65536);
    }
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        plain.clear();
        chunks = 0;
        for (const auto& k : node.keys("riakfs")) {
            if (k.rfind(".riakfs/", 0) != 0)
                plain.insert(k);
            else
                ++chunks;
        }
        if (plain == want && chunks == chunks_wanted) break;
        std::this_thread::sleep_for(200ms);
    }
    CHECK(plain == want);
    CHECK(chunks == chunks_wanted);
}

TEST_CASE("move: hostile names are released, read back, renamed and removed like any other",
          "[move]") {
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    const std::vector<std::string> names = {
        "sp ace+?#&=;.txt",    "50%25 and %",
        "line\r\nbreak",       std::string("bytes\xff\xfe\x80", 8),
        std::string(255, 'n'), "ümlaut ✓",
        "quote\"back\\slash"};
    std::map<std::string, std::string> content;
    for (std::size_t i = 0; i < names.size(); ++i) {
        content[names[i]] = random_bytes(i % 2 ? 3 * 65536 + 7 : 100 + i, 20 + i);
        write_file(fx.mnt(names[i]), content[names[i]]);
    }
    for (const auto& name : names) {
        INFO(name);
        REQUIRE(wait_released(fx.src(name)));
        CHECK(digest(read_file(fx.mnt(name))) == digest(content[name]));
    }
    // Whole objects are at their path key for any client; the wire escapes are the store's.
    CHECK(node.get(object_path(names[0])).body == content[names[0]]);
    CHECK(node.get(object_path(names[2])).body == content[names[2]]);
    // Each one renamed to another hostile name, then all removed: nothing is left in Riak.
    for (std::size_t i = 0; i < names.size(); ++i) {
        std::string to = "renamed " + std::to_string(i) + " %?#\n";
        REQUIRE(::rename(fx.mnt(names[i]).c_str(), fx.mnt(to).c_str()) == 0);
        CHECK(digest(read_file(fx.mnt(to))) == digest(content[names[i]]));
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
        std::string to = "renamed " + std::to_string(i) + " %?#\n";
        REQUIRE(wait_released(fx.src(to)));
        CHECK(digest(read_file(fx.mnt(to))) == digest(content[names[i]]));
        REQUIRE(::unlink(fx.mnt(to).c_str()) == 0);
    }
    auto deadline = std::chrono::steady_clock::now() + 60s;
    std::set<std::string> left = node.keys("riakfs");
    while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(200ms);
        left = node.keys("riakfs");
    }
    CHECK(left.empty());
}

namespace {

// The keys of `bucket` that hold an object now (a deleted key is listed until its tombstone is
// reaped, as on Riak), file keys and chunk keys apart.
struct LiveKeys {
    std::set<std::string> files, chunks;
};
LiveKeys live_keys(const RiakNode& node, const std::string& bucket = "riakfs") {
    LiveKeys out;
    for (const auto& k : node.keys(bucket)) {
        if (node.get(object_path(k, bucket)).status != 200) continue;
        (k.rfind(".riakfs/", 0) == 0 ? out.chunks : out.files).insert(k);
    }
    return out;
}

// Polls `live_keys` until `done` says yes (60 s at most); returns the last listing.
template <class Done> LiveKeys wait_keys(const RiakNode& node, Done done) {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    LiveKeys k = live_keys(node);
    while (!done(k) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(200ms);
        k = live_keys(node);
    }
    return k;
}

// The content of the file open as `fd` (at most `most` bytes), read with one pread from 0: a
// handle's view, whatever its name now.
std::string pread_all(int fd, size_t most) {
    std::string out(most + 1, '\0');
    ssize_t n = ::pread(fd, out.data(), out.size(), 0);
    INFO("pread: " << (n < 0 ? std::strerror(errno) : "ok"));
    REQUIRE(n >= 0);
    out.resize(static_cast<size_t>(n));
    return out;
}

// A released file f.bin of `first`'s bytes (a manifest and its chunks) on a mount with no memory
// for Riak's data, and a handle open on it for reading: every read through it asks Riak.
struct ReleasedReader {
    explicit ReleasedReader(std::string bytes)
        : dir("riakfs-move"), node(dir.path()), fx(move_mount(node, dir, {"cache_size=0"})),
          first(std::move(bytes)) {
        write_file(fx.mnt("f.bin"), first);
        REQUIRE(wait_released(fx.src("f.bin")));
        reader = Fd(::open(fx.mnt("f.bin").c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(reader);
    }
    std::string read_all() const { return pread_all(reader.get(), first.size()); }
    TempDir dir;
    RiakNode node;
    MountFixture fx;
    const std::string first;
    Fd reader;
};

} // namespace

// Renames and removals racing the copies, many files at a time to give each race its chances.
// Against the binary before these fixes, the first and the last failed on every run; the two
// between did not fail here (their races, found by the random sequences of test_namespace_riak
// and by scripts, need other timings), and guard the same paths.

TEST_CASE("move: a released file written right after its rename keeps every byte",
          "[move][rename]") {
    // The write's fetch back and the rename's relocation of the copy take turns
    // (file_turns.hpp): run together, the relocation put its marker back on the filled and
    // written file, whose reads then came from Riak's older copy.
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    constexpr int kFiles = 20;
    write_released(fx, "l", kFiles, 0, 150000);
    std::map<std::string, std::string> want;
    for (int i = 0; i < kFiles; ++i) {
        std::string z = "z" + std::to_string(i);
        REQUIRE(::rename(fx.mnt("l" + std::to_string(i)).c_str(), fx.mnt(z).c_str()) == 0);
        std::string body = versioned_body(i, 150000);
        Fd fd(::open(fx.mnt(z).c_str(), O_WRONLY | O_CLOEXEC));
        REQUIRE(fd);
        REQUIRE(::pwrite(fd.get(), "patched", 7, 70000) == 7);
        body.replace(70000, 7, "patched");
        want[z] = body;
    }
    for (const auto& [name, body] : want) {
        INFO(name);
        CHECK(wait_released(fx.src(name)));
        auto got = try_read_file(fx.mnt(name));
        REQUIRE(got);
        CHECK(*got == body);
    }
    auto keys = wait_keys(node, [&](const LiveKeys& k) { return k.files.size() == kFiles; });
    CHECK(keys.files.size() == kFiles);
    for (const auto& k : keys.files)
        CHECK(k[0] == 'z');
}

TEST_CASE("move: a file created at a released file's old name right after its rename keeps "
          "both",
          "[move][rename]") {
    // The close of the new file waits behind the rename (held_namespace_ops_), and a copy to a
    // key waits for the removal of the object there: before, the new file took the renamed
    // one's record and dropped the chunks its relocated manifest still named.
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    // Small chunks, many files: more releases in flight for the renames to be held behind.
    MountFixture fx(move_mount(node, dir, {"chunk_size=4096"}));
    constexpr int kFiles = 40;
    write_released(fx, "a", kFiles, 100, 10000);
    for (int i = 0; i < kFiles; ++i) {
        std::string a = "a" + std::to_string(i), b = "b" + std::to_string(i);
        REQUIRE(::rename(fx.mnt(a).c_str(), fx.mnt(b).c_str()) == 0);
        write_file(fx.mnt(a), versioned_body(200 + i, 10000));
    }
    for (int i = 0; i < kFiles; ++i) {
        std::string a = "a" + std::to_string(i), b = "b" + std::to_string(i);
        INFO(i);
        CHECK(wait_released(fx.src(a)));
        CHECK(wait_released(fx.src(b)));
        auto new_bytes = try_read_file(fx.mnt(a));
        auto old_bytes = try_read_file(fx.mnt(b));
        REQUIRE(new_bytes);
        REQUIRE(old_bytes);
        CHECK(*new_bytes == versioned_body(200 + i, 10000));
        CHECK(*old_bytes == versioned_body(100 + i, 10000));
    }
}

TEST_CASE("move: a released file unlinked or renamed over while open stays readable through its "
          "handle",
          "[move][rename]") {
    // Natively the data of a file unlinked or replaced while open lives until its last close. A
    // released file's only copy is in Riak: its removal (and the copy of the file renamed over
    // it, which replaces the object and drops its chunks) waits for the handles that read it
    // (open_copies.hpp); before, their reads failed with EIO once it had run.
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    // No memory for Riak's data: every read of the handles below asks Riak.
    MountFixture fx(move_mount(node, dir, {"cache_size=0"}));
    const std::string big = random_bytes(4 * 65536 + 5, 31); // a manifest and 5 chunks
    const std::string small = random_bytes(1000, 32);        // a whole object
    const std::string newer = "the file renamed over it";
    write_file(fx.mnt("unlinked.bin"), big);
    write_file(fx.mnt("replaced.bin"), big);
    write_file(fx.mnt("small.txt"), small);
    write_file(fx.mnt("renamed.txt"), small);
    for (const char* name : {"unlinked.bin", "replaced.bin", "small.txt", "renamed.txt"})
        REQUIRE(wait_released(fx.src(name)));
    Fd unlinked(::open(fx.mnt("unlinked.bin").c_str(), O_RDONLY | O_CLOEXEC));
    Fd replaced(::open(fx.mnt("replaced.bin").c_str(), O_RDONLY | O_CLOEXEC));
    Fd small_fd(::open(fx.mnt("small.txt").c_str(), O_RDONLY | O_CLOEXEC));
    Fd renamed(::open(fx.mnt("renamed.txt").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(unlinked);
    REQUIRE(renamed);
    REQUIRE(replaced);
    REQUIRE(small_fd);
    REQUIRE(::unlink(fx.mnt("unlinked.bin").c_str()) == 0);
    write_file(fx.mnt("new.bin"), newer);
    REQUIRE(::rename(fx.mnt("new.bin").c_str(), fx.mnt("replaced.bin").c_str()) == 0);
    REQUIRE(::unlink(fx.mnt("small.txt").c_str()) == 0);
    // Its copy moves to the new key; the old one, which the handle reads, stays until it closes.
    REQUIRE(::rename(fx.mnt("renamed.txt").c_str(), fx.mnt("moved.txt").c_str()) == 0);
    // Long enough for the removals and the copy to have run, had they not waited.
    std::this_thread::sleep_for(2s);
    CHECK(digest(pread_all(unlinked.get(), big.size())) == digest(big));
    CHECK(digest(pread_all(replaced.get(), big.size())) == digest(big));
    CHECK(pread_all(small_fd.get(), small.size()) == small);
    CHECK(pread_all(renamed.get(), small.size()) == small);
    CHECK(read_file(fx.mnt("replaced.bin")) == newer);
    // Once closed, the objects go: the new replaced.bin and moved.txt are all that is left
    // (whole objects).
    unlinked.reset();
    replaced.reset();
    small_fd.reset();
    renamed.reset();
    const std::set<std::string> left{"replaced.bin", "moved.txt"};
    auto keys =
        wait_keys(node, [&](const LiveKeys& k) { return k.files == left && k.chunks.empty(); });
    CHECK(keys.files == left);
    CHECK(keys.chunks.empty());
    CHECK(node.get(object_path("replaced.bin")).body == newer);
}

TEST_CASE("move: a handle open on a released file reads its new version once it is released "
          "again",
          "[move]") {
    // Natively every handle of a file sees its writes. A released file's reader reads Riak's
    // copy: once the file was written through another handle (its data fetched back) and
    // released again, the placeholder's marker names the new version, which the reader follows.
    ReleasedReader r(random_bytes(3 * 65536 + 9, 41));
    std::string second = r.first;
    second.replace(70000, 13, "written again");
    CHECK(digest(r.read_all()) == digest(r.first));
    {
        Fd writer(::open(r.fx.mnt("f.bin").c_str(), O_WRONLY | O_CLOEXEC));
        REQUIRE(writer);
        REQUIRE(::pwrite(writer.get(), "written again", 13, 70000) == 13);
    }
    REQUIRE(wait_released(r.fx.src("f.bin")));
    CHECK(digest(r.read_all()) == digest(second));
}

TEST_CASE("move: a released file's reader that found its data back keeps it until it closes",
          "[move]") {
    // A handle opened on a released file reads the local file once a writer brought the data
    // back. It pins the file then, as an open of local data does: before, the file was copied
    // and released again under it, and its next reads read the placeholder's zeros.
    ReleasedReader r(random_bytes(3 * 65536 + 9, 43));
    std::string second = r.first;
    second.replace(100, 7, "patched");
    CHECK(digest(r.read_all()) == digest(r.first)); // from Riak
    {
        Fd writer(::open(r.fx.mnt("f.bin").c_str(), O_WRONLY | O_CLOEXEC)); // brings the data back
        REQUIRE(writer);
        CHECK_FALSE(is_released(r.fx.src("f.bin")));
        CHECK(digest(r.read_all()) == digest(r.first)); // the local data now
        REQUIRE(::pwrite(writer.get(), "patched", 7, 100) == 7);
    }
    // Copied again, and not released while the reader is open.
    r.node.wait_for(object_path("f.bin"));
    std::this_thread::sleep_for(1500ms);
    CHECK_FALSE(is_released(r.fx.src("f.bin")));
    CHECK(digest(r.read_all()) == digest(second));
    r.reader.reset();
    CHECK(wait_released(r.fx.src("f.bin")));
    CHECK(digest(read_file(r.fx.mnt("f.bin"))) == digest(second));
}

TEST_CASE("move: files renamed or removed while they are being copied leave no object behind",
          "[move][rename]") {
    // A copy that finds its path gone turns the path's record into the removal of what it may
    // have written (Migrator::gone_before_copy): the rename or unlink, handled after, finds no
    // record to decide from.
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    constexpr int kFiles = 100;
    for (int i = 0; i < kFiles; ++i) {
        std::string f = "f" + std::to_string(i);
        write_file(fx.mnt(f), versioned_body(i, 3000));
        if (i % 2 == 0)
            REQUIRE(::rename(fx.mnt(f).c_str(), fx.mnt("g" + std::to_string(i)).c_str()) == 0);
        else
            REQUIRE(::unlink(fx.mnt(f).c_str()) == 0);
    }
    auto keys = wait_keys(
        node, [&](const LiveKeys& k) { return k.files.size() == kFiles / 2 && k.chunks.empty(); });
    std::set<std::string> want;
    for (int i = 0; i < kFiles; i += 2)
        want.insert("g" + std::to_string(i));
    CHECK(keys.files == want);
    CHECK(keys.chunks.empty());
}

TEST_CASE("move: a file that shrinks while its chunks are copied leaves no chunk behind",
          "[move]") {
    // The abandoned copy deletes the chunks it wrote (uploader.cpp, remove_chunks).
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    constexpr int kFiles = 20;
    for (int i = 0; i < kFiles; ++i) {
        std::string f = fx.mnt("s" + std::to_string(i));
        write_file(f, versioned_body(i, 600000));
        REQUIRE(::truncate(f.c_str(), 100000) == 0);
    }
    // 100,000 bytes in chunks of 64 KiB: two chunks a file, named by its manifest.
    auto keys = wait_keys(node, [&](const LiveKeys& k) {
        return k.files.size() == kFiles && k.chunks.size() == 2 * kFiles;
    });
    CHECK(keys.files.size() == kFiles);
    CHECK(keys.chunks.size() == 2 * kFiles);
    for (int i = 0; i < kFiles; ++i) {
        auto got = try_read_file(fx.mnt("s" + std::to_string(i)));
        REQUIRE(got);
        CHECK(*got == versioned_body(i, 600000).substr(0, 100000));
    }
}

TEST_CASE("move: released files renamed twice before their copies follow keep their bytes",
          "[move][rename]") {
    // The first rename leaves each record dirty until its copy is moved to the new key; the
    // second took such a record for an unverified copy and removed the object (and its chunks)
    // that the placeholder's marker still named. The marker now says the file is released.
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    constexpr int kFiles = 20;
    REQUIRE(::mkdir(fx.mnt("d").c_str(), 0755) == 0);
    write_released(fx, "d/f", kFiles, 300, 150000);
    for (int i = 0; i < kFiles; ++i)
        REQUIRE(::rename(fx.mnt("d/f" + std::to_string(i)).c_str(),
                         fx.mnt("d/g" + std::to_string(i)).c_str()) == 0);
    REQUIRE(::rename(fx.mnt("d").c_str(), fx.mnt("e").c_str()) == 0);
    for (int i = 0; i < kFiles; ++i) {
        std::string name = "e/g" + std::to_string(i);
        INFO(name);
        auto got = try_read_file(fx.mnt(name));
        REQUIRE(got);
        CHECK(*got == versioned_body(300 + i, 150000));
    }
    auto keys = wait_keys(node, [&](const LiveKeys& k) { return k.files.size() == kFiles; });
    CHECK(keys.files.size() == kFiles);
    for (const auto& k : keys.files)
        CHECK(k.rfind("e/g", 0) == 0);
    for (int i = 0; i < kFiles; ++i) {
        auto got = try_read_file(fx.mnt("e/g" + std::to_string(i)));
        REQUIRE(got);
        CHECK(*got == versioned_body(300 + i, 150000));
    }
}

TEST_CASE("move: an O_TRUNC open of a released file right after its rename", "[move][rename]") {
    // The open cut the placeholder before looking at its marker: the rename's copy, in flight,
    // took it for a placeholder changed beside the mount (an error in the log), and the data
    // was fetched back only to be cut again. Now the cut waits for the observer.
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir));
    constexpr int kFiles = 20;
    write_released(fx, "t", kFiles, 400, 150000);
    for (int i = 0; i < kFiles; ++i) {
        std::string u = fx.mnt("u" + std::to_string(i));
        REQUIRE(::rename(fx.mnt("t" + std::to_string(i)).c_str(), u.c_str()) == 0);
        Fd fd(::open(u.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
        REQUIRE(fd);
        REQUIRE(::write(fd.get(), "new", 3) == 3);
    }
    for (int i = 0; i < kFiles; ++i) {
        std::string u = "u" + std::to_string(i);
        INFO(u);
        CHECK(wait_released(fx.src(u)));
        CHECK(read_file(fx.mnt(u)) == "new");
    }
}

TEST_CASE("move: files exchanged while they are being released keep their bytes",
          "[move][rename]") {
    // An exchange is refused for a released placeholder. The check read the marker before the
    // exchange with nothing keeping a release from finishing in between: the exchange then moved
    // a file whose record said released as if it were whole (a warning, and the record's key
    // kept an object no name owned). Both files are now pinned across the check and the call.
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountFixture fx(move_mount(node, dir, {"chunk_size=4096"}));
    constexpr int kPairs = 60;
    std::map<std::string, std::string> want;
    for (int i = 0; i < kPairs; ++i) {
        for (const char* side : {"p", "q"}) {
            std::string name = side + std::to_string(i);
            want[name] = versioned_body(500 + 2 * i + (side[0] == 'q'), 9000);
            write_file(fx.mnt(name), want[name]);
        }
    }
    // Each pair is exchanged again and again, up to 20 ms apart, until one of the two is
    // released (EINVAL) or 40 rounds have passed: some exchanges meet the releases in flight.
    std::mt19937 rng(rfs::test::test_seed("move exchange"));
    std::set<int> open_pairs;
    for (int i = 0; i < kPairs; ++i)
        open_pairs.insert(i);
    for (int round = 0; round < 40 && !open_pairs.empty(); ++round) {
        for (auto it = open_pairs.begin(); it != open_pairs.end();) {
            std::string p = "p" + std::to_string(*it), q = "q" + std::to_string(*it);
            long rc = ::syscall(SYS_renameat2, AT_FDCWD, fx.mnt(p).c_str(), AT_FDCWD,
                                fx.mnt(q).c_str(), RENAME_EXCHANGE);
            if (rc == 0) {
                std::swap(want[p], want[q]);
                ++it;
                continue;
            }
            INFO(p << " <-> " << q);
            REQUIRE(errno == EINVAL);
            CHECK((has_marker(fx.src(p)) || has_marker(fx.src(q))));
            it = open_pairs.erase(it);
        }
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    }
    for (const auto& [name, body] : want) {
        INFO(name);
        CHECK(wait_released(fx.src(name)));
        auto got = try_read_file(fx.mnt(name));
        REQUIRE(got);
        CHECK(*got == body);
    }
    auto keys = wait_keys(node, [&](const LiveKeys& k) { return k.files.size() == want.size(); });
    CHECK(keys.files.size() == want.size());
}

TEST_CASE("move: released files renamed onto each other's old names while Riak is down keep "
          "their bytes",
          "[move][rename]") {
    // Each move of a copy to its new key waits for Riak; when Riak is back they run in any
    // order. A move whose new key still held the copy another pending move was to take away
    // replaced it (and deleted its chunks as a replaced version's): that file, released, had
    // nothing left. Pairs renamed by two renames (p -> t, q -> p) and swapped by three
    // (r -> x, s -> r, x -> s).
    TempDir dir("riakfs-move");
    RiakNode node(dir.path());
    MountOptions opts = move_mount(node, dir);
    opts.warnings_expected = true; // the moves fail while Riak is down
    MountFixture fx(opts);
    constexpr int kPairs = 8;
    for (const char* prefix : {"p", "q", "r", "s"})
        write_released(fx, prefix, kPairs, 700 + 100 * (prefix[0] - 'p'), 150000);
    std::map<std::string, std::string> want;
    node.stop();
    for (int i = 0; i < kPairs; ++i) {
        auto n = [&](const char* prefix) { return std::string(prefix) + std::to_string(i); };
        auto mv = [&](const std::string& from, const std::string& to) {
            REQUIRE(::rename(fx.mnt(from).c_str(), fx.mnt(to).c_str()) == 0);
        };
        mv(n("p"), n("t"));
        mv(n("q"), n("p"));
        want[n("t")] = versioned_body(700 + i, 150000);
        want[n("p")] = versioned_body(800 + i, 150000);
        mv(n("r"), n("x"));
        mv(n("s"), n("r"));
        mv(n("x"), n("s"));
        want[n("s")] = versioned_body(900 + i, 150000);
        want[n("r")] = versioned_body(1000 + i, 150000);
    }
    std::this_thread::sleep_for(1s); // the moves have failed and wait to be retried
    node.start_again();
    // Three chunks each, and nothing left at a parking key.
    auto keys = wait_keys(node, [&](const LiveKeys& k) {
        return k.files.size() == want.size() && k.chunks.size() == 3 * want.size();
    });
    std::set<std::string> names;
    for (const auto& [name, body] : want)
        names.insert(name);
    CHECK(keys.files == names);
    CHECK(keys.chunks.size() == 3 * want.size());
    for (const auto& k : keys.chunks)
        CHECK(k.rfind(".riakfs/chunks/", 0) == 0);
    for (const auto& [name, body] : want) {
        INFO(name);
        CHECK(is_released(fx.src(name)));
        auto got = try_read_file(fx.mnt(name));
        REQUIRE(got);
        CHECK(digest(*got) == digest(body));
    }
}
