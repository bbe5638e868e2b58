#include "lib/migrate/shadow_observer.hpp"

#include "lib/common/log.hpp"

#include <cstring>

namespace rfs::migrate {

void ShadowObserver::on_released(fs::NodeId node, bool written, bool read_to_end) {
    if (written || read_to_end) copy(node, written);
}

void ShadowObserver::on_attr_changed(fs::NodeId node, int to_set) {
    if (to_set & fs::kSetSize) copy(node, true);
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
