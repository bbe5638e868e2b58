// Whether a LOOKUP of a small file with a verified copy should start fetching it from Riak.
//
// A cold open-read-close of a small file costs LOOKUP, OPEN, READ, FLUSH and RELEASE round trips
// through FUSE, and the GET. Started at the open, the GET overlaps only the READ's round trip, so
// the application waits for most of it; started at the LOOKUP, it overlaps the OPEN too. That is
// speculation: a `find -ls`, `ls -l` or stat scan looks files up without opening them, and each
// fetch would be a Riak read for nothing. So the speculation is measured: the nodes fetched at
// lookup are remembered (the last kWindow), an open of one counts as a hit, and when fewer than
// kMinHits of a window of kWindow fetches were opened, fetching at lookup stops for the next
// kPause lookups, then is tried again. An application that opens what it looks up keeps it on;
// a scan costs at most kWindow fetches per kPause lookups.
//
// What a lookup's fetch found (the file's path and its state record, looked up on the migration
// loop) is kept for the open that follows, which would otherwise look both up again on the FUSE
// thread (two readlinks of /proc, an fstat and a LevelDB read, each on the open's round trip).
// It is kept only while the node waits for its open, and forgotten at any rename (the path could
// be another's by then); the open still checks the record against the file's fstat.
//
// Any thread (the FUSE loops); a short mutex, never across I/O.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "lib/state/file_state.hpp"

namespace rfs::migrate {

class LookupPrefetch {
public:
    // Small, so that a scan pays little before it is recognised (a 2,000-file stat loop took
    // 10-20 % longer in mode=migrate with a window of 32: bench/run-riak's "stat, cold" row).
    static constexpr unsigned kWindow = 8;
    static constexpr unsigned kMinHits = 2;
    static constexpr unsigned kPause = 4096;

    // At a lookup of `node` (a small file that may have a verified copy): true if it should be
    // fetched now; then `node` counts as fetched at lookup.
    bool want(std::uint64_t node);
    // What the fetch at `node`'s lookup found: its path then and its state record.
    struct Found {
        std::string path;
        state::FileState rec;
    };
    // The fetch at `node`'s lookup found `what`: kept for its open, if it has not come yet and
    // no rename came since generation() was `generation` (read before the path was).
    void found(std::uint64_t node, Found what, std::uint64_t generation);
    std::uint64_t generation() const;
    // `node` was opened for reading: a hit if it was fetched at lookup; what that fetch found,
    // if it has found it already.
    std::optional<Found> opened(std::uint64_t node);
    // A rename: what the lookups found may name another path now.
    void forget_found();

    // For tests and stats.
    bool paused() const;

private:
    mutable std::mutex mu_;
    std::array<std::uint64_t, kWindow> recent_{};     // nodes fetched at lookup, 0: none
    std::array<std::optional<Found>, kWindow> found_; // what each one's fetch found
    std::uint64_t generation_ = 0;                    // renames seen
    unsigned next_ = 0;                               // next slot of recent_
    unsigned fetched_ = 0;                            // fetches in the current window
    unsigned hits_ = 0;                               // of them, opened
    unsigned pause_left_ = 0;                         // lookups to skip before trying again
};

} // namespace rfs::migrate
