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
#include <fstream>
#include <string>

using namespace riakfs::it;
using namespace std::chrono_literals;

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

std::string object_path(const std::string& key, const std::string& bucket = "riakfs") {
    return "/buckets/" + bucket + "/keys/" + url_key(key);
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
    CHECK(manifest.body.find("\"riakfs-manifest/1\"") != std::string::npos);
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
