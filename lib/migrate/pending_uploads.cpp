#include "lib/migrate/pending_uploads.hpp"

#include "lib/common/log.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/migrate/remove_file_object.hpp"
#include "lib/state/codec.hpp"

namespace rfs::migrate {

state::AuxOp note_pending_upload(const PendingUpload& upload) {
    state::codec::Writer w;
    w.bytes(upload.path);
    w.bytes(upload.type);
    w.bytes(upload.bucket);
    w.bytes(upload.key);
    w.varint(upload.chunks);
    w.varint(upload.replaced.size());
    for (const auto& key : upload.replaced)
        w.bytes(key);
    return {state::AuxKind::pending_upload, upload.version, std::move(w).data()};
}

state::AuxOp drop_pending_upload(std::string_view version) {
    return {state::AuxKind::pending_upload, std::string(version), std::nullopt};
}

std::optional<PendingUpload> decode_pending_upload(std::string_view version,
                                                   std::string_view value) {
    PendingUpload upload;
    upload.version = version;
    state::codec::Reader r(value);
    std::uint64_t replaced = 0;
    if (!r.bytes(upload.path) || !r.bytes(upload.type) || !r.bytes(upload.bucket) ||
        !r.bytes(upload.key) || !r.varint(upload.chunks) || !r.varint(replaced))
        return std::nullopt;
    for (std::uint64_t i = 0; i < replaced; ++i)
        if (!r.bytes(upload.replaced.emplace_back())) return std::nullopt;
    if (!r.at_end()) return std::nullopt;
    return upload;
}

boost::asio::awaitable<bool> sweep_pending_upload(store::ObjectStore& store,
                                                  state::StateStore& state, PendingUpload upload) {
    // Its manifest first, only if it is this version's: a manifest that names the chunks is
    // never left behind them.
    // (A key written between the read and the delete, by the copy that resumed, is read again:
    // it then holds another version, which stays.)
    riak::Result<RemovedObject> removed = RemovedObject::absent;
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto manifest_call = remove_file_object(store, {upload.type, upload.bucket, upload.key},
                                                upload.version, false);
        removed = co_await std::move(manifest_call);
        if (removed || removed.error().to_errno() != ESTALE) break;
    }
    if (!removed) {
        RFS_LOG_WARN("cannot delete the manifest of an unfinished copy of {} (retried at the "
                     "next start): {}",
                     upload.path, removed.error().describe());
        co_return false;
    }
    const std::string prefix = layout::chunk_prefix_for(upload.version);
    std::vector<std::string> keys = std::move(upload.replaced);
    for (std::uint64_t i = 0; i < upload.chunks; ++i)
        keys.push_back(layout::chunk_key(prefix, i));
    for (const auto& key : keys) {
        auto call = store.remove(proto::ObjectId{upload.type, upload.bucket, key}, {});
        auto removed = co_await std::move(call);
        if (!removed) {
            RFS_LOG_WARN("cannot delete the chunks of an unfinished copy of {} (retried at the "
                         "next start): {}",
                         upload.path, removed.error().describe());
            co_return false;
        }
    }
    if (auto erased = state.aux_apply({drop_pending_upload(upload.version)}); !erased) {
        RFS_LOG_WARN("cannot drop the note of an unfinished copy of {}: {}", upload.path,
                     erased.error().message);
        co_return false;
    }
    RFS_LOG_DEBUG("deleted the chunks of an unfinished copy of {} ({})", upload.path,
                  upload.version);
    co_return true;
}

} // namespace rfs::migrate
