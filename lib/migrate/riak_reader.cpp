#include "lib/migrate/riak_reader.hpp"

#include "lib/common/timespec_ns.hpp"
#include "lib/layout/crc32.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/layout/sha256.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <malloc.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

namespace rfs::migrate {
namespace asio = boost::asio;

namespace {

riak::Error stale(const state::FileState& rec, std::string_view what) {
    return riak::make_error(riak::Errc::unexpected_response,
                            fmt::format("{} holds another version: {}", rec.key, what), ESTALE);
}

riak::Error corrupt(std::string_view key, std::string_view what) {
    return riak::make_error(riak::Errc::unexpected_response,
                            fmt::format("{} is not what was copied: {}", key, what), EBADMSG);
}

std::string cache_key(const state::FileState& rec, std::string_view key, char kind) {
    std::string out;
    out.reserve(rec.type.size() + rec.bucket.size() + key.size() + rec.version.size() + 5);
    out.append(rec.type).push_back('\0');
    out.append(rec.bucket).push_back('\0');
    out.append(key).push_back('\0');
    out.append(rec.version).push_back('\0');
    out.push_back(kind);
    return out;
}

// Values at least this large are hashed on the pool: below it the hop costs more than the hash.
constexpr std::size_t kHashOffLoop = 64 << 10;

asio::thread_pool& hash_pool() {
    static auto* pool = new asio::thread_pool(2); // never destroyed: checks may outlive main()
    return *pool;
}

} // namespace

bool record_matches(const state::FileState& rec, const struct stat& st) {
    return rec.verified_copy() && rec.size == static_cast<std::uint64_t>(st.st_size) &&
           rec.mtime_ns == ns_of(st.st_mtim) && rec.ctime_ns == ns_of(st.st_ctim) &&
           rec.ino == st.st_ino;
}

RiakReader::RiakReader(asio::io_context& context, store::ObjectStore& store, ReaderOptions options)
    : context_(context), store_(store), options_(options) {}

std::optional<RiakReader::Head> RiakReader::find(const std::string& key) {
    std::lock_guard lock(cache_mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, it->second);
    ++stats_.cache_hits;
    return Head{it->second->data, it->second->manifest};
}

bool RiakReader::cached(const std::string& key) const {
    std::lock_guard lock(cache_mu_);
    return index_.count(key) != 0;
}

std::optional<RiakReader::CachedRead>
RiakReader::cached_read(const state::FileState& rec, std::uint64_t offset, std::uint64_t size) {
    CachedRead out;
    if (offset >= rec.size) return out;
    size = std::min(size, rec.size - offset);
    auto head = find(cache_key(rec, rec.key, 'h'));
    if (!head) return std::nullopt;
    if (head->data) {
        out.hold = std::move(head->data);
        out.data = out.hold->data() + offset;
        out.size = size;
        return out;
    }
    auto manifest = std::move(head->manifest);
    auto span = manifest->chunks_for(offset, size);
    if (span.empty()) return std::nullopt;
    if (span.end - span.first == 1 && !manifest->is_hole(span.first)) {
        auto hit = find(cache_key(rec, manifest->chunk_key(span.first), 'c'));
        if (!hit) return std::nullopt;
        out.hold = std::move(hit->data);
        out.data = out.hold->data() + (offset - manifest->chunk_range(span.first).offset);
        out.size = size;
    } else {
        out.owned.reserve(size);
        for (auto i = span.first; i < span.end; ++i) {
            auto range = manifest->chunk_range(i);
            std::uint64_t from = std::max(offset, range.offset);
            std::uint64_t to = std::min(offset + size, range.offset + range.length);
            if (manifest->is_hole(i)) {
                out.owned.append(to - from, '\0');
                continue;
            }
            auto hit = find(cache_key(rec, manifest->chunk_key(i), 'c'));
            if (!hit) return std::nullopt;
            out.owned.append(*hit->data, from - range.offset, to - from);
        }
        if (out.owned.size() != size) return std::nullopt;
        out.data = out.owned.data();
        out.size = out.owned.size();
    }
    const auto first = manifest->chunk_range(span.first);
    const auto last = manifest->chunk_range(span.end - 1);
    if (options_.readahead && (offset == first.offset || span.end - span.first > 1 ||
                               offset + size == last.offset + last.length)) {
        asio::post(context_,
                   [self = shared_from_this(), rec, manifest, offset, size, end = span.end] {
                       self->after_read(rec, manifest, offset, size, end);
                   });
    }
    return out;
}

std::optional<std::string> RiakReader::claim_prefetch(const state::FileState& rec) {
    // Only what the cache keeps (a large file's manifest and first chunk are not worth it): a
    // fetch the cache cannot hold would be made again by the read.
    if (rec.size == 0 || rec.size > options_.cache_size / 4) return std::nullopt;
    std::string key = cache_key(rec, rec.key, 'h');
    std::lock_guard lock(cache_mu_);
    if (index_.count(key) || !prefetching_.insert(key).second) return std::nullopt;
    return key;
}

// However a prefetch ends, a later one of the key may start again, and its waiters hear.
struct RiakReader::PrefetchEnded {
    // (A constructor: clang 14 has no parenthesized aggregate initialization.)
    PrefetchEnded(RiakReader& r, const std::string& k, bool c) : reader(r), key(k), call(c) {}
    ~PrefetchEnded() { reader.prefetch_ended(key, call); }
    RiakReader& reader;
    const std::string& key;
    bool call; // whether the waiters are called (else dropped)
};

void RiakReader::prefetch(state::FileState rec) {
    auto key = claim_prefetch(rec);
    if (!key) return;
    asio::post(context_, [self = shared_from_this(), rec = std::move(rec),
                          key = std::move(*key)]() mutable {
        if (self->riak_down()) return self->prefetch_ended(key, true);
        asio::co_spawn(self->context_, self->prefetch_on_loop(std::move(rec), std::move(key)),
                       asio::detached);
    });
}

void RiakReader::prefetch_here(state::FileState rec, asio::io_context& here,
                               store::ObjectStore& store) {
    if (riak_down()) return;
    auto key = claim_prefetch(rec);
    if (!key) return;
    asio::co_spawn(here, prefetch_here_on(std::move(rec), std::move(*key), here, store),
                   asio::detached);
}

asio::awaitable<void> RiakReader::prefetch_here_on(state::FileState rec, std::string key,
                                                   asio::io_context& here,
                                                   store::ObjectStore& store) {
    auto self = shared_from_this();
    // A loop destroyed with this fetch unfinished (shutdown) drops its waiters uncalled: they
    // would hand the READ to the migration loop, which may be gone by then. Their replies then
    // answer EIO.
    std::optional<PrefetchEnded> ended(std::in_place, *this, key, false);
    auto fetch_call = fetch_head(rec, key, store, here);
    auto got = co_await std::move(fetch_call); // a failure shows again at the read
    ended->call = true;
    ended.reset();
    if (!got || !got->manifest) co_return;
    // Chunks are fetched (and tracked in flight) on the migration loop only.
    asio::co_spawn(context_, prefetch_first_chunk(std::move(rec), std::move(got->manifest)),
                   asio::detached);
}

bool RiakReader::riak_down() const {
    return std::chrono::steady_clock::now().time_since_epoch().count() <
           down_until_.load(std::memory_order_relaxed);
}

void RiakReader::mark_down() {
    down_until_.store(
        (std::chrono::steady_clock::now() + options_.retry_after).time_since_epoch().count(),
        std::memory_order_relaxed);
}

asio::awaitable<void> RiakReader::prefetch_on_loop(state::FileState rec, std::string key) {
    auto self = shared_from_this();
    std::optional<PrefetchEnded> ended(std::in_place, *this, key, true);
    auto head_call = head(rec);
    auto got = co_await std::move(head_call); // a failure shows again at the read
    ended.reset();
    if (!got || !got->manifest) co_return;
    auto first_chunk = prefetch_first_chunk(std::move(rec), std::move(got->manifest));
    co_await std::move(first_chunk);
}

asio::awaitable<void>
RiakReader::prefetch_first_chunk(state::FileState rec,
                                 std::shared_ptr<const layout::Manifest> manifest) {
    auto self = shared_from_this();
    if (manifest->chunks.empty() || manifest->is_hole(0)) co_return;
    const std::string first = cache_key(rec, manifest->chunk_key(0), 'c');
    if (cached(first) || inflight_.count(first)) co_return;
    auto chunk_call = chunk(rec, manifest, 0);
    (void)co_await std::move(chunk_call);
}

void RiakReader::prefetch_ended(const std::string& key, bool call) {
    std::vector<Waiter> waiters;
    {
        std::lock_guard lock(cache_mu_);
        prefetching_.erase(key);
        if (auto it = prefetch_waiters_.find(key); it != prefetch_waiters_.end()) {
            waiters = std::move(it->second);
            prefetch_waiters_.erase(it);
        }
    }
    if (!call) return;
    for (auto& waiter : waiters)
        waiter.ended(Wait::fetched);
}

bool RiakReader::when_prefetched(const state::FileState& rec, std::function<void(Wait)> ended) {
    std::string key = cache_key(rec, rec.key, 'h');
    bool start_expiry = false;
    {
        std::lock_guard lock(cache_mu_);
        if (index_.count(key) || !prefetching_.count(key)) return false;
        prefetch_waiters_[std::move(key)].push_back(
            Waiter{std::move(ended), std::chrono::steady_clock::now() + options_.riak_timeout});
        start_expiry = !std::exchange(expiring_, true);
    }
    // Runs until no READ waits (checked every quarter of riak_timeout): while reads come, the
    // migration loop is woken a few times a second for it, not once per READ.
    if (start_expiry)
        asio::post(context_, [self = shared_from_this()] {
            asio::co_spawn(self->context_, self->expire_waiters(), asio::detached);
        });
    return true;
}

asio::awaitable<void> RiakReader::expire_waiters() {
    auto self = shared_from_this();
    // A quarter of the timeout late at most; the timer runs only while prefetches are on their
    // way, instead of one timer per waiting READ.
    const auto tick = std::max<std::chrono::steady_clock::duration>(options_.riak_timeout / 4,
                                                                    std::chrono::milliseconds(1));
    asio::steady_timer timer(context_);
    for (;;) {
        timer.expires_after(tick);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        std::vector<Waiter> expired;
        bool idle = false;
        {
            std::lock_guard lock(cache_mu_);
            const auto now = std::chrono::steady_clock::now();
            for (auto& [key, waiters] : prefetch_waiters_) {
                auto late =
                    std::stable_partition(waiters.begin(), waiters.end(),
                                          [&](const Waiter& w) { return w.deadline > now; });
                std::move(late, waiters.end(), std::back_inserter(expired));
                waiters.erase(late, waiters.end());
            }
            std::erase_if(prefetch_waiters_, [](const auto& kv) { return kv.second.empty(); });
            // Under the lock: a waiter registered after this sees expiring_ false and starts
            // another run.
            idle = prefetch_waiters_.empty();
            if (idle) expiring_ = false;
        }
        for (auto& waiter : expired)
            waiter.ended(Wait::timed_out);
        if (idle) break;
    }
}

template <typename T>
asio::awaitable<T> RiakReader::off_loop(std::shared_ptr<const std::string> value,
                                        std::function<T(const std::string&)> work,
                                        asio::io_context& context) {
    if (value->size() < kHashOffLoop) co_return work(*value);
    auto initiate = [this, &context, work = std::move(work)](auto handler,
                                                             std::shared_ptr<const std::string> v) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        asio::post(hash_pool(), [self = shared_from_this(), v = std::move(v), shared, &context,
                                 work, guard = asio::make_work_guard(context)]() mutable {
            T result = work(*v);
            asio::post(context, [shared, result = std::move(result)]() mutable {
                (*shared)(std::move(result));
            });
        });
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
        initiate, asio::use_awaitable, std::move(value));
}

asio::awaitable<std::string> RiakReader::sha256_of(std::shared_ptr<const std::string> value,
                                                   asio::io_context& context) {
    co_return co_await off_loop<std::string>(
        std::move(value), [](const std::string& v) { return layout::sha256_hex(v); }, context);
}

asio::awaitable<bool> RiakReader::chunk_checks_out(std::shared_ptr<const std::string> value,
                                                   const layout::Manifest& manifest,
                                                   std::uint64_t index, asio::io_context& context) {
    auto check = [check = manifest.chunk_check(index)](const std::string& v) {
        return check.matches(v);
    };
    co_return co_await off_loop<bool>(std::move(value), std::move(check), context);
}

std::uint64_t RiakReader::erase_locked(Index::iterator it) {
    const std::uint64_t bytes = it->second->bytes;
    cached_bytes_ -= bytes;
    lru_.erase(it->second);
    index_.erase(it);
    return bytes;
}

bool RiakReader::make_room_locked(std::uint64_t bytes) {
    while (!lru_.empty() && cached_bytes_ + reserved_bytes_ + bytes > options_.cache_size)
        evicted_since_trim_ += erase_locked(index_.find(lru_.back().key));
    const auto now = std::chrono::steady_clock::now();
    if (evicted_since_trim_ < kTrimAfterBytes || now - last_trim_ < kTrimInterval) return false;
    evicted_since_trim_ = 0;
    last_trim_ = now;
    return true;
}

// What the evicted entries held went back to malloc, which keeps freed pages resident: small
// objects evicted by chunks leave holes no 1 MiB chunk can reuse, and the daemon's resident size
// grew by them beyond cache_size (9 MiB after 2,000 small files and a 256 MiB file).
// malloc_trim() gives whole free pages back to the kernel.
static void give_back_freed_pages(bool trim) {
    if (trim) ::malloc_trim(0);
}

void RiakReader::insert(Entry entry) {
    if (entry.bytes > options_.cache_size) return; // served, not kept
    bool trim = false;
    {
        std::lock_guard lock(cache_mu_);
        if (auto it = index_.find(entry.key); it != index_.end()) erase_locked(it);
        trim = make_room_locked(entry.bytes);
        cached_bytes_ += entry.bytes;
        lru_.push_front(std::move(entry));
        index_[lru_.front().key] = lru_.begin();
    }
    give_back_freed_pages(trim);
}

RiakReader::Reservation::Reservation(RiakReader& reader, std::uint64_t bytes)
    : reader_(reader), bytes_(bytes <= reader.options_.cache_size ? bytes : 0) {
    if (bytes_ == 0) return;
    bool trim = false;
    {
        std::lock_guard lock(reader_.cache_mu_);
        trim = reader_.make_room_locked(bytes_);
        reader_.reserved_bytes_ += bytes_;
    }
    give_back_freed_pages(trim);
}

void RiakReader::Reservation::release() {
    if (bytes_ == 0) return;
    std::lock_guard lock(reader_.cache_mu_);
    reader_.reserved_bytes_ -= bytes_;
    bytes_ = 0;
}

asio::awaitable<void> RiakReader::wait_inflight(const std::string& key) {
    auto it = inflight_.find(key);
    if (it == inflight_.end()) co_return;
    auto pending = it->second;
    boost::system::error_code ec;
    co_await pending->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

namespace {
// Marks `key` in flight for as long as it lives; waiters wake when it ends.
class Fetching {
public:
    template <class Map, class Make>
    Fetching(Map& map, const std::string& key, Make make)
        : erase_([&map, key] {
              auto it = map.find(key);
              if (it == map.end()) return;
              it->second->done.cancel();
              map.erase(it);
          }) {
        map.emplace(key, make());
    }
    ~Fetching() { erase_(); }
    Fetching(const Fetching&) = delete;
    Fetching& operator=(const Fetching&) = delete;

private:
    std::function<void()> erase_;
};
} // namespace

riak::Task<RiakReader::Head> RiakReader::head(const state::FileState& rec) {
    auto self = shared_from_this();
    const std::string key = cache_key(rec, rec.key, 'h');
    while (inflight_.count(key)) // one fetch at a time; then the cache has it, or it failed
        co_await wait_inflight(key);
    if (auto hit = find(key)) co_return *hit;
    Fetching fetching(inflight_, key, [&] { return std::make_shared<Inflight>(context_); });
    auto fetch_call = fetch_head(rec, key, store_, context_);
    co_return co_await std::move(fetch_call);
}

riak::Task<RiakReader::Head> RiakReader::fetch_head(const state::FileState& rec,
                                                    const std::string& key,
                                                    store::ObjectStore& store,
                                                    asio::io_context& context) {
    auto self = shared_from_this();
    count(&ReaderStats::fetches);
    auto call = store.get(proto::ObjectId{rec.type, rec.bucket, rec.key});
    auto got = co_await std::move(call);
    if (!got) co_return got.error();
    if (!got->found) co_return stale(rec, "the key is gone");
    auto meta = layout::decode_meta(got->object.meta);
    if (!meta) co_return stale(rec, meta.error().message);
    if (meta->version != rec.version) co_return stale(rec, "version " + meta->version);
    Entry entry;
    entry.key = key;
    if (meta->kind == layout::FileMeta::Kind::whole) {
        auto value = std::make_shared<const std::string>(std::move(got->object.value));
        if (value->size() != rec.size) co_return corrupt(rec.key, "its size differs");
        auto hash_call = sha256_of(value, context);
        if (co_await std::move(hash_call) != rec.sha256)
            co_return corrupt(rec.key, "its SHA-256 differs");
        entry.bytes = value->size();
        entry.data = std::move(value);
    } else {
        auto manifest = layout::decode_manifest(got->object.value);
        if (!manifest) co_return corrupt(rec.key, manifest.error().message);
        if (manifest->version != rec.version || manifest->size != rec.size ||
            manifest->sha256 != rec.sha256)
            co_return corrupt(rec.key, "the manifest describes another file");
        entry.bytes = got->object.value.size() + sizeof(layout::Manifest);
        entry.manifest = std::make_shared<const layout::Manifest>(std::move(*manifest));
    }
    Head out{entry.data, entry.manifest};
    insert(std::move(entry));
    co_return out;
}

riak::Task<std::shared_ptr<const std::string>>
RiakReader::chunk(const state::FileState& rec, std::shared_ptr<const layout::Manifest> manifest,
                  std::uint64_t index) {
    auto self = shared_from_this();
    const std::string chunk_key = manifest->chunk_key(index);
    const std::string key = cache_key(rec, chunk_key, 'c');
    while (inflight_.count(key)) // one fetch at a time; then the cache has it, or it failed
        co_await wait_inflight(key);
    if (auto hit = find(key)) co_return hit->data;
    Fetching fetching(inflight_, key, [&] { return std::make_shared<Inflight>(context_); });

    auto range = manifest->chunk_range(index);
    // Room for the chunk is made before it is asked for: its body is received into memory and
    // checked before it is cached, and readahead keeps several such chunks on their way.
    Reservation room(*this, range.length);
    count(&ReaderStats::fetches);
    auto call = store_.get(proto::ObjectId{rec.type, rec.bucket, chunk_key});
    auto got = co_await std::move(call);
    if (!got) co_return got.error();
    if (!got->found) co_return corrupt(chunk_key, "the chunk is missing");
    auto value = std::make_shared<const std::string>(std::move(got->object.value));
    if (value->size() != range.length)
        co_return corrupt(chunk_key, "its size differs from the manifest's");
    auto check_call = chunk_checks_out(value, *manifest, index, context_);
    if (!co_await std::move(check_call))
        co_return corrupt(chunk_key, manifest->chunk_crc32(index)
                                         ? "its CRC-32 differs from the manifest's"
                                         : "its SHA-256 differs from the manifest's");
    Entry entry;
    entry.key = key;
    entry.bytes = value->size();
    entry.data = std::move(value);
    auto out = entry.data;
    room.release(); // the entry takes its place
    insert(std::move(entry));
    co_return out;
}

asio::awaitable<void> RiakReader::fetch_ahead(state::FileState rec,
                                              std::shared_ptr<const layout::Manifest> manifest,
                                              std::uint64_t index) {
    auto self = shared_from_this();
    count(&ReaderStats::readaheads);
    auto call = chunk(rec, std::move(manifest), index);
    (void)co_await std::move(call); // a failure shows again when the chunk is read
}

riak::Task<std::string> RiakReader::fetch(state::FileState rec, std::uint64_t offset,
                                          std::uint64_t size) {
    auto self = shared_from_this();
    if (offset >= rec.size) co_return std::string();
    size = std::min(size, rec.size - offset);
    auto head_call = head(rec);
    auto got = co_await std::move(head_call);
    if (!got) co_return got.error();
    if (got->data) co_return got->data->substr(offset, size);

    auto manifest = got->manifest;
    std::string out;
    out.reserve(size);
    auto span = manifest->chunks_for(offset, size);
    for (auto i = span.first; i < span.end; ++i) {
        auto range = manifest->chunk_range(i);
        std::uint64_t from = std::max(offset, range.offset);
        std::uint64_t to = std::min(offset + size, range.offset + range.length);
        if (manifest->is_hole(i)) {
            out.append(to - from, '\0');
            continue;
        }
        auto chunk_call = chunk(rec, manifest, i);
        auto data = co_await std::move(chunk_call);
        if (!data) co_return data.error();
        out.append(**data, from - range.offset, to - from);
    }
    if (out.size() != size) co_return corrupt(rec.key, "the chunks do not cover the read");

    after_read(rec, manifest, offset, size, span.end);
    co_return out;
}

void RiakReader::after_read(const state::FileState& rec,
                            std::shared_ptr<const layout::Manifest> manifest, std::uint64_t offset,
                            std::uint64_t size, std::uint64_t span_end) {
    // Sequential: this read starts where the last one of this version ended, or a little after
    // (reads answered from the cache on another thread report only when they reach a chunk's
    // start or end, so the ones in between leave a gap of less than a chunk).
    const std::string file = cache_key(rec, rec.key, 's');
    auto last = last_end_.find(file);
    bool sequential = offset == 0 || (last != last_end_.end() && offset >= last->second &&
                                      offset - last->second < manifest->chunk_range(0).length);
    if (last_end_.size() > 4096) last_end_.clear(); // a bound; losing it only costs readahead
    last_end_[file] = offset + size;
    const layout::ChunkSpan span{0, span_end};
    if (sequential) drop_behind(rec, *manifest, span_end);
    if (options_.readahead && sequential) {
        // The next chunks, at most a quarter of the cache: what is fetched ahead must not push
        // out what the reader is still reading.
        std::uint64_t budget = options_.cache_size / 4;
        const std::uint64_t last = std::min<std::uint64_t>(
            manifest->chunks.size(), span.end + std::max(1u, options_.readahead_chunks));
        for (std::uint64_t next = span.end; next < last; ++next) {
            const std::uint64_t length = manifest->chunk_range(next).length;
            if (length > budget) break;
            budget -= length;
            if (manifest->is_hole(next)) continue;
            const std::string next_key = cache_key(rec, manifest->chunk_key(next), 'c');
            if (cached(next_key) || inflight_.count(next_key)) continue;
            asio::co_spawn(context_, fetch_ahead(rec, manifest, next), asio::detached);
        }
    }
}

void RiakReader::drop_behind(const state::FileState& rec, const layout::Manifest& manifest,
                             std::uint64_t span_end) {
    // The reader is in chunk span_end - 1; the chunk before it may still have a READ on its way
    // (the kernel sends readahead in parallel, answered by several threads), so the chunks
    // before that one go. Two of them: each chunk is some read's last one, so none is skipped.
    // A file up to a quarter of the cache stays whole (read again, it costs no GET): it cannot
    // push much else out.
    if (span_end < 3 || rec.size <= options_.cache_size / 4) return;
    std::lock_guard lock(cache_mu_);
    for (std::uint64_t i = span_end >= 4 ? span_end - 4 : 0; i <= span_end - 3; ++i) {
        if (manifest.is_hole(i)) continue;
        auto it = index_.find(cache_key(rec, manifest.chunk_key(i), 'c'));
        if (it == index_.end()) continue;
        erase_locked(it);
        ++stats_.dropped_behind;
    }
}

namespace {
// A fetch raced against a deadline: whichever ends first wakes the reader.
struct Race {
    Race(asio::io_context& c, std::chrono::milliseconds timeout) : signal(c, timeout) {}
    asio::steady_timer signal;
    std::optional<riak::Result<std::string>> got;
};

asio::awaitable<void> run_fetch(std::shared_ptr<RiakReader> reader, std::shared_ptr<Race> race,
                                state::FileState rec, std::uint64_t offset, std::uint64_t size) {
    auto call = reader->fetch(std::move(rec), offset, size);
    auto got = co_await std::move(call);
    race->got.emplace(std::move(got));
    race->signal.cancel();
}

// fetch() of the bytes, or a timeout error once `timeout` has passed (the fetch goes on and
// fills the cache).
asio::awaitable<riak::Result<std::string>>
fetch_within(std::shared_ptr<RiakReader> reader, asio::io_context& context, state::FileState rec,
             std::uint64_t offset, std::uint64_t size, std::chrono::milliseconds timeout) {
    auto race = std::make_shared<Race>(context, timeout);
    asio::co_spawn(context, run_fetch(std::move(reader), race, std::move(rec), offset, size),
                   asio::detached);
    boost::system::error_code ec;
    if (!race->got) co_await race->signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (race->got) co_return std::move(*race->got);
    co_return riak::make_error(riak::Errc::timeout,
                               fmt::format("no answer from Riak within {} ms", timeout.count()),
                               ETIMEDOUT);
}
} // namespace

asio::awaitable<Served> RiakReader::read_released(state::FileState rec, std::uint64_t offset,
                                                  std::uint64_t size) {
    Served out;
    auto got = co_await fetch_within(shared_from_this(), context_, std::move(rec), offset, size,
                                     options_.released_timeout);
    if (got) {
        out.data = std::move(*got);
        out.from_riak = true;
        co_return out;
    }
    out.error = got.error();
    out.err = EIO;
    co_return out;
}

asio::awaitable<Served> RiakReader::read_or_local(state::FileState rec, int fd,
                                                  std::uint64_t offset, std::uint64_t size) {
    auto self = shared_from_this();
    Served out;
    struct stat st;
    if (::fstat(fd, &st) != 0 || !record_matches(rec, st)) {
        out.changed = true;
    } else if (riak_down()) {
        out.error = riak::make_error(riak::Errc::no_node, "Riak failed moments ago", EHOSTUNREACH);
    } else {
        auto got = co_await fetch_within(self, context_, std::move(rec), offset, size,
                                         options_.riak_timeout);
        if (got) {
            out.data = std::move(*got);
            out.from_riak = true;
            co_return out;
        }
        out.error = got.error();
        int err = out.error->to_errno();
        if (err != ESTALE && err != EBADMSG) // Riak itself failed, not the object
            mark_down();
    }
    count(&ReaderStats::fallbacks);
    out.data.resize(size);
    std::size_t done = 0;
    while (done < size) {
        ssize_t n =
            ::pread(fd, out.data.data() + done, size - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            out.err = errno;
            out.data.clear();
            co_return out;
        }
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    out.data.resize(done);
    co_return out;
}

} // namespace rfs::migrate
