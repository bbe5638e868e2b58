// `riakfsctl recall`: the way back from mode=move. Brings every released file under a path back
// to local disk, byte for byte, and keeps it there.
//
// Order, so that an interruption anywhere leaves nothing lost and the command can be run again:
//   1. The path is pinned (LocalPins, a durable record) before anything else: from then on the
//      Migrator releases nothing under it. With delete_from_riak the pin is local_only, so the
//      layout maps nothing under the path any more (no copy, no drain, no namespace entry).
//   2. Each released file is fetched back through the same path a write to a released file
//      takes (MigrateObserver::fetch_path: content from Riak checked by version and SHA-256,
//      written, fsynced, mtime put back, marker removed last), one file at a time.
//   3. A second look finds any file a release in flight at the pin finished after the walk saw
//      it, and fetches it too.
//   4. Only with delete_from_riak, and only once nothing under the path is released: the Riak
//      copies of everything recorded under it are deleted through the Migrator's durable removal
//      queue (Migrator::path_removed: records dropped, removals retried until Riak confirms),
//      and the namespace records are made again without those entries. The recall waits for the
//      removals to be done.
// A pin stays after the recall (it is what keeps the files local); mounting again keeps it.
//
// Runs on the calling thread, never on an event loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "lib/state/state_store.hpp"

namespace rfs::migrate {

class LocalPins;
class MigrateObserver;
class Migrator;
class NamespaceSync;

struct RecallCounts {
    std::uint64_t files = 0, bytes = 0;             // regular files under the path
    std::uint64_t released = 0;                     // of those, found released
    std::uint64_t recalled = 0, recalled_bytes = 0; // brought back
    std::uint64_t failed = 0;                       // could not be brought back (Riak failed)
    std::uint64_t riak_objects = 0;                 // copies queued for deletion (delete_from_riak)
    std::uint64_t removals_left = 0;                // of those, not yet confirmed by Riak
    bool deleting = false;                          // waiting for the deletions
    bool stopped = false;                           // ended early (the caller asked)
};

struct RecallEnv {
    int source_root = -1;
    state::StateStore* state = nullptr;
    LocalPins* pins = nullptr;
    MigrateObserver* observer = nullptr;
    Migrator* migrator = nullptr;
    NamespaceSync* namespaces = nullptr;
    dev_t skip_dev = 0;
    ino_t skip_ino = 0;
};

// `progress` about four times a second and at the end; false stops early. `failure` names each
// file that could not be brought back. Throws std::invalid_argument with one line when the path
// is not there or cannot be pinned.
RecallCounts
recall_tree(const RecallEnv& env, const std::string& rel_path, bool delete_from_riak,
            const std::function<bool(const RecallCounts&)>& progress,
            const std::function<void(const std::string& path, const std::string& why)>& failure);

} // namespace rfs::migrate
