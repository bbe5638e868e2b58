#include "lib/migrate/intent_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "lib/common/log.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/state/codec.hpp"

namespace rfs::migrate {

namespace {

constexpr const char* kFileName = "/namespace.journal";
// Rewritten from this size on (when mostly settled notes): some thousands of notes.
constexpr std::uint64_t kCompactBytes = 1 << 20;

// A journal line: a varint length, then the record: a tag byte and the intent's id, and for an
// intent its kind, paths and identities (lib/state/codec.hpp's encoding).
// kSettled: an after-the-fact note recorded (the others are marked applied in the state store).
enum Tag : std::uint8_t { kIntent = 'I', kMade = 'M', kNotMade = 'N', kSettled = 'S' };

std::string frame(const state::codec::Writer& record) {
    state::codec::Writer line;
    line.bytes(record.data());
    return std::move(line).data();
}

std::string outcome_line(Tag tag, std::uint64_t id) {
    state::codec::Writer w;
    w.byte(tag);
    w.varint(id);
    return frame(w);
}

std::string intent_line(const IntentJournal::Intent& intent) {
    state::codec::Writer w;
    w.byte(kIntent);
    w.varint(intent.id);
    w.byte(static_cast<std::uint8_t>(intent.kind));
    w.bytes(intent.from);
    w.bytes(intent.to);
    w.varint(intent.moving.dev);
    w.varint(intent.moving.ino);
    w.varint(intent.other.dev);
    w.varint(intent.other.ino);
    return frame(w);
}

std::string applied_key(std::uint64_t id) {
    // Big-endian: the keys sort as the ids do.
    std::string key(8, '\0');
    for (int i = 7; i >= 0; --i, id >>= 8)
        key[static_cast<size_t>(i)] = static_cast<char>(id & 0xff);
    return key;
}

// The id applied_key() encodes.
std::uint64_t id_of_applied_key(std::string_view key) {
    std::uint64_t id = 0;
    for (char c : key)
        id = (id << 8) | static_cast<unsigned char>(c);
    return id;
}

IntentJournal::Identity identity_at(int root, const std::string& rel, bool* present) {
    struct stat st;
    *present = lstat_beneath(root, rel, &st) == 0;
    return *present ? IntentJournal::Identity{st.st_dev, st.st_ino} : IntentJournal::Identity{};
}

// Whether SOURCE shows `intent` made: what it removed is gone from its name (or replaced), what
// it moved is at its new name and no longer at the old one.
bool looks_made(int root, const IntentJournal::Intent& intent) {
    using Kind = IntentJournal::Kind;
    bool at_from = false, at_to = false;
    IntentJournal::Identity from = identity_at(root, intent.from, &at_from);
    switch (intent.kind) {
    case Kind::unlink:
    case Kind::rmdir:
        return !at_from || from != intent.moving;
    case Kind::rename: {
        IntentJournal::Identity to = identity_at(root, intent.to, &at_to);
        return at_to && to == intent.moving && !(at_from && from == intent.moving);
    }
    case Kind::exchange: {
        IntentJournal::Identity to = identity_at(root, intent.to, &at_to);
        return at_from && at_to && from == intent.other && to == intent.moving;
    }
    default: // noted after the fact: made
        return true;
    }
}

struct Parsed {
    std::vector<IntentJournal::Intent> intents; // in journal order
    std::map<std::uint64_t, bool> outcome;      // id -> made
    std::set<std::uint64_t> settled;            // after-the-fact notes recorded
    std::uint64_t max_id = 0;
};

// Reads every whole line of `bytes`; a torn last line (the daemon died writing it) ends it.
Parsed parse(std::string_view bytes) {
    Parsed out;
    state::codec::Reader lines(bytes);
    std::string record;
    while (!lines.at_end() && lines.bytes(record)) {
        state::codec::Reader r(record);
        std::uint8_t tag = 0;
        std::uint64_t id = 0;
        if (!r.byte(tag) || !r.varint(id)) break;
        out.max_id = std::max(out.max_id, id);
        if (tag == kMade || tag == kNotMade) {
            out.outcome[id] = tag == kMade;
            continue;
        }
        if (tag == kSettled) {
            out.settled.insert(id);
            continue;
        }
        IntentJournal::Intent intent;
        intent.id = id;
        std::uint8_t kind = 0;
        if (tag != kIntent || !r.byte(kind) || !r.bytes(intent.from) || !r.bytes(intent.to) ||
            !r.varint(intent.moving.dev) || !r.varint(intent.moving.ino) ||
            !r.varint(intent.other.dev) || !r.varint(intent.other.ino))
            break;
        intent.kind = static_cast<IntentJournal::Kind>(kind);
        out.intents.push_back(std::move(intent));
    }
    return out;
}

} // namespace

state::AuxOp IntentJournal::applied_op(std::uint64_t id) {
    return state::AuxOp{state::AuxKind::applied_intent, applied_key(id), std::string()};
}

state::Result<std::unique_ptr<IntentJournal>>
IntentJournal::open(const std::string& state_dir, state::StateStore& state, int source_root) {
    const std::string path = state_dir + kFileName;
    int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;
        return state::make_error(err, "cannot open {}: {}", path, std::strerror(err));
    }
    std::string bytes;
    char buf[65536];
    for (off_t at = 0;;) {
        ssize_t n = ::pread(fd, buf, sizeof buf, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            return state::make_error(err, "cannot read {}: {}", path, std::strerror(err));
        }
        if (n == 0) break;
        bytes.append(buf, static_cast<size_t>(n));
        at += n;
    }
    Parsed parsed = parse(bytes);
    // Ids only grow: past every id of the journal and every applied mark left.
    std::uint64_t next = parsed.max_id + 1;
    auto last = state.aux_for_each(state::AuxKind::applied_intent, "",
                                   [&](std::string_view key, std::string_view) {
                                       next = std::max(next, id_of_applied_key(key) + 1);
                                       return true;
                                   });
    if (!last) {
        ::close(fd);
        return std::move(last).error();
    }
    std::unique_ptr<IntentJournal> journal(new IntentJournal(state, path, fd, next, bytes.size()));
    for (auto& intent : parsed.intents) {
        auto outcome = parsed.outcome.find(intent.id);
        if (after_the_fact(intent.kind) && parsed.settled.count(intent.id)) continue;
        if (!after_the_fact(intent.kind)) {
            auto applied = state.aux_get(state::AuxKind::applied_intent, applied_key(intent.id));
            if (!applied) return std::move(applied).error();
            if (*applied) continue;
            bool made =
                outcome != parsed.outcome.end() ? outcome->second : looks_made(source_root, intent);
            if (!made) continue;
        }
        // Outstanding again until recorded: a rewrite of the journal keeps it, made.
        Outstanding& o = journal->outstanding_[intent.id];
        o.parts = intent.kind == Kind::closed || intent.kind == Kind::made_dir ? 2 : 1;
        o.after_the_fact = after_the_fact(intent.kind);
        o.lines = intent_line(intent);
        if (!after_the_fact(intent.kind)) o.lines += outcome_line(kMade, intent.id);
        journal->outstanding_bytes_ += o.lines.size();
        journal->unrecorded_.push_back(std::move(intent));
    }
    if (!journal->unrecorded_.empty())
        RFS_LOG_INFO("recording {} change(s) made before the last stop",
                     journal->unrecorded_.size());
    return journal;
}

IntentJournal::IntentJournal(state::StateStore& state, std::string path, int fd,
                             std::uint64_t next_id, std::uint64_t size)
    : state_(state), path_(std::move(path)), fd_(fd), next_id_(next_id), size_(size) {}

IntentJournal::~IntentJournal() {
    ::close(fd_);
}

bool IntentJournal::after_the_fact(Kind kind) {
    return kind == Kind::touched || kind == Kind::touched_names || kind == Kind::made_dir ||
           kind == Kind::closed;
}

bool IntentJournal::append(const std::string& line) {
    // One write(2) per line (O_APPEND): lines of two threads never interleave.
    ssize_t n = ::write(fd_, line.data(), line.size());
    if (n == static_cast<ssize_t>(line.size())) {
        size_ += line.size();
        ++appended_;
        return true;
    }
    if (!failed_logged_) {
        failed_logged_ = true;
        RFS_LOG_WARN("cannot write the namespace journal in state_dir: {}",
                     n < 0 ? std::strerror(errno) : "short write");
    }
    return false;
}

std::uint64_t IntentJournal::note(Kind kind, std::string from, std::string to, Identity moving,
                                  Identity other, unsigned parts, bool durable) {
    if (parts == 0) return 0;
    std::lock_guard lock(mu_);
    const std::uint64_t id = next_id_++;
    std::string line = intent_line({id, kind, std::move(from), std::move(to), moving, other});
    if (!append(line)) return 0;
    // Under the lock, so that a compaction cannot swap the descriptor meanwhile; durable notes
    // are rare (directory and placeholder renames), so the others seldom wait for it.
    if (durable) {
        ++syncs_;
        if (::fdatasync(fd_) == 0)
            synced_upto_ = appended_;
        else
            sync_failed(errno);
    }
    outstanding_bytes_ += line.size();
    outstanding_[id] = Outstanding{parts, std::move(line), after_the_fact(kind)};
    return id;
}

void IntentJournal::made(std::uint64_t id) {
    if (id == 0) return;
    std::lock_guard lock(mu_);
    std::string line = outcome_line(kMade, id);
    if (!append(line)) return;
    if (auto it = outstanding_.find(id); it != outstanding_.end()) {
        outstanding_bytes_ += line.size();
        it->second.lines += line;
    }
}

void IntentJournal::not_made(std::uint64_t id) {
    if (id == 0) return;
    std::lock_guard lock(mu_);
    append(outcome_line(kNotMade, id));
    settle(id);
}

void IntentJournal::recorded(std::uint64_t id) {
    if (id == 0) return;
    std::lock_guard lock(mu_);
    settle(id);
}

std::uint64_t IntentJournal::outstanding() const {
    std::lock_guard lock(mu_);
    return outstanding_.size();
}

void IntentJournal::sync_failed(int err) {
    if (sync_failed_logged_) return;
    sync_failed_logged_ = true;
    RFS_LOG_WARN("cannot sync the namespace journal in state_dir: {} (a power loss may forget a "
                 "namespace change)",
                 std::strerror(err));
}

void IntentJournal::sync_outstanding() {
    std::uint64_t upto;
    int fd;
    {
        std::lock_guard lock(mu_);
        if (outstanding_.empty() || synced_upto_ >= appended_) return;
        // A descriptor of its own: the sync runs without the lock (notes go on meanwhile, and
        // a compaction may replace fd_, whose file this one still syncs: the new file was synced
        // whole before it replaced it).
        fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) return sync_failed(errno);
        upto = appended_;
        ++syncs_;
    }
    const int rc = ::fdatasync(fd);
    const int err = errno;
    ::close(fd);
    std::lock_guard lock(mu_);
    if (rc != 0) return sync_failed(err);
    synced_upto_ = std::max(synced_upto_, upto);
}

std::uint64_t IntentJournal::syncs() const {
    std::lock_guard lock(mu_);
    return syncs_;
}

void IntentJournal::settle(std::uint64_t id) {
    auto it = outstanding_.find(id);
    if (it == outstanding_.end() || --it->second.parts > 0) return;
    // The others are marked applied by the batch that recorded them (not read for these).
    if (it->second.after_the_fact) append(outcome_line(kSettled, id));
    outstanding_bytes_ -= it->second.lines.size();
    outstanding_.erase(it);
    // Rewritten when it is large and mostly settled notes (so not at every settle of a journal
    // whose outstanding notes alone are large).
    if (size_ >= kCompactBytes && size_ >= 4 * outstanding_bytes_) compact();
}

void IntentJournal::compact() {
    const std::string tmp = path_ + ".new";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    std::string lines;
    lines.reserve(outstanding_bytes_);
    for (const auto& [id, o] : outstanding_)
        lines += o.lines;
    // Synced before it replaces the journal: it may hold durable notes, and the old file did.
    bool ok = fd >= 0 &&
              ::write(fd, lines.data(), lines.size()) == static_cast<ssize_t>(lines.size()) &&
              ::fdatasync(fd) == 0 && ::rename(tmp.c_str(), path_.c_str()) == 0;
    if (!ok) {
        RFS_LOG_WARN("cannot rewrite the namespace journal in state_dir: {}", std::strerror(errno));
        if (fd >= 0) ::close(fd);
        return;
    }
    ::close(fd_);
    fd_ = fd;
    size_ = lines.size();
    // The rename made durable before the marks go: a power loss that kept the old journal
    // without its intents' applied marks would have them recorded again at the next start.
    const std::string dir = std::filesystem::path(path_).parent_path().string();
    if (UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        !dfd || ::fsync(dfd.get()) != 0) {
        RFS_LOG_WARN("cannot sync state_dir after rewriting the namespace journal: {}",
                     std::strerror(errno));
        return; // the marks stay (harmless: the next compaction drops them)
    }
    synced_upto_ = appended_; // what is outstanding is all in the new file, synced
    // The journal holds only the outstanding notes now: the other intents' marks go.
    std::vector<state::AuxOp> erase;
    auto scanned = state_.aux_for_each(
        state::AuxKind::applied_intent, "", [&](std::string_view key, std::string_view) {
            if (!outstanding_.count(id_of_applied_key(key)))
                erase.push_back({state::AuxKind::applied_intent, std::string(key), std::nullopt});
            return true;
        });
    if (scanned) scanned = state_.aux_apply(erase);
    if (!scanned)
        RFS_LOG_WARN("cannot drop the namespace journal's marks: {}", scanned.error().message);
}

} // namespace rfs::migrate
