// The namespace in Riak: keeps one record per directory of SOURCE (lib/layout/dir_record.hpp) in
// the namespace bucket, so that names, types, modes, owners, times, sizes, symlink targets and
// hard links can be rebuilt from Riak alone (restore.hpp).
//
// Design: the file-system hooks (ShadowObserver) only say which directories changed. Each one is
// recorded as a *dirty directory* in the state store (AuxKind::dirty_dir, a sync write) before
// anything is sent, then, after a short coalescing delay, its record is made again from the
// local directory as it is now (readdir + lstat beneath SOURCE, never through the mount) and
// PUT whole (durable write, a riakfs-version stamp so concurrent siblings resolve to the newest).
// Only then is the dirty mark dropped; a failure keeps it and retries with backoff, forever, and
// a restart resumes every dirty directory. Regenerating instead of patching makes every update
// idempotent and self-correcting, whatever order the hooks came in.
//
// A directory that is no longer there (removed, renamed away, replaced by a file) has its record
// deleted, and every directory under it that has a record is marked dirty in turn, which deletes
// those too. Which directories have a record is kept in the state store (AuxKind::dir_record,
// value: the number of parts), so a subtree's records are found without listing Riak keys; the
// same index finds records of subdirectories that vanished while their parent is regenerated.
// A dirty mark may be *recursive* (after a directory was renamed onto a name, and at the first
// start): regenerating such a directory marks each of its subdirectories recursively.
//
// At the first start (no record known and nothing dirty) the whole tree is marked: the walk runs
// in the background, two directories at a time, on the Migrator's loop, sharing it with copies.
//
// Entries: every subdirectory, and every other entry whose path the layout maps. Hard links:
// `inode` is "<st_dev>:<st_ino>" of the file, unless the state store maps that to another id
// (AuxKind::inode_id, written by a restore so that restored files keep their recorded ids).
//
// A directory's record is regenerated whole, so its cost grows with the directory: a directory of
// 100,000 entries takes seconds of readdir, lstat and encoding, and a rewrite of megabytes in
// Riak. One that keeps changing is therefore written again no sooner than kSlowFactor times its
// last write took (and never sooner than the coalescing delay): its record lags further behind,
// and the namespace's share of the loop stays bounded instead of starving the copies.
//
// Threading: the public calls may be made from any thread and never block; everything else runs
// on `context` (the Migrator's loop), where `store` lives. Blocking work (readdir, lstat, the
// state store's sync writes) delays the namespace, never a request.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/layout/dir_record.hpp"
#include "lib/layout/mapping.hpp"
#include "lib/state/state_store.hpp"
#include "lib/store/object_store.hpp"

namespace rfs::migrate {

class IntentJournal;

struct NamespaceOptions {
    std::chrono::milliseconds coalesce{500}; // changes within this are one record write
    // A directory whose last write took d waits at least kSlowFactor * d (at most kSlowMax)
    // before its next one.
    static constexpr unsigned kSlowFactor = 4;
    static constexpr std::chrono::milliseconds kSlowMax{600'000};
    std::chrono::milliseconds retry_first{200};
    std::chrono::milliseconds retry_max{30000};
    std::size_t max_record_bytes = layout::kDefaultMaxRecordBytes; // larger records are split
    unsigned parallel = 2;                                         // directories written at once
};

struct NamespaceStats {
    std::uint64_t pending = 0;         // dirty directories (waiting, being written, to retry)
    std::uint64_t records_written = 0; // directory records PUT (all their parts)
    std::uint64_t records_removed = 0; // directory records deleted
    std::uint64_t failures = 0;        // failed attempts (each is retried)
    std::string last_error;
};

// How an entry of a directory of SOURCE is stat'ed: fstatat(dir_fd, name, AT_SYMLINK_NOFOLLOW),
// 0 or an errno. The daemon's shows the mtime the mount shows (fs::LocalFs::lstat_as_shown): a
// release's punch or a fetch's writes move a file's mtime for a moment, and a record read then
// would keep that moment's mtime until the directory's next change (and a restore would give it
// to the file).
using EntryStat = std::function<int(int dir_fd, const char* name, struct stat* st)>;

// The record of `rel_dir` (relative to SOURCE, "" = SOURCE) made from the local directory
// `dir_fd`; non-directories the mapper does not map are left out. Errors are errno values.
// `lstat`: as EntryStat (null: plain fstatat).
state::Result<layout::DirRecord> read_local_dir(int dir_fd, std::string_view rel_dir,
                                                const layout::Mapper& mapper,
                                                const state::StateStore& state,
                                                const EntryStat& lstat = nullptr);

class NamespaceSync {
public:
    // `source_root`: a descriptor of SOURCE (O_PATH is enough). Everything passed must outlive
    // this object; `store` is used on `context` only.
    NamespaceSync(int source_root, const layout::Mapper& mapper, state::StateStore& state,
                  boost::asio::io_context& context, store::ObjectStore& store,
                  NamespaceOptions options = {});
    ~NamespaceSync();
    NamespaceSync(const NamespaceSync&) = delete;
    NamespaceSync& operator=(const NamespaceSync&) = delete;

    // Resumes the dirty directories the state store holds, or marks the whole tree when no
    // record is known yet. `context` must be running (or run later).
    void start();
    // Waits up to `drain` for the dirty directories to be written, then stops its work on the
    // loop (a write in progress ends first). What is left resumes at the next start.
    void stop(std::chrono::milliseconds drain);

    // Any thread, never blocks. Paths are relative to SOURCE.
    // The entry `rel_path` was created, removed, written or had its attributes changed: its
    // directory's record is made again; with `names_changed` (an entry was added or removed)
    // also the record holding that directory (its mtime and link count changed).
    // `note`: its note in the journal (set_journal; 0: none), settled once the marks are durable.
    void entry_changed(std::string rel_path, bool names_changed, std::uint64_t note = 0);
    // The directory `rel_dir` itself must be recorded again (created, removed); with
    // `recursive`, also everything under it (a directory renamed onto this name).
    void dir_changed(std::string rel_dir, bool recursive = false, std::uint64_t note = 0);
    // rename(2) of `from` to `to` (either may be a directory): both parents, the old name's
    // records (deleted when nothing is there any more) and the new name's subtree.
    void renamed(std::string from, std::string to);
    // Before start(): where the notes passed to the calls above are settled (null: nowhere).
    void set_journal(IntentJournal* journal) { journal_ = journal; }
    // Before start(): how the entries are stat'ed (EntryStat; null: plain fstatat).
    void set_entry_stat(EntryStat lstat) { lstat_ = std::move(lstat); }
    const EntryStat& entry_stat() const { return lstat_; }

    // True once nothing is dirty, being written or posted (tests, shutdown).
    bool wait_idle(std::chrono::milliseconds timeout);
    NamespaceStats stats() const;

private:
    using Clock = std::chrono::steady_clock;
    struct Dirty {
        bool recursive = false;
        bool again = false; // marked again while being written: write once more
        unsigned attempts = 0;
        Clock::time_point due;
    };

    void post(std::function<void()> work);
    // `durable`: the dirty mark is already in the state store.
    // Marks the other directories whose records list the file `rel_path`, when it has several
    // names (loop thread).
    void mark_other_names(const std::string& rel_path);
    void mark_on_loop(const std::string& key, bool recursive, bool durable);
    // The marks a change's hook made are durable: its journal note is settled.
    void settle(std::uint64_t note);
    void schedule(const std::string& key, Clock::time_point due);
    void wake();
    void note_failure(const std::string& key, const std::string& why);
    void update_pending();
    boost::asio::awaitable<void> worker(std::size_t index);
    // The delay before the next write of `key`: the coalescing delay, longer for a directory
    // whose writes are slow (see above).
    std::chrono::milliseconds coalesce_for(const std::string& key) const;
    std::optional<std::string> next_ready(Clock::time_point* next_due);
    // Makes Riak's record of `key` (a dir_record_key) match the local directory. An error string
    // on failure (the dirty mark stays).
    boost::asio::awaitable<std::optional<std::string>> sync_one(std::string key, bool recursive);
    boost::asio::awaitable<std::optional<std::string>> remove_record(const std::string& key);
    // Writes `parts` (split_dir_record) at `key`, deletes parts beyond them up to
    // `indexed_parts` (what the index says may exist), then sets the index to their count.
    boost::asio::awaitable<std::optional<std::string>>
    put_record(const std::string& key, const std::vector<layout::DirRecord>& parts,
               std::uint32_t indexed_parts);
    // Recorded subdirectories of `key` (dir_record_keys), from the state store's index.
    state::Result<std::vector<std::string>> recorded_children(const std::string& key) const;

    int source_root_;
    const layout::Mapper& mapper_;
    state::StateStore& state_;
    IntentJournal* journal_ = nullptr;
    EntryStat lstat_;
    boost::asio::io_context& context_;
    store::ObjectStore& store_;
    NamespaceOptions options_;

    // Loop thread only.
    bool started_ = false;
    bool stopping_ = false;
    std::map<std::string, Dirty> dirty_; // by dir_record_key
    std::multimap<Clock::time_point, std::string> schedule_;
    std::set<std::string> in_flight_;
    // How long the last write of each directory took, for those where it lengthens the delay.
    std::map<std::string, std::chrono::milliseconds> slow_;
    std::vector<std::unique_ptr<boost::asio::steady_timer>> timers_; // one per worker

    mutable std::mutex mu_;
    std::condition_variable cv_;
    NamespaceStats stats_;
    std::uint64_t posted_ = 0;   // posted calls not yet handled
    unsigned workers_alive_ = 0; // running worker coroutines
};

} // namespace rfs::migrate
