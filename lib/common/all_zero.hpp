#pragma once
// Whether a block of bytes is all zeros (a hole's worth of data: the migration engine stores no
// object for it, and a fetch back leaves the placeholder's hole in place).
#include <cstring>
#include <string_view>

namespace rfs {

// The first byte, then the rest compared with itself shifted by one: libc's vectorized memcmp
// instead of a loop over the bytes, which runs a byte at a time when built without
// vectorization (and the sanitizer builds instrument every byte of it). A large sparse file
// passes every one of its chunks through here when it is copied and when it is fetched back.
inline bool all_zero(std::string_view data) {
    return data.empty() ||
           (data[0] == 0 && std::memcmp(data.data(), data.data() + 1, data.size() - 1) == 0);
}

} // namespace rfs
