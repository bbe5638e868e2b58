#include "lib/fs/inode_table.hpp"

#include "lib/common/log.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rfs::fs {

ino_t InoMap::map(dev_t dev, ino_t ino) {
    if (dev == home_) return ino;
    constexpr std::uint64_t kLowMask = (std::uint64_t(1) << kShift) - 1;
    constexpr size_t kMaxIndex = (std::uint64_t(1) << (64 - kShift)) - 1;
    std::lock_guard lock(mu_);
    auto it = std::find(others_.begin(), others_.end(), dev);
    size_t index = static_cast<size_t>(it - others_.begin()) + 1;
    if (it == others_.end() && others_.size() < kMaxIndex) others_.push_back(dev);
    if (index > kMaxIndex) index = kMaxIndex; // 65535 devices in one tree: share the last index
    if ((ino & ~kLowMask) != 0 && !warned_) {
        // A file system using the top bits itself (overlayfs xino, some network file systems):
        // XOR still keeps its numbers distinct from each other, only not from other devices'.
        warned_ = true;
        RFS_LOG_WARN("inode {} on device {}:{} uses the top 16 bits; inode numbers of different "
                     "file systems inside SOURCE may coincide",
                     ino, major(dev), minor(dev));
    }
    return ino ^ (std::uint64_t(index) << kShift);
}

// ---- Inode ------------------------------------------------------------------------------------
// reach_ holds one of, by its low two bits:
//   01  a descriptor the inode keeps (bits 2..33; -1 for none, as in unit tests);
//   00  a malloc'ed struct file_handle (mount_ says which file system it belongs to), or null:
//       nothing yet, the inode's pinned descriptor reaches it until shed() makes its handle;
//   11  a file handle in inline_handle_: its type in bits 2..33, its length in bits 34..41;
//   10  a Named (parent and name).
namespace {
constexpr std::uintptr_t kTagMask = 3, kTagFd = 1, kTagHandle = 0, kTagInline = 3, kTagNamed = 2;

std::uintptr_t kept_word(int fd) {
    return (std::uintptr_t(static_cast<std::uint32_t>(fd)) << 2) | kTagFd;
}

// Linux device numbers are 32-bit (12-bit major, 20-bit minor): st_dev always fits.
std::uint32_t compact_dev(dev_t dev) {
    return static_cast<std::uint32_t>((major(dev) << 20) | (minor(dev) & 0xfffff));
}
} // namespace

struct Inode::Named {
    std::shared_ptr<Inode> parent; // guarded by InodeTable::mu_, as is name
    std::string name;
};

Inode::Inode(NodeId id, SrcId src, mode_t type)
    : id_(id), ino_(src.ino), reach_(kept_word(-1)), dev_(compact_dev(src.dev)),
      type_(static_cast<std::uint16_t>(type & S_IFMT)) {}

Inode::~Inode() {
    if (int fd = kept_fd(); fd >= 0) ::close(fd);
    if ((reach_ & kTagMask) == kTagHandle) std::free(reinterpret_cast<void*>(reach_.load()));
    delete named();
}

SrcId Inode::src() const {
    return SrcId{makedev(dev_ >> 20, dev_ & 0xfffff), ino_};
}

int Inode::kept_fd() const {
    if ((reach_ & kTagMask) != kTagFd) return -1;
    return static_cast<int>(static_cast<std::uint32_t>(reach_ >> 2));
}

bool Inode::has_handle() const {
    auto tag = reach_ & kTagMask;
    return tag == kTagInline || (tag == kTagHandle && reach_ != 0);
}

void Inode::copy_handle(file_handle* out) const {
    if ((reach_ & kTagMask) == kTagInline) {
        out->handle_type = static_cast<int>(static_cast<std::uint32_t>(reach_ >> 2));
        out->handle_bytes = static_cast<unsigned>((reach_ >> 34) & 0xff);
        std::memcpy(out->f_handle, inline_handle_, out->handle_bytes);
    } else {
        auto* h = reinterpret_cast<const file_handle*>(reach_.load());
        std::memcpy(out, h, sizeof(file_handle) + h->handle_bytes);
    }
}

Inode::Named* Inode::named() const {
    if ((reach_ & kTagMask) != kTagNamed) return nullptr;
    return reinterpret_cast<Named*>(reach_.load() & ~kTagMask);
}

// ---- InodeTable -------------------------------------------------------------------------------

namespace {
// A directory of `fd`'s file system that open_by_handle_at accepts (not O_PATH: EBADF).
UniqueFd open_device_dir(int fd) {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return UniqueFd(::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}
} // namespace

struct InodeTable::Prepared {
    bool handle_tried = false;
    bool has_handle = false;
    int handle_errno = 0;
    union {
        file_handle fh;
        char bytes[sizeof(file_handle) + MAX_HANDLE_SZ];
    } handle;
    bool device_tried = false;
    UniqueFd device_dir;
    // Opening by handle (needs CAP_DAC_READ_SEARCH): -1 not tried, 0 refused, 1 works.
    std::shared_ptr<const UniqueFd> probe_dir; // the device's directory, held while probing
    int probe = -1;
    int probe_errno = 0;
};

InodeTable::InodeTable(UniqueFd root_fd, const struct stat& st)
    : root_(std::make_shared<Inode>(kRootNodeId, SrcId{st.st_dev, st.st_ino}, st.st_mode)),
      inos_(st.st_dev) {
    note_device(open_device_dir(root_fd.get()), st.st_dev);
    root_->reach_ = kept_word(root_fd.release());
    root_->nlookup_ = 1;
    count_device(st.st_dev); // never forgotten: SOURCE's own directory stays
    kept_ = 1;
    by_id_.emplace(kRootNodeId, root_);
    by_src_.insert(root_.get());
}

InodeTable::~InodeTable() = default;

void InodeTable::set_fd_budget(size_t kept, size_t cached) {
    std::lock_guard lock(mu_);
    kept_budget_ = kept;
    std::lock_guard cache_lock(cache_mu_);
    cache_capacity_ = std::max<size_t>(cached, 1);
}

std::shared_ptr<Inode> InodeTable::add_lookup(UniqueFd fd, const struct stat& st,
                                              const std::shared_ptr<Inode>& parent,
                                              std::string_view name) {
    Prepared prep;
    for (;;) {
        Need need;
        std::shared_ptr<Inode> inode;
        {
            std::lock_guard lock(mu_);
            need = add_lookup_locked(fd, st, parent, name, prep, &inode);
        }
        if (need == Need::nothing) return inode;
        prepare(need, fd.get(), prep);
    }
}

void InodeTable::prepare(Need need, int fd, Prepared& prep) {
    switch (need) {
    case Need::handle: {
        prep.handle_tried = true;
        prep.handle.fh.handle_bytes = MAX_HANDLE_SZ;
        int mount_id = 0;
        prep.has_handle =
            ::name_to_handle_at(fd, "", &prep.handle.fh, &mount_id, AT_EMPTY_PATH) == 0;
        prep.handle_errno = prep.has_handle ? 0 : errno;
        break;
    }
    case Need::device:
        prep.device_tried = true;
        prep.device_dir = open_device_dir(fd);
        break;
    case Need::probe: {
        int probe = ::open_by_handle_at(prep.probe_dir->get(), &prep.handle.fh, O_PATH | O_CLOEXEC);
        prep.probe_errno = errno;
        prep.probe = probe >= 0 || (prep.probe_errno != EPERM && prep.probe_errno != EACCES);
        if (probe >= 0) ::close(probe);
        break;
    }
    case Need::nothing:
        break;
    }
}

InodeTable::Need InodeTable::add_lookup_locked(UniqueFd& fd, const struct stat& st,
                                               const std::shared_ptr<Inode>& parent,
                                               std::string_view name, Prepared& prep,
                                               std::shared_ptr<Inode>* out) {
    SrcId src{st.st_dev, st.st_ino};
    auto it = by_src_.find(src);
    if (it != by_src_.end()) {
        auto& inode = by_id_.at((*it)->id());
        // The handle of what `fd` is open on tells a reused inode number from the same object.
        if (fd && inode->has_handle() && !prep.handle_tried) return Need::handle;
        if (!fd || same_object(*inode, prep)) {
            ++inode->nlookup_;
            // The caller just opened it: worth keeping for the requests that follow a lookup.
            if (fd && (inode->reach_ & kTagMask) != kTagFd) cache_put(inode->id(), std::move(fd));
            *out = inode;
            return Need::nothing;
        }
    }
    // A new inode. A directory on a file system seen for the first time gives the table its
    // descriptor there (noting it early changes nothing the kernel sees).
    if (fd && S_ISDIR(st.st_mode) && wants_device(st.st_dev)) {
        if (!prep.device_tried) return Need::device;
        if (prep.device_dir) note_device(std::move(prep.device_dir), st.st_dev);
    }
    if (fd && handles_ok_ != 0 && !(kept_ < kept_budget_ && may_defer_handle(st.st_dev))) {
        if (!prep.handle_tried) return Need::handle;
        auto dev = device_index_.find(st.st_dev);
        if (handles_ok_ < 0 && prep.has_handle && dev != device_index_.end()) {
            if (prep.probe < 0) {
                prep.probe_dir = devices_[dev->second].dir;
                return Need::probe;
            }
            handles_ok_ = prep.probe;
            if (!handles_ok_)
                RFS_LOG_INFO("cannot open by file handle ({}); past {} descriptors, inodes are "
                             "reopened by name",
                             std::strerror(prep.probe_errno), kept_budget_);
        }
    }
    if (it != by_src_.end()) {
        // The source gave the number of a removed object to a new one before the kernel forgot
        // the old inode: the old one keeps its node id until its FORGET, the new object gets a
        // node of its own (passthrough_hp bumps a generation for the same reason).
        by_src_.erase(it);
    }
    NodeId id = next_id_++;
    auto inode = std::make_shared<Inode>(id, src, st.st_mode);
    inode->nlookup_ = 1;
    count_device(st.st_dev);
    choose_reach(*inode, fd, parent, name, prep);
    by_id_.emplace(id, inode);
    by_src_.insert(inode.get());
    *out = std::move(inode);
    return Need::nothing;
}

bool InodeTable::same_object(const Inode& inode, const Prepared& prep) {
    // A descriptor the table keeps (or a pinned one) holds the object: its number cannot have
    // been given to another. Reached by name, there is nothing to compare: take it as the same.
    if (!inode.has_handle() || !prep.has_handle) return true;
    union {
        file_handle fh;
        char bytes[sizeof(file_handle) + MAX_HANDLE_SZ];
    } known;
    inode.copy_handle(&known.fh);
    const file_handle& now = prep.handle.fh;
    // The handle carries the file system's generation number, which a reused number changes.
    return now.handle_type == known.fh.handle_type && now.handle_bytes == known.fh.handle_bytes &&
           std::memcmp(now.f_handle, known.fh.f_handle, now.handle_bytes) == 0;
}

void InodeTable::choose_reach(Inode& inode, UniqueFd& fd, const std::shared_ptr<Inode>& parent,
                              std::string_view name, const Prepared& prep) {
    if (!fd) return; // nothing to keep (unit tests); reopening it will fail
    if (kept_ < kept_budget_ && may_defer_handle(inode.src().dev)) {
        inode.reach_ = 0; // the pinned descriptor reaches it (see shed())
        std::lock_guard lock(cache_mu_);
        pinned_.emplace(inode.id(), std::make_shared<const UniqueFd>(std::move(fd)));
        ++kept_;
        return;
    }
    // Every inode that can be reopened gets what it takes, even within the budget, so that a
    // descriptor kept for it can be let go when the daemon runs short (shed()).
    bool reopenable = set_handle(inode, prep);
    if (!reopenable && parent && !name.empty()) {
        inode.reach_ =
            reinterpret_cast<std::uintptr_t>(new Inode::Named{parent, std::string(name)}) |
            kTagNamed;
        ++named_;
        reopenable = true;
    }
    if (!reopenable) {
        // Nothing else reaches the object (".." on a file system without handles): the
        // descriptor is the only way back, budget or not.
        inode.reach_ = kept_word(fd.release());
        ++kept_;
        return;
    }
    if (kept_ < kept_budget_) {
        std::lock_guard lock(cache_mu_);
        pinned_.emplace(inode.id(), std::make_shared<const UniqueFd>(std::move(fd)));
        ++kept_;
        return;
    }
    cache_put(inode.id(), std::move(fd));
}

bool InodeTable::wants_device(dev_t dev) const {
    return handles_ok_ != 0 && !device_index_.count(dev) &&
           (!free_devices_.empty() || devices_.size() < UINT16_MAX);
}

void InodeTable::note_device(UniqueFd dir, dev_t dev) {
    // One open directory per file system, the first one seen on it.
    if (!dir || !wants_device(dev)) return;
    std::uint16_t index;
    if (!free_devices_.empty()) {
        index = free_devices_.back();
        free_devices_.pop_back();
    } else {
        index = static_cast<std::uint16_t>(devices_.size());
        devices_.emplace_back();
    }
    devices_[index] = Device{dev, std::make_shared<const UniqueFd>(std::move(dir)), false};
    device_index_.emplace(dev, index);
}

void InodeTable::uncount_device(const Inode& inode, Released& released) {
    dev_t dev = inode.src().dev;
    auto count = device_inodes_.find(dev);
    if (count == device_inodes_.end() || --count->second > 0) return;
    device_inodes_.erase(count);
    auto it = device_index_.find(dev);
    if (it == device_index_.end()) return;
    // A request may still borrow it (reopen()): it closes when that request lets it go.
    released.fds.push_back(std::move(devices_[it->second].dir));
    devices_[it->second] = Device{};
    free_devices_.push_back(it->second);
    device_index_.erase(it);
}

bool InodeTable::may_defer_handle(dev_t dev) const {
    if (handles_ok_ != 1) return false;
    auto it = device_index_.find(dev);
    return it != device_index_.end() && devices_[it->second].handles_seen;
}

bool InodeTable::set_handle(Inode& inode, const Prepared& prep) {
    if (handles_ok_ != 1 || !prep.has_handle) return false;
    auto it = device_index_.find(inode.src().dev);
    if (it == device_index_.end()) return false; // a file system entered through a non-directory
    std::uint16_t index = it->second;
    const file_handle& fh = prep.handle.fh;
    if (fh.handle_bytes <= Inode::kInlineHandle) {
        std::memcpy(inode.inline_handle_, fh.f_handle, fh.handle_bytes);
        inode.reach_ = (std::uintptr_t(fh.handle_bytes) << 34) |
                       (std::uintptr_t(static_cast<std::uint32_t>(fh.handle_type)) << 2) |
                       kTagInline;
    } else {
        size_t size = sizeof(file_handle) + fh.handle_bytes;
        void* copy = std::malloc(size);
        if (!copy) return false;
        std::memcpy(copy, &fh, size);
        inode.reach_ = reinterpret_cast<std::uintptr_t>(copy);
    }
    inode.mount_ = index;
    devices_[index].handles_seen = true;
    return true;
}

// The entry of `dir` that is the object `src`, opened O_PATH, its name in `name`; closed if there
// is none. One pass over the directory: only ever run when a name reached nothing.
UniqueFd InodeTable::find_in_dir(int dir, SrcId src, std::string* name) {
    UniqueFd listing(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!listing) return {};
    DIR* d = ::fdopendir(listing.get());
    if (!d) return {};
    (void)listing.release(); // closedir closes it
    UniqueFd fd;
    while (dirent* e = ::readdir(d)) {
        // d_ino is the source's inode number but for mount points; fstat below decides.
        if (e->d_ino != src.ino || std::strcmp(e->d_name, ".") == 0 ||
            std::strcmp(e->d_name, "..") == 0)
            continue;
        UniqueFd candidate(::openat(dir, e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
        struct stat st;
        if (candidate && ::fstat(candidate.get(), &st) == 0 && SrcId{st.st_dev, st.st_ino} == src) {
            *name = e->d_name;
            fd = std::move(candidate);
            break;
        }
    }
    ::closedir(d);
    return fd;
}

UniqueFd InodeTable::reopen(const Inode& inode, int* err) {
    UniqueFd fd;
    if (inode.has_handle()) {
        union {
            file_handle fh;
            char bytes[sizeof(file_handle) + MAX_HANDLE_SZ];
        } buf;
        inode.copy_handle(&buf.fh);
        std::shared_ptr<const UniqueFd> mount_dir;
        {
            std::lock_guard lock(mu_);
            // Forgotten meanwhile (a request still holds it) as the last inode of its file
            // system: the slot may be free or hold another file system, whose objects this
            // handle must never be taken to name.
            const Device& device = devices_[inode.mount_];
            if (device.dir && device.dev == inode.src().dev) mount_dir = device.dir;
        }
        if (!mount_dir) {
            *err = ESTALE;
            return fd;
        }
        fd.reset(::open_by_handle_at(mount_dir->get(), &buf.fh, O_PATH | O_CLOEXEC));
        *err = fd ? 0 : errno;
        return fd;
    }
    if (auto* named = inode.named()) {
        std::shared_ptr<Inode> parent;
        std::string name;
        {
            std::lock_guard lock(mu_);
            parent = named->parent;
            name = named->name;
        }
        FdRef dir = path_fd(*parent);
        if (!dir) {
            *err = dir.error();
            return fd;
        }
        fd.reset(::openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        struct stat st;
        if (fd && ::fstat(fd.get(), &st) == 0 && SrcId{st.st_dev, st.st_ino} == inode.src())
            return fd;
        *err = fd ? ESTALE : errno;
        fd.reset();
        if (*err != ENOENT && *err != ESTALE) return fd;
        // Renamed beside the mount (directly in SOURCE): the name is gone or holds something
        // else. The object may still be in the same directory under another name; find it there
        // rather than fail the application's call until the kernel looks the name up again.
        std::string found;
        fd = find_in_dir(dir.get(), inode.src(), &found);
        if (!fd) return fd; // moved elsewhere or removed: ESTALE, as before
        *err = 0;
        std::lock_guard lock(mu_);
        if (named->parent == parent && named->name == name) named->name = std::move(found);
        return fd;
    }
    *err = ESTALE;
    return fd;
}

FdRef InodeTable::path_fd(const Inode& inode) {
    if ((inode.reach_ & kTagMask) == kTagFd) {
        if (inode.kept_fd() < 0) return FdRef::failed(ESTALE);
        FdRef ref;
        ref.fd_ = inode.kept_fd();
        return ref;
    }
    {
        std::lock_guard lock(cache_mu_);
        if (auto it = pinned_.find(inode.id()); it != pinned_.end()) {
            FdRef ref;
            ref.owned_ = it->second;
            ref.fd_ = ref.owned_->get();
            return ref;
        }
        if (auto it = cache_.find(inode.id()); it != cache_.end()) {
            lru_.splice(lru_.begin(), lru_, it->second.lru);
            FdRef ref;
            ref.owned_ = it->second.fd;
            ref.fd_ = ref.owned_->get();
            return ref;
        }
    }
    UniqueFd fd;
    int err = with_descriptors([&] {
        int why = 0;
        fd = reopen(inode, &why);
        return why;
    });
    if (!fd) return FdRef::failed(err);
    return cache_put(inode.id(), std::move(fd));
}

FdRef InodeTable::cache_put(NodeId id, UniqueFd fd) {
    FdRef ref;
    std::vector<std::shared_ptr<const UniqueFd>> evicted; // closed outside the lock
    std::lock_guard lock(cache_mu_);
    if (auto it = pinned_.find(id); it != pinned_.end()) {
        ref.owned_ = it->second;
    } else if (auto it = cache_.find(id); it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        ref.owned_ = it->second.fd;
    } else {
        lru_.push_front(id);
        ref.owned_ = std::make_shared<const UniqueFd>(std::move(fd));
        cache_.emplace(id, Cached{ref.owned_, lru_.begin()});
        while (cache_.size() > cache_capacity_) {
            auto victim = cache_.find(lru_.back());
            evicted.push_back(std::move(victim->second.fd));
            cache_.erase(victim);
            lru_.pop_back();
        }
    }
    ref.fd_ = ref.owned_->get();
    return ref;
}

bool InodeTable::cache_drop(NodeId id, Released& released) {
    if (auto it = pinned_.find(id); it != pinned_.end()) {
        released.fds.push_back(std::move(it->second));
        pinned_.erase(it);
        return true;
    }
    if (auto it = cache_.find(id); it != cache_.end()) {
        released.fds.push_back(std::move(it->second.fd));
        lru_.erase(it->second.lru);
        cache_.erase(it);
    }
    return false;
}

bool InodeTable::shed(std::uint64_t since) {
    // One shed at a time. Two callers short at once used to shed side by side, and each,
    // counting the descriptors the other still held a moment longer, found that it had closed
    // none: both answered EMFILE, though the kept descriptors had just gone.
    std::lock_guard lock(shed_mu_);
    // Descriptors were let go after the caller's attempt failed: it may find one now.
    if (shed_generation() != since) return true;
    if (shed_locked() == 0) return false;
    // Bumped with shed_mu_ still held, so that a caller waiting for it sees the bump.
    sheds_.fetch_add(1, std::memory_order_release);
    return true;
}

size_t InodeTable::shed_locked() {
    size_t let_go = 0;
    {
        std::unordered_map<NodeId, Cached> dropped; // closed outside the lock
        {
            std::lock_guard lock(cache_mu_);
            dropped.swap(cache_);
            lru_.clear();
        }
        for (auto& [id, c] : dropped)
            if (c.fd.use_count() == 1) ++let_go;
    }
    shed_step(ShedStep::cache_dropped);
    if (let_go > 0) return let_go;
    // Still short: let go of the descriptors kept for inodes that can be reopened, and keep no
    // more from now on; applications' open files matter more than saved reopens. An inode that
    // put off its handle gets it first, from the descriptor it is about to let go: the handles
    // are made without the table's lock, and given before the descriptors go, so that path_fd()
    // on another thread always finds one or the other.
    struct Deferred {
        std::shared_ptr<Inode> inode;
        std::shared_ptr<const UniqueFd> fd;
        Prepared prep;
    };
    std::vector<Deferred> deferred;
    {
        std::lock_guard lock(mu_);
        std::lock_guard cache_lock(cache_mu_);
        deferred.reserve(pinned_.size());
        for (auto& [id, fd] : pinned_)
            if (auto found = by_id_.find(id); found != by_id_.end() && found->second->reach_ == 0)
                deferred.push_back({found->second, fd, {}});
    }
    for (auto& d : deferred)
        prepare(Need::handle, d.fd->get(), d.prep);
    shed_step(ShedStep::handles_made);
    std::unordered_map<NodeId, std::shared_ptr<const UniqueFd>> unpinned; // closed outside locks
    {
        std::lock_guard lock(mu_);
        for (auto& d : deferred)
            if (d.inode->reach_ == 0 && !set_handle(*d.inode, d.prep))
                RFS_LOG_WARN("cannot make a file handle for node {}: {}; keeping its descriptor",
                             d.inode->id(), std::strerror(d.prep.handle_errno));
        std::lock_guard cache_lock(cache_mu_);
        unpinned.swap(pinned_);
        // One that could not get a handle (or came since) keeps its descriptor: it has no other
        // way back.
        for (auto it = unpinned.begin(); it != unpinned.end();) {
            auto found = by_id_.find(it->first);
            if (found != by_id_.end() && found->second->reach_ == 0) {
                pinned_.insert(*it);
                it = unpinned.erase(it);
            } else {
                ++it;
            }
        }
        kept_ -= unpinned.size();
        kept_budget_ = kept_;
    }
    deferred.clear();
    for (auto& [id, fd] : unpinned)
        if (fd.use_count() == 1) ++let_go;
    unpinned.clear();
    shed_step(ShedStep::released);
    if (let_go > 0)
        RFS_LOG_INFO("out of descriptors: let {} kept descriptor(s) go; inodes are reopened from "
                     "now on",
                     let_go);
    return let_go;
}

void InodeTable::moved(SrcId src, const std::shared_ptr<Inode>& parent, std::string_view name) {
    std::lock_guard lock(mu_);
    auto it = by_src_.find(src);
    if (it == by_src_.end()) return;
    if (auto* named = (*it)->named()) {
        named->parent = parent;
        named->name = name;
    }
}

bool InodeTable::tracks_names() const {
    std::lock_guard lock(mu_);
    return named_ > 0;
}

NodeId InodeTable::find(SrcId src) const {
    std::lock_guard lock(mu_);
    auto it = by_src_.find(src);
    return it == by_src_.end() ? 0 : (*it)->id();
}

std::shared_ptr<Inode> InodeTable::get(NodeId id) const {
    if (id == kRootNodeId) return root_;
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
}

bool InodeTable::forget(NodeId id, std::uint64_t n) {
    Released released; // destroyed (descriptors closed) after the locks
    std::lock_guard lock(mu_);
    std::lock_guard cache_lock(cache_mu_);
    return forget_locked(id, n, released);
}

bool InodeTable::forget_locked(NodeId id, std::uint64_t n, Released& released) {
    if (id == kRootNodeId) return true;
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return false;
    Inode& inode = *it->second;
    // An underflow means the kernel and we disagree; dropping the inode is the safe reading.
    bool ok = inode.nlookup_ >= n;
    inode.nlookup_ = ok ? inode.nlookup_ - n : 0;
    if (inode.nlookup_ == 0) {
        if (inode.kept_fd() >= 0) --kept_;
        if (inode.named()) --named_;
        if (cache_drop(id, released)) --kept_;
        // By pointer: a newer inode of the same (st_dev, st_ino) may have taken the key.
        if (auto s = by_src_.find(&inode); s != by_src_.end() && *s == &inode) by_src_.erase(s);
        uncount_device(inode, released);
        released.inodes.push_back(std::move(it->second));
        by_id_.erase(it);
    }
    return ok;
}

size_t InodeTable::size() const {
    std::lock_guard lock(mu_);
    return by_id_.size();
}

std::uint64_t InodeTable::lookup_count(NodeId id) const {
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    return it == by_id_.end() ? 0 : it->second->nlookup_;
}

size_t InodeTable::kept_fds() const {
    std::lock_guard lock(mu_);
    return kept_;
}

size_t InodeTable::cached_fds() const {
    std::lock_guard lock(cache_mu_);
    return cache_.size();
}

} // namespace rfs::fs
