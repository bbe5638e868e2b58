#include "lib/layout/crc32.hpp"

#include <isa-l/crc.h>

namespace rfs::layout {

std::uint32_t crc32_of(std::string_view data) noexcept {
    // The "gzip" variant takes and returns the CRC itself, inverting before and after inside,
    // as zlib's crc32() does: 0 starts a CRC.
    return ::crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

} // namespace rfs::layout
