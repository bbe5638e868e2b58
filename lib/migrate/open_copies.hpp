// The Riak objects that open handles of released files read: each such file's only copy.
//
// Natively, a file unlinked, or replaced by a rename, while it is open stays readable through
// its handles until the last one is closed. A released file's data is only in Riak, at the key
// its marker names: deleting that object (the unlink's removal, or the old key's after a rename
// moved the copy) or replacing it (the copy of another file renamed over it) would make those
// handles' reads fail with EIO. So each handle that reads a released file from Riak (and each
// fetch back of one) holds the object's location and version here, with the file it belongs
// to; the Migrator lets a removal of a held object, and a copy of another file to its key, wait
// until the last hold is let go. A copy of the same file goes on: it follows a fetch back of its
// data, after which its handles read the local file. A large file's chunks are named by its
// version, not its key (lib/layout/manifest.hpp): after a rename moved the copy, the object at
// the new key names the same chunks, so a removal of any object of a held version, and the
// deletion of chunks a copy replaced, wait too.
//
// Any thread; a short mutex, never held across I/O.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "lib/layout/manifest.hpp"
#include "lib/migrate/release_gate.hpp" // FileId

namespace rfs::migrate {

class OpenCopies {
public:
    // Called (under the lock, so keep it short: the Migrator posts to its loop) when the last
    // hold of a location, or of a version, is let go. Empty: nothing is called.
    void set_on_free(std::function<void()> on_free) {
        std::lock_guard lock(mu_);
        on_free_ = std::move(on_free);
    }

    void hold(const std::string& location, const std::string& version, FileId file) {
        std::lock_guard lock(mu_);
        ++holds_[location][file];
        ++versions_[version];
    }

    void release(const std::string& location, const std::string& version, FileId file) {
        std::lock_guard lock(mu_);
        bool freed = false; // a location or a version no longer held
        if (auto v = versions_.find(version); v != versions_.end() && --v->second == 0) {
            versions_.erase(v);
            freed = true;
        }
        if (auto it = holds_.find(location); it != holds_.end()) {
            if (auto by_file = it->second.find(file);
                by_file != it->second.end() && --by_file->second == 0)
                it->second.erase(by_file);
            if (it->second.empty()) {
                holds_.erase(it);
                freed = true;
            }
        }
        if (freed && on_free_) on_free_();
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
    // Whether a handle holds `location`, or a copy of `version` at any key ("": none).
    bool holds(const std::string& location, const std::string& version) const {
        std::lock_guard lock(mu_);
        return holds_.count(location) > 0 || (!version.empty() && versions_.count(version) > 0);
    }
    // Whether `chunk_key` is a chunk of a held version.
    bool holds_chunk(std::string_view chunk_key) const {
        std::lock_guard lock(mu_);
        for (const auto& [version, count] : versions_)
            if (chunk_key.starts_with(layout::chunk_prefix_for(version))) return true;
        return false;
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
    std::unordered_map<std::string, unsigned> versions_; // held versions, how many holds each
    std::function<void()> on_free_;
};

} // namespace rfs::migrate
