#include "daemon/fuse_metrics.hpp"

#include "lib/metrics/histogram.hpp"

#include <linux/fuse.h>

#include <array>
#include <cerrno>
#include <string_view>

namespace rfs::fuse_metrics {
namespace {

// Opcodes below this are counted (every FUSE operation; CUSE_INIT and beyond are not ours).
constexpr std::uint32_t kOpcodes = 64;
constexpr unsigned kShards = 4;

struct OpStats {
    metrics::LatencyHistogram latency;
    metrics::Counter errors; // answered with any errno
};

struct alignas(64) Shard {
    std::array<OpStats, kOpcodes> ops;
    metrics::Counter eio;
    metrics::Counter unanswered;
};

std::atomic<bool> g_enabled{false};
std::array<Shard, kShards> g_shards;
std::atomic<unsigned> g_next_shard{0};
thread_local RequestStamp t_dispatching;

Shard& my_shard() noexcept {
    thread_local unsigned index = g_next_shard.fetch_add(1, std::memory_order_relaxed) % kShards;
    return g_shards[index];
}

std::string_view op_name(std::uint32_t opcode) {
    switch (opcode) {
    case FUSE_LOOKUP:
        return "lookup";
    case FUSE_FORGET:
        return "forget";
    case FUSE_GETATTR:
        return "getattr";
    case FUSE_SETATTR:
        return "setattr";
    case FUSE_READLINK:
        return "readlink";
    case FUSE_SYMLINK:
        return "symlink";
    case FUSE_MKNOD:
        return "mknod";
    case FUSE_MKDIR:
        return "mkdir";
    case FUSE_UNLINK:
        return "unlink";
    case FUSE_RMDIR:
        return "rmdir";
    case FUSE_RENAME:
        return "rename";
    case FUSE_LINK:
        return "link";
    case FUSE_OPEN:
        return "open";
    case FUSE_READ:
        return "read";
    case FUSE_WRITE:
        return "write";
    case FUSE_STATFS:
        return "statfs";
    case FUSE_RELEASE:
        return "release";
    case FUSE_FSYNC:
        return "fsync";
    case FUSE_SETXATTR:
        return "setxattr";
    case FUSE_GETXATTR:
        return "getxattr";
    case FUSE_LISTXATTR:
        return "listxattr";
    case FUSE_REMOVEXATTR:
        return "removexattr";
    case FUSE_FLUSH:
        return "flush";
    case FUSE_INIT:
        return "init";
    case FUSE_OPENDIR:
        return "opendir";
    case FUSE_READDIR:
        return "readdir";
    case FUSE_RELEASEDIR:
        return "releasedir";
    case FUSE_FSYNCDIR:
        return "fsyncdir";
    case FUSE_GETLK:
        return "getlk";
    case FUSE_SETLK:
        return "setlk";
    case FUSE_SETLKW:
        return "setlkw";
    case FUSE_ACCESS:
        return "access";
    case FUSE_CREATE:
        return "create";
    case FUSE_INTERRUPT:
        return "interrupt";
    case FUSE_BMAP:
        return "bmap";
    case FUSE_DESTROY:
        return "destroy";
    case FUSE_IOCTL:
        return "ioctl";
    case FUSE_POLL:
        return "poll";
    case FUSE_NOTIFY_REPLY:
        return "notify_reply";
    case FUSE_BATCH_FORGET:
        return "batch_forget";
    case FUSE_FALLOCATE:
        return "fallocate";
    case FUSE_READDIRPLUS:
        return "readdirplus";
    case FUSE_RENAME2:
        return "rename2";
    case FUSE_LSEEK:
        return "lseek";
    case FUSE_COPY_FILE_RANGE:
        return "copy_file_range";
    case FUSE_SYNCFS:
        return "syncfs";
    case FUSE_TMPFILE:
        return "tmpfile";
    default:
        return "";
    }
}

} // namespace

void enable() {
    g_enabled.store(true, std::memory_order_relaxed);
}

bool enabled() noexcept {
    return g_enabled.load(std::memory_order_relaxed);
}

void begin_dispatch(std::uint32_t opcode) noexcept {
    if (!enabled() || opcode >= kOpcodes) return;
    t_dispatching = RequestStamp{opcode, metrics::now_ns()};
}

void end_dispatch() noexcept {
    t_dispatching = RequestStamp{};
}

RequestStamp current() noexcept {
    return t_dispatching;
}

void record_answer(const RequestStamp& stamp, int err) noexcept {
    if (stamp.start_ns == 0) return;
    std::uint64_t now = metrics::now_ns();
    Shard& shard = my_shard();
    OpStats& op = shard.ops[stamp.opcode];
    op.latency.record(now > stamp.start_ns ? now - stamp.start_ns : 0);
    if (err != 0) {
        op.errors.add();
        if (err == EIO) shard.eio.add();
    }
}

void record_unanswered() noexcept {
    if (enabled()) my_shard().unanswered.add();
}

std::uint64_t eio_answers() {
    std::uint64_t n = 0;
    for (const auto& shard : g_shards)
        n += shard.eio.value();
    return n;
}

std::uint64_t unanswered() {
    std::uint64_t n = 0;
    for (const auto& shard : g_shards)
        n += shard.unanswered.value();
    return n;
}

void write(metrics::TextExposition& out) {
    using Type = metrics::TextExposition::Type;
    std::array<metrics::HistogramSnapshot, kOpcodes> latency{};
    std::array<std::uint64_t, kOpcodes> errors{};
    for (const auto& shard : g_shards) {
        for (std::uint32_t op = 0; op < kOpcodes; ++op) {
            shard.ops[op].latency.add_to(latency[op]);
            errors[op] += shard.ops[op].errors.value();
        }
    }
    // Only operations that were seen: a mount that never got a mknod shows no mknod series.
    auto seen = [&](std::uint32_t op) { return latency[op].count > 0 && !op_name(op).empty(); };
    out.family("riakfs_fuse_requests_total", Type::counter,
               "FUSE requests answered, by operation.");
    for (std::uint32_t op = 0; op < kOpcodes; ++op)
        if (seen(op)) out.sample({{"op", op_name(op)}}, latency[op].count);
    out.family("riakfs_fuse_request_errors_total", Type::counter,
               "FUSE requests answered with an error (any errno, ENOENT of a lookup included), by "
               "operation.");
    for (std::uint32_t op = 0; op < kOpcodes; ++op)
        if (seen(op)) out.sample({{"op", op_name(op)}}, errors[op]);
    out.family("riakfs_fuse_request_duration_seconds", Type::histogram,
               "Time from reading a FUSE request to sending its answer, by operation.");
    for (std::uint32_t op = 0; op < kOpcodes; ++op)
        if (seen(op)) out.histogram({{"op", op_name(op)}}, latency[op]);
}

} // namespace rfs::fuse_metrics
