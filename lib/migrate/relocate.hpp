// A rename moves a verified copy inside Riak instead of sending the file again.
//
// When a file whose copy is verified (or released: then Riak holds its only copy) is renamed to
// a path that maps to another key, relocate_copy() copies the object at the old key to the new
// key (with riakfs-path updated), waits for the durable write, reads it back and checks it. A
// manifest keeps naming the same chunks when both keys are in one bucket (chunk keys depend on
// the version, not on the path): a rename of a large file moves the manifest, not the chunks.
// Across buckets the chunks are copied too. Whatever the new key held before (a replaced file)
// is superseded, and its chunks deleted once the new object is verified, as an upload does.
//
// The old key is left alone: the caller records the new location first, and only then deletes
// the old object (with RelocateOutcome::chunks_shared saying whether its chunks must stay).
#pragma once

#include <string>

#include "lib/layout/mapping.hpp"
#include "lib/state/file_state.hpp"
#include "lib/store/object_store.hpp"

#include "lib/migrate/uploader.hpp"

namespace rfs::migrate {

struct RelocateOutcome {
    std::string vclock;         // of the new object, when the server gave one
    bool chunks_shared = false; // the old key's manifest names the same chunk objects
};

// `rec` is the file's record (its location is where the copy is now, its version the copy's).
// ENOENT: the old key holds nothing; ESTALE: it holds another version than rec.version.
// `replacing` (may be empty) is called, before the new key is written, with the chunk keys of
// the manifest it holds (of another version), which are deleted once the copy is in place.
// `chunk_held` (may be empty): replaced chunks it says are still read are not deleted (the
// note `replacing` made keeps them for a later sweep).
riak::Task<RelocateOutcome> relocate_copy(store::ObjectStore& store, state::FileState rec,
                                          layout::Location to, std::string new_path,
                                          UploadInput::Replacing replacing = {},
                                          UploadInput::ChunkHeld chunk_held = {});

} // namespace rfs::migrate
