#include "lib/migrate/remove_file_object.hpp"

#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"

#include <optional>
#include <vector>

namespace rfs::migrate {

riak::Task<RemovedObject> remove_file_object(store::ObjectStore& store, proto::ObjectId id,
                                             std::string only_version, bool keep_chunks) {
    auto get_call = store.get(id);
    auto got = co_await std::move(get_call);
    if (!got) co_return got.error();
    if (!got->found) co_return RemovedObject::absent;
    std::optional<layout::FileMeta> meta;
    if (auto decoded = layout::decode_meta(got->object.meta)) meta = std::move(*decoded);
    if (!only_version.empty() && (!meta || meta->version != only_version))
        co_return RemovedObject::other_version;
    // A manifest's chunks go first: a retry after a failure still finds the manifest that names
    // them.
    std::vector<std::string> chunks;
    if (!keep_chunks && meta && meta->kind == layout::FileMeta::Kind::manifest) {
        if (auto manifest = layout::decode_manifest(got->object.value))
            for (std::uint64_t i = 0; i < manifest->chunks.size(); ++i)
                if (!manifest->is_hole(i)) chunks.push_back(manifest->chunk_key(i));
    }
    for (const auto& key : chunks) {
        auto call = store.remove(proto::ObjectId{id.type, id.bucket, key}, {});
        auto removed = co_await std::move(call);
        if (!removed) co_return removed.error();
    }
    auto call = store.remove(id, store::RemoveOptions::matching(*got));
    auto removed = co_await std::move(call);
    if (!removed) co_return removed.error();
    co_return RemovedObject::removed;
}

} // namespace rfs::migrate
