// What the migration engine reads back from Riak (lib/layout): a large file's manifest, the
// namespace (directory) records, and the riakfs-* meta of a file object. Anything may sit in
// Riak under those keys (another client, a damaged object, an older or newer riakfs).
// Input: a selector byte, then the object's value (for the meta: NUL-separated name, value
// pairs). Properties: no crash; a manifest or record that decodes encodes and decodes back to
// the same value; a decoded record passes check_entry, splits and reassembles to itself.
#include "fuzz_input.hpp"

#include "lib/layout/dir_record.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"

using namespace rfs::layout;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    rfs::fuzz::Input in(data, size);
    const std::uint8_t which = in.byte();

    switch (which % 3) {
    case 0:
        if (auto manifest = decode_manifest(in.rest())) {
            auto again = decode_manifest(encode_manifest(*manifest));
            RFS_FUZZ_CHECK(again && *again == *manifest);
            // What the reader asks of a manifest it fetched.
            const auto count = Manifest::chunk_count(manifest->size, manifest->chunk_size);
            (void)manifest->chunks_for(0, manifest->size);
            if (count > 0) {
                (void)manifest->chunk_range(count - 1);
                (void)manifest->chunk_key(count - 1);
            }
        }
        break;
    case 1:
        if (auto record = decode_dir_record(in.rest())) {
            auto again = decode_dir_record(encode_dir_record(*record));
            RFS_FUZZ_CHECK(again && *again == *record);
            DirRecord whole;
            for (const auto& [name, entry] : record->entries) {
                RFS_FUZZ_CHECK(check_entry_name(name).has_value());
                RFS_FUZZ_CHECK(check_entry(entry).has_value());
                whole.entries.emplace(name, entry);
            }
            DirRecord joined;
            for (const auto& part : split_dir_record(whole, 16 * 1024))
                for (const auto& [name, entry] : part.entries)
                    joined.entries.emplace(name, entry);
            RFS_FUZZ_CHECK(joined == whole);
        }
        break;
    case 2: {
        MetaList meta;
        auto fields = in.fields('\0');
        for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
            meta.emplace_back(fields[i], fields[i + 1]);
        if (auto decoded = decode_meta(meta)) {
            auto again = decode_meta(encode_meta(*decoded));
            RFS_FUZZ_CHECK(again && *again == *decoded);
            (void)is_valid_version(decoded->version);
        }
        break;
    }
    }
    return 0;
}
