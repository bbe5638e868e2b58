// The in-memory inode table: the kernel's node ids <-> local objects under SOURCE.
// Any thread; one mutex guards the maps and every lookup count, a second one the descriptor cache.
//
// Node ids come from a 64-bit counter and are never reused within a mount, so the generation
// number can stay 0 (EXPORT_SUPPORT stays off). An object is found again by (st_dev, st_ino);
// since a source may give a removed object's number to a new one while the kernel still holds
// the old inode, a hit whose inode is reached by file handle compares handles (which carry the
// source's generation), and a different object gets a new node.
//
// Each inode must reach its object again without remembering a path, across renames. A tree can
// hold more objects than the daemon may open, and the kernel may remember all of them, so an
// inode keeps the object's file handle (name_to_handle_at) and is reopened with
// open_by_handle_at when a request needs it. Where the file system gives no handles (or the
// daemon may not open them), the inode keeps its parent and name instead and is reopened
// relative to the parent, checking that the same object is still there. Open O_PATH descriptors
// save the reopening: the first inodes, up to a budget (a fraction of RLIMIT_NOFILE), keep theirs;
// the others share a small LRU cache. When the daemon runs out of descriptors, the cache and
// then the kept ones are let go (shed()), so applications' own opens still succeed. An inode that
// keeps its descriptor on a file system whose handles are known to work gets its handle only
// when shed() lets the descriptor go: most never need one, and a lookup saves a system call.
// Kept small on purpose: see the bytes-per-inode unit test.
#pragma once

#include "lib/common/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
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

// A descriptor borrowed from the table for the length of one request: an O_PATH descriptor of
// the object itself (a symlink's is the link's). Evicting it from the cache meanwhile does not
// close it. Empty (get() < 0) when the object could not be reached; error() says why.
class FdRef {
public:
    FdRef() = default;
    static FdRef failed(int err) {
        FdRef r;
        r.err_ = err;
        return r;
    }
    int get() const { return fd_; }
    int error() const { return err_; }
    explicit operator bool() const { return fd_ >= 0; }

private:
    friend class InodeTable;
    int fd_ = -1;
    int err_ = 0;
    std::shared_ptr<const UniqueFd> owned_; // null for a descriptor the inode keeps itself
};

class Inode {
public:
    Inode(NodeId id, SrcId src, mode_t type);
    ~Inode();
    Inode(const Inode&) = delete;
    Inode& operator=(const Inode&) = delete;

    NodeId id() const { return id_; }
    SrcId src() const;
    mode_t type() const { return type_; }
    bool is_dir() const { return S_ISDIR(type_); }
    bool is_regular() const { return S_ISREG(type_); }
    bool is_symlink() const { return S_ISLNK(type_); }

private:
    friend class InodeTable;
    struct Named; // parent and name, for objects without a file handle

    // How the object is reached again: one word, tagged in its low bits (see inode_table.cpp),
    // and room for a small file handle. Set when the inode is created; only a Named's contents
    // change later (under the table's mutex).
    int kept_fd() const;
    bool has_handle() const;
    // Writes the file handle into `out` (sizeof(file_handle) + MAX_HANDLE_SZ bytes).
    void copy_handle(struct ::file_handle* out) const;
    Named* named() const;

    static constexpr size_t kInlineHandle = 16;

    const NodeId id_;
    const ino_t ino_;
    std::uint64_t nlookup_ = 0; // guarded by InodeTable::mu_
    // Atomic because shed() may give a pinned inode its file handle while other threads use it.
    std::atomic<std::uintptr_t> reach_{0};
    const std::uint32_t dev_;  // the kernel's 32-bit encoding (major << 20 | minor)
    const std::uint16_t type_; // S_IFMT bits
    std::uint16_t mount_ = 0;  // with a file handle: index of its file system's descriptor
    // A file handle of up to 16 bytes (ext4, xfs, tmpfs); larger ones live on the heap.
    // The inode is then 56 bytes: with make_shared's 16, exactly one 80-byte malloc chunk.
    unsigned char inline_handle_[kInlineHandle];
};

class InodeTable {
public:
    // The root is never forgotten: the kernel holds it for the mount's whole life.
    InodeTable(UniqueFd root_fd, const struct stat& root_stat);
    ~InodeTable();

    // How many descriptors inodes may keep open for themselves (`kept`), and how many more the
    // cache of reopened ones may hold. Call before the first lookup. Unlimited by default.
    void set_fd_budget(size_t kept, size_t cached);

    // Returns the inode for the object `fd` (an O_PATH descriptor) with status `st`, found as
    // `name` in `parent`, adding it if new, and counts one kernel lookup on it. The table takes
    // `fd` (closing it when the inode already exists). `parent` and `name` are only kept for an
    // object that can be reached no other way.
    std::shared_ptr<Inode> add_lookup(UniqueFd fd, const struct stat& st,
                                      const std::shared_ptr<Inode>& parent = nullptr,
                                      std::string_view name = {});

    // The inode the kernel calls `id`, or null if the kernel sent an id it was never given.
    std::shared_ptr<Inode> get(NodeId id) const;
    // The id the kernel knows the object `src` by, or 0 when the kernel holds none.
    NodeId find(SrcId src) const;
    const std::shared_ptr<Inode>& root() const { return root_; }

    // An O_PATH descriptor of `inode`'s object, reopened if the inode does not keep one.
    FdRef path_fd(const Inode& inode);

    // Runs `attempt` (0, or the errno it failed with) and, while it fails for want of
    // descriptors (EMFILE, ENFILE), lets the table's go (shed()) and runs it again, until the
    // table has none left to let go. Returns the last attempt's result. Any thread, no lock held.
    // Every call that opens a descriptor while serving a request goes through this: the
    // descriptors the table keeps for speed must never cost an application an EMFILE.
    template <class Attempt> int with_descriptors(Attempt attempt) {
        for (int round = 0;; ++round) {
            std::uint64_t sheds = shed_generation();
            int err = attempt();
            if ((err != EMFILE && err != ENFILE) || round == kMaxShedRounds || !shed(sheds))
                return err;
        }
    }

    // For a caller whose open failed with EMFILE or ENFILE, `since` being shed_generation() as
    // read before that open: whether a retry can help. If another caller let descriptors go in
    // the meantime, that is enough (true at once). Otherwise the cache is emptied; if it held
    // none, the kept descriptors go too and none are kept from then on. False only when the
    // table had nothing left to let go. One shed at a time: a caller that comes while another
    // sheds waits for it, and is then told to retry.
    bool shed(std::uint64_t since);
    // The same for a caller that read no generation (tests): sheds unless another shed let
    // descriptors go at this very moment.
    bool shed() { return shed(shed_generation()); }
    // Counts the sheds that let descriptors go, each once they are closed.
    std::uint64_t shed_generation() const { return sheds_.load(std::memory_order_acquire); }

    // A seam for tests: the instants of shed() at which another thread's path_fd() can run
    // between its steps, in order. A hook set here is called at each of them with no lock of the
    // table held but shed()'s own (another shed() waits), so that a test can hold shed() there
    // while another thread reaches the inodes it is changing: that is the only way to make such
    // a window happen on every run. Null outside tests; shed() runs only once descriptors ran
    // out, and then tests one pointer.
    enum class ShedStep {
        cache_dropped, // the cache is emptied; nothing else changed yet
        handles_made,  // the deferred inodes' handles are made, not yet given
        released,      // the kept descriptors are taken away and closed
    };
    using ShedHook = void (*)(void* arg, ShedStep step);
    void set_shed_hook(ShedHook hook, void* arg) {
        shed_hook_ = hook;
        shed_hook_arg_ = arg;
    }

    // `dev`/`ino` was renamed to `name` in `parent`: an inode reached by name follows it.
    void moved(SrcId src, const std::shared_ptr<Inode>& parent, std::string_view name);
    // Whether any inode is reached by name (only then do renames need to tell the table).
    bool tracks_names() const;

    // Drops `n` kernel lookups; at zero the inode leaves the table (in-flight users keep it
    // alive through their shared_ptr). Returns false on an unknown id or an underflow.
    bool forget(NodeId id, std::uint64_t n);

    // forget() for `count` inodes, `at(i)` giving the i-th (id, n) pair. The kernel sends
    // thousands at once after its caches are dropped, while applications look names up on the
    // other loops: the locks are taken once per group of forgets rather than for each, and the
    // descriptors they free are closed after the locks are let go. Returns how many did not match.
    template <class At> size_t forget_batch(size_t count, At at) {
        size_t mismatched = 0;
        for (size_t i = 0; i < count;) {
            Released released; // destroyed after the locks below
            std::lock_guard lock(mu_);
            std::lock_guard cache_lock(cache_mu_);
            for (size_t end = std::min(count, i + kForgetGroup); i < end; ++i) {
                auto [id, n] = at(i);
                if (!forget_locked(id, n, released)) ++mismatched;
            }
        }
        return mismatched;
    }

    // Undo one lookup counted for an entry reply the kernel never received.
    void unlookup(NodeId id) { forget(id, 1); }

    size_t size() const;
    std::uint64_t lookup_count(NodeId id) const;
    // Descriptors inodes keep for themselves, and those in the cache (for tests and logs).
    size_t kept_fds() const;
    size_t cached_fds() const;

    // The st_ino the kernel is shown for the object (dev, ino).
    ino_t st_ino(dev_t dev, ino_t ino) { return inos_.map(dev, ino); }

private:
    // No system call is made with mu_ held: with several loops, one slow directory or disk would
    // hold back every other loop's lookups. What a call needs from the source (the object's file
    // handle, a directory on a new file system, whether handles can be opened) is found out
    // first (Prepared), then the table is changed under the lock, which is taken again from the
    // start if what it needs changed meanwhile.
    struct Prepared;
    enum class Need { nothing, handle, device, probe };
    // add_lookup() with mu_ held: the inode in `*out`, or what must be prepared first (nothing
    // changed then).
    Need add_lookup_locked(UniqueFd& fd, const struct stat& st,
                           const std::shared_ptr<Inode>& parent, std::string_view name,
                           Prepared& prep, std::shared_ptr<Inode>* out);
    static void prepare(Need need, int fd, Prepared& prep); // no lock held
    // Whether the inode (found by st_dev/st_ino) is the object whose handle `prep` holds
    // (mu_ held).
    static bool same_object(const Inode& inode, const Prepared& prep);
    // How a new inode will be reached; called with mu_ held.
    void choose_reach(Inode& inode, UniqueFd& fd, const std::shared_ptr<Inode>& parent,
                      std::string_view name, const Prepared& prep);
    // Keeps `dir`, a directory on `dev`, for open_by_handle_at (mu_ held).
    void note_device(UniqueFd dir, dev_t dev);
    // Counts a new inode of `dev` in the table (mu_ held).
    void count_device(dev_t dev) { ++device_inodes_[dev]; }
    // Whether a device not yet noted needs a directory opened (mu_ held).
    bool wants_device(dev_t dev) const;
    // Gives `inode` the handle in `prep` (mu_ held); false when it has none to give.
    bool set_handle(Inode& inode, const Prepared& prep);
    // Whether a kept descriptor may stand in for a handle on `dev` until shed() (mu_ held).
    bool may_defer_handle(dev_t dev) const;
    UniqueFd reopen(const Inode& inode, int* err);
    static UniqueFd find_in_dir(int dir, SrcId src, std::string* name);
    // shed()'s work, with shed_mu_ held: how many of the descriptors it let go are closed by
    // now (one that a request still borrows closes when that request ends, and is not counted).
    size_t shed_locked();
    FdRef cache_put(NodeId id, UniqueFd fd);

    // What forgets free, held until the table's locks are let go.
    struct Released {
        std::vector<std::shared_ptr<Inode>> inodes;
        std::vector<std::shared_ptr<const UniqueFd>> fds;
    };
    static constexpr size_t kForgetGroup = 64;
    // forget() with mu_ and cache_mu_ held.
    bool forget_locked(NodeId id, std::uint64_t n, Released& released);
    // The inode `inode` leaves the table: when it was its device's last, the directory kept on
    // that device goes too (mu_ held; closed with `released`).
    void uncount_device(const Inode& inode, Released& released);
    // Forgets `id`'s descriptor (cache_mu_ held); returns whether it was one kept within the
    // budget.
    bool cache_drop(NodeId id, Released& released);

    mutable std::mutex mu_; // taken before cache_mu_, never after
    std::shared_ptr<Inode> root_;
    NodeId next_id_ = kRootNodeId + 1;
    std::unordered_map<NodeId, std::shared_ptr<Inode>> by_id_;
    // Keyed by the inode's own identity: a set of pointers costs a smaller node than a map.
    struct BySrcHash {
        using is_transparent = void;
        size_t operator()(const Inode* inode) const noexcept { return SrcIdHash()(inode->src()); }
        size_t operator()(const SrcId& id) const noexcept { return SrcIdHash()(id); }
    };
    struct BySrcEq {
        using is_transparent = void;
        static SrcId key(const Inode* inode) { return inode->src(); }
        static SrcId key(const SrcId& id) { return id; }
        template <class A, class B> bool operator()(const A& a, const B& b) const {
            return key(a) == key(b);
        }
    };
    std::unordered_set<const Inode*, BySrcHash, BySrcEq> by_src_;
    size_t kept_budget_ = SIZE_MAX;
    size_t kept_ = 0;
    size_t named_ = 0;
    // Handles: -1 not yet tried, 0 unusable (no CAP_DAC_READ_SEARCH), 1 usable.
    int handles_ok_ = -1;
    // An open directory on each file system that inodes in the table live on, for
    // open_by_handle_at; Inode::mount_ is an index into devices_. Kept only while the table holds
    // an inode of that file system: an open directory keeps a file system mounted inside SOURCE
    // busy, and its umount must succeed once the kernel has forgotten all of it. A free slot is
    // reused; an inode still borrowed by a request after its FORGET checks the slot's device.
    struct Device {
        dev_t dev = 0;
        std::shared_ptr<const UniqueFd> dir; // null: a free slot
        bool handles_seen = false;           // a handle was made there
    };
    std::unordered_map<dev_t, std::uint16_t> device_index_; // st_dev -> index into devices_
    std::vector<Device> devices_;
    std::vector<std::uint16_t> free_devices_;
    std::unordered_map<dev_t, size_t> device_inodes_; // inodes in by_id_, per st_dev

    struct Cached {
        std::shared_ptr<const UniqueFd> fd;
        std::list<NodeId>::iterator lru;
    };
    mutable std::mutex cache_mu_;
    // Descriptors kept within the budget: never evicted, but let go of by shed() under pressure.
    std::unordered_map<NodeId, std::shared_ptr<const UniqueFd>> pinned_;
    size_t cache_capacity_ = 1024;
    std::unordered_map<NodeId, Cached> cache_;
    std::list<NodeId> lru_; // most recently used first

    InoMap inos_;

    // Bounds with_descriptors(): each round lets descriptors go or finds that another caller
    // did, and the table runs out of them within a few; the bound only stops two loops that keep
    // taking each other's freed descriptors from going on forever.
    static constexpr int kMaxShedRounds = 8;
    std::mutex shed_mu_; // taken before mu_, never after
    std::atomic<std::uint64_t> sheds_{0};

    ShedHook shed_hook_ = nullptr;
    void* shed_hook_arg_ = nullptr;
    void shed_step(ShedStep step) {
        if (shed_hook_) shed_hook_(shed_hook_arg_, step);
    }
};

} // namespace rfs::fs
