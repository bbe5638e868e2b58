// PipelineDecoder: incremental decoding of pipelined HTTP/1.1 responses with Beast's parser.
#include "proto/pipeline_decoder.hpp"

#include <cerrno>
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

Result<void> PipelineDecoder::feed(std::string_view bytes) {
    if (error_) return *error_;
    if (eof_) return fail(make_error(EPROTO, "bytes fed after finish()"));
    if (bytes.empty()) return {};
    rx_.append(bytes);
    return decode();
}

void PipelineDecoder::complete() {
    Response res = parser_->release();
    parser_.reset();
    const unsigned status = res.result_int();
    if (status >= 100 && status < 200 && status != 101) return; // interim: same request
    pending_.pop_front();
    if (!res.keep_alive()) closing_ = true;
    ready_.push_back(std::move(res));
}

Result<void> PipelineDecoder::decode() {
    while (rx_pos_ < rx_.size()) {
        if (!parser_) {
            if (closing_)
                return fail(make_error(EPROTO, "{} bytes after a Connection: close response",
                                       rx_.size() - rx_pos_));
            if (pending_.empty())
                return fail(make_error(EPROTO, "{} bytes received with no request pending",
                                       rx_.size() - rx_pos_));
            parser_ = std::make_unique<Parser>();
            parser_->eager(true);
            parser_->header_limit(limits_.header_limit);
            parser_->body_limit(limits_.body_limit);
            if (pending_.front() == http::verb::head) parser_->skip(true);
        }
        boost::system::error_code ec;
        std::size_t n = 0;
        try {
            n = parser_->put(boost::asio::buffer(rx_.data() + rx_pos_, rx_.size() - rx_pos_), ec);
        } catch (const std::length_error& e) {
            // Beast's fields store offsets in 16 bits and throw on a longer name or value.
            return fail(make_error(EMSGSIZE, "HTTP response: {}", e.what()));
        } catch (const std::exception& e) {
            return fail(make_error(EPROTO, "HTTP response: {}", e.what()));
        }
        rx_pos_ += n;
        if (ec == http::error::need_more) break;
        if (ec) return fail(make_error(errno_for(ec), "HTTP response: {}", ec.message()));
        if (parser_->is_done())
            complete();
        else if (n == 0)
            break;
    }
    if (rx_pos_ == rx_.size()) {
        rx_.clear();
        rx_pos_ = 0;
    } else if (rx_pos_ > kCompactThreshold && rx_pos_ * 2 > rx_.size()) {
        rx_.erase(0, rx_pos_);
        rx_pos_ = 0;
    }
    return {};
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
