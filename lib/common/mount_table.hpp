// Reading the kernel's mount table (/proc/self/mountinfo): what the daemon checks before it
// mounts (a riakfs mount already there) and what riakfsctl checks before it talks to a mount.
#pragma once

#include <optional>
#include <string>

namespace rfs {

struct MountEntry {
    std::string type;   // "fuse.riakfs", "ext4", ...
    std::string source; // the mount's source field (riakfs: SOURCE's absolute path)
};

// Undoes the octal escapes (\040 for a space, ...) of a path in /proc/self/mountinfo.
std::string unescape_mountinfo(const std::string& text);

// The topmost mount at exactly `dir` (absolute, as the mount table names it), or nullopt when
// nothing is mounted there. Later lines of mountinfo are mounts stacked later.
std::optional<MountEntry> topmost_mount(const std::string& dir);

} // namespace rfs
