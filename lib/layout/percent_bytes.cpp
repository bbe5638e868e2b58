#include "lib/layout/percent_bytes.hpp"

#include <cerrno>

#include <fmt/format.h>

namespace rfs::layout {

namespace {

int upper_hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

} // namespace

std::string percent_encode(std::string_view raw, KeptByte kept) {
    std::string out;
    out.reserve(raw.size());
    for (unsigned char c : raw) {
        if (kept(c))
            out.push_back(static_cast<char>(c));
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

Result<std::string> percent_decode(std::string_view encoded, KeptByte kept, std::string_view what) {
    std::string out;
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        auto c = static_cast<unsigned char>(encoded[i]);
        if (kept(c)) {
            out.push_back(static_cast<char>(c));
            continue;
        }
        if (c != '%' || i + 2 >= encoded.size())
            return proto::make_error(EINVAL, "bad byte or escape at offset {}{}", i, what);
        int hi = upper_hex_value(encoded[i + 1]), lo = upper_hex_value(encoded[i + 2]);
        if (hi < 0 || lo < 0)
            return proto::make_error(EINVAL, "bad escape at offset {}{}", i, what);
        auto byte = static_cast<unsigned char>(hi * 16 + lo);
        if (kept(byte)) return proto::make_error(EINVAL, "needless escape at offset {}{}", i, what);
        out.push_back(static_cast<char>(byte));
        i += 2;
    }
    return out;
}

} // namespace rfs::layout
