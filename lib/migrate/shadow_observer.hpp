// mode=shadow: every file written and closed, or read to its end, is handed to the Migrator,
// which copies it into Riak in the background; the file system itself serves SOURCE unchanged.
// The hooks run on event-loop threads: they find the file's path (one readlink) and post it,
// nothing more.
#pragma once

#include "lib/fs/local_fs.hpp"
#include "lib/migrate/migrator.hpp"

namespace rfs::migrate {

class ShadowObserver : public fs::FsObserver {
public:
    ShadowObserver(fs::LocalFs& fs, Migrator& migrator) : fs_(fs), migrator_(migrator) {}

    void on_released(fs::NodeId node, bool written, bool read_to_end) override;
    // A truncate(2) by path changes a file nobody may have open: copy it now.
    void on_attr_changed(fs::NodeId node, int to_set) override;

protected:
    void copy(fs::NodeId node, bool written);

    fs::LocalFs& fs_;
    Migrator& migrator_;
};

} // namespace rfs::migrate
