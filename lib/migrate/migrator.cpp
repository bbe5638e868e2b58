#include "lib/migrate/migrator.hpp"

#include "lib/migrate/intent_journal.hpp"
#include "lib/migrate/pending_uploads.hpp"

#include "lib/common/log.hpp"
#include "lib/common/timespec_ns.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/io/executor.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/migrate/local_pins.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/migrate/release_gate.hpp"
#include "lib/migrate/relocate.hpp"
#include "lib/migrate/remove_file_object.hpp"
#include "lib/migrate/riak_reader.hpp"
#include "lib/migrate/uploader.hpp"
#include "lib/state/placeholder.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <utility>

namespace rfs::migrate {
namespace asio = boost::asio;

namespace {

// Opens `rel` beneath SOURCE for reading: no symlink followed, nothing outside SOURCE reached,
// and a FIFO put there does not block the open.
int open_beneath(int root, const std::string& rel, int access = O_RDONLY) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(access | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how));
}

// What lstat says of `rel` beneath SOURCE: 0 with *st set, ENOENT when nothing is there (or a
// component is not a directory), another errno otherwise (ELOOP: a symlink on the way). A symlink
// at `rel` itself is "there, not a file".
int stat_beneath(int root, const std::string& rel, struct stat* st) {
    const int err = lstat_beneath(root, rel, st);
    return err == ENOTDIR ? ENOENT : err;
}

// The object a record stands for: the one it was copied to, else where its path maps now.
std::optional<layout::Location> location_of(const layout::Mapper& mapper, std::string_view path,
                                            const state::FileState& rec) {
    if (!rec.bucket.empty() && !rec.key.empty())
        return layout::Location{rec.type, rec.bucket, rec.key};
    return mapper.map(path);
}

auto location_tuple(const layout::Location& l) {
    return std::tie(l.type, l.bucket, l.key);
}

// Whether `id` is the key `path` maps to (its own object, not one a relocation left behind).
bool owns_key(const layout::Mapper& mapper, const std::string& path, const layout::Location& id) {
    auto own = mapper.map(path);
    return own && location_tuple(*own) == location_tuple(id);
}

// Where a record names a copy at a key that is not `path`'s own (a move still to come: the
// copy is to follow a rename there), if it does.
std::optional<layout::Location> foreign_copy(const layout::Mapper& mapper, const std::string& path,
                                             const state::FileState& rec) {
    if (rec.version.empty() || rec.key.empty()) return std::nullopt;
    layout::Location held{rec.type, rec.bucket, rec.key};
    if (owns_key(mapper, path, held)) return std::nullopt;
    return held;
}

std::string join_path(const std::string& dir, std::string_view rest) {
    return dir + std::string(rest);
}

// A record whose copy can follow a rename inside Riak (relocate.hpp): the copy was verified, and
// Riak may hold its only copy (released).
bool relocatable(const state::FileState& rec) {
    return !rec.version.empty() && !rec.key.empty() && rec.verified_copy();
}

bool is_released(const state::FileState& rec) {
    return rec.phase == state::Phase::releasing || rec.phase == state::Phase::released;
}

std::string location_text(const layout::Location& l) {
    return l.type + '\0' + l.bucket + '\0' + l.key;
}

// A location_text for the log: "a/b.txt (bucket riakfs)", "a/b.txt (bucket maps/riakfs)".
std::string shown_location(std::string_view text) {
    const auto first = text.find('\0');
    const auto second = text.find('\0', first + 1);
    if (first == std::string_view::npos || second == std::string_view::npos)
        return std::string(text);
    const std::string_view type = text.substr(0, first);
    const std::string_view bucket = text.substr(first + 1, second - first - 1);
    return fmt::format("{} (bucket {}{}{})", text.substr(second + 1), type, type.empty() ? "" : "/",
                       bucket);
}

// What a removal record holds: the object to delete (and, for the log, what was copied there).
state::FileState removal_record(const layout::Location& where, const state::FileState& rec) {
    state::FileState r;
    r.type = where.type;
    r.bucket = where.bucket;
    r.key = where.key;
    r.version = rec.version;
    r.sha256 = rec.sha256;
    return r;
}

// The record no longer names a copy in Riak (the next copy of its path goes to the path's own
// key, as a first one does): its object is another path's, or goes by a removal of its own.
void forget_copy(state::FileState& rec) {
    rec.version.clear();
    rec.sha256.clear();
    rec.vclock.clear();
    rec.type.clear();
    rec.bucket.clear();
    rec.key.clear();
}

// A path's removal record is one slot, keyed by the path. A second removal of the same path,
// for another object (a rename handled while the path's last removal waits, for Riak or its
// turn), must not overwrite the first, which would leave that object behind: it takes a slot
// of its own, "PATH/" + a name longer than NAME_MAX (no path in SOURCE can be one) + a number.
// remove_one() treats it as a path with no file, and, not the path's own key, deletes only the
// version recorded.
const std::string kExtraSlot = std::string(NAME_MAX + 1, '~');

bool is_extra_removal_slot(std::string_view path) {
    auto slash = path.rfind('/');
    return slash != std::string_view::npos &&
           path.substr(slash + 1, kExtraSlot.size()) == kExtraSlot;
}

// In a removal record: the object's chunks belong to a copy moved elsewhere (relocate.hpp):
// delete the key only.
constexpr state::Phase kKeepChunks = state::Phase::released;

constexpr unsigned kReleaseThreads = 4;

} // namespace

Migrator::Migrator(int source_root, const layout::Mapper& mapper, state::StateStore& state,
                   StoreFactory make_store, MigratorOptions options)
    : source_root_(source_root), mapper_(mapper), state_(state), make_store_(std::move(make_store)),
      options_(options) {}

Migrator::~Migrator() {
    open_copies_->set_on_free({}); // holds that outlive the Migrator wake nothing
    if (thread_.joinable()) stop(std::chrono::milliseconds(0));
}

void Migrator::start() {
    wakeup_ = std::make_unique<asio::steady_timer>(context_, asio::steady_timer::time_point::max());
    // The removals and copies waiting for an object's last open handle are looked at again.
    open_copies_->set_on_free([this] {
        asio::post(context_, [this] {
            if (stopping_) return;
            if (wakeup_) wakeup_->cancel();
            sweep_held();
        });
    });
    long_wait_timer_ = std::make_unique<asio::steady_timer>(context_);
    commits_ = std::make_unique<state::GroupCommit>(state_);
    store_ = make_store_(context_);
    // Before the thread starts, this thread may act as the loop's.
    if (auto pending = state_.list_pending()) {
        for (auto& p : *pending) {
            relocation_source_changed(p.path, &p.state); // before any copy may run
            enqueue_on_loop(p.path);
        }
        if (!pending->empty())
            RFS_LOG_INFO("resuming the copy of {} file(s) left pending", pending->size());
    } else {
        RFS_LOG_ERROR("cannot read the pending copies: {}", pending.error().message);
    }
    if (auto removals = state_.list_removals()) {
        for (auto& r : *removals)
            enqueue_removal(r.path);
        if (!removals->empty())
            RFS_LOG_INFO("resuming the removal of {} object(s) left pending", removals->size());
    } else {
        RFS_LOG_ERROR("cannot read the pending removals: {}", removals.error().message);
    }
    // Chunks of uploads a crash cut short (pending_uploads.hpp): no upload runs yet, so every
    // note left names chunks no record refers to.
    std::vector<PendingUpload> unfinished;
    auto scanned = state_.aux_for_each(state::AuxKind::pending_upload, "",
                                       [&](std::string_view version, std::string_view value) {
                                           if (auto u = decode_pending_upload(version, value))
                                               unfinished.push_back(std::move(*u));
                                           return true;
                                       });
    if (!scanned) RFS_LOG_ERROR("cannot read the unfinished uploads: {}", scanned.error().message);
    if (!unfinished.empty())
        RFS_LOG_INFO("deleting the chunks of {} copy(ies) a stop cut short", unfinished.size());
    for (auto& u : unfinished)
        sweep_later(std::move(u));
    if (options_.release) {
        release_work_.emplace(release_io_.get_executor());
        // Each mostly waits for an fsync: a few let the disk take several files' at once.
        for (unsigned i = 0; i < kReleaseThreads; ++i)
            release_threads_.push_back(io::thread_without_signals(
                [this] { release_io_.run(); }, "riakfs-release", io::ThreadRole::background));
        asio::post(context_, [this] { resume_releases(); });
    }
    for (unsigned i = 0; i < std::max(1u, options_.parallel_uploads); ++i)
        asio::co_spawn(context_, worker(), asio::detached);
    asio::co_spawn(context_, watch_long_waits(), asio::detached);
    // Background, though it also fetches the chunks that reads of large files wait for: the
    // FUSE loops answer those reads, and a short slice there is what lets a reply go out at once.
    thread_ = io::thread_without_signals([this] { context_.run(); }, "riakfs-migrate",
                                         io::ThreadRole::background);
}

void Migrator::stop(std::chrono::milliseconds drain) {
    if (!thread_.joinable()) return;
    if (drain.count() > 0 && !wait_idle(drain)) {
        auto left = stats();
        RFS_LOG_WARN("stopping with {} copy(ies) and {} removal(s) pending; they resume at the "
                     "next start",
                     left.queued - left.removals_queued, left.removals_queued);
    }
    asio::post(context_, [this] {
        stopping_ = true;
        wakeup_->cancel();
        long_wait_timer_->cancel();
    });
    context_.stop();
    thread_.join();
    // A release's local calls in progress end (its records do not get written: the next start
    // finishes that release, resume_releases).
    release_work_.reset();
    for (auto& t : release_threads_)
        t.join();
    release_threads_.clear();
    commits_.reset(); // what it still held is durable now; nothing waits for it any more
    store_.reset();
}

void Migrator::work_posted() {
    std::lock_guard lock(stats_mu_);
    ++closes_posted_;
}

void Migrator::work_done(std::uint64_t n) {
    std::lock_guard lock(stats_mu_);
    closes_posted_ -= n;
    if (closes_posted_ == 0 && stats_.queued == 0) idle_cv_.notify_all();
}

void Migrator::post_to_loop(std::function<void()> work) {
    work_posted();
    asio::post(context_, [this, work = std::move(work)] {
        if (!stopping_) work();
        work_done();
    });
}

std::shared_ptr<void> Migrator::hold_open_copy(const layout::Location& where,
                                               const std::string& version, FileId file) {
    std::string location = location_text(where);
    open_copies_->hold(location, version, file);
    return std::shared_ptr<void>(nullptr, [copies = open_copies_, location, version, file](void*) {
        copies->release(location, version, file);
    });
}

void Migrator::file_closed(std::string rel_path, bool written, std::uint64_t note) {
    if (!mapper_.map(rel_path)) return settle_note(note); // stays local
    post_to_loop([this, path = std::move(rel_path), written, note] {
        // After the namespace operations heard before it, which may be waiting for releases in
        // flight: a close of a file created at a name that a waiting rename moved away must not
        // take that file's record (and drop the chunks its relocated manifest still names).
        if (held_namespace_ops_.empty()) return closed_on_loop(path, written, note);
        work_posted(); // counted down by run_held(), which runs it
        held_namespace_ops_.push_back(
            {[this, path, written, note] { closed_on_loop(path, written, note); }, {}});
    });
}

UploadInput::ChunkHeld Migrator::chunk_held() const {
    return [copies = open_copies_](std::string_view key) { return copies->holds_chunk(key); };
}

void Migrator::sweep_later(PendingUpload upload) {
    // Chunks a copy replaced that a handle still reads (open_copies.hpp): the note stays, and
    // the sweep is made once no hold is left on them (sweep_held()).
    for (const auto& key : upload.replaced) {
        if (!open_copies_->holds_chunk(key)) continue;
        work_posted(); // not idle while it waits
        held_sweeps_.push_back(std::move(upload));
        return;
    }
    work_posted(); // idle once it ended
    asio::co_spawn(context_, sweep_pending_upload(*store_, state_, std::move(upload)),
                   [this](std::exception_ptr, bool) { work_done(); });
}

void Migrator::sweep_held() {
    std::vector<PendingUpload> held;
    held.swap(held_sweeps_);
    for (auto& upload : held) {
        sweep_later(std::move(upload)); // kept back again if still held
        work_done();                    // the count sweep_later() took when it kept it back
    }
}

std::optional<PendingUpload> Migrator::note_chunks_left(state::StateStore::Batch& batch,
                                                        const std::string& path,
                                                        const layout::Location& where,
                                                        std::vector<std::string> keys) {
    if (keys.empty()) return std::nullopt;
    PendingUpload left{"replaced:" + layout::make_version(),
                       path,
                       where.type,
                       where.bucket,
                       where.key,
                       0,
                       std::move(keys)};
    batch.aux(note_pending_upload(left));
    return left;
}

bool Migrator::holds_regular_file(const std::string& rel_path) const {
    struct stat st;
    return lstat_beneath(source_root_, rel_path, &st) == 0 && S_ISREG(st.st_mode);
}

void Migrator::settle_note(std::uint64_t note) {
    if (options_.journal) options_.journal->recorded(note);
}

void Migrator::release_when_unused(std::string rel_path) {
    if (!options_.release || !state::is_valid_path(rel_path)) return;
    post_to_loop([this, path = std::move(rel_path)] { release_if_unused(path); });
}

void Migrator::path_removed(std::string rel_path, std::uint64_t note) {
    if (!state::is_valid_path(rel_path)) return settle_note(note); // no record can be there
    post_to_loop([this, path = std::move(rel_path), note] {
        namespace_op([this, path, note] { removed_on_loop(path, note); }, {path});
    });
}

void Migrator::path_renamed(std::string from, std::string to, bool exchange, std::uint64_t note) {
    if (!state::is_valid_path(from) || !state::is_valid_path(to) || from == to)
        return settle_note(note);
    post_to_loop([this, from = std::move(from), to = std::move(to), exchange, note] {
        namespace_op(
            [this, from, to, exchange, note] { renamed_on_loop(from, to, exchange, note); },
            {from, to});
    });
}

state::Result<void> Migrator::apply_noted(state::StateStore::Batch& batch, std::uint64_t note) {
    if (note != 0 && options_.journal) batch.aux(IntentJournal::applied_op(note));
    if (batch.size() == 0) return {};
    auto applied = state_.apply(batch);
    if (applied) settle_note(note);
    return applied;
}

void Migrator::closed_on_loop(const std::string& path, bool written, std::uint64_t note) {
    if (!written) {
        // Read to the end: worth a copy only if Riak lacks this content.
        auto rec = state_.get(path);
        struct stat st;
        UniqueFd fd(open_beneath(source_root_, path));
        if (rec && *rec && fd && ::fstat(fd.get(), &st) == 0 && record_matches(**rec, st)) {
            if (options_.release && (*rec)->phase == state::Phase::verified)
                release_if_unused(path);
            return settle_note(note);
        }
    }
    // A copy of this path in progress is stale from now on, whenever the mark below lands: it
    // must not record `verified` (that could land after the mark and hide this close).
    if (auto it = copying_.find(path); it != copying_.end()) it->second = true;
    // Recorded before anything is sent: a crash from here on resumes this copy. The path is
    // queued once the mark is durable (grouped with the other records of the moment).
    state::StateStore::Batch batch;
    batch.mark_dirty(path);
    work_posted(); // not idle before the path is queued
    commits_->submit(std::move(batch), [this, path, note](state::Result<void> marked) {
        asio::post(context_, [this, path, note, marked = std::move(marked)] {
            if (!stopping_) {
                if (marked) {
                    settle_note(note);
                    // A copy running now either ran at the close (and was made stale above) or
                    // started since, from the closed content: either way nothing more to do.
                    if (!copying_.count(path)) enqueue_on_loop(path);
                } else {
                    note_failure(path, marked.error().message);
                    retry_later(path, ++attempts_[path]);
                }
            }
            work_done();
        });
    });
}

asio::awaitable<state::Result<void>> Migrator::put_durably(std::string path,
                                                           state::FileState record) {
    state::StateStore::Batch batch;
    batch.put(path, record);
    co_return co_await commit_durably(std::move(batch));
}

asio::awaitable<bool>
Migrator::note_replaced_chunks(std::shared_ptr<std::optional<PendingUpload>> noted,
                               PendingUpload note, std::vector<std::string> keys) {
    if (!*noted) *noted = std::move(note);
    (*noted)->replaced = std::move(keys);
    state::StateStore::Batch batch;
    batch.aux(note_pending_upload(**noted));
    co_return static_cast<bool>(co_await commit_durably(std::move(batch)));
}

UploadInput::Replacing
Migrator::replacing_noted(std::shared_ptr<std::optional<PendingUpload>> noted, PendingUpload note) {
    return [this, noted = std::move(noted), note = std::move(note)](std::vector<std::string> keys) {
        return note_replaced_chunks(noted, note, std::move(keys));
    };
}

asio::awaitable<state::Result<void>> Migrator::commit_durably(state::StateStore::Batch batch) {
    auto initiate = [this](auto handler, state::StateStore::Batch b) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        commits_->submit(std::move(b), [this, shared](state::Result<void> result) {
            asio::post(context_, [shared, result = std::move(result)]() mutable {
                (*shared)(std::move(result));
            });
        });
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                            void(state::Result<void>)>(
        initiate, asio::use_awaitable, std::move(batch));
}

void Migrator::drain_file(std::string rel_path, std::function<void(CopyResult)> done) {
    if (!state::is_valid_path(rel_path) || !mapper_.map(rel_path)) {
        done(CopyResult{CopyResult::Kind::skipped, {}});
        return;
    }
    post_to_loop([this, path = std::move(rel_path), done = std::move(done)]() mutable {
        // Queued, being copied or waiting to retry: that copy answers. A copy that is verified
        // and forgotten by the queue is still copying while its release runs (mode=move), and
        // its end answers too: queued besides, this path would be answered by it and then
        // stay known for ever, its drain entry dropped as answered (next_drain).
        const bool known = known_.count(path) > 0 || copying_.count(path) > 0;
        drain_waiters_[path] = std::move(done);
        if (known) return;
        drain_queue_.push_back(path);
        known_.insert(path);
        update_queued();
        if (wakeup_) wakeup_->cancel();
    });
}

std::optional<std::string> Migrator::next_drain() {
    if (!held_namespace_ops_.empty()) return std::nullopt; // as next_copy()
    for (auto it = drain_queue_.begin(); it != drain_queue_.end();) {
        // Answered already (a copy of a close came first), or queued as a close: nothing to add.
        if (!drain_waiters_.count(*it) || queued_.count(*it) || copying_.count(*it)) {
            it = drain_queue_.erase(it);
            continue;
        }
        if (removing_.count(*it) || releasing_.count(*it) || copy_must_wait(*it)) {
            ++it;
            continue;
        }
        std::string path = std::move(*it);
        drain_queue_.erase(it);
        return path;
    }
    return std::nullopt;
}

void Migrator::finish_drain(const std::string& path, CopyResult result) {
    auto it = drain_waiters_.find(path);
    if (it == drain_waiters_.end()) return;
    auto done = std::move(it->second);
    drain_waiters_.erase(it);
    done(std::move(result));
}

void Migrator::enqueue_on_loop(const std::string& path) {
    if (auto it = copying_.find(path); it != copying_.end()) {
        it->second = true; // copy again once this copy ends
        return;
    }
    if (!queued_.insert(path).second) return;
    queue_.push_back(path);
    if (known_.insert(path).second) update_queued();
    if (wakeup_) wakeup_->cancel();
}

void Migrator::update_queued() {
    std::lock_guard lock(stats_mu_);
    stats_.queued = known_.size() + removals_known_.size();
    stats_.removals_queued = removals_known_.size();
    if (stats_.queued == 0 && closes_posted_ == 0) idle_cv_.notify_all();
}

void Migrator::forget(const std::string& path) {
    attempts_.erase(path);
    known_.erase(path);
    update_queued();
}

void Migrator::note_failure(const std::string& path, const std::string& why,
                            std::string_view what) {
    RFS_LOG_WARN("{} of {} failed (will retry): {}", what, path, why);
    std::lock_guard lock(stats_mu_);
    ++stats_.failures;
    stats_.last_error = why;
    stats_.recent_errors.push_back(fmt::format("{} of {}: {}", what, path, why));
    if (stats_.recent_errors.size() > kRecentErrors)
        stats_.recent_errors.erase(stats_.recent_errors.begin());
}

void Migrator::retry_later(const std::string& path, unsigned attempts) {
    auto delay = options_.retry_first * (1u << std::min(attempts > 0 ? attempts - 1 : 0u, 16u));
    delay = std::min<std::chrono::milliseconds>(delay, options_.retry_max);
    static thread_local std::mt19937 jitter_rng(std::random_device{}());
    // Up to a quarter more, so that many files failing together do not retry together.
    delay += std::chrono::milliseconds(
        std::uniform_int_distribution<long>(0, delay.count() / 4)(jitter_rng));
    auto timer = std::make_shared<asio::steady_timer>(context_, delay);
    timer->async_wait([this, path, timer](const boost::system::error_code& ec) {
        if (!ec && !stopping_) enqueue_on_loop(path);
    });
}

bool Migrator::copy_must_wait(const std::string& path, std::string* why) const {
    if (relocating_from_.empty() && removal_targets_.empty() && relocation_sources_.empty() &&
        open_copies_->empty())
        return false;
    auto where = mapper_.map(path);
    if (!where) return false;
    const std::string key = location_text(*where);
    // The object there is another file's only copy, which its open handles still read (a
    // released file unlinked or renamed over while open). A copy of that same file (written
    // since its data came back) goes on: its handles read the local file now.
    if (open_copies_->held(key)) {
        struct stat st;
        FileId file;
        if (stat_beneath(source_root_, path, &st) == 0) file = FileId{st.st_dev, st.st_ino};
        if (open_copies_->held_by_other(key, file)) {
            if (why)
                *why = fmt::format("the last close of the handles that read the copy at key {} "
                                   "(a released file's, replaced while open)",
                                   shown_location(key));
            return true;
        }
    }
    // A copy to a key whose object is being (or is still to be) moved away would replace it and
    // drop the chunks the moved manifest still names; one to a key whose object is to be
    // removed would be removed with it.
    if (relocating_from_.count(key) > 0) {
        if (why)
            *why =
                fmt::format("the move of the copy at key {} to its new key", shown_location(key));
        return true;
    }
    if (const std::string* remover = removal_targets_.other_holder(key, "")) {
        if (why)
            *why = fmt::format("the removal of the object at key {} (queued for {})",
                               shown_location(key), *remover);
        return true;
    }
    // A copy to a key another move is still to leave would replace that copy, the only one of
    // a released file. So does a move (or a copy of a file whose record still names its old
    // key): it waits, unless the moves wait for each other in a ring; then it goes, and parks
    // its own copy first (relocate_one; migrate_one, for a copy) so that the others can move.
    const std::string* mover = relocation_sources_.other_holder(key, path);
    if (!mover) return false;
    if (const std::string* moving_from = relocation_sources_.key_of(path);
        moving_from && move_ring(path, *moving_from, key))
        return false;
    if (why)
        *why = fmt::format("the move of {}'s copy, still at key {}, to that file's key", *mover,
                           shown_location(key));
    return true;
}

bool Migrator::move_ring(const std::string& path, const std::string& from,
                         const std::string& to) const {
    // Bounded: a chain longer than this waits, as if it did not come back (the moves at its
    // end go first).
    constexpr int kLongestRing = 64;
    std::string key = to;
    std::string mover = path;
    for (int step = 0; step < kLongestRing; ++step) {
        const std::string* next = relocation_sources_.other_holder(key, mover);
        if (!next) return false; // the chain ends at a key no move is to leave
        auto where = mapper_.map(*next);
        if (!where) return false;
        key = location_text(*where);
        if (key == from) return true;
        mover = *next;
    }
    return false;
}

std::string Migrator::put_claimed_removal(state::StateStore::Batch& batch, const std::string& path,
                                          const state::FileState& rec) {
    if (!foreign_copy(mapper_, path, rec)) return "";
    auto own = mapper_.map(path);
    if (!own) return "";
    // Another moved record's source: that file's copy, not a leftover.
    if (relocation_sources_.held(location_text(*own))) return "";
    const std::string slot = removal_slot(path, *own);
    batch.put_removal(slot, removal_record(*own, state::FileState{}));
    return slot;
}

void Migrator::relocation_source_changed(const std::string& path, const state::FileState* rec) {
    if (auto held = rec ? foreign_copy(mapper_, path, *rec) : std::nullopt)
        return relocation_sources_.hold(path, location_text(*held));
    relocation_sources_.release(path);
}

std::string Migrator::put_record_removal(state::StateStore::Batch& batch, const std::string& path,
                                         const layout::Location& where, const state::FileState& rec,
                                         const std::string& taken) {
    if (rec.version.empty() && relocation_sources_.other_holder(location_text(where), path))
        return "";
    const std::string slot = removal_slot(path, where, taken);
    batch.put_removal(slot, removal_record(where, rec));
    return slot;
}

std::string Migrator::removal_slot(const std::string& path, const layout::Location& where,
                                   const std::string& taken) {
    for (unsigned n = 0;; ++n) {
        std::string slot = n == 0 ? path : path + "/" + kExtraSlot + std::to_string(n);
        if (slot == taken) continue;
        auto pending = state_.get_removal(slot);
        // Free, or unreadable (the batch that writes it reports the store's failure).
        if (!pending || !*pending) return slot;
        const auto& r = **pending;
        if (std::tie(r.type, r.bucket, r.key) == location_tuple(where)) return slot; // same object
    }
}

void Migrator::note_removal_target(const std::string& path) {
    auto rec = state_.get_removal(path);
    if (!rec || !*rec) return; // read again by remove_one, which decides
    removal_targets_.hold(
        path, location_text(layout::Location{(*rec)->type, (*rec)->bucket, (*rec)->key}));
    removal_versions_[path] = (*rec)->version;
}

void Migrator::note_copying(const std::string& path) {
    if (auto where = mapper_.map(path)) copying_keys_.hold(path, location_text(*where));
}

bool Migrator::removal_must_wait(const std::string& path, std::string* why) const {
    // A copy of the same path, or to the key this removal deletes, ends first: the removal
    // then deletes what it wrote, or finds a newer object it leaves alone (remove_one).
    if (copying_.count(path) || removing_.count(path) || releasing_.count(path)) {
        if (why) *why = fmt::format("the copy, release or removal of {} in progress", path);
        return true;
    }
    const std::string* target = removal_targets_.key_of(path);
    if (!target) return false;
    // A released file's only copy, which its open handles still read, at this key or, moved
    // there by a rename, at another: its chunks are the version's (open_copies.hpp).
    auto versions = removal_versions_.find(path);
    const std::string version = versions == removal_versions_.end() ? "" : versions->second;
    if (open_copies_->holds(*target, version)) {
        if (why)
            *why = fmt::format("the last close of the handles that read the copy at key {}{}",
                               shown_location(*target),
                               version.empty() ? "" : ", or its version elsewhere");
        return true;
    }
    if (const std::string* copier = copying_keys_.other_holder(*target, "")) {
        if (why) *why = fmt::format("the copy of {} to key {}", *copier, shown_location(*target));
        return true;
    }
    // One removal of a key at a time, and a versioned one before one with no version
    // (removal_versions_).
    auto running = [this](const std::string& p) { return removing_.count(p) > 0; };
    auto versioned = [this](const std::string& p) {
        auto v = removal_versions_.find(p);
        return v == removal_versions_.end() || !v->second.empty();
    };
    const std::string* other = removal_targets_.other_holder_if(*target, path, running);
    if (!other && versions != removal_versions_.end() && version.empty())
        other = removal_targets_.other_holder_if(*target, path, versioned);
    if (other && why)
        *why = fmt::format("the removal of a version of key {} (queued for {})",
                           shown_location(*target), *other);
    return other != nullptr;
}

std::optional<std::string> Migrator::next_removal() {
    for (auto it = removal_queue_.begin(); it != removal_queue_.end(); ++it) {
        if (removal_must_wait(*it)) continue;
        std::string path = std::move(*it);
        removal_queue_.erase(it);
        removal_queued_.erase(path);
        return path;
    }
    return std::nullopt;
}

std::optional<std::string> Migrator::next_copy() {
    // A copy reads its path's record, which a namespace operation waiting for the releases in
    // flight is still to move or erase: none starts until those operations have run.
    if (!held_namespace_ops_.empty()) return std::nullopt;
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        // After the removal or release of this path, and of the object at its key.
        if (removing_.count(*it) || releasing_.count(*it) || copy_must_wait(*it)) continue;
        std::string path = std::move(*it);
        queue_.erase(it);
        queued_.erase(path);
        return path;
    }
    return std::nullopt;
}

asio::awaitable<void> Migrator::worker() {
    while (!stopping_) {
        if (auto removal = next_removal()) {
            std::string path = std::move(*removal);
            removing_.insert(path);
            try {
                co_await remove_one(path);
            } catch (const std::exception& e) {
                removal_retry_later(path, e.what());
            }
            removing_.erase(path);
            if (wakeup_) wakeup_->cancel(); // a copy of this path may go now
            continue;
        }
        auto next = next_copy();
        if (!next) next = next_drain(); // only when no closed file waits
        if (!next) {
            boost::system::error_code ec;
            co_await wakeup_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        std::string path = std::move(*next);
        copying_[path] = false;
        note_copying(path);
        RFS_LOG_DEBUG("copy of {} begins", path);
        CopyResult result;
        try {
            result = co_await migrate_one(path);
        } catch (const std::exception& e) {
            note_failure(path, e.what());
            retry_later(path, ++attempts_[path]);
            result = CopyResult{CopyResult::Kind::failed, e.what()};
        }
        // Verified: the worker takes the next file while the record goes to disk.
        if (result.kind == CopyResult::Kind::recording) continue;
        copy_ended(path, std::move(result));
    }
}

asio::awaitable<void> Migrator::watch_long_waits() {
    using namespace std::chrono;
    const auto threshold = duration_cast<LongWaits::Clock::duration>(options_.long_wait);
    // Looks twice per threshold: a wait is logged between one and one and a half of it.
    asio::steady_timer& timer = *long_wait_timer_;
    while (!stopping_) {
        timer.expires_after(std::max<LongWaits::Clock::duration>(threshold / 2, 10ms));
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (stopping_) break;
        long_waits_.begin(LongWaits::Clock::now());
        // A few lines a look, then a count: an outage can keep thousands waiting.
        constexpr unsigned kMostLines = 10;
        unsigned long_now = 0;
        // `waits(path, why)` is asked again, with a reason to fill, only for a wait to log.
        auto look = [&](const char* what, const std::string& path, auto waits) {
            if (!waits(path, nullptr) || !long_waits_.waiting(what + path, threshold)) return;
            if (++long_now > kMostLines) return;
            std::string why;
            waits(path, &why);
            RFS_LOG_WARN("the {}{} has waited over {:g} s for {}", what, path,
                         duration<double>(threshold).count(), why);
        };
        auto copy_waits = [this](const std::string& path, std::string* why) {
            return copy_must_wait(path, why);
        };
        // A copy waiting for a removal or release of its own path is not looked at (the worker
        // skips it before copy_must_wait): that work ends by itself, or fails loudly.
        for (const auto& path : queue_)
            look("copy of ", path, copy_waits);
        for (const auto& path : drain_queue_)
            if (drain_waiters_.count(path)) look("copy of ", path, copy_waits);
        for (const auto& path : removal_queue_)
            look("removal of the object of ", path, [this](const std::string& p, std::string* why) {
                return removal_must_wait(p, why);
            });
        if (long_now > kMostLines)
            RFS_LOG_WARN("and {} more copies or removals have waited over {:g} s",
                         long_now - kMostLines, duration<double>(threshold).count());
        const auto ended = long_waits_.end();
        for (std::size_t i = 0; i < ended.size() && i < kMostLines; ++i)
            RFS_LOG_INFO("the {} waits no longer (after {:.0f} s)", ended[i].first,
                         duration<double>(ended[i].second).count());
        if (ended.size() > kMostLines)
            RFS_LOG_INFO("and {} more copies or removals wait no longer",
                         ended.size() - kMostLines);
        const std::size_t long_ones = long_waits_.long_ones();
        std::lock_guard lock(stats_mu_);
        stats_.long_waits = long_ones;
    }
}

void Migrator::copy_ended(const std::string& path, CopyResult result) {
    static constexpr std::array<const char*, 6> kKinds = {"copied", "current", "skipped",
                                                          "failed", "again",   "recording"};
    RFS_LOG_DEBUG("copy of {} ended: {}", path, kKinds.at(static_cast<std::size_t>(result.kind)));
    bool again = copying_[path];
    copying_.erase(path);
    copying_keys_.release(path);
    if (relocation_sources_.key_of(path)) { // moved (or copied afresh, or gone) now?
        auto rec = state_.get(path);
        if (rec) relocation_source_changed(path, rec->has_value() ? &**rec : nullptr);
    }
    run_held(); // an operation on this path may have waited for this copy
    if (again)
        enqueue_on_loop(path); // a drain waiting for it waits for that copy
    else
        finish_drain(path, std::move(result));
    if (release_after_copy_.erase(path) && !again) release_if_unused(path);
    if (!removal_queue_.empty() && wakeup_) wakeup_->cancel(); // one may wait for this copy
}

CopyResult Migrator::copy_failed(const std::string& path, const std::string& why) {
    unsigned attempts = ++attempts_[path];
    if (auto rec = state_.get(path); rec && *rec) {
        state::FileState failed = **rec;
        failed.phase = state::Phase::dirty;
        failed.attempts = attempts;
        failed.last_error = why;
        (void)state_.put(path, failed);
    }
    note_failure(path, why);
    retry_later(path, attempts);
    return CopyResult{CopyResult::Kind::failed, why};
}

void Migrator::verified_recorded(const std::string& path, std::uint64_t bytes_sent,
                                 state::Result<void> written) {
    CopyResult result{CopyResult::Kind::copied, {}};
    if (!written) {
        result = copy_failed(path, written.error().message);
    } else {
        {
            std::lock_guard lock(stats_mu_);
            ++stats_.files_copied;
            stats_.bytes_copied += bytes_sent;
        }
        forget(path);
        if (options_.release) {
            // The copy ends (and a drain waiting for it hears) once the release has.
            release_if_unused(
                path, [this, path, result]() mutable { copy_ended(path, std::move(result)); },
                true);
            return;
        }
    }
    copy_ended(path, std::move(result));
}

// The loop hears of a rename or unlink only after it is done in SOURCE, so a copy may find its
// path gone before the namespace operation that removed it is handled. That operation decides
// from the path's record, which must not go now: a copy of this path may already have written
// the object at its key (one that ended stale, when the rename changed the file's ctime, leaves
// it there for the next copy to replace). Handled first, the operation finds the record; handled
// after, it would find none and leave the object behind. So a record of a copy never verified is
// turned into the removal of what it may have written, and the operation, finding no record,
// leaves Riak to it (a file renamed is then copied afresh under its new name). A record with a
// version (a verified copy, released or not) stays as it is for the operation: the file may be a
// placeholder whose marker names that object, the only copy, which nothing here may delete.
CopyResult Migrator::gone_before_copy(const std::string& path) {
    auto rec = state_.get(path);
    RFS_LOG_DEBUG("{} is gone before its copy (record: {})", path,
                  rec && *rec ? std::string(state::phase_name((*rec)->phase)) +
                                    ((*rec)->version.empty() ? "" : ", with a version")
                              : "none");
    if (rec && *rec && !(*rec)->version.empty()) {
        // A verified copy, perhaps moved here by a rename whose copy has not followed yet: the
        // file may be a released placeholder elsewhere now, whose marker names that object, the
        // only copy. The operation that moved or removed the file decides, from the record and
        // the marker (renamed_on_loop); the record stays for it.
        {
            std::lock_guard lock(stats_mu_);
            ++stats_.skipped;
        }
        forget(path);
        return CopyResult{CopyResult::Kind::skipped, {}};
    }
    if (rec && *rec && !is_released(**rec)) {
        state::StateStore::Batch batch;
        const auto where = location_of(mapper_, path, **rec);
        if (const std::string slot = where ? put_record_removal(batch, path, *where, **rec) : "";
            !slot.empty()) {
            batch.erase(path);
            if (auto applied = state_.apply(batch); !applied)
                return copy_failed(path, applied.error().message);
            enqueue_removal(slot);
            {
                std::lock_guard lock(stats_mu_);
                ++stats_.skipped;
            }
            forget(path);
            return CopyResult{CopyResult::Kind::skipped, {}};
        }
    }
    if (auto erased = state_.erase(path); !erased)
        RFS_LOG_WARN("cannot forget the copy of {}: {}", path, erased.error().message);
    {
        std::lock_guard lock(stats_mu_);
        ++stats_.skipped;
    }
    forget(path);
    return CopyResult{CopyResult::Kind::skipped, {}};
}

asio::awaitable<CopyResult> Migrator::migrate_one(std::string path) {
    auto skip = [&] {
        if (auto erased = state_.erase(path); !erased)
            RFS_LOG_WARN("cannot forget the copy of {}: {}", path, erased.error().message);
        {
            std::lock_guard lock(stats_mu_);
            ++stats_.skipped;
        }
        forget(path);
        return CopyResult{CopyResult::Kind::skipped, {}};
    };
    auto fail = [&](const std::string& why) { return copy_failed(path, why); };

    auto location = mapper_.map(path);
    if (!location) co_return skip();
    UniqueFd fd(open_beneath(source_root_, path));
    if (!fd) {
        // Gone (or renamed) since it was queued: the namespace operation that removed it
        // decides what Riak keeps, from this path's record.
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV)
            co_return gone_before_copy(path);
        co_return fail(fmt::format("cannot open: {}", std::strerror(errno)));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) co_return fail(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) co_return skip();

    auto rec = state_.get(path);
    if (!rec) co_return fail(rec.error().message);
    state::FileState record = rec->value_or(state::FileState{});
    if (record_matches(record, st)) {
        {
            std::lock_guard lock(stats_mu_); // not across forget(), which takes it too
            ++stats_.skipped;
        }
        forget(path);
        co_return CopyResult{CopyResult::Kind::current, {}};
    }
    // A released placeholder is never uploaded (its bytes are not the file's content), whatever
    // the state store says or has lost: the marker says where the content is. The marker goes on
    // a file only while it holds exactly the verified copy, and comes off only once fetched data
    // is whole again: with it, the content is the copy in Riak, even if a crash stopped the
    // release before any byte was dropped.
    auto marker = state::read_marker(fd.get());
    if (!marker) co_return fail(marker.error().message);
    std::optional<state::FileState> moved_from;
    if (*marker) {
        const state::Marker& m = **marker;
        if (m.size != static_cast<std::uint64_t>(st.st_size) || m.mtime_ns != ns_of(st.st_mtim)) {
            // A fetch back moves the mtime while it writes the copy's bytes back: decided again
            // after it (its turn). One cut short (a crash, Riak failing) left its note: those
            // writes moved the mtime, which goes back to the marker's.
            auto turn = co_await file_turns_.take(FileId{st.st_dev, st.st_ino});
            auto now = state::read_marker(fd.get());
            if (!now) co_return fail(now.error().message);
            struct stat again;
            if (::fstat(fd.get(), &again) != 0) co_return fail(std::strerror(errno));
            if (!*now || **now != m || ns_of(again.st_mtim) != ns_of(st.st_mtim) ||
                again.st_size != st.st_size) {
                copying_[path] = true;
                co_return CopyResult{CopyResult::Kind::again, {}};
            }
            auto fetching = state::is_fetching(fd.get());
            if (!fetching) co_return fail(fetching.error().message);
            if (*fetching && m.size == static_cast<std::uint64_t>(st.st_size)) {
                const timespec times[2] = {{0, UTIME_OMIT}, timespec_of(m.mtime_ns)};
                if (::futimens(fd.get(), times) != 0)
                    co_return fail(fmt::format("setting mtime: {}", std::strerror(errno)));
                if (auto cleared = state::clear_fetching(fd.get()); !cleared)
                    co_return fail(cleared.error().message);
                RFS_LOG_INFO("{}: a fetch back from Riak was cut short; its mtime is back", path);
                copying_[path] = true;
                co_return CopyResult{CopyResult::Kind::again, {}};
            }
            RFS_LOG_ERROR("{} is a released placeholder changed beside the mount (size {}, mtime "
                          "{} ns; its marker says {}, {} ns); its content stays in Riak at {}, "
                          "nothing is copied",
                          path, st.st_size, ns_of(st.st_mtim), m.size, m.mtime_ns, m.key);
            co_return skip();
        }
        // The copy the marker names; what the record knew besides (Riak's vclock, the inode,
        // the attempts) stays. A record naming the same version at another key: a relocation
        // that updated the marker and was killed before recording the move, whose old object
        // is still to go (moved_from).
        if (!record.version.empty() && record.version == m.version && !record.key.empty() &&
            std::tie(record.type, record.bucket, record.key) != std::tie(m.type, m.bucket, m.key))
            moved_from = record;
        state::FileState released = state::released_record(m);
        released.vclock = std::move(record.vclock);
        released.ctime_ns = record.ctime_ns;
        released.dev = record.dev;
        released.ino = record.ino;
        released.attempts = record.attempts;
        released.last_error = std::move(record.last_error);
        record = std::move(released);
    }
    const layout::Location held{record.type, record.bucket, record.key};
    const bool same_content = record.size == static_cast<std::uint64_t>(st.st_size) &&
                              record.mtime_ns == ns_of(st.st_mtim) &&
                              (*marker || record.ino == st.st_ino);
    if (!record.version.empty() && !record.key.empty() && same_content) {
        const bool at_own_key = location_tuple(held) == location_tuple(*location);
        // Released, at its key, with only the record missing; or moved by a relocation that
        // updated the marker and was killed before recording the move (to this path's key, or
        // parked on the way there): recorded now, with the removal of the old object, before
        // anything else. (Left to another move's replacing write, that object's chunks, which
        // the moved manifest shares, would go as a replaced version's.)
        if ((*marker && at_own_key) || moved_from) {
            record.phase = at_own_key ? state::Phase::released : state::Phase::dirty;
            record.ctime_ns = ns_of(st.st_ctim);
            record.dev = st.st_dev;
            record.ino = st.st_ino;
            state::StateStore::Batch batch;
            batch.put(path, record);
            std::string slot;
            if (moved_from) {
                const layout::Location old{moved_from->type, moved_from->bucket, moved_from->key};
                // The moved manifest names the same chunks unless it crossed buckets.
                slot = put_moved_removal(batch, path, old, *moved_from,
                                         std::tie(old.type, old.bucket) ==
                                             std::tie(record.type, record.bucket));
            }
            if (auto put = state_.apply(batch); !put) co_return fail(put.error().message);
            if (!slot.empty()) enqueue_removal(slot);
            if (!at_own_key) { // parked: on to this path's key, once the old one is gone
                copying_[path] = true;
                co_return CopyResult{CopyResult::Kind::again, {}};
            }
            forget(path);
            co_return CopyResult{CopyResult::Kind::current, {}};
        }
        if (!at_own_key)
            co_return co_await relocate_one(path, fd.get(), record, *location, *marker);
    }
    if (*marker) {
        RFS_LOG_ERROR("{} is a released placeholder whose copy cannot follow it: its content stays "
                      "in Riak at {}",
                      path, record.key);
        co_return skip();
    }
    // Not waited for: a crash that loses it leaves the durable `dirty`, which resumes the same
    // way. Through the group commit, not a write here, because LevelDB queues every write behind
    // the fsync in progress, and the loop must not wait for the disk. It lands before `verified`
    // (the commits keep their order); a failure to write it shows again at that record.
    // A verified copy recorded at another key: the file was renamed, and changed before its
    // copy could follow it there (or mapped elsewhere since). This upload supersedes it, so it
    // goes, with the same record (a crash resumes both); only that version, in case a file
    // created at the old name since has put its own there (remove_one). Were a removal of this
    // path pending already, it is deleted after the upload instead. (Without a version, after
    // an exchange, the rename decided what the old key keeps: the other name's copy claims it.)
    std::optional<state::FileState> superseded;
    bool superseded_queued = false;
    if (!record.version.empty() && !record.key.empty() &&
        location_tuple(held) != location_tuple(*location)) {
        superseded = removal_record(held, record);
        forget_copy(record);
        if (relocation_sources_.other_holder(location_text(*location), path)) {
            // A ring of moves through this path's key (copy_must_wait), where this file, changed
            // since its rename, has no copy to move: the old one goes now (as it would after
            // the upload), so that the move waiting for that key can run; the upload waits
            // until its own key is left.
            record.phase = state::Phase::dirty;
            state::StateStore::Batch batch;
            batch.put(path, record);
            const std::string slot = removal_slot(path, held);
            batch.put_removal(slot, *superseded);
            if (auto put = state_.apply(batch); !put) co_return fail(put.error().message);
            enqueue_removal(slot);
            copying_[path] = true;
            co_return CopyResult{CopyResult::Kind::again, {}};
        }
    }
    record.phase = state::Phase::uploading;
    const std::string version = layout::make_version();
    // Chunks to be written: noted, durably, before the first one (pending_uploads.hpp); and
    // (replacing, below) those of a version the upload replaces, before the key is written.
    auto noted = std::make_shared<std::optional<PendingUpload>>();
    std::optional<PendingUpload>& chunked = *noted;
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (layout::needs_manifest(size, options_.chunk_size))
        chunked = PendingUpload{version,
                                path,
                                location->type,
                                location->bucket,
                                location->key,
                                (size + options_.chunk_size - 1) / options_.chunk_size,
                                {}};
    // Written and waited for, or not at all: a record left in the state writer's queue could
    // land after a direct write made since (a rename or unlink of the path, handled once this
    // copy ended "again" or failed, or the dirty mark of such an end), and leave an `uploading`
    // record at a path that has no file, which nothing would ever copy or drop. A small file's
    // plain copy writes none: `dirty` resumes exactly as `uploading` would.
    if (chunked || superseded) {
        state::StateStore::Batch batch;
        batch.put(path, record);
        if (superseded) {
            auto pending = state_.get_removal(path);
            superseded_queued = pending && !*pending;
            if (superseded_queued) batch.put_removal(path, *superseded);
        }
        if (chunked) batch.aux(note_pending_upload(*chunked));
        if (auto noted = co_await commit_durably(std::move(batch)); !noted)
            co_return fail(noted.error().message);
        if (superseded_queued) enqueue_removal(path);
    }
    // An upload that ends with no record naming its version: its chunks go now (and, should
    // that fail, at the next start).
    auto abandon_chunks = [this, &chunked] {
        if (chunked) sweep_later(*chunked);
    };

    UploadInput input;
    input.rel_path = path;
    input.location = *location;
    input.fd = fd.get();
    input.snapshot = st;
    input.chunk_size = options_.chunk_size;
    input.version = version;
    input.replacing = replacing_noted(
        noted, {version, path, location->type, location->bucket, location->key, 0, {}});
    input.chunk_held = chunk_held();
    // Never copied (or its record lost): most likely a new key, written create-only.
    input.expect_new = record.version.empty() && record.key.empty();
    auto call = upload_and_verify(*store_, std::move(input));
    auto copied = co_await std::move(call);
    if (!copied) {
        abandon_chunks();
        co_return fail(copied.error().describe());
    }
    if (superseded && !superseded_queued) {
        // Best effort, once: while Riak fails, what cannot be deleted stays (README, "Layout").
        auto remove_call =
            remove_file_object(*store_, {superseded->type, superseded->bucket, superseded->key},
                               superseded->version, false);
        (void)co_await std::move(remove_call);
    }
    if (copied->changed || copying_[path]) {
        // Written during the copy: this copy is stale before it is recorded. Its object stays
        // at the key until the next copy replaces it, and what the record named there is gone:
        // the record names the stale version, so that a rename or unlink handled before that
        // next copy removes exactly it (naming the replaced one, it found "a newer object" there
        // and left it behind).
        if (copied->written) {
            state::FileState stale = record;
            stale.phase = state::Phase::dirty;
            stale.version = copied->version;
            stale.sha256.clear(); // not the file's content
            stale.vclock = copied->vclock;
            stale.type = location->type;
            stale.bucket = location->bucket;
            stale.key = location->key;
            stale.attempts = 0;
            stale.last_error.clear();
            state::StateStore::Batch batch;
            batch.put(path, stale);
            if (chunked) batch.aux(drop_pending_upload(version));
            auto left = note_chunks_left(batch, path, *location, std::move(copied->chunks_left));
            if (state_.apply(batch) && left) sweep_later(std::move(*left));
        } else {
            (void)state_.mark_dirty(path);
            abandon_chunks();
        }
        copying_[path] = true;
        co_return CopyResult{CopyResult::Kind::again, {}};
    }
    state::FileState done;
    done.phase = state::Phase::verified;
    done.version = copied->version;
    done.sha256 = copied->sha256;
    done.vclock = copied->vclock;
    done.type = location->type;
    done.bucket = location->bucket;
    done.key = location->key;
    done.size = static_cast<std::uint64_t>(st.st_size);
    done.mtime_ns = ns_of(st.st_mtim);
    done.ctime_ns = ns_of(st.st_ctim);
    done.dev = st.st_dev;
    done.ino = st.st_ino;
    // Durable before the copy counts, and before a release may drop the local data; the path
    // stays known and copying until then (verified_recorded). Submitted here, before the loop
    // runs anything else, so that a close handled after this copy ended commits its dirty mark
    // after this record. The worker does not wait for the disk: it takes the next file, so
    // that the uploads in flight stay at parallel_uploads while records are being written.
    state::StateStore::Batch batch;
    batch.put(path, done);
    if (chunked) batch.aux(drop_pending_upload(version));
    auto left = note_chunks_left(batch, path, *location, std::move(copied->chunks_left));
    commits_->submit(
        std::move(batch), [this, path, bytes = copied->bytes_sent,
                           left = std::move(left)](state::Result<void> written) mutable {
            asio::post(context_, [this, path = std::move(path), bytes, left = std::move(left),
                                  written = std::move(written)]() mutable {
                if (written && left) sweep_later(std::move(*left));
                verified_recorded(path, bytes, std::move(written));
            });
        });
    co_return CopyResult{CopyResult::Kind::recording, {}};
}

// ---- renames: moving a verified copy inside Riak ----------------------------------------------

std::string Migrator::put_moved_removal(state::StateStore::Batch& batch, const std::string& path,
                                        const layout::Location& from,
                                        const state::FileState& record, bool chunks_shared) {
    // Keyed by the new path, or, when that has a removal of another object pending, by a slot
    // of its own beside it (removal_slot).
    const std::string slot = removal_slot(path, from);
    state::FileState removal = removal_record(from, record);
    if (chunks_shared) removal.phase = kKeepChunks;
    batch.put_removal(slot, removal);
    return slot;
}

asio::awaitable<CopyResult> Migrator::relocate_one(std::string path, int fd,
                                                   state::FileState record, layout::Location to,
                                                   std::optional<state::Marker> marker) {
    const layout::Location from{record.type, record.bucket, record.key};
    auto fail = [&](const std::string& why) {
        note_failure(path, why, "moving the copy");
        retry_later(path, ++attempts_[path]);
        return CopyResult{CopyResult::Kind::failed, why};
    };
    // A released file's placeholder: not while its data is being fetched back (file_turns.hpp),
    // and only if the marker still names the copy this relocation was decided on.
    std::shared_ptr<void> turn;
    if (marker) {
        struct stat st;
        if (::fstat(fd, &st) != 0) co_return fail(std::strerror(errno));
        turn = co_await file_turns_.take(FileId{st.st_dev, st.st_ino});
        auto now = state::read_marker(fd);
        if (!now) co_return fail(now.error().message);
        if (!*now || **now != *marker) {
            copying_[path] = true; // fetched back (or moved) meanwhile: decided again
            co_return CopyResult{CopyResult::Kind::again, {}};
        }
    }
    // A ring of moves (move_ring): `to` still holds the copy another move is to take away, and
    // that move waits, through the others, for this one. This copy goes to a key of its own in
    // its bucket first (the chunks stay where they are), then on to `to` once that is left.
    const bool parking = relocation_sources_.other_holder(location_text(to), path) != nullptr;
    if (parking) {
        const std::string parked = layout::parked_key(record.version);
        if (from.key == parked) { // parked already: its turn comes once `to` is left
            copying_[path] = true;
            co_return CopyResult{CopyResult::Kind::again, {}};
        }
        RFS_LOG_DEBUG("{}: its copy waits at {} for {} to be left", path, parked, to.key);
        to = layout::Location{from.type, from.bucket, parked};
    }
    // No upload to the old key may replace (and drop the chunks of) the object being copied.
    const std::string from_text = location_text(from);
    relocating_from_.insert(from_text);
    // The chunks of a manifest the new key holds are garbage once the copy is there: noted
    // first (pending_uploads.hpp), under a key of their own (the copy's version stays the
    // record's: nothing of it may be swept), and swept once the move is recorded.
    auto noted = std::make_shared<std::optional<PendingUpload>>();
    const PendingUpload note{"relocation:" + record.version + ":" + layout::make_version(),
                             path,
                             to.type,
                             to.bucket,
                             to.key,
                             0,
                             {}};
    auto call =
        relocate_copy(*store_, record, to, path, replacing_noted(noted, note), chunk_held());
    auto moved = co_await std::move(call);
    relocating_from_.erase(from_text);
    if (wakeup_) wakeup_->cancel();
    if (!moved) {
        // The chunks noted are garbage whether or not the copy landed (the object they belong to
        // is the replaced file's): they go now.
        if (*noted) sweep_later(**noted);
        // The old key lost the copy (or holds another one): the local file still holds the
        // content, so it is sent again instead (a dirty record without a version is a plain
        // copy). Riak failing is waited out like any failed copy, so that the old object is
        // deleted once it is moved; a released file can only wait for Riak.
        int err = moved.error().to_errno();
        if (!marker && (err == ENOENT || err == ESTALE || err == EBADMSG)) {
            RFS_LOG_DEBUG("{}: cannot move its copy ({}); sending the file again", path,
                          moved.error().describe());
            record.version.clear();
            (void)state_.put(path, record);
            copying_[path] = true; // the worker queues it again when this attempt ends
            co_return CopyResult{CopyResult::Kind::again, {}};
        }
        co_return fail(moved.error().describe());
    }
    if (marker) {
        state::Marker now = *marker;
        now.type = to.type;
        now.bucket = to.bucket;
        now.key = to.key;
        if (auto written = state::write_marker(fd, now); !written)
            co_return fail(written.error().message);
        if (::fsync(fd) != 0) co_return fail(fmt::format("fsync: {}", std::strerror(errno)));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) co_return fail(std::strerror(errno));
    state::FileState done = record;
    // Parked: still to move on (dirty: a restart resumes it), marker or not.
    done.phase = parking  ? state::Phase::dirty
                 : marker ? state::Phase::released
                          : state::Phase::verified;
    done.type = to.type;
    done.bucket = to.bucket;
    done.key = to.key;
    if (!moved->vclock.empty()) done.vclock = moved->vclock;
    done.ctime_ns = ns_of(st.st_ctim);
    done.dev = st.st_dev;
    done.ino = st.st_ino;
    done.attempts = 0;
    done.last_error.clear();
    // The old object goes through the removal queue (durable, retried), with the record.
    state::StateStore::Batch batch;
    batch.put(path, done);
    const std::string slot = put_moved_removal(batch, path, from, record, moved->chunks_shared);
    if (auto applied = state_.apply(batch); !applied) co_return fail(applied.error().message);
    // The replaced chunks relocate_copy deleted, again (those it could not delete, and the note).
    if (*noted) sweep_later(**noted);
    {
        std::lock_guard lock(stats_mu_);
        ++stats_.files_relocated;
    }
    // Forgotten only once the old object's removal is queued: wait_idle() must not see a moment
    // with neither. (Only the version moved, not its chunks, unless across buckets: a file
    // created at the old name since may have its own object there, which the removal leaves.)
    enqueue_removal(slot);
    if (parking) {
        copying_[path] = true; // on to its own key, once that is left
        co_return CopyResult{CopyResult::Kind::again, {}};
    }
    forget(path);
    if (options_.release && !marker) release_if_unused(path, {}, true);
    co_return CopyResult{CopyResult::Kind::current, {}};
}

// ---- mode=move: releasing local data ----------------------------------------------------------

namespace {

// Ends a release the gate let begin.
struct EndRelease {
    ReleaseGate& gate;
    FileId id;
    ~EndRelease() { gate.end_release(id); }
};

// From before a release punches a file until its times are put back: the punch sets mtime to
// now, and a stat the mount answered in between would show that instead of the user's mtime
// (and the kernel could cache it). MigratorOptions::source_changing holds `mtime` for the mount;
// source_changed ends that (on every way out) and drops what the kernel cached meanwhile (blocks,
// ctime).
class HeldTimes {
public:
    HeldTimes(const MigratorOptions& options, const struct stat& st, const timespec& mtime)
        : options_(options), dev_(st.st_dev), ino_(st.st_ino) {
        if (options_.source_changing) options_.source_changing(dev_, ino_, mtime);
    }
    ~HeldTimes() { end(); }
    HeldTimes(const HeldTimes&) = delete;
    HeldTimes& operator=(const HeldTimes&) = delete;
    void end() {
        if (std::exchange(ended_, true)) return;
        if (options_.source_changed) options_.source_changed(dev_, ino_);
    }

private:
    const MigratorOptions& options_;
    const dev_t dev_;
    const ino_t ino_;
    bool ended_ = false;
};

} // namespace

void Migrator::release_if_unused(const std::string& path, std::function<void()> after,
                                 bool by_copy) {
    auto not_now = [&] {
        if (after) after();
    };
    if (releasing_.count(path)) return not_now(); // that release decides
    if (!by_copy && copying_.count(path)) {
        release_after_copy_.insert(path); // the copy's end asks again
        return not_now();
    }
    if (!held_namespace_ops_.empty()) {
        if (by_copy) {
            // The copy ends now, the release waits: a held operation may wait for this copy.
            held_releases_.push_back({path, {}, false});
            return not_now();
        }
        held_releases_.push_back({path, std::move(after), by_copy});
        return;
    }
    auto rec = state_.get(path);
    if (!rec || !*rec || (*rec)->phase != state::Phase::verified) return not_now();
    UniqueFd fd(open_beneath(source_root_, path, O_RDWR));
    struct stat st;
    // A file with several names stays whole: each name's copy is its own key, and a placeholder
    // shared by two names would name only one of them (LocalFs::link brings data back first).
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
        st.st_nlink > 1)
        return not_now();
    if (!record_matches(**rec, st)) return not_now(); // changed: its new copy comes first
    if (options_.pins && options_.pins->covers(path)) return not_now(); // recalled: stays local
    releasing_.insert(path);
    work_posted(); // not idle before the release has ended
    auto release = release_one(path, **rec, std::move(fd), st);
    asio::co_spawn(context_, std::move(release),
                   [this, path, after = std::move(after)](std::exception_ptr e) {
                       if (e) RFS_LOG_ERROR("releasing {} failed unexpectedly", path);
                       release_ended(path);
                       if (after) after();
                       work_done();
                   });
}

asio::awaitable<void> Migrator::release_one(std::string path, state::FileState record, UniqueFd fd,
                                            struct stat st) {
    const FileId id{st.st_dev, st.st_ino};
    // From here until its records are written, nothing can pin the file (an open for writing,
    // a fetch waits): the records describe the file as it is.
    if (!options_.release->begin_release(id)) co_return; // in use: tried again at its close
    EndRelease end{*options_.release, id};
    // A recall may have pinned it since the check above; its walk then waits for this release
    // in the gate (fetch), or finds the marker on its second look.
    if (options_.pins && options_.pins->covers(path)) co_return;
    // Nothing can change it now without a pin; check once more what may have changed before.
    if (::fstat(fd.get(), &st) != 0 || !record_matches(record, st)) co_return;
    const state::Marker marker = state::marker_of(record);
    record.phase = state::Phase::releasing;
    if (auto written = co_await put_durably(path, record); !written) {
        RFS_LOG_WARN("cannot release {}: {}", path, written.error().message);
        co_return;
    }
    // The local calls (two fsyncs, the punch, the times put back) on a release thread.
    auto punch = [this, fd = fd.get(), marker]() -> state::Result<state::ReleaseReport> {
        struct stat now;
        if (::fstat(fd, &now) != 0)
            return state::make_error(errno, "fstat before release: {}", std::strerror(errno));
        HeldTimes held(options_, now, now.st_mtim);
        auto released = state::release_data(fd, marker);
        held.end(); // the times are back (or, on an error, may never be): the kernel asks again
        return released;
    };
    auto initiate = [this](auto handler, decltype(punch) work) {
        asio::post(
            release_io_, [this, work = std::move(work), handler = std::move(handler)]() mutable {
                auto result = work();
                asio::post(context_,
                           [handler = std::move(handler), result = std::move(result)]() mutable {
                               handler(std::move(result));
                           });
            });
    };
    auto released = co_await asio::async_initiate<decltype(asio::use_awaitable),
                                                  void(state::Result<state::ReleaseReport>)>(
        initiate, asio::use_awaitable, std::move(punch));
    if (!released) {
        // ESTALE: changed since the copy (nothing was touched). Otherwise the marker may be on
        // the file: the next start finishes or forgets this release (resume_releases).
        RFS_LOG_WARN("cannot release {}: {}", path, released.error().message);
        if (released.error().code == ESTALE) {
            record.phase = state::Phase::verified;
            (void)co_await put_durably(path, record);
        }
        co_return;
    }
    struct stat after;
    if (::fstat(fd.get(), &after) == 0) record.ctime_ns = ns_of(after.st_ctim);
    record.phase = state::Phase::released;
    if (auto written = co_await put_durably(path, record); !written)
        RFS_LOG_WARN("cannot record {} as released: {}", path, written.error().message);
    std::lock_guard lock(stats_mu_);
    ++stats_.files_released;
    stats_.bytes_freed += released->bytes_freed;
}

void Migrator::release_ended(const std::string& path) {
    releasing_.erase(path);
    if (wakeup_) wakeup_->cancel(); // a copy or removal of this path may go now
    run_held();
}

bool Migrator::copying_under(const std::vector<std::string>& paths) const {
    for (const auto& [copied, stale] : copying_) {
        for (const auto& p : paths) {
            if (copied.size() >= p.size() && copied.compare(0, p.size(), p) == 0 &&
                (copied.size() == p.size() || copied[p.size()] == '/'))
                return true;
        }
    }
    return false;
}

void Migrator::run_held() {
    if (!releasing_.empty() || held_namespace_ops_.empty()) return;
    // The operations held, in order, each once no copy of its paths is in flight (none starts
    // while any is held); then the releases asked for meanwhile (each may be held again behind
    // an operation a retry queues).
    std::vector<HeldOp> ops;
    while (!held_namespace_ops_.empty() && !copying_under(held_namespace_ops_.front().paths)) {
        ops.push_back(std::move(held_namespace_ops_.front()));
        held_namespace_ops_.pop_front();
    }
    for (auto& op : ops)
        op.run();
    if (held_namespace_ops_.empty()) {
        auto releases = std::exchange(held_releases_, {});
        for (auto& r : releases)
            release_if_unused(r.path, std::move(r.after), r.by_copy);
        if (wakeup_) wakeup_->cancel(); // copies may start again
    }
    // Counted down only now: what the operations and releases started counts already, so that
    // wait_idle() never sees a moment in between with nothing counted.
    work_done(ops.size());
}

void Migrator::namespace_op(std::function<void()> op, std::vector<std::string> paths) {
    if (releasing_.empty() && held_namespace_ops_.empty() && !copying_under(paths)) return op();
    work_posted(); // not idle before it has run
    held_namespace_ops_.push_back({std::move(op), std::move(paths)});
}

void Migrator::resume_releases() {
    std::vector<state::PathState> releasing, verified;
    auto scanned = state_.for_each_in_phase(state::Phase::releasing,
                                            [&](std::string_view p, const state::FileState& r) {
                                                releasing.push_back({std::string(p), r});
                                                return true;
                                            });
    if (scanned)
        scanned = state_.for_each_in_phase(state::Phase::verified,
                                           [&](std::string_view p, const state::FileState& r) {
                                               verified.push_back({std::string(p), r});
                                               return true;
                                           });
    if (!scanned) {
        RFS_LOG_ERROR("cannot read the releases to resume: {}", scanned.error().message);
        return;
    }
    for (auto& [path, rec] : releasing) {
        UniqueFd fd(open_beneath(source_root_, path, O_RDWR));
        if (!fd) continue; // gone: its namespace operation decides what Riak keeps
        auto marker = state::read_marker(fd.get());
        if (!marker) {
            RFS_LOG_WARN("cannot finish releasing {}: {}", path, marker.error().message);
            continue;
        }
        state::FileState record = rec;
        const state::Marker expected = state::marker_of(rec);
        if (*marker && **marker == expected) {
            // The mount is serving already: the punch is kept apart from everything that needs
            // the data as any release is (a write to the file is fetching its data back: it
            // finishes the release its own way, recording the file verified), and its moment
            // of a moved mtime is hidden.
            struct stat st;
            if (::fstat(fd.get(), &st) != 0) {
                RFS_LOG_WARN("cannot finish releasing {}: {}", path, std::strerror(errno));
                continue;
            }
            const FileId id{st.st_dev, st.st_ino};
            if (!options_.release->begin_release(id)) continue;
            EndRelease end{*options_.release, id};
            HeldTimes held(options_, st, timespec_of(expected.mtime_ns));
            auto finished = state::finish_release(fd.get(), expected);
            held.end();
            if (!finished) {
                RFS_LOG_WARN("cannot finish releasing {}: {}", path, finished.error().message);
                continue;
            }
            if (::fstat(fd.get(), &st) == 0) record.ctime_ns = ns_of(st.st_ctim);
            record.phase = state::Phase::released;
        } else {
            record.phase = state::Phase::verified; // the marker never reached the file
        }
        if (auto put = state_.put(path, record); !put)
            RFS_LOG_WARN("cannot record the release of {}: {}", path, put.error().message);
        else if (record.phase == state::Phase::verified)
            verified.push_back({path, record});
    }
    if (!releasing.empty())
        RFS_LOG_INFO("resumed {} release(s) a stop interrupted", releasing.size());
    for (const auto& v : verified)
        release_if_unused(v.path);
}

// ---- namespace operations ---------------------------------------------------------------------

void Migrator::removed_on_loop(const std::string& path, std::uint64_t note) {
    // Every record at and under the path (an rmdir'ed directory is empty: what is recorded
    // under it is stale). Paths never recorded never reached Riak: nothing to delete.
    std::vector<state::PathState> records;
    auto scanned = state_.for_each(path, [&](std::string_view p, const state::FileState& rec) {
        records.push_back({std::string(p), rec});
        return true;
    });
    if (!scanned)
        return namespace_retry([this, path, note] { removed_on_loop(path, note); }, {path},
                               scanned.error().message);
    state::StateStore::Batch batch;
    std::vector<std::string> removals;
    for (const auto& [p, rec] : records) {
        batch.erase(p);
        const std::string claimed = put_claimed_removal(batch, p, rec);
        if (!claimed.empty()) removals.push_back(claimed);
        if (auto where = location_of(mapper_, p, rec))
            if (const std::string slot = put_record_removal(batch, p, *where, rec, claimed);
                !slot.empty())
                removals.push_back(slot);
    }
    if (auto applied = apply_noted(batch, note); !applied)
        return namespace_retry([this, path, note] { removed_on_loop(path, note); }, {path},
                               applied.error().message);
    namespace_attempts_ = 0;
    // The removals queued hold what the records named (removal_targets_).
    for (const auto& r : records)
        relocation_sources_.release(r.path);
    for (const auto& p : removals)
        enqueue_removal(p);
}

void Migrator::renamed_on_loop(const std::string& from, const std::string& to, bool exchange,
                               std::uint64_t note) {
    auto retry = [&](const std::string& why) {
        namespace_retry(
            [this, from, to, exchange, note] { renamed_on_loop(from, to, exchange, note); },
            {from, to}, why);
    };
    // The records at and under both names, as they were before the rename.
    std::vector<state::PathState> old_from, old_to;
    for (auto [dir, out] : {std::pair{&from, &old_from}, std::pair{&to, &old_to}}) {
        // (An init-capture: clang 14 cannot capture a structured binding.)
        auto scanned =
            state_.for_each(*dir, [out = out](std::string_view p, const state::FileState& r) {
                out->push_back({std::string(p), r});
                return true;
            });
        if (!scanned) return retry(scanned.error().message);
    }
    // Where each record's path is now, and the record it carries there. A plain rename drops
    // what was recorded under the target (a replaced file, or stale records under an empty
    // directory it replaced); an exchange swaps the two subtrees.
    std::map<std::string, std::optional<state::FileState>> now;
    for (const auto& r : old_from)
        now[join_path(to, std::string_view(r.path).substr(from.size()))] = r.state;
    if (exchange)
        for (const auto& r : old_to)
            now[join_path(from, std::string_view(r.path).substr(to.size()))] = r.state;
    // A renamed file is copied under its new name even if it never was under the old one
    // (moved into the mapped area). Under a renamed directory only recorded paths move.
    for (const std::string* name : {&to, exchange ? &from : nullptr}) {
        struct stat st;
        if (name && !now.count(*name) && stat_beneath(source_root_, *name, &st) == 0 &&
            S_ISREG(st.st_mode))
            now[*name] = std::nullopt;
    }

    // The objects the new names claim: an old object at one of them is replaced by the new
    // copy (whose upload drops the replaced version's chunks), not deleted.
    // Only a name that holds a regular file as this runs claims its key: the operation is
    // handled after the fact, and a later one may have put a directory or a symlink there, which
    // no copy replaces the old object for (its record still moves, for that later operation).
    std::set<std::tuple<std::string, std::string, std::string>> claimed;
    std::map<std::string, layout::Location> copies;
    for (const auto& [path, rec] : now) {
        if (auto where = mapper_.map(path)) {
            struct stat st;
            if (stat_beneath(source_root_, path, &st) == 0 && S_ISREG(st.st_mode))
                claimed.insert({where->type, where->bucket, where->key});
            copies.emplace(path, *where);
        }
    }

    state::StateStore::Batch batch;
    std::vector<std::string> removals;
    // Released placeholders whose record an earlier rename left dirty (its copy still to follow
    // it): the marker on the file, not the record's phase, says that Riak holds the only copy,
    // which a removal here would delete, chunks and all (the relocation that follows shares
    // them). Found by path now (an exchange refuses placeholders: LocalFs::rename).
    std::set<std::string> placeholders;
    if (!exchange) {
        for (auto& [p, rec] : old_from) {
            if (rec.phase != state::Phase::dirty || rec.version.empty()) continue;
            const std::string np = join_path(to, std::string_view(p).substr(from.size()));
            UniqueFd fd(open_beneath(source_root_, np));
            if (!fd) {
                // Not there any more (renamed or removed again since: the operation is handled
                // after the fact, and a restart replays the journal's once SOURCE made them
                // all), or not openable: whether it is a placeholder cannot be told. Its record
                // follows it as a placeholder's does, since removing the object here would lose
                // a released file's only copy; where the file is found, its copy decides
                // (migrate_one: moved if unchanged, else sent again and the old object removed),
                // and a removal of the name takes the object with the record.
                placeholders.insert(np);
                continue;
            }
            auto marker = state::read_marker(fd.get());
            if (!marker) return retry(marker.error().message);
            if (!*marker) continue;
            placeholders.insert(np);
            // A relocation that wrote the marker and was stopped before it recorded the move
            // (this rename came first, or its replay after a crash): the marker, not the
            // record, says where the copy is. The record follows it now and the old object goes
            // (its chunks kept: the moved manifest names them), before the claim below takes
            // the marker's key, this path's own, for a leftover to delete: the released file's
            // only copy.
            const state::Marker& m = **marker;
            if (m.version != rec.version ||
                std::tie(m.type, m.bucket, m.key) == std::tie(rec.type, rec.bucket, rec.key))
                continue;
            const layout::Location old{rec.type, rec.bucket, rec.key};
            removals.push_back(put_moved_removal(
                batch, p, old, rec, std::tie(m.type, m.bucket) == std::tie(old.type, old.bucket)));
            rec.type = m.type;
            rec.bucket = m.bucket;
            rec.key = m.key;
            now[np] = rec;
        }
    }
    auto follows = [&](const std::string& np, const state::FileState& rec) {
        return relocatable(rec) || placeholders.count(np) > 0;
    };
    for (const auto* olds : {&old_from, &old_to}) {
        const bool moves = olds == &old_from || exchange; // else: replaced by the rename
        const std::string& old_dir = olds == &old_from ? from : to;
        const std::string& new_dir = olds == &old_from ? to : from;
        for (const auto& [p, rec] : *olds) {
            batch.erase(p);
            // The name moves away: what it left to a move at its own key goes, unless a name
            // that holds a file now claims that key (an exchange's other file, copied there).
            // (An exchange too: one that takes a renamed file away before its move ran left the
            // file it replaced at that key for good, once the name was removed.)
            std::string leftover;
            if (moves) {
                auto own = mapper_.map(p);
                if (!own || !claimed.count(location_tuple(*own))) {
                    leftover = put_claimed_removal(batch, p, rec);
                    if (!leftover.empty()) removals.push_back(leftover);
                }
            }
            auto where = location_of(mapper_, p, rec);
            if (!where) continue;
            auto [type, bucket, key] = location_tuple(*where);
            if (claimed.count({type, bucket, key})) continue;
            if (moves) {
                const std::string np =
                    join_path(new_dir, std::string_view(p).substr(old_dir.size()));
                // A plain rename moves a verified copy inside Riak; the relocation deletes the
                // old object once the new one is verified and recorded.
                if (!exchange && follows(np, rec) && copies.count(np)) continue;
                if (is_released(rec) || placeholders.count(np)) {
                    // Riak holds the only copy: it stays where it is, named by the marker.
                    RFS_LOG_WARN("{} is released and was renamed to {}, which maps to no key: its "
                                 "content stays in Riak at {}",
                                 p, np, rec.key);
                    continue;
                }
            }
            if (const std::string slot = put_record_removal(batch, p, *where, rec, leftover);
                !slot.empty())
                removals.push_back(slot);
        }
    }
    // For the debug log: the removals and the records written.
    const bool debug = log::enabled(log::Level::debug);
    std::string what;
    if (debug)
        for (const auto& p : removals)
            what += fmt::format(" -{}", p);
    std::vector<std::pair<std::string, state::FileState>> moved; // the records written
    // The records move to their new paths, dirty: each is copied again under its new key, or,
    // after a plain rename of a verified copy, relocated there (the record keeps the copy's
    // version and old location for that). An exchange sends both files again.
    for (const auto& [path, where] : copies) {
        state::FileState rec = now[path].value_or(state::FileState{});
        if (exchange || !follows(path, rec)) {
            // Copied afresh, to this path's own key. The object the record named is another
            // name's (after an exchange) or the old name's, whose removal is queued above: kept
            // here, a removal of this path would delete it, whoever holds it by then.
            forget_copy(rec);
        }
        rec.phase = state::Phase::dirty;
        rec.attempts = 0;
        rec.last_error.clear();
        if (debug) what += fmt::format(" +{}{}", path, rec.key.empty() ? "" : "@" + rec.key);
        batch.put(path, rec);
        moved.emplace_back(path, rec);
    }
    if (batch.size() == 0 && note == 0) return;
    if (auto applied = apply_noted(batch, note); !applied) return retry(applied.error().message);
    namespace_attempts_ = 0;
    for (const auto* olds : {&old_from, &old_to})
        for (const auto& r : *olds)
            relocation_sources_.release(r.path);
    for (const auto& m : moved)
        relocation_source_changed(m.first, &m.second);
    RFS_LOG_DEBUG("{} {} {}:{}", from, exchange ? "<->" : "->", to, what);
    for (const auto& p : removals)
        enqueue_removal(p);
    for (const auto& [path, where] : copies)
        enqueue_on_loop(path);
}

void Migrator::namespace_retry(std::function<void()> op, std::vector<std::string> paths,
                               const std::string& why) {
    note_failure(paths.front(), why, "recording a namespace change");
    auto delay = options_.retry_first * (1u << std::min(namespace_attempts_++, 16u));
    delay = std::min<std::chrono::milliseconds>(delay, options_.retry_max);
    work_posted(); // not idle until it is done
    auto timer = std::make_shared<asio::steady_timer>(context_, delay);
    timer->async_wait([this, op = std::move(op), paths = std::move(paths),
                       timer](const boost::system::error_code& ec) mutable {
        if (!ec && !stopping_) namespace_op(std::move(op), std::move(paths));
        work_done();
    });
}

void Migrator::enqueue_removal(const std::string& path) {
    note_removal_target(path);
    if (removal_queued_.insert(path).second) removal_queue_.push_back(path);
    if (removals_known_.insert(path).second) update_queued();
    if (wakeup_) wakeup_->cancel();
}

void Migrator::forget_removal(const std::string& path) {
    removal_attempts_.erase(path);
    // Queued again meanwhile (a newer removal of the same path): it stays known.
    if (!removal_queued_.count(path)) {
        removals_known_.erase(path);
        removal_targets_.release(path);
        removal_versions_.erase(path);
    }
    update_queued();
}

void Migrator::removal_retry_later(const std::string& path, const std::string& why) {
    unsigned attempts = ++removal_attempts_[path];
    note_failure(path, why, "removal from Riak");
    auto delay = options_.retry_first * (1u << std::min(attempts - 1, 16u));
    delay = std::min<std::chrono::milliseconds>(delay, options_.retry_max);
    auto timer = std::make_shared<asio::steady_timer>(context_, delay);
    timer->async_wait([this, path, timer](const boost::system::error_code& ec) {
        if (!ec && !stopping_) enqueue_removal(path);
    });
}

asio::awaitable<void> Migrator::remove_one(std::string path) {
    auto rec = state_.get_removal(path);
    if (!rec) co_return removal_retry_later(path, rec.error().message);
    if (!*rec) co_return forget_removal(path);
    const state::FileState wanted = **rec;
    const layout::Location id{wanted.type, wanted.bucket, wanted.key};

    // Nothing of this path is being copied now (the workers keep the two apart), and nothing
    // below waits between this check and the read of the object. (A second removal of a path
    // is no path in SOURCE: ENOENT.)
    struct stat st;
    int err = is_extra_removal_slot(path) ? ENOENT : stat_beneath(source_root_, path, &st);
    if (err != 0 && err != ENOENT && err != ELOOP && err != EXDEV)
        co_return removal_retry_later(path, fmt::format("cannot stat: {}", std::strerror(err)));
    if (err == 0 && S_ISREG(st.st_mode)) {
        auto where = mapper_.map(path);
        if (where && location_tuple(*where) == location_tuple(id)) {
            // The path holds a file again whose copy goes to this very object (re-created,
            // renamed back, exchanged): copying it replaces the object, chunks included.
            if (auto erased = state_.erase_removal(path); !erased)
                co_return removal_retry_later(path, erased.error().message);
            closed_on_loop(path, true, 0);
            co_return forget_removal(path);
        }
    } else {
        // Nothing to copy there: a record is what a copy that ended after the unlink wrote,
        // unless it names another object with a version: a rename onto this path, handled
        // since, moved a copy's record here (to be relocated), which the operation that took
        // the path away again decides on (renamed_on_loop), not this removal.
        auto rec = state_.get(path);
        if (!rec) co_return removal_retry_later(path, rec.error().message);
        const auto named = *rec ? location_of(mapper_, path, **rec) : std::nullopt;
        const bool moved_here = *rec && !(*rec)->version.empty() && named &&
                                location_tuple(*named) != location_tuple(id);
        if (*rec && !moved_here)
            if (auto erased = state_.erase(path); !erased)
                co_return removal_retry_later(path, erased.error().message);
    }

    // Not this path's own key (a relocation's old one): a file created at that name since may
    // have been copied there. Only the version this removal was recorded for goes.
    const bool only_recorded = !wanted.version.empty() && !owns_key(mapper_, path, id);
    auto remove_call = remove_file_object(*store_, id, only_recorded ? wanted.version : "",
                                          wanted.phase == kKeepChunks);
    auto removed = co_await std::move(remove_call);
    // A key written since it was read (ESTALE) is read again at the retry.
    if (!removed) co_return removal_retry_later(path, removed.error().describe());
    if (*removed == RemovedObject::other_version)
        RFS_LOG_DEBUG("{}: {} holds a newer object than the one to remove; it stays", path, id.key);
    else
        RFS_LOG_DEBUG("removal for {} of {}: {}", path, id.key,
                      *removed == RemovedObject::removed ? "deleted" : "nothing there");
    if (*removed == RemovedObject::removed) {
        std::lock_guard lock(stats_mu_);
        ++stats_.objects_removed;
    }
    // Done, unless a newer removal of this path for another object was recorded meanwhile.
    auto again = state_.get_removal(path);
    if (!again) co_return removal_retry_later(path, again.error().message);
    if (*again) {
        const auto& r = **again;
        if (std::tie(r.type, r.bucket, r.key) == location_tuple(id)) {
            if (auto erased = state_.erase_removal(path); !erased)
                co_return removal_retry_later(path, erased.error().message);
        } else {
            enqueue_removal(path);
        }
    }
    forget_removal(path);
}

bool Migrator::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(stats_mu_);
    return idle_cv_.wait_for(lock, timeout,
                             [this] { return stats_.queued == 0 && closes_posted_ == 0; });
}

MigratorStats Migrator::stats() const {
    std::lock_guard lock(stats_mu_);
    return stats_;
}

} // namespace rfs::migrate
