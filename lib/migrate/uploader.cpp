#include "lib/migrate/uploader.hpp"

#include "lib/common/all_zero.hpp"
#include "lib/common/timespec_ns.hpp"
#include "lib/layout/crc32.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/layout/sha256.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

namespace rfs::migrate {
namespace asio = boost::asio;
namespace {

using riak::Errc;
using riak::Result;
using riak::Task;

riak::Error local_error(int err, std::string_view what, std::string_view path) {
    return riak::make_error(Errc::invalid_argument,
                            fmt::format("{} {}: {}", what, path, std::strerror(err)), err);
}

riak::Error verify_error(std::string_view path, std::string_view what) {
    return riak::make_error(Errc::unexpected_response,
                            fmt::format("copy of {} did not verify: {}", path, what), EIO);
}

// Reads exactly `length` bytes at `offset`; fewer means the file shrank meanwhile (nullopt).
Result<std::optional<std::string>> read_exact(int fd, std::uint64_t offset, std::uint64_t length,
                                              std::string_view path) {
    std::string buf(length, '\0');
    std::uint64_t done = 0;
    while (done < length) {
        ssize_t n =
            ::pread(fd, buf.data() + done, length - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return local_error(errno, "cannot read", path);
        }
        if (n == 0) return std::optional<std::string>();
        done += static_cast<std::uint64_t>(n);
    }
    return std::optional<std::string>(std::move(buf));
}

// Whether the file system reports [offset, offset + length) of `fd` as a hole (SEEK_DATA finds no
// data before its end): such a chunk is zeros without reading it, which spares a large sparse
// file's copy a read, a buffer and a scan per chunk of its holes. A file system that reports no
// holes answers with `offset` itself, and an error (ENXIO at the end of a file that shrank) is
// answered the same way: the chunk is read, and the read sees what changed.
bool reported_hole(int fd, std::uint64_t offset, std::uint64_t length) {
    off_t data = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
    return data >= 0 && static_cast<std::uint64_t>(data) >= offset + length;
}

layout::FileMeta meta_of(const UploadInput& in, std::string sha256, layout::FileMeta::Kind kind) {
    layout::FileMeta meta;
    meta.mode = in.snapshot.st_mode;
    meta.uid = in.snapshot.st_uid;
    meta.gid = in.snapshot.st_gid;
    meta.mtime_ns = ns_of(in.snapshot.st_mtim);
    meta.ctime_ns = ns_of(in.snapshot.st_ctim);
    meta.atime_ns = ns_of(in.snapshot.st_atim);
    meta.size = static_cast<std::uint64_t>(in.snapshot.st_size);
    meta.sha256 = std::move(sha256);
    meta.version = in.version;
    meta.path = in.rel_path;
    meta.kind = kind;
    return meta;
}

store::Object object_with(std::string value, std::string_view content_type,
                          const layout::MetaList& meta) {
    store::Object object;
    object.value = std::move(value);
    object.content_type = std::string(content_type);
    object.meta = meta;
    return object;
}

// What a write read back (ObjectStore::put_and_read) holds `sha256`.
Result<std::monostate> check_stored(const store::Fetched& got, const proto::ObjectId& id,
                                    const std::string& sha256, std::string_view path) {
    if (!got.found) return verify_error(path, fmt::format("{} is missing", id.key));
    if (layout::sha256_hex(got.object.value) != sha256)
        return verify_error(path, fmt::format("{} holds other bytes", id.key));
    return std::monostate{};
}

// The caller's hook could not note the chunks a write replaces (UploadInput::replacing).
riak::Error not_noted() {
    return riak::make_error(Errc::invalid_argument,
                            "the state store cannot note the chunks it replaces", EIO);
}

// Writes `object` at the file's own key and reads back what was stored. Create-only when the
// path was never copied (`replaced` is null then): a 412 means the key exists after all, so what
// it holds is read and the write made again over it. `replaced` ends up describing what the new
// version superseded.
// (By value: a coroutine's reference parameters may outlive what they refer to. `replaced` is
// the caller's, which awaits this.)
Task<store::Fetched> write_at_key(store::ObjectStore& store, proto::ObjectId id,
                                  store::Object object, std::string version,
                                  std::optional<Replaced>& replaced,
                                  UploadInput::Replacing replacing) {
    if (!replaced) {
        store::PutOptions create;
        create.durable = true;
        create.create_only = true;
        auto call = store.put_and_read(id, object, create);
        auto got = co_await std::move(call);
        if (got || got.error().to_errno() != EEXIST) {
            if (got) replaced = Replaced{};
            co_return got;
        }
        auto read_call = what_is_replaced(store, id, version);
        auto read = co_await std::move(read_call);
        if (!read) co_return read.error();
        replaced = std::move(*read);
        if (!co_await note_replaced(replacing, *replaced)) co_return not_noted();
    }
    store::PutOptions at_key; // supersede what was read
    at_key.durable = true;
    at_key.vclock = replaced->vclock;
    auto call = store.put_and_read(std::move(id), std::move(object), at_key);
    co_return co_await std::move(call);
}

// Chunk writes of one file in flight together. Each is a durable PUT of a new key (written
// blind) whose stored value comes back with it, compared byte for byte with what was sent.
class ChunkWindow {
public:
    ChunkWindow(asio::any_io_executor ex, unsigned limit)
        : state_(std::make_shared<State>(ex)), ex_(ex), limit_(std::max(1u, limit)) {}

    // Waits for a free slot, then starts writing `data` at `id`. False: an earlier chunk failed.
    asio::awaitable<bool> start(store::ObjectStore& store, proto::ObjectId id, std::string data,
                                std::string path) {
        while (state_->running >= limit_ && !state_->error)
            co_await state_->wait();
        if (state_->error) co_return false;
        ++state_->running;
        asio::co_spawn(
            ex_, write_and_check(store, state_, std::move(id), std::move(data), std::move(path)),
            asio::detached);
        co_return true;
    }

    // Waits until every chunk started has ended; the first failure, if any.
    asio::awaitable<std::optional<riak::Error>> finish() {
        while (state_->running > 0)
            co_await state_->wait();
        co_return state_->error;
    }

private:
    struct State {
        explicit State(asio::any_io_executor ex)
            : signal(ex, asio::steady_timer::time_point::max()) {}
        asio::awaitable<void> wait() {
            boost::system::error_code ec;
            co_await signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        asio::steady_timer signal; // cancelled whenever a chunk ends
        unsigned running = 0;
        std::optional<riak::Error> error;
    };

    static asio::awaitable<void> write_and_check(store::ObjectStore& store,
                                                 std::shared_ptr<State> state, proto::ObjectId id,
                                                 std::string data, std::string path) {
        std::optional<riak::Error> error;
        try {
            store::PutOptions durable;
            durable.durable = true;
            // The store takes the body; the copy kept is what the read-back must equal.
            auto put_call =
                store.put_and_read(id, object_with(data, layout::kChunkContentType, {}), durable);
            auto got = co_await std::move(put_call);
            if (!got)
                error = got.error();
            else if (!got->found)
                error = verify_error(path, fmt::format("{} is missing", id.key));
            else if (got->object.value != data)
                error = verify_error(path, fmt::format("{} holds other bytes", id.key));
        } catch (const std::exception& e) {
            error = riak::make_error(Errc::unexpected_response, e.what(), EIO);
        }
        if (error && !state->error) state->error = std::move(error);
        --state->running;
        state->signal.cancel();
    }

    std::shared_ptr<State> state_;
    asio::any_io_executor ex_;
    unsigned limit_;
};

// Deletes the chunks an abandoned upload wrote (or tried to: deleting a key never written does
// no harm), so that no chunk is left that no manifest names. Best effort: while Riak fails,
// what cannot be deleted stays (README, "Layout").
asio::awaitable<void> remove_chunks(store::ObjectStore& store, const proto::ObjectId& id,
                                    const std::vector<std::string>& keys) {
    for (const auto& key : keys) {
        auto call = store.remove(proto::ObjectId{id.type, id.bucket, key}, store::RemoveOptions{});
        (void)co_await std::move(call);
    }
}

} // namespace

boost::asio::awaitable<bool> note_replaced(const UploadInput::Replacing& replacing,
                                           const Replaced& replaced) {
    if (!replacing || replaced.chunk_keys.empty()) co_return true;
    co_return co_await replacing(replaced.chunk_keys);
}

Task<Replaced> what_is_replaced(store::ObjectStore& store, proto::ObjectId id,
                                std::string new_version) {
    auto head_call = store.head(id);
    auto head = co_await std::move(head_call);
    if (!head) co_return head.error();
    Replaced out;
    out.vclock = head->vclock;
    if (!head->found) co_return out;
    auto meta = layout::decode_meta(head->object.meta);
    // Not ours, or a whole object: nothing beside the key itself to clean up.
    if (!meta || meta->kind != layout::FileMeta::Kind::manifest || meta->version == new_version)
        co_return out;
    auto get_call = store.get(id);
    auto got = co_await std::move(get_call);
    if (!got) co_return got.error();
    if (!got->found) co_return out;
    out.vclock = got->vclock;
    auto manifest = layout::decode_manifest(got->object.value);
    if (!manifest) co_return out; // unreadable: leave it rather than guess at keys
    for (std::uint64_t i = 0; i < manifest->chunks.size(); ++i)
        if (!manifest->is_hole(i)) out.chunk_keys.push_back(manifest->chunk_key(i));
    co_return out;
}

Task<UploadOutcome> upload_and_verify(store::ObjectStore& store, UploadInput in) {
    UploadOutcome out;
    out.version = in.version;
    const auto size = static_cast<std::uint64_t>(in.snapshot.st_size);
    const proto::ObjectId id = in.location;

    // What the key holds now, read first unless the path was never copied (write_at_key).
    std::optional<Replaced> replaced;
    if (!in.expect_new) {
        auto replaced_call = what_is_replaced(store, id, in.version);
        auto read = co_await std::move(replaced_call);
        if (!read) co_return read.error();
        replaced = std::move(*read);
        if (!co_await note_replaced(in.replacing, *replaced)) co_return not_noted();
    }

    if (!layout::needs_manifest(size, in.chunk_size)) {
        auto data = read_exact(in.fd, 0, size, in.rel_path);
        if (!data) co_return data.error();
        if (!*data) {
            out.changed = true;
            co_return out;
        }
        out.sha256 = layout::sha256_hex(**data);
        auto meta = layout::encode_meta(meta_of(in, out.sha256, layout::FileMeta::Kind::whole));
        out.bytes_sent = size;
        auto object = object_with(std::move(**data), layout::kFileContentType, meta);
        auto put_call =
            write_at_key(store, id, std::move(object), in.version, replaced, in.replacing);
        auto got = co_await std::move(put_call);
        if (!got) co_return got.error();
        out.vclock = got->vclock;
        if (auto checked = check_stored(*got, id, out.sha256, in.rel_path); !checked)
            co_return checked.error();
    } else {
        auto manifest = layout::Manifest::for_file(size, in.chunk_size, in.version);
        layout::Sha256 whole;
        // Several chunks in flight, each checked as soon as it is written (their keys are new,
        // so nothing orders them); the manifest goes in once all of them are verified.
        ChunkWindow window(co_await asio::this_coro::executor, in.parallel_chunks);
        std::string zeros;                // a hole chunk's bytes, for the whole file's digest
        std::vector<std::string> started; // chunk keys written: deleted if this copy is abandoned
        for (std::uint64_t i = 0; i < manifest.chunks.size(); ++i) {
            auto range = manifest.chunk_range(i);
            if (reported_hole(in.fd, range.offset, range.length)) {
                zeros.resize(range.length, '\0');
                whole.update(zeros);
                continue; // a hole: readers make the zeros
            }
            auto data = read_exact(in.fd, range.offset, range.length, in.rel_path);
            if (!data) co_return data.error();
            if (!*data) { // the file shrank: this version is abandoned
                (void)co_await window.finish();
                co_await remove_chunks(store, id, started);
                out.changed = true;
                co_return out;
            }
            whole.update(std::string_view(**data));
            if (rfs::all_zero(**data)) continue; // a hole: readers make the zeros
            // Stored, checked by its CRC-32 (no digest of its own: manifest.hpp, format 2).
            manifest.chunks[i].emplace();
            manifest.crc32[i] = layout::crc32_of(**data);
            out.bytes_sent += range.length;
            proto::ObjectId chunk_id{id.type, id.bucket, manifest.chunk_key(i)};
            started.push_back(chunk_id.key);
            if (!co_await window.start(store, chunk_id, std::move(**data), in.rel_path)) break;
        }
        if (auto failed = co_await window.finish()) {
            co_await remove_chunks(store, id, started);
            co_return *failed;
        }
        out.sha256 = whole.hex_digest();
        manifest.sha256 = out.sha256;
        auto meta = layout::encode_meta(meta_of(in, out.sha256, layout::FileMeta::Kind::manifest));
        std::string body = layout::encode_manifest(manifest);
        auto put_call =
            write_at_key(store, id, object_with(body, layout::kManifestContentType, meta),
                         in.version, replaced, in.replacing);
        auto got = co_await std::move(put_call);
        if (!got) {
            // Whether the manifest is in place is unknown (the answer may have been lost), and
            // one in place must not name deleted chunks: they stay. The next copy reads what the
            // key holds and deletes them with the manifest it replaces; if none landed, they are
            // left over (README, "Layout").
            co_return got.error();
        }
        out.vclock = got->vclock;
        if (!got->found || got->object.value != body)
            co_return verify_error(in.rel_path, "the manifest read back differs");
    }

    out.written = true;
    // A change while we read (or since) makes this copy stale, even if every read was whole.
    struct stat now;
    if (::fstat(in.fd, &now) != 0) co_return local_error(errno, "cannot stat", in.rel_path);
    out.changed = now.st_size != in.snapshot.st_size ||
                  ns_of(now.st_mtim) != ns_of(in.snapshot.st_mtim) ||
                  ns_of(now.st_ctim) != ns_of(in.snapshot.st_ctim);

    // The new version is in place and verified: the replaced version's chunks are garbage.
    for (const auto& key : replaced->chunk_keys) {
        if (in.chunk_held && in.chunk_held(key)) {
            out.chunks_left.push_back(key); // still read: deleted once it is not
            continue;
        }
        store::RemoveOptions options;
        auto remove_call = store.remove(proto::ObjectId{id.type, id.bucket, key}, options);
        auto removed = co_await std::move(remove_call);
        if (removed)
            ++out.chunks_removed;
        else
            out.chunks_left.push_back(key);
    }
    co_return out;
}

} // namespace rfs::migrate
