// Helpers of the migration-engine tests: a SOURCE tree and a state_dir in a temporary directory
// on a disk file system, and an object store the test can look into after the Migrator stops.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>

#include "lib/state/state_store.hpp"
#include "lib/store/memory_object_store.hpp"

#include <catch2/catch.hpp>

namespace rfs::migrate::test {

class TempTree {
public:
    TempTree() {
        std::string pattern = "/var/tmp/rfs-migrate-test.XXXXXX";
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        root_ = pattern;
        std::filesystem::create_directory(root_ + "/src");
        fd_ = ::open((root_ + "/src").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    ~TempTree() {
        ::close(fd_);
        std::filesystem::remove_all(root_);
    }
    std::string source() const { return root_ + "/src"; }
    std::string state_dir() const { return root_ + "/state"; }
    int source_fd() const { return fd_; }
    std::string src(const std::string& rel) const { return source() + "/" + rel; }

    void write(const std::string& rel, const std::string& data) const {
        std::filesystem::create_directories(std::filesystem::path(src(rel)).parent_path());
        std::ofstream out(src(rel), std::ios::binary | std::ios::trunc);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
    }

private:
    std::string root_;
    int fd_ = -1;
};

// Runs `task` on `context` (a loop another thread runs, e.g. the Migrator's) and waits for it.
template <typename T> T run_on(boost::asio::io_context& context, boost::asio::awaitable<T> task) {
    auto future = boost::asio::co_spawn(context, std::move(task), boost::asio::use_future);
    if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
        throw std::runtime_error("task on the loop hung");
    return future.get();
}

// A state store in `dir` for SOURCE `source`, as the tests' migrators use it.
inline std::unique_ptr<state::StateStore> open_state(const std::string& dir,
                                                     const std::string& source) {
    state::OpenOptions options;
    options.state_dir = dir;
    options.source = source;
    options.fingerprint = "test";
    auto opened = state::StateStore::open(options);
    REQUIRE(opened);
    return std::move(*opened);
}

} // namespace rfs::migrate::test
