#include "lib/state/file_state.hpp"

#include <cerrno>

#include "lib/state/codec.hpp"

namespace rfs::state {

namespace {

// Bump when the layout below changes; old versions must then still decode (or be migrated).
constexpr uint8_t format_version = 1;

} // namespace

std::string_view phase_name(Phase phase) {
    switch (phase) {
    case Phase::dirty:
        return "dirty";
    case Phase::uploading:
        return "uploading";
    case Phase::copied:
        return "copied";
    case Phase::verified:
        return "verified";
    case Phase::releasing:
        return "releasing";
    case Phase::released:
        return "released";
    }
    return "invalid";
}

bool is_pending(Phase phase) {
    return phase == Phase::dirty || phase == Phase::uploading || phase == Phase::copied;
}

std::string encode(const FileState& s) {
    codec::Writer w;
    w.byte(format_version);
    w.byte(static_cast<uint8_t>(s.phase));
    w.bytes(s.version);
    w.bytes(s.sha256);
    w.bytes(s.vclock);
    w.bytes(s.type);
    w.bytes(s.bucket);
    w.bytes(s.key);
    w.varint(s.size);
    w.zigzag(s.mtime_ns);
    w.zigzag(s.ctime_ns);
    w.varint(s.dev);
    w.varint(s.ino);
    w.varint(s.attempts);
    w.bytes(s.last_error);
    return std::move(w).data();
}

Result<FileState> decode_file_state(std::string_view bytes) {
    codec::Reader r(bytes);
    uint8_t version = 0;
    if (!r.byte(version)) return make_error(EBADMSG, "empty state record");
    if (version != format_version)
        return make_error(EBADMSG, "state record has format version {}, this riakfs reads {}",
                          version, format_version);
    FileState s;
    uint8_t phase = 0;
    r.byte(phase);
    if (r.ok() && phase >= FileState::phase_count)
        return make_error(EBADMSG, "state record has unknown phase {}", phase);
    s.phase = static_cast<Phase>(phase);
    r.bytes(s.version);
    r.bytes(s.sha256);
    r.bytes(s.vclock);
    r.bytes(s.type);
    r.bytes(s.bucket);
    r.bytes(s.key);
    r.varint(s.size);
    r.zigzag(s.mtime_ns);
    r.zigzag(s.ctime_ns);
    r.varint(s.dev);
    r.varint(s.ino);
    r.u32(s.attempts);
    r.bytes(s.last_error);
    if (!r.at_end())
        return make_error(EBADMSG, "state record is malformed ({} bytes)", bytes.size());
    return s;
}

} // namespace rfs::state
