// What every fuzz target of test/fuzz shares: libFuzzer's entry point and a reader that cuts one
// input into the pieces a target needs (a selector byte, separated fields), so that one byte
// string drives several calls and every byte string is a valid input.
//
// The same target sources build two ways (test/fuzz/meson.build): with libFuzzer in a
// -Dfuzz=true clang build, or with replay_main.cpp in every other build, where the corpus
// (including every input that once crashed) runs as an ordinary test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace rfs::fuzz {

class Input {
public:
    Input(const std::uint8_t* data, std::size_t size)
        : rest_(reinterpret_cast<const char*>(data), size) {}

    bool empty() const { return rest_.empty(); }
    std::string_view rest() const { return rest_; }

    // The next byte, or 0 once the input is used up.
    std::uint8_t byte() {
        if (rest_.empty()) return 0;
        auto b = static_cast<std::uint8_t>(rest_.front());
        rest_.remove_prefix(1);
        return b;
    }

    // The bytes up to the next `sep` (dropped), or everything left.
    std::string_view field(char sep) {
        std::size_t at = rest_.find(sep);
        std::string_view out = rest_.substr(0, at);
        rest_.remove_prefix(at == std::string_view::npos ? rest_.size() : at + 1);
        return out;
    }

    // Every remaining field.
    std::vector<std::string> fields(char sep) {
        std::vector<std::string> out;
        while (!rest_.empty())
            out.emplace_back(field(sep));
        return out;
    }

private:
    std::string_view rest_;
};

// A property of the code under test does not hold: report it like a crash, with the input.
[[noreturn]] inline void property_failed(const char* what) {
    std::fprintf(stderr, "fuzz property failed: %s\n", what);
    std::abort();
}

#define RFS_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) ::rfs::fuzz::property_failed(#cond);                                          \
    } while (0)

} // namespace rfs::fuzz
