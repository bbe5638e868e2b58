// Nanoseconds since the epoch and back: how the migration engine's records (state store, Riak
// metadata, namespace records) hold a file's times.
#pragma once

#include <cstdint>
#include <ctime>

namespace rfs {

inline std::int64_t ns_of(const timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// Times before 1970 (negative) keep tv_nsec in [0, 1e9), as the kernel's do.
inline timespec timespec_of(std::int64_t ns) {
    std::int64_t sec = ns / 1000000000, rem = ns % 1000000000;
    if (rem < 0) {
        rem += 1000000000;
        --sec;
    }
    return timespec{static_cast<time_t>(sec), static_cast<long>(rem)};
}

} // namespace rfs
