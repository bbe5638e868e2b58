// The C library calls of syscall_faults.hpp, made to fail on purpose. Linked into
// riakfs-test-faults only (daemon/meson.build): defining the functions here makes the
// executable's own calls, and those of the static libraries in it, bind to these definitions
// rather than the C library's, which they call through dlsym(RTLD_NEXT) whenever no armed fault
// targets the call.
//
// The symbols are the ones the daemon's objects use: it is built with 64-bit file offsets, under
// which glibc's headers send fcntl() to fcntl64 and fstatat() to fstatat64.
#include "daemon/syscall_faults.hpp"

#include "lib/io/buffer_pool.hpp"
#include "lib/io/executor.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rfs::test_faults {
namespace {

enum class Fault { none, fuse_nonblock, setid_restore, rename_stat, request_buffers };
std::atomic<Fault> g_armed{Fault::none};

bool armed(Fault f) {
    return g_armed.load(std::memory_order_relaxed) == f;
}

// The C library's definition of `name`, the one this file hides.
template <class Fn> Fn next_definition(const char* name) {
    void* fn = ::dlsym(RTLD_NEXT, name);
    if (!fn) {
        std::fprintf(stderr, "riakfs-test-faults: no C library function %s\n", name);
        std::abort();
    }
    return reinterpret_cast<Fn>(fn);
}

bool is_dev_fuse(int fd) {
    char link[32], target[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = ::readlink(link, target, sizeof target - 1);
    if (n < 0) return false;
    target[n] = '\0';
    return std::strcmp(target, "/dev/fuse") == 0;
}

bool sets_setid_bit(mode_t mode) {
    return (mode & (S_ISUID | S_ISGID)) != 0;
}

} // namespace

bool arm(std::string_view name) {
    Fault f = name == "fuse_nonblock_fails"   ? Fault::fuse_nonblock
              : name == "setid_restore_fails" ? Fault::setid_restore
              : name == "rename_stat_fails"   ? Fault::rename_stat
              : name == "no_request_buffers"  ? Fault::request_buffers
                                              : Fault::none;
    if (f == Fault::none) return false;
    g_armed.store(f, std::memory_order_relaxed);
    return true;
}

} // namespace rfs::test_faults

using rfs::test_faults::armed;
using rfs::test_faults::Fault;

extern "C" int fcntl64(int fd, int cmd, ...) {
    // Every fcntl command takes at most one argument, an integer or a pointer; glibc reads it
    // the same way.
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    if (cmd == F_SETFL && (reinterpret_cast<std::uintptr_t>(arg) & O_NONBLOCK) &&
        armed(Fault::fuse_nonblock) && rfs::test_faults::is_dev_fuse(fd)) {
        errno = EINVAL;
        return -1;
    }
    static auto next = rfs::test_faults::next_definition<int (*)(int, int, ...)>("fcntl64");
    return next(fd, cmd, arg);
}

extern "C" int fchmod(int fd, mode_t mode) noexcept {
    if (armed(Fault::setid_restore) && rfs::test_faults::sets_setid_bit(mode)) {
        errno = EPERM;
        return -1;
    }
    static auto next = rfs::test_faults::next_definition<int (*)(int, mode_t)>("fchmod");
    return next(fd, mode);
}

extern "C" int fchmodat(int dirfd, const char* name, mode_t mode, int flags) noexcept {
    if (armed(Fault::setid_restore) && rfs::test_faults::sets_setid_bit(mode)) {
        errno = EPERM;
        return -1;
    }
    static auto next =
        rfs::test_faults::next_definition<int (*)(int, const char*, mode_t, int)>("fchmodat");
    return next(dirfd, name, mode, flags);
}

extern "C" int fstatat64(int dirfd, const char* name, struct stat64* st, int flags) noexcept {
    if (armed(Fault::rename_stat) && !(flags & AT_EMPTY_PATH) &&
        std::strncmp(name, "fault-", 6) == 0) {
        errno = EIO;
        return -1;
    }
    static auto next =
        rfs::test_faults::next_definition<int (*)(int, const char*, struct stat64*, int)>(
            "fstatat64");
    return next(dirfd, name, st, flags);
}

extern "C" void* aligned_alloc(size_t alignment, size_t size) noexcept {
    if (armed(Fault::request_buffers) && alignment == 4096 &&
        size == rfs::io::BufferPool::kBufferSize && rfs::io::Executor::current()) {
        errno = ENOMEM;
        return nullptr;
    }
    // Not the C library's aligned_alloc through RTLD_NEXT: clang links ASan's run-time into the
    // executable, so RTLD_NEXT passes over its allocator and ASan's free then meets a block it
    // never made ("not malloc()-ed"). posix_memalign is not hidden here and reaches whichever
    // allocator the process has; it wants at least a pointer's alignment.
    void* block = nullptr;
    int err = ::posix_memalign(&block, alignment < sizeof(void*) ? sizeof(void*) : alignment, size);
    if (err != 0) {
        errno = err;
        return nullptr;
    }
    return block;
}
