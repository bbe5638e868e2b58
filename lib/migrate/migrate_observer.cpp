#include "lib/migrate/migrate_observer.hpp"

#include "lib/common/all_zero.hpp"
#include "lib/common/log.hpp"
#include "lib/common/timespec_ns.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/state/placeholder.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

namespace rfs::migrate {
namespace asio = boost::asio;

namespace {

bool opens_for_writing(int flags) {
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

// pread until `size` bytes or the end of the file.
int read_local(int fd, std::uint64_t offset, std::size_t size, std::string* out) {
    out->resize(size);
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = ::pread(fd, out->data() + done, size - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    out->resize(done);
    return 0;
}

// How long a read of a released file waits for a release of it in progress to end (its fsyncs
// and punch) before it fails with EIO.
constexpr std::chrono::seconds kReleaseInProgressWait{15};

// The fields of `from` that set a time (not UTIME_OMIT) replace those of `into`.
void take_set_times(timespec* into, const timespec* from) {
    for (int i = 0; i < 2; ++i)
        if (from[i].tv_nsec != UTIME_OMIT) into[i] = from[i];
}

} // namespace

// One read-only handle whose reads come from Riak: a verified copy of a local file (falling back
// to the local file on any failure), or a released file's copy (EIO on failure).
class RiakServedFile final : public fs::RemoteReads {
public:
    // `open_copy`: a released file's hold of its copy (Migrator::hold_open_copy), let go once
    // the handle is closed and its last read answered.
    // `id`: the released file's, which the handle pins once its data is back (serve_released).
    RiakServedFile(MigrateObserver& owner, state::FileState rec, std::string path, bool released,
                   std::shared_ptr<void> open_copy = nullptr, FileId id = {})
        : shared_(std::make_shared<Shared>(owner, std::move(rec), std::move(path), released,
                                           std::move(open_copy), id)) {}

    // A released file's close has nothing to copy or release; a verified copy's (mode=migrate)
    // nothing to copy while the file still matches it. mode=move's verified file may be due for
    // release at this close, so the observer hears of it.
    bool close_needs_nothing(fs::File& file) override {
        Shared& shared = *shared_;
        // Unless its data came back and the handle pinned it (serve_released): its close may
        // let the file be released again.
        if (shared.released) return !shared.pinned.load(std::memory_order_acquire);
        if (shared.owner.options_.release || shared.local.load(std::memory_order_relaxed))
            return false;
        struct stat st;
        return ::fstat(file.fd(), &st) == 0 && record_matches(shared.rec, st);
    }

    bool read(fs::File& file, size_t size, off_t offset, ReadDone& done) override {
        if (shared_->local.load(std::memory_order_relaxed)) return false;
        if (!shared_->released && answer_from_cache(*shared_, file, size, offset, done))
            return true;
        auto call = std::make_unique<Call>(Call{shared_, &file, std::move(done), size, offset});
        if (wait_for_prefetch(call)) return true;
        asio::io_context& context = shared_->owner.migrator_.context();
        asio::post(context, [&context, call = std::move(call)]() mutable {
            asio::co_spawn(context, serve(std::move(call)), asio::detached);
        });
        return true;
    }

private:
    struct Shared;
    struct Call;

    // A read whose bytes are all cached (a small file prefetched at the open, a chunk fetched
    // ahead), each checked against the record when it was fetched, is answered here, on the
    // FUSE thread: no hop to the migration loop and back.
    static bool answer_from_cache(Shared& shared, fs::File& file, size_t size, off_t offset,
                                  ReadDone& done) {
        auto piece =
            shared.owner.reader_->cached_read(shared.rec, static_cast<std::uint64_t>(offset), size);
        if (!piece) return false;
        struct stat st;
        // Changed since its copy: the loop's path reads it locally and says so once.
        if (::fstat(file.fd(), &st) != 0 || !record_matches(shared.rec, st)) return false;
        shared.owner.riak_reads_.fetch_add(1, std::memory_order_relaxed);
        if (piece->size < size) file.mark_read_to_end();
        file.note_read(static_cast<std::uint64_t>(offset) + piece->size);
        done(0, piece->data, piece->size);
        return true;
    }

    // What the handle's reads share; outlives the handle while a read is answered.
    struct Shared {
        Shared(MigrateObserver& o, state::FileState r, std::string p, bool rel,
               std::shared_ptr<void> hold, FileId file)
            : owner(o), rec(std::move(r)), path(std::move(p)), released(rel),
              open_copy(std::move(hold)), id(file) {}
        ~Shared() {
            if (pinned.load(std::memory_order_acquire)) owner.gate_.unpin(id);
        }
        MigrateObserver& owner;
        const state::FileState rec;
        const std::string path;
        const bool released;
        const std::shared_ptr<void> open_copy;
        const FileId id;
        std::atomic<bool> local{false};  // read SOURCE from now on
        std::atomic<bool> pinned{false}; // a released file's handle pinned it (serve_released)
    };
    struct Call {
        std::shared_ptr<Shared> shared;
        fs::File* file; // valid until `done` is called
        ReadDone done;
        size_t size;
        off_t offset;
        bool riak_timed_out = false; // waited riak_timeout for a prefetch: read locally
    };

    // The object is on its way (the LOOKUP or OPEN started its GET): the READ is answered where
    // that GET ends (the FUSE loop that made it, or the migration loop), from the cache; if the
    // fetch failed, it takes the migration loop's usual path (which says why, and reads
    // locally). A released file's READ takes that path in any case (it checks the placeholder's
    // marker first), and finds the object cached. `call` is taken only when this returns true.
    static bool wait_for_prefetch(std::unique_ptr<Call>& call) {
        const std::shared_ptr<Shared> shared = call->shared;
        // Handed over before it is registered: the loop may call it as soon as it is.
        auto held = std::make_shared<std::unique_ptr<Call>>(std::move(call));
        auto& reader = *shared->owner.reader_;
        bool waiting = reader.when_prefetched(shared->rec, [held](RiakReader::Wait wait) {
            std::unique_ptr<Call> c = std::move(*held);
            if (wait == RiakReader::Wait::fetched && !c->shared->released &&
                answer_from_cache(*c->shared, *c->file, c->size, c->offset, c->done))
                return;
            c->riak_timed_out = wait == RiakReader::Wait::timed_out;
            asio::io_context& context = c->shared->owner.migrator_.context();
            asio::co_spawn(context, serve(std::move(c)), asio::detached);
        });
        if (!waiting) call = std::move(*held); // never registered: still ours
        return waiting;
    }

    // What a released file's placeholder says now, read in the release gate: its marker (or
    // none: the data is back), or nullopt when a release of it has not ended in
    // kReleaseInProgressWait. With no marker, the handle pins the file (once).
    static asio::awaitable<std::optional<state::Result<std::optional<state::Marker>>>>
    look_at_placeholder(Call& call) {
        Shared& shared = *call.shared;
        // Without its marker the local file is whole and current (the marker goes only once
        // all the data is back). The handle reads it from then on, and pins the file as an
        // open of local data does, or the file, copied again, would be released under those
        // reads (which would read the placeholder's zeros). The marker is read in the gate,
        // where no release is in progress; while one is, this asks again a moment later (never
        // waiting on the loop, which the release needs).
        std::optional<state::Result<std::optional<state::Marker>>> marker;
        const auto deadline = std::chrono::steady_clock::now() + kReleaseInProgressWait;
        while (true) {
            const bool looked = shared.owner.gate_.try_with_file(shared.id, [&](auto pin) {
                marker = state::read_marker(call.file->fd());
                if (*marker && !**marker && !shared.pinned.exchange(true)) pin();
            });
            if (looked || std::chrono::steady_clock::now() > deadline) break;
            asio::steady_timer pause(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(1));
            co_await pause.async_wait(asio::use_awaitable);
        }
        co_return marker;
    }

    static asio::awaitable<Served> serve_released(Call& call) {
        Shared& shared = *call.shared;
        // A read from Riak that fails because the file changed under it (brought back and
        // written through another handle, then copied again: the copy it read is replaced, its
        // chunks deleted) is made again from what the placeholder says then, as a read racing
        // a write natively gets either version, never an error.
        constexpr int kAttempts = 3;
        Served failed;              // the last failed read from Riak
        std::string failed_version; // the version it read
        auto give_up = [&] {
            RFS_LOG_WARN("reading released file {} from Riak failed: {}", shared.path,
                         failed.error ? failed.error->describe() : std::string("?"));
            return std::move(failed);
        };
        for (int attempt = 1;; ++attempt) {
            auto marker = co_await look_at_placeholder(call);
            Served out;
            if (!marker) {
                RFS_LOG_WARN("cannot read {}: its release has not ended in {} s", shared.path,
                             kReleaseInProgressWait.count());
                out.err = EIO;
                co_return out;
            }
            if (!*marker) {
                RFS_LOG_WARN("cannot read {}: its placeholder's marker: {}", shared.path,
                             marker->error().message);
                out.err = EIO;
                co_return out;
            }
            if (!**marker) {
                shared.local.store(true, std::memory_order_relaxed);
                out.err = read_local(call.file->fd(), static_cast<std::uint64_t>(call.offset),
                                     call.size, &out.data);
                co_return out;
            }
            const state::Marker& now = ***marker;
            // After a failed read, the same version means nothing changed under it: Riak failed.
            if (attempt > 1 && now.version == failed_version) co_return give_up();
            // Released again since this handle was opened (written through another handle and
            // copied anew): the marker names what the file holds now, which every handle sees,
            // as natively. (Another key with the same version: a rename moved the copy, and
            // the one this handle holds at its old key is the same bytes.)
            const state::FileState rec =
                now.version == shared.rec.version ? shared.rec : state::released_record(now);
            auto reader = shared.owner.reader_;
            auto read =
                reader->read_released(rec, static_cast<std::uint64_t>(call.offset), call.size);
            out = co_await std::move(read);
            if (!out.err) co_return out;
            failed = std::move(out);
            failed_version = rec.version;
            if (attempt == kAttempts) co_return give_up();
        }
    }

    static asio::awaitable<void> serve(std::unique_ptr<Call> call) {
        Shared& shared = *call->shared;
        MigrateObserver& owner = shared.owner;
        Served served;
        if (shared.released) {
            served = co_await serve_released(*call);
            if (served.from_riak) owner.riak_reads_.fetch_add(1, std::memory_order_relaxed);
        } else if (call->riak_timed_out) {
            // Waited riak_timeout for the prefetch already: not once more in read_or_local.
            served.error =
                riak::make_error(riak::Errc::timeout, "no answer from Riak in time", ETIMEDOUT);
            served.err = read_local(call->file->fd(), static_cast<std::uint64_t>(call->offset),
                                    call->size, &served.data);
        } else {
            auto reader = owner.reader_;
            auto read = reader->read_or_local(shared.rec, call->file->fd(),
                                              static_cast<std::uint64_t>(call->offset), call->size);
            served = co_await std::move(read);
            if (served.from_riak) {
                owner.riak_reads_.fetch_add(1, std::memory_order_relaxed);
            } else if (!shared.local.exchange(true)) {
                // Once per handle; logged once per file.
                if (served.changed) {
                    RFS_LOG_DEBUG("{} changed since its copy: reading it locally", shared.path);
                } else {
                    owner.fallbacks_.fetch_add(1, std::memory_order_relaxed);
                    int err = served.error ? served.error->to_errno() : 0;
                    if (owner.first_failure(shared.path))
                        RFS_LOG_WARN("reading {} from the local file: Riak failed: {}", shared.path,
                                     served.error ? served.error->describe() : std::string("?"));
                    // Someone else changed Riak's copy, or it is damaged: copy the file again.
                    if (err == ESTALE || err == EBADMSG)
                        owner.migrator_.file_closed(shared.path, true);
                }
            }
        }
        if (served.err) co_return call->done(served.err, nullptr, 0);
        fs::File& file = *call->file;
        if (served.data.size() < call->size) file.mark_read_to_end();
        file.note_read(static_cast<std::uint64_t>(call->offset) + served.data.size());
        call->done(0, served.data.data(), served.data.size()); // the file is not touched after
    }

    std::shared_ptr<Shared> shared_;
};

bool MigrateObserver::first_failure(const std::string& path) {
    std::lock_guard lock(logged_mu_);
    if (logged_.size() >= 10000) logged_.clear();
    return logged_.insert(path).second;
}

std::unique_ptr<fs::RemoteReads>
MigrateObserver::serve_verified(fs::NodeId node, const struct stat& st,
                                std::optional<LookupPrefetch::Found> looked_up, std::string* path) {
    // What the LOOKUP's fetch found, if it still describes the file: its GET is on its way or
    // done, and the path and record need not be looked up again.
    if (looked_up && record_matches(looked_up->rec, st)) {
        *path = looked_up->path;
        return std::make_unique<RiakServedFile>(*this, std::move(looked_up->rec),
                                                std::move(looked_up->path), false);
    }
    if (fs_.relative_path(node, path) != 0 || path->empty()) return nullptr;
    auto rec = state_.get(*path);
    if (!rec || !*rec) return nullptr; // never copied (or the state store failed): local
    if (!record_matches(**rec, st)) return nullptr; // written since its copy: local until copied
    // The READ follows one round trip later: have the object on its way (or cached) by then.
    prefetch(**rec, calling_loop());
    return std::make_unique<RiakServedFile>(*this, std::move(**rec), *path, false);
}

void MigrateObserver::prefetch(state::FileState rec, const LoopStore& here) {
    if (here.context && here.store)
        reader_->prefetch_here(std::move(rec), *here.context, *here.store);
    else
        reader_->prefetch(std::move(rec));
}

// Only small files: for them the GET is most of an open-read-close; a large file's sequential
// reader has its chunks fetched ahead anyway.
constexpr off_t kLookupPrefetchMax = 64 << 10;

std::unique_ptr<SiblingPrefetch> MigrateObserver::make_sibling_prefetch(int source_root) {
    if (source_root < 0) return nullptr;
    return std::make_unique<SiblingPrefetch>(
        [source_root](const std::string& dir) -> std::optional<std::vector<std::string>> {
            // Listed on a FUSE loop (after a reply): a directory larger than this is not, so
            // that the loop never stalls long on one.
            constexpr std::size_t kMaxListed = 20000;
            int fd = open_dir_beneath(source_root, dir);
            if (fd < 0) return std::nullopt;
            DIR* listing = ::fdopendir(fd);
            if (!listing) {
                ::close(fd);
                return std::nullopt;
            }
            std::vector<std::string> names;
            while (const dirent* e = ::readdir(listing)) {
                if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) continue;
                if (names.size() == kMaxListed) {
                    ::closedir(listing);
                    return std::nullopt;
                }
                names.emplace_back(e->d_name);
            }
            ::closedir(listing);
            return names;
        });
}

void MigrateObserver::fetch_siblings(std::string path, off_t size) {
    if (!siblings_ || size == 0 || size > kLookupPrefetchMax) return;
    const LoopStore here = calling_loop();
    // The open is noted now, before its reply, when its directory is listed already: a reader's
    // next open cannot come before it, whichever loop takes that one. The directory's listing
    // (and every fetch's state record) waits until after the reply.
    auto known = siblings_->opened_if_listed(path);
    if (known && known->empty()) return;
    asio::post(here.context ? *here.context : migrator_.context(),
               [this, path = std::move(path), known = std::move(known), here] {
                   for (const auto& next : known ? *known : siblings_->opened(path)) {
                       auto rec = state_.get(next);
                       if (!rec || !*rec) continue; // never copied: read locally
                       const state::FileState& r = **rec;
                       // A verified copy of a file changed since costs one GET for nothing:
                       // its open reads the local file (record_matches), as without this.
                       if (r.verified_copy() && !r.key.empty() && r.size > 0 &&
                           r.size <= static_cast<std::uint64_t>(kLookupPrefetchMax))
                           prefetch(r, here);
                   }
               });
}

void MigrateObserver::on_looked_up(const fs::Entry& entry) {
    if (!options_.serve_verified || entry.attr.st_size == 0 ||
        entry.attr.st_size > kLookupPrefetchMax || !lookup_prefetch_.want(entry.id))
        return;
    // The path now, while the kernel cannot have forgotten the node (its LOOKUP is not answered
    // yet); the record once the LOOKUP is answered (posted: on this thread's loop after the
    // reply, or on the migration loop when this thread has none), so that the answer does not
    // wait for it.
    const std::uint64_t generation = lookup_prefetch_.generation();
    std::string path;
    if (fs_.relative_path(entry.id, &path) != 0 || path.empty()) return;
    const LoopStore here = calling_loop();
    asio::post(here.context ? *here.context : migrator_.context(),
               [this, node = entry.id, path = std::move(path), st = entry.attr, generation, here] {
                   auto rec = state_.get(path);
                   if (!rec || !*rec || !record_matches(**rec, st)) return;
                   prefetch(**rec, here);
                   // For the open that follows (it checks the record against its fstat).
                   lookup_prefetch_.found(node, {path, std::move(**rec)}, generation);
               });
}

fs::OpenPlan MigrateObserver::on_open(fs::NodeId node, int flags, int fd) {
    fs::OpenPlan plan;
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        plan.err = errno;
        return plan;
    }
    if (!S_ISREG(st.st_mode)) return plan;
    const bool writes = opens_for_writing(flags);
    std::optional<LookupPrefetch::Found> looked_up;
    if (!writes) looked_up = lookup_prefetch_.opened(node);
    const FileId id{st.st_dev, st.st_ino};
    std::optional<state::Marker> released;
    gate_.with_file(id, [&](auto pin) {
        // Again under the lock: a release may have ended while this open waited for it.
        if (::fstat(fd, &st) != 0) {
            plan.err = errno;
            return;
        }
        // Every open looks (one getxattr): block counts cannot tell a small placeholder from a
        // small file, since a file system may count the attribute's own block.
        {
            auto marker = state::read_marker(fd);
            if (!marker) {
                // Cannot tell whether the data is here: refuse rather than serve zeros.
                RFS_LOG_WARN("cannot open node {}: its placeholder marker: {}", node,
                             marker.error().message);
                plan.err = EIO;
                return;
            }
            if (*marker) {
                if (writes)
                    plan.err = fs::kNeedsData;
                else
                    released = std::move(**marker);
                return;
            }
        }
        pin();
        plan.pinned = true;
        note_pin(node, id);
    });
    if (plan.err) return plan;
    std::string path;
    if (released) {
        if (fs_.relative_path(node, &path) != 0) path.clear();
        state::FileState rec = state::released_record(*released);
        // Its only copy stays in Riak, for this handle, even if the file is unlinked or
        // replaced while open (open_copies.hpp).
        auto open_copy = migrator_.hold_open_copy(layout::Location{rec.type, rec.bucket, rec.key},
                                                  rec.version, id);
        plan.remote = std::make_unique<RiakServedFile>(
            *this, std::move(rec), path.empty() ? fmt::format("node {}", node) : path, true,
            std::move(open_copy), id);
    } else if (!writes && options_.serve_verified) {
        plan.remote = serve_verified(node, st, std::move(looked_up), &path);
    }
    if (plan.remote && !path.empty()) fetch_siblings(std::move(path), st.st_size);
    return plan;
}

fs::OpenPlan MigrateObserver::on_created_open(fs::NodeId node, int /*flags*/, int /*fd*/,
                                              const struct stat& st) {
    // Made by this CREATE a moment ago: no placeholder marker can be on it and no copy of it is
    // in Riak, so neither the fstats nor the getxattr of on_open(); only the pin that keeps a
    // release away while it is open.
    fs::OpenPlan plan;
    pin_when_not_releasing(node, FileId{st.st_dev, st.st_ino});
    plan.pinned = true;
    return plan;
}

int MigrateObserver::set_times(fs::NodeId node, fs::SrcId src, const timespec* times,
                               const std::function<int()>& apply) {
    const FileId id{src.dev, src.ino};
    // Waits for a release in progress (which puts the old times back at its end) and keeps the
    // next one off until the times are set; a placeholder's times change without its data.
    pin_when_not_releasing(node, id);
    int err = 0;
    {
        // A fetch back puts the marker's mtime back once its writes are done: set while it runs,
        // these times are what it applies instead (a later touch's fields replace an earlier
        // one's). Under the lock its futimens takes, so that neither overwrites the other.
        std::lock_guard lock(fetch_mu_);
        err = apply();
        if (auto it = fetches_.find(id); err == 0 && it != fetches_.end())
            take_set_times(it->second.times, times);
    }
    on_unpinned(node);
    return err;
}

void MigrateObserver::pin_when_not_releasing(fs::NodeId node, const FileId& id) {
    gate_.with_file(id, [&](auto pin) {
        pin();
        note_pin(node, id);
    });
}

void MigrateObserver::note_pin(fs::NodeId node, const FileId& id) {
    std::lock_guard lock(pins_mu_);
    auto& p = node_pins_[node];
    p.id = id;
    ++p.count;
}

void MigrateObserver::on_unpinned(fs::NodeId node) {
    FileId id;
    {
        std::lock_guard lock(pins_mu_);
        auto it = node_pins_.find(node);
        if (it == node_pins_.end()) return;
        id = it->second.id;
        if (--it->second.count == 0) node_pins_.erase(it);
    }
    gate_.unpin(id);
}

void MigrateObserver::on_released(fs::NodeId node, bool written, bool read_to_end) {
    ShadowObserver::on_released(node, written, read_to_end);
    if (!options_.release || written || read_to_end) return; // those were handed over above
    // Closed unchanged: if its copy is verified and nothing else holds it, it may go now.
    std::string path;
    if (fs_.relative_path(node, &path) == 0 && !path.empty())
        migrator_.release_when_unused(std::move(path));
}

void MigrateObserver::on_renamed(fs::NodeId parent, std::string_view name, fs::NodeId newparent,
                                 std::string_view newname, unsigned flags,
                                 fs::NotedChange& change) {
    lookup_prefetch_.forget_found(); // the paths the last lookups found may be stale now
    ShadowObserver::on_renamed(parent, name, newparent, newname, flags, change);
}

int MigrateObserver::exchange(fs::NodeId parent, int dir_fd, const char* name, fs::NodeId newparent,
                              int newdir_fd, const char* newname,
                              const std::function<int()>& exchange) {
    // A placeholder is refused (its data would have to come back first, for both names' new
    // copies). The check and the exchange happen with both files pinned: a release in flight is
    // waited for (the file it leaves is a placeholder), and none starts before the exchange is
    // made. Checked before the pins and released after, a file could become a placeholder
    // between the two, and the exchange then moved a released file's record as a whole file's.
    std::vector<FileId> pinned;
    int err = 0;
    for (auto [dir, n] : {std::pair{dir_fd, name}, std::pair{newdir_fd, newname}}) {
        struct stat st;
        if (::fstatat(dir, n, &st, AT_SYMLINK_NOFOLLOW) != 0) break; // renameat2 reports it
        if (S_ISDIR(st.st_mode)) {
            err = EINVAL;
        } else if (S_ISREG(st.st_mode)) {
            UniqueFd fd(::openat(dir, n, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
            if (!fd || ::fstat(fd.get(), &st) != 0) {
                err = errno;
            } else {
                const FileId id{st.st_dev, st.st_ino};
                err = gate_.with_file(id, [&](auto pin) {
                    auto marker = state::read_marker(fd.get());
                    if (!marker) return EIO;
                    if (*marker) return EINVAL;
                    pin();
                    pinned.push_back(id);
                    return 0;
                });
            }
        }
        if (err) break;
    }
    if (!err) err = exchange();
    for (const auto& id : pinned)
        gate_.unpin(id);
    // A release the pins turned away is asked for again (as a close asks): nothing else would,
    // the refused exchange changed nothing. A made exchange copies both files again, and their
    // releases follow those copies.
    if (err && !pinned.empty() && options_.release)
        for (auto [dir, n] : {std::pair{parent, name}, std::pair{newparent, newname}}) {
            std::string path;
            if (child_path(dir, n, &path)) migrator_.release_when_unused(std::move(path));
        }
    return err;
}

// ---- bringing a released file's data back ------------------------------------------------------

void MigrateObserver::fetch_data(fs::NodeId node, UniqueFd fd, Callback<void(int)> done) {
    std::string path;
    if (fs_.relative_path(node, &path) != 0) path.clear();
    fetch_path(std::move(path), std::move(fd), std::move(done));
}

void MigrateObserver::fetch_path(std::string path, UniqueFd fd, Callback<void(int)> done) {
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return done(errno);
    const FileId id{st.st_dev, st.st_ino};
    {
        std::lock_guard lock(fetch_mu_);
        auto& waiting = fetches_[id].waiting;
        waiting.push_back(std::move(done));
        if (waiting.size() > 1) return; // one fetch per file: it answers every waiter
    }
    // Pinned while it is filled: the migrator must not release it again meanwhile.
    gate_.with_file(id, [](auto pin) { pin(); });
    auto shared_fd = std::make_shared<UniqueFd>(std::move(fd));
    asio::io_context& context = migrator_.context();
    asio::post(context, [this, &context, id, shared_fd, path = std::move(path)]() mutable {
        asio::co_spawn(context, fetch_back(id, shared_fd, std::move(path)), asio::detached);
    });
}

void MigrateObserver::fetch_done(FileId id, int err) {
    // Its blocks are back (or, after a failure, some of them, with an mtime the writes moved):
    // the mtime fetch_back held ends, and the kernel asks again. The pin kept any other hold of
    // the file away (a release), so this ends fetch_back's, or none when it began none.
    fs_.source_changed(id.dev, id.ino);
    gate_.unpin(id);
    std::vector<Callback<void(int)>> waiting;
    {
        std::lock_guard lock(fetch_mu_);
        auto it = fetches_.find(id);
        if (it != fetches_.end()) {
            waiting = std::move(it->second.waiting);
            fetches_.erase(it);
        }
    }
    for (auto& done : waiting)
        done(err);
}

// On the migrator's loop. The content is written back piece by piece (pieces of zeros are
// left as holes), made durable, the mtime put back, and only then the marker removed: a crash
// at any point leaves a file that still says its content is in Riak.
asio::awaitable<void> MigrateObserver::fetch_back(FileId id, std::shared_ptr<UniqueFd> fd,
                                                  std::string path) {
    const std::string name = path.empty() ? std::string("a released file") : path;
    // The file's capabilities, which its first write removes (placeholder.hpp): put back once
    // the content is, and on the way out of a failed fetch too.
    std::optional<std::string> caps;
    timespec mtime{};
    bool noted = false; // the fetching note is on the file (placeholder.hpp)
    auto fail = [&](const std::string& why) {
        RFS_LOG_WARN("cannot bring {} back from Riak: {}", name, why);
        (void)state::restore_capabilities(fd->get(), caps);
        if (noted) {
            // Still a placeholder (the marker stays): its writes' mtime goes back to the copy's,
            // so that it is not taken for one changed beside the mount.
            const timespec times[2] = {{0, UTIME_OMIT}, mtime};
            if (::futimens(fd->get(), times) == 0) (void)state::clear_fetching(fd->get());
        }
        fetch_done(id, EIO);
    };
    // After a relocation of this placeholder in progress: then the marker names the new key.
    auto turn = co_await migrator_.file_turns().take(id);
    auto marker = state::read_marker(fd->get());
    if (!marker) co_return fail(marker.error().message);
    if (!*marker) co_return fetch_done(id, 0); // already back
    const state::Marker m = **marker;
    const state::FileState rec = state::released_record(m);
    // The copy stays in Riak until all of it is back, even if the file is unlinked meanwhile.
    const auto open_copy =
        migrator_.hold_open_copy(layout::Location{m.type, m.bucket, m.key}, m.version, id);
    mtime = timespec_of(m.mtime_ns);
    // The writes move the mtime until it is put back below, after the whole download: what the
    // mount answers meanwhile shows the one the file gets back. fetch_done ends it.
    fs_.source_changing(id.dev, id.ino, mtime);
    if (auto read = state::read_capabilities(fd->get()); read)
        caps = std::move(*read);
    else
        co_return fail(read.error().message);
    // Noted durably before the first write moves the mtime: a fetch cut short here on leaves a
    // placeholder whose mtime is not the marker's, which the note explains (Migrator).
    if (auto note = state::note_fetching(fd->get()); !note) co_return fail(note.error().message);
    noted = true;
    if (::fsync(fd->get()) != 0) co_return fail(fmt::format("fsync: {}", std::strerror(errno)));
    constexpr std::uint64_t kPiece = 1 << 20;
    for (std::uint64_t offset = 0; offset < m.size; offset += kPiece) {
        std::uint64_t len = std::min(kPiece, m.size - offset);
        auto read = reader_->read_released(rec, offset, len);
        Served piece = co_await std::move(read);
        if (piece.err || piece.data.size() != len)
            co_return fail(piece.error ? piece.error->describe() : "short read from Riak");
        if (rfs::all_zero(piece.data)) continue; // the placeholder is a hole there already
        std::size_t done = 0;
        while (done < len) {
            ssize_t n = ::pwrite(fd->get(), piece.data.data() + done, len - done,
                                 static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) co_return fail(fmt::format("writing: {}", std::strerror(errno)));
            done += static_cast<std::size_t>(n);
        }
    }
    if (auto restored = state::restore_capabilities(fd->get(), caps); !restored)
        co_return fail(restored.error().message);
    if (::fsync(fd->get()) != 0) co_return fail(fmt::format("fsync: {}", std::strerror(errno)));
    int times_err = 0;
    {
        // The user's times if they set some meanwhile (the writes moved the mtime since); a
        // user's call waits for this one (set_times).
        std::lock_guard lock(fetch_mu_);
        timespec times[2] = {{0, UTIME_OMIT}, mtime};
        if (auto it = fetches_.find(id); it != fetches_.end())
            take_set_times(times, it->second.times);
        if (::futimens(fd->get(), times) != 0) times_err = errno;
    }
    if (times_err) co_return fail(fmt::format("setting mtime: {}", std::strerror(times_err)));
    if (auto cleared = state::clear_marker(fd->get()); !cleared)
        co_return fail(cleared.error().message);
    noted = false; // a plain file now, whatever happens to the note
    if (auto cleared = state::clear_fetching(fd->get()); !cleared)
        RFS_LOG_WARN("{}: cannot remove {}: {}", name, state::fetching_xattr,
                     cleared.error().message);
    if (::fsync(fd->get()) != 0) co_return fail(fmt::format("fsync: {}", std::strerror(errno)));
    // The file holds the verified copy again: its record says so, with the new ctime.
    struct stat st;
    if (!path.empty() && ::fstat(fd->get(), &st) == 0) {
        auto old = state_.get(path);
        state::FileState now = rec;
        if (old && *old) now.vclock = (*old)->vclock;
        now.phase = state::Phase::verified;
        now.size = static_cast<std::uint64_t>(st.st_size);
        now.mtime_ns = ns_of(st.st_mtim);
        now.ctime_ns = ns_of(st.st_ctim);
        now.dev = st.st_dev;
        now.ino = st.st_ino;
        if (auto put = state_.put(path, now); !put)
            RFS_LOG_WARN("cannot record {} as fetched back: {}", path, put.error().message);
    }
    RFS_LOG_DEBUG("brought {} back from Riak ({} bytes)", name, m.size);
    fetch_done(id, 0);
}

} // namespace rfs::migrate
