#include "daemon/fuse_channel.hpp"

#include "daemon/fuse_metrics.hpp"
#include "daemon/kernel_order.hpp"
#include "lib/common/log.hpp"

#include <fcntl.h>
#include <linux/fuse.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rfs {
namespace {
// The channel serving the request being dispatched on this thread.
thread_local FuseChannel* t_dispatching = nullptr;
thread_local io::Buffer* t_dispatch_buffer = nullptr;

// Requests are read this far into the buffer so that a WRITE's payload, which follows its two
// headers, starts on a page boundary: the daemon's pwrite then copies page-aligned data into the
// page cache.
constexpr size_t kRequestShift = 4096 - sizeof(fuse_in_header) - sizeof(fuse_write_in);
// What is left must still hold the largest WRITE (the kernel refuses smaller reads).
static_assert(io::BufferPool::kBufferSize - kRequestShift >=
              sizeof(fuse_in_header) + sizeof(fuse_write_in) + 256 * 4096);

} // namespace

bool is_application_request(std::uint32_t opcode) noexcept {
    switch (opcode) {
    case FUSE_INIT:
    case FUSE_DESTROY:
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_INTERRUPT:
    case FUSE_STATFS:
        return false;
    default:
        return true;
    }
}

FuseChannel::FuseChannel(fuse_session* session, io::Loop& loop, std::function<void()> on_closed,
                         migrate::ForegroundActivity* activity)
    : session_(session), loop_(loop), device_(loop.context()), on_closed_(std::move(on_closed)),
      activity_(activity) {
    // Each loop polls its own duplicate of the session descriptor; all duplicates share one
    // open file description, so replies written by libfuse on the session fd match them.
    int fd = ::fcntl(fuse_session_fd(session_), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "dup /dev/fuse");
    // A blocking descriptor would stall the loop in read(): a failure here is fatal to the loop.
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        int err = errno;
        ::close(fd);
        throw std::system_error(err, std::generic_category(), "make /dev/fuse non-blocking");
    }
    device_.assign(fd);
}

FuseChannel::~FuseChannel() {
    boost::system::error_code ignored;
    device_.close(ignored);
}

void FuseChannel::start() {
    read_next();
}

// The read itself is an io_uring operation: the kernel arms its own poll on /dev/fuse and
// performs the read when a request arrives, so each request costs one io_uring_enter and no
// speculative read() that fails with EAGAIN.
void FuseChannel::read_next() {
    if (!buffer_) buffer_ = loop_.buffers().take();
    device_.async_read_some(
        boost::asio::buffer(buffer_.get() + kRequestShift,
                            io::BufferPool::kBufferSize - kRequestShift),
        [this](const boost::system::error_code& ec, size_t n) { on_read(ec, n); });
}

void FuseChannel::on_read(const boost::system::error_code& ec, size_t n) {
    if (ec) {
        if (ec == boost::asio::error::operation_aborted) return;
        // ENOENT: the request was interrupted before we read it; read the next one.
        if (ec.value() == ENOENT || ec.value() == EINTR || ec.value() == EAGAIN) return read_next();
        // ENODEV: unmounted. ECONNABORTED: the connection was aborted through
        // /sys/fs/fuse/connections (an operator's or a watchdog's last resort); either way the
        // mount is gone and we stop.
        if (ec.value() == ECONNABORTED)
            RFS_LOG_WARN("the FUSE connection was aborted; stopping");
        else if (ec.value() != ENODEV && ec != boost::asio::error::eof)
            RFS_LOG_ERROR("reading /dev/fuse failed: {}", ec.message());
        closed_ = true;
        fuse_session_exit(session_);
        on_closed_();
        return;
    }
    fuse_buf request{};
    request.size = n;
    request.mem = buffer_.get() + kRequestShift;
    t_dispatching = this;
    t_dispatch_buffer = &buffer_;
    if (n >= sizeof(fuse_in_header)) {
        const auto opcode = reinterpret_cast<const fuse_in_header*>(request.mem)->opcode;
        if (activity_ && is_application_request(opcode)) activity_->note_request();
        fuse_metrics::begin_dispatch(opcode);
    }
    kernel_order::request_read();
    try {
        fuse_session_process_buf(session_, &request);
    } catch (...) {
        // The handler's Reply answered its request (EIO) while unwinding; the channel must go
        // on reading the others: re-arm before the loop logs the exception and runs on.
        fuse_metrics::end_dispatch();
        t_dispatching = nullptr;
        t_dispatch_buffer = nullptr;
        if (!fuse_session_exited(session_)) read_next();
        throw;
    }
    fuse_metrics::end_dispatch();
    t_dispatching = nullptr;
    t_dispatch_buffer = nullptr;
    if (fuse_session_exited(session_)) {
        closed_ = true;
        on_closed_();
        return;
    }
    read_next();
}

io::Buffer FuseChannel::claim_request_buffer() {
    if (!t_dispatch_buffer) return nullptr;
    return std::move(*t_dispatch_buffer);
}

} // namespace rfs
