// Which of a key's siblings (concurrent versions) a read returns.
//
// riakfs writers stamp every version with the user-metadata field kVersionMeta
// ("riakfs-version", object_store.hpp), fixed-width so that a plain byte-wise string comparison
// orders stamps by age. The winner is, in this order:
//   1. a live value over a tombstone (a delete racing a write never erases the write);
//   2. a version with the stamp over one without (objects from other clients, or older ones);
//   3. the greater stamp;
//   4. the greater ETag (vtag), then the greater value bytes: arbitrary but deterministic, so
//      every client facing the same siblings picks the same one and writes converge.
// Unlike lib/riak's SiblingResolver it ignores Last-Modified: the stamp is the writer's own
// clock for the data, and Riak's one-second Last-Modified comes from whichever node
// coordinated the write.
// Pure functions over values: any thread.
#pragma once

#include <cstddef>
#include <vector>

#include "proto/riak_messages.hpp"

namespace rfs::store {

// True if `a` wins over `b` by the rules above.
bool sibling_wins(const proto::RiakObject& a, const proto::RiakObject& b);

// Index of the winner in `siblings` (which must not be empty); the first of equal ones.
std::size_t choose_sibling(const std::vector<proto::RiakObject>& siblings);

} // namespace rfs::store
