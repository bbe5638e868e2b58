#include "lib/migrate/shadow_observer.hpp"

#include "lib/common/log.hpp"

#include <cstdio> // RENAME_EXCHANGE
#include <cstring>

namespace rfs::migrate {

void ShadowObserver::on_released(fs::NodeId node, bool written, bool read_to_end) {
    if (written || read_to_end) copy(node, written);
}

void ShadowObserver::on_attr_changed(fs::NodeId node, int to_set) {
    if (to_set & fs::kSetSize) copy(node, true);
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

void ShadowObserver::on_unlinked(fs::NodeId parent, std::string_view name, bool /*dir*/) {
    std::string path;
    if (child_path(parent, name, &path)) migrator_.path_removed(std::move(path));
}

void ShadowObserver::on_renamed(fs::NodeId parent, std::string_view name, fs::NodeId newparent,
                                std::string_view newname, unsigned flags) {
    // Runs after the rename: the two directories have not moved, only the entries in them.
    std::string from, to;
    if (!child_path(parent, name, &from) || !child_path(newparent, newname, &to)) return;
    migrator_.path_renamed(std::move(from), std::move(to), (flags & RENAME_EXCHANGE) != 0);
}

void ShadowObserver::copy(fs::NodeId node, bool written) {
    std::string path;
    int err = fs_.relative_path(node, &path);
    if (err == ENOENT) return; // removed while open: nothing left to copy
    if (err != 0) {
        RFS_LOG_WARN("cannot find the path of node {} to copy it: {}", node, std::strerror(err));
        return;
    }
    if (path.empty()) return; // SOURCE itself
    migrator_.file_closed(std::move(path), written);
}

} // namespace rfs::migrate
