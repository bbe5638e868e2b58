// Included first in every translation unit (meson.build passes it with -include): every io_uring
// submission entry Asio takes starts with no user data, and Asio's rings are smaller.
//
// Why: Asio's io_uring backend (Boost 1.81) marks each submission with the address of the
// operation queue its completion belongs to, and ignores completions whose mark is null. But it
// never marks the cancellations it submits (IORING_OP_ASYNC_CANCEL, when a socket is closed or
// cancelled with operations pending) nor one timeout removal, and liburing 2.2 and later no longer
// clear the mark when an entry is prepared (liburing commit 8ecd3fd, "Don't clear
// sqe->user_data as part of command prep"). Such an entry keeps the mark of whatever operation
// used that slot of the ring before, so the cancellation's result (0, or -ENOENT when the
// target was already done) is delivered to that earlier operation's queue: a pending read on
// another connection completes with 0 bytes (an end of stream the node never sent) or a write
// with ENOENT. Under connection churn the riak client saw exactly that (test_transport.cpp,
// "connections given up mid-operation never disturb the next ones"). Clearing the mark when the
// entry is taken makes those completions unmarked, which Asio ignores, as it intends to.
//
// Asio calls `::io_uring_get_sqe(&ring_)`; the macro sends that call here. liburing.h is
// included first so that its own inline functions keep the real one. Every translation unit
// must see the same definition of Asio's inline service code, hence the forced include rather
// than an include in the files that happen to use Asio.
#pragma once

#include <liburing.h>

inline io_uring_sqe* riakfs_io_uring_get_sqe_unmarked(io_uring* ring) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (sqe != nullptr) io_uring_sqe_set_data(sqe, nullptr);
    return sqe;
}

#define io_uring_get_sqe riakfs_io_uring_get_sqe_unmarked

// Asio sizes every ring for 16,384 submissions (io_uring_service::ring_size, fixed in Boost
// 1.81): with the completion queue twice that, 1.6 MiB per event loop that stays in the daemon's
// RSS for its life (4.8 MiB of its 15 MiB at start, three loops). A smaller ring costs nothing:
// Asio submits in batches of 128 and submits at once when the ring is full (get_sqe), so the
// submission queue never holds more; operations in flight take no slot; and a completion queue
// that overflows is kept by the kernel (IORING_FEAT_NODROP, Linux 5.5) and flushed by liburing
// when the loop next waits.
inline constexpr unsigned riakfs_io_uring_entries = 2048;

inline int riakfs_io_uring_queue_init(unsigned entries, io_uring* ring, unsigned flags) {
    return io_uring_queue_init(
        entries < riakfs_io_uring_entries ? entries : riakfs_io_uring_entries, ring, flags);
}

#define io_uring_queue_init riakfs_io_uring_queue_init
