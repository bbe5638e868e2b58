// The crash-safe per-file migration state: one LevelDB database in state_dir (state.ldb) holding
// a FileState per file of SOURCE, keyed by the file's path relative to SOURCE (bytes, any but NUL;
// components separated by single '/'s, no leading or trailing '/', no "." or ".."). Every write
// is a LevelDB sync write (the log is fsynced before the call returns), so a record the store
// acknowledged survives kill -9 and power loss; several records change together through Batch
// or the subtree operations, which are one atomic WriteBatch each.
// lib/state/group_commit.hpp applies the batches of many callers with one sync write.
//
// Key layout (bytewise order, so a directory's subtree "dir/..." is one contiguous range and
// "a" never captures "ab/x"):
//   'i'                     -> identity: SOURCE and the caller's fingerprint (see open())
//   'f' path                -> encode(FileState)
//   'q' phase-byte path     -> "" (the phase index, for for_each_in_phase and list_pending)
//   'r' path                -> encode(FileState): a pending removal of the Riak object (type,
//                              bucket, key) a path that was unlinked or renamed away had; kept
//                              until Riak confirms the delete (put_removal, list_removals)
//   'd' 'n' 'h' 'x' key     -> the namespace records' bookkeeping (AuxKind, aux_*): opaque
//                              values the store only keeps, in key ranges of their own
//   'g'                     -> the background drain's progress (AuxKind::drain)
//   'p' path                -> a path recalled to local disk (AuxKind::local_pin)
//   'j' id                  -> a namespace intent recorded (AuxKind::applied_intent)
//   'u' version             -> a chunked upload no record names yet (AuxKind::pending_upload)
//
// Thread safety: every method may be called from any thread. Writers of one path are serialized
// by a lock stripe (the old record is read to keep the phase index and counts exact); subtree
// operations take every stripe. Scans read a LevelDB snapshot and hold no lock, so a visitor may
// call back into the store.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/state/error.hpp"
#include "lib/state/file_state.hpp"

namespace leveldb {
class DB;
class FilterPolicy;
} // namespace leveldb

namespace rfs::state {

struct OpenOptions {
    std::string state_dir;   // created (0700) when missing
    std::string source;      // SOURCE as mounted; records are relative to it
    std::string fingerprint; // what else the records depend on (e.g. the bucket layout)
    // Take over a state_dir recorded for another SOURCE or fingerprint (its records are kept
    // and the identity rewritten). Without it such a state_dir is refused.
    bool adopt = false;
};

struct PhaseCounts {
    std::array<uint64_t, FileState::phase_count> by_phase{};

    uint64_t operator[](Phase phase) const { return by_phase[static_cast<size_t>(phase)]; }
    uint64_t total() const;
    uint64_t pending() const; // dirty + uploading + copied
};

struct PathState {
    std::string path;
    FileState state;
};

// The auxiliary key ranges (aux_*): small keyed values other modules keep beside the file
// records, with the same sync writes. Keys are any bytes; the store does not interpret them.
enum class AuxKind : char {
    dirty_dir = 'd',  // namespace: a directory whose Riak record must be made again (NamespaceSync)
    dir_record = 'n', // namespace: a directory whose record exists in Riak; value: its parts
    inode_id = 'h',   // namespace: local "<dev>:<ino>" -> the hard-link id its records carry
    restoring = 'x',  // a restore in progress (restore.hpp); key ""
    drain = 'g',      // the background drain's progress (lib/migrate/drain.hpp); key ""
    local_pin = 'p',  // riakfsctl recall: a path kept local (lib/migrate/local_pins.hpp)
    link_dir = 'l',   // namespace: "<hard-link id>\0<directory>" of a record listing that id
    applied_intent = 'j', // lib/migrate/intent_journal.hpp: an intent recorded (big-endian id)
    pending_upload = 'u', // lib/migrate/pending_uploads.hpp: a chunked upload no record names yet
};

struct AuxOp {
    AuxKind kind;
    std::string key;
    std::optional<std::string> value; // nullopt: erase
};

// Whether `path` is a valid record key (see the top of this file).
bool is_valid_path(std::string_view path);

// The identity record ('i'): which SOURCE and bucket layout (fingerprint) a state_dir belongs
// to. A format byte, then both as codec strings; decoding fails (EBADMSG) on anything else.
struct Identity {
    std::string source;
    std::string fingerprint;
};
std::string encode_identity(const Identity& identity);
Result<Identity> decode_identity(std::string_view bytes);

class StateStore {
public:
    // Several puts and erases applied atomically (in order) by StateStore::apply.
    class Batch {
    public:
        void put(std::string_view path, FileState state);
        void erase(std::string_view path);
        // The removal records ('r'): see put_removal().
        void put_removal(std::string_view path, FileState state);
        void erase_removal(std::string_view path);
        // StateStore::mark_dirty() as one step of the batch: sees the steps before it.
        void mark_dirty(std::string_view path);
        // An auxiliary value (aux_apply) written in the same atomic step.
        void aux(AuxOp op);
        // Appends `other`'s steps after this batch's.
        void append(Batch&& other);
        size_t size() const { return ops_.size(); }

    private:
        friend class StateStore;
        struct Op {
            std::string path;
            std::optional<FileState> state; // nullopt: erase
            bool removal = false;           // the 'r' record, not the file record
            bool mark_dirty = false;        // state unused
            std::optional<AuxOp> aux;       // an auxiliary step: nothing else used
        };
        std::vector<Op> ops_;
    };

    // Returns false to stop the scan early.
    using Visitor = std::function<bool(std::string_view path, const FileState& state)>;

    // Opens or creates the store. Errors (one line each): EBUSY "state_dir X is in use by another
    // riakfs"; EEXIST when state_dir belongs to another SOURCE or fingerprint and !adopt;
    // ENOTDIR, EIO and the like for the directory and database themselves.
    static Result<std::unique_ptr<StateStore>> open(const OpenOptions& options);
    ~StateStore();
    StateStore(const StateStore&) = delete;
    StateStore& operator=(const StateStore&) = delete;

    const std::string& state_dir() const { return state_dir_; }

    Result<std::optional<FileState>> get(std::string_view path) const;
    Result<void> put(std::string_view path, const FileState& state);
    Result<void> erase(std::string_view path); // no record: success
    Result<void> apply(const Batch& batch);

    // A file was renamed over `to`: `to`'s record (if any) is dropped and `from`'s (if any)
    // moves to `to`, atomically. Only the two exact paths are touched.
    Result<void> rename_path(std::string_view from, std::string_view to);
    // A directory (or file) was renamed: `from_dir` itself and every path under "from_dir/" move
    // under `to_dir`, replacing whatever was recorded at and under `to_dir`, in one atomic batch.
    // EINVAL when one path is inside the other (rename(2) refuses that too).
    Result<void> rename_prefix(std::string_view from_dir, std::string_view to_dir);
    // Drops `dir` itself and every record under "dir/".
    Result<void> erase_prefix(std::string_view dir);

    // Visits `dir` itself and every record under "dir/" ("" visits everything), in key order.
    // An undecodable record stops the scan with an EBADMSG error naming its path.
    Result<void> for_each(std::string_view dir, const Visitor& visit) const;
    Result<void> for_each_in_phase(Phase phase, const Visitor& visit) const;

    // Records per phase, exact at all times (recomputed when the store opens).
    PhaseCounts counts() const;

    // The durable upload queue. mark_dirty records that `path` must be (re)uploaded: its record
    // (created if missing, other fields kept) goes to `dirty` with attempts and last_error reset.
    // When it already is dirty nothing is written, so calling it on every close is cheap.
    Result<void> mark_dirty(std::string_view path);
    // Pending removals: the Riak object a path had (state.type, bucket, key; other fields as the
    // caller wishes) must be deleted once nothing at that path claims it again. One record per
    // path, kept apart from the file records (no phase, not counted); a new one for the same path
    // replaces the old. Written in a Batch together with the file records they replace.
    Result<void> put_removal(std::string_view path, const FileState& state);
    Result<void> erase_removal(std::string_view path); // no record: success
    Result<std::optional<FileState>> get_removal(std::string_view path) const;
    Result<std::vector<PathState>> list_removals() const;

    // The auxiliary ranges. aux_apply writes several changes atomically (in order).
    Result<std::optional<std::string>> aux_get(AuxKind kind, std::string_view key) const;
    Result<void> aux_put(AuxKind kind, std::string_view key, std::string_view value);
    Result<void> aux_erase(AuxKind kind, std::string_view key); // absent: success
    Result<void> aux_apply(const std::vector<AuxOp>& ops);
    // The first (key, value) of `kind` whose key starts with `prefix` and is >= `from`, in
    // bytewise order: a scan that may skip ahead (from = prefix for the first).
    Result<std::optional<std::pair<std::string, std::string>>>
    aux_next(AuxKind kind, std::string_view prefix, std::string_view from) const;
    // Every (key, value) of `kind` whose key starts with `prefix`, in order, on a snapshot;
    // the visitor returns false to stop.
    using AuxVisitor = std::function<bool(std::string_view key, std::string_view value)>;
    Result<void> aux_for_each(AuxKind kind, std::string_view prefix, const AuxVisitor& visit) const;

    // Whether the store holds anything besides its identity record: a file record, a removal
    // or any auxiliary value (a restore refuses a state_dir that does).
    Result<bool> holds_records() const;

    // Files whose content has still to reach Riak (dirty, then uploading, then copied), at most
    // `limit` of them. A restart resumes from these.
    Result<std::vector<PathState>>
    list_pending(size_t limit = std::numeric_limits<size_t>::max()) const;

private:
    class Plan;
    static constexpr size_t stripe_count = 64;

    StateStore(std::string state_dir, int lock_fd, leveldb::DB* db,
               const leveldb::FilterPolicy* filter);

    // What the database holds for a path: whether it has a record, and the record's phase
    // (nullopt when the record does not decode and is not in the phase index).
    struct Stored {
        bool exists = false;
        std::optional<Phase> phase;
    };

    std::mutex& stripe(std::string_view path);
    std::vector<std::unique_lock<std::mutex>> lock_all();
    Result<Stored> stored(std::string_view path) const;
    Result<Stored> stored_from_value(std::string_view path, std::string_view value) const;
    // (path, encoded record) of `dir` and everything under "dir/".
    Result<std::vector<std::pair<std::string, std::string>>>
    read_subtree(std::string_view dir) const;
    Result<void> commit(Plan& plan);
    Result<void> count_phases();

    std::string state_dir_;
    int lock_fd_;
    leveldb::DB* db_;
    const leveldb::FilterPolicy* filter_;
    std::array<std::mutex, stripe_count> stripes_;
    std::array<std::atomic<uint64_t>, FileState::phase_count> counts_{};
};

} // namespace rfs::state
