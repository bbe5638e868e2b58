// The stored form of a Riak object in riak-devnode: siblings ("contents"), each with its value and
// metadata, plus a version vector with dotted siblings (DVV-style) that gives real causality:
// a write whose clock covers a sibling's dot supersedes that sibling.
//
// Each object incarnation gets its own random actor id, so a clock from before a reaped delete
// never silently dominates a re-created object (it is concurrent instead, as in Riak with vnode
// epochs). Values are plain data; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rfs::devnode {

struct Link {
    std::string bucket;
    std::string key; // empty: a bucket link (only `rel="up"` for the own bucket is accepted)
    std::string tag;
};

struct Dot {
    std::string actor;
    uint64_t counter = 0;
};

// Sorted by actor, no zero counters.
using VClock = std::vector<std::pair<std::string, uint64_t>>;

struct Content {
    std::string value;
    std::string content_type; // without parameters
    std::string charset;
    std::string content_encoding;
    std::string vtag;
    int64_t last_modified_us = 0;
    bool deleted = false;
    std::vector<Link> links;
    std::vector<std::pair<std::string, std::string>> meta;    // header name as emitted, value
    std::vector<std::pair<std::string, std::string>> indexes; // field (lower case), term; sorted
    Dot dot;
};

struct Object {
    std::string actor; // this incarnation's actor id
    VClock clock;
    std::vector<Content> siblings;

    bool all_deleted() const;
    int64_t newest_modified_us() const;
    // Union of all siblings' index entries, sorted and unique.
    std::vector<std::pair<std::string, std::string>> index_entries() const;
};

std::string encode_object(const Object& obj);
std::optional<Object> decode_object(std::string_view bytes);

// The opaque X-Riak-Vclock header value and its inverse (nullopt: not one of ours).
std::string encode_vclock(const VClock& clock);
std::optional<VClock> decode_vclock(std::string_view header);

uint64_t clock_get(const VClock& clock, std::string_view actor);
VClock clock_merge(const VClock& a, const VClock& b);
bool clock_covers(const VClock& clock, const Dot& dot);
bool clock_equal(const VClock& a, const VClock& b);

// Applies one write (a new value, or a tombstone when `content.deleted`) with the client's causal
// context `client` to `stored` (nullopt: absent). Siblings whose dots `client` covers are dropped;
// without allow_mult every older sibling is dropped (the new write has the newest timestamp).
// Stamps the new content's dot, vtag and last-modified time.
Object apply_write(const std::optional<Object>& stored, const VClock& client, Content content,
                   bool allow_mult);

} // namespace rfs::devnode
