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
// Batches are applied in the order they were submitted (one atomic WriteBatch each is not
// promised: batches merged into one write land together, which is stronger). When the merged
// write fails, each batch is applied on its own, so one bad batch fails only its own caller.
// `done` is called on the writer thread: post from there to where the caller lives.
#pragma once

#include <condition_variable>
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

    explicit GroupCommit(StateStore& store);
    // Applies what was submitted already (each `done` is called), then ends the thread.
    ~GroupCommit();
    GroupCommit(const GroupCommit&) = delete;
    GroupCommit& operator=(const GroupCommit&) = delete;

    void submit(StateStore::Batch batch, Done done);

    std::uint64_t writes() const; // sync writes made (for tests and the log)

private:
    void run();

    StateStore& store_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::pair<StateStore::Batch, Done>> queue_;
    bool stopping_ = false;
    std::uint64_t writes_ = 0;
    std::thread thread_;
};

} // namespace rfs::state
