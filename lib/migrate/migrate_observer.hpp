// The Riak modes' file-system hooks: shadow's copying (ShadowObserver), and on top of it what
// depends on Riak holding a file's data.
//
// mode=migrate (serve_verified): at a read-only open, on_open() looks up the file's state record:
// when it says verified and still describes the local file (size, mtime, ctime, inode), the reads
// of that handle go to the RiakReader on the Migrator's loop and are answered from there. Opens
// for writing stay local, and the shadow hooks copy the file again after the close: writes go to
// both, the local file at once and Riak once the new copy is verified (until then every new open
// reads the local file). A served handle checks the file before every read (fstat): once it was
// changed (through another handle or beside the mount), that handle reads SOURCE again. Riak
// failing (unreachable, slow beyond the reader's riak_timeout, or answering something else than
// the recorded copy) never fails such a read: it is answered from the local file, logged once per
// file, and the handle reads SOURCE from then on. Another version in Riak, or bytes that fail
// their SHA-256, also queue a new copy of the local file.
//
// Released files (mode=move; also restored trees, in every Riak mode): the placeholder holds no
// data, and its marker (lib/state/placeholder.hpp) says which Riak version does. Read-only opens
// of one are served from Riak with no local fall-back: a Riak failure is EIO after a bounded wait
// (ReaderOptions::released_timeout). An open for writing, and a truncate by path, answer
// kNeedsData: fetch_data() writes the whole content back into the file from Riak (on the
// Migrator's loop), removes the marker, and the daemon opens again. The state record then says
// verified again, so the file is released again only once its changes are copied and verified.
//
// Every handle that uses local data (writers, and readers not served by a released file's Riak
// copy) pins the file in the ReleaseGate until it closes, so the migrator never releases data
// that a handle is reading or writing.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lib/migrate/lookup_prefetch.hpp"
#include "lib/migrate/release_gate.hpp"
#include "lib/migrate/riak_reader.hpp"
#include "lib/migrate/shadow_observer.hpp"
#include "lib/migrate/sibling_prefetch.hpp"
#include "lib/state/state_store.hpp"

namespace rfs::migrate {

// The event loop whose thread calls, and an object store of its own on that loop (riakfs: a
// Riak client per FUSE loop).
struct LoopStore {
    boost::asio::io_context* context = nullptr; // null: the calling thread runs no such loop
    store::ObjectStore* store = nullptr;
};

struct MigrateObserverOptions {
    bool serve_verified = true; // mode=migrate and move; shadow reads SOURCE while it can
    bool release = false;       // mode=move: every close may let the migrator release the file
    // The calling thread's LoopStore (any thread). When it has one, a file's fetch at its
    // LOOKUP or OPEN is made there (RiakReader::prefetch_here), not on the migration loop.
    std::function<LoopStore()> calling_loop;
    // SOURCE (a descriptor the observer does not own), whose directories are listed to fetch a
    // directory's small files ahead of a reader that opens them in order (sibling_prefetch.hpp).
    // -1: no such fetch.
    int source_root = -1;
};

class MigrateObserver final : public ShadowObserver {
public:
    // `reader` runs on `migrator`'s loop (Migrator::context()).
    MigrateObserver(fs::LocalFs& fs, Migrator& migrator, state::StateStore& state,
                    std::shared_ptr<RiakReader> reader, ReleaseGate& gate,
                    MigrateObserverOptions options = {})
        : ShadowObserver(fs, migrator), state_(state), reader_(std::move(reader)), gate_(gate),
          options_(options), siblings_(make_sibling_prefetch(options.source_root)) {}

    void on_looked_up(const fs::Entry& entry) override;
    fs::OpenPlan on_open(fs::NodeId node, int flags, int fd) override;
    fs::OpenPlan on_created_open(fs::NodeId node, int flags, int fd,
                                 const struct stat& st) override;
    int set_times(fs::NodeId node, fs::SrcId src, const timespec* times,
                  const std::function<int()>& apply) override;
    void on_unpinned(fs::NodeId node) override;
    void fetch_data(fs::NodeId node, UniqueFd fd, Callback<void(int)> done) override;
    // fetch_data() for a file known by its path relative to SOURCE (riakfsctl recall): `fd` is
    // the file opened for writing beneath SOURCE. `done(0)` once its data is back, fsynced and
    // its marker gone (at once when it has none); `done(EIO)` when Riak failed (logged).
    void fetch_path(std::string rel_path, UniqueFd fd, Callback<void(int)> done);
    void on_released(fs::NodeId node, bool written, bool read_to_end) override;
    void on_renamed(fs::NodeId parent, std::string_view name, fs::NodeId newparent,
                    std::string_view newname, unsigned flags, fs::NotedChange& change) override;
    // Refused (EINVAL) when either side is a directory or a released file: Riak's copies cannot
    // swap keys in one step, and a released file's only copy must never be overwritten by the
    // other's (see README, "Known limits").
    int exchange(fs::NodeId parent, int dir_fd, const char* name, fs::NodeId newparent,
                 int newdir_fd, const char* newname, const std::function<int()>& exchange) override;

    // Reads answered from Riak and from the local file after a failed attempt (any thread).
    std::uint64_t riak_reads() const { return riak_reads_.load(std::memory_order_relaxed); }
    std::uint64_t local_fallbacks() const { return fallbacks_.load(std::memory_order_relaxed); }

private:
    friend class RiakServedFile;
    struct Fetch;
    // Whether this is the first failure reported for `path` (bounded: forgets all at 10000).
    bool first_failure(const std::string& path);
    // `*path` is set to the file's path when it is served from Riak.
    std::unique_ptr<fs::RemoteReads> serve_verified(fs::NodeId node, const struct stat& st,
                                                    std::optional<LookupPrefetch::Found> looked_up,
                                                    std::string* path);
    static std::unique_ptr<SiblingPrefetch> make_sibling_prefetch(int source_root);
    // The small file at `path` was opened and is read from Riak: after the reply (on the calling
    // thread's loop), fetch the files a reader in order opens next.
    void fetch_siblings(std::string path, off_t size);
    boost::asio::awaitable<void> fetch_back(FileId id, std::shared_ptr<UniqueFd> fd,
                                            std::string path);
    void fetch_done(FileId id, int err);
    // Starts fetching the file `rec` describes: on the calling thread's loop when it has a
    // store, else on the migration loop.
    void prefetch(state::FileState rec, const LoopStore& here);
    LoopStore calling_loop() const {
        return options_.calling_loop ? options_.calling_loop() : LoopStore{};
    }
    // A handle of `node` (the file `id`) pinned it in the gate: on_unpinned() gives it back.
    void note_pin(fs::NodeId node, const FileId& id);
    // Pins `node` (the file `id`) once no release of it is in progress (note_pin() too).
    void pin_when_not_releasing(fs::NodeId node, const FileId& id);

    state::StateStore& state_;
    std::shared_ptr<RiakReader> reader_;
    ReleaseGate& gate_;
    const MigrateObserverOptions options_;
    LookupPrefetch lookup_prefetch_; // fetch small verified files at LOOKUP, while it pays
    std::unique_ptr<SiblingPrefetch> siblings_; // null: no source_root
    std::atomic<std::uint64_t> riak_reads_{0};
    std::atomic<std::uint64_t> fallbacks_{0};
    std::mutex logged_mu_;
    std::unordered_set<std::string> logged_;

    std::mutex pins_mu_; // after the gate's lock when both are held
    struct NodePin {
        FileId id;
        unsigned count = 0;
    };
    std::unordered_map<fs::NodeId, NodePin> node_pins_;

    // A file's fetch back in progress: who waits for it, and the times a user set meanwhile,
    // which its end applies instead of the marker's (UTIME_OMIT: none set).
    struct FetchInProgress {
        std::vector<Callback<void(int)>> waiting;
        timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    };
    std::mutex fetch_mu_; // also held across a fetch's and a user's setting of the times
    std::unordered_map<FileId, FetchInProgress, FileIdHash> fetches_;
};

} // namespace rfs::migrate
