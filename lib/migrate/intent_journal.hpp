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
// `state_dir/namespace.journal`, then a *made* or *not made* line once SOURCE answered. A write(2)
// each and no fsync: they survive the daemon's death (kill -9), not the machine's, as SOURCE's
// own unsynced rename may not either. The migrator's state-store batch that records the change
// also marks its intent applied (AuxKind::applied_intent), atomically. At start, every intent of
// the journal that was made and is not marked applied is handed back to be recorded again; one
// with no line after it (the daemon died between the change and the line) is judged by what
// SOURCE shows: made when the entries it moved or removed are where the change put them.
//
// The journal is emptied once it is large and no intent is outstanding (then the applied marks,
// now of no intent, are erased: SOURCE first, so that no applied intent is ever left unmarked).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "lib/state/error.hpp"
#include "lib/state/state_store.hpp"

namespace rfs::migrate {

class IntentJournal {
public:
    enum class Kind : char { unlink = 'u', rmdir = 'd', rename = 'r', exchange = 'x' };
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
    // then recorded as before, and a crash may forget it).
    std::uint64_t note(Kind kind, std::string from, std::string to, Identity moving,
                       Identity other);
    // SOURCE answered: the change was made (to be recorded), or not (nothing to record).
    void made(std::uint64_t id);
    void not_made(std::uint64_t id);
    // The change was recorded: by a state-store batch holding applied_op(id), committed, or it
    // needs no record (nothing is recorded for its paths).
    void recorded(std::uint64_t id);
    // The state-store step that marks `id` applied (put in the batch recording the change).
    static state::AuxOp applied_op(std::uint64_t id);

    std::uint64_t outstanding() const;

private:
    IntentJournal(state::StateStore& state, int fd, std::uint64_t next_id, std::uint64_t size);
    void append(const std::string& record);
    void settle(std::uint64_t id);

    state::StateStore& state_;
    std::vector<Intent> unrecorded_;
    mutable std::mutex mu_;
    int fd_;
    std::uint64_t next_id_;
    std::uint64_t size_; // bytes in the journal file
    std::set<std::uint64_t> outstanding_;
    bool failed_logged_ = false;
};

} // namespace rfs::migrate
