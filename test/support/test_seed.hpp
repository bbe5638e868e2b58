// The seed of a test's random choices (data, operations, the fault draws of riak-devnode):
// RIAKFS_TEST_SEED when set, to replay a failed run, else a fresh one each run, so that runs
// cover different choices. Printed on stderr when chosen, so that every run's output names the
// seed it used; tests also add it to their failure messages (INFO).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

namespace rfs::test {

inline std::uint64_t test_seed(const char* what) {
    std::uint64_t seed = 0;
    const char* env = std::getenv("RIAKFS_TEST_SEED");
    if (env != nullptr && *env != '\0') {
        char* end = nullptr;
        errno = 0;
        seed = std::strtoull(env, &end, 0);
        if (errno != 0 || *end != '\0' || *env == '-')
            throw std::invalid_argument(std::string("RIAKFS_TEST_SEED must be an unsigned "
                                                    "64-bit number, got '") +
                                        env + "'");
    } else {
        std::random_device rd;
        seed = (std::uint64_t(rd()) << 32) ^ rd();
    }
    std::fprintf(stderr, "%s: seed %llu (RIAKFS_TEST_SEED=%llu replays it)\n", what,
                 static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
    return seed;
}

// For a test whose sequence is fixed by default (`fixed`, the same choices every run, as CI
// runs it): RIAKFS_TEST_SEED when set, to sweep other sequences or replay one (test_seed()).
inline std::uint64_t fixed_or_test_seed(const char* what, std::uint64_t fixed) {
    const char* env = std::getenv("RIAKFS_TEST_SEED");
    return env != nullptr && *env != '\0' ? test_seed(what) : fixed;
}

} // namespace rfs::test
