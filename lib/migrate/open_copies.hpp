// The Riak objects that open handles of released files read: each such file's only copy.
//
// Natively, a file unlinked, or replaced by a rename, while it is open stays readable through
// its handles until the last one is closed. A released file's data is only in Riak, at the key
// its marker names: deleting that object (the unlink's removal, or the old key's after a rename
// moved the copy) or replacing it (the copy of another file renamed over it) would make those
// handles' reads fail with EIO. So each handle that reads a released file from Riak (and each
// fetch back of one) holds the object's location here, with the file it belongs to; the
// Migrator lets a removal of a held object, and a copy of another file to its key, wait until
// the last hold is let go. A copy of the same file goes on: it follows a fetch back of its data,
// after which its handles read the local file.
//
// Any thread; a short mutex, never held across I/O.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "lib/migrate/release_gate.hpp" // FileId

namespace rfs::migrate {

class OpenCopies {
public:
    // Called (under the lock, so keep it short: the Migrator posts to its loop) when the last
    // hold of a location is let go. Empty: nothing is called.
    void set_on_free(std::function<void()> on_free) {
        std::lock_guard lock(mu_);
        on_free_ = std::move(on_free);
    }

    void hold(const std::string& location, FileId file) {
        std::lock_guard lock(mu_);
        ++holds_[location][file];
    }

    void release(const std::string& location, FileId file) {
        std::lock_guard lock(mu_);
        auto it = holds_.find(location);
        if (it == holds_.end()) return;
        auto by_file = it->second.find(file);
        if (by_file == it->second.end()) return;
        if (--by_file->second == 0) it->second.erase(by_file);
        if (!it->second.empty()) return;
        holds_.erase(it);
        if (on_free_) on_free_();
    }

    bool empty() const {
        std::lock_guard lock(mu_);
        return holds_.empty();
    }
    // Whether any file's handle holds `location`.
    bool held(const std::string& location) const {
        std::lock_guard lock(mu_);
        return holds_.count(location) > 0;
    }
    // Whether a file other than `file` holds `location`.
    bool held_by_other(const std::string& location, FileId file) const {
        std::lock_guard lock(mu_);
        auto it = holds_.find(location);
        if (it == holds_.end()) return false;
        for (const auto& [holder, count] : it->second)
            if (!(holder == file)) return true;
        return false;
    }

private:
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::unordered_map<FileId, unsigned, FileIdHash>> holds_;
    std::function<void()> on_free_;
};

} // namespace rfs::migrate
