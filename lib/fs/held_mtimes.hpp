// The mtimes LocalFs shows for files whose data riakfs itself is changing in place (mode=move's
// release punches a file's data out, a fetch writes it back), which moves the file's mtime for
// a moment although the user's mtime is put back at the end (futimens). An application must
// never see that moment: a stat that lands in it would show the punch's or the write's time,
// and the kernel may cache it. While a file is held, every attribute LocalFs answers for it
// carries the held mtime instead of SOURCE's.
//
// The readers are the hot paths (lookup, getattr), on every loop: with no file held they pay
// two atomic loads around their stat and take no lock. The holds change a counter that a reader
// reads before and after its stat (as a seqlock's readers do), so a stat that overlapped a hold
// beginning or ending is recognised and answered under the lock instead; no reader ever waits for
// a release or a fetch (a fetch waits for Riak).
//
// Any thread.
#pragma once

#include "lib/fs/inode_table.hpp"

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <unordered_map>

namespace rfs::fs {

class HeldMtimes {
public:
    // `id` shows `mtime` until the matching end(). Holds of one file nest (the first one's mtime
    // is shown until the last one ends).
    void begin(SrcId id, const timespec& mtime);
    // Ends one hold of `id`; true when there was one.
    bool end(SrcId id);

    // Calls `do_stat(st)` (returning 0 or an errno) and answers the held mtime if the object it
    // found is held at that moment. The result is as if the stat had been made either before the
    // hold began or after it ended, or within it with the held mtime.
    template <class Stat> int stat(struct stat* st, Stat do_stat) {
        const std::uint64_t before = state_.load(std::memory_order_seq_cst);
        if (int err = do_stat(st)) return err;
        // Nothing held, and no hold began or ended during the stat: what it saw is the user's.
        if (active(before) == 0 && state_.load(std::memory_order_seq_cst) == before) return 0;
        return stat_slow(st, before, do_stat);
    }

    // Files held now (for tests).
    std::size_t held() const;

private:
    // state_: the count of begin() and end() calls so far in the high 32 bits, the holds in
    // force in the low 32: every change moves the high part, so equal values mean "no change".
    static constexpr std::uint64_t kEvent = std::uint64_t{1} << 32;
    static std::uint32_t active(std::uint64_t state) { return static_cast<std::uint32_t>(state); }

    template <class Stat> int stat_slow(struct stat* st, std::uint64_t before, Stat& do_stat) {
        std::lock_guard lock(mu_);
        if (apply(st)) return 0;
        // Not held now, and the set of holds is the same as before the stat: it was not held
        // during the stat either.
        if (state_.load(std::memory_order_seq_cst) == before) return 0;
        // A hold began or ended while it stated; this one may have been held then and its stat
        // may have seen the moved mtime. Again under the lock, where no hold begins or ends
        // (rare: only a stat a hold's change overlaps, which lasts a system call, comes here).
        if (int err = do_stat(st)) return err;
        apply(st);
        return 0;
    }
    // Under mu_: replaces the mtime of a held file; false when it is not held.
    bool apply(struct stat* st) const;

    struct Held {
        timespec mtime;
        unsigned count;
    };
    std::atomic<std::uint64_t> state_{0};
    mutable std::mutex mu_;
    std::unordered_map<SrcId, Held, SrcIdHash> held_;
};

} // namespace rfs::fs
