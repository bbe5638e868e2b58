// One walk of a subtree of SOURCE for riakfsctl's verify, recall and plan (and the offline
// plan of riakfsctl): every directory and regular file at and under a path, beneath the source
// root descriptor, by the rules the drain's walk follows (drain.hpp): no symlink followed,
// nothing outside SOURCE reached, no FUSE mount inside SOURCE entered (it may be this very
// mount), a skipped directory (state_dir inside SOURCE) never entered. Entries come in bytewise
// order of their paths within each directory, directories before what they hold.
//
// Blocking file-system work: run it on a thread of its own, never on an event loop.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <string>

namespace rfs::migrate {

struct WalkOptions {
    dev_t skip_dev = 0; // a directory never entered (skip_ino 0: none)
    ino_t skip_ino = 0;
};

struct WalkEntry {
    std::string path; // relative to SOURCE ("" = SOURCE itself)
    struct stat st {};
    bool is_dir = false;
};

// Visits `rel` itself (a directory or a regular file; anything else is visited as it is) and,
// for a directory, everything under it. The visitor returns false to stop the walk. A directory
// that cannot be listed goes to `on_error` (path, errno) and the walk goes on. Returns the errno
// of `rel` itself when it cannot be reached (ENOENT: nothing there), else 0.
int walk_tree(int source_root, const std::string& rel, const WalkOptions& options,
              const std::function<bool(const WalkEntry&)>& visit,
              const std::function<void(const std::string&, int)>& on_error);

// The rule both walks (this one and the drain's) apply to a directory they reached, open as
// `fd`, `st` its stat, found in a directory of device `parent_dev`: false for a FUSE mount inside
// SOURCE (it may be this very mount) and for the skipped directory, which are never entered.
bool walk_enters(int fd, const struct stat& st, dev_t parent_dev, dev_t skip_dev, ino_t skip_ino);

// Opens `rel` beneath SOURCE (no symlink followed) with `flags` (O_RDONLY, O_RDWR, ...).
// -1 with errno set.
int open_file_beneath(int source_root, const std::string& rel, int flags);

} // namespace rfs::migrate
