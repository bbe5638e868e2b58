// Large files: a file bigger than its chunk size is stored as a manifest object at the file's
// key (metadata riakfs-kind: manifest, content type application/json) plus one object per
// chunk, in the same bucket type and bucket as the manifest, at key
//
//   .riakfs/chunks/<version>/<index>        (index in decimal from 0, no padding)
//
// where <version> is the file's version stamp (file_object.hpp). A rename rewrites only the
// manifest, and chunks of different versions of a file never share a key. Chunk i holds the
// file bytes [i * chunk_size, min(size, (i + 1) * chunk_size)). The manifest body:
//
//   {"format":"riakfs-manifest/2","size":N,"chunk_size":C,"sha256":"<whole file>",
//    "version":"<stamp>","chunk_prefix":".riakfs/chunks/<stamp>/",
//    "crc32":[<CRC-32 of chunk 0>, null, ...]}
//
// A null is a hole: all zero bytes, no object stored. Each stored chunk's CRC-32 (zlib's
// crc32(), the IEEE 802.3 polynomial, as a number) is what a reader checks a fetched chunk
// against, and the whole file's SHA-256 what the chunks add up to.
//
// Format 1, written until 2026-12-07 and still read, also lists each chunk's SHA-256:
//
//   {"format":"riakfs-manifest/1", ... same members ...,
//    "chunks":["<sha256 of chunk 0>", null, ...], "crc32":[...]}
//
// with "crc32" optional there (manifests written before it have none: readers then check the
// SHA-256). Format 2 dropped the chunk digests because computing them was a second SHA-256
// pass over every byte of a copy, beside the whole file's (a fifth of the daemon's CPU in a
// large file's copy, bench/README.md), for a check the CRC-32 and the whole file's SHA-256 make
// already. Decoding is strict: exact format string, no unknown members, as many entries as
// ceil(size / chunk_size), chunk_prefix derived from version, 64-hex digests, crc32 (format 1,
// when present) as long as chunks with the same holes, 0 < chunk_size <= kMaxChunkSize.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"

namespace rfs::layout {

using proto::Result;

// What encode_manifest writes (a manifest without chunk digests) and the earlier format.
inline constexpr std::string_view kManifestFormat = "riakfs-manifest/2";
inline constexpr std::string_view kManifestFormatWithDigests = "riakfs-manifest/1";
inline constexpr std::string_view kManifestContentType = "application/json";
inline constexpr std::string_view kChunkContentType = "application/octet-stream";
// Riak CS's block size; Basho's guidance is objects below 1 MB.
inline constexpr std::uint64_t kDefaultChunkSize = 1 << 20;
// Riak refuses objects over 50 MB (object.size.maximum); keep chunks well below.
inline constexpr std::uint64_t kMaxChunkSize = 32 << 20;

// A file of `size` bytes needs a manifest (rather than one whole object) when this is true.
inline bool needs_manifest(std::uint64_t size, std::uint64_t chunk_size) {
    return size > chunk_size;
}

// ".riakfs/chunks/<version>/"
std::string chunk_prefix_for(std::string_view version);
// prefix + decimal index
std::string chunk_key(std::string_view chunk_prefix, std::uint64_t index);
// ".riakfs/moving/<version>": where a copy (a whole object or a manifest, as at a file's key)
// waits whose move to its file's new key waits, in a ring, for the others' (lib/migrate).
std::string parked_key(std::string_view version);

struct ChunkRange {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    friend bool operator==(const ChunkRange&, const ChunkRange&) = default;
};

// The chunks [first, end) that hold some byte of a read.
struct ChunkSpan {
    std::uint64_t first = 0;
    std::uint64_t end = 0;
    bool empty() const { return first >= end; }
    friend bool operator==(const ChunkSpan&, const ChunkSpan&) = default;
};

// How a fetched chunk is checked: by the cheapest check its manifest records, the CRC-32, else
// (a format 1 manifest without them) the SHA-256. A hole's check matches nothing.
struct ChunkCheck {
    std::optional<std::uint32_t> crc32;
    std::string sha256;
    bool matches(std::string_view value) const;
};

struct Manifest {
    std::uint64_t size = 0;
    std::uint64_t chunk_size = kDefaultChunkSize;
    std::string sha256;
    std::string version;
    std::string chunk_prefix;
    // Per chunk: nullopt = a hole; otherwise the chunk's SHA-256 in hex (format 1), or empty
    // (format 2, which records none).
    std::vector<std::optional<std::string>> chunks;
    // CRC-32 per chunk, as long as `chunks` with the same holes; empty: none recorded (a format
    // 1 manifest written before them), so readers check the SHA-256.
    std::vector<std::optional<std::uint32_t>> crc32;

    // An empty manifest for a file of `size` bytes: every chunk a hole until set.
    static Manifest for_file(std::uint64_t size, std::uint64_t chunk_size, std::string version);

    static std::uint64_t chunk_count(std::uint64_t size, std::uint64_t chunk_size);
    // Bytes of chunk `index` within the file; {size, 0} past the end.
    ChunkRange chunk_range(std::uint64_t index) const;
    // Chunks overlapping [offset, offset + length), clipped to the file; empty if none.
    ChunkSpan chunks_for(std::uint64_t offset, std::uint64_t length) const;
    std::string chunk_key(std::uint64_t index) const;
    bool is_hole(std::uint64_t index) const { return index < chunks.size() && !chunks[index]; }
    // The CRC-32 recorded for chunk `index`, if any.
    std::optional<std::uint32_t> chunk_crc32(std::uint64_t index) const {
        return index < crc32.size() ? crc32[index] : std::nullopt;
    }

    ChunkCheck chunk_check(std::uint64_t index) const;

    friend bool operator==(const Manifest&, const Manifest&) = default;
};

// Format 2 when no stored chunk has a digest and every one a CRC-32 (what the uploader makes);
// format 1 otherwise.
std::string encode_manifest(const Manifest& manifest);

// EINVAL with one line on anything but a well-formed manifest.
Result<Manifest> decode_manifest(std::string_view body);

} // namespace rfs::layout
