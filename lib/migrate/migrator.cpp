#include "lib/migrate/migrator.hpp"

#include "lib/common/log.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/io/executor.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/migrate/uploader.hpp"

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
#include <cerrno>
#include <cstring>
#include <random>

namespace rfs::migrate {
namespace asio = boost::asio;

namespace {

std::int64_t ns_of(const timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// Opens `rel` beneath SOURCE for reading: no symlink followed, nothing outside SOURCE reached,
// and a FIFO put there does not block the open.
int open_beneath(int root, const std::string& rel) {
    open_how how{};
    how.flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how));
}

// The state store's record still describes this very file content.
bool copy_is_current(const state::FileState& rec, const struct stat& st) {
    using state::Phase;
    bool copied = rec.phase == Phase::verified || rec.phase == Phase::releasing ||
                  rec.phase == Phase::released;
    return copied && rec.size == static_cast<std::uint64_t>(st.st_size) &&
           rec.mtime_ns == ns_of(st.st_mtim) && rec.ctime_ns == ns_of(st.st_ctim) &&
           rec.ino == st.st_ino;
}

} // namespace

Migrator::Migrator(int source_root, const layout::Mapper& mapper, state::StateStore& state,
                   StoreFactory make_store, MigratorOptions options)
    : source_root_(source_root), mapper_(mapper), state_(state), make_store_(std::move(make_store)),
      options_(options) {}

Migrator::~Migrator() {
    if (thread_.joinable()) stop(std::chrono::milliseconds(0));
}

void Migrator::start() {
    wakeup_ = std::make_unique<asio::steady_timer>(context_, asio::steady_timer::time_point::max());
    store_ = make_store_(context_);
    // Before the thread starts, this thread may act as the loop's.
    if (auto pending = state_.list_pending()) {
        for (auto& p : *pending)
            enqueue_on_loop(p.path);
        if (!pending->empty())
            RFS_LOG_INFO("resuming the copy of {} file(s) left pending", pending->size());
    } else {
        RFS_LOG_ERROR("cannot read the pending copies: {}", pending.error().message);
    }
    for (unsigned i = 0; i < std::max(1u, options_.parallel_uploads); ++i)
        asio::co_spawn(context_, worker(), asio::detached);
    thread_ = io::thread_without_signals([this] { context_.run(); });
}

void Migrator::stop(std::chrono::milliseconds drain) {
    if (!thread_.joinable()) return;
    if (drain.count() > 0 && !wait_idle(drain))
        RFS_LOG_WARN("stopping with {} copy(ies) pending; they resume at the next start",
                     stats().queued);
    asio::post(context_, [this] {
        stopping_ = true;
        wakeup_->cancel();
    });
    context_.stop();
    thread_.join();
    store_.reset();
}

void Migrator::file_closed(std::string rel_path, bool written) {
    if (!mapper_.map(rel_path)) return; // stays local
    {
        std::lock_guard lock(stats_mu_);
        ++closes_posted_;
    }
    asio::post(context_, [this, path = std::move(rel_path), written] {
        if (!stopping_) closed_on_loop(path, written);
        std::lock_guard lock(stats_mu_);
        --closes_posted_;
        if (closes_posted_ == 0 && stats_.queued == 0) idle_cv_.notify_all();
    });
}

void Migrator::closed_on_loop(const std::string& path, bool written) {
    if (!written) {
        // Read to the end: worth a copy only if Riak lacks this content.
        auto rec = state_.get(path);
        struct stat st;
        UniqueFd fd(open_beneath(source_root_, path));
        if (rec && *rec && fd && ::fstat(fd.get(), &st) == 0 && copy_is_current(**rec, st)) return;
    }
    // Recorded before anything is sent: a crash from here on resumes this copy.
    if (auto marked = state_.mark_dirty(path); !marked) {
        note_failure(path, marked.error().message);
        return retry_later(path, ++attempts_[path]);
    }
    enqueue_on_loop(path);
}

void Migrator::enqueue_on_loop(const std::string& path) {
    if (auto it = copying_.find(path); it != copying_.end()) {
        it->second = true; // copy again once this copy ends
        return;
    }
    if (!queued_.insert(path).second) return;
    queue_.push_back(path);
    if (known_.insert(path).second) {
        std::lock_guard lock(stats_mu_);
        stats_.queued = known_.size();
    }
    if (wakeup_) wakeup_->cancel();
}

void Migrator::forget(const std::string& path) {
    attempts_.erase(path);
    known_.erase(path);
    std::lock_guard lock(stats_mu_);
    stats_.queued = known_.size();
    if (known_.empty() && closes_posted_ == 0) idle_cv_.notify_all();
}

void Migrator::note_failure(const std::string& path, const std::string& why) {
    RFS_LOG_WARN("copy of {} failed (will retry): {}", path, why);
    std::lock_guard lock(stats_mu_);
    ++stats_.failures;
    stats_.last_error = why;
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

asio::awaitable<void> Migrator::worker() {
    while (!stopping_) {
        if (queue_.empty()) {
            boost::system::error_code ec;
            co_await wakeup_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        std::string path = std::move(queue_.front());
        queue_.pop_front();
        queued_.erase(path);
        copying_[path] = false;
        try {
            co_await migrate_one(path);
        } catch (const std::exception& e) {
            note_failure(path, e.what());
            retry_later(path, ++attempts_[path]);
        }
        bool again = copying_[path];
        copying_.erase(path);
        if (again) enqueue_on_loop(path);
    }
}

asio::awaitable<void> Migrator::migrate_one(std::string path) {
    auto skip = [&] {
        if (auto erased = state_.erase(path); !erased)
            RFS_LOG_WARN("cannot forget the copy of {}: {}", path, erased.error().message);
        {
            std::lock_guard lock(stats_mu_);
            ++stats_.skipped;
        }
        forget(path);
    };
    auto fail = [&](const std::string& why) {
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
    };

    auto location = mapper_.map(path);
    if (!location) co_return skip();
    UniqueFd fd(open_beneath(source_root_, path));
    if (!fd) {
        // Gone (or renamed) since it was queued: the namespace operation that removed it
        // decides what Riak keeps.
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV)
            co_return skip();
        co_return fail(fmt::format("cannot open: {}", std::strerror(errno)));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) co_return fail(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) co_return skip();

    auto rec = state_.get(path);
    if (!rec) co_return fail(rec.error().message);
    state::FileState record = rec->value_or(state::FileState{});
    if (copy_is_current(record, st)) {
        std::lock_guard lock(stats_mu_);
        ++stats_.skipped;
        forget(path);
        co_return;
    }
    record.phase = state::Phase::uploading;
    if (auto put = state_.put(path, record); !put) co_return fail(put.error().message);

    UploadInput input;
    input.rel_path = path;
    input.location = *location;
    input.fd = fd.get();
    input.snapshot = st;
    input.chunk_size = options_.chunk_size;
    input.version = layout::make_version();
    auto call = upload_and_verify(*store_, std::move(input));
    auto copied = co_await std::move(call);
    if (!copied) co_return fail(copied.error().describe());
    if (copied->changed || copying_[path]) {
        // Written during the copy: this copy is stale before it is recorded.
        (void)state_.mark_dirty(path);
        copying_[path] = true;
        co_return;
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
    if (auto put = state_.put(path, done); !put) co_return fail(put.error().message);
    {
        std::lock_guard lock(stats_mu_);
        ++stats_.files_copied;
        stats_.bytes_copied += copied->bytes_sent;
    }
    forget(path);
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
