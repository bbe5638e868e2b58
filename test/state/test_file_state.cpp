// The byte encodings of lib/state: FileState records and the codec under them. Garbage must
// decode to an error, never to a crash or a half-filled value.
#include <cerrno>
#include <limits>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "lib/state/codec.hpp"
#include "lib/state/file_state.hpp"

using namespace rfs::state;

namespace {

FileState full_state() {
    FileState s;
    s.phase = Phase::releasing;
    s.version = "v-0123456789abcdef";
    s.sha256 = std::string(32, '\xab');
    s.vclock = "a85hYGBgzGDKBVIcR4M2cgczH7HPYEpkzGNlsP/VfYYvCwA=";
    s.type = "default";
    s.bucket = std::string("b\0\xff\xfe", 4);
    s.key = "dir/\xc3\x28"
            "file"; // not UTF-8
    s.size = std::numeric_limits<uint64_t>::max();
    s.mtime_ns = std::numeric_limits<int64_t>::min();
    s.ctime_ns = -1;
    s.dev = 0xfd01;
    s.ino = 1ull << 63;
    s.attempts = std::numeric_limits<uint32_t>::max();
    s.last_error = "HTTP 503: overloaded\n";
    return s;
}

} // namespace

TEST_CASE("FileState round-trips every field, extremes included", "[state][codec]") {
    FileState s = full_state();
    auto decoded = decode_file_state(encode(s));
    REQUIRE(decoded.has_value());
    CHECK(*decoded == s);

    FileState empty;
    auto decoded_empty = decode_file_state(encode(empty));
    REQUIRE(decoded_empty.has_value());
    CHECK(*decoded_empty == empty);

    for (size_t p = 0; p < FileState::phase_count; ++p) {
        FileState one;
        one.phase = static_cast<Phase>(p);
        auto back = decode_file_state(encode(one));
        REQUIRE(back.has_value());
        CHECK(back->phase == one.phase);
    }
}

TEST_CASE("every truncation and any trailing byte of a record is an error", "[state][codec]") {
    std::string bytes = encode(full_state());
    for (size_t n = 0; n < bytes.size(); ++n) {
        auto decoded = decode_file_state(std::string_view(bytes).substr(0, n));
        INFO("prefix of " << n << " bytes");
        REQUIRE_FALSE(decoded.has_value());
        CHECK(decoded.error().code == EBADMSG);
    }
    auto trailing = decode_file_state(bytes + '\0');
    REQUIRE_FALSE(trailing.has_value());
    CHECK(trailing.error().code == EBADMSG);
}

TEST_CASE("unknown format versions and phases are refused by name", "[state][codec]") {
    std::string bytes = encode(full_state());
    std::string other_version = bytes;
    other_version[0] = 2;
    auto v = decode_file_state(other_version);
    REQUIRE_FALSE(v.has_value());
    CHECK(v.error().message.find("format version 2") != std::string::npos);

    std::string bad_phase = bytes;
    bad_phase[1] = 6;
    auto p = decode_file_state(bad_phase);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().message.find("unknown phase 6") != std::string::npos);
}

TEST_CASE("random garbage never decodes into a crash", "[state][codec]") {
    std::mt19937_64 rng(12345);
    std::string valid = encode(full_state());
    size_t accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string bytes;
        if (i % 2 == 0) {
            bytes.resize(rng() % 64);
            for (char& c : bytes)
                c = static_cast<char>(rng());
        } else {
            bytes = valid; // flip a few bytes of a valid record
            for (int k = 0; k < 3; ++k)
                bytes[rng() % bytes.size()] = static_cast<char>(rng());
        }
        auto decoded = decode_file_state(bytes);
        if (decoded) {
            ++accepted;
            // Whatever decodes re-encodes to the same bytes: nothing was skipped or invented.
            CHECK(encode(*decoded) == bytes);
        } else {
            CHECK(decoded.error().code == EBADMSG);
        }
    }
    CHECK(accepted < 20000);
}

TEST_CASE("varints: overlong and oversized lengths are refused", "[state][codec]") {
    codec::Writer w;
    w.varint(std::numeric_limits<uint64_t>::max());
    w.zigzag(std::numeric_limits<int64_t>::min());
    w.zigzag(-5);
    w.bytes("xyz");
    codec::Reader r(w.data());
    uint64_t u = 0;
    int64_t a = 0, b = 0;
    std::string s;
    REQUIRE(r.varint(u));
    REQUIRE(r.zigzag(a));
    REQUIRE(r.zigzag(b));
    REQUIRE(r.bytes(s));
    CHECK(r.at_end());
    CHECK(u == std::numeric_limits<uint64_t>::max());
    CHECK(a == std::numeric_limits<int64_t>::min());
    CHECK(b == -5);
    CHECK(s == "xyz");

    const std::string eleven_bytes = std::string(10, '\xff') + '\x01';
    codec::Reader eleven(eleven_bytes);
    CHECK_FALSE(eleven.varint(u));
    const std::string beyond_64_bits = std::string(9, '\xff') + '\x02';
    codec::Reader too_big(beyond_64_bits);
    CHECK_FALSE(too_big.varint(u));
    const std::string overlong_zero("\x80\x00", 2);
    codec::Reader overlong(overlong_zero);
    CHECK_FALSE(overlong.varint(u));
    const std::string max_bytes = std::string(9, '\xff') + '\x01';
    codec::Reader max(max_bytes);
    REQUIRE(max.varint(u));
    CHECK(u == std::numeric_limits<uint64_t>::max());

    codec::Writer len;
    len.varint(1000); // a length that runs past the input
    len.byte('x');
    codec::Reader lr(len.data());
    CHECK_FALSE(lr.bytes(s));
    CHECK_FALSE(lr.ok());

    codec::Writer wide;
    wide.varint(1ull << 32);
    codec::Reader wr(wide.data());
    uint32_t small = 0;
    CHECK_FALSE(wr.u32(small));
}

TEST_CASE("phase names and the pending set", "[state][codec]") {
    CHECK(phase_name(Phase::dirty) == "dirty");
    CHECK(phase_name(Phase::released) == "released");
    CHECK(phase_name(static_cast<Phase>(9)) == "invalid");
    CHECK(is_pending(Phase::dirty));
    CHECK(is_pending(Phase::uploading));
    CHECK(is_pending(Phase::copied));
    CHECK_FALSE(is_pending(Phase::verified));
    CHECK_FALSE(is_pending(Phase::releasing));
    CHECK_FALSE(is_pending(Phase::released));
}
