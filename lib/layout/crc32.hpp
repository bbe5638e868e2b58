// CRC-32 (zlib's crc32(): the IEEE 802.3 polynomial, as gzip and PNG use it) of a chunk: the
// check a reader makes of each chunk it fetches against the manifest (manifest.hpp), about three
// times cheaper than the chunk's SHA-256.
#pragma once

#include <cstdint>
#include <string_view>

namespace rfs::layout {

std::uint32_t crc32_of(std::string_view data) noexcept;

} // namespace rfs::layout
