// Byte-level helpers for riak-devnode: base64/base62, a compact binary record writer/reader for
// the LevelDB values, and random identifiers. URL decoding and quoting, HTTP dates, UTF-8
// validation and header text helpers are proto/'s (riak_paths.hpp, riak_messages.hpp, text.hpp).
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rfs::devnode {

std::string base64_encode(std::string_view in);
// Standard alphabet; padding optional; whitespace is not accepted. nullopt on bad input.
std::optional<std::string> base64_decode(std::string_view in);

// Digits 0-9A-Za-z of an unsigned number.
std::string base62(uint64_t v);
// A random base-62 identifier of `bits` of entropy (vtags, generated keys, multipart boundaries).
std::string random_base62(int bits);
uint64_t random_u64();

int64_t now_micros();
// The whole seconds of now_micros(): HTTP dates (Last-Modified, Date) and stats windows, all
// from the one clock (time() reads a coarser one that can lag it by a second).
int64_t now_seconds();

// 64-bit FNV-1a; used where Riak prints an MD5 as an opaque token.
uint64_t fnv1a64(std::string_view s, uint64_t seed = 0xcbf29ce484222325ULL);

// Append-only binary record writer: varints and length-prefixed strings.
class RecordWriter {
public:
    void u64(uint64_t v);
    void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
    void str(std::string_view s);
    void byte(uint8_t b) { out_.push_back(static_cast<char>(b)); }
    std::string& data() { return out_; }

private:
    std::string out_;
};

// Reader over a RecordWriter's output; `ok()` turns false on any truncation and stays false.
class RecordReader {
public:
    explicit RecordReader(std::string_view in) : in_(in) {}
    uint64_t u64();
    int64_t i64() { return static_cast<int64_t>(u64()); }
    std::string str();
    uint8_t byte();
    bool ok() const { return ok_; }
    bool at_end() const { return in_.empty(); }

private:
    std::string_view in_;
    bool ok_ = true;
};

} // namespace rfs::devnode
