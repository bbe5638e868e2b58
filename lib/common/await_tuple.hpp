// The completion token of every socket operation of ours: awaiting it gives (error_code,
// result...) instead of throwing, since a failed read or write is an answer to handle where it
// happens (a node down, a client gone), not an exception to unwind through a coroutine.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace rfs {

inline constexpr auto kTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

} // namespace rfs
