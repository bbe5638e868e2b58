// mode=migrate's reads: serves read(offset, size) of a file whose verified copy is in Riak, from
// Riak, checking everything it gets.
//
// The object at the file's key is read first: a whole object (file <= chunk_size) is the data
// itself; a manifest (lib/layout/manifest.hpp) names the chunks, and only the chunks a read
// touches are fetched (holes are zeros, never fetched). What Riak returns must be the copy the
// state record describes: the object's riakfs-version must be the record's (another version
// means someone else changed Riak: Errc::unexpected_response with ESTALE), and a whole object's
// or a chunk's SHA-256 must match the record's or the manifest's (else EBADMSG). Any error is
// returned, never zeros or a short read; read_or_local() turns every error into a read of the
// local file.
//
// A bounded in-memory cache (ReaderOptions::cache_size bytes, an LRU of whole objects, decoded
// manifests and chunks, counted by their bytes) is never exceeded: an entry larger than the whole
// cache is served and not kept, and the chunks on their way from Riak count too (room is made
// for a chunk before it is asked for). Concurrent reads of one object wait for the one fetch in
// flight. A sequential reader (a read starting where the previous read of that version ended) has
// the next ReaderOptions::readahead_chunks chunks fetched ahead of it (at most a quarter of the
// cache), and, in a file larger than a quarter of the cache, the chunks it has passed (all but
// the last one) leave the cache at once (drop-behind): a stream through a large file would
// otherwise push every small file out of the cache for chunks read once (the kernel's page cache
// keeps what was read, for as long as the file is cached there), and the memory the passed chunks
// free is what the next chunks reuse. Memory new to the process costs more than the copy into it:
// about 2 ms per MiB on a Firecracker VM, where the host backs a guest page on its first touch
// (bench/README).
//
// Threading: one event loop (the Migrator's, where the store lives); every call on its thread,
// except prefetch(), prefetch_here(), when_prefetched() and cached_read(), which other threads
// may call (prefetch_here() from a loop of its own). They exist because a read
// otherwise crosses threads twice (FUSE loop -> migration loop -> reply), and on a loaded machine
// those wake-ups cost more than the GET (small files) or than copying the data (a sequential
// reader, whose chunks readahead has cached already): the open starts the fetch (prefetch), so it
// overlaps the READ's round trip, and a READ whose bytes are all in the cache is answered on the
// FUSE thread that received it (cached_read), which only posts the readahead to the loop. The
// cache is therefore guarded by a mutex (held for lookups and inserts only, never across I/O).
//
// SHA-256 checks of large values (chunks) run on a small pool of threads, not the loop: at 1 MiB
// a chunk they were a third of the loop's time, and every other read and upload waited for them.
// The pool is the process's (two threads, never destroyed); a check in flight keeps the reader
// alive and holds work on the loop's context, which must outlive it (the Migrator's does).
// Make it with std::make_shared: fetches ahead keep it alive.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lib/layout/manifest.hpp"
#include "lib/state/file_state.hpp"
#include "lib/store/object_store.hpp"

namespace rfs::migrate {

struct ReaderOptions {
    std::uint64_t cache_size = std::uint64_t{256} << 20; // bytes of objects kept (cache_size=)
    bool readahead = true;         // fetch the next chunks of sequential reads
    unsigned readahead_chunks = 3; // how many chunks ahead
    // read_or_local() answers from the local file when Riak has not answered by then (the fetch
    // goes on and fills the cache).
    std::chrono::milliseconds riak_timeout{2000};
    // After Riak failed (unreachable, 5xx, timeout: not a wrong object), read_or_local() reads
    // locally without asking it for this long, so that an outage costs one wait, not one per read.
    std::chrono::milliseconds retry_after{5000};
    // read_released() fails with EIO when Riak has not answered by then (Riak unreachable, or
    // retrying across nodes): the application's read is bounded, never a hang.
    std::chrono::milliseconds released_timeout{15000};
};

struct ReaderStats {
    std::uint64_t fetches = 0;        // GETs sent (objects, manifests, chunks)
    std::uint64_t cache_hits = 0;     // objects found in the cache
    std::uint64_t readaheads = 0;     // chunks fetched ahead
    std::uint64_t fallbacks = 0;      // reads served from the local file instead
    std::uint64_t dropped_behind = 0; // chunks a sequential reader had passed, let go
};

// The state record still describes the local file (size, mtime, ctime, inode) and says Riak holds
// a verified copy of it.
bool record_matches(const state::FileState& rec, const struct stat& st);

// What read_or_local() served.
struct Served {
    int err = 0;      // an errno: only when the local read itself failed
    std::string data; // short only at the end of the file
    bool from_riak = false;
    bool changed = false;             // the local file no longer matches the record
    std::optional<riak::Error> error; // why Riak was not used (when it was tried)
};

class RiakReader : public std::enable_shared_from_this<RiakReader> {
public:
    RiakReader(boost::asio::io_context& context, store::ObjectStore& store,
               ReaderOptions options = {});

    // Any thread: starts fetching the object at rec's key (a whole small file, or a manifest and
    // its first chunk) unless it is cached or on its way, so that a read soon after finds it.
    // Nothing happens after a Riak failure (see ReaderOptions::retry_after).
    void prefetch(state::FileState rec);
    // Any thread: the bytes [offset, offset + size) of the file `rec` describes (clipped to
    // rec.size) when every object they need is in the cache (checked when it was fetched), else
    // nullopt. A read that starts or ends a chunk has the next chunks fetched ahead, as fetch()
    // would. `data` points into `hold` or `owned`, valid while the CachedRead lives.
    struct CachedRead {
        std::shared_ptr<const std::string> hold;
        std::string owned;
        const char* data = "";
        std::size_t size = 0;
    };
    std::optional<CachedRead> cached_read(const state::FileState& rec, std::uint64_t offset,
                                          std::uint64_t size);

    // The calling loop's thread: prefetch(), with the GET made on `here`, the loop whose thread
    // calls, through `store`, an object store of that loop's own (riakfs: a Riak client per FUSE
    // loop). A small file's LOOKUP, GET and READ then stay on one thread: the answer wakes the
    // thread that will serve the READ, where through the migration loop it wakes that loop and
    // crosses back (bench/README, "read 4K files"). A manifest found this way has its first chunk
    // fetched on the migration loop, as prefetch() would. `here` and `store` must outlive the
    // fetch (the daemon's loops and their stores outlive the reader's use).
    void prefetch_here(state::FileState rec, boost::asio::io_context& here,
                       store::ObjectStore& store);

    // Any thread: when the object at rec's key is on its way because of prefetch() (and not
    // cached), registers `ended` and returns true: the loop thread calls it once that fetch has
    // ended (Wait::fetched: cached_read() may now find it; it may also have failed) or, if Riak
    // has not answered within ReaderOptions::riak_timeout, with Wait::timed_out (the fetch goes
    // on). Otherwise returns false and registers nothing. A READ that arrives while the GET its
    // LOOKUP started is on its way waits here: no hop to the loop and back, no timer of its own.
    enum class Wait { fetched, timed_out };
    bool when_prefetched(const state::FileState& rec, std::function<void(Wait)> ended);

    // The bytes [offset, offset + size) of the file `rec` describes, clipped to rec.size.
    riak::Task<std::string> fetch(state::FileState rec, std::uint64_t offset, std::uint64_t size);

    // fetch() when the file open as `fd` still matches `rec`; else, on any error, or when Riak
    // takes longer than riak_timeout, the local file's bytes (pread on this thread). Never zeros
    // for a failure, never short but at EOF. `fd` is used only before this returns.
    boost::asio::awaitable<Served> read_or_local(state::FileState rec, int fd, std::uint64_t offset,
                                                 std::uint64_t size);

    // A released file's bytes (mode=move): there is no local copy to fall back on, so any Riak
    // failure, or no answer within released_timeout, is Served::err = EIO (with Served::error
    // saying why). Riak is always asked, even right after a failure, so reads work again as soon
    // as it is back.
    boost::asio::awaitable<Served> read_released(state::FileState rec, std::uint64_t offset,
                                                 std::uint64_t size);

    std::uint64_t cached_bytes() const {
        std::lock_guard lock(cache_mu_);
        return cached_bytes_;
    }
    // Bytes of chunks on their way from Riak, held for them in cache_size.
    std::uint64_t reserved_bytes() const {
        std::lock_guard lock(cache_mu_);
        return reserved_bytes_;
    }
    std::uint64_t cache_limit() const { return options_.cache_size; }
    ReaderStats stats() const {
        std::lock_guard lock(cache_mu_);
        return stats_;
    }

private:
    struct Entry {
        std::string key;
        std::shared_ptr<const std::string> data;          // a whole object or a chunk
        std::shared_ptr<const layout::Manifest> manifest; // or a manifest
        std::uint64_t bytes = 0;
    };
    using Index = std::unordered_map<std::string, std::list<Entry>::iterator>; // by key
    // The object at a file's key, checked against its record.
    struct Head {
        std::shared_ptr<const std::string> data;
        std::shared_ptr<const layout::Manifest> manifest;
    };
    struct Inflight {
        explicit Inflight(boost::asio::io_context& c)
            : done(c, boost::asio::steady_timer::time_point::max()) {}
        boost::asio::steady_timer done; // cancelled when the fetch ends
    };

    riak::Task<Head> head(const state::FileState& rec);
    // GETs the object at rec's key through `store` (on `context`, the loop whose thread calls),
    // checks it against rec and caches it under `key`.
    riak::Task<Head> fetch_head(const state::FileState& rec, const std::string& key,
                                store::ObjectStore& store, boost::asio::io_context& context);
    boost::asio::awaitable<void> prefetch_here_on(state::FileState rec, std::string key,
                                                  boost::asio::io_context& here,
                                                  store::ObjectStore& store);
    // The first chunk of a prefetched file's manifest, unless it is cached or on its way. Loop
    // thread.
    boost::asio::awaitable<void>
    prefetch_first_chunk(state::FileState rec, std::shared_ptr<const layout::Manifest> manifest);
    riak::Task<std::shared_ptr<const std::string>>
    chunk(const state::FileState& rec, std::shared_ptr<const layout::Manifest> manifest,
          std::uint64_t index);
    boost::asio::awaitable<void> fetch_ahead(state::FileState rec,
                                             std::shared_ptr<const layout::Manifest> manifest,
                                             std::uint64_t index);
    boost::asio::awaitable<void> wait_inflight(const std::string& key);
    boost::asio::awaitable<void> prefetch_on_loop(state::FileState rec, std::string key);
    // The key under which rec's object is prefetched, now marked on its way; nullopt when it
    // is not worth it (empty, or too large for the cache), cached, or on its way already.
    std::optional<std::string> claim_prefetch(const state::FileState& rec);
    struct PrefetchEnded; // calls prefetch_ended() when a prefetch's frame ends
    // The prefetch of `key` ended: a later one may start again; its waiters are called (on the
    // calling thread, the one whose loop made the fetch), or, when `call` is false (the loop
    // is being destroyed with the fetch unfinished), dropped uncalled. Any thread.
    void prefetch_ended(const std::string& key, bool call);
    // Loop thread: while READs wait for prefetches, times out those waiting longer than
    // riak_timeout; started by the first waiter (when_prefetched), ends once none is left.
    boost::asio::awaitable<void> expire_waiters();
    // Loop thread: a read [offset, offset + size) ending before chunk `span_end` was served;
    // fetches ahead when it is sequential.
    void after_read(const state::FileState& rec, std::shared_ptr<const layout::Manifest> manifest,
                    std::uint64_t offset, std::uint64_t size, std::uint64_t span_end);
    // Loop thread: a sequential reader is in chunk span_end - 1; the chunks it has passed leave
    // the cache (see the top of this file).
    void drop_behind(const state::FileState& rec, const layout::Manifest& manifest,
                     std::uint64_t span_end);
    // SHA-256 (hex) of `value`: large ones on the pool, the loop (`context`, the calling
    // thread's) resumes meanwhile.
    boost::asio::awaitable<std::string> sha256_of(std::shared_ptr<const std::string> value,
                                                  boost::asio::io_context& context);
    // Whether chunk `index` of `manifest`, fetched as `value`, holds what the manifest recorded:
    // its CRC-32 when the manifest has one (three times cheaper), else its SHA-256. On the pool
    // and the loop as sha256_of.
    boost::asio::awaitable<bool> chunk_checks_out(std::shared_ptr<const std::string> value,
                                                  const layout::Manifest& manifest,
                                                  std::uint64_t index,
                                                  boost::asio::io_context& context);
    // `work(value)`, on the pool for a large value; the loop (`context`) resumes meanwhile.
    template <typename T>
    boost::asio::awaitable<T> off_loop(std::shared_ptr<const std::string> value,
                                       std::function<T(const std::string&)> work,
                                       boost::asio::io_context& context);
    // Riak itself failed (not the object) moments ago: not asked before retry_after. Any thread.
    bool riak_down() const;
    void mark_down();

    // A copy of the entry's pointers (nullopt: not cached). Any thread.
    std::optional<Head> find(const std::string& key);
    bool cached(const std::string& key) const;
    void insert(Entry entry);
    // Evicts from the LRU end until `bytes` more fit beside the cached and reserved bytes;
    // whether malloc_trim is due. cache_mu_ held.
    bool make_room_locked(std::uint64_t bytes);
    // Removes the entry `it` indexes from the cache; returns its bytes. cache_mu_ held.
    std::uint64_t erase_locked(Index::iterator it);
    // `bytes` of cache_size held for a fetch in flight (none for one larger than the cache,
    // which is not kept), until release() or the end of the fetch.
    class Reservation {
    public:
        Reservation(RiakReader& reader, std::uint64_t bytes);
        ~Reservation() { release(); }
        Reservation(const Reservation&) = delete;
        Reservation& operator=(const Reservation&) = delete;
        void release();

    private:
        RiakReader& reader_;
        std::uint64_t bytes_;
    };
    void count(std::uint64_t ReaderStats::*field) {
        std::lock_guard lock(cache_mu_);
        ++(stats_.*field);
    }

    boost::asio::io_context& context_;
    store::ObjectStore& store_;
    ReaderOptions options_;
    mutable std::mutex cache_mu_; // lru_, index_, cached_bytes_, stats_, prefetching_, waiters
    // Objects prefetch() has handed to the loop and whose fetch has not ended: a second
    // prefetch of one (the open after the lookup that started it) need not wake the loop.
    std::unordered_set<std::string> prefetching_;
    struct Waiter {
        std::function<void(Wait)> ended;
        std::chrono::steady_clock::time_point deadline;
    };
    std::unordered_map<std::string, std::vector<Waiter>> prefetch_waiters_; // by prefetching_ key
    bool expiring_ = false;                                                 // expire_waiters() runs
    std::list<Entry> lru_;                                                  // most recent first
    Index index_;
    std::uint64_t cached_bytes_ = 0;
    std::uint64_t reserved_bytes_ = 0; // of chunks on their way (Reservation)
    // Evictions give memory back to the kernel (malloc_trim, see insert()) once this many bytes
    // were evicted since the last time, at most every kTrimInterval.
    static constexpr std::uint64_t kTrimAfterBytes = std::uint64_t{4} << 20;
    static constexpr std::chrono::milliseconds kTrimInterval{100};
    std::uint64_t evicted_since_trim_ = 0;
    std::chrono::steady_clock::time_point last_trim_{};
    std::unordered_map<std::string, std::shared_ptr<Inflight>> inflight_;
    std::unordered_map<std::string, std::uint64_t> last_end_; // file version -> end of last read
    // Riak failed: do not ask before (steady_clock's count; read by any thread).
    std::atomic<std::chrono::steady_clock::rep> down_until_{0};
    ReaderStats stats_;
};

} // namespace rfs::migrate
