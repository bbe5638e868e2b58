// Per-operation FUSE request metrics: how many requests of each kind were answered, with what
// latency (from the moment the channel read the request to the moment its answer is sent) and
// how many were answered with an error. Any thread.
//
// Off by default (-o metrics= turns them on): then every request pays one relaxed load. On, a
// request costs two clock reads and a few relaxed atomic additions in one of a few shards (the
// shard is the calling thread's, so the FUSE loops and the blocking pool rarely write the same
// cache line); no lock, no allocation. The endpoint's thread sums the shards when scraped.
//
// How a request is tied to its answer: the channel stamps the opcode and start time on its thread
// before dispatching (begin_dispatch), the Reply made by the handler copies the stamp, and
// carries it along wherever the answer is sent from (the blocking pool, the migration loop).
#pragma once

#include "lib/metrics/exposition.hpp"

#include <atomic>
#include <cstdint>

namespace rfs::fuse_metrics {

struct RequestStamp {
    std::uint32_t opcode = 0;
    std::uint64_t start_ns = 0; // 0: not timed (metrics off, or made outside a dispatch)
};

void enable();
bool enabled() noexcept;

// The channel, around fuse_session_process_buf: the request being dispatched on this thread.
void begin_dispatch(std::uint32_t opcode) noexcept;
void end_dispatch() noexcept;
// The stamp of the request being dispatched on this thread (for a new Reply).
RequestStamp current() noexcept;

// An answer is being sent: `err` is its errno (0 for success).
void record_answer(const RequestStamp& stamp, int err) noexcept;
// A request that no handler answered (Reply's EIO of last resort).
void record_unanswered() noexcept;

// riakfs_fuse_requests_total, riakfs_fuse_request_duration_seconds and
// riakfs_fuse_request_errors_total, by operation; and the FUSE kinds of riakfs_errors_total
// (written by the caller's family, see metrics_page.cpp).
void write(metrics::TextExposition& out);
// Requests answered EIO, and requests no handler answered.
std::uint64_t eio_answers();
std::uint64_t unanswered();

} // namespace rfs::fuse_metrics
