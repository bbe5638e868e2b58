// The byte encoding shared by the state records and the placeholder marker: unsigned LEB128
// varints, zigzag for signed values, strings as a varint length then the bytes (any bytes: paths
// and keys need not be UTF-8). The reader never reads past its input and reports truncation,
// overlong (or not shortest) varints and lengths beyond the input as failures, so garbage cannot
// crash a decoder, and each value has exactly one encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rfs::state::codec {

class Writer {
public:
    void byte(uint8_t b) { out_.push_back(static_cast<char>(b)); }
    void varint(uint64_t v);
    void zigzag(int64_t v);
    void bytes(std::string_view s);

    const std::string& data() const& { return out_; }
    std::string data() && { return std::move(out_); }

private:
    std::string out_;
};

// Each read returns false (and leaves the output unspecified) when the input is malformed; after
// a failure the reader stays failed.
class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}

    bool byte(uint8_t& b);
    bool varint(uint64_t& v);
    bool zigzag(int64_t& v);
    bool u32(uint32_t& v); // a varint that must fit 32 bits
    bool bytes(std::string& s);

    // True once every byte has been read and nothing failed.
    bool at_end() const { return ok_ && pos_ == in_.size(); }
    bool ok() const { return ok_; }

private:
    bool fail() { return ok_ = false; }

    std::string_view in_;
    size_t pos_ = 0;
    bool ok_ = true;
};

} // namespace rfs::state::codec
