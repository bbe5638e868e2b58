// The background drain: a sweeper that walks SOURCE and hands the files nobody touches to the
// Migrator, at a rate the operator sets, so that a migration finishes (access alone never reaches
// cold files).
//
// A pass walks SOURCE beneath the source root descriptor (no symlink followed, nothing outside
// SOURCE, no FUSE mount inside it, only files the layout maps), counts every regular file, and
// keeps the ones whose state record does not describe a verified copy of the file as it is now
// (size, mtime, ctime, inode): those are the candidates. Files Riak already holds are never
// queued, so a pass after a restart (clean or kill -9) sends only what is left. The candidates are
// sorted (DrainOrder) and handed over one by one, paced by two token buckets (bytes and files per
// second) and by a small bound on the files in flight: the migrator takes a drain file only when
// no closed file waits (Migrator::drain_file), so foreground copies always go first and its queue
// never fills with the tree. A failed copy is counted (with its reason), retried by the migrator
// on its own, and makes the drain wait before the next file (0.2 s doubling to 30 s while failures
// go on), so that a Riak outage is waited out rather than swept through.
//
// Progress (files and bytes total, migrated, released, failed and why) is written to the state
// store (AuxKind::drain) about once a second and at every change of state, so status shows it
// after a restart too. What remains is known from the walk; the pass itself is not recorded:
// the next start walks again and skips what is verified (a walk is a stat and a record read per
// file, no data).
//
// Runs on a thread of its own (walking is blocking file-system work), at a lower CPU and I/O
// priority. Controls (pause, resume, set_limits) and progress() may be called from any thread.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lib/layout/mapping.hpp"
#include "lib/migrate/drain_pacing.hpp"
#include "lib/state/state_store.hpp"

namespace rfs::migrate {

class Migrator;

struct DrainOptions {
    bool start = false; // -o drain=on: the first pass starts with the daemon
    DrainOrder order = DrainOrder::path;
    std::uint64_t bytes_per_second = 0; // 0: unlimited
    std::uint64_t files_per_second = 0; // 0: unlimited
    // Drain files handed to the migrator and not answered. Well above its upload slots
    // (MigratorOptions::parallel_uploads, 4): a file is answered only after its whole chain (its
    // PUT, the fsync of its verified record and, in mode=move, its release: two more records
    // and the release's own fsyncs), and those slots must stay busy meanwhile. A handed file
    // waits in memory as a path only, and foreground closes still go first: the migrator takes
    // a drain file only when no closed file waits. (bench/run-riak row "drain", mode=move: 0.28
    // of raw PUTs with 8 and the releases on the migration loop, 0.36-0.45 with 32 and the
    // releases beside it; bench/README.md "Latest runs".)
    unsigned in_flight = 32;
    // Yielding to the applications: while FUSE requests arrive (a request within the watch's
    // window, 200 ms), at most yield_in_flight drain files are in flight instead of in_flight,
    // so that the mount's own requests keep their latency (bench/run-riak "foreground p99
    // during drain"). 0 (-o drain_yield=off): the drain ignores the applications. Null
    // `foreground`: nothing to watch.
    // After each file, the drain also rests yield_rest_factor times as long as that file's copy
    // took (at most 2 s), so that it takes about 1/(1 + factor) of the time the applications
    // leave. (Measured on 2 cores with the Riak node on the same machine, 4 KiB files, mode=move:
    // one file in flight alone left the open+read+close p99 at 2.2-2.6x idle; with rests of
    // about 3 copies, 1.5-1.7x.)
    const ForegroundActivity* foreground = nullptr;
    unsigned yield_in_flight = 1;
    unsigned yield_rest_factor = 3;
    bool count_released = false; // mode=move: count the files released
    // A directory the walk never enters (state_dir, when it lies inside SOURCE).
    dev_t skip_dev = 0;
    ino_t skip_ino = 0;
};

struct DrainTally {
    std::uint64_t files = 0;
    std::uint64_t bytes = 0;
};

struct DrainProgress {
    enum class State { off, walking, running, paused, finished };
    State state = State::off;
    std::uint64_t pass = 0;   // passes started in this state_dir
    std::uint64_t walked = 0; // regular files seen by this pass's walk so far
    DrainTally total;         // mapped regular files found by the walk
    DrainTally migrated;      // of those, with a verified copy in Riak (before or by the drain)
    DrainTally released;      // of those, released (mode=move)
    DrainTally failed;        // whose copy failed in this pass (the migrator retries them)
    std::string last_error;
    std::uint64_t in_flight = 0;
    bool yielding = false;              // fewer files in flight while applications use the mount
    std::uint64_t bytes_per_second = 0; // the limits in force (0: unlimited)
    std::uint64_t files_per_second = 0;
    DrainOrder order = DrainOrder::path;
    double copy_files_per_second = 0; // the migrator's copies (drain and closes), last 10 s
    double copy_bytes_per_second = 0;

    DrainTally remaining() const; // total - migrated
};

std::string_view to_string(DrainProgress::State state);

// The persisted part of DrainProgress (AuxKind::drain): a small JSON object. decode returns
// nullopt for anything it cannot read (a record from a newer version is then rewritten).
std::string encode_drain_record(const DrainProgress& progress);
std::optional<DrainProgress> decode_drain_record(std::string_view text);

class Drain {
public:
    // `source_root` is a descriptor of SOURCE (O_PATH is enough); everything must outlive the
    // Drain, and the Drain must be stopped before the Migrator is.
    Drain(int source_root, const layout::Mapper& mapper, state::StateStore& state,
          Migrator& migrator, DrainOptions options);
    ~Drain();
    Drain(const Drain&) = delete;
    Drain& operator=(const Drain&) = delete;

    void start();
    void stop(); // files in flight are left to the migrator; the next start walks again

    // Stops handing over files (those in flight finish). False: there is no drain running.
    bool pause();
    // Continues a paused drain, or starts a new pass when it is off or finished.
    void resume();
    void set_limits(std::uint64_t bytes_per_second, std::uint64_t files_per_second);
    DrainProgress progress() const;

private:
    struct Shared;
    struct Walk;
    void run();
    void run_pass();
    void walk(std::vector<DrainCandidate>& out);
    // Whether the record of `path` describes this file's verified copy; sets *released.
    bool already_copied(const std::string& path, const struct stat& st, bool* released) const;
    // Waits (handling results) until `until`, a control change, or a result arrives.
    void wait_a_little(std::unique_lock<std::mutex>& lock,
                       std::chrono::steady_clock::time_point until);
    void handle_results(std::unique_lock<std::mutex>& lock);
    void persist(std::unique_lock<std::mutex>& lock, bool now);
    void sample_rates(std::unique_lock<std::mutex>& lock);
    bool paused_or_stopping() const; // lock held

    int source_root_;
    const layout::Mapper& mapper_;
    state::StateStore& state_;
    Migrator& migrator_;
    DrainOptions options_;
    std::shared_ptr<Shared> shared_; // also held by the migrator's callbacks
    ForegroundWatch watch_;          // the drain's thread only
    std::thread thread_;
};

} // namespace rfs::migrate
