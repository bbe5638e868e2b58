// What riakfs remembers about one file of SOURCE while it migrates it to Riak: the phase it is
// in (README.md has the transitions), which Riak object holds its data, and the local file's
// identity and times when that copy was made. Plain value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/state/error.hpp"

namespace rfs::state {

struct FileState {
    enum class Phase : uint8_t {
        dirty,     // local content is newer than Riak's (or never uploaded): upload it
        uploading, // an upload of the current content was started
        copied,    // Riak acknowledged the object; not yet read back and checked
        verified,  // Riak's copy was read back and its sha256 matches: the data may be released
        releasing, // the marker is on the file; the hole punch may or may not have happened
        released,  // the local data is gone: the file is a sparse placeholder with the marker
    };
    static constexpr size_t phase_count = 6;

    Phase phase = Phase::dirty;
    std::string version; // riakfs's version id of the uploaded content
    std::string sha256;  // of the uploaded content
    std::string vclock;  // X-Riak-Vclock of the object, for the next write or delete
    std::string type, bucket, key;
    uint64_t size = 0;    // of the local file when it was copied
    int64_t mtime_ns = 0; // of the local file when it was copied
    int64_t ctime_ns = 0;
    uint64_t dev = 0, ino = 0;
    uint32_t attempts = 0; // failed attempts at the current phase's next step
    std::string last_error;

    bool operator==(const FileState&) const = default;
    // Riak holds a read-back, checked copy of the content this record describes (verified,
    // or released since, or being released).
    bool verified_copy() const {
        return phase == Phase::verified || phase == Phase::releasing || phase == Phase::released;
    }
};

using Phase = FileState::Phase;

// "dirty", "uploading", ...; "invalid" for a value outside the enum.
std::string_view phase_name(Phase phase);
// Pending: the content still has to reach Riak (dirty, uploading, copied).
bool is_pending(Phase phase);

// The stored form: a format-version byte, then the fields (lib/state/codec.hpp). Decoding rejects
// an unknown version, an unknown phase, truncation and trailing bytes with EBADMSG.
std::string encode(const FileState& state);
Result<FileState> decode_file_state(std::string_view bytes);

} // namespace rfs::state
