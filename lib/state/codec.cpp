#include "lib/state/codec.hpp"

#include <limits>

namespace rfs::state::codec {

void Writer::varint(uint64_t v) {
    while (v >= 0x80) {
        byte(static_cast<uint8_t>(v | 0x80));
        v >>= 7;
    }
    byte(static_cast<uint8_t>(v));
}

void Writer::zigzag(int64_t v) {
    varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

void Writer::bytes(std::string_view s) {
    varint(s.size());
    out_.append(s);
}

bool Reader::byte(uint8_t& b) {
    if (!ok_ || pos_ >= in_.size()) return fail();
    b = static_cast<uint8_t>(in_[pos_++]);
    return true;
}

bool Reader::varint(uint64_t& v) {
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b;
        if (!byte(b)) return false;
        // The tenth byte may carry only the top bit of a 64-bit value.
        if (shift == 63 && b > 1) return fail();
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (b & 0x80) continue;
        // A last byte of zero after others is an overlong form: only the shortest is accepted,
        // so each value has one encoding.
        if (b == 0 && shift > 0) return fail();
        return true;
    }
    return fail();
}

bool Reader::zigzag(int64_t& v) {
    uint64_t u;
    if (!varint(u)) return false;
    v = static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
    return true;
}

bool Reader::u32(uint32_t& v) {
    uint64_t u;
    if (!varint(u)) return false;
    if (u > std::numeric_limits<uint32_t>::max()) return fail();
    v = static_cast<uint32_t>(u);
    return true;
}

bool Reader::bytes(std::string& s) {
    uint64_t n;
    if (!varint(n)) return false;
    if (n > in_.size() - pos_) return fail();
    s.assign(in_.substr(pos_, n));
    pos_ += n;
    return true;
}

} // namespace rfs::state::codec
