// The released-file placeholder. When riakfs releases a file's data (its Riak copy is durable and
// verified), the file keeps its name, attributes and size but its blocks are punched out; what
// says "this file's content is in Riak, not here" is a marker on the file itself, the extended
// attribute trusted.riakfs.released. Keeping it on the file (not only in state_dir) means that
// losing state_dir can never turn a placeholder into a file that silently reads as zeros.
//
// The trusted namespace needs CAP_SYS_ADMIN: without it Linux answers ENODATA to reads, which
// would look like "no marker". The daemon runs as root and checks with probe_support() first.
// All functions take an open descriptor of a regular file and may be called from any thread; the
// caller serializes them against writes to the same file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/state/error.hpp"
#include "lib/state/file_state.hpp"

namespace rfs::state {

inline constexpr std::string_view marker_xattr = "trusted.riakfs.released";

struct Marker {
    std::string version, sha256, type, bucket, key;
    uint64_t size = 0;    // of the file's content (the placeholder keeps this size)
    int64_t mtime_ns = 0; // of the file when it was copied

    bool operator==(const Marker&) const = default;
};

// The marker for the copy a state record names, and the record (phase released) of the copy a
// marker names: what the reader needs to fetch the content, and what a lost record is rebuilt
// from.
Marker marker_of(const FileState& rec);
FileState released_record(const Marker& marker);

// The xattr value: a format-version byte, then the fields (lib/state/codec.hpp). Decoding
// rejects anything else with EBADMSG.
std::string encode(const Marker& marker);
Result<Marker> decode_marker(std::string_view bytes);

// nullopt when the file has no marker (ENODATA); any other failure is an error.
Result<std::optional<Marker>> read_marker(int fd);
Result<void> write_marker(int fd, const Marker& marker);
// Removes the marker; success when there was none.
Result<void> clear_marker(int fd);
// Whether the entry `name` of directory `dir_fd`, of type `mode` (its lstat's), may be or hold a
// released file's placeholder: a directory (anything may be below it), or a regular file with
// a marker, or whose marker cannot be read (ENODATA and ENOTSUP say it has none). Renaming such
// an entry moves data whose only copy is in Riak (IntentJournal's durable notes).
bool may_hold_released_data(int dir_fd, const char* name, mode_t mode);

// A fetch back in progress (trusted.riakfs.fetching, no value): set before the fetch's first
// write moves the file's mtime, removed once the mtime is the marker's again (the fetch done, or
// failed and its writes' mtime put back). A placeholder that still carries it was cut short
// there: its mtime moved by those writes of the copy's own bytes, not by a change beside the
// mount, and the copy is still its content.
inline constexpr std::string_view fetching_xattr = "trusted.riakfs.fetching";
Result<void> note_fetching(int fd);
Result<bool> is_fetching(int fd);
Result<void> clear_fetching(int fd);

// The file's capabilities (its security.capability attribute). Linux removes them at every
// change of a file's data, a punch included, whoever makes it (file_remove_privs: CAP_FSETID
// keeps the set-ID bits, nothing keeps these); yet they belong to the file, not to its bytes, so
// what changes the data on riakfs's own account reads them first and puts them back after.
// nullopt: none (or a file system without them).
Result<std::optional<std::string>> read_capabilities(int fd);
// Puts `caps` back on the file; nothing for nullopt.
Result<void> restore_capabilities(int fd, const std::optional<std::string>& caps);

struct ReleaseReport {
    uint64_t bytes_freed = 0; // (st_blocks before - after) * 512
};

// Drops the file's data, leaving a sparse placeholder of the same size, atime and mtime (and
// capabilities). The marker is written and fsynced before a single byte is dropped; then the
// whole file is punched out (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE), the capabilities and
// times restored and the file fsynced.
// ESTALE, touching nothing, when the file's size or mtime differ from the marker's (it changed
// since the copy). A crash in between leaves the marker on a file whose data may be partly gone:
// the marker is what says its content is in Riak.
Result<ReleaseReport> release_data(int fd, const Marker& marker);

// Crash recovery of a release that was interrupted after the marker was made durable: the file
// must carry exactly `marker` (EINVAL otherwise) and have its size. Punches the whole file again
// (idempotent), sets mtime back to the marker's (a punch that completed before the crash moved
// it; atime is left as it is) and fsyncs. The content is in Riak, verified, so this is safe even
// when part of the data was already dropped.
Result<ReleaseReport> finish_release(int fd, const Marker& marker);

// Whether an extended attribute name is riakfs's own (the whole trusted.riakfs. namespace, the
// marker among it): the daemon hides these from listxattr and refuses getxattr, setxattr and
// removexattr on them.
bool is_name_hidden(std::string_view xattr_name);

// Checks that the file system of the directory `dir_fd` can hold markers and punch holes, on an
// unnamed temporary file (O_TMPFILE) there. One clear error line when it cannot.
Result<void> probe_support(int dir_fd);

} // namespace rfs::state
