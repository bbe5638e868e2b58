#include "lib/migrate/shadow_observer.hpp"

#include "lib/common/log.hpp"
#include "lib/state/placeholder.hpp"

#include <cstdio> // RENAME_EXCHANGE
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>

namespace rfs::migrate {

std::uint64_t ShadowObserver::note_touch(IntentJournal::Kind kind, const std::string& path,
                                         unsigned parts) {
    return journal_ ? journal_->note_touch(kind, path, parts) : 0;
}

void ShadowObserver::on_created(fs::NodeId parent, std::string_view name, const fs::Entry& entry) {
    if (!ns_) return;
    std::string path;
    if (!child_path(parent, name, &path)) return;
    const bool dir = S_ISDIR(entry.attr.st_mode);
    touched(std::move(path),
            dir ? IntentJournal::Kind::made_dir : IntentJournal::Kind::touched_names);
}

void ShadowObserver::touched(std::string path, IntentJournal::Kind kind, std::uint64_t note) {
    using Kind = IntentJournal::Kind;
    if (!ns_) return;
    if (note == 0) note = note_touch(kind, path, kind == Kind::made_dir ? 2 : 1);
    if (kind == Kind::made_dir) ns_->dir_changed(path, false, note); // its own (empty) record
    ns_->entry_changed(std::move(path), kind != Kind::touched, note);
}

void ShadowObserver::on_linked(fs::NodeId node, fs::NodeId newparent, std::string_view newname) {
    if (!ns_) return;
    std::string path, other;
    if (child_path(newparent, newname, &path))
        touched(std::move(path), IntentJournal::Kind::touched_names);
    // The link count of the file's other name changed too (with more names, the ones not found
    // here keep a stale count until their directory changes; their shared `inode` is exact).
    if (node_path(node, &other)) ns_->entry_changed(std::move(other), false);
}

void ShadowObserver::on_released(fs::NodeId node, bool written, bool read_to_end) {
    if (!written && !read_to_end) return;
    // One path lookup for the copy and the namespace record.
    std::string path;
    if (!path_to_copy(node, &path)) return;
    if (!written) return migrator_.file_closed(std::move(path), false);
    closed(std::move(path));
}

void ShadowObserver::closed(std::string path, std::uint64_t note) {
    if (note == 0) note = note_touch(IntentJournal::Kind::closed, path, ns_ ? 2 : 1);
    if (ns_) ns_->entry_changed(path, false, note);
    migrator_.file_closed(std::move(path), true, note);
}

void ShadowObserver::on_attr_changed(fs::NodeId node, int to_set) {
    // A truncate(2) by path changes a file nobody may have open: copied now, as at a close.
    if (!(to_set & fs::kSetSize) && !ns_) return;
    std::string path;
    if (!node_path(node, &path)) return;
    if (to_set & fs::kSetSize)
        closed(std::move(path));
    else
        touched(std::move(path), IntentJournal::Kind::touched);
}

void ShadowObserver::on_other_name_changed(std::string_view rel_path) {
    // Its record's link count (with more names, the others keep a stale count until their
    // directory changes; their shared `inode` is exact, as after on_linked).
    touched(std::string(rel_path), IntentJournal::Kind::touched);
}

bool ShadowObserver::node_path(fs::NodeId node, std::string* out) {
    int err = fs_.relative_path(node, out);
    if (err == ENOENT) return false; // removed meanwhile: its unlink marked the directory
    if (err != 0) {
        RFS_LOG_WARN("cannot find the path of node {}: {}", node, std::strerror(err));
        return false;
    }
    return true;
}

bool ShadowObserver::child_path(fs::NodeId parent, std::string_view name, std::string* out) {
    std::string dir;
    int err = fs_.relative_path(parent, &dir);
    if (err != 0) {
        RFS_LOG_WARN("cannot find the path of directory node {} for {}: {}", parent, name,
                     std::strerror(err));
        return false;
    }
    *out = dir.empty() ? std::string(name) : dir + "/" + std::string(name);
    return true;
}

namespace {

// `durable` (if given) becomes true when the entry may be or hold a released file's placeholder.
IntentJournal::Identity identity_of(int dir_fd, const char* name, bool* found,
                                    bool* durable = nullptr) {
    struct stat st;
    *found = ::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!*found) return {};
    if (durable && state::may_hold_released_data(dir_fd, name, st.st_mode)) *durable = true;
    return IntentJournal::Identity{st.st_dev, st.st_ino};
}

} // namespace

fs::NotedChange ShadowObserver::before_unlink(fs::NodeId parent, int dir_fd, const char* name,
                                              bool dir) {
    fs::NotedChange change;
    if (!child_path(parent, name, &change.from)) return change;
    change.paths = true;
    if (!journal_) return change;
    bool found = false;
    IntentJournal::Identity id = identity_of(dir_fd, name, &found);
    if (found)
        change.note = journal_->note(dir ? IntentJournal::Kind::rmdir : IntentJournal::Kind::unlink,
                                     change.from, {}, id, {});
    return change;
}

fs::NotedChange ShadowObserver::before_rename(fs::NodeId parent, int dir_fd, const char* name,
                                              fs::NodeId newparent, int newdir_fd,
                                              const char* newname, unsigned flags) {
    fs::NotedChange change;
    if (!child_path(parent, name, &change.from) || !child_path(newparent, newname, &change.to))
        return change;
    change.paths = true;
    if (!journal_) return change;
    const bool exchange = (flags & RENAME_EXCHANGE) != 0;
    bool found = false, other_found = !exchange, durable = false;
    IntentJournal::Identity moving = identity_of(dir_fd, name, &found, &durable), other;
    if (exchange) other = identity_of(newdir_fd, newname, &other_found, &durable);
    if (found && other_found)
        change.note =
            journal_->note(exchange ? IntentJournal::Kind::exchange : IntentJournal::Kind::rename,
                           change.from, change.to, moving, other, 1, durable);
    return change;
}

void ShadowObserver::change_not_made(fs::NotedChange& change) {
    if (journal_) journal_->not_made(change.note);
}

void ShadowObserver::on_unlinked(fs::NodeId parent, std::string_view name, bool dir,
                                 fs::NotedChange& change) {
    if (journal_) journal_->made(change.note);
    std::string path = std::move(change.from);
    if (!change.paths && !child_path(parent, name, &path)) return;
    removed(std::move(path), dir, change.note);
}

void ShadowObserver::removed(std::string path, bool dir, std::uint64_t note) {
    if (ns_) {
        if (dir) ns_->dir_changed(path); // its record (and any below it) goes
        ns_->entry_changed(path, true);
    }
    migrator_.path_removed(std::move(path), note);
}

void ShadowObserver::on_renamed(fs::NodeId parent, std::string_view name, fs::NodeId newparent,
                                std::string_view newname, unsigned flags, fs::NotedChange& change) {
    if (journal_) journal_->made(change.note);
    // Found before the rename: the two directories do not move, only the entries in them.
    std::string from = std::move(change.from), to = std::move(change.to);
    if (!change.paths && (!child_path(parent, name, &from) || !child_path(newparent, newname, &to)))
        return;
    renamed(std::move(from), std::move(to), (flags & RENAME_EXCHANGE) != 0, change.note);
}

void ShadowObserver::renamed(std::string from, std::string to, bool exchange, std::uint64_t note) {
    if (ns_) ns_->renamed(from, to);
    migrator_.path_renamed(std::move(from), std::move(to), exchange, note);
}

void ShadowObserver::record_unrecorded() {
    if (!journal_) return;
    using Kind = IntentJournal::Kind;
    for (const auto& intent : journal_->unrecorded()) {
        switch (intent.kind) {
        case Kind::unlink:
        case Kind::rmdir:
            removed(intent.from, intent.kind == Kind::rmdir, intent.id);
            break;
        case Kind::rename:
        case Kind::exchange:
            renamed(intent.from, intent.to, intent.kind == Kind::exchange, intent.id);
            break;
        case Kind::closed:
            // Copied only if Riak lacks this content (a close read to the end: the copy may
            // have been made already), and only if the path holds a regular file: a gone one's
            // record belongs to its rename or unlink (handed back above, or recorded before the
            // stop), and a close made up for it would take its object for a copy that never
            // comes (and delete it: a released file's only copy, on its way to the new key).
            if (ns_) ns_->entry_changed(intent.from, false, intent.id);
            if (migrator_.holds_regular_file(intent.from))
                migrator_.file_closed(intent.from, false, intent.id);
            else
                journal_->recorded(intent.id);
            break;
        default:
            touched(intent.from, intent.kind, intent.id);
        }
    }
}

bool ShadowObserver::path_to_copy(fs::NodeId node, std::string* path) {
    int err = fs_.relative_path(node, path);
    if (err == ENOENT) return false; // removed while open: nothing left to copy
    if (err != 0) {
        RFS_LOG_WARN("cannot find the path of node {} to copy it: {}", node, std::strerror(err));
        return false;
    }
    return !path->empty(); // not SOURCE itself
}

void ShadowObserver::on_dir_synced() {
    if (journal_) journal_->sync_outstanding();
}

} // namespace rfs::migrate
