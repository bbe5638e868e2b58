// mode=shadow through a real mount against a real riak-devnode: files written and closed, or
// read to their end, are copied into Riak in the background, readable by any HTTP client under
// their path key; local use never waits for Riak, and copies survive Riak outages and restarts.
#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <thread>

using namespace riakfs::it;
using namespace std::chrono_literals;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_shadow {

namespace {

MountOptions shadow_mount(const RiakNode& node, const TempDir& dir,
                          std::vector<std::string> more = {}) {
    MountOptions opts;
    opts.extra_opts = {"mode=shadow", "riak=" + node.url(), "state_dir=" + dir / "state"};
    opts.warnings_expected = true; // several cases stop the Riak node: failed copies are logged
    for (auto& o : more)
        opts.extra_opts.push_back(o);
    return opts;
}

} // namespace

TEST_CASE("shadow: written and read files reach Riak under their path key", "[shadow]") {
    TempDir dir("riakfs-shadow");
    RiakNode node(dir.path());
    MountOptions opts = shadow_mount(node, dir);
    opts.prepare = [](const std::string& src) {
        write_file(src + "/old.txt", "was here before the mount");
        write_file(src + "/untouched.txt", "never opened");
        // A size the kernel reads in whole pages: no short read tells the end was reached.
        write_file(src + "/pages.bin", std::string(8192, 'p'));
    };
    MountFixture fx(opts);

    REQUIRE(::mkdir(fx.mnt("dir").c_str(), 0755) == 0);
    write_file(fx.mnt("dir/a.txt"), "hello riak", 0640);
    write_file(fx.mnt("sp ace+?#.txt"), "hostile name");
    write_file(fx.mnt("empty"), "");
    std::string big = random_bytes(2621440 + 17, 42); // 2.5 MiB + 17: three chunks of 1 MiB
    write_file(fx.mnt("big.bin"), big);
    CHECK(read_file(fx.mnt("old.txt")) == "was here before the mount");
    CHECK(read_file(fx.mnt("pages.bin")).size() == 8192);
    struct stat st;
    REQUIRE(::stat(fx.mnt("untouched.txt").c_str(), &st) == 0);

    HttpReply a = node.wait_for(object_path("dir/a.txt"));
    REQUIRE(a.status == 200);
    CHECK(a.body == "hello riak");
    CHECK(a.has_header("x-riak-meta-riakfs-size: 10"));
    CHECK(a.has_header("x-riak-meta-riakfs-sha256: "));
    CHECK(a.has_header("x-riak-meta-riakfs-mode: 100640"));
    CHECK(node.wait_for(object_path("sp ace+?#.txt")).body == "hostile name");
    HttpReply empty = node.wait_for(object_path("empty"));
    CHECK(empty.status == 200);
    CHECK(empty.body.empty());
    CHECK(node.wait_for(object_path("old.txt")).body == "was here before the mount");
    CHECK(node.wait_for(object_path("pages.bin")).body == std::string(8192, 'p'));

    // The large file: a manifest at its key, its chunks beside it, reassembled byte for byte.
    HttpReply manifest = node.wait_for(object_path("big.bin"));
    REQUIRE(manifest.status == 200);
    CHECK(manifest.has_header("x-riak-meta-riakfs-kind: manifest"));
    CHECK(manifest.body.find("\"riakfs-manifest/2\"") != std::string::npos);
    auto prefix_at = manifest.body.find("\"chunk_prefix\":\"");
    REQUIRE(prefix_at != std::string::npos);
    prefix_at += 16;
    std::string prefix =
        manifest.body.substr(prefix_at, manifest.body.find('"', prefix_at) - prefix_at);
    std::string joined;
    for (int i = 0; i < 3; ++i) {
        HttpReply chunk = node.get(object_path(prefix + std::to_string(i)));
        REQUIRE(chunk.status == 200);
        joined += chunk.body;
    }
    CHECK(digest(joined) == digest(big));

    // Only what was used is copied; SOURCE is untouched by all this.
    CHECK(node.get(object_path("untouched.txt")).status == 404);
    CHECK(read_file(fx.src("dir/a.txt")) == "hello riak");
    CHECK(digest(read_file(fx.src("big.bin"))) == digest(big));

    // A new version replaces the old one.
    write_file(fx.mnt("dir/a.txt"), "second version");
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (node.get(object_path("dir/a.txt")).body != "second version" &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    CHECK(node.get(object_path("dir/a.txt")).body == "second version");
}

TEST_CASE("shadow: with Riak down local files work, and copies resume when it is back",
          "[shadow]") {
    TempDir dir("riakfs-shadow");
    RiakNode node(dir.path());
    MountFixture fx(shadow_mount(node, dir));
    node.stop();
    auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i)
        write_file(fx.mnt("f" + std::to_string(i)), "content " + std::to_string(i));
    for (int i = 0; i < 20; ++i)
        CHECK(read_file(fx.mnt("f" + std::to_string(i))) == "content " + std::to_string(i));
    // Nothing waited for the network (generous: a loaded 2-core machine).
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    std::this_thread::sleep_for(1s);
    node.start_again();
    for (int i = 0; i < 20; ++i)
        CHECK(node.wait_for(object_path("f" + std::to_string(i)), 90s).body ==
              "content " + std::to_string(i));
}

TEST_CASE("shadow: copies left pending at unmount resume at the next mount", "[shadow]") {
    TempDir dir("riakfs-shadow");
    RiakNode node(dir.path());
    std::string source = dir / "source";
    REQUIRE(::mkdir(source.c_str(), 0755) == 0);
    MountOptions opts = shadow_mount(node, dir);
    opts.source_dir = source;
    {
        MountFixture fx(opts);
        node.stop();
        write_file(fx.mnt("pending.txt"), "copied after a restart");
        fx.unmount(); // the copy cannot be made: it stays pending in state_dir
    }
    node.start_again();
    CHECK(node.get(object_path("pending.txt")).status == 404);
    MountFixture again(opts); // nothing is opened through this mount: the state store resumes
    CHECK(node.wait_for(object_path("pending.txt"), 90s).body == "copied after a restart");
}

TEST_CASE("shadow: config= mapping rules; unmatched paths stay local", "[shadow]") {
    TempDir dir("riakfs-shadow");
    RiakNode node(dir.path());
    std::string config = dir / "layout.json";
    {
        std::ofstream out(config);
        out << R"({"rules":[{"path":"/{m}/images/{f}","bucket":"IMG_{m}","key":"{f}"}]})";
    }
    MountFixture fx(shadow_mount(node, dir, {"config=" + config}));
    REQUIRE(::mkdir(fx.mnt("cats").c_str(), 0755) == 0);
    REQUIRE(::mkdir(fx.mnt("cats/images").c_str(), 0755) == 0);
    REQUIRE(::mkdir(fx.mnt("cats/docs").c_str(), 0755) == 0);
    write_file(fx.mnt("cats/images/tom.jpg"), "jpeg bytes");
    write_file(fx.mnt("cats/docs/readme.txt"), "stays local");
    CHECK(node.wait_for(object_path("tom.jpg", "IMG_cats")).body == "jpeg bytes");
    std::this_thread::sleep_for(1s);
    HttpReply keys = node.get("/buckets/riakfs/keys?keys=true");
    CHECK(keys.body.find("readme") == std::string::npos);
    CHECK(node.get(object_path("cats/docs/readme.txt")).status == 404);
}

TEST_CASE("shadow: bad layout and state options are refused before mounting", "[shadow]") {
    TempDir dir("riakfs-shadow");
    std::string config = dir / "bad.json";
    {
        std::ofstream out(config);
        out << R"({"rules":[{"path":"/{m}/x","bucket":"B_{nope}","key":"k"}]})";
    }
    std::string src = dir / "src", mnt = dir / "mnt";
    REQUIRE(::mkdir(src.c_str(), 0755) == 0);
    REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
    ProcResult r = run_cmd(
        {daemon_bin(), src, mnt, "-f", "-o",
         "mode=shadow,riak=http://127.0.0.1:9,config=" + config + ",state_dir=" + (dir / "state")},
        20s);
    CHECK(r.exited);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("config=") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_FALSE(is_fuse_mounted(mnt));
}

// ---- namespace operations: Riak follows unlink, rmdir and rename ----------------------------

namespace {

using Keys = std::set<std::string>;

// Waits (up to 60 s) until the bucket lists exactly `expected`; returns what it listed last.
Keys wait_keys(const RiakNode& node, const Keys& expected, const std::string& bucket = "riakfs") {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    Keys keys = node.keys(bucket);
    while (keys != expected && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
        keys = node.keys(bucket);
    }
    return keys;
}

// Waits (up to 60 s) until GET of `key` answers 200 with `body`.
bool wait_body(const RiakNode& node, const std::string& key, const std::string& body,
               const std::string& bucket = "riakfs") {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        HttpReply r = node.get(object_path(key, bucket));
        if (r.status == 200 && r.body == body) return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

// The chunk keys the manifest at `key` names (waits for the manifest).
Keys chunk_keys(const RiakNode& node, const std::string& key) {
    HttpReply manifest = node.wait_for(object_path(key));
    REQUIRE(manifest.has_header("x-riak-meta-riakfs-kind: manifest"));
    auto at = manifest.body.find("\"chunk_prefix\":\"");
    REQUIRE(at != std::string::npos);
    at += 16;
    std::string prefix = manifest.body.substr(at, manifest.body.find('"', at) - at);
    Keys out;
    // One CRC-32 per chunk, null for a hole (README, "Layout").
    auto list = manifest.body.find("\"crc32\":[");
    REQUIRE(list != std::string::npos);
    std::string chunks = manifest.body.substr(list + 9, manifest.body.find(']', list) - list - 9);
    size_t index = 0;
    for (size_t pos = 0; pos <= chunks.size(); ++index) {
        size_t comma = chunks.find(',', pos);
        if (comma == std::string::npos) comma = chunks.size();
        if (chunks.substr(pos, comma - pos) != "null") out.insert(prefix + std::to_string(index));
        pos = comma + 1;
    }
    return out;
}

// The file's content as a reader of Riak sees it: the object, or the manifest's chunks joined.
std::string riak_content(const RiakNode& node, const std::string& key) {
    HttpReply r = node.get(object_path(key));
    if (r.status != 200) return "<" + std::to_string(r.status) + ">";
    if (!r.has_header("x-riak-meta-riakfs-kind: manifest")) return r.body;
    auto at = r.body.find("\"chunk_prefix\":\"") + 16;
    std::string prefix = r.body.substr(at, r.body.find('"', at) - at);
    std::string joined;
    for (size_t i = 0;; ++i) {
        HttpReply chunk = node.get(object_path(prefix + std::to_string(i)));
        if (chunk.status != 200) break;
        joined += chunk.body;
    }
    return joined;
}

Keys with_chunks(Keys files, const Keys& chunks) {
    files.insert(chunks.begin(), chunks.end());
    return files;
}

std::vector<std::string> immediate_deletes() {
    return {"--delete-mode", "immediate"};
}

} // namespace

TEST_CASE("shadow: unlink and rename through the mount leave no object behind in Riak",
          "[shadow][namespace]") {
    TempDir dir("riakfs-shadow");
    RiakNode node(dir.path(), 0, immediate_deletes());
    MountOptions opts = shadow_mount(node, dir);
    opts.prepare = [](const std::string& src) {
        ::mkdir((src + "/d").c_str(), 0755);
        write_file(src + "/d/never", "never opened: never copied");
    };
    MountFixture fx(opts);

    const std::string big = random_bytes(2621440 + 17, 7);  // 3 chunks
    const std::string large = random_bytes(1048576 + 5, 8); // 2 chunks
    const std::string inner = random_bytes(1048576 * 2, 9); // 2 chunks
    write_file(fx.mnt("small.txt"), "small");
    write_file(fx.mnt("big.bin"), big);
    write_file(fx.mnt("a.txt"), "alpha");
    write_file(fx.mnt("target.bin"), large);
    write_file(fx.mnt("x"), "ex");
    write_file(fx.mnt("y"), "why");
    write_file(fx.mnt("n1"), "no replace");
    write_file(fx.mnt("d/f1"), "first");
    REQUIRE(::mkdir(fx.mnt("d/sub").c_str(), 0755) == 0);
    write_file(fx.mnt("d/sub/f2"), inner);
    for (auto key : {"small.txt", "a.txt", "x", "y", "n1", "d/f1"})
        REQUIRE(node.wait_for(object_path(key)).status == 200);
    Keys big_chunks = chunk_keys(node, "big.bin");
    Keys target_chunks = chunk_keys(node, "target.bin");
    Keys inner_chunks = chunk_keys(node, "d/sub/f2");
    CHECK(big_chunks.size() == 3);
    Keys files = {"small.txt", "big.bin", "a.txt", "target.bin", "x",
                  "y",         "n1",      "d/f1",  "d/sub/f2"};
    Keys all_chunks = with_chunks(with_chunks(big_chunks, target_chunks), inner_chunks);
    REQUIRE(wait_keys(node, with_chunks(files, all_chunks)) == with_chunks(files, all_chunks));

    {
        // unlink of a small file and of a chunked one: the objects and the chunks go.
        REQUIRE(::unlink(fx.mnt("small.txt").c_str()) == 0);
        REQUIRE(::unlink(fx.mnt("big.bin").c_str()) == 0);
        files.erase("small.txt");
        files.erase("big.bin");
        Keys chunks = with_chunks(target_chunks, inner_chunks);
        CHECK(wait_keys(node, with_chunks(files, chunks)) == with_chunks(files, chunks));
        CHECK(node.get(object_path("small.txt")).status == 404);
        CHECK(node.get(object_path("big.bin")).status == 404);
        for (auto& c : big_chunks)
            CHECK(node.get(object_path(c)).status == 404);
    }

    // rename of a file: the old key goes, the new one holds the bytes.
    REQUIRE(::rename(fx.mnt("a.txt").c_str(), fx.mnt("a2.txt").c_str()) == 0);
    files.erase("a.txt");
    files.insert("a2.txt");
    CHECK(wait_body(node, "a2.txt", "alpha"));
    Keys chunks = with_chunks(target_chunks, inner_chunks);
    CHECK(wait_keys(node, with_chunks(files, chunks)) == with_chunks(files, chunks));

    // rename over an existing chunked file: its manifest is replaced, its chunks are dropped.
    REQUIRE(::rename(fx.mnt("a2.txt").c_str(), fx.mnt("target.bin").c_str()) == 0);
    files.erase("a2.txt");
    CHECK(wait_body(node, "target.bin", "alpha"));
    CHECK(wait_keys(node, with_chunks(files, inner_chunks)) == with_chunks(files, inner_chunks));
    for (auto& c : target_chunks)
        CHECK(node.get(object_path(c)).status == 404);

    // RENAME_EXCHANGE: both copied again, swapped.
    REQUIRE(::renameat2(AT_FDCWD, fx.mnt("x").c_str(), AT_FDCWD, fx.mnt("y").c_str(),
                        RENAME_EXCHANGE) == 0);
    CHECK(wait_body(node, "x", "why"));
    CHECK(wait_body(node, "y", "ex"));

    // RENAME_NOREPLACE: a plain rename.
    REQUIRE(::renameat2(AT_FDCWD, fx.mnt("n1").c_str(), AT_FDCWD, fx.mnt("n2").c_str(),
                        RENAME_NOREPLACE) == 0);
    files.erase("n1");
    files.insert("n2");
    CHECK(wait_body(node, "n2", "no replace"));
    CHECK(wait_keys(node, with_chunks(files, inner_chunks)) == with_chunks(files, inner_chunks));

    // A directory with files: every object moves; what was never copied stays unsent.
    REQUIRE(::rename(fx.mnt("d").c_str(), fx.mnt("e").c_str()) == 0);
    files.erase("d/f1");
    files.erase("d/sub/f2");
    files.insert("e/f1");
    files.insert("e/sub/f2");
    CHECK(wait_body(node, "e/f1", "first"));
    Keys new_inner;
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline &&
           node.get(object_path("e/sub/f2")).status != 200)
        std::this_thread::sleep_for(100ms);
    new_inner = chunk_keys(node, "e/sub/f2");
    CHECK(digest(riak_content(node, "e/sub/f2")) == digest(inner));
    CHECK(wait_keys(node, with_chunks(files, new_inner)) == with_chunks(files, new_inner));
    CHECK(node.get(object_path("e/never")).status == 404);
    // Read in SOURCE, not through the mount: a read to the end would copy it.
    CHECK(read_file(fx.src("e/never")) == "never opened: never copied");

    // rmdir: the files unlinked first, then the directory; nothing of it is left.
    REQUIRE(::mkdir(fx.mnt("gone").c_str(), 0755) == 0);
    write_file(fx.mnt("gone/f"), "short-lived");
    REQUIRE(node.wait_for(object_path("gone/f")).status == 200);
    REQUIRE(::unlink(fx.mnt("gone/f").c_str()) == 0);
    REQUIRE(::rmdir(fx.mnt("gone").c_str()) == 0);
    CHECK(wait_keys(node, with_chunks(files, new_inner)) == with_chunks(files, new_inner));

    // Local content is untouched by all this.
    CHECK(read_file(fx.src("target.bin")) == "alpha");
    CHECK(read_file(fx.src("x")) == "why");
}

TEST_CASE("shadow: moving out of and into the mapped area (config= rules)", "[shadow][namespace]") {
    TempDir dir("riakfs-shadow");
    RiakNode node(dir.path(), 0, immediate_deletes());
    std::string config = dir / "layout.json";
    {
        std::ofstream out(config);
        out << R"({"rules":[{"path":"/{m}/images/{f}","bucket":"IMG_{m}","key":"{f}"}]})";
    }
    MountOptions opts = shadow_mount(node, dir, {"config=" + config});
    opts.prepare = [](const std::string& src) {
        ::mkdir((src + "/cats").c_str(), 0755);
        ::mkdir((src + "/cats/docs").c_str(), 0755);
        write_file(src + "/cats/docs/old.jpg", "was local");
    };
    MountFixture fx(opts);
    REQUIRE(::mkdir(fx.mnt("cats/images").c_str(), 0755) == 0);
    write_file(fx.mnt("cats/images/tom.jpg"), "tom");
    write_file(fx.mnt("cats/images/kit.jpg"), "kit");
    REQUIRE(node.wait_for(object_path("tom.jpg", "IMG_cats")).body == "tom");
    REQUIRE(node.wait_for(object_path("kit.jpg", "IMG_cats")).body == "kit");

    // Out of the mapped area: the object goes, the file stays local.
    REQUIRE(::rename(fx.mnt("cats/images/tom.jpg").c_str(), fx.mnt("cats/docs/tom.jpg").c_str()) ==
            0);
    CHECK(wait_keys(node, {"kit.jpg"}, "IMG_cats") == Keys{"kit.jpg"});
    CHECK(node.get(object_path("tom.jpg", "IMG_cats")).status == 404);
    CHECK(read_file(fx.mnt("cats/docs/tom.jpg")) == "tom");

    // Into it: a file never copied is copied under its new key.
    REQUIRE(::rename(fx.mnt("cats/docs/old.jpg").c_str(), fx.mnt("cats/images/old.jpg").c_str()) ==
            0);
    CHECK(wait_body(node, "old.jpg", "was local", "IMG_cats"));
    CHECK(wait_keys(node, {"kit.jpg", "old.jpg"}, "IMG_cats") == Keys{"kit.jpg", "old.jpg"});

    // A directory rename that changes the bucket: every object moves to the new bucket.
    REQUIRE(::mkdir(fx.mnt("dogs").c_str(), 0755) == 0);
    REQUIRE(::rename(fx.mnt("cats/images").c_str(), fx.mnt("dogs/images").c_str()) == 0);
    CHECK(wait_keys(node, {"kit.jpg", "old.jpg"}, "IMG_dogs") == Keys{"kit.jpg", "old.jpg"});
    CHECK(wait_keys(node, {}, "IMG_cats") == Keys{});
    CHECK(node.get(object_path("kit.jpg", "IMG_dogs")).body == "kit");
    CHECK(node.get(object_path("old.jpg", "IMG_dogs")).body == "was local");
    // Nothing strayed into the default bucket.
    CHECK(node.keys("riakfs").empty());
}

TEST_CASE("shadow: an unlink while Riak is down is finished when it is back",
          "[shadow][namespace]") {
    TempDir dir("riakfs-shadow");
    RiakNode node(dir.path(), 0, immediate_deletes());
    MountFixture fx(shadow_mount(node, dir));
    write_file(fx.mnt("doomed"), "to be removed");
    write_file(fx.mnt("kept"), "stays");
    REQUIRE(node.wait_for(object_path("doomed")).status == 200);
    REQUIRE(node.wait_for(object_path("kept")).status == 200);
    node.stop();
    auto started = std::chrono::steady_clock::now();
    REQUIRE(::unlink(fx.mnt("doomed").c_str()) == 0);
    REQUIRE(::rename(fx.mnt("kept").c_str(), fx.mnt("kept2").c_str()) == 0);
    CHECK(std::chrono::steady_clock::now() - started < 10s); // nothing waited for Riak
    std::this_thread::sleep_for(1s);
    node.start_again();
    CHECK(wait_body(node, "kept2", "stays"));
    CHECK(wait_keys(node, {"kept2"}) == Keys{"kept2"});
}

} // namespace test_shadow
