#include <cstdint>
#include <random>
#include <string>

#include <catch2/catch.hpp>
#include <zlib.h>

#include "lib/layout/crc32.hpp"

using rfs::layout::crc32_of;

namespace {

// What manifests written by every riakfs so far hold, and what other clients compute.
std::uint32_t zlib_crc32(std::string_view data) {
    return static_cast<std::uint32_t>(
        ::crc32_z(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

std::string random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::string out(n, '\0');
    for (auto& c : out)
        c = static_cast<char>(gen());
    return out;
}

} // namespace

TEST_CASE("crc32 gives the standard check value", "[crc32]") {
    CHECK(crc32_of("") == 0u);
    CHECK(crc32_of("123456789") == 0xCBF43926u); // the CRC-32/ISO-HDLC check value
    CHECK(crc32_of(std::string(1, '\0')) == 0xD202EF8Du);
}

TEST_CASE("crc32 equals zlib's crc32 at every length and alignment", "[crc32]") {
    // The folding code takes 16, 64 and 256-byte steps with tails of every size; start
    // offsets 0-15 give it unaligned buffers too.
    const std::string data = random_bytes((1 << 20) + 4096, 7);
    for (std::size_t offset = 0; offset < 16; ++offset) {
        for (std::size_t n = 0; n <= 600; ++n) {
            auto part = std::string_view(data).substr(offset, n);
            INFO("offset " << offset << ", length " << n);
            REQUIRE(crc32_of(part) == zlib_crc32(part));
        }
    }
    for (std::size_t n : {4095u, 4096u, 4097u, 65535u, 65536u, (1u << 20) - 1, 1u << 20,
                          (1u << 20) + 1, (1u << 20) + 4096}) {
        auto part = std::string_view(data).substr(0, n);
        INFO("length " << n);
        CHECK(crc32_of(part) == zlib_crc32(part));
    }
    const std::string zeros(1 << 20, '\0'); // a chunk of a sparse file written out
    CHECK(crc32_of(zeros) == zlib_crc32(zeros));
}
