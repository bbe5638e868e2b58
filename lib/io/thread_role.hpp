// How the daemon's threads share the CPU: the threads that answer applications preempt the
// threads that migrate in the background as soon as a request wakes them.
//
// Why: on Linux 6.12 and later (EEVDF), a fair thread that wakes up runs at once only if its
// deadline (its start plus its time slice) comes before the running thread's; with equal
// slices (the kernel's default, 0.7-3 ms) a FUSE request arriving while a copy, the drain's walk
// or a state write holds the CPU often waits for the rest of that slice. A short slice for the
// serving threads gives them the earlier deadline. Their bursts are short, so they lose nothing
// by it; the background threads keep the default and are preempted, never starved. Measured
// with bench/run-riak's "foreground open+read+close p99 during drain" (bench/README.md).
// Kernels before 6.12 accept the call and ignore the slice of a fair thread: nothing changes
// there. The thread's policy and nice value are kept (an operator's `nice riakfs ...` stays).
#pragma once

namespace rfs::io {

enum class ThreadRole {
    serving,    // FUSE loops and the helpers they wait on: a 100 us slice (the kernel's minimum)
    background, // migration, drain, state records, releases: the kernel's default slice
};

// Applies `role` to the calling thread (threads it starts later inherit it). False when the
// kernel refused (the thread keeps what it had; nothing else depends on it).
bool apply_thread_role(ThreadRole role) noexcept;

} // namespace rfs::io
