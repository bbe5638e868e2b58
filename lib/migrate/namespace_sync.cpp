#include "lib/migrate/namespace_sync.hpp"

#include "lib/migrate/intent_journal.hpp"

#include "lib/common/log.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/state/placeholder.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <random>

namespace rfs::migrate {
namespace asio = boost::asio;

namespace {

// The extended attributes of `name` in `dir_fd` (the entry itself, not a symlink's target), but
// riakfs's own. A file system without them has none.
state::Result<void> read_xattrs(int dir_fd, const char* name,
                                std::map<std::string, std::string>* out) {
    std::string path = fmt::format("/proc/self/fd/{}/{}", dir_fd, name);
    std::string names;
    for (int tries = 0;; ++tries) {
        ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
        if (n < 0) {
            if (errno == ENOTSUP) return {};
            return state::make_error(errno, "{}", std::strerror(errno));
        }
        if (n == 0) return {};
        names.resize(static_cast<std::size_t>(n));
        n = ::llistxattr(path.c_str(), names.data(), names.size());
        if (n >= 0) {
            names.resize(static_cast<std::size_t>(n));
            break;
        }
        if (errno != ERANGE || tries > 3)
            return state::make_error(errno, "{}", std::strerror(errno));
    }
    for (std::size_t at = 0; at < names.size();) {
        std::string attr(names.c_str() + at);
        at += attr.size() + 1;
        if (attr.empty() || state::is_name_hidden(attr)) continue;
        std::string value(layout::kMaxXattrValueBytes, '\0');
        ssize_t n = ::lgetxattr(path.c_str(), attr.c_str(), value.data(), value.size());
        if (n < 0) {
            if (errno == ENODATA) continue; // removed meanwhile: its hook marks the directory
            return state::make_error(errno, "{}: {}", attr, std::strerror(errno));
        }
        value.resize(static_cast<std::size_t>(n));
        (*out)[attr] = std::move(value);
    }
    return {};
}

} // namespace

state::Result<layout::DirRecord> read_local_dir(int dir_fd, std::string_view rel_dir,
                                                const layout::Mapper& mapper,
                                                const state::StateStore& state,
                                                const EntryStat& lstat) {
    int listing = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0); // its own offset, same O_NOATIME
    if (listing < 0)
        return state::make_error(errno, "cannot list {}: {}", display_dir(rel_dir),
                                 std::strerror(errno));
    DIR* dir = ::fdopendir(listing);
    if (!dir) {
        int err = errno;
        ::close(listing);
        return state::make_error(err, "cannot list {}: {}", display_dir(rel_dir),
                                 std::strerror(err));
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
    layout::DirRecord record;
    while (true) {
        errno = 0;
        dirent* d = ::readdir(dir);
        if (!d) {
            if (errno != 0)
                return state::make_error(errno, "cannot list {}: {}", display_dir(rel_dir),
                                         std::strerror(errno));
            break;
        }
        std::string_view name = d->d_name;
        if (name == "." || name == "..") continue;
        struct stat st;
        const int err =
            lstat ? lstat(dir_fd, d->d_name, &st)
                  : (::fstatat(dir_fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno);
        if (err != 0) {
            if (err == ENOENT) continue; // removed meanwhile: its hook marks this directory
            return state::make_error(err, "cannot stat {}: {}", child_of(rel_dir, name),
                                     std::strerror(err));
        }
        std::string rel = child_of(rel_dir, name);
        // The tree leading to mapped files always exists; other files stay local, unrecorded.
        if (!S_ISDIR(st.st_mode) && !mapper.map(rel)) continue;
        layout::DirEntry e = entry_of(st);
        if (e.type == layout::EntryType::lnk) {
            char target[layout::kMaxTargetBytes + 1];
            ssize_t n = ::readlinkat(dir_fd, d->d_name, target, sizeof target);
            if (n < 0) {
                if (errno == ENOENT || errno == EINVAL) continue; // replaced meanwhile
                return state::make_error(errno, "cannot read the symlink {}: {}", rel,
                                         std::strerror(errno));
            }
            e.target.assign(target, static_cast<std::size_t>(std::min<ssize_t>(
                                        n, static_cast<ssize_t>(layout::kMaxTargetBytes))));
        }
        if (auto xattrs = read_xattrs(dir_fd, d->d_name, &e.xattrs); !xattrs) {
            if (xattrs.error().code == ENOENT) continue; // replaced meanwhile
            return state::make_error(xattrs.error().code, "cannot read the attributes of {}: {}",
                                     rel, xattrs.error().message);
        }
        if (e.type != layout::EntryType::dir && e.nlink > 1) {
            std::string local = local_inode_id(st);
            auto mapped = state.aux_get(state::AuxKind::inode_id, local);
            if (!mapped) return std::move(mapped).error();
            e.inode = mapped->value_or(local);
        }
        if (auto ok = layout::check_entry(e); !ok)
            return state::make_error(EINVAL, "cannot record {}: {}", rel, ok.error().message);
        record.entries.emplace(std::string(name), std::move(e));
    }
    return record;
}

NamespaceSync::NamespaceSync(int source_root, const layout::Mapper& mapper,
                             state::StateStore& state, asio::io_context& context,
                             store::ObjectStore& store, NamespaceOptions options)
    : source_root_(source_root), mapper_(mapper), state_(state), context_(context), store_(store),
      options_(options) {}

NamespaceSync::~NamespaceSync() {
    stop(std::chrono::milliseconds(0));
}

void NamespaceSync::post(std::function<void()> work) {
    {
        std::lock_guard lock(mu_);
        ++posted_;
    }
    asio::post(context_, [this, work = std::move(work)] {
        if (!stopping_) work();
        std::lock_guard lock(mu_);
        --posted_;
        cv_.notify_all();
    });
}

void NamespaceSync::start() {
    post([this] {
        started_ = true;
        for (unsigned i = 0; i < std::max(1u, options_.parallel); ++i) {
            timers_.push_back(std::make_unique<asio::steady_timer>(context_));
            {
                std::lock_guard lock(mu_);
                ++workers_alive_;
            }
            asio::co_spawn(context_, worker(i), asio::detached);
        }
        std::vector<std::pair<std::string, bool>> dirty;
        auto listed = state_.aux_for_each(state::AuxKind::dirty_dir, "",
                                          [&](std::string_view key, std::string_view value) {
                                              dirty.emplace_back(std::string(key), value == "r");
                                              return true;
                                          });
        if (!listed) RFS_LOG_ERROR("cannot read the dirty directories: {}", listed.error().message);
        for (const auto& [key, recursive] : dirty)
            mark_on_loop(key, recursive, true);
        if (!dirty.empty())
            RFS_LOG_INFO("resuming the namespace records of {} directory(ies)", dirty.size());
        auto any = state_.aux_next(state::AuxKind::dir_record, "", "");
        if (listed && dirty.empty() && any && !*any) {
            // A first start: record the whole tree, in the background.
            RFS_LOG_INFO("recording the namespace of SOURCE in Riak (first start)");
            mark_on_loop("/", true, false);
        }
    });
}

void NamespaceSync::stop(std::chrono::milliseconds drain) {
    if (drain.count() > 0 && !wait_idle(drain))
        RFS_LOG_WARN("stopping with {} directory record(s) to write; they resume at the next "
                     "start",
                     stats().pending);
    if (context_.stopped()) return; // nothing runs on the loop any more
    {
        std::unique_lock lock(mu_);
        if (workers_alive_ == 0 && posted_ == 0) return;
    }
    asio::post(context_, [this] {
        stopping_ = true;
        for (auto& timer : timers_)
            timer->cancel();
    });
    // A record write in progress ends (answer or client timeout) before the workers go.
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(60),
                      [this] { return workers_alive_ == 0 && posted_ == 0; }))
        RFS_LOG_WARN("namespace records: a write did not end within 60 s of the stop");
}

void NamespaceSync::entry_changed(std::string rel_path, bool names_changed, std::uint64_t note) {
    if (rel_path.empty()) { // SOURCE itself: recorded in no directory
        if (journal_) journal_->recorded(note);
        return;
    }
    post([this, rel_path = std::move(rel_path), names_changed, note] {
        std::string parent = parent_of(rel_path);
        mark_on_loop(layout::dir_record_key(parent), false, false);
        if (names_changed && !parent.empty())
            mark_on_loop(layout::dir_record_key(parent_of(parent)), false, false);
        mark_other_names(rel_path);
        settle(note);
    });
}

void NamespaceSync::settle(std::uint64_t note) {
    // The dirty marks are durable (or were already): a crash from here on resumes them.
    if (journal_ && !stopping_) journal_->recorded(note);
}

void NamespaceSync::mark_other_names(const std::string& rel_path) {
    // A file with several names: its other names' entries (mode, times, size, link count) are
    // stale too. The directories whose records list its hard-link id were noted when those
    // records were made (AuxKind::link_dir); each is marked, and its note dropped: the record
    // made again notes it again if the file is still there.
    struct stat st;
    if (lstat_beneath(source_root_, rel_path, &st) != 0 || S_ISDIR(st.st_mode) || st.st_nlink < 2)
        return;
    const std::string local = local_inode_id(st);
    auto mapped = state_.aux_get(state::AuxKind::inode_id, local);
    if (!mapped) return note_failure(rel_path, mapped.error().message);
    std::string prefix = mapped->value_or(local);
    prefix.push_back('\0');
    std::vector<std::string> dirs;
    auto scanned = state_.aux_for_each(state::AuxKind::link_dir, prefix,
                                       [&](std::string_view key, std::string_view) {
                                           dirs.emplace_back(key.substr(prefix.size()));
                                           return true;
                                       });
    if (!scanned) return note_failure(rel_path, scanned.error().message);
    std::vector<state::AuxOp> ops;
    for (const auto& dir : dirs)
        ops.push_back({state::AuxKind::link_dir, prefix + dir, std::nullopt});
    for (const auto& dir : dirs)
        mark_on_loop(layout::dir_record_key(dir), false, false);
    if (auto erased = state_.aux_apply(ops); !erased)
        note_failure(rel_path, erased.error().message);
}

void NamespaceSync::dir_changed(std::string rel_dir, bool recursive, std::uint64_t note) {
    post([this, rel_dir = std::move(rel_dir), recursive, note] {
        mark_on_loop(layout::dir_record_key(rel_dir), recursive, false);
        settle(note);
    });
}

void NamespaceSync::renamed(std::string from, std::string to) {
    if (from.empty() || to.empty()) return;
    post([this, from = std::move(from), to = std::move(to)] {
        for (const std::string* path : {&from, &to}) {
            std::string parent = parent_of(*path);
            mark_on_loop(layout::dir_record_key(parent), false, false);
            if (!parent.empty())
                mark_on_loop(layout::dir_record_key(parent_of(parent)), false, false);
        }
        // The old name's records go (or, after an exchange, hold the other subtree); the new
        // name's subtree is recorded there. Neither may be a directory: nothing is recorded then.
        mark_on_loop(layout::dir_record_key(from), true, false);
        mark_on_loop(layout::dir_record_key(to), true, false);
    });
}

void NamespaceSync::mark_on_loop(const std::string& key, bool recursive, bool durable) {
    if (stopping_) return;
    auto [it, inserted] = dirty_.try_emplace(key);
    Dirty& d = it->second;
    bool upgrade = recursive && !d.recursive;
    if ((inserted || upgrade) && !durable) {
        // Before anything is sent: a crash from here on resumes this directory.
        if (auto put = state_.aux_put(state::AuxKind::dirty_dir, key, recursive ? "r" : ""); !put)
            note_failure(key, put.error().message);
    }
    if (recursive) d.recursive = true;
    if (in_flight_.count(key))
        d.again = true;
    else if (inserted)
        schedule(key, Clock::now() + coalesce_for(key));
    update_pending();
}

void NamespaceSync::schedule(const std::string& key, Clock::time_point due) {
    dirty_[key].due = due;
    schedule_.emplace(due, key);
    wake();
}

void NamespaceSync::wake() {
    for (auto& timer : timers_)
        timer->cancel();
}

void NamespaceSync::note_failure(const std::string& key, const std::string& why) {
    RFS_LOG_WARN("namespace record of {} failed (will retry): {}", key, why);
    std::lock_guard lock(mu_);
    ++stats_.failures;
    stats_.last_error = why;
}

void NamespaceSync::update_pending() {
    std::lock_guard lock(mu_);
    stats_.pending = dirty_.size();
    cv_.notify_all();
}

std::optional<std::string> NamespaceSync::next_ready(Clock::time_point* next_due) {
    auto now = Clock::now();
    while (!schedule_.empty()) {
        auto it = schedule_.begin();
        auto found = dirty_.find(it->second);
        // Stale entries: written since, rescheduled, or being written (rescheduled after).
        if (found == dirty_.end() || found->second.due != it->first ||
            in_flight_.count(it->second)) {
            schedule_.erase(it);
            continue;
        }
        if (it->first > now) {
            *next_due = it->first;
            return std::nullopt;
        }
        std::string key = std::move(it->second);
        schedule_.erase(it);
        return key;
    }
    return std::nullopt;
}

asio::awaitable<void> NamespaceSync::worker(std::size_t index) {
    asio::steady_timer& timer = *timers_[index];
    while (!stopping_) {
        auto next_due = Clock::time_point::max();
        auto next = next_ready(&next_due);
        if (!next) {
            timer.expires_at(next_due);
            boost::system::error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        std::string key = std::move(*next);
        in_flight_.insert(key);
        bool recursive = dirty_[key].recursive;
        dirty_[key].recursive = false; // a new recursive mark meanwhile sets it again
        dirty_[key].again = false;
        std::optional<std::string> error;
        const auto started = Clock::now();
        try {
            auto call = sync_one(key, recursive);
            error = co_await std::move(call);
        } catch (const std::exception& e) {
            error = e.what();
        }
        in_flight_.erase(key);
        if (!error) {
            auto took =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
            if (took * NamespaceOptions::kSlowFactor > options_.coalesce)
                slow_[key] = took;
            else
                slow_.erase(key);
        }
        if (stopping_) break;
        Dirty& d = dirty_[key];
        if (error) {
            note_failure(key, *error);
            d.recursive = d.recursive || recursive;
            auto delay = options_.retry_first * (1u << std::min(d.attempts++, 16u));
            delay = std::min<std::chrono::milliseconds>(delay, options_.retry_max);
            static thread_local std::mt19937 jitter(std::random_device{}());
            delay += std::chrono::milliseconds(
                std::uniform_int_distribution<long>(0, delay.count() / 4)(jitter));
            schedule(key, Clock::now() + delay);
            continue;
        }
        d.attempts = 0;
        if (d.again) {
            d.again = false;
            schedule(key, Clock::now() + coalesce_for(key));
            continue;
        }
        if (auto erased = state_.aux_erase(state::AuxKind::dirty_dir, key); !erased) {
            note_failure(key, erased.error().message);
            schedule(key, Clock::now() + options_.retry_first);
            continue;
        }
        dirty_.erase(key);
        update_pending();
    }
    std::lock_guard lock(mu_);
    --workers_alive_;
    cv_.notify_all();
}

std::chrono::milliseconds NamespaceSync::coalesce_for(const std::string& key) const {
    auto it = slow_.find(key);
    if (it == slow_.end()) return options_.coalesce;
    return std::max(options_.coalesce,
                    std::min<std::chrono::milliseconds>(it->second * NamespaceOptions::kSlowFactor,
                                                        NamespaceOptions::kSlowMax));
}

state::Result<std::vector<std::string>>
NamespaceSync::recorded_children(const std::string& key) const {
    // The index is sorted: after a child, its own subtree is skipped in one seek.
    std::string prefix = key == "/" ? "/" : key + "/";
    std::vector<std::string> children;
    std::string from = prefix;
    if (key == "/") from.push_back('\0'); // not the root's own key
    while (true) {
        auto next = state_.aux_next(state::AuxKind::dir_record, prefix, from);
        if (!next) return std::move(next).error();
        if (!*next) break;
        const std::string& found = (*next)->first;
        std::size_t slash = found.find('/', prefix.size());
        std::string child = found.substr(0, slash);
        if (children.empty() || children.back() != child) children.push_back(child);
        from = child;
        from.push_back(slash == std::string::npos ? '\0' : static_cast<char>('/' + 1));
    }
    return children;
}

asio::awaitable<std::optional<std::string>> NamespaceSync::sync_one(std::string key,
                                                                    bool recursive) {
    std::string rel = rel_of_key(key);
    UniqueFd fd(open_dir_beneath(source_root_, rel));
    if (!fd) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV) {
            auto call = remove_record(key);
            co_return co_await std::move(call);
        }
        co_return fmt::format("cannot open {}: {}", display_dir(rel), std::strerror(errno));
    }
    auto record = read_local_dir(fd.get(), rel, mapper_, state_, lstat_);
    if (!record) co_return record.error().message;

    // Subdirectories to record in turn: all of them after a rename onto this name or at the
    // first start; and recorded ones that are gone (their records are deleted).
    std::set<std::string> subdirs;
    for (const auto& [name, e] : record->entries)
        if (e.type == layout::EntryType::dir)
            subdirs.insert(layout::dir_record_key(child_of(rel, name)));
    std::vector<std::pair<std::string, bool>> marks;
    if (recursive)
        for (const auto& sub : subdirs)
            marks.emplace_back(sub, true);
    auto recorded = recorded_children(key);
    if (!recorded) co_return recorded.error().message;
    for (const auto& child : *recorded)
        if (!subdirs.count(child)) marks.emplace_back(child, false);
    std::vector<state::AuxOp> ops;
    for (const auto& [child, r] : marks)
        ops.push_back({state::AuxKind::dirty_dir, child, std::string(r ? "r" : "")});
    // Where the record lists a file with several names (mark_other_names).
    for (const auto& [name, e] : record->entries)
        if (!e.inode.empty()) ops.push_back({state::AuxKind::link_dir, e.inode + '\0' + rel, ""});
    // Known as recorded, with every part that may exist, before anything is written: a write
    // whose answer is lost (or a crash right after it) leaves a record in Riak, which only
    // this index lets a removal of the directory find.
    auto parts = layout::split_dir_record(*record, options_.max_record_bytes);
    auto known = state_.aux_get(state::AuxKind::dir_record, key);
    if (!known) co_return known.error().message;
    const auto old_parts = parse_parts(known->value_or("0"));
    const auto new_parts = static_cast<std::uint32_t>(parts.size());
    if (!*known || old_parts < new_parts)
        ops.push_back({state::AuxKind::dir_record, key, std::to_string(new_parts)});
    if (auto applied = state_.aux_apply(ops); !applied) co_return applied.error().message;
    for (const auto& [child, r] : marks)
        mark_on_loop(child, r, true);

    auto call = put_record(key, parts, std::max(old_parts, new_parts));
    co_return co_await std::move(call);
}

asio::awaitable<std::optional<std::string>>
NamespaceSync::put_record(const std::string& key, const std::vector<layout::DirRecord>& parts,
                          std::uint32_t indexed_parts) {
    std::string rel = rel_of_key(key);
    const auto& bucket = mapper_.namespace_bucket();
    auto put_one =
        [&](std::string riak_key,
            const layout::DirRecord& part) -> asio::awaitable<std::optional<std::string>> {
        proto::ObjectId id{bucket.type, bucket.bucket, std::move(riak_key)};
        // The vclock of what is there: the write replaces it instead of adding a sibling.
        auto head_call = store_.head(id);
        auto head = co_await std::move(head_call);
        if (!head) co_return head.error().describe();
        store::Object object;
        object.value = layout::encode_dir_record(part);
        object.content_type = std::string(layout::kDirRecordContentType);
        object.meta.emplace_back(std::string(store::kVersionMeta), layout::make_version());
        auto put_call = store_.put(id, std::move(object), store::PutOptions{head->vclock, true});
        auto put = co_await std::move(put_call);
        if (!put) co_return put.error().describe();
        co_return std::nullopt;
    };
    // The parts first: the head, written last, is what names them.
    for (std::uint32_t i = 1; i < parts.size(); ++i) {
        auto call = put_one(layout::dir_record_part_key(rel, i), parts[i]);
        if (auto error = co_await std::move(call)) co_return error;
    }
    {
        auto call = put_one(key, parts[0]);
        if (auto error = co_await std::move(call)) co_return error;
    }
    // The parts the record no longer has, then the index's count (until they are gone, it
    // covers them, so that a retry or a removal finds them).
    for (auto i = static_cast<std::uint32_t>(parts.size()); i < indexed_parts; ++i) {
        auto call =
            store_.remove({bucket.type, bucket.bucket, layout::dir_record_part_key(rel, i)}, {});
        auto removed = co_await std::move(call);
        if (!removed) co_return removed.error().describe();
    }
    if (indexed_parts != parts.size())
        if (auto put =
                state_.aux_put(state::AuxKind::dir_record, key, std::to_string(parts.size()));
            !put)
            co_return put.error().message;
    std::lock_guard lock(mu_);
    ++stats_.records_written;
    co_return std::nullopt;
}

asio::awaitable<std::optional<std::string>> NamespaceSync::remove_record(const std::string& key) {
    // The recorded subdirectories first (durably): they go too, even after a crash here.
    auto children = recorded_children(key);
    if (!children) co_return children.error().message;
    std::vector<state::AuxOp> ops;
    for (const auto& child : *children)
        ops.push_back({state::AuxKind::dirty_dir, child, std::string()});
    if (auto applied = state_.aux_apply(ops); !applied) co_return applied.error().message;
    for (const auto& child : *children)
        mark_on_loop(child, false, true);

    auto known = state_.aux_get(state::AuxKind::dir_record, key);
    if (!known) co_return known.error().message;
    if (!*known) co_return std::nullopt; // never recorded
    std::string rel = rel_of_key(key);
    const auto& bucket = mapper_.namespace_bucket();
    std::uint32_t parts = std::max<std::uint32_t>(1, parse_parts(**known));
    for (std::uint32_t i = parts; i-- > 0;) {
        std::string riak_key = i == 0 ? key : layout::dir_record_part_key(rel, i);
        auto call = store_.remove({bucket.type, bucket.bucket, std::move(riak_key)}, {});
        auto removed = co_await std::move(call);
        if (!removed) co_return removed.error().describe();
    }
    if (auto erased = state_.aux_erase(state::AuxKind::dir_record, key); !erased)
        co_return erased.error().message;
    std::lock_guard lock(mu_);
    ++stats_.records_removed;
    co_return std::nullopt;
}

bool NamespaceSync::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return stats_.pending == 0 && posted_ == 0; });
}

NamespaceStats NamespaceSync::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

} // namespace rfs::migrate
