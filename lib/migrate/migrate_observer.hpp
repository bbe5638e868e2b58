// mode=migrate: shadow (every file written and closed, or read to its end, is copied into Riak
// in the background), and once a file's copy is verified, reads of it are served from Riak.
//
// At a read-only open, serve_reads() looks up the file's state record: when it says verified (or
// releasing/released) and still describes the local file (size, mtime, ctime, inode), the reads
// of that handle go to the RiakReader on the Migrator's loop, and are answered from there. Opens
// for writing stay local, and the shadow hooks copy the file again after the close: writes go to
// both, the local file at once and Riak once the new copy is verified (until then every new open
// reads the local file). A served handle checks the file before every read (fstat): once it was
// changed (through another handle or beside the mount), that handle reads SOURCE again.
//
// Riak failing (unreachable, slow beyond the reader's riak_timeout, or answering something else
// than the recorded copy) never fails a read: the read is answered from the local file, logged
// once per file, and the handle reads SOURCE from then on. Another version in Riak, or bytes that
// fail their SHA-256, also queue a new copy of the local file.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "lib/migrate/riak_reader.hpp"
#include "lib/migrate/shadow_observer.hpp"
#include "lib/state/state_store.hpp"

namespace rfs::migrate {

class MigrateObserver final : public ShadowObserver {
public:
    // `reader` runs on `migrator`'s loop (Migrator::context()).
    MigrateObserver(fs::LocalFs& fs, Migrator& migrator, state::StateStore& state,
                    std::shared_ptr<RiakReader> reader)
        : ShadowObserver(fs, migrator), state_(state), reader_(std::move(reader)) {}

    std::unique_ptr<fs::RemoteReads> serve_reads(fs::NodeId node, int flags, int fd) override;

    // Reads answered from Riak and from the local file after a failed attempt (any thread).
    std::uint64_t riak_reads() const { return riak_reads_.load(std::memory_order_relaxed); }
    std::uint64_t local_fallbacks() const { return fallbacks_.load(std::memory_order_relaxed); }

private:
    friend class RiakServedFile;
    // Whether this is the first failure reported for `path` (bounded: forgets all at 10000).
    bool first_failure(const std::string& path);

    state::StateStore& state_;
    std::shared_ptr<RiakReader> reader_;
    std::atomic<std::uint64_t> riak_reads_{0};
    std::atomic<std::uint64_t> fallbacks_{0};
    std::mutex logged_mu_;
    std::unordered_set<std::string> logged_;
};

} // namespace rfs::migrate
