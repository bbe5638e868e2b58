// `riakfsctl plan`: a dry run. Walks a tree (tree_walk.hpp) and counts what a migration of it
// would do, without sending anything: the regular files the layout maps (and the ones it leaves
// local), which of those Riak holds already (a state record describing a verified copy of the
// file as it is now, or the released-file marker), which would be sent, and the local space
// mode=move would free (the blocks of every mapped file not released yet that move can release:
// not empty, one name only).
//
// `state` may be null (a SOURCE with no daemon: only markers say what Riak holds). Blocking:
// run it on a thread of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "lib/layout/mapping.hpp"
#include "lib/migrate/tree_walk.hpp"
#include "lib/state/state_store.hpp"

namespace rfs::migrate {

struct PlanTally {
    std::uint64_t files = 0;
    std::uint64_t bytes = 0;
};

struct PlanReport {
    PlanTally mapped;   // regular files the layout maps (what a migration covers)
    PlanTally unmapped; // regular files no rule maps (they stay local)
    PlanTally in_riak;  // of mapped: a verified copy in Riak already (released included)
    PlanTally released; // of mapped: released already (no local data left)
    PlanTally to_send;  // of mapped: what would be copied
    std::uint64_t freeable_bytes = 0; // local space mode=move would free (allocated blocks)
    PlanTally kept_whole;             // of mapped: never released (hard-linked files)
    std::uint64_t directories = 0;
    std::uint64_t walk_errors = 0;
};

// `progress` is called every so many files (false stops the walk early). Returns the errno of
// `rel` itself when it cannot be walked (ENOENT), else 0.
int plan_tree(int source_root, const std::string& rel, const layout::Mapper& mapper,
              const state::StateStore* state, const WalkOptions& options, PlanReport* report,
              const std::function<bool(const PlanReport&)>& progress);

} // namespace rfs::migrate
