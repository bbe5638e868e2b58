#include "lib/migrate/relocate.hpp"

#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/layout/sha256.hpp"
#include "lib/migrate/uploader.hpp"

#include <fmt/format.h>

#include <cerrno>

namespace rfs::migrate {

using riak::Errc;
using riak::Task;

namespace {

riak::Error relocate_error(int code, const std::string& what) {
    return riak::make_error(Errc::unexpected_response, what, code);
}

} // namespace

Task<RelocateOutcome> relocate_copy(store::ObjectStore& store, state::FileState rec,
                                    layout::Location to, std::string new_path,
                                    UploadInput::Replacing replacing,
                                    UploadInput::ChunkHeld chunk_held) {
    const proto::ObjectId from{rec.type, rec.bucket, rec.key};
    auto get_call = store.get(from);
    auto got = co_await std::move(get_call);
    if (!got) co_return got.error();
    if (!got->found) co_return relocate_error(ENOENT, fmt::format("{} holds nothing", rec.key));
    auto meta = layout::decode_meta(got->object.meta);
    if (!meta || meta->version != rec.version)
        co_return relocate_error(ESTALE, fmt::format("{} holds another version", rec.key));

    RelocateOutcome out;
    store::PutOptions durable;
    durable.durable = true;
    const bool same_bucket = from.type == to.type && from.bucket == to.bucket;
    if (meta->kind == layout::FileMeta::Kind::manifest) {
        auto manifest = layout::decode_manifest(got->object.value);
        if (!manifest)
            co_return relocate_error(EBADMSG,
                                     fmt::format("{}: {}", rec.key, manifest.error().message));
        out.chunks_shared = same_bucket;
        for (std::uint64_t i = 0; !same_bucket && i < manifest->chunks.size(); ++i) {
            if (manifest->is_hole(i)) continue;
            const std::string key = manifest->chunk_key(i);
            auto chunk_call = store.get(proto::ObjectId{from.type, from.bucket, key});
            auto chunk = co_await std::move(chunk_call);
            if (!chunk) co_return chunk.error();
            if (!chunk->found || !manifest->chunk_check(i).matches(chunk->object.value))
                co_return relocate_error(EBADMSG, fmt::format("chunk {} of {} is damaged or "
                                                              "missing",
                                                              i, rec.key));
            auto put_call = store.put(proto::ObjectId{to.type, to.bucket, key},
                                      std::move(chunk->object), durable);
            auto put = co_await std::move(put_call);
            if (!put) co_return put.error();
        }
    }

    auto replaced_call = what_is_replaced(store, to, rec.version);
    auto replaced = co_await std::move(replaced_call);
    if (!replaced) co_return replaced.error();
    if (!co_await note_replaced(replacing, *replaced))
        co_return relocate_error(EIO, "the state store cannot note the chunks it replaces");
    store::Object object = std::move(got->object);
    meta->path = new_path;
    object.meta = layout::encode_meta(*meta);
    const std::string value = object.value;
    store::PutOptions at_key = durable;
    at_key.vclock = replaced->vclock;
    auto put_call = store.put(to, std::move(object), at_key);
    auto put = co_await std::move(put_call);
    if (!put) co_return put.error();
    out.vclock = *put;

    auto check_call = store.get(to);
    auto check = co_await std::move(check_call);
    if (!check) co_return check.error();
    bool same = check->found && check->object.value == value;
    if (same) {
        auto check_meta = layout::decode_meta(check->object.meta);
        same = check_meta && check_meta->version == rec.version;
    }
    if (!same) co_return relocate_error(EIO, fmt::format("{} read back differs", to.key));
    if (!check->vclock.empty()) out.vclock = check->vclock;

    for (const auto& key : replaced->chunk_keys) {
        if (chunk_held && chunk_held(key)) continue; // still read: the note's sweep deletes it
        auto remove_call = store.remove(proto::ObjectId{to.type, to.bucket, key}, {});
        (void)co_await std::move(remove_call); // garbage either way; a failure leaves it behind
    }
    co_return out;
}

} // namespace rfs::migrate
