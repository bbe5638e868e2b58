// Byte-level helpers for riak-devnode (see encoding.hpp). Any thread.
#include "lib/devnode/encoding.hpp"

#include <chrono>
#include <random>

namespace rfs::devnode {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

std::mt19937_64& rng() {
    thread_local std::mt19937_64 gen{std::random_device{}() ^ static_cast<uint64_t>(now_micros()) ^
                                     reinterpret_cast<uintptr_t>(&gen)};
    return gen;
}

} // namespace

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
        out += kB64[v >> 18];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += kB64[v & 63];
    }
    if (size_t rest = in.size() - i; rest > 0) {
        uint32_t v = uint8_t(in[i]) << 16;
        if (rest == 2) v |= uint8_t(in[i + 1]) << 8;
        out += kB64[v >> 18];
        out += kB64[(v >> 12) & 63];
        out += rest == 2 ? kB64[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    while (!in.empty() && in.back() == '=')
        in.remove_suffix(1);
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(in.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = b64_value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

std::string base62(uint64_t v) {
    if (v == 0) return "0";
    std::string out;
    while (v > 0) {
        out += kB62[v % 62];
        v /= 62;
    }
    return {out.rbegin(), out.rend()};
}

uint64_t random_u64() {
    return rng()();
}

std::string random_base62(int bits) {
    std::string out;
    while (bits > 0) {
        out += base62(random_u64() >> (bits >= 64 ? 0 : 64 - bits));
        bits -= 64;
    }
    return out;
}

int64_t now_micros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int64_t now_seconds() {
    return now_micros() / 1000000;
}

uint64_t fnv1a64(std::string_view s, uint64_t seed) {
    uint64_t h = seed;
    for (char c : s) {
        h ^= static_cast<uint8_t>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

void RecordWriter::u64(uint64_t v) {
    while (v >= 0x80) {
        out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
}

void RecordWriter::str(std::string_view s) {
    u64(s.size());
    out_.append(s);
}

uint64_t RecordReader::u64() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (in_.empty()) {
            ok_ = false;
            return 0;
        }
        auto b = static_cast<uint8_t>(in_.front());
        in_.remove_prefix(1);
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return v;
    }
    ok_ = false;
    return 0;
}

std::string RecordReader::str() {
    uint64_t n = u64();
    if (!ok_ || n > in_.size()) {
        ok_ = false;
        return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
}

uint8_t RecordReader::byte() {
    if (in_.empty()) {
        ok_ = false;
        return 0;
    }
    auto b = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return b;
}

} // namespace rfs::devnode
