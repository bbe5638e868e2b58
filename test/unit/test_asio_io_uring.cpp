// Asio's io_uring backend submits its cancellations without user data of their own, and liburing
// no longer clears the slot's old user data, so a cancellation's completion could reach whichever
// operation used that ring slot before (lib/common/asio_io_uring_sqe.hpp, forced into every
// translation unit, clears it). This test fails without that header: a read that nothing ever
// answers completes with 0 bytes (an end of stream) or an error once the ring has wrapped a few
// times under cancellations.
#include <catch2/catch.hpp>

#include <cstddef>
#include <deque>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>

namespace {

namespace asio = boost::asio;
using asio::local::stream_protocol;

TEST_CASE("a cancellation never completes another socket's operation", "[asio][io_uring]") {
    asio::io_context ioc(1);
    // Quiet reads: nothing is ever written to them, so they must stay pending. A new one starts
    // every 250 rounds: a stale mark lasts until its slot is next used by an operation that
    // marks itself, so each quiet read has about one chance, when the ring first wraps past it,
    // of being hit; a hundred of them leave next to no chance of missing the fault.
    struct Quiet {
        explicit Quiet(asio::io_context& ioc) : socket(ioc), peer(ioc) {}
        stream_protocol::socket socket, peer;
        char byte = 0;
        bool done = false;
        boost::system::error_code ec;
        std::size_t bytes = 0;
    };
    std::deque<Quiet> quiet;

    // Each round starts reads that never get data and cancels them: one submission per read and
    // one per cancellation. Asio's ring has 16,384 slots; 40,000 rounds of one to three reads
    // wrap it ten times, the varying count moving the cancellations over the slots.
    std::size_t cancelled = 0, quiet_done = 0;
    for (int round = 0; round < 40'000 && quiet_done == 0; ++round) {
        if (round % 250 == 0 && quiet.size() < 100) {
            Quiet& q = quiet.emplace_back(ioc);
            asio::local::connect_pair(q.socket, q.peer);
            q.socket.async_read_some(
                asio::buffer(&q.byte, 1),
                [&q, &quiet_done](boost::system::error_code ec, std::size_t n) {
                    q.done = true;
                    q.ec = ec;
                    q.bytes = n;
                    ++quiet_done;
                });
        }
        std::deque<stream_protocol::socket> sockets;
        char bytes[3] = {};
        const int reads = 1 + round % 3;
        for (int i = 0; i < reads; ++i) {
            auto& reader = sockets.emplace_back(ioc);
            auto& writer = sockets.emplace_back(ioc);
            asio::local::connect_pair(reader, writer);
            reader.async_read_some(asio::buffer(&bytes[i], 1),
                                   [&](boost::system::error_code ec, std::size_t) {
                                       if (ec == asio::error::operation_aborted) ++cancelled;
                                   });
        }
        ioc.poll();
        for (std::size_t i = 0; i < sockets.size(); i += 2)
            sockets[i].cancel();
        ioc.poll();
    }
    for (const Quiet& q : quiet) {
        INFO("a quiet read completed: " << q.ec.message() << ", " << q.bytes << " bytes");
        CHECK_FALSE(q.done);
    }
    CHECK(quiet.size() == 100);
    CHECK(cancelled > 40'000);
    for (Quiet& q : quiet)
        q.socket.close();
    ioc.poll();
}

} // namespace
