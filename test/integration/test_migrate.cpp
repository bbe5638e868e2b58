// mode=migrate through a real mount against a real riak-devnode: once a file's copy is verified,
// reads of it are served from Riak (counted on the node: GETs happen for reads through the mount,
// which shadow never makes), with the local file as the fallback whenever Riak fails; a file
// written after its copy is read locally until copied again, never stale.
#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

using namespace riakfs::it;
using namespace std::chrono_literals;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_migrate {

namespace {

MountOptions riak_mount(const RiakNode& node, const TempDir& dir, const std::string& mode,
                        std::vector<std::string> more = {}) {
    MountOptions opts;
    opts.extra_opts = {"mode=" + mode, "riak=" + node.url(), "state_dir=" + dir / "state",
                       "cache=never"};
    for (auto& o : more)
        opts.extra_opts.push_back(o);
    return opts;
}

// The node's GET (and HEAD) count since it started.
std::uint64_t node_gets(const RiakNode& node) {
    HttpReply stats = node.get("/stats");
    REQUIRE(stats.status == 200);
    const std::string name = "\"node_gets_total\":";
    auto at = stats.body.find(name);
    REQUIRE(at != std::string::npos);
    return std::stoull(stats.body.substr(at + name.size()));
}

// Waits up to 10 s for the node to have served `want` GETs in all (fetches the daemon makes in
// the background, after its replies).
void wait_gets(const RiakNode& node, std::uint64_t want) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (node_gets(node) < want && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
}

// Whether the namespace record of SOURCE's root lists `name` with `size` bytes.
bool root_record_lists(const RiakNode& node, const std::string& name, std::size_t size) {
    HttpReply r = node.get("/buckets/riakfs-ns/keys/%2F");
    if (r.status != 200) return false;
    auto at = r.body.find("\"" + name + "\":{");
    if (at == std::string::npos) return false;
    auto end = r.body.find('}', at);
    auto field = r.body.find("\"size\":" + std::to_string(size), at);
    return field != std::string::npos && field < end &&
           (r.body[field + 7 + std::to_string(size).size()] == ',' ||
            r.body[field + 7 + std::to_string(size).size()] == '}');
}

// Waits until `key` (a file in SOURCE's root) holds a copy of `size` bytes, its directory's
// namespace record lists it with that size, and the node has seen no GET or HEAD for a while:
// the copy is verified and recorded, the namespace written (its HEADs count as GETs), nothing
// else is running. `listed` false: the file was changed beside the mount, which its namespace
// record does not follow.
void wait_copied(const RiakNode& node, const std::string& key, std::size_t size,
                 bool listed = true) {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        HttpReply r = node.get(object_path(key));
        if (r.status == 200 &&
            r.has_header("x-riak-meta-riakfs-size: " + std::to_string(size) + "\r") &&
            (!listed || root_record_lists(node, key, size)))
            break;
        std::this_thread::sleep_for(100ms);
    }
    INFO(key << " copied and listed in its namespace record");
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::uint64_t before = node_gets(node);
    for (;;) {
        std::this_thread::sleep_for(500ms);
        std::uint64_t now = node_gets(node);
        if (now == before) return;
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        before = now;
    }
}

std::string read_via(const std::string& path) {
    return read_file(path);
}

// "f1000", "f1001", ...: in name order as in number order.
std::string numbered(int i) {
    return "f" + std::to_string(1000 + i);
}

// Makes `source` and writes `count` files numbered(i) ("content fNNNN", 13 bytes) into it
// through a mode=migrate mount, unmounted once every copy is in Riak and recorded.
void write_numbered_files(const RiakNode& node, const TempDir& dir, const std::string& source,
                          int count) {
    REQUIRE(::mkdir(source.c_str(), 0755) == 0);
    MountOptions opts = riak_mount(node, dir, "migrate");
    opts.source_dir = source;
    MountFixture fx(opts);
    for (int i = 0; i < count; ++i)
        write_file(fx.mnt(numbered(i)), "content " + numbered(i));
    for (int i = 0; i + 1 < count; ++i) {
        auto deadline = std::chrono::steady_clock::now() + 60s;
        while (node.get(object_path(numbered(i))).status != 200)
            REQUIRE(std::chrono::steady_clock::now() < deadline);
    }
    wait_copied(node, numbered(count - 1), 13);
}

} // namespace

TEST_CASE("migrate: verified files are read from Riak, with the cache bounding GETs", "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    MountFixture fx(riak_mount(node, dir, "migrate"));
    write_file(fx.mnt("small.txt"), "served from riak");
    std::string big = random_bytes((3 << 20) + 4097, 7); // four chunks of 1 MiB
    write_file(fx.mnt("big.bin"), big);
    wait_copied(node, "small.txt", 16);
    wait_copied(node, "big.bin", big.size());

    std::uint64_t g0 = node_gets(node);
    CHECK(read_via(fx.mnt("small.txt")) == "served from riak");
    std::uint64_t g1 = node_gets(node);
    CHECK(g1 == g0 + 1); // the whole object, once
    CHECK(digest(read_via(fx.mnt("big.bin"))) == digest(big));
    std::uint64_t g2 = node_gets(node);
    CHECK(g2 == g1 + 1 + 4); // the manifest and each chunk, once (readahead included)

    // Read again: from the reader's cache (256M by default), no GET at all.
    CHECK(read_via(fx.mnt("small.txt")) == "served from riak");
    CHECK(digest(read_via(fx.mnt("big.bin"))) == digest(big));
    CHECK(node_gets(node) == g2);

    // A piece in the middle, across a chunk boundary.
    Fd fd(::open(fx.mnt("big.bin").c_str(), O_RDONLY));
    REQUIRE(fd);
    std::string piece(8192, '\0');
    REQUIRE(::pread(fd.get(), piece.data(), piece.size(), (1 << 20) - 4096) == 8192);
    CHECK(piece == big.substr((1 << 20) - 4096, 8192));
    CHECK(read_file(fx.src("big.bin")) == big); // SOURCE keeps its data
}

TEST_CASE("migrate: with cache_size=0 every read goes to Riak; shadow never reads Riak",
          "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    const std::string source = dir / "src"; // one SOURCE for both mounts (and their state_dir)
    REQUIRE(::mkdir(source.c_str(), 0755) == 0);
    {
        MountOptions opts = riak_mount(node, dir, "migrate", {"cache_size=0"});
        opts.source_dir = source;
        MountFixture fx(opts);
        write_file(fx.mnt("a.txt"), "abc");
        wait_copied(node, "a.txt", 3);
        std::uint64_t g0 = node_gets(node);
        for (int i = 0; i < 3; ++i)
            CHECK(read_via(fx.mnt("a.txt")) == "abc");
        CHECK(node_gets(node) == g0 + 3);
    }
    {
        // The same state and file under mode=shadow: served locally, no GET.
        MountOptions opts = riak_mount(node, dir, "shadow");
        opts.source_dir = source;
        MountFixture fx(opts);
        std::uint64_t g0 = node_gets(node);
        for (int i = 0; i < 3; ++i)
            CHECK(read_via(fx.mnt("a.txt")) == "abc");
        std::this_thread::sleep_for(300ms);
        CHECK(node_gets(node) == g0);
    }
}

TEST_CASE("migrate: Riak down, reads return the local bytes without hanging", "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    MountOptions opts = riak_mount(node, dir, "migrate", {"cache_size=0"});
    opts.warnings_expected = true; // each file's fall-back to the local copy is logged
    MountFixture fx(opts);
    write_file(fx.mnt("a.txt"), "local fallback");
    std::string big = random_bytes((2 << 20) + 5, 9);
    write_file(fx.mnt("big.bin"), big);
    wait_copied(node, "a.txt", 14);
    wait_copied(node, "big.bin", big.size());
    // Opened while Riak is up, read once from it, then Riak goes away under the open file.
    // (O_CLOEXEC: the node restarted below must not inherit a file of the mount.)
    Fd fd(::open(fx.mnt("big.bin").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    std::string head(4096, '\0');
    REQUIRE(::pread(fd.get(), head.data(), head.size(), 0) == 4096);
    node.stop();
    auto started = std::chrono::steady_clock::now();
    std::string rest(big.size(), '\0');
    ssize_t n = ::pread(fd.get(), rest.data(), rest.size(), 0);
    CHECK(n == static_cast<ssize_t>(big.size()));
    rest.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    CHECK(digest(rest) == digest(big));
    for (int i = 0; i < 5; ++i) {
        CHECK(read_via(fx.mnt("a.txt")) == "local fallback");
        CHECK(digest(read_via(fx.mnt("big.bin"))) == digest(big));
    }
    // Bounded: the reader gives Riak at most 2 s per read (a refused connection fails at once).
    CHECK(std::chrono::steady_clock::now() - started < 30s);
    node.start_again();
    CHECK(read_via(fx.mnt("a.txt")) == "local fallback");
}

TEST_CASE("migrate: a file written after its copy is read locally until copied again",
          "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    MountFixture fx(riak_mount(node, dir, "migrate", {"cache_size=0"}));
    write_file(fx.mnt("f.txt"), "version one");
    wait_copied(node, "f.txt", 11);
    // A reader opened on the copied version, then a write through the mount.
    Fd reader(::open(fx.mnt("f.txt").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(reader);
    char buf[64] = {};
    REQUIRE(::pread(reader.get(), buf, sizeof buf, 0) == 11);
    CHECK(std::string(buf, 11) == "version one");
    {
        Fd w(::open(fx.mnt("f.txt").c_str(), O_WRONLY));
        REQUIRE(w);
        REQUIRE(::pwrite(w.get(), "VERSION", 7, 0) == 7);
    }
    // Never stale: neither the open reader nor a new open sees Riak's old version.
    REQUIRE(::pread(reader.get(), buf, sizeof buf, 0) == 11);
    CHECK(std::string(buf, 11) == "VERSION one");
    CHECK(read_via(fx.mnt("f.txt")) == "VERSION one");
    // Beside the mount too: the local file changed, Riak's copy no longer matches.
    write_file(fx.src("f.txt"), "changed beside the mount");
    CHECK(read_via(fx.mnt("f.txt")) == "changed beside the mount");
    // Written through the mount again: copied ("writes go to both"), then served from Riak.
    write_file(fx.mnt("f.txt"), "version three");
    wait_copied(node, "f.txt", 13);
    CHECK(node.get(object_path("f.txt")).body == "version three");
    std::uint64_t g0 = node_gets(node);
    CHECK(read_via(fx.mnt("f.txt")) == "version three");
    CHECK(node_gets(node) == g0 + 1);
}

TEST_CASE("migrate: another writer's version in Riak is not served; the file is copied again",
          "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    MountOptions opts = riak_mount(node, dir, "migrate", {"cache_size=0"});
    opts.warnings_expected = true; // the foreign version is logged as it is refused
    MountFixture fx(opts);
    write_file(fx.mnt("g.txt"), "ours");
    wait_copied(node, "g.txt", 4);
    // Someone else overwrites the object with other bytes and no riakfs metadata.
    ProcResult put = run_cmd({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                              "-H", "Content-Type: application/octet-stream", "--data-binary",
                              "theirs", node.url() + object_path("g.txt")},
                             20s);
    REQUIRE(put.exit_code == 0);
    CHECK(read_via(fx.mnt("g.txt")) == "ours");
    // The mismatch queued a new copy of the local file.
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (node.get(object_path("g.txt")).body != "ours" &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    CHECK(node.get(object_path("g.txt")).body == "ours");
}

// Once the Riak modes exist, riak= alone means migrate: an fstab line naming only the nodes
// gets the mode that serves verified files from Riak.
TEST_CASE("migrate: the default mode when riak= is given", "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    MountOptions opts;
    opts.default_mode = true;
    opts.extra_opts = {"riak=" + node.url(), "state_dir=" + dir / "state", "cache=never"};
    MountFixture fx(opts);
    CHECK(fx.stderr_text().find("mode=migrate") != std::string::npos);
    write_file(fx.mnt("d.txt"), "served from Riak by default");
    wait_copied(node, "d.txt", 27);
    std::uint64_t before = node_gets(node);
    CHECK(read_via(fx.mnt("d.txt")) == "served from Riak by default");
    CHECK(node_gets(node) > before);
}

// A file changed beside the mount while a handle served from Riak has it open: the handle reads
// the new local bytes, and its read-to-end close still copies the file (a close of a handle that
// served the unchanged copy hands nothing to the migrator).
TEST_CASE("migrate: a file changed beside the mount under a Riak-served handle is copied at close",
          "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    MountFixture fx(riak_mount(node, dir, "migrate", {"cache_size=0"}));
    write_file(fx.mnt("h.txt"), "first");
    wait_copied(node, "h.txt", 5);
    {
        Fd reader(::open(fx.mnt("h.txt").c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(reader);
        write_file(fx.src("h.txt"), "second, longer");
        std::string got(64, '\0');
        ssize_t n = ::pread(reader.get(), got.data(), got.size(), 0);
        REQUIRE(n == 14);
        CHECK(got.substr(0, 14) == "second, longer");
    }
    wait_copied(node, "h.txt", 14, false);
    CHECK(node.get(object_path("h.txt")).body == "second, longer");
}

// A LOOKUP of a small verified file starts its GET, so that the open and read that usually
// follow find it on its way; a stat scan (lookups without opens) stops that after one window
// of fetches (lib/migrate/lookup_prefetch.hpp) instead of reading every file from Riak.
TEST_CASE("migrate: lookups fetch small verified files ahead, a stat scan does not", "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    const std::string source = dir / "src";
    constexpr int kFiles = 200;
    write_numbered_files(node, dir, source, kFiles);
    // A fresh daemon: its cache is empty.
    MountOptions opts = riak_mount(node, dir, "migrate");
    opts.source_dir = source;
    MountFixture fx(opts);
    std::uint64_t g0 = node_gets(node);
    struct stat st;
    REQUIRE(::stat(fx.mnt(numbered(0)).c_str(), &st) == 0);
    wait_gets(node, g0 + 1);
    CHECK(node_gets(node) == g0 + 1); // fetched at the lookup
    CHECK(read_via(fx.mnt(numbered(0))) == "content " + numbered(0));
    CHECK(node_gets(node) == g0 + 1); // and read from the cache

    std::uint64_t g1 = node_gets(node);
    for (int i = 1; i < kFiles; ++i)
        REQUIRE(::stat(fx.mnt(numbered(i)).c_str(), &st) == 0);
    std::this_thread::sleep_for(500ms);
    // cache=never: every stat was a LOOKUP. At most one window's fetches (LookupPrefetch::kWindow,
    // 8), not one per file.
    CHECK(node_gets(node) - g1 <= 8);
    CHECK(node_gets(node) - g1 >= 1);
}

// A reader that opens a directory's small files one after another, in name order, has the next
// ones fetched ahead (lib/migrate/sibling_prefetch.hpp): after its tenth file the node has
// served GETs up to the eighteenth, and reading them all still costs one GET each.
TEST_CASE("migrate: a reader of a directory's files in order has the next ones fetched ahead",
          "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    const std::string source = dir / "src";
    constexpr int kFiles = 40;
    write_numbered_files(node, dir, source, kFiles);
    MountOptions opts = riak_mount(node, dir, "migrate");
    opts.source_dir = source;
    MountFixture fx(opts); // a fresh daemon: nothing cached
    const std::uint64_t g0 = node_gets(node);
    for (int i = 0; i < 10; ++i)
        REQUIRE(read_via(fx.mnt(numbered(i))) == "content " + numbered(i));
    // Files 10 to 17 were fetched without being opened (nothing looked them up either).
    wait_gets(node, g0 + 18);
    CHECK(node_gets(node) - g0 == 18);
    for (int i = 10; i < kFiles; ++i)
        REQUIRE(read_via(fx.mnt(numbered(i))) == "content " + numbered(i));
    std::this_thread::sleep_for(300ms);
    CHECK(node_gets(node) - g0 == kFiles); // each file fetched once, none twice
}

// The open that follows a LOOKUP takes the path and state record the lookup's fetch found
// (lib/migrate/lookup_prefetch.hpp) instead of looking them up again; a rename in between makes
// it look them up: the file reads whole under its new name, and nothing is logged (a warning, such
// as a failed read from Riak, fails the fixture).
TEST_CASE("migrate: a file renamed between its lookup and its open reads whole", "[migrate]") {
    TempDir dir("riakfs-migrate");
    RiakNode node(dir.path());
    const std::string source = dir / "src";
    REQUIRE(::mkdir(source.c_str(), 0755) == 0);
    {
        MountOptions opts = riak_mount(node, dir, "migrate");
        opts.source_dir = source;
        MountFixture fx(opts);
        write_file(fx.mnt("before.txt"), "renamed after its lookup");
        wait_copied(node, "before.txt", 24);
    }
    MountOptions opts = riak_mount(node, dir, "migrate");
    opts.source_dir = source;
    MountFixture fx(opts); // a fresh daemon: nothing cached
    std::uint64_t g0 = node_gets(node);
    struct stat st;
    REQUIRE(::stat(fx.mnt("before.txt").c_str(), &st) == 0);
    wait_gets(node, g0 + 1);
    REQUIRE(node_gets(node) == g0 + 1); // fetched at the lookup
    REQUIRE(::rename(fx.mnt("before.txt").c_str(), fx.mnt("after.txt").c_str()) == 0);
    wait_copied(node, "after.txt", 24);
    CHECK(read_via(fx.mnt("after.txt")) == "renamed after its lookup");
    CHECK(node.get(object_path("before.txt")).status == 404);
}

} // namespace test_migrate
