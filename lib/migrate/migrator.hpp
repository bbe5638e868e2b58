// The migration loop: copies files that were written or read into Riak, in the background.
//
// A Migrator owns one event loop thread of its own (an Asio io_context on io_uring), where the
// Riak client, the object store and every upload live. FUSE handlers only hand it paths
// (file_closed(), from any thread) and never wait for it; its blocking work (reading the file it
// copies, the state store's synchronous writes) delays migration, never a request.
//
// Every queued path is first recorded as dirty in the state store (lib/state), durably, before
// anything is sent; a restart (clean or kill -9) resumes every path that had not reached
// `verified`. A path whose upload fails (Riak unreachable, 5xx, timeouts) stays dirty with the
// error recorded and is retried with exponential backoff, forever: local files keep working
// whatever Riak does. A file that changed while it was copied is copied again. A path no layout
// rule maps stays local: it is never queued.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "lib/layout/mapping.hpp"
#include "lib/state/state_store.hpp"
#include "lib/store/object_store.hpp"

namespace rfs::migrate {

struct MigratorOptions {
    std::uint64_t chunk_size = 1 << 20;
    unsigned parallel_uploads = 4;
    std::chrono::milliseconds retry_first{200};
    std::chrono::milliseconds retry_max{30000};
};

struct MigratorStats {
    std::uint64_t queued = 0;       // paths waiting or being copied
    std::uint64_t files_copied = 0; // verified copies made since start
    std::uint64_t bytes_copied = 0;
    std::uint64_t failures = 0; // failed attempts (each is retried)
    std::uint64_t skipped = 0;  // already verified and unchanged, gone, or not a regular file
    std::string last_error;
};

class Migrator {
public:
    // Makes the object store on the migrator's own loop (the real one wraps a riak::Client).
    using StoreFactory =
        std::function<std::unique_ptr<store::ObjectStore>(boost::asio::io_context&)>;

    // `source_root` is an O_PATH (or any) descriptor of SOURCE; paths are resolved beneath it
    // without following symlinks. The state store and mapper must outlive the Migrator.
    Migrator(int source_root, const layout::Mapper& mapper, state::StateStore& state,
             StoreFactory make_store, MigratorOptions options = {});
    ~Migrator();
    Migrator(const Migrator&) = delete;
    Migrator& operator=(const Migrator&) = delete;

    // Starts the loop and queues every path the state store still has pending.
    void start();
    // Waits up to `drain` for the queue to empty, then stops. What is left stays pending in the
    // state store for the next start.
    void stop(std::chrono::milliseconds drain);

    // A file was closed after a write (`written`), or read to its end: copy it if the layout
    // maps it and Riak does not hold this very content already. Any thread; never blocks on the
    // network or the disk.
    void file_closed(std::string rel_path, bool written);

    // True once nothing is queued or copying (for tests and the shutdown drain).
    bool wait_idle(std::chrono::milliseconds timeout);
    MigratorStats stats() const;

    // The migrator's loop and its object store, for work that must run there (reads of
    // migrated files; tests). The store is used only on that loop's thread, after start().
    boost::asio::io_context& context() { return context_; }
    store::ObjectStore& object_store() { return *store_; }

private:
    boost::asio::awaitable<void> worker();
    boost::asio::awaitable<void> migrate_one(std::string path);
    void closed_on_loop(const std::string& path, bool written);
    void enqueue_on_loop(const std::string& path);
    void retry_later(const std::string& path, unsigned attempts);
    void forget(const std::string& path);
    void note_failure(const std::string& path, const std::string& why);

    int source_root_;
    const layout::Mapper& mapper_;
    state::StateStore& state_;
    StoreFactory make_store_;
    MigratorOptions options_;

    boost::asio::io_context context_;
    std::unique_ptr<store::ObjectStore> store_;
    std::thread thread_;
    std::unique_ptr<boost::asio::steady_timer> wakeup_; // workers wait on it for work
    bool stopping_ = false;                             // loop thread only

    // Loop thread only.
    std::deque<std::string> queue_;
    std::unordered_set<std::string> queued_;
    std::unordered_map<std::string, bool> copying_; // path -> closed again meanwhile
    std::unordered_set<std::string> known_;         // queued, copying or waiting to retry
    std::unordered_map<std::string, unsigned> attempts_;

    mutable std::mutex stats_mu_;
    std::condition_variable idle_cv_;
    MigratorStats stats_;             // stats_.queued mirrors known_.size()
    std::uint64_t closes_posted_ = 0; // file_closed() calls the loop has not handled yet
};

} // namespace rfs::migrate
