#include "lib/layout/crc32.hpp"

#include <zlib.h>

namespace rfs::layout {

std::uint32_t crc32_of(std::string_view data) noexcept {
    const auto* bytes = reinterpret_cast<const Bytef*>(data.data());
    return static_cast<std::uint32_t>(::crc32_z(::crc32_z(0, Z_NULL, 0), bytes, data.size()));
}

} // namespace rfs::layout
