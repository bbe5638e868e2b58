// riakfsctl verify, recall and plan through real mounts against a real riak-devnode: a drained
// move mount verifies clean; an object changed in Riak (curl PUT) and a file changed beside the
// mount are reported, --repair fixes them; Riak unreachable is an error, never "missing"; recall
// brings released files back byte for byte and they stay local; recall --delete-from-riak
// removes the copies; plan's figures for a known tree, of a SOURCE and of a mount.
//
// Waits are "until the status says so" (bounded, never asserted on time). RIAKFSCTL_BIN names
// the riakfsctl under test.
#include "ctl_test_support.hpp"
#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace riakfs::it;
using namespace std::chrono_literals;
using json = nlohmann::json;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_ctl_tree {

namespace {

ProcResult ctl(std::vector<std::string> args) {
    return run_ctl(std::move(args), 60s);
}

template <class Pred> json wait_status(const std::string& mnt, Pred done) {
    return wait_ctl_status(mnt, 60s, done);
}

bool queue_empty(const json& s) {
    return s["queue"]["copies"] == 0 && s["queue"]["removals"] == 0;
}

// Small files in three directories, and one file of several chunks (a manifest) in each.
Tree make_tree() {
    Tree t;
    for (size_t i = 0; i < 24; ++i) {
        t.paths.push_back("d" + std::to_string(i % 3) + "/f" + std::to_string(i));
        t.contents.push_back(random_bytes(1 + (i * 7919) % 5000, i + 1));
    }
    for (size_t d = 0; d < 3; ++d) {
        t.paths.push_back("d" + std::to_string(d) + "/large");
        t.contents.push_back(random_bytes(200000 + d, 100 + d));
    }
    return t;
}

// The lines of riakfsctl's stdout that name `path` as a difference.
bool reports(const ProcResult& r, const std::string& kind, const std::string& path) {
    std::istringstream lines(r.output);
    std::string line;
    while (std::getline(lines, line))
        if (line.starts_with(kind) && line.find(" " + path + ":") != std::string::npos) return true;
    return false;
}

// Waits (bounded) until Riak's object at `key` holds `body`; returns what it holds then.
std::string wait_body(const RiakNode& node, const std::string& key, const std::string& body) {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    std::string now = node.get(object_path(key)).body;
    while (now != body && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
        now = node.get(object_path(key)).body;
    }
    return now;
}

// PUT `body` at riakfs's key `key` as riakfs wrote it: with the content type and riakfs's
// metadata of `like` (a GET of it, whose header lines RiakNode lower-cases: the vclock, base64,
// cannot be sent back; without it the write still replaces the value, the bucket not allowing
// siblings).
bool put_like(const RiakNode& node, const std::string& key, const HttpReply& like,
              const std::string& body, const std::string& scratch) {
    std::vector<std::string> argv = {"curl", "-s",           "-o", "/dev/null",
                                     "-w",   "%{http_code}", "-X", "PUT"};
    std::istringstream lines(like.headers); // lower-cased
    std::string line;
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.starts_with("x-riak-meta-") || line.starts_with("content-type:"))
            argv.insert(argv.end(), {"-H", line});
    }
    write_file(scratch, body);
    argv.insert(argv.end(), {"--data-binary", "@" + scratch, node.url() + object_path(key)});
    ProcResult r = run_cmd(argv, 20s);
    return r.exit_code == 0 && r.output == "204";
}

} // namespace

TEST_CASE("verify: a drained move mount agrees; changes in Riak and beside the mount are "
          "reported and repaired; recall keeps files local",
          "[ctl][verify][recall]") {
    TempDir dir("riakfs-ctl");
    RiakNode node(dir.path());
    const Tree tree = make_tree();
    MountOptions opts = ctl_riak_mount(node, dir, "move", {});
    opts.prepare = [&](const std::string& source) { write_tree(tree, source); };
    opts.warnings_expected = true; // Riak is stopped on purpose at the end
    MountFixture fx(opts);
    const std::string mnt = fx.mountpoint();

    // plan of the mount before anything moved: everything is to be sent, and move would free
    // every allocated block of it.
    std::uint64_t bytes = 0, blocks = 0;
    for (size_t i = 0; i < tree.paths.size(); ++i) {
        bytes += tree.contents[i].size();
        blocks += static_cast<std::uint64_t>(lstat_ok(fx.src(tree.paths[i])).st_blocks) * 512;
    }
    ProcResult r = ctl({"plan", mnt, "--json", "--rate", "1M"});
    INFO(r.output << r.err);
    REQUIRE(r.exit_code == 0);
    json plan = json::parse(r.output);
    CHECK(plan["mapped"]["files"] == tree.paths.size());
    CHECK(plan["mapped"]["bytes"] == bytes);
    CHECK(plan["to_send"]["files"] == tree.paths.size());
    CHECK(plan["to_send"]["bytes"] == bytes);
    CHECK(plan["in_riak"]["files"] == 0);
    CHECK(plan["freeable_bytes"] == blocks);
    CHECK(plan["eta_seconds"] == std::ceil(double(bytes) / (1 << 20)));

    REQUIRE(ctl({"drain", mnt, "--resume"}).exit_code == 0);
    wait_status(mnt, [](const json& s) { return s["drain"]["state"] == "finished"; });
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (released_count(tree, fx.source()) < tree.paths.size() &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    REQUIRE(released_count(tree, fx.source()) == tree.paths.size());

    // plan again: Riak holds everything, nothing is left to send or free.
    r = ctl({"plan", mnt, "--json"});
    REQUIRE(r.exit_code == 0);
    plan = json::parse(r.output);
    CHECK(plan["in_riak"]["files"] == tree.paths.size());
    CHECK(plan["released"]["files"] == tree.paths.size());
    CHECK(plan["to_send"]["files"] == 0);
    CHECK(plan["freeable_bytes"] == 0);
    CHECK(plan["eta_seconds"] == 0);

    // Everything agrees: objects, chunks, metadata and namespace records.
    r = ctl({"verify", mnt});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("all agree with Riak") != std::string::npos);
    r = ctl({"verify", mnt, "--json"});
    REQUIRE(r.exit_code == 0);
    json summary = json::parse(r.output)["summary"];
    CHECK(summary["checked_files"] == tree.paths.size());
    CHECK(summary["released"] == tree.paths.size());
    CHECK(summary["agreeing"] == tree.paths.size());
    CHECK(summary["directories"] == 4);

    // recall d0: its files come back byte for byte, without markers, and stay local after
    // being opened, read and closed, and after a write and its copy.
    r = ctl({"recall", mnt, "d0"});
    INFO(r.output << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("recalled 9 file(s)") != std::string::npos);
    for (size_t i = 0; i < tree.paths.size(); ++i) {
        if (!tree.paths[i].starts_with("d0/")) continue;
        CHECK(!has_marker(fx.src(tree.paths[i])));
        CHECK(read_file(fx.src(tree.paths[i])) == tree.contents[i]);
        CHECK(read_file(fx.mnt(tree.paths[i])) == tree.contents[i]);
    }
    write_file(fx.mnt("d0/f3"), "written after the recall");
    CHECK(wait_body(node, "d0/f3", "written after the recall") == "written after the recall");
    wait_status(mnt, queue_empty);
    for (const char* p : {"d0/f0", "d0/f3", "d0/large"})
        CHECK(!has_marker(fx.src(p)));
    CHECK(released_count(tree, fx.source()) == 18); // d1 and d2 stay released
    r = ctl({"verify", mnt, "d0"});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 0);

    // Someone overwrites d0/f6's object in Riak, and d0/f9 changes beside the mount.
    ProcResult put = run_cmd({"curl", "-s", "-o", "/dev/null", "-X", "PUT", "-H",
                              "Content-Type: application/octet-stream", "--data-binary", "theirs",
                              node.url() + object_path("d0/f6")},
                             20s);
    REQUIRE(put.exit_code == 0);
    write_file(fx.src("d0/f9"), "changed beside the mount");
    r = ctl({"verify", mnt, fx.mnt("d0")}); // an absolute PATH under the mount works too
    INFO(r.output << r.err);
    CHECK(r.exit_code == 1);
    CHECK(reports(r, "mismatch", "d0/f6"));
    CHECK(reports(r, "mismatch", "d0/f9"));
    CHECK(!reports(r, "mismatch", "d0/f0"));

    r = ctl({"verify", mnt, "d0", "--repair"});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("re-queued for upload") != std::string::npos);
    CHECK(wait_body(node, "d0/f9", "changed beside the mount") == "changed beside the mount");
    CHECK(wait_body(node, "d0/f6", tree.contents[6]) == tree.contents[6]);
    wait_status(mnt, queue_empty);
    r = ctl({"verify", mnt, "d0"});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 0);

    // A released file whose object was replaced cannot be repaired: it is reported so.
    REQUIRE(run_cmd({"curl", "-s", "-o", "/dev/null", "-X", "PUT", "-H",
                     "Content-Type: application/octet-stream", "--data-binary", "lost",
                     node.url() + object_path("d1/f1")},
                    20s)
                .exit_code == 0);
    r = ctl({"verify", mnt, "d1/f1", "--repair"});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 1);
    CHECK(reports(r, "mismatch", "d1/f1"));
    CHECK(r.output.find("cannot repair") != std::string::npos);

    // d2/large's manifest with a wrong CRC-32 for one chunk (its SHA-256s right): every read of
    // that chunk would fail (EIO), and verify says why; the right manifest back, it agrees.
    HttpReply manifest = node.get(object_path("d2/large"));
    REQUIRE(manifest.status == 200);
    json wrong = json::parse(manifest.body);
    REQUIRE(wrong["crc32"].is_array());
    wrong["crc32"][1] = wrong["crc32"][1].get<std::uint32_t>() ^ 1u;
    REQUIRE(put_like(node, "d2/large", manifest, wrong.dump(), dir / "manifest.json"));
    r = ctl({"verify", mnt, "d2/large"});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 1);
    CHECK(reports(r, "mismatch", "d2/large"));
    CHECK(r.output.find("does not match the manifest's CRC-32") != std::string::npos);
    REQUIRE(put_like(node, "d2/large", manifest, manifest.body, dir / "manifest.json"));
    r = ctl({"verify", mnt, "d2/large"});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 0);

    // Riak unreachable is an error (exit 2), never a missing object.
    node.stop();
    r = ctl({"verify", mnt, "d2/f2"});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 2);
    CHECK(reports(r, "error", "d2/f2"));
    CHECK(r.output.find("not in Riak") == std::string::npos);
    node.start_again();

    // Usage errors.
    CHECK(ctl({"verify", mnt, "../x"}).exit_code == 2);
    CHECK(ctl({"verify", mnt, "nope"}).exit_code == 2);
    CHECK(ctl({"recall", mnt}).exit_code == 2);
    r = ctl({"recall", mnt, "nope"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("does not exist") != std::string::npos);
}

TEST_CASE("recall --delete-from-riak: files local, their copies and records gone, and kept out "
          "of Riak",
          "[ctl][recall]") {
    TempDir dir("riakfs-ctl");
    RiakNode node(dir.path());
    const Tree tree = make_tree();
    MountOptions opts = ctl_riak_mount(node, dir, "move", {"drain=on"});
    opts.prepare = [&](const std::string& source) { write_tree(tree, source); };
    MountFixture fx(opts);
    const std::string mnt = fx.mountpoint();
    wait_status(mnt, [](const json& s) { return s["drain"]["state"] == "finished"; });
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (released_count(tree, fx.source()) < tree.paths.size() &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    REQUIRE(released_count(tree, fx.source()) == tree.paths.size());
    REQUIRE(node.get(object_path("d1/large")).status == 200);

    ProcResult r = ctl({"recall", mnt, "d1", "--delete-from-riak"});
    INFO(r.output << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("9 Riak copies deleted") != std::string::npos);
    for (size_t i = 0; i < tree.paths.size(); ++i) {
        if (!tree.paths[i].starts_with("d1/")) continue;
        CHECK(!has_marker(fx.src(tree.paths[i])));
        CHECK(read_file(fx.mnt(tree.paths[i])) == tree.contents[i]);
        CHECK(node.get(object_path(tree.paths[i])).status == 404);
    }
    // Not a single chunk of d1/large is left (a listing may still name tombstones: each key
    // is read), and d0's and d2's are all there.
    std::size_t chunks = 0;
    for (const auto& key : node.keys("riakfs"))
        if (key.starts_with(".riakfs/chunks/")) chunks += node.get(object_path(key)).status == 200;
    CHECK(chunks == 2 * 4); // d0/large and d2/large: 4 chunks of 64 KiB each

    // A file written under d1 now stays out of Riak; the others still go.
    write_file(fx.mnt("d1/new"), "local only");
    write_file(fx.mnt("d2/new"), "to Riak");
    CHECK(node.wait_for(object_path("d2/new")).body == "to Riak");
    wait_status(mnt, queue_empty);
    CHECK(node.get(object_path("d1/new")).status == 404);

    // The namespace follows: verify of the whole mount agrees (d1's files are not mapped any
    // more, on both sides), once the new files' records are written.
    r = ctl({"verify", mnt});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 0);
    HttpReply record = node.get("/buckets/riakfs-ns/keys/" + url_key("/d1"));
    REQUIRE(record.status == 200);
    CHECK(record.body.find("\"large\"") == std::string::npos);
}

TEST_CASE("plan of an unmounted SOURCE: figures of a known tree under mapping rules",
          "[ctl][plan]") {
    TempDir dir("riakfs-ctl");
    const std::string source = dir / "source";
    std::filesystem::create_directories(source + "/logs/2024");
    std::filesystem::create_directories(source + "/tmp");
    write_file(source + "/logs/a.log", std::string(10000, 'a'));
    write_file(source + "/logs/2024/b.log", std::string(300000, 'b'));
    write_file(source + "/logs/empty.log", "");
    write_file(source + "/tmp/scratch", std::string(5000, 't'));
    REQUIRE(::link((source + "/logs/a.log").c_str(), (source + "/logs/a-link.log").c_str()) == 0);
    write_file(dir / "layout.json",
               R"({"rules": [{"path": "/logs/{rest**}", "bucket": "logs", "key": "{rest}"}]})");
    std::uint64_t freeable =
        static_cast<std::uint64_t>(lstat_ok(source + "/logs/2024/b.log").st_blocks) * 512;

    ProcResult r =
        ctl({"plan", source, "--config", dir / "layout.json", "--json", "--rate", "100K"});
    INFO(r.output << r.err);
    REQUIRE(r.exit_code == 0);
    json plan = json::parse(r.output);
    CHECK(plan["mapped"]["files"] == 4); // a.log, a-link.log, 2024/b.log, empty.log
    CHECK(plan["mapped"]["bytes"] == 320000);
    CHECK(plan["unmapped"]["files"] == 1);
    CHECK(plan["unmapped"]["bytes"] == 5000);
    CHECK(plan["to_send"]["bytes"] == 320000);
    CHECK(plan["in_riak"]["files"] == 0);
    CHECK(plan["kept_whole"]["files"] == 2); // the two names of a.log are never released
    CHECK(plan["freeable_bytes"] == freeable);
    CHECK(plan["eta_seconds"] == std::ceil(320000.0 / 102400));

    // Plain text; without a rate the time is unknown, not made up.
    r = ctl({"plan", source, "--bucket", "b"});
    INFO(r.output << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("mapped      5 files") != std::string::npos);
    CHECK(r.output.find("time        unknown") != std::string::npos);
    // Bad input: one line.
    r = ctl({"plan", dir / "missing"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("not a directory") != std::string::npos);
    r = ctl({"plan", source, "--config", dir / "missing.json"});
    CHECK(r.exit_code == 1);
    r = ctl({"plan", source, "--config", dir / "layout.json", "--bucket", "x"});
    CHECK(r.exit_code == 2);
}

TEST_CASE("migrate without a mount; a mount of SOURCE then sends nothing again", "[ctl][migrate]") {
    TempDir dir("riakfs-ctl");
    RiakNode node(dir.path());
    const Tree tree = make_tree();
    const std::string source = dir / "source";
    std::filesystem::create_directories(source);
    write_tree(tree, source);

    ProcResult r = ctl({"migrate", source, "--riak", node.url(), "--state-dir", dir / "state"});
    INFO(r.output << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("27 mapped files") != std::string::npos);
    CHECK(r.output.find("27 with a verified copy") != std::string::npos);
    for (size_t i = 0; i < 24; i += 5) // small files: the object is the file
        CHECK(node.get(object_path(tree.paths[i])).body == tree.contents[i]);
    CHECK(node.get("/buckets/riakfs-ns/keys/" + url_key("/d2")).status == 200);
    HttpReply stats = node.get("/stats");
    const auto puts = json::parse(stats.body).at("node_puts_total").get<std::uint64_t>();

    MountOptions opts = ctl_riak_mount(node, dir, "migrate", {"drain=on"});
    opts.source_dir = source;
    MountFixture fx(opts);
    json s = wait_status(fx.mountpoint(),
                         [](const json& s) { return s["drain"]["state"] == "finished"; });
    CHECK(s["drain"]["migrated"]["files"] == tree.paths.size());
    CHECK(s["copies"]["files"] == 0);
    r = ctl({"verify", fx.mountpoint()});
    INFO(r.output << r.err);
    CHECK(r.exit_code == 0);
    stats = node.get("/stats");
    CHECK(json::parse(stats.body).at("node_puts_total").get<std::uint64_t>() == puts);
    for (size_t i = 0; i < tree.paths.size(); i += 4)
        CHECK(read_file(fx.mnt(tree.paths[i])) == tree.contents[i]);

    // Bad input: one line.
    CHECK(ctl({"migrate", source}).exit_code == 2);
    r = ctl({"migrate", fx.mountpoint(), "--riak", node.url()});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("is a riakfs mount") != std::string::npos);
    r = ctl({"migrate", source, "--riak", "nonsense"});
    CHECK(r.exit_code == 1);
}

} // namespace test_ctl_tree
