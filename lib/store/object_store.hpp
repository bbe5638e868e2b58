// rfs::store::ObjectStore: what the file-system layer needs from Riak, as one small interface
// with two implementations: RiakObjectStore (over rfs::riak::Client, riak_object_store.hpp) and
// MemoryObjectStore (an in-memory fake for unit tests, memory_object_store.hpp).
//
// Names are raw bytes: bucket and key in a proto::ObjectId / BucketId given here are file-name
// bytes (any bytes, '/' and non-UTF-8 included); the store escapes them (proto::escape_name)
// and list_keys() decodes them again. The bucket type is a configured name and used as is.
//
// Guarantees every implementation keeps (tested against both):
//   1. An unreachable node, a timeout, a 5xx or a garbled answer is always an error, never
//      "not found" or an empty listing.
//   2. With siblings, get()/head() return the newest version by the riakfs-version meta field
//      (choose_sibling(), sibling_choice.hpp), never an older one, and a vclock covering every
//      sibling, so that the next put() with it collapses them.
//   3. remove() with what a read returned (RemoveOptions::matching) deletes only that version:
//      a retried delete answers false when the key is gone, and an error (ESTALE) instead of
//      deleting when the key was re-created or changed meanwhile. See README.md.
//
// Threading: a store belongs to one event loop (like the riak::Client it wraps) and is used only
// from that loop's thread. Calls are coroutines: make the awaitable in its own statement, then
// co_await it (GCC 12, see lib/riak/README.md):
//     auto call = store.get(id);
//     auto got = co_await std::move(call);
// The store must outlive the calls made on it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/riak/client.hpp"
#include "lib/riak/errors.hpp"
#include "proto/riak_paths.hpp"

namespace rfs::store {

using riak::Errc;
using riak::Error;
using riak::Result;
using riak::Task;

// The user-metadata field whose value orders concurrent versions (plain string comparison, so
// writers store fixed-width stamps). Writers of riakfs objects set it on every put.
inline constexpr std::string_view kVersionMeta = "riakfs-version";

struct Object {
    std::string value;
    std::string content_type; // "" is stored as application/octet-stream
    // X-Riak-Meta-* without the prefix. Names are tokens, sent and returned lower-case (Riak
    // re-cases short header names, so case carries no meaning); values printable ASCII.
    std::vector<std::pair<std::string, std::string>> meta;

    const std::string* find_meta(std::string_view name) const;
};

struct Fetched {
    bool found = false;
    Object object;            // the chosen version (head(): without value)
    std::string vclock;       // causal context for the next put/remove of this key; set for a
                              // tombstone too (not found), so a re-create descends from the delete
    std::string etag;         // the ETag of what was read (for RemoveOptions::etag)
    std::size_t siblings = 1; // versions Riak held (1 = no conflict)
};

struct PutOptions {
    std::string vclock;       // from the last read; "" = blind write
    bool durable = true;      // wait for the configured dw (false: dw=0, not yet on disk)
    bool create_only = false; // If-None-Match: * (fails with EEXIST when the key exists; not
                              // atomic on a Riak cluster, see README.md)
};

struct RemoveOptions {
    std::string vclock; // the tombstone descends from this version only
    std::string etag;   // If-Match: delete only if the key still holds this version
    bool durable = true;

    // Deletes exactly the version `read` returned (a found one: a not-found read has no ETag,
    // and a vclock alone makes Riak >= 3.0.13 write a tombstone blindly and answer true).
    static RemoveOptions matching(const Fetched& read) { return {read.vclock, read.etag, true}; }
};

class ObjectStore {
public:
    virtual ~ObjectStore() = default;

    // The key's value; siblings are resolved by choose_sibling() (not written back: the next
    // put() with the returned vclock collapses them). found=false: absent or deleted.
    virtual Task<Fetched> get(proto::ObjectId id) = 0;
    // The same without the value body (a HEAD; with siblings a GET is needed to choose).
    virtual Task<Fetched> head(proto::ObjectId id) = 0;
    // Stores `object`. Returns the new vclock if the server sent one (Riak does not on a plain
    // 204, so usually ""). EEXIST (412) for create_only on an existing key.
    virtual Task<std::string> put(proto::ObjectId id, Object object, PutOptions options) = 0;
    // put(), then what the node stored, read back: the key's value as get() would return it.
    // One round trip where the server can (Riak: returnbody=true); this default is put() then
    // get(). Why: a copy counts only once what was stored is read back and checked, and a second
    // request per object was a third of a small file's migration.
    virtual Task<Fetched> put_and_read(proto::ObjectId id, Object object, PutOptions options);
    // true: deleted; false: it was already absent. With an etag: ESTALE (Errc::client_error,
    // http_status 412) if the key now holds another version; nothing is deleted then.
    virtual Task<bool> remove(proto::ObjectId id, RemoveOptions options) = 0;
    // The bucket's keys, decoded, in no particular order. Keys deleted in the last few seconds
    // may still be listed (Riak lists tombstones until they are reaped): confirm with head().
    // Keys that are not riakfs names (written by other clients) are left out.
    virtual Task<std::vector<std::string>> list_keys(proto::BucketId bucket) = 0;

protected:
    ObjectStore() = default;
    ObjectStore(const ObjectStore&) = delete;
    ObjectStore& operator=(const ObjectStore&) = delete;
};

inline Task<Fetched> ObjectStore::put_and_read(proto::ObjectId id, Object object,
                                               PutOptions options) {
    auto put_call = put(id, std::move(object), std::move(options));
    auto stored = co_await std::move(put_call);
    if (!stored) co_return stored.error();
    auto get_call = get(std::move(id));
    co_return co_await std::move(get_call);
}

} // namespace rfs::store
