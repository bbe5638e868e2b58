// The kernel cache policy (issue 13) through real mounts: a mount over SOURCE with nothing else
// holding SOURCE takes cache=exclusive (a day of entry, attribute and page caching), and every
// change made through the mount is seen at once; a process holding SOURCE keeps cache=auto,
// whose changes beside the mount are seen after the 1 s timeout; and with cache=exclusive in
// mode=move, a release (which riakfs makes beside the requests) is told to the kernel, so that
// st_blocks shows the freed space at once instead of a day later.
#include "ctl_test_support.hpp"
#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

using namespace riakfs::it;
using namespace std::chrono_literals;

namespace {} // namespace

TEST_CASE("over SOURCE with nothing holding it: cache=exclusive, changes through the mount seen "
          "at once",
          "[cache]") {
    MountFixture fx(MountOptions::prepared([](const std::string& src) {
                        write_file(src + "/old", "old content");
                        ::mkdir((src + "/dir").c_str(), 0755);
                    }).over_source());
    CHECK(fx.stderr_text().find("cache=exclusive") != std::string::npos);
    // Cached for a day from here on: every change below goes through the mount, which keeps
    // the kernel's view right without any timeout.
    CHECK(stat_of(fx.mnt("old")).st_size == 11);
    CHECK(read_file(fx.mnt("old")) == "old content");
    write_file(fx.mnt("old"), "new and longer content");
    CHECK(stat_of(fx.mnt("old")).st_size == 22);
    CHECK(read_file(fx.mnt("old")) == "new and longer content");
    REQUIRE(::truncate(fx.mnt("old").c_str(), 3) == 0);
    CHECK(read_file(fx.mnt("old")) == "new");
    CHECK(::access(fx.mnt("dir/f").c_str(), F_OK) != 0); // a negative entry, cached
    write_file(fx.mnt("dir/f"), "made");
    CHECK(read_file(fx.mnt("dir/f")) == "made");
    REQUIRE(::rename(fx.mnt("dir/f").c_str(), fx.mnt("g").c_str()) == 0);
    CHECK(::access(fx.mnt("dir/f").c_str(), F_OK) != 0);
    CHECK(read_file(fx.mnt("g")) == "made");
    auto names = list_dir(fx.mnt(""));
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"dir", "g", "old"});
    REQUIRE(::chmod(fx.mnt("g").c_str(), 0600) == 0);
    CHECK((stat_of(fx.mnt("g")).st_mode & 07777) == 0600);
    REQUIRE(::unlink(fx.mnt("g").c_str()) == 0);
    CHECK(::access(fx.mnt("g").c_str(), F_OK) != 0);
    CHECK(list_dir(fx.mnt("dir")).empty());
}

TEST_CASE("a process holding SOURCE keeps cache=auto: its changes are seen after 1 s", "[cache]") {
    int held = -1;
    MountOptions opts = MountOptions::prepared([&](const std::string& src) {
        write_file(src + "/log", "line 1\n");
        held = ::open((src + "/log").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    });
    opts.same_dir = true;
    opts.warnings_expected = true; // the warning naming the process is the point
    MountFixture fx(opts);
    REQUIRE(held >= 0);
    const std::string err = fx.stderr_text();
    CHECK(err.find("cache=auto") != std::string::npos);
    CHECK(err.find(std::to_string(::getpid())) != std::string::npos); // names this process
    CHECK(err.find("cache=exclusive (the kernel") == std::string::npos);
    CHECK(stat_of(fx.mnt("log")).st_size == 7);
    // A write through the descriptor opened before the mount: beside the mount.
    REQUIRE(::write(held, "line 2\n", 7) == 7);
    ::close(held);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (stat_of(fx.mnt("log")).st_size != 14 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    CHECK(stat_of(fx.mnt("log")).st_size == 14);
    CHECK(read_file(fx.mnt("log")) == "line 1\nline 2\n");
}

TEST_CASE("cache=exclusive in mode=move: a release is told to the kernel at once", "[cache]") {
    TempDir dir("riakfs-cache");
    RiakNode node(dir.path());
    MountOptions opts;
    opts.same_dir = true;
    opts.extra_opts = {"mode=move", "riak=" + node.url(), "state_dir=" + dir / "state"};
    MountFixture fx(opts);
    REQUIRE(fx.stderr_text().find("cache=exclusive") != std::string::npos);
    const std::string body(64 << 10, 'x');
    write_file(fx.mnt("f"), body);
    // The kernel now holds the attributes with the blocks the data takes, for a day.
    CHECK(stat_of(fx.mnt("f")).st_blocks >= 128);
    wait_ctl_status(fx.mountpoint(), 30s,
                    [](const nlohmann::json& s) { return s["records"]["released"] == 1; });
    // Released beside the requests: the kernel was told, so the freed space shows now.
    auto deadline = std::chrono::steady_clock::now() + 5s;
    // (The marker, an extended attribute, may take a block of its own: at most 8 sectors stay.)
    while (stat_of(fx.mnt("f")).st_blocks > 8 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    CHECK(stat_of(fx.mnt("f")).st_blocks <= 8);
    CHECK(stat_of(fx.mnt("f")).st_size == static_cast<off_t>(body.size()));
    CHECK(read_file(fx.mnt("f")) == body); // from Riak
    // Written again: fetched back (beside the request), and the blocks are seen again.
    {
        int fd = ::open(fx.mnt("f").c_str(), O_WRONLY);
        REQUIRE(fd >= 0);
        REQUIRE(::pwrite(fd, "y", 1, 0) == 1);
        ::close(fd);
    }
    CHECK(stat_of(fx.mnt("f")).st_blocks >= 128);
    CHECK(read_file(fx.mnt("f")) == "y" + body.substr(1));
}
