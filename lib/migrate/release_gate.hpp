// Keeps mode=move's release of a file's data apart from everything that needs that data locally.
//
// Releasing punches a file's data out of SOURCE (lib/state/placeholder.hpp). That is safe only
// while no handle reads or writes the local bytes: a handle opened for writing, a read-only handle
// that reads SOURCE (not Riak), a truncate by path, or a fetch that is bringing a released file's
// data back. Each of those *pins* the file (by st_dev/st_ino, so every name of a hard-linked file
// counts) for as long as it lasts; the migrator releases a file only when nothing pins it, and
// while it releases one, new pins of that file wait until it is done (a few local system calls).
// So an open either sees the file whole and pins it, or sees the finished placeholder and reads
// Riak (or fetches the data back first, to write).
//
// Any thread. The lock is held only across the short local calls of `decide` (see with_file) and
// of a release, never across the network.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace rfs::migrate {

struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    bool operator==(const FileId&) const = default;
};

struct FileIdHash {
    std::size_t operator()(const FileId& id) const {
        return std::hash<std::uint64_t>()(static_cast<std::uint64_t>(id.ino) *
                                              0x9e3779b97f4a7c15ULL ^
                                          static_cast<std::uint64_t>(id.dev));
    }
};

class ReleaseGate {
public:
    // Runs `decide(pin)` under the lock once `id` is not being released; `pin()` (callable at
    // most once inside) pins the file. Returns what `decide` returns.
    template <class Decide> auto with_file(FileId id, Decide decide) {
        std::unique_lock lock(mu_);
        released_cv_.wait(lock, [&] { return !releasing_.count(id); });
        return decide([&] { ++pins_[id]; });
    }
    // with_file() for a thread that must not wait (the migrator's loop, which a release in
    // progress needs): false, and nothing run, while `id` is being released.
    template <class Decide> bool try_with_file(FileId id, Decide decide) {
        std::lock_guard lock(mu_);
        if (releasing_.count(id)) return false;
        decide([&] { ++pins_[id]; });
        return true;
    }
    void unpin(FileId id);

    // The migrator's side: false (nothing done) while the file is pinned.
    // On true the caller releases the file and then calls end_release().
    bool begin_release(FileId id);
    void end_release(FileId id);

    std::size_t pinned_files() const;

private:
    mutable std::mutex mu_;
    std::condition_variable released_cv_;
    std::unordered_map<FileId, unsigned, FileIdHash> pins_;
    std::unordered_set<FileId, FileIdHash> releasing_;
};

} // namespace rfs::migrate
