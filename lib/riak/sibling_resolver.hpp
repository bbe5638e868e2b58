// Choosing one version among siblings without silently dropping a newer write.
//
// Siblings are concurrent versions; Riak keeps them all (allow_mult=true) until a write that
// carries the vclock of the 300 response replaces them. The resolver picks the newest:
//
//   1. the latest Last-Modified (stamped by the coordinating node, 1-second resolution);
//      a sibling without a parseable date counts as oldest;
//   2. on a tie, the larger value of the `version_meta` user-metadata field if configured
//      (e.g. a nanosecond mtime the writer stores), compared as an unsigned integer; missing or
//      unparseable counts as smallest;
//   3. on a tie, a live value beats a tombstone (a delete in the same second as a write does
//      not erase the write);
//   4. finally the larger vtag (ETag), then the larger value bytes: arbitrary but
//      deterministic, so every client resolving the same siblings writes the same winner and
//      the system converges.
//
// A newer write is therefore never dropped in favour of an older one; only versions that are
// older, or tied within the clock's resolution, lose, and they are returned to the caller
// (Resolution::dropped) rather than discarded unseen. The resolving write must carry the 300's
// vclock (Resolution::vclock): it then dominates every sibling and they collapse; without it
// the write would only add one more sibling. Client::resolve() does exactly that.
// Pure functions over values: any thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "proto/riak_messages.hpp"

namespace rfs::riak {

struct SiblingResolver {
    std::string version_meta; // X-Riak-Meta-<name> with a finer version number, "" = none

    // Index of the winner in `siblings` (which must not be empty).
    std::size_t pick(const std::vector<proto::RiakObject>& siblings) const;
    // True if `a` wins over `b` by the rules above (a strict order for distinct siblings).
    bool newer(const proto::RiakObject& a, const proto::RiakObject& b) const;
};

struct Resolution {
    proto::RiakObject winner;               // may be a tombstone (winner.deleted)
    std::vector<proto::RiakObject> dropped; // the other siblings, older or tied
    std::string vclock;                     // the vclock covering all siblings
};

Resolution resolve_siblings(std::vector<proto::RiakObject> siblings, std::string vclock,
                            const SiblingResolver& resolver = {});

} // namespace rfs::riak
