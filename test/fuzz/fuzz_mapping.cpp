// Mapping rules (lib/layout/mapping.hpp): the JSON of a config= file, then paths mapped through
// the rules it defines. Input: the configuration text, a NUL, then NUL-separated paths.
// Properties: no crash or runaway matching; a path that maps has a non-empty bucket and key and
// never lands under the reserved chunk prefix.
#include "fuzz_input.hpp"

#include "lib/layout/mapping.hpp"

using namespace rfs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    rfs::fuzz::Input in(data, size);
    std::string_view config = in.field('\0');
    auto mapper = layout::Mapper::from_json(config);
    if (!mapper) {
        RFS_FUZZ_CHECK(!mapper.error().message.empty());
        return 0;
    }
    for (const auto& path : in.fields('\0')) {
        auto location = mapper->map(path);
        if (!location) continue;
        RFS_FUZZ_CHECK(!location->bucket.empty());
        RFS_FUZZ_CHECK(!location->key.empty());
        RFS_FUZZ_CHECK(!location->key.starts_with(layout::kReservedKeyPrefix));
    }
    return 0;
}
