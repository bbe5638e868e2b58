#include "lib/migrate/drain.hpp"

#include "lib/common/log.hpp"
#include "lib/common/timespec_ns.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/io/executor.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/migrate/riak_reader.hpp"
#include "lib/migrate/tree_walk.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include <dirent.h>
#include <fcntl.h>
#include <linux/ioprio.h>
#include <linux/openat2.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

namespace rfs::migrate {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kPersistEvery = std::chrono::seconds(1);
constexpr auto kSampleEvery = std::chrono::seconds(1);
// The longest rest after a file while yielding (a large file's copy takes seconds).
constexpr auto kMaxRest = std::chrono::seconds(2);
constexpr auto kBackoffFirst = std::chrono::milliseconds(200);
constexpr auto kBackoffMax = std::chrono::milliseconds(30000);

// The walk and the hand-over are background work: let the mount's threads have the CPU and
// the disk first.
void lower_priority() {
    const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 10);
    (void)::syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7));
}

void add(DrainTally& t, std::uint64_t bytes, std::int64_t files = 1) {
    t.files += static_cast<std::uint64_t>(files);
    t.bytes += bytes;
}

void subtract(DrainTally& t, std::uint64_t bytes) {
    t.files -= std::min<std::uint64_t>(t.files, 1);
    t.bytes -= std::min(t.bytes, bytes);
}

nlohmann::json tally_json(const DrainTally& t) {
    return {{"files", t.files}, {"bytes", t.bytes}};
}

// A count as stored: a JSON integer >= 0. nlohmann's get<> would convert a float or a negative
// number instead (a float beyond 2^64 is undefined behaviour): those are refused.
std::uint64_t count_of(const nlohmann::json& j) {
    if (!j.is_number_unsigned()) throw std::invalid_argument("not a count");
    return j.get<std::uint64_t>();
}

DrainTally tally_of(const nlohmann::json& j) {
    return {count_of(j.at("files")), count_of(j.at("bytes"))};
}

} // namespace

DrainTally DrainProgress::remaining() const {
    return {total.files - std::min(total.files, migrated.files),
            total.bytes - std::min(total.bytes, migrated.bytes)};
}

std::string_view to_string(DrainProgress::State state) {
    switch (state) {
    case DrainProgress::State::off:
        return "off";
    case DrainProgress::State::walking:
        return "walking";
    case DrainProgress::State::running:
        return "running";
    case DrainProgress::State::paused:
        return "paused";
    case DrainProgress::State::finished:
        return "finished";
    }
    return "?";
}

std::string encode_drain_record(const DrainProgress& p) {
    nlohmann::json j = {{"format", 1},
                        {"state", to_string(p.state)},
                        {"pass", p.pass},
                        {"total", tally_json(p.total)},
                        {"migrated", tally_json(p.migrated)},
                        {"released", tally_json(p.released)},
                        {"failed", tally_json(p.failed)},
                        {"last_error", p.last_error}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<DrainProgress> decode_drain_record(std::string_view text) {
    try {
        auto j = nlohmann::json::parse(text);
        if (count_of(j.at("format")) != 1) return std::nullopt;
        DrainProgress p;
        const auto state = j.at("state").get<std::string>();
        for (auto s : {DrainProgress::State::off, DrainProgress::State::walking,
                       DrainProgress::State::running, DrainProgress::State::paused,
                       DrainProgress::State::finished})
            if (state == to_string(s)) p.state = s;
        p.pass = count_of(j.at("pass"));
        p.total = tally_of(j.at("total"));
        p.migrated = tally_of(j.at("migrated"));
        p.released = tally_of(j.at("released"));
        p.failed = tally_of(j.at("failed"));
        p.last_error = j.at("last_error").get<std::string>();
        return p;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// What the drain's thread and its callers share (the migrator's callbacks hold it too, so that
// an answer arriving after the Drain is gone lands nowhere harmful). Everything under `mu`.
struct Drain::Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    bool pass_requested = false; // start() with drain=on, or resume() of an idle drain
    bool paused = false;
    DrainProgress progress;
    RateLimiter bytes_limit, files_limit;
    RateMeter rates;

    struct Answer {
        std::string path;
        std::uint64_t size;
        CopyResult result;
    };
    std::deque<Answer> answers; // from the migrator's loop

    // The drain's thread only (kept here to be under the same lock as what they pace).
    std::vector<DrainCandidate> failed_files;
    unsigned failures_in_a_row = 0;
    Clock::time_point backoff_until{};
    // Yielding: the last file handed over, and the instant before which the next one waits
    // (rest_factor times that file's copy).
    Clock::time_point handed_at{};
    Clock::time_point rest_until{};
    Clock::time_point next_persist{};
    Clock::time_point next_sample{};
    bool dirty = false; // progress changed since it was persisted
};

Drain::Drain(int source_root, const layout::Mapper& mapper, state::StateStore& state,
             Migrator& migrator, DrainOptions options)
    : source_root_(source_root), mapper_(mapper), state_(state), migrator_(migrator),
      options_(options), shared_(std::make_shared<Shared>()) {
    const auto now = Clock::now();
    shared_->bytes_limit = RateLimiter(options_.bytes_per_second, now);
    shared_->files_limit = RateLimiter(options_.files_per_second, now);
    shared_->progress.bytes_per_second = options_.bytes_per_second;
    shared_->progress.files_per_second = options_.files_per_second;
    shared_->progress.order = options_.order;
    shared_->pass_requested = options_.start;
}

Drain::~Drain() {
    stop();
}

void Drain::start() {
    // The last pass's figures, so that status has them before this pass's walk is done.
    if (auto saved = state_.aux_get(state::AuxKind::drain, ""); saved && *saved) {
        if (auto p = decode_drain_record(**saved)) {
            auto& now = shared_->progress;
            now.pass = p->pass;
            now.total = p->total;
            now.migrated = p->migrated;
            now.released = p->released;
            now.failed = p->failed;
            now.last_error = p->last_error;
        }
    }
    thread_ =
        io::thread_without_signals([this] { run(); }, "riakfs-drain", io::ThreadRole::background);
}

void Drain::stop() {
    {
        std::lock_guard lock(shared_->mu);
        shared_->stopping = true;
    }
    shared_->cv.notify_all();
    if (thread_.joinable()) thread_.join();
}

bool Drain::pause() {
    std::lock_guard lock(shared_->mu);
    auto state = shared_->progress.state;
    if (state != DrainProgress::State::walking && state != DrainProgress::State::running &&
        state != DrainProgress::State::paused && !shared_->pass_requested)
        return false;
    shared_->paused = true;
    shared_->cv.notify_all();
    return true;
}

void Drain::resume() {
    std::lock_guard lock(shared_->mu);
    shared_->paused = false;
    auto state = shared_->progress.state;
    if (state == DrainProgress::State::off || state == DrainProgress::State::finished)
        shared_->pass_requested = true;
    shared_->cv.notify_all();
}

void Drain::set_limits(std::uint64_t bytes_per_second, std::uint64_t files_per_second) {
    std::lock_guard lock(shared_->mu);
    const auto now = Clock::now();
    shared_->bytes_limit.set_rate(bytes_per_second, now);
    shared_->files_limit.set_rate(files_per_second, now);
    shared_->progress.bytes_per_second = bytes_per_second;
    shared_->progress.files_per_second = files_per_second;
    shared_->cv.notify_all();
}

DrainProgress Drain::progress() const {
    std::lock_guard lock(shared_->mu);
    DrainProgress p = shared_->progress;
    p.copy_files_per_second = shared_->rates.files_per_second();
    p.copy_bytes_per_second = shared_->rates.bytes_per_second();
    return p;
}

bool Drain::paused_or_stopping() const {
    return shared_->paused || shared_->stopping;
}

void Drain::sample_rates(std::unique_lock<std::mutex>& lock) {
    const auto now = Clock::now();
    if (now < shared_->next_sample) return;
    shared_->next_sample = now + kSampleEvery;
    lock.unlock();
    const MigratorStats stats = migrator_.stats();
    lock.lock();
    shared_->rates.sample(now, stats.files_copied, stats.bytes_copied);
}

void Drain::persist(std::unique_lock<std::mutex>& lock, bool now) {
    if (!shared_->dirty) return;
    const auto at = Clock::now();
    if (!now && at < shared_->next_persist) return;
    shared_->next_persist = at + kPersistEvery;
    shared_->dirty = false;
    const std::string record = encode_drain_record(shared_->progress);
    lock.unlock();
    if (auto put = state_.aux_put(state::AuxKind::drain, "", record); !put)
        RFS_LOG_WARN("drain: cannot record the progress: {}", put.error().message);
    lock.lock();
}

void Drain::wait_a_little(std::unique_lock<std::mutex>& lock, Clock::time_point until) {
    sample_rates(lock);
    persist(lock, false);
    if (!shared_->answers.empty() || shared_->stopping) return;
    until = std::min({until, shared_->next_sample, Clock::now() + kPersistEvery});
    shared_->cv.wait_until(lock, until);
}

bool Drain::already_copied(const std::string& path, const struct stat& st, bool* released) const {
    *released = false;
    auto rec = state_.get(path);
    if (!rec || !*rec) return false;
    const state::FileState& r = **rec;
    if (!record_matches(r, st)) return false;
    *released = r.phase == state::Phase::released;
    return true;
}

void Drain::handle_results(std::unique_lock<std::mutex>& lock) {
    if (shared_->answers.empty()) return;
    std::deque<Shared::Answer> answers;
    answers.swap(shared_->answers);
    // Whether each copied file was released right after its copy: a record read, off the lock.
    std::vector<bool> released(answers.size(), false);
    if (options_.count_released) {
        lock.unlock();
        for (size_t i = 0; i < answers.size(); ++i) {
            auto kind = answers[i].result.kind;
            if (kind != CopyResult::Kind::copied && kind != CopyResult::Kind::current) continue;
            auto rec = state_.get(answers[i].path);
            released[i] = rec && *rec && (*rec)->phase == state::Phase::released;
        }
        lock.lock();
    }
    auto& p = shared_->progress;
    for (size_t i = 0; i < answers.size(); ++i) {
        const auto& a = answers[i];
        --p.in_flight;
        if (p.yielding && p.in_flight == 0) {
            const auto now = Clock::now();
            const auto rest = std::min<Clock::duration>(
                (now - shared_->handed_at) * options_.yield_rest_factor, kMaxRest);
            shared_->rest_until = now + rest;
        }
        switch (a.result.kind) {
        case CopyResult::Kind::copied:
        case CopyResult::Kind::current:
            add(p.migrated, a.size);
            if (released[i]) add(p.released, a.size);
            shared_->failures_in_a_row = 0;
            break;
        case CopyResult::Kind::failed:
        case CopyResult::Kind::again:     // never reported: the path is copied again first
        case CopyResult::Kind::recording: // never reported: copy_ended() follows
        {
            add(p.failed, a.size);
            p.last_error = a.path + ": " + a.result.error;
            shared_->failed_files.push_back({a.path, a.size, 0});
            // Riak failing: wait before the next file rather than sweep the tree into retries.
            auto delay = kBackoffFirst * (1u << std::min(shared_->failures_in_a_row, 16u));
            shared_->backoff_until = Clock::now() + std::min<Clock::duration>(delay, kBackoffMax);
            ++shared_->failures_in_a_row;
            break;
        }
        case CopyResult::Kind::skipped:
            subtract(p.total, a.size); // gone (or no longer a file to copy) since the walk
            break;
        }
    }
    shared_->dirty = true;
}

// ---- the thread -------------------------------------------------------------------------------

void Drain::run() {
    lower_priority();
    std::unique_lock lock(shared_->mu);
    while (!shared_->stopping) {
        if (!shared_->pass_requested || shared_->paused) {
            wait_a_little(lock, Clock::now() + kSampleEvery);
            continue;
        }
        shared_->pass_requested = false;
        lock.unlock();
        run_pass();
        lock.lock();
    }
    persist(lock, true);
}

// One directory level of the walk at a time, from a stack of paths (never a descriptor per
// level held open).
void Drain::walk(std::vector<DrainCandidate>& out) {
    struct stat root_st;
    if (::fstat(source_root_, &root_st) != 0) {
        RFS_LOG_ERROR("drain: cannot stat SOURCE: {}", std::strerror(errno));
        return;
    }
    std::vector<std::pair<std::string, dev_t>> dirs{{"", root_st.st_dev}};
    DrainTally found, copied, released;
    std::uint64_t walked = 0;
    auto flush = [&] {
        std::lock_guard lock(shared_->mu);
        auto& p = shared_->progress;
        p.walked = walked;
        p.total = found;
        p.migrated = copied;
        p.released = released;
        shared_->dirty = true;
    };
    while (!dirs.empty()) {
        {
            std::unique_lock lock(shared_->mu);
            while (shared_->paused && !shared_->stopping) {
                shared_->progress.state = DrainProgress::State::paused;
                wait_a_little(lock, Clock::now() + kSampleEvery);
            }
            if (shared_->stopping) return;
            shared_->progress.state = DrainProgress::State::walking;
            sample_rates(lock);
            persist(lock, false);
        }
        auto [dir, parent_dev] = std::move(dirs.back());
        dirs.pop_back();
        int fd = open_dir_beneath(source_root_, dir);
        if (fd < 0) {
            if (errno != ENOENT && errno != ENOTDIR)
                RFS_LOG_WARN("drain: cannot list {}: {}", dir.empty() ? "SOURCE" : dir,
                             std::strerror(errno));
            continue;
        }
        DIR* listing = ::fdopendir(fd);
        if (!listing) {
            ::close(fd);
            continue;
        }
        struct stat dir_st;
        if (::fstat(fd, &dir_st) != 0) {
            ::closedir(listing);
            continue;
        }
        // A FUSE mount inside SOURCE may be this very mount (MOUNTPOINT below SOURCE): never
        // walked. The state_dir (when it lies in SOURCE) holds riakfs's own files.
        if (!walk_enters(fd, dir_st, parent_dev, options_.skip_dev, options_.skip_ino)) {
            ::closedir(listing);
            continue;
        }
        std::vector<std::string> subdirs;
        while (dirent* e = ::readdir(listing)) {
            std::string_view name = e->d_name;
            if (name == "." || name == "..") continue;
            std::string rel = dir.empty() ? std::string(name) : dir + "/" + std::string(name);
            if (e->d_type == DT_DIR) {
                subdirs.push_back(std::move(rel));
                continue;
            }
            if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) continue;
            struct stat st;
            if (::fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (S_ISDIR(st.st_mode)) {
                subdirs.push_back(std::move(rel));
                continue;
            }
            if (!S_ISREG(st.st_mode) || !state::is_valid_path(rel) || !mapper_.map(rel)) continue;
            ++walked;
            const auto size = static_cast<std::uint64_t>(st.st_size);
            add(found, size);
            bool is_released = false;
            if (already_copied(rel, st, &is_released)) {
                add(copied, size);
                if (is_released) add(released, size);
            } else {
                out.push_back({std::move(rel), size, ns_of(st.st_atim)});
            }
            if (walked % 1024 == 0) flush();
        }
        ::closedir(listing);
        // Reversed, so that the stack gives them back in listing order.
        for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it)
            dirs.emplace_back(std::move(*it), dir_st.st_dev);
    }
    flush();
}

void Drain::run_pass() {
    {
        std::unique_lock lock(shared_->mu);
        auto& p = shared_->progress;
        ++p.pass;
        p.state = DrainProgress::State::walking;
        p.walked = 0;
        p.total = p.migrated = p.released = p.failed = {};
        p.last_error.clear();
        shared_->failed_files.clear();
        shared_->failures_in_a_row = 0;
        shared_->dirty = true;
        persist(lock, true);
        RFS_LOG_INFO("drain: pass {} starts (order {}, {} byte(s)/s, {} file(s)/s; 0: unlimited)",
                     p.pass, to_string(options_.order), p.bytes_per_second, p.files_per_second);
    }
    std::vector<DrainCandidate> files;
    walk(files);
    order_candidates(files, options_.order);
    {
        std::unique_lock lock(shared_->mu);
        if (shared_->stopping) return;
        const auto& p = shared_->progress;
        RFS_LOG_INFO("drain: {} file(s) ({} byte(s)) found, {} already in Riak, {} to copy",
                     p.total.files, p.total.bytes, p.migrated.files, files.size());
    }

    for (auto& file : files) {
        std::unique_lock lock(shared_->mu);
        for (;;) {
            handle_results(lock);
            if (shared_->stopping) return;
            auto& p = shared_->progress;
            const auto now = Clock::now();
            if (shared_->paused) {
                if (p.state != DrainProgress::State::paused) shared_->dirty = true;
                p.state = DrainProgress::State::paused;
                p.yielding = false;
                wait_a_little(lock, now + kSampleEvery);
                continue;
            }
            p.state = DrainProgress::State::running;
            p.yielding = options_.foreground && options_.yield_in_flight > 0 &&
                         watch_.active(options_.foreground->requests(), now);
            const unsigned cap =
                p.yielding ? options_.yield_in_flight : std::max(1u, options_.in_flight);
            if (p.in_flight >= cap) {
                // Yielding, look again once the applications may have gone quiet: the full
                // rate comes back within a window of their last request.
                wait_a_little(lock, p.yielding ? now + watch_.window() : now + kSampleEvery);
                continue;
            }
            if (p.yielding && now < shared_->rest_until) {
                wait_a_little(lock, shared_->rest_until);
                continue;
            }
            if (now < shared_->backoff_until) {
                wait_a_little(lock, shared_->backoff_until);
                continue;
            }
            const auto ready = std::max(shared_->bytes_limit.ready_at(file.size, now),
                                        shared_->files_limit.ready_at(1, now));
            if (now < ready) {
                wait_a_little(lock, ready);
                continue;
            }
            break;
        }
        lock.unlock();
        // Copied meanwhile by a close, or gone: nothing to hand over, no budget spent.
        struct stat st;
        bool is_released = false;
        const bool gone = lstat_beneath(source_root_, file.path, &st) != 0 || !S_ISREG(st.st_mode);
        const bool copied = !gone && already_copied(file.path, st, &is_released);
        lock.lock();
        auto& p = shared_->progress;
        if (gone || copied) {
            if (gone) subtract(p.total, file.size);
            if (copied) {
                add(p.migrated, file.size);
                if (is_released) add(p.released, file.size);
            }
            shared_->dirty = true;
            continue;
        }
        const auto now = Clock::now();
        shared_->bytes_limit.take(file.size, now);
        shared_->files_limit.take(1, now);
        ++p.in_flight;
        shared_->handed_at = now;
        lock.unlock();
        std::weak_ptr<Shared> weak = shared_;
        migrator_.drain_file(file.path, [weak, path = file.path, size = file.size](CopyResult r) {
            auto shared = weak.lock();
            if (!shared) return;
            {
                std::lock_guard guard(shared->mu);
                shared->answers.push_back({path, size, std::move(r)});
            }
            shared->cv.notify_all();
        });
    }

    std::unique_lock lock(shared_->mu);
    while (shared_->progress.in_flight > 0) {
        handle_results(lock);
        if (shared_->stopping) return;
        if (shared_->progress.in_flight > 0) wait_a_little(lock, Clock::now() + kSampleEvery);
    }
    // Files whose copy failed in this pass and that the migrator's own retries have copied since.
    auto failed = std::move(shared_->failed_files);
    lock.unlock();
    std::vector<std::pair<DrainCandidate, bool>> recovered;
    for (auto& f : failed) {
        struct stat st;
        bool is_released = false;
        if (lstat_beneath(source_root_, f.path, &st) == 0 && S_ISREG(st.st_mode) &&
            already_copied(f.path, st, &is_released))
            recovered.push_back({f, is_released});
    }
    lock.lock();
    auto& p = shared_->progress;
    for (auto& [f, is_released] : recovered) {
        subtract(p.failed, f.size);
        add(p.migrated, f.size);
        if (is_released) add(p.released, f.size);
    }
    if (p.failed.files == 0) p.last_error.clear();
    p.state = DrainProgress::State::finished;
    p.yielding = false;
    shared_->dirty = true;
    persist(lock, true);
    RFS_LOG_INFO("drain: pass {} finished: {} of {} file(s) in Riak, {} failed{}{}", p.pass,
                 p.migrated.files, p.total.files, p.failed.files,
                 p.failed.files ? " (the migrator retries them; last error: " : "",
                 p.failed.files ? p.last_error + ")" : "");
}

} // namespace rfs::migrate
