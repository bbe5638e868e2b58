// Key and bucket names as they come back from Riak (listings, 2i results, Location headers) and
// as riak-devnode reads them from request targets: the strict name unescape (proto/riak_paths.hpp,
// layer 1), strict and Riak-style percent-decoding (layer 2), request-target splitting, the
// store's decoding of listed keys, and lib/layout's byte encodings of directory entry names and
// the riakfs-path meta. Input: any bytes, used whole by each decoder.
// Properties: each strict decoder is the exact inverse of its encoder (escape_name is a bijection
// onto well-formed names; percent_encode, encode_entry_bytes and encode_path_meta round-trip),
// and every escaped name is valid UTF-8.
#include "fuzz_input.hpp"

#include "lib/layout/dir_record.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/store/object_codec.hpp"
#include "proto/riak_paths.hpp"

using namespace rfs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);

    // Layer 1: file-name bytes <-> Riak names.
    std::string escaped = proto::escape_name(bytes);
    RFS_FUZZ_CHECK(proto::is_valid_utf8(escaped));
    auto back = proto::unescape_name(escaped);
    RFS_FUZZ_CHECK(back && *back == bytes);
    if (auto raw = proto::unescape_name(bytes)) RFS_FUZZ_CHECK(proto::escape_name(*raw) == bytes);

    // Layer 2: URL percent-encoding.
    auto decoded = proto::percent_decode(proto::percent_encode(bytes));
    RFS_FUZZ_CHECK(decoded && *decoded == bytes);
    (void)proto::percent_decode(bytes);
    (void)proto::riak_unquote(bytes);
    auto target = proto::parse_target(bytes);
    for (const auto& segment : target.segments)
        RFS_FUZZ_CHECK(!segment.empty());

    // Listed keys, as the object store decodes them: only escape_name() output survives.
    for (const auto& key : store::decode_keys({std::string(bytes), escaped}))
        RFS_FUZZ_CHECK(proto::escape_name(key) == bytes || key == bytes);

    // lib/layout's encodings of names inside records and meta.
    auto entry = layout::decode_entry_bytes(layout::encode_entry_bytes(bytes));
    RFS_FUZZ_CHECK(entry && *entry == bytes);
    if (auto raw = layout::decode_entry_bytes(bytes))
        RFS_FUZZ_CHECK(layout::encode_entry_bytes(*raw) == bytes);
    auto path = layout::decode_path_meta(layout::encode_path_meta(bytes));
    RFS_FUZZ_CHECK(path && *path == bytes);
    if (auto raw = layout::decode_path_meta(bytes))
        RFS_FUZZ_CHECK(layout::encode_path_meta(*raw) == bytes);
    return 0;
}
