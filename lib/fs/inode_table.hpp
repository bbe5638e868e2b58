// The in-memory inode table: the kernel's node ids <-> local objects under SOURCE.
// Any thread; one mutex guards the maps and every lookup count.
//
// Node ids come from a 64-bit counter and are never reused within a mount, so the generation
// number can stay 0 (EXPORT_SUPPORT stays off). Each inode holds an O_PATH descriptor of its
// object, which keeps the object reachable across renames without remembering any path.
// Kept small on purpose: see the bytes-per-inode unit test.
#pragma once

#include "lib/common/unique_fd.hpp"

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace rfs::fs {

using NodeId = std::uint64_t;
inline constexpr NodeId kRootNodeId = 1;

// Identity of a local object: two names for the same object (hard links) share one inode.
struct SrcId {
    dev_t dev;
    ino_t ino;
    bool operator==(const SrcId&) const = default;
};

struct SrcIdHash {
    size_t operator()(const SrcId& id) const noexcept {
        return std::hash<std::uint64_t>()(id.ino * 0x9e3779b97f4a7c15ULL ^ id.dev);
    }
};

// The inode numbers shown through the mount. The mount has one st_dev, so objects on other file
// systems mounted inside SOURCE must not show their own numbers: two fresh tmpfs mounts number
// identically, and cp -a, tar, rsync -H and du would take unrelated files for hard links. SOURCE's
// own device keeps its real numbers (they match what tools saw before the mount); each other
// device gets a small index, in order of first sight, placed in the top 16 bits. Stable for the
// mount's life. Any thread.
class InoMap {
public:
    explicit InoMap(dev_t home) : home_(home) {}
    ino_t map(dev_t dev, ino_t ino);

    static constexpr int kShift = 48;

private:
    const dev_t home_;
    std::mutex mu_;
    std::vector<dev_t> others_; // index i + 1 is others_[i]
    bool warned_ = false;       // guarded by mu_
};

class Inode {
public:
    Inode(NodeId id, SrcId src, UniqueFd fd, mode_t type)
        : id_(id), src_(src), fd_(std::move(fd)), type_(type) {}
    Inode(const Inode&) = delete;
    Inode& operator=(const Inode&) = delete;

    NodeId id() const { return id_; }
    SrcId src() const { return src_; }
    // O_PATH | O_NOFOLLOW descriptor of the object itself (a symlink's is the link's).
    int fd() const { return fd_.get(); }
    mode_t type() const { return type_; }
    bool is_dir() const { return S_ISDIR(type_); }
    bool is_symlink() const { return S_ISLNK(type_); }

private:
    friend class InodeTable;
    const NodeId id_;
    const SrcId src_;
    UniqueFd fd_;
    const mode_t type_;
    std::uint64_t nlookup_ = 0; // guarded by InodeTable::mu_
};

class InodeTable {
public:
    // The root is never forgotten: the kernel holds it for the mount's whole life.
    InodeTable(UniqueFd root_fd, const struct stat& root_stat);

    // Returns the inode for the object `fd` (an O_PATH descriptor) with status `st`, adding it if
    // new, and counts one kernel lookup on it. `fd` is closed when an inode already exists.
    std::shared_ptr<Inode> add_lookup(UniqueFd fd, const struct stat& st);

    // The inode the kernel calls `id`, or null if the kernel sent an id it was never given.
    std::shared_ptr<Inode> get(NodeId id) const;
    const std::shared_ptr<Inode>& root() const { return root_; }

    // Drops `n` kernel lookups; at zero the inode leaves the table (in-flight users keep it
    // alive through their shared_ptr). Returns false on an unknown id or an underflow.
    bool forget(NodeId id, std::uint64_t n);

    // Undo one lookup counted for an entry reply the kernel never received.
    void unlookup(NodeId id) { forget(id, 1); }

    size_t size() const;
    std::uint64_t lookup_count(NodeId id) const;

    // The st_ino the kernel is shown for the object (dev, ino).
    ino_t st_ino(dev_t dev, ino_t ino) { return inos_.map(dev, ino); }

private:
    mutable std::mutex mu_;
    std::shared_ptr<Inode> root_;
    NodeId next_id_ = kRootNodeId + 1;
    std::unordered_map<NodeId, std::shared_ptr<Inode>> by_id_;
    std::unordered_map<SrcId, NodeId, SrcIdHash> by_src_;
    InoMap inos_;
};

} // namespace rfs::fs
