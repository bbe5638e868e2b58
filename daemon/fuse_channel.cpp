#include "daemon/fuse_channel.hpp"

#include "lib/common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rfs {
namespace {
// The channel serving the request being dispatched on this thread.
thread_local FuseChannel* t_dispatching = nullptr;
thread_local io::Buffer* t_dispatch_buffer = nullptr;

// Requests read in one go before polling again: enough to drain a burst, few enough that a
// busy device cannot starve the completions queued on this loop.
constexpr int kMaxBatch = 16;
} // namespace

FuseChannel::FuseChannel(fuse_session* session, io::Loop& loop, std::function<void()> on_closed)
    : session_(session), loop_(loop), device_(loop.context()), on_closed_(std::move(on_closed)) {
    // Each loop polls its own duplicate of the session descriptor; all duplicates share one
    // open file description, so replies written by libfuse on the session fd match them.
    int fd = ::fcntl(fuse_session_fd(session_), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "dup /dev/fuse");
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    device_.assign(fd);
}

FuseChannel::~FuseChannel() {
    boost::system::error_code ignored;
    device_.close(ignored);
}

void FuseChannel::start() { wait_readable(); }

void FuseChannel::wait_readable() {
    device_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                       [this](const boost::system::error_code& ec) {
                           if (ec) {
                               if (ec != boost::asio::error::operation_aborted)
                                   RFS_LOG_ERROR("polling /dev/fuse failed: {}", ec.message());
                               return;
                           }
                           on_readable();
                       });
}

void FuseChannel::on_readable() {
    for (int i = 0; i < kMaxBatch && !closed_; ++i) {
        if (!buffer_) buffer_ = loop_.buffers().take();
        ssize_t n = ::read(device_.native_handle(), buffer_.get(), io::BufferPool::kBufferSize);
        if (n < 0) {
            int err = errno;
            if (err == EAGAIN || err == EINTR) break;
            // ENOENT: the request was interrupted before we read it; read the next one.
            if (err == ENOENT) continue;
            if (err != ENODEV) RFS_LOG_ERROR("reading /dev/fuse failed: {}", std::strerror(err));
            closed_ = true;
            fuse_session_exit(session_);
            on_closed_();
            return;
        }
        fuse_buf request{};
        request.size = static_cast<size_t>(n);
        request.mem = buffer_.get();
        t_dispatching = this;
        t_dispatch_buffer = &buffer_;
        fuse_session_process_buf(session_, &request);
        t_dispatching = nullptr;
        t_dispatch_buffer = nullptr;
        if (fuse_session_exited(session_)) {
            closed_ = true;
            on_closed_();
            return;
        }
    }
    wait_readable();
}

io::Buffer FuseChannel::claim_request_buffer() {
    if (!t_dispatch_buffer) return nullptr;
    return std::move(*t_dispatch_buffer);
}

} // namespace rfs
