// Group commit for the state store: batches submitted from any thread are applied by one writer
// thread of its own, all those waiting at the time in one LevelDB sync write (one fsync).
//
// Why: the migrator records every file dirty (at close) and verified (after the copy), durably.
// One sync write per record made the migration loop wait for the disk once per file and phase;
// an fsync takes 1-5 ms, so a few hundred small files a second was the ceiling whatever Riak
// did, and the loop's other uploads stood still meanwhile. Here the loop hands the records over
// and goes on; the writer makes whatever arrived during one fsync durable with the next, so the
// fsyncs per file fall with the load instead of rising with it. Durability is unchanged: `done`
// runs only once the record is on disk, so a caller that waits for it (before sending a file,
// before releasing its data) has exactly the guarantee of StateStore::apply.
//
// The writer waits a little (Options::linger, 1 ms, counted from the submission of the first
// batch it will take) before each write, unless max_batch batches are waiting already or it is
// being destroyed. Why: files close one at a time, a few hundred microseconds apart, and an fsync
// here took about as long, so without the wait the writer made about one sync write per file (of
// its three records) while 2,000 small files were created and copied in mode=shadow, and its
// fsyncs took a fifth of the daemon's CPU, on the cores the copies and the applications need;
// with it, 0.3 per file and a third of that CPU (bench/README.md, "The state writer's linger").
// What the wait delays: the next step of a copy (records are written by the batch, so throughput
// does not suffer), and, in mode=move, an open for writing that meets a release in progress (it
// waits for the release's two records). The namespace operations write their records directly,
// not through here.
//
// Batches are applied in the order they were submitted (one atomic WriteBatch each is not
// promised: batches merged into one write land together, which is stronger). When the merged
// write fails, each batch is applied on its own, so one bad batch fails only its own caller.
// `done` is called on the writer thread: post from there to where the caller lives.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "lib/state/state_store.hpp"

namespace rfs::state {

class GroupCommit {
public:
    using Done = std::function<void(Result<void>)>;
    struct Options {
        std::chrono::microseconds linger{1000}; // zero: write as soon as anything is queued
        std::size_t max_batch = 256;            // write at once when this many are waiting
    };

    explicit GroupCommit(StateStore& store) : GroupCommit(store, Options{}) {}
    GroupCommit(StateStore& store, Options options);
    // Applies what was submitted already (each `done` is called), then ends the thread.
    ~GroupCommit();
    GroupCommit(const GroupCommit&) = delete;
    GroupCommit& operator=(const GroupCommit&) = delete;

    void submit(StateStore::Batch batch, Done done);

    std::uint64_t writes() const; // sync writes made (for tests and the log)

private:
    void run();

    StateStore& store_;
    const Options options_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::pair<StateStore::Batch, Done>> queue_;
    std::chrono::steady_clock::time_point first_queued_; // of queue_'s first batch
    bool stopping_ = false;
    std::uint64_t writes_ = 0;
    std::thread thread_;
};

} // namespace rfs::state
