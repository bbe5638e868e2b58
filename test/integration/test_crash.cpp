// Crash safety of mode=move through a real mount against a real riak-devnode: a writer keeps
// creating and rewriting files (small, chunk-sized, multi-chunk, empty) while the daemon copies,
// verifies and releases them, and the daemon is killed with SIGKILL at random moments, many
// times. After every restart each file whose write was closed before the crash must read back
// exactly (checked by digest), whether its data is local, released or being fetched back; at the
// end every file is released and Riak holds each one's last content.
#include "../support/test_seed.hpp"
#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

using namespace riakfs::it;
using namespace std::chrono_literals;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_crash {

namespace {

MountOptions crash_mount(const RiakNode& node, const TempDir& dir, const std::string& source) {
    MountOptions opts;
    opts.source_dir = source;
    opts.extra_opts = {"mode=move", "riak=" + node.url(), "state_dir=" + dir / "state",
                       "chunk_size=65536", "cache=never"};
    // A restart logs the copies and releases it resumes; a write cut by the crash may log.
    opts.warnings_expected = true;
    return opts;
}

// What the writer knows: the content of every file whose last write was closed, and the name
// being written when the mount went away (its content is then undefined).
struct Expected {
    std::mutex mu;
    std::map<std::string, std::string> content;
    std::optional<std::string> in_flight;
};

// Writes until a call fails (the daemon was killed) or `stop` is set.
void writer(const std::string& mnt, Expected& expected, std::atomic<bool>& stop,
            std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::size_t sizes[] = {0, 1, 100, 4096, 65535, 65536, 65537, 200000};
    while (!stop.load()) {
        std::string name = "f" + std::to_string(rng() % 24);
        std::string data = random_bytes(sizes[rng() % std::size(sizes)], rng());
        {
            std::lock_guard lock(expected.mu);
            expected.in_flight = name;
        }
        const std::string path = mnt + "/" + name;
        bool ok;
        if (rng() % 4 == 0 && expected.content.count(name)) {
            // Append to an existing (possibly released) file: its data comes back first.
            int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
            ok = fd >= 0;
            std::string tail = random_bytes(1 + rng() % 3000, rng());
            if (ok) ok = ::write(fd, tail.data(), tail.size()) == static_cast<ssize_t>(tail.size());
            if (fd >= 0) ok = ::close(fd) == 0 && ok;
            if (ok) {
                std::lock_guard lock(expected.mu);
                data = expected.content[name] + tail;
            }
        } else {
            int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            ok = fd >= 0;
            if (ok && !data.empty())
                ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
            if (fd >= 0) ok = ::close(fd) == 0 && ok;
        }
        if (!ok) return; // the mount went away: `name` stays in flight
        std::lock_guard lock(expected.mu);
        expected.content[name] = data;
        expected.in_flight.reset();
        if (rng() % 3 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
    }
}

void check_all(const std::string& mnt, Expected& expected, const std::string& src = "") {
    std::lock_guard lock(expected.mu);
    for (const auto& [name, data] : expected.content) {
        INFO(name << " (" << data.size() << " bytes)");
        struct stat st {};
        if (!src.empty()) ::lstat((src + "/" + name).c_str(), &st);
        INFO("source: size " << st.st_size << " blocks " << st.st_blocks << " marker "
                             << ::getxattr((src + "/" + name).c_str(), "trusted.riakfs.released",
                                           nullptr, 0));
        auto got = try_read_file(mnt + "/" + name);
        REQUIRE(got);
        CHECK(got->size() == data.size());
        CHECK(digest(*got) == digest(data));
    }
}

} // namespace

TEST_CASE("move: kill -9 at random moments loses and corrupts nothing", "[move][crash]") {
    TempDir dir("riakfs-crash");
    RiakNode node(dir.path());
    const std::string source = dir / "src";
    REQUIRE(::mkdir(source.c_str(), 0755) == 0);
    Expected expected;
    // A fixed sequence of operations and kill times, unless RIAKFS_TEST_SEED names another (for
    // sweeps over many).
    const std::uint64_t seed =
        rfs::test::fixed_or_test_seed("move: kill -9 at random moments", 20261204);
    INFO("seed " << seed << " (RIAKFS_TEST_SEED=" << seed << " replays the choices)");
    std::mt19937_64 rng(seed);
    constexpr int kRounds = 10;
    int released_at_round_start = 0;
    for (int round = 0; round < kRounds; ++round) {
        INFO("round " << round);
        MountFixture fx(crash_mount(node, dir, source));
        for (int i = 0; i < 24; ++i)
            if (::getxattr(fx.src("f" + std::to_string(i)).c_str(), "trusted.riakfs.released",
                           nullptr, 0) > 0)
                ++released_at_round_start;
        {
            std::lock_guard lock(expected.mu);
            if (expected.in_flight) {
                // Cut mid-write: any content, but readable, and rewritten below. A name never
                // written before may not exist (the kill came before its create), and then
                // not in SOURCE either.
                const std::string& name = *expected.in_flight;
                const bool known = expected.content.count(name) > 0;
                errno = 0;
                auto got = try_read_file(fx.mnt(name));
                const int err = got ? 0 : errno;
                INFO(name << " (cut mid-write; " << (known ? "written before" : "new")
                          << "): " << (got ? "readable" : errname(err)));
                if (!got && !known && err == ENOENT) {
                    struct stat st;
                    CHECK(::lstat(fx.src(name).c_str(), &st) != 0);
                } else {
                    CHECK(got.has_value());
                }
                expected.content.erase(name);
                expected.in_flight.reset();
            }
        }
        // What was closed before the last crash is all there, released or not.
        check_all(fx.mountpoint(), expected, fx.source());
        std::atomic<bool> stop{false};
        std::thread w(writer, fx.mountpoint(), std::ref(expected), std::ref(stop), rng());
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 1500));
        // The writer stops at its first failed call; the dead mount stays until it has, so that
        // no write lands in the bare directory under it.
        fx.kill_daemon();
        stop = true;
        w.join();
    }
    // A last mount settles: every file is copied, verified and (but empty ones) released.
    MountFixture fx(crash_mount(node, dir, source));
    {
        std::lock_guard lock(expected.mu);
        if (expected.in_flight) expected.content.erase(*expected.in_flight);
        expected.in_flight.reset();
    }
    check_all(fx.mountpoint(), expected);
    // The crashes did hit files in every state: some were released between them.
    CHECK(released_at_round_start > 0);
    auto deadline = std::chrono::steady_clock::now() + 120s;
    for (const auto& [name, data] : expected.content) {
        if (data.empty()) continue;
        INFO(name);
        bool released = false;
        while (!released && std::chrono::steady_clock::now() < deadline) {
            released = ::getxattr(fx.src(name).c_str(), "trusted.riakfs.released", nullptr, 0) > 0;
            if (!released) std::this_thread::sleep_for(50ms);
        }
        CHECK(released);
    }
    check_all(fx.mountpoint(), expected);
    for (const auto& [name, data] : expected.content) {
        if (data.empty() || data.size() > 65536) continue; // whole objects: compare the body
        INFO(name);
        CHECK(digest(node.get("/buckets/riakfs/keys/" + url_key(name)).body) == digest(data));
    }
}

} // namespace test_crash
