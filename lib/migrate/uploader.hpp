// Copies one local file into Riak and proves the copy: the step every Riak mode is built on.
//
// A file up to chunk_size is one object at its key, its attributes and SHA-256 in X-Riak-Meta-*
// headers (lib/layout/file_object.hpp); a larger one is chunk objects under a prefix derived from
// the new version, then a manifest at its key (lib/layout/manifest.hpp). Chunks of zeros are
// holes and are not stored. Every write waits for the durable-write quorum, and what was stored
// comes back with its answer (ObjectStore::put_and_read: Riak's returnbody, one round trip, not a
// second request), checked object by object: a whole object against the SHA-256 computed while
// reading the file, a chunk byte for byte against what was sent, the manifest likewise: only a
// verified copy is reported.
//
// Before the key itself is written, what it holds is read (what_is_replaced: the causal context
// the new write must supersede, and an older manifest's chunks to delete). A path never copied
// before (UploadInput::expect_new) skips that read: its key is written create-only, and only a
// 412 (the key exists after all) makes the uploader read it and write again.
//
// A large file's chunks are written UploadInput::parallel_chunks at a time, each checked as soon
// as its write is acknowledged, and the manifest only once every chunk is verified. Why:
// one chunk at a time left the node and the loop waiting on each other (a durable PUT is an
// fsync on the node), at a third of what the node takes; chunk keys are new for every version,
// so nothing orders their writes. The read-back compares bytes instead of hashing them again
// (each byte was hashed twice already: its chunk's SHA-256 and the whole file's); at most
// parallel_chunks chunks are held in memory for that. Chunks of the version the new one replaced
// are deleted afterwards, so a rewritten large file leaves no orphans.
//
// The local file may change while it is read: the outcome says so (changed), and the caller
// copies it again rather than keep a copy that mixes two versions.
//
// Runs on the thread of the store's event loop. Reads the file with plain pread: the caller's
// loop is a migration loop that serves no FUSE request.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/layout/mapping.hpp"
#include "lib/store/object_store.hpp"

namespace rfs::migrate {

struct UploadInput {
    std::string rel_path;      // raw bytes, relative to SOURCE (recorded in riakfs-path)
    layout::Location location; // where the file goes (raw names: the store escapes them)
    int fd = -1;               // open for reading; the caller keeps it open
    struct stat snapshot {};   // fstat of fd before the copy starts
    std::uint64_t chunk_size = 1 << 20;
    std::string version;          // layout::make_version()
    unsigned parallel_chunks = 4; // chunk writes (with their read-backs) in flight
    // No copy of this path was ever recorded: the key is written create-only (If-None-Match: *)
    // without reading first what it replaces; only if it exists after all (412: another client,
    // a lost state_dir) is that read and the write made again over it.
    bool expect_new = false;
    // Called before the key is written over a manifest of another version, with that version's
    // chunk keys (garbage once this version is in place): the caller notes them, so that a crash
    // before they are deleted leaves none behind (pending_uploads.hpp). False abandons the copy.
    using Replacing = std::function<boost::asio::awaitable<bool>(std::vector<std::string>)>;
    Replacing replacing;
    // Whether a chunk of the replaced version is still read (open_copies.hpp): such a chunk is
    // not deleted here but left in UploadOutcome::chunks_left. Null: none is.
    using ChunkHeld = std::function<bool(std::string_view chunk_key)>;
    ChunkHeld chunk_held;
};

struct UploadOutcome {
    std::string sha256;
    std::string version;
    std::string vclock;               // of the object at the key, when the server gave one
    std::uint64_t bytes_sent = 0;     // value bytes written (holes not counted)
    std::uint64_t chunks_removed = 0; // of the version this one replaced
    // Chunks of the replaced version whose delete failed (Riak failing): garbage, named by
    // nothing once the note of this upload is dropped (the caller notes them again).
    std::vector<std::string> chunks_left;
    bool changed = false; // the local file changed during the copy: copy it again
    bool written = false; // this version is at the key, verified (changed or not): it replaced
                          // what was there
};

riak::Task<UploadOutcome> upload_and_verify(store::ObjectStore& store, UploadInput input);

// What a key holds before a new version goes in: its causal context (so the new write supersedes
// every sibling) and, when it is a manifest of another version, its chunk keys (garbage once the
// new version is verified).
struct Replaced {
    std::string vclock;
    std::vector<std::string> chunk_keys;
};
riak::Task<Replaced> what_is_replaced(store::ObjectStore& store, proto::ObjectId id,
                                      std::string new_version);
// Hands the replaced version's chunk keys, if any, to `replacing` (true: noted, or nothing to
// note), before the key changes.
boost::asio::awaitable<bool> note_replaced(const UploadInput::Replacing& replacing,
                                           const Replaced& replaced);

} // namespace rfs::migrate
