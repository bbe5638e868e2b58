// Helpers of the migration-engine tests: a SOURCE tree and a state_dir in a temporary directory
// on a disk file system, an object store the test can look into after the Migrator stops, and
// one whose GETs or PUTs wait while the test holds them (GatedStore).
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <future>

#include "lib/layout/mapping.hpp"
#include "lib/state/placeholder.hpp"
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

// `file` is a released placeholder: it carries the release marker and holds no data.
inline bool is_released_placeholder(const std::string& file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    auto marker = state::read_marker(fd);
    bool empty = ::lseek(fd, 0, SEEK_DATA) < 0 && errno == ENXIO;
    ::close(fd);
    return marker && *marker && empty;
}

// The in-memory store with a gate on get() and one on put(): while a gate is closed, every call
// of its kind waits at it, so a test can act while a GET or a copy is on its way. Gates are
// opened and closed on the store's loop thread (or before the loop runs).
class GatedStore final : public store::ObjectStore {
public:
    enum class Gate { get, put };
    explicit GatedStore(boost::asio::io_context& context)
        : mem(context), get_gate_(context), put_gate_(context) {}

    store::Task<store::Fetched> get(proto::ObjectId id) override {
        return through(get_gate_,
                       [this, id = std::move(id)]() mutable { return mem.get(std::move(id)); });
    }
    store::Task<store::Fetched> head(proto::ObjectId id) override {
        return mem.head(std::move(id));
    }
    store::Task<std::string> put(proto::ObjectId id, store::Object object,
                                 store::PutOptions options) override {
        if (refuse_put && refuse_put(id)) return refused_put();
        return through(put_gate_, [this, id = std::move(id), object = std::move(object),
                                   options = std::move(options)]() mutable {
            return mem.put(std::move(id), std::move(object), std::move(options));
        });
    }
    store::Task<bool> remove(proto::ObjectId id, store::RemoveOptions options) override {
        if (refuse_removals ||
            (refuse_chunk_removals && id.key.starts_with(layout::kReservedKeyPrefix)))
            return refused();
        return mem.remove(std::move(id), std::move(options));
    }
    store::Task<std::vector<std::string>> list_keys(proto::BucketId bucket) override {
        return mem.list_keys(std::move(bucket));
    }

    void close(Gate gate) { gate_of(gate).closed = true; }
    void open(Gate gate) {
        gate_of(gate).closed = false;
        gate_of(gate).timer.cancel();
    }

    store::MemoryObjectStore mem;
    std::atomic<bool> held{false}; // a call has waited at a closed gate
    // While set, deletes of chunks fail as with Riak down (every other call works).
    std::atomic<bool> refuse_chunk_removals{false};
    // While set, every delete fails so.
    std::atomic<bool> refuse_removals{false};
    // Puts for which this says yes fail as with Riak down (set before the calls it is for, on
    // the store's loop).
    std::function<bool(const proto::ObjectId&)> refuse_put;

private:
    struct GateState {
        explicit GateState(boost::asio::io_context& context)
            : timer(context, boost::asio::steady_timer::time_point::max()) {}
        boost::asio::steady_timer timer; // cancelled when the gate opens
        bool closed = false;
    };
    GateState& gate_of(Gate gate) { return gate == Gate::get ? get_gate_ : put_gate_; }

    static store::Task<std::string> refused_put() {
        co_return riak::make_error(riak::Errc::connection_refused, "connection refused (test)",
                                   ECONNREFUSED);
    }
    static store::Task<bool> refused() {
        co_return riak::make_error(riak::Errc::connection_refused, "connection refused (test)",
                                   ECONNREFUSED);
    }

    // `call` makes the store's call once the gate is open.
    template <class Call> auto through(GateState& gate, Call call) -> decltype(call()) {
        while (gate.closed) {
            held = true;
            boost::system::error_code ec;
            co_await gate.timer.async_wait(
                boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        }
        auto pending = call();
        co_return co_await std::move(pending);
    }

    GateState get_gate_;
    GateState put_gate_;
};

} // namespace rfs::migrate::test
