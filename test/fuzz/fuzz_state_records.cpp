// Every record the migration engine reads back from its state_dir (lib/state, lib/migrate): the
// per-file FileState and the removal records (same encoding), the identity record, the
// released-file marker kept in an xattr on the placeholder itself, the drain's progress and the
// namespace bookkeeping's part counts. Input: a selector byte, then the stored bytes.
// Properties: no crash; the binary records have exactly one encoding (lib/state/codec.hpp), so
// whatever decodes encodes back to the same bytes; the drain record survives encode/decode.
#include "fuzz_input.hpp"

#include "lib/migrate/drain.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/state/file_state.hpp"
#include "lib/state/placeholder.hpp"
#include "lib/state/state_store.hpp"

using namespace rfs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    rfs::fuzz::Input in(data, size);
    const std::uint8_t which = in.byte();
    std::string_view bytes = in.rest();

    switch (which % 5) {
    case 0:
        if (auto state = state::decode_file_state(bytes)) {
            RFS_FUZZ_CHECK(state::encode(*state) == bytes);
            (void)state::phase_name(state->phase);
        }
        break;
    case 1:
        if (auto identity = state::decode_identity(bytes))
            RFS_FUZZ_CHECK(state::encode_identity(*identity) == bytes);
        break;
    case 2:
        if (auto marker = state::decode_marker(bytes)) {
            RFS_FUZZ_CHECK(state::encode(*marker) == bytes);
            RFS_FUZZ_CHECK(state::marker_of(state::released_record(*marker)) == *marker);
        }
        break;
    case 3:
        if (auto progress = migrate::decode_drain_record(bytes)) {
            auto again = migrate::decode_drain_record(migrate::encode_drain_record(*progress));
            RFS_FUZZ_CHECK(again.has_value());
            RFS_FUZZ_CHECK(again->pass == progress->pass);
            RFS_FUZZ_CHECK(again->state == progress->state);
        }
        break;
    case 4:
        (void)migrate::parse_parts(bytes);
        break;
    }
    return 0;
}
