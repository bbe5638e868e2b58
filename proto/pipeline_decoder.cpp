// PipelineDecoder: incremental decoding of pipelined HTTP/1.1 responses with Beast's parser.
#include "proto/pipeline_decoder.hpp"

#include "proto/beast_feed.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace rfs::proto {
namespace {

constexpr std::size_t kCompactThreshold = 64 * 1024;

int errno_for(const boost::system::error_code& ec) {
    if (ec == http::error::body_limit) return EFBIG;
    if (ec == http::error::header_limit) return EMSGSIZE;
    return EPROTO;
}

// A large body lands in fresh memory (a chunk cached by the reader is new heap): faulting its
// pages in one madvise costs far less than one page fault per 4 KiB as the parser copies. Any
// failure (a kernel before 5.14) only leaves the faults to the copy.
void populate(char* data, std::size_t size) {
    constexpr std::size_t kPopulateFrom = 256 << 10;
    if (size < kPopulateFrom) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) & ~(page - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(data) + size) & ~(page - 1);
    if (end > begin)
        (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
}

} // namespace

Error PipelineDecoder::fail(Error e) {
    error_ = e;
    parser_.reset();
    return e;
}

std::optional<Response> PipelineDecoder::next() {
    if (ready_.empty()) return std::nullopt;
    Response r = std::move(ready_.front());
    ready_.pop_front();
    return r;
}

void PipelineDecoder::AppendStringBody::reader::init(const boost::optional<std::uint64_t>& length,
                                                     boost::system::error_code& ec) {
    // The parser has checked a Content-Length against body_limit before this.
    if (length) {
        body_.reserve(static_cast<std::size_t>(*length));
        populate(body_.data(), static_cast<std::size_t>(*length));
    }
    ec = {};
}

Result<void> PipelineDecoder::feed(std::string_view bytes) {
    if (error_) return *error_;
    if (eof_) return fail(make_error(EPROTO, "bytes fed after finish()"));
    if (bytes.empty()) return {};
    if (rx_pos_ == rx_.size()) {
        // Nothing buffered: decode from the caller's bytes, keep only what is left over (a
        // partial header block), so body bytes are not copied into rx_ first.
        rx_.clear();
        rx_pos_ = 0;
        auto used = decode(bytes);
        if (!used) return std::move(used).error();
        if (*used < bytes.size()) rx_.assign(bytes.substr(*used));
        return {};
    }
    rx_.append(bytes);
    auto used = decode(std::string_view(rx_).substr(rx_pos_));
    if (!used) return std::move(used).error();
    rx_pos_ += *used;
    if (rx_pos_ == rx_.size()) {
        rx_.clear();
        rx_pos_ = 0;
    } else if (rx_pos_ > kCompactThreshold && rx_pos_ * 2 > rx_.size()) {
        rx_.erase(0, rx_pos_);
        rx_pos_ = 0;
    }
    return {};
}

void PipelineDecoder::complete() {
    auto message = parser_->release();
    Response res(std::move(message.base()), std::move(message.body()));
    parser_.reset();
    const unsigned status = res.result_int();
    if (status >= 100 && status < 200 && status != 101) return; // interim: same request
    pending_.pop_front();
    if (!res.keep_alive()) closing_ = true;
    ready_.push_back(std::move(res));
}

Result<std::size_t> PipelineDecoder::decode(std::string_view in) {
    std::size_t pos = 0;
    while (pos < in.size()) {
        if (!parser_) {
            if (closing_)
                return fail(make_error(EPROTO, "{} bytes after a Connection: close response",
                                       in.size() - pos));
            if (pending_.empty())
                return fail(make_error(EPROTO, "{} bytes received with no request pending",
                                       in.size() - pos));
            parser_ = std::make_unique<Parser>();
            parser_->eager(true);
            parser_->header_limit(limits_.header_limit);
            parser_->body_limit(limits_.body_limit);
            if (pending_.front() == http::verb::head) parser_->skip(true);
        }
        // The rest waits for more bytes when the parser cannot take so few (beast_feed.hpp).
        if (!parser_may_take(*parser_, in.size() - pos)) break;
        boost::system::error_code ec;
        std::size_t n = 0;
        try {
            n = parser_->put(boost::asio::buffer(in.data() + pos, in.size() - pos), ec);
        } catch (const std::length_error& e) {
            // Beast's fields store offsets in 16 bits and throw on a longer name or value.
            return fail(make_error(EMSGSIZE, "HTTP response: {}", e.what()));
        } catch (const std::exception& e) {
            return fail(make_error(EPROTO, "HTTP response: {}", e.what()));
        }
        pos += n;
        if (ec == http::error::need_more) break;
        if (ec) return fail(make_error(errno_for(ec), "HTTP response: {}", ec.message()));
        if (parser_->is_done())
            complete();
        else if (n == 0)
            break;
    }
    return pos;
}

Result<void> PipelineDecoder::finish() {
    if (error_) return *error_;
    eof_ = true;
    if (!parser_) return {};
    boost::system::error_code ec;
    parser_->put_eof(ec);
    if (!ec && parser_->is_done()) {
        complete();
        return {};
    }
    const std::size_t left = buffered();
    return fail(make_error(ECONNRESET, "connection closed inside a response ({}{})",
                           ec ? ec.message() : std::string("incomplete"),
                           left ? fmt::format(", {} bytes unparsed", left) : std::string()));
}

} // namespace rfs::proto
