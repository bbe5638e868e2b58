// How many bytes Beast's HTTP parser may be handed at once, for every caller that feeds one
// itself (proto's pipelined response decoder, riak-devnode's request bodies).
//
// Boost 1.81's basic_parser asserts (`BOOST_ASSERT(n >= 5)`, basic_parser.ipp; asserts are on in
// every build, so the process aborts) when it is given fewer than 5 bytes once it has seen a
// chunked body's final "0\r\n" at the start of its input: an empty chunked body split there
// ("0\r\n" + 1 byte). A chunked body that is not done always has at least 5 bytes still to come
// (at least "0\r\n\r\n"), so waiting for 5 never waits for bytes that will not come. Beast's own
// read loops (http::async_read) hand the parser each byte as it arrives and cannot be used on
// input a peer controls.
#pragma once

#include <cstddef>

namespace rfs::proto {

inline constexpr std::size_t kChunkedBodyFeedMin = 5;

// Whether `available` buffered bytes (> 0) may be handed to `parser` now.
template <class Parser> bool parser_may_take(const Parser& parser, std::size_t available) {
    return available >= (parser.is_header_done() && parser.chunked() ? kChunkedBodyFeedMin : 1);
}

} // namespace rfs::proto
