// What the tests that drive riakfsctl share (test_drain, test_ctl_tree; test_tls runs it too):
// running it, reading a mount's status, waiting for a status to say something, a Riak mode's
// mount, and a tree of files written into SOURCE. RIAKFSCTL_BIN names the riakfsctl under test.
// Released placeholders (has_marker, is_released): riak_node.hpp.
#pragma once

#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace riakfs::it {

inline std::string ctl_bin() {
    const char* bin = std::getenv("RIAKFSCTL_BIN");
    REQUIRE(bin != nullptr);
    return bin;
}

inline ProcResult run_ctl(std::vector<std::string> args, std::chrono::seconds timeout) {
    args.insert(args.begin(), ctl_bin());
    return run_cmd(args, timeout);
}

// `riakfsctl status MNT --json`, which must succeed.
inline nlohmann::json ctl_status(const std::string& mnt, std::chrono::seconds timeout) {
    ProcResult r = run_ctl({"status", mnt, "--json"}, timeout);
    INFO("riakfsctl said: " << r.output << r.err);
    REQUIRE(r.exited);
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.output);
}

// Polls the status until `done` says yes (at most two minutes); returns the last status.
template <class Pred>
nlohmann::json wait_ctl_status(const std::string& mnt, std::chrono::seconds timeout, Pred done) {
    using namespace std::chrono_literals;
    auto deadline = std::chrono::steady_clock::now() + 120s;
    nlohmann::json s = ctl_status(mnt, timeout);
    while (!done(s) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
        s = ctl_status(mnt, timeout);
    }
    INFO("last status: " << s.dump());
    REQUIRE(done(s));
    return s;
}

// A Riak mode's mount against `node` (state in DIR/state) with 64 KiB chunks, so that the
// trees' larger files are manifests of several chunks; `more` adds options.
inline MountOptions ctl_riak_mount(const RiakNode& node, const TempDir& dir,
                                   const std::string& mode, std::vector<std::string> more) {
    MountOptions opts;
    opts.extra_opts = {"mode=" + mode, "riak=" + node.url(), "state_dir=" + dir / "state",
                       "chunk_size=65536"};
    for (auto& o : more)
        opts.extra_opts.push_back(o);
    return opts;
}

struct Tree {
    std::vector<std::string> paths;
    std::vector<std::string> contents;
};

inline void write_tree(const Tree& t, const std::string& root) {
    for (size_t i = 0; i < t.paths.size(); ++i) {
        std::filesystem::create_directories(
            std::filesystem::path(root + "/" + t.paths[i]).parent_path());
        write_file(root + "/" + t.paths[i], t.contents[i]);
    }
}

inline size_t released_count(const Tree& t, const std::string& source) {
    size_t n = 0;
    for (const auto& p : t.paths)
        n += is_released(source + "/" + p);
    return n;
}

} // namespace riakfs::it
