// PipelineDecoder: the bytes of one keep-alive HTTP/1.1 connection -> the ordered sequence of
// complete responses, for pipelined requests. Feed arbitrary chunks as they arrive; responses
// come out in order; bytes past the last complete response are kept for the next one.
// Not thread-safe: one decoder per connection, used by the thread that owns the connection.
// Movable (e.g. to reset a connection: `decoder = PipelineDecoder(limits);`).
//
// The caller tells the decoder the method of every request it sends (expect()), in order, so it
// knows which responses have no body (HEAD). 1xx/204/304 are bodiless by status; bodies are
// framed by Content-Length or chunked encoding; a response with neither ends at EOF (finish()).
// Interim 1xx responses (100 Continue) are dropped and do not consume a request.
//
// Errors (the decoder is poisoned afterwards; the connection must be closed and the requests
// still pending failed or retried):
//   EPROTO       malformed status line/headers/chunk framing, conflicting Content-Length
//                headers, Content-Length together with chunked, bytes with no request pending
//                (e.g. a body longer than its Content-Length), bytes after "Connection: close"
//   EMSGSIZE     header block larger than Limits::header_limit, or one header field longer
//                than Beast can store (64 KiB)
//   EFBIG        body larger than Limits::body_limit
//   ECONNRESET   finish() in the middle of a response (truncated headers or body)
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/optional/optional.hpp>

#include "proto/result.hpp"
#include "proto/riak_messages.hpp"

namespace rfs::proto {

class PipelineDecoder {
public:
    struct Limits {
        // Vclocks, Link/index headers and sibling responses easily exceed Beast's 8 KB default.
        std::uint32_t header_limit = 1u << 20;
        // Riak refuses objects above 50 MB by default; key streams can be larger.
        std::uint64_t body_limit = std::uint64_t{256} << 20;
    };

    PipelineDecoder() = default;
    explicit PipelineDecoder(Limits limits) : limits_(limits) {}

    // Records that a request with `method` was sent. Call in send order, before its response
    // bytes are fed.
    void expect(http::verb method) { pending_.push_back(method); }

    // Decodes as many complete responses as the received bytes allow (straight from `bytes` when
    // nothing is buffered: a body is copied once, into its response) and keeps the rest.
    Result<void> feed(std::string_view bytes);
    // The peer closed the connection: completes an EOF-delimited response, or reports a
    // truncated one. Requests still pending() afterwards were never answered (not an error here).
    Result<void> finish();

    // Complete responses, oldest first.
    bool has_response() const noexcept { return !ready_.empty(); }
    std::size_t ready() const noexcept { return ready_.size(); }
    std::optional<Response> next();

    // Requests sent whose responses are not complete yet (including the one being decoded).
    std::size_t pending() const noexcept { return pending_.size(); }
    // Received bytes not yet consumed by the parser.
    std::size_t buffered() const noexcept { return rx_.size() - rx_pos_; }
    // True while a response has started but is not complete.
    bool in_progress() const noexcept { return parser_ != nullptr; }
    // The last complete response said the server will close (keep_alive() == false).
    bool closing() const noexcept { return closing_; }
    bool failed() const noexcept { return error_.has_value(); }
    const std::optional<Error>& error() const noexcept { return error_; }

private:
    // Beast's string_body grows the body with resize(), which zero-fills every byte before the
    // parser copies it in: for 1 MiB chunks that memset was a tenth of the reading thread's time.
    // This body appends instead (same std::string value, so complete() moves it into a Response).
    struct AppendStringBody {
        using value_type = std::string;
        class reader {
        public:
            template <bool isRequest, class Fields>
            reader(http::header<isRequest, Fields>&, value_type& body) : body_(body) {}
            void init(const boost::optional<std::uint64_t>& length, boost::system::error_code& ec);
            template <class ConstBufferSequence>
            std::size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
                std::size_t n = 0;
                for (auto b : boost::beast::buffers_range_ref(buffers)) {
                    body_.append(static_cast<const char*>(b.data()), b.size());
                    n += b.size();
                }
                ec = {};
                return n;
            }
            void finish(boost::system::error_code& ec) { ec = {}; }

        private:
            value_type& body_;
        };
    };
    using Parser = http::response_parser<AppendStringBody>;

    // Decodes from `in` as far as it goes; returns how many of its bytes were consumed.
    Result<std::size_t> decode(std::string_view in);
    void complete();
    Error fail(Error e);

    Limits limits_;
    std::string rx_; // received bytes; [rx_pos_, end) not yet consumed
    std::size_t rx_pos_ = 0;
    std::deque<http::verb> pending_; // methods of requests awaiting a response, in send order
    std::deque<Response> ready_;
    std::unique_ptr<Parser> parser_; // the response being decoded (parsers are single-use)
    std::optional<Error> error_;
    bool closing_ = false;
    bool eof_ = false;
};

} // namespace rfs::proto
