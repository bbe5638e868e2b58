#include "lib/migrate/restore.hpp"

#include "lib/common/log.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/state/placeholder.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

namespace rfs::migrate {
namespace asio = boost::asio;

asio::awaitable<state::Result<std::optional<layout::DirRecord>>>
read_dir_record(store::ObjectStore& store, const proto::BucketId& bucket, std::string rel_dir) {
    using Out = state::Result<std::optional<layout::DirRecord>>;
    std::string key = layout::dir_record_key(rel_dir);
    auto fetch = [&](std::string riak_key) {
        return store.get(proto::ObjectId{bucket.type, bucket.bucket, std::move(riak_key)});
    };
    auto head_call = fetch(key);
    auto head = co_await std::move(head_call);
    if (!head)
        co_return Out(state::make_error(head.error().to_errno(), "cannot read the record of {}: {}",
                                        key, head.error().describe()));
    if (!head->found) co_return Out(std::optional<layout::DirRecord>());
    auto record = layout::decode_dir_record(head->object.value);
    if (!record)
        co_return Out(state::make_error(EBADMSG, "the record of {} does not decode: {}", key,
                                        record.error().message));
    for (std::uint32_t i = 1; i < record->parts; ++i) {
        std::string part_key = layout::dir_record_part_key(rel_dir, i);
        auto call = fetch(part_key);
        auto got = co_await std::move(call);
        if (!got)
            co_return Out(state::make_error(got.error().to_errno(),
                                            "cannot read the record part {}: {}", part_key,
                                            got.error().describe()));
        // The head names this part: its absence is a damaged record, not an empty part.
        if (!got->found)
            co_return Out(state::make_error(EBADMSG, "the record part {} is missing", part_key));
        auto part = layout::decode_dir_record(got->object.value);
        if (!part || part->parts != 1)
            co_return Out(state::make_error(EBADMSG, "the record part {} does not decode{}{}",
                                            part_key, part ? "" : ": ",
                                            part ? "" : part.error().message));
        for (auto& [name, e] : part->entries)
            if (!record->entries.emplace(name, std::move(e)).second)
                co_return Out(state::make_error(EBADMSG, "the record of {} names {} twice", key,
                                                layout::encode_entry_bytes(name)));
    }
    co_return Out(std::optional<layout::DirRecord>(std::move(*record)));
}

namespace {

state::Error sys_error(int err, std::string_view what, std::string_view path) {
    return state::make_error(err, "cannot {} {}: {}", what, path, std::strerror(err));
}

class Restorer {
public:
    Restorer(int root, const layout::Mapper& mapper, state::StateStore& state,
             store::ObjectStore& store)
        : root_(root), mapper_(mapper), state_(state), store_(store) {}

    RestoreReport report;

    // `self`: the directory's own entry (from its parent's record; none for SOURCE).
    asio::awaitable<state::Result<void>> restore_dir(std::string rel,
                                                     std::optional<layout::DirEntry> self) {
        auto read_call = read_dir_record(store_, mapper_.namespace_bucket(), rel);
        auto read = co_await std::move(read_call);
        if (!read) co_return std::move(read).error();
        if (!*read) {
            if (rel.empty())
                co_return state::make_error(ENOENT,
                                            "no namespace record of SOURCE ('/') in bucket {}: "
                                            "nothing to restore",
                                            mapper_.namespace_bucket().bucket);
            co_return state::make_error(EBADMSG,
                                        "the namespace record of {} is missing although its "
                                        "parent lists it: the namespace in Riak is incomplete",
                                        display_dir(rel));
        }
        // Riak holds this record: the namespace sync replaces it from now on.
        std::string key = layout::dir_record_key(rel);
        if (auto put =
                state_.aux_put(state::AuxKind::dir_record, key, std::to_string((*read)->parts));
            !put)
            co_return std::move(put).error();
        UniqueFd dir(open_dir_beneath(root_, rel));
        if (!dir) co_return sys_error(errno, "open the directory", display_dir(rel));

        for (const auto& [name, e] : (*read)->entries) {
            std::string path = child_of(rel, name);
            if (e.type != layout::EntryType::dir && e.nlink > 1 && !e.inode.empty()) {
                if (auto first = links_.find(e.inode); first != links_.end()) {
                    if (::linkat(root_, first->second.c_str(), dir.get(), name.c_str(), 0) != 0 &&
                        errno != EEXIST)
                        co_return sys_error(errno, "link", path);
                    ++report.hard_links;
                    continue;
                }
            }
            state::Result<void> done;
            switch (e.type) {
            case layout::EntryType::dir: {
                if (::mkdirat(dir.get(), name.c_str(), 0700) != 0 && errno != EEXIST)
                    co_return sys_error(errno, "create the directory", path);
                auto call = restore_dir(path, e);
                done = co_await std::move(call);
                if (done) done = set_attrs(dir.get(), name, path, e);
                ++report.directories;
                break;
            }
            case layout::EntryType::reg: {
                const bool linked = e.nlink > 1 && !e.inode.empty();
                auto call = restore_file(dir.get(), name, path, e, linked);
                auto made = co_await std::move(call);
                if (!made) co_return std::move(made).error();
                if (!*made) {
                    // No object at this name, or an older one: another name of the file may have
                    // the one its record describes.
                    if (linked) {
                        pending_links_[e.inode].push_back({path, rel, self});
                        if (auto o = older_links_.find(e.inode);
                            o != older_links_.end() && o->second.path == path)
                            o->second.times = self;
                        continue;
                    }
                    ++report.missing;
                    continue;
                }
                break;
            }
            case layout::EntryType::lnk:
                if (::symlinkat(e.target.c_str(), dir.get(), name.c_str()) != 0 && errno != EEXIST)
                    co_return sys_error(errno, "create the symlink", path);
                done = set_attrs(dir.get(), name, path, e);
                ++report.symlinks;
                break;
            default:
                if (::mknodat(dir.get(), name.c_str(), file_type(e.type) | (e.mode & 07777),
                              static_cast<dev_t>(e.rdev)) != 0 &&
                    errno != EEXIST)
                    co_return sys_error(errno, "create", path);
                done = set_attrs(dir.get(), name, path, e);
                ++report.others;
                break;
            }
            if (!done) co_return done;
            if (e.type != layout::EntryType::dir && e.nlink > 1 && !e.inode.empty()) {
                if (auto noted = note_link(dir.get(), name, path, e.inode); !noted) co_return noted;
                if (auto linked = link_pending(e.inode, path); !linked) co_return linked;
            }
        }
        co_return state::Result<void>();
    }

    // Hard-linked files none of whose names has an object matching the record: restored from
    // the first name that has one at all (as a file with one name is, said in the log), and
    // their other names linked to it.
    asio::awaitable<state::Result<void>> restore_older_links() {
        auto older = std::exchange(older_links_, {});
        for (auto& [id, o] : older) {
            auto waiting = pending_links_.find(id);
            if (waiting == pending_links_.end()) continue; // a later name had the newest
            // (Not captured: clang 14 cannot capture a structured binding.)
            const std::string& candidate = o.path;
            std::erase_if(waiting->second,
                          [&candidate](const PendingLink& p) { return p.path == candidate; });
            UniqueFd dir(open_dir_beneath(root_, o.parent));
            if (!dir) co_return sys_error(errno, "open the directory", display_dir(o.parent));
            auto call = restore_file(dir.get(), o.name, o.path, o.entry, false);
            auto made = co_await std::move(call);
            if (!made) co_return std::move(made).error();
            if (!*made) continue; // gone meanwhile: counted below
            // Its directory is complete already: the new name moved its times.
            if (o.times) {
                timespec times[2] = {timespec_of(o.times->atime_ns),
                                     timespec_of(o.times->mtime_ns)};
                if (::utimensat(root_, o.parent.empty() ? "." : o.parent.c_str(), times,
                                AT_SYMLINK_NOFOLLOW) != 0)
                    co_return sys_error(errno, "set the times of", display_dir(o.parent));
            }
            if (auto noted = note_link(dir.get(), o.name, o.path, id); !noted) co_return noted;
            if (auto linked = link_pending(id, o.path); !linked) co_return linked;
        }
        co_return state::Result<void>();
    }

    // Names of hard-linked files whose object was missing and no other name had one.
    void count_unlinked() {
        for (const auto& [id, names] : pending_links_) {
            for (const auto& p : names)
                RFS_LOG_WARN("restore: {} has no object in Riak, nor has any other name of the "
                             "file: skipped",
                             p.path);
            report.missing += names.size();
        }
        pending_links_.clear();
    }

private:
    static mode_t file_type(layout::EntryType type) {
        switch (type) {
        case layout::EntryType::fifo:
            return S_IFIFO;
        case layout::EntryType::chr:
            return S_IFCHR;
        case layout::EntryType::blk:
            return S_IFBLK;
        case layout::EntryType::sock:
            return S_IFSOCK;
        default:
            return S_IFREG;
        }
    }

    // The first name of a hard-linked file: later names link to it, and its new inode keeps the
    // recorded id.
    state::Result<void> note_link(int dir_fd, const std::string& name, const std::string& path,
                                  const std::string& id) {
        struct stat st;
        if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return sys_error(errno, "stat", path);
        links_.emplace(id, path);
        return state_.aux_put(state::AuxKind::inode_id, local_inode_id(st), id);
    }

    struct PendingLink {
        std::string path;
        std::string parent;                    // its directory
        std::optional<layout::DirEntry> times; // the directory's entry, to put its times back
    };

    // Earlier names of the file `id` that had no object become links to `first`.
    state::Result<void> link_pending(const std::string& id, const std::string& first) {
        auto it = pending_links_.find(id);
        if (it == pending_links_.end()) return {};
        for (const auto& p : it->second) {
            if (::linkat(root_, first.c_str(), root_, p.path.c_str(), 0) != 0 && errno != EEXIST)
                return sys_error(errno, "link", p.path);
            ++report.hard_links;
            // Its directory may be complete already: the link moved its mtime.
            if (p.times) {
                timespec times[2] = {timespec_of(p.times->atime_ns),
                                     timespec_of(p.times->mtime_ns)};
                if (::utimensat(root_, p.parent.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
                    return sys_error(errno, "set the times of", p.parent);
            }
        }
        pending_links_.erase(it);
        return {};
    }

    // Owner, then mode (chown clears set-ID bits), then times, all without following a symlink.
    state::Result<void> set_attrs(int dir_fd, const std::string& name, const std::string& path,
                                  const layout::DirEntry& e) {
        if (::fchownat(dir_fd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
            return sys_error(errno, "set the owner of", path);
        if (e.type != layout::EntryType::lnk &&
            ::fchmodat(dir_fd, name.c_str(), e.mode & 07777, 0) != 0)
            return sys_error(errno, "set the mode of", path);
        // After the owner: chown drops security.capability.
        std::string at = fmt::format("/proc/self/fd/{}/{}", dir_fd, name);
        for (const auto& [attr, value] : e.xattrs)
            if (::lsetxattr(at.c_str(), attr.c_str(), value.data(), value.size(), 0) != 0)
                return sys_error(errno, "set the extended attribute " + attr + " of", path);
        timespec times[2] = {timespec_of(e.atime_ns), timespec_of(e.mtime_ns)};
        if (::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
            return sys_error(errno, "set the times of", path);
        return {};
    }

    // false: Riak has no object for this name (logged; nothing was made), or, with
    // `newest_only` (a name of a hard-linked file), only one older than its record says: a
    // change made through another name was copied under that name's key, so another name may
    // have the newest (restore_older_links() takes this one if none has).
    asio::awaitable<state::Result<bool>> restore_file(int dir_fd, const std::string& name,
                                                      const std::string& path,
                                                      const layout::DirEntry& e, bool newest_only) {
        auto rec = state_.get(path);
        if (!rec) co_return std::move(rec).error();
        if (*rec && (*rec)->phase == state::Phase::released) {
            ++report.files; // done by the interrupted run
            co_return true;
        }
        auto location = mapper_.map(path);
        if (!location) {
            RFS_LOG_WARN("restore: {} is no longer mapped by the layout: skipped", path);
            co_return false;
        }
        auto head_call = store_.head(*location);
        auto head = co_await std::move(head_call);
        if (!head)
            co_return state::make_error(head.error().to_errno(), "cannot read the object of {}: {}",
                                        path, head.error().describe());
        if (!head->found) {
            if (e.nlink > 1) co_return false; // another name may have one: said at the end
            RFS_LOG_WARN("restore: {} has no object in Riak (bucket {}, key {}): skipped", path,
                         location->bucket, location->key);
            co_return false;
        }
        auto meta = layout::decode_meta(head->object.meta);
        if (!meta)
            co_return state::make_error(EBADMSG, "the object of {} is not a riakfs file: {}", path,
                                        meta.error().message);
        if (newest_only && (meta->size != e.size || meta->mtime_ns != e.mtime_ns)) {
            const std::string parent = path.size() > name.size()
                                           ? path.substr(0, path.size() - name.size() - 1)
                                           : std::string();
            older_links_.try_emplace(e.inode, OlderLink{path, parent, name, e, std::nullopt});
            co_return false;
        }
        if (meta->size != e.size)
            RFS_LOG_WARN("restore: {}: the record says {} bytes, the object in Riak {}: the "
                         "object is restored",
                         path, e.size, meta->size);

        UniqueFd fd(
            ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) co_return sys_error(errno, "create", path);
        // A placeholder: the size of the content, no data, and the marker naming the object.
        if (::ftruncate(fd.get(), 0) != 0 ||
            ::ftruncate(fd.get(), static_cast<off_t>(meta->size)) != 0)
            co_return sys_error(errno, "size", path);
        state::Marker marker{meta->version, meta->sha256, location->type, location->bucket,
                             location->key, meta->size,   e.mtime_ns};
        if (auto written = state::write_marker(fd.get(), marker); !written)
            co_return state::make_error(written.error().code, "cannot mark {} as released: {}",
                                        path, written.error().message);
        if (::fchown(fd.get(), e.uid, e.gid) != 0)
            co_return sys_error(errno, "set the owner of", path);
        if (::fchmod(fd.get(), e.mode & 07777) != 0)
            co_return sys_error(errno, "set the mode of", path);
        for (const auto& [attr, value] : e.xattrs)
            if (::fsetxattr(fd.get(), attr.c_str(), value.data(), value.size(), 0) != 0)
                co_return sys_error(errno, "set the extended attribute " + attr + " of", path);
        timespec times[2] = {timespec_of(e.atime_ns), timespec_of(e.mtime_ns)};
        if (::futimens(fd.get(), times) != 0) co_return sys_error(errno, "set the times of", path);
        if (::fsync(fd.get()) != 0) co_return sys_error(errno, "sync", path);
        struct stat st;
        if (::fstat(fd.get(), &st) != 0) co_return sys_error(errno, "stat", path);

        state::FileState done;
        done.phase = state::Phase::released;
        done.version = meta->version;
        done.sha256 = meta->sha256;
        done.vclock = head->vclock;
        done.type = location->type;
        done.bucket = location->bucket;
        done.key = location->key;
        done.size = meta->size;
        done.mtime_ns = ns_of(st.st_mtim);
        done.ctime_ns = ns_of(st.st_ctim);
        done.dev = st.st_dev;
        done.ino = st.st_ino;
        if (auto put = state_.put(path, done); !put) co_return std::move(put).error();
        ++report.files;
        co_return true;
    }

    int root_;
    const layout::Mapper& mapper_;
    state::StateStore& state_;
    store::ObjectStore& store_;
    std::map<std::string, std::string> links_; // recorded inode id -> first path restored
    std::map<std::string, std::vector<PendingLink>> pending_links_; // id -> names waiting
    // The first name of a hard-linked file whose object is older than the record says.
    struct OlderLink {
        std::string path, parent, name;
        layout::DirEntry entry;
        std::optional<layout::DirEntry> times; // its directory's entry
    };
    std::map<std::string, OlderLink> older_links_; // id -> that name
};

// SOURCE holds nothing (readdir sees only "." and "..").
state::Result<bool> source_is_empty(int root) {
    UniqueFd fd(open_dir_beneath(root, ""));
    if (!fd) return sys_error(errno, "open", "SOURCE");
    DIR* dir = ::fdopendir(fd.get());
    if (!dir) return sys_error(errno, "list", "SOURCE");
    fd.release();
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
    while (dirent* d = ::readdir(dir)) {
        std::string_view name = d->d_name;
        if (name != "." && name != "..") return false;
    }
    return true;
}

} // namespace

asio::awaitable<state::Result<RestoreReport>> restore_tree(int source_root,
                                                           const layout::Mapper& mapper,
                                                           state::StateStore& state,
                                                           store::ObjectStore& store) {
    using Out = state::Result<RestoreReport>;
    auto in_progress = state.aux_get(state::AuxKind::restoring, "");
    if (!in_progress) co_return Out(std::move(in_progress).error());
    bool resumed = in_progress->has_value();
    if (!resumed) {
        auto held = state.holds_records();
        if (!held) co_return Out(std::move(held).error());
        if (*held)
            co_return Out(state::make_error(EEXIST,
                                            "restore needs an empty state_dir, and {} holds "
                                            "records of this SOURCE",
                                            state.state_dir()));
        auto empty = source_is_empty(source_root);
        if (!empty) co_return Out(std::move(empty).error());
        if (!*empty)
            co_return Out(state::make_error(ENOTEMPTY, "restore needs an empty SOURCE, and SOURCE "
                                                       "is not empty"));
        // Durable before the first change: a crash from here on is resumed by the next restore.
        if (auto marked = state.aux_put(state::AuxKind::restoring, "", ""); !marked)
            co_return Out(std::move(marked).error());
    } else {
        RFS_LOG_INFO("resuming an interrupted restore");
    }
    Restorer restorer(source_root, mapper, state, store);
    auto call = restorer.restore_dir("", std::nullopt);
    auto done = co_await std::move(call);
    if (!done) co_return Out(std::move(done).error());
    auto older_call = restorer.restore_older_links();
    auto older = co_await std::move(older_call);
    if (!older) co_return Out(std::move(older).error());
    restorer.count_unlinked();
    if (auto erased = state.aux_erase(state::AuxKind::restoring, ""); !erased)
        co_return Out(std::move(erased).error());
    restorer.report.resumed = resumed;
    co_return Out(restorer.report);
}

} // namespace rfs::migrate
