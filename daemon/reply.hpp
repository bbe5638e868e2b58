// The answer to one FUSE request. Every reply the daemon sends goes through a Reply, and a Reply
// that is destroyed unanswered answers for itself: EIO for an ordinary request (a handler that
// threw, a body on the blocking pool that threw, a completion dropped by a stopping loop), or
// nothing for a forget-type request (Kind::none), which the kernel never waits on. So no request
// can be left unanswered, whatever unwinds through its handler: the application's system call
// fails instead of hanging until the connection is aborted.
//
// Move-only; one owner at a time (the handler, then the completion it hands down). The request
// itself is freed by libfuse with the answer: after answering, a Reply is empty and req() is
// null. The answering calls return libfuse's result (-ENOENT: the request was interrupted and
// the kernel will not read the answer).
//
// A Reply also carries its request's metrics stamp (daemon/fuse_metrics.hpp), taken when it is
// made on the dispatching thread, and records the answer (latency, errno) when it is sent.
#pragma once

#include "daemon/fuse_metrics.hpp"
#include "daemon/kernel_order.hpp"

#include <fuse_lowlevel.h>

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace rfs {

class Reply {
public:
    enum class Kind : std::uint8_t {
        answer, // the kernel waits for an answer: EIO if none was given
        none,   // FORGET and BATCH_FORGET: fuse_reply_none
    };

    explicit Reply(fuse_req_t req, Kind kind = Kind::answer) noexcept : req_(req), kind_(kind) {
        fuse_metrics::RequestStamp stamp = fuse_metrics::current();
        opcode_ = stamp.opcode;
        start_ns_ = stamp.start_ns;
    }
    Reply(Reply&& other) noexcept
        : req_(std::exchange(other.req_, nullptr)), kind_(other.kind_), opcode_(other.opcode_),
          start_ns_(other.start_ns_) {}
    Reply& operator=(Reply&&) = delete;
    Reply(const Reply&) = delete;
    Reply& operator=(const Reply&) = delete;
    ~Reply() {
        if (req_) unanswered();
    }

    // The request, for fuse_req_ctx() and friends; null once answered.
    fuse_req_t req() const { return req_; }

    int err(int err) { return fuse_reply_err(take(err), err); }
    void none() { fuse_reply_none(take()); }
    int entry(const fuse_entry_param& e) { return fuse_reply_entry(take(), &e); }
    int create(const fuse_entry_param& e, const fuse_file_info& fi) {
        return fuse_reply_create(take(), &e, &fi);
    }
    int attr(const struct stat& st, double timeout) {
        return fuse_reply_attr(take(), &st, timeout);
    }
    int readlink(const char* target) { return fuse_reply_readlink(take(), target); }
    int open(const fuse_file_info& fi) { return fuse_reply_open(take(), &fi); }
    int write(size_t count) { return fuse_reply_write(take(), count); }
    int buf(const char* data, size_t size) { return fuse_reply_buf(take(), data, size); }
    int statfs(const struct statvfs& sv) { return fuse_reply_statfs(take(), &sv); }
    int xattr(size_t size) { return fuse_reply_xattr(take(), size); }
    int lseek(off_t offset) { return fuse_reply_lseek(take(), offset); }

private:
    // `err`: the errno the answer carries (0: success), for the metrics.
    fuse_req_t take(int err = 0) noexcept {
        if (start_ns_) fuse_metrics::record_answer({opcode_, start_ns_}, err);
        kernel_order::answering();
        return std::exchange(req_, nullptr);
    }
    void unanswered() noexcept; // fuse_ops.cpp

    fuse_req_t req_;
    // The metrics stamp, kept flat so that a Reply stays 24 bytes (completions hold one inline).
    Kind kind_;
    std::uint32_t opcode_;
    std::uint64_t start_ns_;
};

// Completions that capture a Reply and a little more must still fit rfs::Callback's inline room.
static_assert(sizeof(Reply) <= 3 * sizeof(void*));

} // namespace rfs
