// Deleting a riakfs file object from Riak: a manifest's chunks first, then the object itself,
// exactly the version read (If-Match), so that a key rewritten meanwhile is not deleted blindly.
// Used by the removal queue (unlink, rename away), by a relocation (the old key, its chunks moved
// with the manifest) and by a copy that supersedes one recorded at another key.
#pragma once

#include "lib/store/object_store.hpp"

#include <string>

namespace rfs::migrate {

enum class RemovedObject {
    removed,       // the object (and its chunks) are gone
    absent,        // nothing at the key
    other_version, // the key holds another version than the one asked for: left alone
};

// `only_version`: delete only an object whose riakfs-version meta field is this ("" = whatever
// the key holds). `keep_chunks`: a manifest's chunks stay (a relocation shares them). A failed
// chunk delete stops there, with the manifest still in place to name the rest at a retry.
riak::Task<RemovedObject> remove_file_object(store::ObjectStore& store, proto::ObjectId id,
                                             std::string only_version, bool keep_chunks);

} // namespace rfs::migrate
