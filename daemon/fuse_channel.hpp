// One event loop's reader of the FUSE device. Owning loop thread only.
//
// Each loop polls the session's /dev/fuse descriptor through its io_context (an io_uring poll),
// reads requests without blocking and hands them to libfuse's dispatcher on the same thread, so
// a request is received, served and answered without a thread hop. Handlers that keep request
// data past their return (writes waiting on io_uring) take the receive buffer with
// claim_request_buffer(); the channel then reads the next request into a fresh one.
#pragma once

#include "lib/io/executor.hpp"
#include "lib/migrate/drain_pacing.hpp"

#include <fuse_lowlevel.h>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <functional>

namespace rfs {

// Whether a request with this opcode is an application's use of the files, which the drain
// yields to, rather than the kernel's own upkeep of the connection (INIT and DESTROY at mount
// and unmount; FORGET and BATCH_FORGET, inodes leaving the kernel's cache long after the lookups
// that made them; INTERRUPT, about a request already counted) or STATFS, which df and
// monitoring agents send to every mount on their own schedule and which reads no file. Counted
// as applications, a mount's INIT and the statfs of whoever checks that it is up held a
// drain=on mount at one file in flight, with rests, for its first 200 ms (the watch's window;
// bench/run-riak's drain row starts with the mount).
bool is_application_request(std::uint32_t opcode) noexcept;

class FuseChannel {
public:
    // `on_closed` runs (on this loop) when the kernel ends the connection (unmount). Every
    // application's request read (is_application_request) is counted in `activity` (null: not
    // counted), which the drain watches.
    FuseChannel(fuse_session* session, io::Loop& loop, std::function<void()> on_closed,
                migrate::ForegroundActivity* activity = nullptr);
    ~FuseChannel();
    FuseChannel(const FuseChannel&) = delete;
    FuseChannel& operator=(const FuseChannel&) = delete;

    void start();

    // For the handler running right now on this thread: takes ownership of the buffer its
    // request was read into. Null when called outside a request.
    static io::Buffer claim_request_buffer();

private:
    void read_next();
    void on_read(const boost::system::error_code& ec, size_t n);

    fuse_session* session_;
    io::Loop& loop_;
    boost::asio::posix::stream_descriptor device_;
    std::function<void()> on_closed_;
    migrate::ForegroundActivity* activity_;
    io::Buffer buffer_;
    bool closed_ = false;
};

} // namespace rfs
