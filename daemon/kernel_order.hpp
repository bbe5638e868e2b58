// What ThreadSanitizer cannot see: the FUSE kernel module orders an answer before any request
// that depends on it. A handle made on one loop (OPEN, OPENDIR: a File or Dir in fh) comes back
// in a request that another loop reads, and both the answer (libfuse's writev) and the request
// (Asio's read through io_uring, on that loop's own clone of /dev/fuse) pass through the kernel
// only, so TSan reported every use of a handle on a loop other than its maker's as a race. The
// token says it: every answer releases it, every request read acquires it. It orders nothing in
// other builds (it compiles to nothing there).
#pragma once

#if defined(__SANITIZE_THREAD__)
#define RFS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RFS_TSAN 1
#endif
#endif

#ifdef RFS_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace rfs::kernel_order {

#ifdef RFS_TSAN
inline char token;
#endif

// Before an answer is written to /dev/fuse.
inline void answering() noexcept {
#ifdef RFS_TSAN
    __tsan_release(&token);
#endif
}

// After a request is read from /dev/fuse, before it is dispatched.
inline void request_read() noexcept {
#ifdef RFS_TSAN
    __tsan_acquire(&token);
#endif
}

} // namespace rfs::kernel_order
