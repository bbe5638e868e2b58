// Bytes written into a text field (a metadata header, a JSON string) with one spelling each:
// the bytes the field keeps as they are stay, every other byte (and '%' itself) becomes %XX in
// upper-case hex. Decoding takes that spelling only (no lower-case hex, no escape of a byte that
// is kept as it is), so a record read back is byte-for-byte the one written, and two spellings
// of one name can never both exist. The file objects' riakfs-path header and the namespace
// records' names use it, each with its own set of kept bytes.
#pragma once

#include <string>
#include <string_view>

#include "proto/result.hpp"

namespace rfs::layout {

using proto::Result;

// Which bytes a field keeps as they are; must not keep '%'.
using KeptByte = bool (*)(unsigned char);

std::string percent_encode(std::string_view raw, KeptByte kept);

// EINVAL naming the offset (and `what`, e.g. " in path", appended to the message) for a byte
// the field cannot hold, a cut or non-hex or lower-case escape, or an escape of a kept byte.
Result<std::string> percent_decode(std::string_view encoded, KeptByte kept,
                                   std::string_view what = {});

} // namespace rfs::layout
