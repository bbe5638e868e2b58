// The chunked uploads in flight, noted in the state store (AuxKind::pending_upload) before their
// first chunk is written, so that no chunk object outlives a crash unaccounted for.
//
// A file larger than chunk_size is sent as chunk objects under ".riakfs/chunks/<version>/" and
// then its manifest. Killed in between (or after the manifest, before the record naming the new
// version was written), the daemon forgot that version: the next copy picks another, and those
// chunks stayed in Riak, named by nothing. Now the upload's version, key and chunk count are
// noted durably first; the record naming the version drops the note in the same batch. A note
// still there names chunks no record refers to (the manifest at the key, if written, is replaced
// by the next copy): the migrator deletes them (sweep_pending_upload) at its next start, and at
// once when an upload is abandoned without a record.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "lib/state/state_store.hpp"
#include "lib/store/object_store.hpp"

namespace rfs::migrate {

struct PendingUpload {
    std::string version;           // the note's key
    std::string path;              // the file, relative to SOURCE (for the log)
    std::string type, bucket, key; // where the file's object goes (the chunks: same bucket)
    std::uint64_t chunks = 0;      // chunk indexes 0..chunks-1 may exist
    // The chunk keys of the version the upload replaces at the file's key (garbage once it is
    // in place; the object they belonged to is overwritten, or about to be, by the upload).
    std::vector<std::string> replaced;
};

state::AuxOp note_pending_upload(const PendingUpload& upload);
state::AuxOp drop_pending_upload(std::string_view version);
// The note of `version` from its stored value; nullopt when it does not decode.
std::optional<PendingUpload> decode_pending_upload(std::string_view version,
                                                   std::string_view value);

// Deletes the object at the file's key if it is this upload's manifest (written, but no record
// names it), every chunk object the upload may have written and those it replaces (absent ones
// are no error), then its note. False (the note kept, for the next start) when Riak or the store
// failed.
boost::asio::awaitable<bool> sweep_pending_upload(store::ObjectStore& store,
                                                  state::StateStore& state, PendingUpload upload);

} // namespace rfs::migrate
