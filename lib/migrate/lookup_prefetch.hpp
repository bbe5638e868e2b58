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
// Any thread (the FUSE loops); a short mutex, never across I/O.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

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
    // `node` was opened for reading: a hit if it was fetched at lookup.
    void opened(std::uint64_t node);

    // For tests and stats.
    bool paused() const;

private:
    mutable std::mutex mu_;
    std::array<std::uint64_t, kWindow> recent_{}; // nodes fetched at lookup, 0: none
    unsigned next_ = 0;                           // next slot of recent_
    unsigned fetched_ = 0;                        // fetches in the current window
    unsigned hits_ = 0;                           // of them, opened
    unsigned pause_left_ = 0;                     // lookups to skip before trying again
};

} // namespace rfs::migrate
