// CRC-32 of a chunk: zlib's crc32() (the IEEE 802.3 polynomial, reflected, as gzip and PNG use
// it), the check a reader makes of each chunk it fetches against the manifest (manifest.hpp).
// Computed by Intel's ISA-L (crc32_gzip_refl: carry-less-multiply folding, the widest the CPU
// has, chosen at run time), which gives zlib's values (test_crc32 checks them against zlib) at
// 91 GB/s where zlib 1.2.13 gives 6 GB/s here (a 1 MiB buffer, both in cache): zlib's crc32_z
// was a quarter of the daemon's CPU in a cold sequential read (bench/README.md).
#pragma once

#include <cstdint>
#include <string_view>

namespace rfs::layout {

std::uint32_t crc32_of(std::string_view data) noexcept;

} // namespace rfs::layout
