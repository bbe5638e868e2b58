// A file's attributes as Riak user metadata (X-Riak-Meta-*), and the version stamps that order
// the writes of one file.
//
// Metadata names are lowercase and given WITHOUT the "x-riak-meta-" prefix; Riak may re-case
// them (riakfs-mode comes back as Riakfs-Mode), so decoding compares names case-insensitively.
// Every value is header-safe (proto::is_header_safe):
//
//   riakfs-mode     st_mode in octal, type bits included ("100644")
//   riakfs-uid/gid  decimal
//   riakfs-mtime, riakfs-ctime, riakfs-atime
//                   nanoseconds since the Unix epoch, signed decimal
//   riakfs-size     file size in bytes, decimal
//   riakfs-sha256   SHA-256 of the whole file content, 64 lowercase hex digits
//   riakfs-version  the write's version stamp (make_version())
//   riakfs-path     the path relative to SOURCE, percent-encoded: bytes other than
//                   A-Z a-z 0-9 - . _ ~ and '/' become %XX (uppercase hex)
//   riakfs-kind     "whole" (the object's value is the file) or "manifest" (manifest.hpp)
//
// Decoding is strict: a missing, repeated or malformed riakfs-* field is an error, never a
// default. Other metadata (other clients', or riakfs-* names this version does not know) is
// ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/result.hpp"

namespace rfs::layout {

using proto::Result;

// A whole object's value is the file's bytes, stored with this content type.
inline constexpr std::string_view kFileContentType = "application/octet-stream";

// {name without the X-Riak-Meta- prefix, value}: the shape of proto::RiakObject::meta.
using MetaList = std::vector<std::pair<std::string, std::string>>;

struct FileMeta {
    enum class Kind { whole, manifest };

    std::uint32_t mode = 0;
    std::uint32_t uid = 0, gid = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0, atime_ns = 0;
    std::uint64_t size = 0;
    std::string sha256;
    std::string version;
    std::string path; // raw bytes, relative to SOURCE
    Kind kind = Kind::whole;

    friend bool operator==(const FileMeta&, const FileMeta&) = default;
};

MetaList encode_meta(const FileMeta& meta);
// EINVAL naming the offending field.
Result<FileMeta> decode_meta(const MetaList& meta);

// The riakfs-path value form, and its strict inverse (EINVAL on anything encode would not emit).
std::string encode_path_meta(std::string_view raw);
Result<std::string> decode_path_meta(std::string_view encoded);

// ---- Version stamps -------------------------------------------------------------------------
// "<16 hex digits: unix time in ns>-<16 hex digits: random>", lowercase, fixed width, so that the
// string order is time order with a random tie-breaker. Stamps made by one process strictly
// increase even if the clock steps back. Siblings are resolved by the highest stamp rather than
// Riak's Last-Modified (second resolution, set by whichever node coordinated the write).
std::string make_version();
std::string make_version_at(std::uint64_t unix_ns, std::uint64_t random); // exact, for tests
bool is_valid_version(std::string_view text) noexcept;
// <0, 0, >0. Malformed stamps order before every valid one (a valid write always wins), and
// among themselves bytewise.
int compare_versions(std::string_view a, std::string_view b) noexcept;

} // namespace rfs::layout
