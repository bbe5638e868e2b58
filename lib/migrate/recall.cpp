#include "lib/migrate/recall.hpp"

#include "lib/common/unique_fd.hpp"
#include "lib/migrate/local_pins.hpp"
#include "lib/migrate/migrate_observer.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/migrate/namespace_sync.hpp"
#include "lib/migrate/tree_walk.hpp"
#include "lib/state/placeholder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace rfs::migrate {

namespace {

using Clock = std::chrono::steady_clock;

class Recall {
public:
    Recall(const RecallEnv& env, const std::function<bool(const RecallCounts&)>& progress,
           const std::function<void(const std::string&, const std::string&)>& failure)
        : env_(env), progress_(progress), failure_(failure) {}

    void tick(bool force = false) {
        auto now = Clock::now();
        if (!force && now - last_tick_ < std::chrono::milliseconds(250)) return;
        last_tick_ = now;
        if (progress_ && !progress_(counts_)) counts_.stopped = true;
    }

    // One pass over the tree: fetches back every released file. Returns how many it found
    // released; the first pass also counts the files.
    std::uint64_t pass(const std::string& rel, bool first) {
        std::vector<std::pair<std::string, std::uint64_t>> released;
        WalkOptions options{env_.skip_dev, env_.skip_ino};
        int err = walk_tree(
            env_.source_root, rel, options,
            [&](const WalkEntry& e) {
                if (!S_ISREG(e.st.st_mode)) return true;
                if (first) {
                    ++counts_.files;
                    counts_.bytes += static_cast<std::uint64_t>(e.st.st_size);
                }
                UniqueFd fd(open_file_beneath(env_.source_root, e.path, O_RDONLY));
                if (!fd) return true;
                auto marker = state::read_marker(fd.get());
                if (!marker) {
                    ++counts_.failed;
                    failure_(e.path, "cannot read its marker: " + marker.error().message);
                } else if (*marker) {
                    released.push_back({e.path, (*marker)->size});
                }
                tick();
                return !counts_.stopped;
            },
            [&](const std::string& dir, int e) {
                ++counts_.failed;
                failure_(dir, std::string("cannot list the directory: ") + std::strerror(e));
            });
        if (err == ENOENT) throw std::invalid_argument("'" + rel + "' does not exist in SOURCE");
        if (err != 0)
            throw std::invalid_argument("cannot reach '" + rel +
                                        "' in SOURCE: " + std::strerror(err));
        if (first) counts_.released = released.size();
        for (const auto& [path, size] : released) {
            if (counts_.stopped) break;
            fetch(path, size);
        }
        return released.size();
    }

    void fetch(const std::string& path, std::uint64_t size) {
        UniqueFd fd(open_file_beneath(env_.source_root, path, O_RDWR));
        if (!fd) {
            if (errno == ENOENT) return;
            ++counts_.failed;
            return failure_(path, std::string("cannot open: ") + std::strerror(errno));
        }
        auto answer = std::make_shared<std::promise<int>>();
        auto future = answer->get_future();
        env_.observer->fetch_path(path, std::move(fd),
                                  [answer](int err) { answer->set_value(err); });
        while (future.wait_for(std::chrono::milliseconds(250)) != std::future_status::ready)
            tick();
        if (int err = future.get(); err != 0) {
            ++counts_.failed;
            return failure_(path, err == EIO ? std::string("Riak failed (the daemon's log says "
                                                           "why); run recall again")
                                             : std::string(std::strerror(err)));
        }
        ++counts_.recalled;
        counts_.recalled_bytes += size;
        tick();
    }

    // Deletes the Riak copies of everything recorded under `rel` and waits until Riak confirmed.
    void delete_copies(const std::string& rel, bool is_dir) {
        counts_.deleting = true;
        // A copy that was in flight at the pin may record its object after the first removal:
        // the records are looked at again until none is left.
        for (int round = 0; round < 5 && !counts_.stopped; ++round) {
            std::uint64_t recorded = 0;
            auto scanned =
                env_.state->for_each(rel, [&](std::string_view, const state::FileState&) {
                    ++recorded;
                    return true;
                });
            if (!scanned) throw std::runtime_error(scanned.error().message);
            if (recorded == 0) break;
            counts_.riak_objects += recorded;
            env_.migrator->path_removed(rel);
            wait_for_removals();
        }
        // The records of the directories change too: the entries under `rel` are no longer
        // mapped, so they leave them.
        if (env_.namespaces) {
            if (is_dir)
                env_.namespaces->dir_changed(rel, true);
            else
                env_.namespaces->entry_changed(rel, false);
        }
        counts_.deleting = false;
    }

    void wait_for_removals() {
        // path_removed() is posted to the loop: the removals show in the stats once it ran.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        for (;;) {
            counts_.removals_left = env_.migrator->stats().removals_queued;
            tick();
            if (counts_.removals_left == 0 || counts_.stopped) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }

    RecallCounts counts_;

private:
    const RecallEnv& env_;
    const std::function<bool(const RecallCounts&)>& progress_;
    const std::function<void(const std::string&, const std::string&)>& failure_;
    Clock::time_point last_tick_{};
};

} // namespace

RecallCounts
recall_tree(const RecallEnv& env, const std::string& rel, bool delete_from_riak,
            const std::function<bool(const RecallCounts&)>& progress,
            const std::function<void(const std::string&, const std::string&)>& failure) {
    struct stat st;
    {
        UniqueFd fd(open_file_beneath(env.source_root, rel, O_PATH));
        if (!fd || ::fstat(fd.get(), &st) != 0)
            throw std::invalid_argument("'" + rel + "' does not exist in SOURCE");
    }
    if (auto pinned = env.pins->pin(rel, delete_from_riak ? PinKind::local_only : PinKind::keep);
        !pinned)
        throw std::invalid_argument("cannot record '" + rel +
                                    "' as kept local: " + pinned.error().message);
    Recall recall(env, progress, failure);
    recall.pass(rel, true);
    // A release that was in flight when the pin landed ends after the walk saw the file whole.
    for (int round = 0; round < 3 && !recall.counts_.stopped; ++round)
        if (recall.pass(rel, false) == 0) break;
    if (delete_from_riak && recall.counts_.failed == 0 && !recall.counts_.stopped)
        recall.delete_copies(rel, S_ISDIR(st.st_mode));
    recall.tick(true);
    return recall.counts_;
}

} // namespace rfs::migrate
