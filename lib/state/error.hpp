// Errors of lib/state: the project's BasicResult with proto's Error (a positive errno and a
// one-line message), so callers print error().message as is.
#pragma once

#include "proto/result.hpp"

namespace rfs::state {

using Error = proto::Error;
template <typename T> using Result = proto::Result<T>;
using proto::make_error;

} // namespace rfs::state
