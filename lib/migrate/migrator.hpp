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
//
// The records of a file's copy (dirty at a close, verified after the copy) go through a
// state::GroupCommit: its own thread makes all records of the moment durable with one fsync,
// while the loop keeps the other uploads going. Why: one sync write per record and phase, on the
// loop, made the disk the limit (three fsyncs per small file, and no upload moved during them).
// The loop still waits for durability where it matters: a closed file is queued only once its
// dirty mark is on disk, and a copy counts as verified, and may be released (mode=move), only
// once its verified record is. A small file's plain copy writes no `uploading` record: the
// durable `dirty` resumes the same way, and one sent through the writer without waiting could
// land after a rename or unlink of the path had moved its records (the copy ended "again"
// meanwhile), a record at a path with no file that nothing would ever drop. (LevelDB queues
// every write behind the fsync in progress, so the loop writes nothing itself on a file's common
// path.) A close during a copy
// makes that copy stale at once, before its mark lands, so that the copy's verified record can
// never land after the mark and hide the close.
//
// Namespace operations reach Riak through the same loop. An unlink or rmdir (path_removed()) and
// a rename (path_renamed()) change the state records at once, in one atomic batch with a
// *removal record* per Riak object that no path claims any more (lib/state/README.md), and
// queue the copies of the renamed paths. A removal deletes the object at its key (a manifest's
// chunks first, then the key with RemoveOptions::matching of what it read) and is retried with
// backoff like a copy, across restarts too. Copies and removals of one path never overlap: a
// removal that arrives while the path is being copied waits for that copy to end, so the copy
// just finished is deleted, not left behind. A removal whose path holds a file again that maps
// to the same object (re-created, renamed back) turns into a copy of that file instead. A
// removal of an object that open handles of a released file still read, and a copy of another
// file to its key, wait until the last of those handles is closed (hold_open_copy).
//
// mode=move releases a file's data once its verified record is durable (release_if_unused). Its
// records (releasing, then released) go through the group commit, and its local calls (the
// marker's fsync, the punch, its fsync, the times put back) run on release threads of their
// own: the loop never waits for the disk, and the fsyncs of several files' releases overlap.
// (On the loop, four fsyncs per file held every other copy: bench/run-riak's drain row in
// mode=move went from 0.28 of raw PUTs to 0.36-0.45 with this and more drain files in flight.)
// While a release is in flight its path is copied and removed by no one, the ReleaseGate keeps
// every handle that needs the data out until its released record is durable, and namespace
// operations wait (in order) until no release is in flight, so that a release never writes its
// record at a name a rename or unlink has just moved or erased.
#pragma once

#include "lib/migrate/file_turns.hpp"
#include "lib/migrate/long_waits.hpp"
#include "lib/migrate/open_copies.hpp"
#include "lib/migrate/pending_uploads.hpp"
#include "lib/migrate/uploader.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lib/common/unique_fd.hpp"
#include "lib/layout/mapping.hpp"
#include "lib/state/group_commit.hpp"
#include "lib/state/placeholder.hpp"
#include "lib/state/state_store.hpp"
#include "lib/store/object_store.hpp"

namespace rfs::migrate {

class IntentJournal;

class LocalPins;
class ReleaseGate;

struct MigratorOptions {
    std::uint64_t chunk_size = 1 << 20;
    // mode=move: once a file's copy is verified and nothing pins it, its local data is released
    // (lib/state/placeholder.hpp). Null: files keep their data.
    ReleaseGate* release = nullptr;
    // Paths recalled with riakfsctl recall (local_pins.hpp): never released. Null: none.
    const LocalPins* pins = nullptr;
    unsigned parallel_uploads = 4;
    std::chrono::milliseconds retry_first{200};
    std::chrono::milliseconds retry_max{30000};
    // Called (on a release thread of the migrator, or on its loop when a release resumed at
    // start is finished) before a file's data is released, with the mtime it keeps: the punch
    // moves it until the release puts it back, and what the mount answers meanwhile must show
    // the user's (LocalFs::source_changing). Always followed by source_changed.
    std::function<void(dev_t, ino_t, const timespec&)> source_changing;
    // Called (where source_changing was) after a file's data was released, or a release failed
    // once source_changing was called, so that the kernel's cached attributes of it (st_blocks,
    // ctime) are dropped and the mtime is no longer held (LocalFs::source_changed).
    std::function<void(dev_t, ino_t)> source_changed;
    // The namespace changes' write-ahead notes (intent_journal.hpp): each batch recording an
    // unlink, rmdir or rename marks its note applied. Null: none are noted.
    IntentJournal* journal = nullptr;
    // A copy or a removal kept waiting this long for other work (a move, a copy) is logged,
    // with what it waits for (long_waits.hpp); such waits end by themselves within seconds.
    std::chrono::milliseconds long_wait{120000};
};

struct MigratorStats {
    std::uint64_t queued = 0;       // paths waiting or being copied, and removals_queued
    std::uint64_t files_copied = 0; // verified copies made since start
    std::uint64_t bytes_copied = 0;
    std::uint64_t failures = 0; // failed attempts (each is retried)
    std::uint64_t skipped = 0;  // already verified and unchanged, gone, or not a regular file
    std::uint64_t removals_queued = 0; // objects waiting to be (or being) deleted from Riak
    std::uint64_t objects_removed = 0; // objects deleted (chunks not counted) since start
    std::uint64_t files_relocated = 0; // copies moved to a new key after a rename
    std::uint64_t files_released = 0;  // mode=move: local data released since start
    std::uint64_t bytes_freed = 0;
    // Copies and removals waiting for other work for over MigratorOptions::long_wait, at the
    // last look (each is in the log, long_waits.hpp).
    std::uint64_t long_waits = 0;
    std::string last_error;
    std::vector<std::string> recent_errors; // the last few failures, oldest first
};

// What one copy of a path came to, for the background drain (drain.hpp).
struct CopyResult {
    enum class Kind {
        copied,    // sent, read back and verified (and released, in mode=move, if unused)
        current,   // Riak held this very content already (or the copy moved with a rename)
        skipped,   // gone, not a regular file, not mapped, or a placeholder that cannot be sent
        failed,    // this attempt failed (error says why); the migrator retries it with backoff
        again,     // changed during the copy: it is copied again (internal: never reported)
        recording, // verified; its record is on its way to disk, and copy_ended() follows
                   // (internal: never reported)
    };
    Kind kind = Kind::skipped;
    std::string error;
};

class Migrator {
public:
    static constexpr std::size_t kRecentErrors = 8; // MigratorStats::recent_errors
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
    // `note`: its note in MigratorOptions::journal (0: none), settled once the copy is queued
    // durably (or none is needed).
    void file_closed(std::string rel_path, bool written, std::uint64_t note = 0);
    // Whether `rel_path` is a regular file in SOURCE now (not following a last symlink).
    bool holds_regular_file(const std::string& rel_path) const;

    // The background drain (drain.hpp): copy `rel_path` unless Riak holds its content already,
    // with less priority than any closed file (a worker takes it only when no close waits).
    // `done` is called once, on the migrator's loop, with the outcome of the copy that answers
    // for it (one already queued for a close counts); not at all if the migrator stops first.
    // Nothing is recorded before the copy starts: the drain finds the file again after a crash.
    // The caller keeps few of these in flight: each waits in memory only.
    void drain_file(std::string rel_path, std::function<void(CopyResult)> done);

    // mode=move: a handle of `rel_path` closed without changing it; if its copy is verified and
    // nothing pins it any more, release its data now. Any thread; never blocks.
    void release_when_unused(std::string rel_path);

    // `rel_path` was unlinked, or removed with rmdir: the Riak objects recorded for it (and for
    // anything recorded under it) are deleted. Any thread; never blocks.
    // `note`: the change's intent in MigratorOptions::journal (0: none), which the batch
    // recording it marks applied.
    void path_removed(std::string rel_path, std::uint64_t note = 0);
    // rename(2) of `from` to `to` (both relative to SOURCE), RENAME_EXCHANGE when `exchange`:
    // the records at and under the old names move, the objects at their old keys are deleted,
    // and the renamed files are copied under their new keys. Any thread; never blocks.
    void path_renamed(std::string from, std::string to, bool exchange, std::uint64_t note = 0);

    // A handle of the released file `file` reads its only copy, the object at `where` of
    // `version`, from Riak (or its data is being fetched back): until the hold returned is let go
    // (its last copy dropped, on any thread), no removal deletes that object or another of that
    // version, no copy of another file replaces it, and no chunk of that version a copy replaced
    // is deleted (open_copies.hpp). Any thread; never blocks. The hold may outlive the Migrator.
    std::shared_ptr<void> hold_open_copy(const layout::Location& where, const std::string& version,
                                         FileId file);

    // True once nothing is queued or copying (for tests and the shutdown drain).
    bool wait_idle(std::chrono::milliseconds timeout);
    MigratorStats stats() const;

    // The migrator's loop and its object store, for work that must run there (reads of
    // migrated files; tests). The store is used only on that loop's thread, after start().
    boost::asio::io_context& context() { return context_; }
    store::ObjectStore& object_store() { return *store_; }
    // A released file's relocation and its fetch back take turns (loop thread only).
    FileTurns& file_turns() { return file_turns_; }

private:
    boost::asio::awaitable<void> worker();
    boost::asio::awaitable<CopyResult> migrate_one(std::string path);
    CopyResult gone_before_copy(const std::string& path);
    // The key ordering above: what a copy or a removal waits for, and the bookkeeping.
    // (`why`, when not null and the answer is true: what it waits for, for the log.)
    bool copy_must_wait(const std::string& path, std::string* why = nullptr) const;
    bool removal_must_wait(const std::string& path, std::string* why = nullptr) const;
    // Now and then, logs the copies and removals that have waited for long (long_waits.hpp).
    boost::asio::awaitable<void> watch_long_waits();
    // Whether the moves still to come, followed from the one of `path` (its record names the
    // key `from`; its own key is `to`, which another move is still to leave), come back to
    // `from`: each waits for the next, so one of them has to park its copy (relocate_one).
    bool move_ring(const std::string& path, const std::string& from, const std::string& to) const;
    void note_removal_target(const std::string& path);
    // Where a removal of `path`'s object at `where` is recorded: `path`, unless a removal of
    // another object waits there (see kExtraSlot in migrator.cpp).
    // (`taken`: a slot this batch fills already, skipped.)
    std::string removal_slot(const std::string& path, const layout::Location& where,
                             const std::string& taken = "");
    void note_copying(const std::string& path);
    boost::asio::awaitable<CopyResult> relocate_one(std::string path, int fd,
                                                    state::FileState record, layout::Location to,
                                                    std::optional<state::Marker> marker);
    void closed_on_loop(const std::string& path, bool written, std::uint64_t note);
    // Deletes what a chunked upload no record names may have written (pending_uploads.hpp),
    // in the background (counted as work: not idle before it ended).
    void sweep_later(PendingUpload upload);
    // The sweeps sweep_later() kept back for chunks still read, tried again (a hold was let go).
    void sweep_held();
    // Whether a chunk key is of a version that a handle still reads (open_copies.hpp).
    UploadInput::ChunkHeld chunk_held() const;
    // The replaced chunks an upload of `path` to `where` could not delete (`keys`, Riak
    // failing), noted in `batch` (the one whose record drops the upload's own note) under a key
    // of their own: the upload's version names the copy now at the key, and a note under it
    // would have the sweep delete that copy. Swept once `batch` is durable (sweep_later) and at
    // each start until they are gone. Nullopt when `keys` is empty.
    std::optional<PendingUpload> note_chunks_left(state::StateStore::Batch& batch,
                                                  const std::string& path,
                                                  const layout::Location& where,
                                                  std::vector<std::string> keys);
    // A record of `path` naming a copy still to be moved to the path's own key goes (its path
    // removed or renamed away): the object at that key is one the rename that moved the record
    // here left to be replaced by the move (a file it replaced), which no move replaces now.
    // Its removal (whatever is there, unless the path holds a file again: remove_one) is put in
    // `batch`; the slot is returned, "" when there is nothing to remove (or the key is another
    // move's source).
    std::string put_claimed_removal(state::StateStore::Batch& batch, const std::string& path,
                                    const state::FileState& rec);
    // relocation_sources_: `path` holds the key `rec` names when that is not the path's own
    // key (a copy still to be moved there), else nothing.
    void relocation_source_changed(const std::string& path, const state::FileState* rec);
    // Puts in `batch` the removal of what `path`'s record `rec` names at `where` (its
    // location_of), in a slot of its own (removal_slot; `taken`: one this batch fills already),
    // and returns the slot. Not when `where` holds another file's copy still to move away
    // (relocation_sources_) and `rec` has no version: such a record has no copy of its own
    // there (copies to that key wait), and its removal, which takes whatever the key holds,
    // would delete that file's copy, chunks and all (a released file's only one); "" then.
    std::string put_record_removal(state::StateStore::Batch& batch, const std::string& path,
                                   const layout::Location& where, const state::FileState& rec,
                                   const std::string& taken = "");
    // The journal's note `note` (0: none) is settled: nothing more to record for it.
    void settle_note(std::uint64_t note);
    // Writes `record` at `path` durably through commits_ (grouped with the other records of the
    // moment); resumes on the loop.
    boost::asio::awaitable<state::Result<void>> put_durably(std::string path,
                                                            state::FileState record);
    // An upload replaces `keys`, another version's chunks: they join its note (`noted`, made
    // from `note` when the upload writes no chunk of its own), durably. False: not noted.
    boost::asio::awaitable<bool>
    note_replaced_chunks(std::shared_ptr<std::optional<PendingUpload>> noted, PendingUpload note,
                         std::vector<std::string> keys);
    // The upload's or relocation's hook (UploadInput::replacing) that notes the chunks it
    // replaces in `noted` (made from `note`): note_replaced_chunks.
    UploadInput::Replacing replacing_noted(std::shared_ptr<std::optional<PendingUpload>> noted,
                                           PendingUpload note);
    // A copy moved from `from` to `path`'s key (`record`: the copy's, at `from`): the removal of
    // the old object, only that version (and not its chunks when `chunks_shared`), is put in
    // `batch`; returns its slot, to enqueue once the batch is applied.
    std::string put_moved_removal(state::StateStore::Batch& batch, const std::string& path,
                                  const layout::Location& from, const state::FileState& record,
                                  bool chunks_shared);
    // Commits `batch` through the group commit and resumes once it is durable.
    boost::asio::awaitable<state::Result<void>> commit_durably(state::StateStore::Batch batch);
    void enqueue_on_loop(const std::string& path);
    void retry_later(const std::string& path, unsigned attempts);
    void forget(const std::string& path);
    void note_failure(const std::string& path, const std::string& why,
                      std::string_view what = "copy");
    void post_to_loop(std::function<void()> work);
    // closes_posted_: one more piece of work the loop has taken on and not finished (the
    // migrator is not idle meanwhile); `n` of them finished, and wait_idle() told when nothing
    // is left. Any thread.
    void work_posted();
    void work_done(std::uint64_t n = 1);
    std::optional<std::string> next_copy();
    std::optional<std::string> next_removal();
    std::optional<std::string> next_drain();
    // A copy attempt of `path` ended (loop thread): queues it again if it was closed meanwhile,
    // else answers a drain waiting for it.
    void copy_ended(const std::string& path, CopyResult result);
    // The verified record of `path`'s copy is durable (or failed to be written).
    void verified_recorded(const std::string& path, std::uint64_t bytes_sent,
                           state::Result<void> written);
    // One failed attempt: recorded in its state record and retried with backoff.
    CopyResult copy_failed(const std::string& path, const std::string& why);
    void finish_drain(const std::string& path, CopyResult result);
    void update_queued(); // stats_.queued and removals_queued from known_ and removals_known_
    // mode=move (loop thread): releases `path`'s data if its record is verified and still
    // describes the file, and nothing pins it; `after` runs on the loop once that is decided
    // (and done). The release runs beside the loop (release_one): the loop never waits for
    // its fsyncs. `by_copy`: asked by the copy of `path` in progress (its end), which other
    // callers leave the release to.
    void release_if_unused(const std::string& path, std::function<void()> after = {},
                           bool by_copy = false);
    boost::asio::awaitable<void> release_one(std::string path, state::FileState record, UniqueFd fd,
                                             struct stat st);
    // A release of `path` ended (loop thread): namespace operations held for it may go.
    void release_ended(const std::string& path);
    // Runs a namespace operation on `paths` (and what is below them) now, or once the releases
    // in flight and the copies of those paths in flight have ended (see held_namespace_ops_).
    void namespace_op(std::function<void()> op, std::vector<std::string> paths);
    // Whether a copy of one of `paths`, or of a path below one, is in flight.
    bool copying_under(const std::vector<std::string>& paths) const;
    // Runs the held operations whose turn it is (in order), then the held releases.
    void run_held();
    // Start-up: a release that a crash interrupted is finished (the marker is on the file) or
    // forgotten (it is not); verified files are released.
    void resume_releases();

    // Namespace operations and removals (loop thread only).
    void removed_on_loop(const std::string& path, std::uint64_t note);
    void renamed_on_loop(const std::string& from, const std::string& to, bool exchange,
                         std::uint64_t note);
    // Commits `batch` (recording a namespace change) with `note`'s applied mark; tells the
    // journal once it is durable.
    state::Result<void> apply_noted(state::StateStore::Batch& batch, std::uint64_t note);
    void namespace_retry(std::function<void()> op, std::vector<std::string> paths,
                         const std::string& why);
    void enqueue_removal(const std::string& path);
    void removal_retry_later(const std::string& path, const std::string& why);
    void forget_removal(const std::string& path);
    boost::asio::awaitable<void> remove_one(std::string path);

    int source_root_;
    const layout::Mapper& mapper_;
    state::StateStore& state_;
    StoreFactory make_store_;
    MigratorOptions options_;

    boost::asio::io_context context_;
    FileTurns file_turns_{context_.get_executor()};
    std::unique_ptr<state::GroupCommit> commits_; // from start() until stop()
    std::unique_ptr<store::ObjectStore> store_;
    std::thread thread_;
    std::unique_ptr<boost::asio::steady_timer> wakeup_;          // workers wait on it for work
    std::unique_ptr<boost::asio::steady_timer> long_wait_timer_; // watch_long_waits's
    bool stopping_ = false;                                      // loop thread only

    // Loop thread only.
    std::deque<std::string> queue_;
    std::unordered_set<std::string> queued_;
    std::unordered_map<std::string, bool> copying_; // path -> closed again meanwhile
    std::unordered_set<std::string> known_;         // queued, copying or waiting to retry
    std::unordered_map<std::string, unsigned> attempts_;
    std::deque<std::string> removal_queue_;
    std::unordered_set<std::string> removal_queued_;
    std::unordered_set<std::string> removing_;       // removals in progress
    std::unordered_set<std::string> removals_known_; // queued, in progress or waiting to retry
    std::unordered_map<std::string, unsigned> removal_attempts_;
    std::unordered_set<std::string> relocating_from_; // locations (location_text) being moved
    // Objects (location_text) that open handles of released files read (any thread).
    const std::shared_ptr<OpenCopies> open_copies_ = std::make_shared<OpenCopies>();
    // Riak keys (location_text) that removals and copies hold, so that the two never meet on one
    // key: a copy to a key waits while a removal of the object there is pending (it would write
    // the object the removal then deletes, or drop chunks a relocated manifest still names), and
    // a removal waits while a copy to its key is running. A removal names its object by its
    // record, which need not be its path's own key (a relocation's old key is removed under the
    // new path).
    // Which path holds which key, and how many paths hold each key.
    class KeyHolds {
    public:
        void hold(const std::string& path, std::string key) {
            release(path);
            by_key_.emplace(key, path);
            by_path_.emplace(path, std::move(key));
        }
        void release(const std::string& path) {
            auto it = by_path_.find(path);
            if (it == by_path_.end()) return;
            auto [first, last] = by_key_.equal_range(it->second);
            for (auto k = first; k != last; ++k) {
                if (k->second != path) continue;
                by_key_.erase(k);
                break;
            }
            by_path_.erase(it);
        }
        bool held(const std::string& key) const { return by_key_.count(key) > 0; }
        bool empty() const { return by_key_.empty(); }
        const std::string* key_of(const std::string& path) const {
            auto it = by_path_.find(path);
            return it == by_path_.end() ? nullptr : &it->second;
        }
        // A path other than `path` that holds `key` (nullptr when none).
        const std::string* other_holder(const std::string& key, const std::string& path) const {
            return other_holder_if(key, path, [](const std::string&) { return true; });
        }
        // The same, among the holders for which `pred(holder)` is true.
        template <class Pred>
        const std::string* other_holder_if(const std::string& key, const std::string& path,
                                           Pred pred) const {
            auto [first, last] = by_key_.equal_range(key);
            for (auto k = first; k != last; ++k)
                if (k->second != path && pred(k->second)) return &k->second;
            return nullptr;
        }

    private:
        std::unordered_map<std::string, std::string> by_path_;     // path -> key
        std::unordered_multimap<std::string, std::string> by_key_; // key -> path
    };
    KeyHolds removal_targets_; // removals known: path -> the key whose object goes
    // Of those, the version each was recorded for: a removal waits while handles read that
    // version (open_copies.hpp). Those with none ("") delete whatever their key holds, a
    // manifest's chunks included. One waits while a removal of the same key with a version is
    // known: that may be a moved copy's old manifest, whose chunks the moved one still names
    // (kKeepChunks); deleted first, it leaves this one nothing to find. (Run the other way round,
    // or at once, a released file renamed and then its old name's new file removed lost its
    // chunks.) Removals of one key never run at once (next_removal).
    std::unordered_map<std::string, std::string> removal_versions_;
    // Sweeps of replaced chunks that handles still read (sweep_later), each counted as work.
    std::vector<PendingUpload> held_sweeps_;
    KeyHolds copying_keys_; // copies running: path -> the key written
    // Copies still to follow a rename inside Riak: path -> the old key its record names, whose
    // object is that file's copy (a released file's only one) until it is moved. A copy of a
    // file made at the old name since waits: written there first, it replaced that object and
    // deleted the chunks the moved manifest was to keep (the move then found "another version",
    // and a released file had nothing left to read). Held from the rename (or the start that
    // finds such a record pending) until a copy of the path ends with its record naming
    // another key (relocation_source_changed). Another move to that key waits for it too,
    // unless the moves wait for each other in a ring (move_ring): then one parks its copy.
    KeyHolds relocation_sources_;
    LongWaits long_waits_;
    std::deque<std::string> drain_queue_; // drain_file(): taken when queue_ has nothing to give
    std::unordered_map<std::string, std::function<void(CopyResult)>> drain_waiters_;
    unsigned namespace_attempts_ = 0; // consecutive state-store failures of namespace operations

    // mode=move. A release's local system calls (the marker's and the punch's fsyncs) run on
    // release_io_'s threads, so that the loop goes on and the fsyncs of several files overlap;
    // its records go through commits_.
    boost::asio::io_context release_io_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
        release_work_;
    std::vector<std::thread> release_threads_;
    // Loop thread only. Paths being released: no copy or removal of one starts meanwhile.
    std::unordered_set<std::string> releasing_;
    // Paths whose release was asked for during a copy of theirs: tried when the copy ends.
    std::unordered_set<std::string> release_after_copy_;
    // A namespace operation moves or erases records; a release in flight writes its path's
    // record when it ends, and so does a copy (or a relocation) of a path the operation moves
    // or removes. So while releases are in flight, or copies of the paths an operation names,
    // namespace operations wait here (in order), closes heard after them wait behind them, no
    // copy starts, and new releases wait in held_releases_ until those operations have run.
    struct HeldOp {
        std::function<void()> run;
        std::vector<std::string> paths; // what it moves or removes ({} for a close)
    };
    std::deque<HeldOp> held_namespace_ops_;
    struct HeldRelease {
        std::string path;
        std::function<void()> after;
        bool by_copy = false;
    };
    std::deque<HeldRelease> held_releases_;

    mutable std::mutex stats_mu_;
    std::condition_variable idle_cv_;
    MigratorStats stats_;             // stats_.queued: known_.size() + removals_known_.size()
    std::uint64_t closes_posted_ = 0; // calls posted to the loop it has not handled yet
};

} // namespace rfs::migrate
