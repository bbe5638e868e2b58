// Paths an operator brought back to local disk with `riakfsctl recall` (README "riakfsctl"):
// what is under them is never released again, and, after `recall --delete-from-riak`, never
// sent to Riak again either.
//
// A pin names a path relative to SOURCE ("" = all of SOURCE) and covers it and everything under
// it, files created later included. Two kinds:
//   keep        the files stay local and keep being copied (as in mode=migrate): the Migrator
//               checks covers() before every release.
//   local_only  the files stay local and out of Riak: the layout maps nothing under the path
//               (layout::Mapper::set_exclusion), so the migrator, the drain and the namespace
//               records all treat it as a path no rule maps.
// Pins are kept in the state store (AuxKind::local_pin, one key per path, value the kind), so
// they outlive restarts; they are written durably before the recall brings anything back. A pin
// follows its path, not the files: renaming a file out of a pinned directory unpins it.
//
// Any thread. covers() is called for every mapping decision: it is one relaxed load while no pin
// exists, else a lookup per ancestor of the path under a shared lock.
#pragma once

#include <atomic>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "lib/state/state_store.hpp"

namespace rfs::migrate {

enum class PinKind { keep, local_only };

std::string_view to_string(PinKind kind);

class LocalPins {
public:
    // Reads the pins the store holds. Errors: the store's.
    static state::Result<std::unique_ptr<LocalPins>> load(state::StateStore& state);

    // Records (durably) that `rel_path` and everything under it stay local. A local_only pin is
    // never weakened to keep.
    state::Result<void> pin(const std::string& rel_path, PinKind kind);

    // The strongest pin covering `rel_path` (itself or an ancestor), if any.
    std::optional<PinKind> covers(std::string_view rel_path) const;
    bool local_only(std::string_view rel_path) const {
        return covers(rel_path) == PinKind::local_only;
    }

private:
    explicit LocalPins(state::StateStore& state) : state_(state) {}

    state::StateStore& state_;
    mutable std::shared_mutex mu_;
    std::unordered_map<std::string, PinKind> pins_;
    std::atomic<bool> any_{false};
};

} // namespace rfs::migrate
