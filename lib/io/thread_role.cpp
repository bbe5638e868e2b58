#include "lib/io/thread_role.hpp"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace rfs::io {

namespace {
// The kernel's struct sched_attr (include/uapi/linux/sched/types.h), whose header cannot be
// included beside glibc's <sched.h> in Debian 12 (both define struct sched_param). The layout is
// the kernel's ABI; `size` tells it which version this is (56 bytes: with the clamp fields).
struct SchedAttr {
    std::uint32_t size;
    std::uint32_t sched_policy;
    std::uint64_t sched_flags;
    std::int32_t sched_nice;
    std::uint32_t sched_priority;
    std::uint64_t sched_runtime;
    std::uint64_t sched_deadline;
    std::uint64_t sched_period;
    std::uint32_t sched_util_min;
    std::uint32_t sched_util_max;
};
static_assert(sizeof(SchedAttr) == 56);
constexpr std::uint64_t kResetOnFork = 0x01; // SCHED_FLAG_RESET_ON_FORK
// The shortest slice the kernel takes (it clamps to 0.1-100 ms); 0 means its default.
constexpr std::uint64_t kServingSliceNs = 100'000;
} // namespace

bool apply_thread_role(ThreadRole role) noexcept {
    SchedAttr attr{};
    // No glibc wrapper in Debian 12's glibc 2.36.
    if (::syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0) return false;
    // Real-time or deadline threads (set by an operator) are left as they are; SCHED_IDLE
    // threads have no slice to speak of.
    if (attr.sched_policy != SCHED_OTHER && attr.sched_policy != SCHED_BATCH) return false;
    attr.size = sizeof attr;
    attr.sched_flags &= kResetOnFork; // keep only that one; the rest are requests
    attr.sched_runtime = role == ThreadRole::serving ? kServingSliceNs : 0;
    attr.sched_deadline = 0;
    attr.sched_period = 0;
    return ::syscall(SYS_sched_setattr, 0, &attr, 0) == 0;
}

} // namespace rfs::io
