#include "lib/state/state_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include "lib/state/codec.hpp"

namespace rfs::state {

namespace {

constexpr char identity_key[] = "i";
constexpr char file_prefix = 'f';
constexpr char phase_prefix = 'q';
constexpr char removal_prefix = 'r';
constexpr uint8_t identity_format = 1;

std::string aux_key(AuxKind kind, std::string_view key) {
    std::string out(1, static_cast<char>(kind));
    out.append(key);
    return out;
}

std::string file_key(std::string_view path) {
    std::string key(1, file_prefix);
    key.append(path);
    return key;
}

std::string removal_key(std::string_view path) {
    std::string key(1, removal_prefix);
    key.append(path);
    return key;
}

std::string phase_key(Phase phase, std::string_view path) {
    std::string key{phase_prefix, static_cast<char>(phase)};
    key.append(path);
    return key;
}

std::string_view as_view(const leveldb::Slice& s) {
    return {s.data(), s.size()};
}

leveldb::WriteOptions sync_write() {
    leveldb::WriteOptions options;
    options.sync = true;
    return options;
}

Error db_error(std::string_view what, const leveldb::Status& st) {
    return make_error(EIO, "state store: {}: {}", what, st.ToString());
}

Error invalid_path(std::string_view path) {
    return make_error(EINVAL, "state store: invalid path '{}'", path);
}

// Reads through a snapshot and releases it when done.
class Snapshot {
public:
    explicit Snapshot(leveldb::DB* db) : db_(db), snap_(db->GetSnapshot()) {
        opts_.snapshot = snap_;
    }
    ~Snapshot() { db_->ReleaseSnapshot(snap_); }
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;
    const leveldb::ReadOptions& options() const { return opts_; }

private:
    leveldb::DB* db_;
    const leveldb::Snapshot* snap_;
    leveldb::ReadOptions opts_;
};

// Calls fn(key, value) for each key starting with `prefix`, in order, until fn returns false.
// Returns the iterator's status.
leveldb::Status
scan_prefix(leveldb::DB* db, const leveldb::ReadOptions& options, std::string_view prefix,
            const std::function<bool(std::string_view key, std::string_view value)>& fn) {
    std::unique_ptr<leveldb::Iterator> it(db->NewIterator(options));
    for (it->Seek(leveldb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
        std::string_view key = as_view(it->key());
        if (!key.starts_with(prefix)) break;
        if (!fn(key, as_view(it->value()))) break;
    }
    return it->status();
}

// Visits the 'f' record of `dir` itself, then those under "dir/" ("" = every record).
leveldb::Status
scan_subtree(leveldb::DB* db, const leveldb::ReadOptions& options, std::string_view dir,
             const std::function<bool(std::string_view path, std::string_view value)>& fn) {
    auto strip = [&](std::string_view key, std::string_view value) {
        return fn(key.substr(1), value);
    };
    if (dir.empty()) return scan_prefix(db, options, std::string(1, file_prefix), strip);
    // "dir" and "dir/..." are not adjacent ("dir!x" sorts between them), so two ranges.
    std::string exact = file_key(dir);
    std::string value;
    leveldb::Status st = db->Get(options, exact, &value);
    if (st.ok()) {
        if (!strip(exact, value)) return st;
    } else if (!st.IsNotFound()) {
        return st;
    }
    return scan_prefix(db, options, exact + '/', strip);
}

// Creates `dir` (0700) when missing, durably: the parent's entry is fsynced too.
Result<void> make_state_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) == 0) {
        std::filesystem::path parent = std::filesystem::path(dir).parent_path();
        if (parent.empty()) parent = std::filesystem::path(".");
        int pfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0) {
            ::fsync(pfd);
            ::close(pfd);
        }
        return {};
    }
    int err = errno;
    if (err != EEXIST)
        return make_error(err, "cannot create state_dir {}: {}", dir, std::strerror(err));
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
        err = errno;
        return make_error(err, "cannot use state_dir {}: {}", dir, std::strerror(err));
    }
    if (!S_ISDIR(st.st_mode)) return make_error(ENOTDIR, "state_dir {} is not a directory", dir);
    return {};
}

Error in_use(const std::string& dir) {
    return make_error(EBUSY, "state_dir {} is in use by another riakfs", dir);
}

} // namespace

std::string encode_identity(const Identity& identity) {
    codec::Writer w;
    w.byte(identity_format);
    w.bytes(identity.source);
    w.bytes(identity.fingerprint);
    return std::move(w).data();
}

Result<Identity> decode_identity(std::string_view bytes) {
    codec::Reader r(bytes);
    uint8_t format = 0;
    Identity identity;
    if (!r.byte(format) || format != identity_format || !r.bytes(identity.source) ||
        !r.bytes(identity.fingerprint) || !r.at_end())
        return make_error(EBADMSG, "identity record does not decode");
    return identity;
}

bool is_valid_path(std::string_view path) {
    if (path.empty() || path.find('\0') != std::string_view::npos) return false;
    size_t start = 0;
    while (true) {
        size_t slash = path.find('/', start);
        std::string_view part = path.substr(start, slash - start);
        if (part.empty() || part == "." || part == "..") return false;
        if (slash == std::string_view::npos) return true;
        start = slash + 1;
    }
}

uint64_t PhaseCounts::total() const {
    uint64_t n = 0;
    for (uint64_t c : by_phase)
        n += c;
    return n;
}

uint64_t PhaseCounts::pending() const {
    return (*this)[Phase::dirty] + (*this)[Phase::uploading] + (*this)[Phase::copied];
}

void StateStore::Batch::put(std::string_view path, FileState state) {
    ops_.push_back({std::string(path), std::move(state)});
}

void StateStore::Batch::erase(std::string_view path) {
    ops_.push_back({std::string(path), std::nullopt});
}

void StateStore::Batch::put_removal(std::string_view path, FileState state) {
    ops_.push_back({std::string(path), std::move(state), true});
}

void StateStore::Batch::erase_removal(std::string_view path) {
    ops_.push_back({std::string(path), std::nullopt, true});
}

void StateStore::Batch::mark_dirty(std::string_view path) {
    ops_.push_back({std::string(path), std::nullopt, false, true});
}

void StateStore::Batch::aux(AuxOp op) {
    ops_.push_back({std::string(), std::nullopt, false, false, std::move(op)});
}

void StateStore::Batch::append(Batch&& other) {
    if (ops_.empty()) {
        ops_ = std::move(other.ops_);
        return;
    }
    ops_.insert(ops_.end(), std::make_move_iterator(other.ops_.begin()),
                std::make_move_iterator(other.ops_.end()));
    other.ops_.clear();
}

// One atomic change being prepared: the LevelDB batch, the phase-count deltas it causes, and
// what each touched path holds once the batch is applied, so later steps see earlier ones.
class StateStore::Plan {
public:
    explicit Plan(const StateStore& store) : store_(store) {}

    // What `path` holds at this point of the plan.
    Result<Stored> stored(std::string_view path) {
        if (auto it = view_.find(path); it != view_.end()) return it->second;
        return store_.stored(path);
    }

    // `known`: what the caller already read for `path` (saves a lookup).
    Result<void> erase(std::string_view path, std::optional<Stored> known = std::nullopt) {
        if (!known) {
            auto old = stored(path);
            if (!old) return std::move(old).error();
            known = *old;
        }
        if (!known->exists) return {};
        batch.Delete(file_key(path));
        drop_index(path, known->phase);
        view_[std::string(path)] = Stored{};
        return {};
    }

    // `encoded` is stored as is; `phase` is what it decodes to (nullopt: unknown, not indexed).
    Result<void> put(std::string_view path, std::string_view encoded, std::optional<Phase> phase,
                     std::optional<Stored> known = std::nullopt) {
        if (!known) {
            auto old = stored(path);
            if (!old) return std::move(old).error();
            known = *old;
        }
        if (known->exists) drop_index(path, known->phase);
        batch.Put(file_key(path), leveldb::Slice(encoded.data(), encoded.size()));
        if (phase) {
            batch.Put(phase_key(*phase, path), leveldb::Slice());
            ++delta[static_cast<size_t>(*phase)];
        }
        view_[std::string(path)] = Stored{true, phase};
        return {};
    }

    // A removal record ('r'): no phase index, no counts.
    void put_removal(std::string_view path, std::string_view encoded) {
        batch.Put(removal_key(path), leveldb::Slice(encoded.data(), encoded.size()));
        raw_ = true;
    }
    void erase_removal(std::string_view path) {
        batch.Delete(removal_key(path));
        raw_ = true;
    }
    void aux(const AuxOp& op) {
        if (op.value)
            batch.Put(aux_key(op.kind, op.key), *op.value);
        else
            batch.Delete(aux_key(op.kind, op.key));
        raw_ = true;
    }

    bool empty() const { return view_.empty() && !raw_; }

    leveldb::WriteBatch batch;
    std::array<int64_t, FileState::phase_count> delta{};

private:
    void drop_index(std::string_view path, std::optional<Phase> old) {
        if (!old) return;
        batch.Delete(phase_key(*old, path));
        --delta[static_cast<size_t>(*old)];
    }

    const StateStore& store_;
    std::map<std::string, Stored, std::less<>> view_;
    bool raw_ = false;
};

Result<std::unique_ptr<StateStore>> StateStore::open(const OpenOptions& options) {
    const std::string& dir = options.state_dir;
    if (dir.empty()) return make_error(EINVAL, "state_dir is empty");
    if (auto made = make_state_dir(dir); !made) return std::move(made).error();

    // Our own lock gives a clear answer before LevelDB's LOCK is tried; flock conflicts between
    // two opens in one process as well as between processes.
    std::string lock_path = dir + "/lock";
    int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        int err = errno;
        return make_error(err, "cannot open {}: {}", lock_path, std::strerror(err));
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        ::close(lock_fd);
        if (err == EWOULDBLOCK) return in_use(dir);
        return make_error(err, "cannot lock {}: {}", lock_path, std::strerror(err));
    }

    leveldb::Options db_options;
    db_options.create_if_missing = true;
    db_options.filter_policy = leveldb::NewBloomFilterPolicy(10);
    leveldb::DB* db = nullptr;
    leveldb::Status st = leveldb::DB::Open(db_options, dir + "/state.ldb", &db);
    if (!st.ok()) {
        delete db_options.filter_policy;
        ::close(lock_fd);
        // Another process that bypassed our lock file still holds LevelDB's own LOCK.
        if (st.IsIOError() && st.ToString().find("LOCK") != std::string::npos) return in_use(dir);
        return make_error(EIO, "cannot open state_dir {}: {}", dir, st.ToString());
    }
    std::unique_ptr<StateStore> store(new StateStore(dir, lock_fd, db, db_options.filter_policy));

    std::string wanted = encode_identity({options.source, options.fingerprint});
    std::string stored;
    st = db->Get(leveldb::ReadOptions(), identity_key, &stored);
    if (!st.ok() && !st.IsNotFound()) return db_error("reading identity", st);
    if (st.ok() && stored != wanted && !options.adopt) {
        auto identity = decode_identity(stored);
        if (!identity)
            return make_error(EEXIST, "state_dir {} has an unreadable identity record", dir);
        if (identity->source != options.source)
            return make_error(EEXIST,
                              "state_dir {} belongs to SOURCE {}, not {}: use another state_dir "
                              "or adopt this one explicitly",
                              dir, identity->source, options.source);
        return make_error(EEXIST,
                          "state_dir {} was made for SOURCE {} with fingerprint '{}', not '{}': "
                          "use another state_dir or adopt this one explicitly",
                          dir, identity->source, identity->fingerprint, options.fingerprint);
    }
    if (!st.ok() || stored != wanted) {
        st = db->Put(sync_write(), identity_key, wanted);
        if (!st.ok()) return db_error("writing identity", st);
    }
    if (auto counted = store->count_phases(); !counted) return std::move(counted).error();
    return store;
}

StateStore::StateStore(std::string state_dir, int lock_fd, leveldb::DB* db,
                       const leveldb::FilterPolicy* filter)
    : state_dir_(std::move(state_dir)), lock_fd_(lock_fd), db_(db), filter_(filter) {}

StateStore::~StateStore() {
    delete db_;
    delete filter_;
    ::close(lock_fd_); // releases the flock, after LevelDB has let go of its files
}

std::mutex& StateStore::stripe(std::string_view path) {
    return stripes_[std::hash<std::string_view>{}(path) % stripe_count];
}

std::vector<std::unique_lock<std::mutex>> StateStore::lock_all() {
    std::vector<std::unique_lock<std::mutex>> locks;
    locks.reserve(stripe_count);
    for (std::mutex& m : stripes_)
        locks.emplace_back(m);
    return locks;
}

Result<StateStore::Stored> StateStore::stored(std::string_view path) const {
    std::string value;
    leveldb::Status st = db_->Get(leveldb::ReadOptions(), file_key(path), &value);
    if (st.IsNotFound()) return Stored{};
    if (!st.ok()) return db_error("reading a record", st);
    return stored_from_value(path, value);
}

Result<StateStore::Stored> StateStore::stored_from_value(std::string_view path,
                                                         std::string_view value) const {
    if (auto decoded = decode_file_state(value)) return Stored{true, decoded->phase};
    // An undecodable record may still be indexed under some phase: find it so it is dropped.
    for (size_t p = 0; p < FileState::phase_count; ++p) {
        std::string ignored;
        leveldb::Status st =
            db_->Get(leveldb::ReadOptions(), phase_key(static_cast<Phase>(p), path), &ignored);
        if (st.ok()) return Stored{true, static_cast<Phase>(p)};
        if (!st.IsNotFound()) return db_error("reading the phase index", st);
    }
    return Stored{true, std::nullopt};
}

Result<void> StateStore::commit(Plan& plan) {
    if (plan.empty()) return {};
    leveldb::Status st = db_->Write(sync_write(), &plan.batch);
    if (!st.ok()) return db_error("write", st);
    for (size_t i = 0; i < plan.delta.size(); ++i)
        counts_[i].fetch_add(static_cast<uint64_t>(plan.delta[i]), std::memory_order_relaxed);
    return {};
}

Result<std::optional<FileState>> StateStore::get(std::string_view path) const {
    if (!is_valid_path(path)) return invalid_path(path);
    std::string value;
    leveldb::Status st = db_->Get(leveldb::ReadOptions(), file_key(path), &value);
    if (st.IsNotFound()) return std::optional<FileState>();
    if (!st.ok()) return db_error("read", st);
    auto decoded = decode_file_state(value);
    if (!decoded)
        return make_error(EBADMSG, "state record of '{}': {}", path, decoded.error().message);
    return std::optional<FileState>(std::move(*decoded));
}

Result<void> StateStore::put(std::string_view path, const FileState& state) {
    Batch batch;
    batch.put(path, state);
    return apply(batch);
}

Result<void> StateStore::erase(std::string_view path) {
    Batch batch;
    batch.erase(path);
    return apply(batch);
}

Result<void> StateStore::apply(const Batch& batch) {
    for (const Batch::Op& op : batch.ops_)
        if (!op.aux && !is_valid_path(op.path)) return invalid_path(op.path);
    // The stripes involved, locked in index order so that two batches cannot deadlock.
    std::vector<size_t> indices;
    for (const Batch::Op& op : batch.ops_)
        if (!op.aux) indices.push_back(static_cast<size_t>(&stripe(op.path) - stripes_.data()));
    std::sort(indices.begin(), indices.end());
    indices.erase(std::unique(indices.begin(), indices.end()), indices.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    for (size_t i : indices)
        locks.emplace_back(stripes_[i]);

    Plan plan(*this);
    // What the steps so far left at a path (nullopt: erased), for the mark_dirty steps.
    std::map<std::string, std::optional<FileState>, std::less<>> now;
    const bool marks = std::any_of(batch.ops_.begin(), batch.ops_.end(),
                                   [](const Batch::Op& op) { return op.mark_dirty; });
    for (const Batch::Op& op : batch.ops_) {
        if (op.aux) {
            plan.aux(*op.aux);
            continue;
        }
        if (op.removal) {
            if (op.state)
                plan.put_removal(op.path, encode(*op.state));
            else
                plan.erase_removal(op.path);
            continue;
        }
        if (op.mark_dirty) {
            std::optional<FileState> current;
            if (auto it = now.find(op.path); it != now.end()) {
                current = it->second;
            } else {
                std::string value;
                leveldb::Status st = db_->Get(leveldb::ReadOptions(), file_key(op.path), &value);
                if (!st.ok() && !st.IsNotFound()) return db_error("read", st);
                if (st.ok()) {
                    auto decoded = decode_file_state(value);
                    current = decoded ? std::move(*decoded) : FileState{};
                }
            }
            if (current && current->phase == Phase::dirty) continue; // queued already
            FileState state = current.value_or(FileState{});
            state.phase = Phase::dirty;
            state.attempts = 0;
            state.last_error.clear();
            if (auto done = plan.put(op.path, encode(state), Phase::dirty); !done) return done;
            now[op.path] = std::move(state);
            continue;
        }
        auto done =
            op.state ? plan.put(op.path, encode(*op.state), op.state->phase) : plan.erase(op.path);
        if (!done) return done;
        if (marks) now[op.path] = op.state;
    }
    return commit(plan);
}

Result<void> StateStore::rename_path(std::string_view from, std::string_view to) {
    if (!is_valid_path(from)) return invalid_path(from);
    if (!is_valid_path(to)) return invalid_path(to);
    if (from == to) return {};
    std::mutex* first = &stripe(from);
    std::mutex* second = &stripe(to);
    if (second < first) std::swap(first, second);
    std::unique_lock lock1(*first);
    std::unique_lock<std::mutex> lock2;
    if (second != first) lock2 = std::unique_lock(*second);

    Plan plan(*this);
    if (auto done = plan.erase(to); !done) return done;
    std::string value;
    leveldb::Status st = db_->Get(leveldb::ReadOptions(), file_key(from), &value);
    if (st.ok()) {
        auto old = stored_from_value(from, value);
        if (!old) return std::move(old).error();
        if (auto done = plan.erase(from, *old); !done) return done;
        if (auto done = plan.put(to, value, old->phase); !done) return done;
    } else if (!st.IsNotFound()) {
        return db_error("read", st);
    }
    return commit(plan);
}

Result<std::vector<std::pair<std::string, std::string>>>
StateStore::read_subtree(std::string_view dir) const {
    std::vector<std::pair<std::string, std::string>> records;
    leveldb::Status st = scan_subtree(db_, leveldb::ReadOptions(), dir,
                                      [&](std::string_view path, std::string_view value) {
                                          records.emplace_back(path, value);
                                          return true;
                                      });
    if (!st.ok()) return db_error("scan", st);
    return records;
}

Result<void> StateStore::rename_prefix(std::string_view from_dir, std::string_view to_dir) {
    if (!is_valid_path(from_dir)) return invalid_path(from_dir);
    if (!is_valid_path(to_dir)) return invalid_path(to_dir);
    if (from_dir == to_dir) return {};
    auto inside = [](std::string_view path, std::string_view dir) {
        return path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/';
    };
    if (inside(to_dir, from_dir) || inside(from_dir, to_dir))
        return make_error(EINVAL,
                          "state store: cannot rename '{}' to '{}': one is inside the other",
                          from_dir, to_dir);

    auto locks = lock_all();
    auto replaced = read_subtree(to_dir);
    if (!replaced) return std::move(replaced).error();
    auto moved = read_subtree(from_dir);
    if (!moved) return std::move(moved).error();

    Plan plan(*this);
    for (const auto& [path, value] : *replaced) {
        auto old = stored_from_value(path, value);
        if (!old) return std::move(old).error();
        if (auto done = plan.erase(path, *old); !done) return done;
    }
    std::string target(to_dir);
    for (const auto& [path, value] : *moved) {
        auto old = stored_from_value(path, value);
        if (!old) return std::move(old).error();
        if (auto done = plan.erase(path, *old); !done) return done;
        target.resize(to_dir.size());
        target.append(path, from_dir.size());
        if (auto done = plan.put(target, value, old->phase); !done) return done;
    }
    return commit(plan);
}

Result<void> StateStore::erase_prefix(std::string_view dir) {
    if (!is_valid_path(dir)) return invalid_path(dir);
    auto locks = lock_all();
    auto records = read_subtree(dir);
    if (!records) return std::move(records).error();
    Plan plan(*this);
    for (const auto& [path, value] : *records) {
        auto old = stored_from_value(path, value);
        if (!old) return std::move(old).error();
        if (auto done = plan.erase(path, *old); !done) return done;
    }
    return commit(plan);
}

namespace {

// One record of a scan, decoded and handed to `visit`; a record that does not decode ends the
// scan, with EBADMSG naming it in `failure`.
bool visit_record(std::string_view path, std::string_view value, const StateStore::Visitor& visit,
                  std::optional<Error>& failure) {
    auto decoded = decode_file_state(value);
    if (!decoded) {
        failure = make_error(EBADMSG, "state record of '{}': {}", path, decoded.error().message);
        return false;
    }
    return visit(path, *decoded);
}

// What a scan ended with: the record that stopped it, else LevelDB's status.
Result<void> scan_result(std::optional<Error> failure, const leveldb::Status& st) {
    if (failure) return std::move(*failure);
    if (!st.ok()) return db_error("scan", st);
    return {};
}

} // namespace

Result<void> StateStore::for_each(std::string_view dir, const Visitor& visit) const {
    if (!dir.empty() && !is_valid_path(dir)) return invalid_path(dir);
    Snapshot snapshot(db_);
    std::optional<Error> failure;
    leveldb::Status st = scan_subtree(db_, snapshot.options(), dir,
                                      [&](std::string_view path, std::string_view value) {
                                          return visit_record(path, value, visit, failure);
                                      });
    return scan_result(std::move(failure), st);
}

Result<void> StateStore::for_each_in_phase(Phase phase, const Visitor& visit) const {
    if (static_cast<size_t>(phase) >= FileState::phase_count)
        return make_error(EINVAL, "state store: invalid phase {}", static_cast<int>(phase));
    Snapshot snapshot(db_);
    std::optional<Error> failure;
    std::string value;
    leveldb::Status st = scan_prefix(
        db_, snapshot.options(), phase_key(phase, ""), [&](std::string_view key, std::string_view) {
            std::string_view path = key.substr(2);
            leveldb::Status got = db_->Get(snapshot.options(), file_key(path), &value);
            if (!got.ok()) {
                failure = got.IsNotFound()
                              ? make_error(EBADMSG,
                                           "state store: '{}' is indexed as {} but has "
                                           "no record",
                                           path, phase_name(phase))
                              : db_error("read", got);
                return false;
            }
            return visit_record(path, value, visit, failure);
        });
    return scan_result(std::move(failure), st);
}

PhaseCounts StateStore::counts() const {
    PhaseCounts counts;
    for (size_t i = 0; i < counts_.size(); ++i)
        counts.by_phase[i] = counts_[i].load(std::memory_order_relaxed);
    return counts;
}

Result<void> StateStore::mark_dirty(std::string_view path) {
    if (!is_valid_path(path)) return invalid_path(path);
    std::lock_guard lock(stripe(path));
    std::string value;
    leveldb::Status st = db_->Get(leveldb::ReadOptions(), file_key(path), &value);
    if (!st.ok() && !st.IsNotFound()) return db_error("read", st);
    FileState state;
    Stored old;
    if (st.ok()) {
        auto decoded = decode_file_state(value);
        if (decoded && decoded->phase == Phase::dirty) return {}; // already queued, durably
        if (decoded) state = std::move(*decoded);
        auto was = stored_from_value(path, value);
        if (!was) return std::move(was).error();
        old = *was;
    }
    state.phase = Phase::dirty;
    state.attempts = 0;
    state.last_error.clear();
    Plan plan(*this);
    if (auto done = plan.put(path, encode(state), Phase::dirty, old); !done) return done;
    return commit(plan);
}

Result<void> StateStore::put_removal(std::string_view path, const FileState& state) {
    Batch batch;
    batch.put_removal(path, state);
    return apply(batch);
}

Result<void> StateStore::erase_removal(std::string_view path) {
    Batch batch;
    batch.erase_removal(path);
    return apply(batch);
}

Result<std::optional<FileState>> StateStore::get_removal(std::string_view path) const {
    if (!is_valid_path(path)) return invalid_path(path);
    std::string value;
    leveldb::Status st = db_->Get(leveldb::ReadOptions(), removal_key(path), &value);
    if (st.IsNotFound()) return std::optional<FileState>();
    if (!st.ok()) return db_error("read", st);
    auto decoded = decode_file_state(value);
    if (!decoded)
        return make_error(EBADMSG, "removal record of '{}': {}", path, decoded.error().message);
    return std::optional<FileState>(std::move(*decoded));
}

Result<std::vector<PathState>> StateStore::list_removals() const {
    std::vector<PathState> removals;
    std::optional<Error> failure;
    Snapshot snapshot(db_);
    leveldb::Status st =
        scan_prefix(db_, snapshot.options(), std::string(1, removal_prefix),
                    [&](std::string_view key, std::string_view value) {
                        auto decoded = decode_file_state(value);
                        if (!decoded) {
                            failure = make_error(EBADMSG, "removal record of '{}': {}",
                                                 key.substr(1), decoded.error().message);
                            return false;
                        }
                        removals.push_back({std::string(key.substr(1)), std::move(*decoded)});
                        return true;
                    });
    if (failure) return std::move(*failure);
    if (!st.ok()) return db_error("scan", st);
    return removals;
}

Result<std::optional<std::string>> StateStore::aux_get(AuxKind kind, std::string_view key) const {
    std::string value;
    leveldb::Status st = db_->Get(leveldb::ReadOptions(), aux_key(kind, key), &value);
    if (st.IsNotFound()) return std::optional<std::string>();
    if (!st.ok()) return db_error("read", st);
    return std::optional<std::string>(std::move(value));
}

Result<void> StateStore::aux_put(AuxKind kind, std::string_view key, std::string_view value) {
    return aux_apply({AuxOp{kind, std::string(key), std::string(value)}});
}

Result<void> StateStore::aux_erase(AuxKind kind, std::string_view key) {
    return aux_apply({AuxOp{kind, std::string(key), std::nullopt}});
}

Result<void> StateStore::aux_apply(const std::vector<AuxOp>& ops) {
    if (ops.empty()) return {};
    leveldb::WriteBatch batch;
    for (const AuxOp& op : ops) {
        if (op.value)
            batch.Put(aux_key(op.kind, op.key), *op.value);
        else
            batch.Delete(aux_key(op.kind, op.key));
    }
    leveldb::Status st = db_->Write(sync_write(), &batch);
    if (!st.ok()) return db_error("write", st);
    return {};
}

Result<std::optional<std::pair<std::string, std::string>>>
StateStore::aux_next(AuxKind kind, std::string_view prefix, std::string_view from) const {
    using Found = std::optional<std::pair<std::string, std::string>>;
    std::string full_prefix = aux_key(kind, prefix);
    std::string start = aux_key(kind, from < prefix ? prefix : from);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    it->Seek(start);
    if (it->Valid()) {
        std::string_view key = as_view(it->key());
        if (key.starts_with(full_prefix))
            return Found(std::pair{std::string(key.substr(1)), std::string(as_view(it->value()))});
    }
    if (!it->status().ok()) return db_error("scan", it->status());
    return Found();
}

Result<void> StateStore::aux_for_each(AuxKind kind, std::string_view prefix,
                                      const AuxVisitor& visit) const {
    Snapshot snapshot(db_);
    leveldb::Status st = scan_prefix(
        db_, snapshot.options(), aux_key(kind, prefix),
        [&](std::string_view key, std::string_view value) { return visit(key.substr(1), value); });
    if (!st.ok()) return db_error("scan", st);
    return {};
}

Result<bool> StateStore::holds_records() const {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next())
        if (as_view(it->key()) != identity_key) return true;
    if (!it->status().ok()) return db_error("scan", it->status());
    return false;
}

Result<std::vector<PathState>> StateStore::list_pending(size_t limit) const {
    std::vector<PathState> pending;
    for (Phase phase : {Phase::dirty, Phase::uploading, Phase::copied}) {
        if (pending.size() >= limit) break;
        auto scanned = for_each_in_phase(phase, [&](std::string_view path, const FileState& s) {
            pending.push_back({std::string(path), s});
            return pending.size() < limit;
        });
        if (!scanned) return std::move(scanned).error();
    }
    return pending;
}

Result<void> StateStore::count_phases() {
    std::array<uint64_t, FileState::phase_count> counts{};
    leveldb::Status st = scan_prefix(db_, leveldb::ReadOptions(), std::string(1, phase_prefix),
                                     [&](std::string_view key, std::string_view) {
                                         if (key.size() < 2) return true;
                                         auto phase = static_cast<uint8_t>(key[1]);
                                         if (phase < counts.size()) ++counts[phase];
                                         return true;
                                     });
    if (!st.ok()) return db_error("counting records", st);
    for (size_t i = 0; i < counts.size(); ++i)
        counts_[i] = counts[i];
    return {};
}

} // namespace rfs::state
