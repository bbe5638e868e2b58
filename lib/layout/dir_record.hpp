// The namespace record: one Riak object per directory of SOURCE, in the namespace bucket
// (Mapper::namespace_bucket()), listing the directory's entries with their attributes, so that
// the tree can be rebuilt (empty directories, symlinks, devices, hard links, ownership) from
// Riak alone. Key: dir_record_key(rel_dir), "/" for SOURCE's root and "/dir/sub" below it
// (raw bytes; the object store escapes them). Value (content type application/json):
//
//   {"format":"riakfs-dir/1","entries":{"<name>":{"type":"reg","mode":420,"uid":0,"gid":0,
//     "mtime_ns":...,"ctime_ns":...,"atime_ns":...,"size":12,"nlink":1}, ...}}
//
//   type      reg | dir | lnk | fifo | chr | blk | sock
//   mode      permission bits only (st_mode & 07777; the file type is `type`), JSON integer
//   uid, gid, size, nlink   JSON integers; *_ns: signed ns since the Unix epoch (need 64 bits)
//   target    lnk only (required there): the symlink's target
//   rdev      chr and blk only (required there): st_rdev
//   inode     required when nlink > 1 on a non-directory, absent otherwise: an id shared by
//             all names of one file, stable across records (hard links)
//   xattrs    optional, absent when there are none: {"<name>":"<value>"}, both encoded like
//             names (below); every extended attribute but riakfs's own trusted.riakfs.*
//
// A large directory is split so that no object nears Riak's size limit: the record at the
// directory's key (the head) then also holds "parts":N (N >= 2, absent for a single part) and
// the first run of entries; parts 1..N-1 are records of their own at dir_record_part_key(dir, i)
// ("<dir key>//<i>": "//" never occurs in a directory key), each holding the next run of
// entries in name order, without "parts". The directory's entries are the union of all parts.
//
// Names and targets are arbitrary bytes but JSON strings must be UTF-8, so both are encoded:
// bytes outside printable ASCII (0x20..0x7E) and '%' itself become %XX (uppercase hex). Decoding
// is strict (canonical escapes only, no unknown members, names valid as file names).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"

namespace rfs::layout {

using proto::Result;

inline constexpr std::string_view kDirRecordFormat = "riakfs-dir/1";
inline constexpr std::string_view kDirRecordContentType = "application/json";
inline constexpr std::size_t kMaxNameBytes = 255;
inline constexpr std::size_t kMaxTargetBytes = 4095;
inline constexpr std::size_t kMaxXattrNameBytes = 255;    // XATTR_NAME_MAX
inline constexpr std::size_t kMaxXattrValueBytes = 65536; // XATTR_SIZE_MAX

enum class EntryType { reg, dir, lnk, fifo, chr, blk, sock };

std::string_view entry_type_name(EntryType type);
std::optional<EntryType> parse_entry_type(std::string_view name);

struct DirEntry {
    EntryType type = EntryType::reg;
    std::uint32_t mode = 0; // 07777 bits
    std::uint32_t uid = 0, gid = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0, atime_ns = 0;
    std::uint64_t size = 0;
    std::uint32_t nlink = 1;
    std::string target;     // lnk only, raw bytes
    std::uint64_t rdev = 0; // chr/blk only
    std::string inode;      // hard-link id; non-directories with nlink > 1 only
    // Extended attributes (name -> value, raw bytes), riakfs's own (trusted.riakfs.*) excepted:
    // user.*, ACLs (system.posix_acl_*), security.*, trusted.*.
    std::map<std::string, std::string> xattrs;

    friend bool operator==(const DirEntry&, const DirEntry&) = default;
};

// Raw name bytes -> entry; ordered by raw bytes.
struct DirRecord {
    std::map<std::string, DirEntry> entries;
    std::uint32_t parts = 1; // the head of a split record: how many parts (itself included)
    friend bool operator==(const DirRecord&, const DirRecord&) = default;
};

// "" -> "/", "a/b" -> "/a/b" (raw bytes, like Location keys).
std::string dir_record_key(std::string_view rel_dir);

// Part `part` (1 <= part < parts) of a split record: "/a/b//1", "///1" for the root.
std::string dir_record_part_key(std::string_view rel_dir, std::uint32_t part);

// Riak refuses objects over 50 MB and warns above 5 MB: records are split well below that.
inline constexpr std::size_t kDefaultMaxRecordBytes = 512 * 1024;
// Splits `record` into parts whose encodings stay within `max_bytes` (one entry encodes to at
// most ~13 KiB, so any max_bytes above that holds at least one entry per part). Returns the
// head (parts set to the count) followed by parts 1..N-1; one record when it fits whole.
std::vector<DirRecord> split_dir_record(const DirRecord& record,
                                        std::size_t max_bytes = kDefaultMaxRecordBytes);

// The name/target encoding and its strict inverse.
std::string encode_entry_bytes(std::string_view raw);
Result<std::string> decode_entry_bytes(std::string_view encoded);

// EINVAL unless a file may be called `name`: 1..255 bytes, no '/', no NUL, not "." or "..".
Result<void> check_entry_name(std::string_view name);
// EINVAL if the optional fields do not fit the type (see above) or mode has bits beyond 07777.
Result<void> check_entry(const DirEntry& entry);

std::string encode_dir_record(const DirRecord& record);
Result<DirRecord> decode_dir_record(std::string_view body);

// EEXIST if the name is taken; EINVAL for a bad name or entry.
Result<void> add_entry(DirRecord& record, std::string name, DirEntry entry);
// ENOENT if absent. Returns the removed entry.
Result<DirEntry> remove_entry(DirRecord& record, std::string_view name);
// Within one directory (across directories: remove from one record, add to the other).
// Replaces an existing `to` like rename(2): ENOTDIR/EISDIR when exactly one side is a directory;
// returns the replaced entry, if any. ENOENT if `from` is absent; renaming onto itself is a no-op.
Result<std::optional<DirEntry>> rename_entry(DirRecord& record, std::string_view from,
                                             std::string to);

} // namespace rfs::layout
