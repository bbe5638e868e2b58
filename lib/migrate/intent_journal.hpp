// Write-ahead notes of the namespace changes of the Riak modes (unlink, rmdir, rename, exchange),
// so that a daemon killed between changing SOURCE and recording the change in the state store
// finishes recording it at its next start.
//
// Why: the file-system hooks hear of a change once SOURCE has made it, and the migrator records
// it on its loop later still (after a copy of the path or a release in flight, for as long as
// those take). A daemon killed in between forgot the change: a released file renamed kept its
// record (and its object) at the old path, whose next file then had that object, the released
// file's only copy, deleted; an unlinked file's object stayed in Riak for ever.
//
// How: before the change, the thread making it appends an *intent* (the change, its paths
// relative to SOURCE, and the identities of the entries it removes or moves) to
// `state_dir/namespace.journal`, then a *made* or *not made* line once SOURCE answered, a
// write(2) each. The migrator's state-store batch that records the change also marks its intent
// applied (AuxKind::applied_intent), atomically. At start, every intent of the journal that was
// made and is not marked applied is handed back to be recorded again; one with no line after it
// (the daemon died between the change and the line) is judged by what SOURCE shows: made when the
// entries it moved or removed are where the change put them.
//
// A write(2) survives the daemon's death (kill -9), not always the machine's: a power loss may
// keep SOURCE's change and lose the note (state_dir is often on another file system than SOURCE,
// so nothing orders their writes). A *durable* intent is therefore fdatasync'ed before the change
// is made. The caller asks for that where losing the note could lose data: a rename of a
// directory or of a released file's placeholder, whose record and object would stay at the old
// path for the next file there to replace (state::may_hold_released_data). Other changes so lost
// leave at worst an orphan object or a file copied again, and take no fsync: unlinks and renames
// of files whose data is local are frequent, and an fsync is a millisecond or more.
//
// The other notes are written after their change, which they cannot be confused with: a file
// created, changed or written and closed (its copy and its directory's namespace record,
// otherwise made again only when something else changes there). They are handed back at start
// until a "settled" line follows them, whatever SOURCE shows, since recording them twice
// changes nothing (a written close is handed back only while its path holds a regular file).
//
// Once the journal is large, it is rewritten with the outstanding notes only (synced, renamed
// over the old one, the directory synced), then the applied marks of the intents it no longer
// holds are erased (in that order, so that no applied intent of the journal is ever left
// unmarked, even after a power loss).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/state/error.hpp"
#include "lib/state/state_store.hpp"

namespace rfs::migrate {

class IntentJournal {
public:
    enum class Kind : char {
        // Recorded by the migrator's batch (applied mark); judged by SOURCE without an outcome.
        unlink = 'u',
        rmdir = 'd',
        rename = 'r',
        exchange = 'x',
        // Made already when noted (after the change), and harmless to record twice: handed back
        // until settled, whatever SOURCE shows. `from` is the path.
        touched = 't',       // its attributes or content changed: its directory's record
        touched_names = 'n', // a name was added (create, link): its directory's and parent's
        made_dir = 'm',      // a directory was made: its own record too
        closed = 'c',        // written and closed: its copy, and its directory's record
    };
    // Whether `kind` is one of the notes made after their change (touched ... closed).
    static bool after_the_fact(Kind kind);
    struct Identity {
        std::uint64_t dev = 0, ino = 0;
        bool operator==(const Identity&) const = default;
    };
    struct Intent {
        std::uint64_t id = 0;
        Kind kind = Kind::unlink;
        std::string from, to; // `to`: renames and exchanges only
        Identity moving;      // the entry at `from` before the change
        Identity other;       // an exchange's entry at `to` before the change
    };

    // Opens (creates) the journal in `state_dir` and finds the intents a crash left unrecorded
    // (unrecorded()), judging those with no outcome by what `source_root` shows.
    static state::Result<std::unique_ptr<IntentJournal>>
    open(const std::string& state_dir, state::StateStore& state, int source_root);
    ~IntentJournal();
    IntentJournal(const IntentJournal&) = delete;
    IntentJournal& operator=(const IntentJournal&) = delete;

    // The changes made before the last stop and never recorded, in the order they were made:
    // each must be recorded again (its id passed on, so that its record marks it applied).
    const std::vector<Intent>& unrecorded() const { return unrecorded_; }

    // Before the change: its id, or 0 when it could not be noted (logged once; the change is
    // then recorded as before, and a crash may forget it). `parts`: how many recorded() calls
    // settle it (one per module that records a part of it). `durable`: the journal is synced
    // before this returns (a failed sync is logged once; the id is still returned, the note
    // then surviving the daemon's death but perhaps not a power loss).
    std::uint64_t note(Kind kind, std::string from, std::string to, Identity moving, Identity other,
                       unsigned parts = 1, bool durable = false);
    // An after-the-fact note (touched ... closed) of `path`.
    std::uint64_t note_touch(Kind kind, std::string path, unsigned parts) {
        return note(kind, std::move(path), {}, {}, {}, parts);
    }
    // SOURCE answered: the change was made (to be recorded), or not (nothing to record).
    void made(std::uint64_t id);
    void not_made(std::uint64_t id);
    // (A part of) the change was recorded: by a state-store batch holding applied_op(id),
    // committed, or durably marked to be made again, or it needs no record.
    void recorded(std::uint64_t id);
    // The state-store step that marks `id` applied (put in the batch recording the change).
    static state::AuxOp applied_op(std::uint64_t id);

    // An application synced a directory through the mount (FsObserver::on_dir_synced): the
    // journal is synced too when it holds outstanding notes written since its last sync, so
    // that a change SOURCE keeps after a power loss is not forgotten by riakfs (a create left
    // out of its directory's record, say). Otherwise nothing: a program that syncs often with
    // no namespace change in between pays nothing more. Blocks for the sync, not the other
    // callers.
    void sync_outstanding();

    std::uint64_t outstanding() const;
    std::uint64_t syncs() const; // fdatasyncs made (for tests)

private:
    IntentJournal(state::StateStore& state, std::string path, int fd, std::uint64_t next_id,
                  std::uint64_t size);
    // Appends `line`; true when it was written whole.
    bool append(const std::string& line);
    void settle(std::uint64_t id);
    void sync_failed(int err); // logged once
    // Rewrites the journal with the outstanding notes' lines only, then erases the applied
    // marks of every other intent.
    void compact();

    state::StateStore& state_;
    const std::string path_;
    std::vector<Intent> unrecorded_;
    mutable std::mutex mu_;
    int fd_;
    std::uint64_t next_id_;
    std::uint64_t size_; // bytes in the journal file
    struct Outstanding {
        unsigned parts = 1;
        std::string lines;           // as in the journal: the note, and its outcome once heard
        bool after_the_fact = false; // settled by a line of its own (not an applied mark)
    };
    std::map<std::uint64_t, Outstanding> outstanding_;
    std::uint64_t outstanding_bytes_ = 0;
    bool failed_logged_ = false;
    bool sync_failed_logged_ = false;
    std::uint64_t syncs_ = 0;
    std::uint64_t appended_ = 0;    // lines written
    std::uint64_t synced_upto_ = 0; // of those, the ones known synced
};

} // namespace rfs::migrate
