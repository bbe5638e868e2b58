// The per-file state store on a real LevelDB in a temporary directory: round trips, reopening,
// kill -9 of a writer, the in-use and identity checks, and subtree renames with hostile names.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <leveldb/db.h>

#include "lib/state/state_store.hpp"
#include "test/state/temp_dir.hpp"

using namespace rfs::state;
using rfs::state::test::TempDir;

namespace {

OpenOptions options_for(const TempDir& dir, std::string source = "/srv/data") {
    OpenOptions o;
    o.state_dir = dir / "state";
    o.source = std::move(source);
    o.fingerprint = "layout-v1 bucket=riakfs";
    return o;
}

std::unique_ptr<StateStore> open_ok(const OpenOptions& o) {
    auto store = StateStore::open(o);
    INFO((store ? std::string() : store.error().message));
    REQUIRE(store.has_value());
    return std::move(*store);
}

FileState state_with(Phase phase, std::string version = "v1") {
    FileState s;
    s.phase = phase;
    s.version = std::move(version);
    s.sha256 = std::string(64, 'a');
    s.type = "default";
    s.bucket = "riakfs";
    s.key = "k";
    s.size = 4096;
    s.mtime_ns = 1'700'000'000'000'000'000;
    s.ino = 42;
    return s;
}

// Every (path, state) the store holds, through for_each("").
std::map<std::string, FileState> all_records(const StateStore& store) {
    std::map<std::string, FileState> records;
    auto scanned = store.for_each("", [&](std::string_view path, const FileState& s) {
        records.emplace(std::string(path), s);
        return true;
    });
    REQUIRE(scanned.has_value());
    return records;
}

std::vector<std::string> paths_under(const StateStore& store, std::string_view dir) {
    std::vector<std::string> paths;
    auto scanned = store.for_each(dir, [&](std::string_view path, const FileState&) {
        paths.emplace_back(path);
        return true;
    });
    REQUIRE(scanned.has_value());
    return paths;
}

// The counts must always equal what a full scan finds.
void check_counts(const StateStore& store) {
    PhaseCounts expected;
    for (const auto& [path, s] : all_records(store))
        ++expected.by_phase[static_cast<size_t>(s.phase)];
    CHECK(store.counts().by_phase == expected.by_phase);
}

} // namespace

TEST_CASE("open creates state_dir 0700; records round-trip", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    auto store = open_ok(options_for(dir));
    struct stat st {};
    REQUIRE(::stat((dir / "state").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);

    auto missing = store->get("nothing/here");
    REQUIRE(missing.has_value());
    CHECK_FALSE(missing->has_value());

    FileState s = state_with(Phase::copied);
    s.vclock = "a85hYGBg";
    s.last_error = "timeout";
    s.attempts = 3;
    REQUIRE(store->put("dir/file.txt", s).has_value());
    auto got = store->get("dir/file.txt");
    REQUIRE(got.has_value());
    REQUIRE(got->has_value());
    CHECK(**got == s);

    s.phase = Phase::verified;
    REQUIRE(store->put("dir/file.txt", s).has_value());
    CHECK((*store->get("dir/file.txt"))->phase == Phase::verified);
    CHECK(store->counts()[Phase::verified] == 1);
    CHECK(store->counts()[Phase::copied] == 0);

    REQUIRE(store->erase("dir/file.txt").has_value());
    CHECK_FALSE(store->get("dir/file.txt")->has_value());
    REQUIRE(store->erase("dir/file.txt").has_value()); // again: nothing to do
    CHECK(store->counts().total() == 0);
}

TEST_CASE("malformed paths are refused", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    auto store = open_ok(options_for(dir));
    for (std::string bad : {std::string(""), std::string("/abs"), std::string("trail/"),
                            std::string("a//b"), std::string("."), std::string("a/./b"),
                            std::string(".."), std::string("a/../b"), std::string("nul\0x", 5)}) {
        INFO("path '" << bad << "'");
        auto put = store->put(bad, state_with(Phase::dirty));
        REQUIRE_FALSE(put.has_value());
        CHECK(put.error().code == EINVAL);
        CHECK_FALSE(store->get(bad).has_value());
        CHECK_FALSE(store->mark_dirty(bad).has_value());
    }
    CHECK(store->counts().total() == 0);
    CHECK(is_valid_path("...")); // a legal name
    CHECK(is_valid_path("a/.b/c.."));
}

TEST_CASE("reopening keeps every record and the counts", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    std::map<std::string, FileState> written;
    {
        auto store = open_ok(options_for(dir));
        for (int i = 0; i < 300; ++i) {
            std::string path = "d" + std::to_string(i % 7) + "/f" + std::to_string(i);
            FileState s =
                state_with(static_cast<Phase>(i % FileState::phase_count), "v" + std::to_string(i));
            REQUIRE(store->put(path, s).has_value());
            written[path] = s;
        }
        REQUIRE(store->erase("d0/f0").has_value());
        written.erase("d0/f0");
    }
    auto store = open_ok(options_for(dir));
    CHECK(all_records(*store) == written);
    CHECK(store->counts().total() == written.size());
    CHECK(store->counts()[Phase::dirty] == 49); // i % 6 == 0 for 50 values of i, minus f0
    check_counts(*store);
}

TEST_CASE("a batch applies atomically and in order", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    auto store = open_ok(options_for(dir));
    REQUIRE(store->put("old", state_with(Phase::released)).has_value());

    StateStore::Batch batch;
    batch.put("a", state_with(Phase::dirty));
    batch.put("a", state_with(Phase::copied, "v2")); // the later put wins
    batch.put("b", state_with(Phase::uploading));
    batch.erase("b");
    batch.erase("old");
    batch.put("c", state_with(Phase::verified));
    REQUIRE(store->apply(batch).has_value());

    auto records = all_records(*store);
    REQUIRE(records.size() == 2);
    CHECK(records["a"] == state_with(Phase::copied, "v2"));
    CHECK(records["c"] == state_with(Phase::verified));
    check_counts(*store);

    // One bad path and nothing of the batch is applied.
    StateStore::Batch bad;
    bad.put("d", state_with(Phase::dirty));
    bad.erase("/x");
    CHECK_FALSE(store->apply(bad).has_value());
    CHECK_FALSE(store->get("d")->has_value());
}

TEST_CASE("records acknowledged before kill -9 are all there", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    OpenOptions o = options_for(dir);
    int acks[2];
    REQUIRE(::pipe(acks) == 0);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The child writes as fast as it can and reports each acknowledged record.
        ::close(acks[0]);
        auto store = StateStore::open(o);
        if (!store) ::_exit(2);
        for (uint32_t i = 0;; ++i) {
            std::string path = "dir" + std::to_string(i % 10) + "/file" + std::to_string(i);
            bool ok =
                (i % 3 == 0)
                    ? (*store)->mark_dirty(path).has_value()
                    : (*store)->put(path, state_with(Phase::copied, std::to_string(i))).has_value();
            if (!ok || ::write(acks[1], &i, sizeof i) != sizeof i) ::_exit(3);
        }
    }
    ::close(acks[1]);
    uint32_t last = 0;
    uint32_t received = 0;
    while (received < 300) {
        REQUIRE(::read(acks[0], &last, sizeof last) == sizeof last);
        ++received;
    }
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    // Acknowledgements already in the pipe count too: those writes had returned.
    while (::read(acks[0], &last, sizeof last) == sizeof last)
        ++received;
    ::close(acks[0]);
    REQUIRE(last + 1 == received);

    auto store = open_ok(o);
    for (uint32_t i = 0; i < received; ++i) {
        std::string path = "dir" + std::to_string(i % 10) + "/file" + std::to_string(i);
        auto got = store->get(path);
        INFO(path);
        REQUIRE(got.has_value());
        REQUIRE(got->has_value());
        if (i % 3 == 0) {
            CHECK((*got)->phase == Phase::dirty);
        } else {
            CHECK(**got == state_with(Phase::copied, std::to_string(i)));
        }
    }
    CHECK(store->counts().total() >= received);
    check_counts(*store);
    auto pending = store->list_pending();
    REQUIRE(pending.has_value());
    CHECK(pending->size() == store->counts().total());
}

TEST_CASE("a second open of the same state_dir is refused with one clear line", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    OpenOptions o = options_for(dir);
    const std::string expected = "state_dir " + o.state_dir + " is in use by another riakfs";
    {
        auto first = open_ok(o);
        auto second = StateStore::open(o);
        REQUIRE_FALSE(second.has_value());
        CHECK(second.error().code == EBUSY);
        CHECK(second.error().message == expected);
    }
    open_ok(o); // free again once closed

    // Held by another process.
    int ready[2];
    int release[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(release) == 0);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        auto store = StateStore::open(o);
        char c = store ? 'y' : 'n';
        if (::write(ready[1], &c, 1) != 1) ::_exit(2);
        (void)!::read(release[0], &c, 1);
        ::_exit(store ? 0 : 1);
    }
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    REQUIRE(c == 'y');
    auto refused = StateStore::open(o);
    CHECK_FALSE(refused.has_value());
    if (!refused) CHECK(refused.error().message == expected);
    REQUIRE(::write(release[1], "x", 1) == 1);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    for (int fd : {ready[0], ready[1], release[0], release[1]})
        ::close(fd);
    open_ok(o);
}

TEST_CASE("a state_dir of another SOURCE or fingerprint is refused unless adopted",
          "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    OpenOptions mine = options_for(dir, "/srv/data");
    {
        auto store = open_ok(mine);
        REQUIRE(store->put("kept", state_with(Phase::released)).has_value());
    }
    open_ok(mine); // same identity: fine

    OpenOptions other_source = options_for(dir, "/srv/other");
    auto refused = StateStore::open(other_source);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == EEXIST);
    CHECK(refused.error().message.find("belongs to SOURCE /srv/data, not /srv/other") !=
          std::string::npos);

    OpenOptions other_layout = mine;
    other_layout.fingerprint = "layout-v2";
    auto refused_layout = StateStore::open(other_layout);
    REQUIRE_FALSE(refused_layout.has_value());
    CHECK(refused_layout.error().code == EEXIST);
    CHECK(refused_layout.error().message.find("layout-v2") != std::string::npos);

    other_source.adopt = true;
    {
        auto adopted = open_ok(other_source);
        auto kept = adopted->get("kept");
        REQUIRE(kept.has_value());
        CHECK(kept->has_value());
    }
    // The adopted identity is now the recorded one.
    other_source.adopt = false;
    open_ok(other_source);
    CHECK_FALSE(StateStore::open(mine).has_value());
}

TEST_CASE("state_dir must be a directory", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    OpenOptions o = options_for(dir);
    REQUIRE(::close(::open(o.state_dir.c_str(), O_CREAT | O_WRONLY, 0600)) == 0);
    auto refused = StateStore::open(o);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ENOTDIR);
    o.state_dir.clear();
    CHECK_FALSE(StateStore::open(o).has_value());
}

TEST_CASE("rename_prefix moves exactly a subtree, whatever the bytes", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    auto store = open_ok(options_for(dir));

    // A 255-byte name made of every byte but NUL and '/', high bytes included (not UTF-8).
    std::string hostile;
    for (int b = 1; b < 256; ++b)
        if (b != '/') hostile.push_back(static_cast<char>(b));
    hostile.push_back('\xff');
    REQUIRE(hostile.size() == 255);

    const std::string d = "top/" + hostile;
    // Siblings whose names start with d's name: bytes below '/' (sort between "d" and "d/"),
    // '/'-adjacent ones, and above.
    std::vector<std::string> siblings = {
        d + "\x01", d + "!",      d + ".",       d + "-x/y",
        d + "0",    d + "\xff/z", d + "\x2e/in", "top/" + hostile.substr(0, 254),
    };
    std::vector<std::string> inside = {"f", "sub/g", "sub/deeper/" + hostile, "\xc3\x28"};

    REQUIRE(store->put(d, state_with(Phase::verified, "self")).has_value());
    for (const auto& s : siblings)
        REQUIRE(store->put(s, state_with(Phase::dirty, s)).has_value());
    for (const auto& in : inside)
        REQUIRE(store->put(d + "/" + in, state_with(Phase::released, in)).has_value());
    // Already at the destination: replaced by the rename.
    const std::string to = "moved/\xfe\xfd" + std::string(200, 'n');
    REQUIRE(store->put(to + "/stale", state_with(Phase::copied)).has_value());
    REQUIRE(store->put(to, state_with(Phase::copied)).has_value());
    auto counts_before = store->counts();

    REQUIRE(store->rename_prefix(d, to).has_value());

    CHECK_FALSE(store->get(d)->has_value());
    CHECK(paths_under(*store, d).empty());
    CHECK((*store->get(to))->version == "self");
    CHECK_FALSE(store->get(to + "/stale")->has_value());
    for (const auto& in : inside) {
        auto got = store->get(to + "/" + in);
        REQUIRE(got.has_value());
        REQUIRE(got->has_value());
        CHECK((*got)->version == in);
    }
    for (const auto& s : siblings) {
        INFO("sibling " << s.size());
        auto got = store->get(s);
        REQUIRE(got.has_value());
        REQUIRE(got->has_value());
        CHECK((*got)->version == s);
    }
    CHECK(paths_under(*store, to).size() == 1 + inside.size());
    CHECK(store->counts().total() == counts_before.total() - 2);
    check_counts(*store);

    // And back, over a destination that is a byte-prefix sibling of nothing.
    REQUIRE(store->rename_prefix(to, d).has_value());
    CHECK(paths_under(*store, d).size() == 1 + inside.size());
    check_counts(*store);
}

TEST_CASE("rename_prefix: a name that is a byte prefix of another is not its parent",
          "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    auto store = open_ok(options_for(dir));
    for (const char* p : {"a", "a/x", "a/y/z", "ab/x", "a!b", "a.x", "b/keep"})
        REQUIRE(store->put(p, state_with(Phase::released, p)).has_value());

    REQUIRE(store->rename_prefix("a", "c").has_value());
    auto records = all_records(*store);
    std::vector<std::string> paths;
    for (const auto& [path, s] : records)
        paths.push_back(path);
    CHECK(paths == std::vector<std::string>{"a!b", "a.x", "ab/x", "b/keep", "c", "c/x", "c/y/z"});
    CHECK(records["c/y/z"].version == "a/y/z");

    // "c" renamed over "ab": ab's old subtree was replaced.
    REQUIRE(store->rename_prefix("c", "ab").has_value());
    CHECK((*store->get("ab/x"))->version == "a/x");
    CHECK((*store->get("ab"))->version == "a");
    check_counts(*store);

    // Into itself or onto an ancestor: refused, nothing changed.
    auto into = store->rename_prefix("ab", "ab/sub");
    REQUIRE_FALSE(into.has_value());
    CHECK(into.error().code == EINVAL);
    CHECK_FALSE(store->rename_prefix("ab/y", "ab").has_value());
    CHECK(store->rename_prefix("ab", "ab").has_value());
    CHECK(all_records(*store).size() == 6);

    // A path with no records at all: the destination is still replaced.
    REQUIRE(store->rename_prefix("nothing", "b").has_value());
    CHECK_FALSE(store->get("b/keep")->has_value());
    check_counts(*store);
}

TEST_CASE("rename_path moves one record and replaces the target's", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    auto store = open_ok(options_for(dir));
    REQUIRE(store->put("src", state_with(Phase::released, "src")).has_value());
    REQUIRE(store->put("src/child", state_with(Phase::dirty, "child")).has_value());
    REQUIRE(store->put("dst", state_with(Phase::verified, "dst")).has_value());

    REQUIRE(store->rename_path("src", "dst").has_value());
    CHECK_FALSE(store->get("src")->has_value());
    CHECK((*store->get("dst"))->version == "src");
    CHECK((*store->get("src/child"))->version == "child"); // exact paths only
    check_counts(*store);

    // A source without a record: the target's record is dropped (it was replaced).
    REQUIRE(store->rename_path("unknown", "dst").has_value());
    CHECK_FALSE(store->get("dst")->has_value());
    CHECK(store->counts().total() == 1);
    check_counts(*store);
}

TEST_CASE("erase_prefix drops a subtree and nothing else", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    auto store = open_ok(options_for(dir));
    for (const char* p : {"x", "x/1", "x/2/3", "x0", "x-/1", "y"})
        REQUIRE(store->put(p, state_with(Phase::copied)).has_value());
    REQUIRE(store->erase_prefix("x").has_value());
    auto records = all_records(*store);
    std::vector<std::string> paths;
    for (const auto& [path, s] : records)
        paths.push_back(path);
    CHECK(paths == std::vector<std::string>{"x-/1", "x0", "y"});
    check_counts(*store);
    CHECK_FALSE(store->erase_prefix("").has_value());
}

TEST_CASE("for_each visits a directory and its subtree and can stop", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    auto store = open_ok(options_for(dir));
    for (const char* p : {"m", "m/a", "m/b/c", "m!", "ma", "n"})
        REQUIRE(store->put(p, state_with(Phase::dirty)).has_value());
    CHECK(paths_under(*store, "m") == std::vector<std::string>{"m", "m/a", "m/b/c"});
    CHECK(paths_under(*store, "m/b") == std::vector<std::string>{"m/b/c"});
    CHECK(paths_under(*store, "zzz").empty());
    CHECK(paths_under(*store, "").size() == 6);

    int visited = 0;
    REQUIRE(store->for_each("", [&](std::string_view, const FileState&) { return ++visited < 2; })
                .has_value());
    CHECK(visited == 2);

    // A visitor may write to the store: the scan reads a snapshot.
    REQUIRE(store
                ->for_each("m",
                           [&](std::string_view path, const FileState& s) {
                               FileState next = s;
                               next.phase = Phase::uploading;
                               return store->put(path, next).has_value();
                           })
                .has_value());
    CHECK(store->counts()[Phase::uploading] == 3);
    check_counts(*store);
}

TEST_CASE("the durable upload queue: mark_dirty and list_pending", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    OpenOptions o = options_for(dir);
    {
        auto store = open_ok(o);
        REQUIRE(store->mark_dirty("new/file").has_value());
        auto fresh = store->get("new/file");
        REQUIRE(fresh->has_value());
        CHECK(**fresh == FileState{});

        FileState released = state_with(Phase::released, "v7");
        released.vclock = "clock";
        released.attempts = 4;
        released.last_error = "old failure";
        REQUIRE(store->put("was/released", released).has_value());
        REQUIRE(store->mark_dirty("was/released").has_value());
        FileState expected = released;
        expected.phase = Phase::dirty;
        expected.attempts = 0;
        expected.last_error.clear();
        CHECK(**store->get("was/released") == expected); // object identity and vclock kept

        // Already dirty: left exactly as it is.
        FileState dirty_with_error = state_with(Phase::dirty, "v8");
        dirty_with_error.attempts = 2;
        REQUIRE(store->put("still/dirty", dirty_with_error).has_value());
        REQUIRE(store->mark_dirty("still/dirty").has_value());
        CHECK(**store->get("still/dirty") == dirty_with_error);

        REQUIRE(store->put("up", state_with(Phase::uploading)).has_value());
        REQUIRE(store->put("cp", state_with(Phase::copied)).has_value());
        REQUIRE(store->put("ok", state_with(Phase::verified)).has_value());
        REQUIRE(store->put("gone", state_with(Phase::released)).has_value());
        REQUIRE(store->put("half", state_with(Phase::releasing)).has_value());
        CHECK(store->counts().pending() == 5);
    }
    // After a restart the queue is what was pending, dirty first.
    auto store = open_ok(o);
    auto pending = store->list_pending();
    REQUIRE(pending.has_value());
    std::vector<std::string> paths;
    for (const auto& p : *pending)
        paths.push_back(p.path);
    CHECK(paths == std::vector<std::string>{"new/file", "still/dirty", "was/released", "up", "cp"});
    CHECK((*pending)[3].state.phase == Phase::uploading);

    auto two = store->list_pending(2);
    REQUIRE(two.has_value());
    CHECK(two->size() == 2);

    std::vector<std::string> releasing;
    REQUIRE(store
                ->for_each_in_phase(Phase::releasing,
                                    [&](std::string_view path, const FileState& s) {
                                        CHECK(s.phase == Phase::releasing);
                                        releasing.emplace_back(path);
                                        return true;
                                    })
                .has_value());
    CHECK(releasing == std::vector<std::string>{"half"});
    CHECK(store->counts()[Phase::released] == 1);
    check_counts(*store);
}

TEST_CASE("a garbage record is an error on read, and can be erased", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    OpenOptions o = options_for(dir);
    {
        auto store = open_ok(o);
        REQUIRE(store->put("good", state_with(Phase::verified)).has_value());
    }
    {
        // Plant a record this riakfs cannot read, indexed as verified, next to the good one.
        leveldb::DB* raw = nullptr;
        REQUIRE(leveldb::DB::Open(leveldb::Options(), o.state_dir + "/state.ldb", &raw).ok());
        std::unique_ptr<leveldb::DB> db(raw);
        REQUIRE(db->Put(leveldb::WriteOptions(), "fbad", "\x09junk").ok());
        REQUIRE(db->Put(leveldb::WriteOptions(), std::string("q\x03") + "bad", "").ok());
    }
    auto store = open_ok(o);
    CHECK(store->counts()[Phase::verified] == 2);
    auto bad = store->get("bad");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == EBADMSG);
    CHECK(bad.error().message.find("'bad'") != std::string::npos);
    auto scan = store->for_each("", [](std::string_view, const FileState&) { return true; });
    REQUIRE_FALSE(scan.has_value());
    CHECK(scan.error().code == EBADMSG);
    CHECK_FALSE(store->for_each_in_phase(Phase::verified, [](auto, const auto&) { return true; })
                    .has_value());

    // Overwriting or erasing it keeps the index and the counts right.
    REQUIRE(store->mark_dirty("bad").has_value());
    CHECK(store->counts()[Phase::verified] == 1);
    CHECK(store->counts()[Phase::dirty] == 1);
    REQUIRE(store->erase("bad").has_value());
    CHECK(store->counts().total() == 1);
    check_counts(*store);
}

TEST_CASE("concurrent writers keep the counts exact", "[state][store]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    OpenOptions o = options_for(dir);
    PhaseCounts live;
    {
        auto store = open_ok(o);
        std::atomic<bool> failed{false};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < 150; ++i) {
                    std::string path = "shared/f" + std::to_string((i * 7 + t) % 20);
                    bool ok = true;
                    switch ((i + t) % 4) {
                    case 0:
                        ok = store->mark_dirty(path).has_value();
                        break;
                    case 1:
                        ok = store->put(path, state_with(static_cast<Phase>(i % 6))).has_value();
                        break;
                    case 2:
                        ok = store->erase(path).has_value();
                        break;
                    case 3:
                        ok = (i % 20 == 3) ? store->rename_prefix("shared", "other").has_value() &&
                                                 store->rename_prefix("other", "shared").has_value()
                                           : store->rename_path(path, path + "x").has_value();
                        break;
                    }
                    if (!ok) failed = true;
                }
            });
        }
        for (auto& th : threads)
            th.join();
        CHECK_FALSE(failed);
        check_counts(*store);
        live = store->counts();
    }
    auto store = open_ok(o);
    CHECK(store->counts().by_phase == live.by_phase);
    check_counts(*store);
}

TEST_CASE("removal records: kept apart from file records, atomic with them, durable",
          "[state][store]") {
    TempDir dir;
    auto o = options_for(dir);
    {
        auto store = open_ok(o);
        REQUIRE(store->put("a", state_with(Phase::verified)));
        REQUIRE(store->put("b", state_with(Phase::verified)));
        StateStore::Batch batch;
        batch.erase("a");
        batch.put_removal("a", state_with(Phase::dirty, "va"));
        REQUIRE(store->apply(batch));
        auto removal = store->get_removal("a");
        REQUIRE(removal);
        REQUIRE(*removal);
        CHECK((*removal)->version == "va");
        CHECK((*removal)->key == "k");
        auto rec = store->get("a");
        REQUIRE(rec);
        CHECK_FALSE(*rec);
        // Not file records: not visited, not counted, not pending.
        CHECK(all_records(*store).size() == 1);
        CHECK(store->counts().total() == 1);
        CHECK(store->list_pending()->empty());
        REQUIRE(store->put_removal("dir/x", state_with(Phase::dirty, "vx")));
    }
    auto store = open_ok(o);
    auto removals = store->list_removals();
    REQUIRE(removals);
    REQUIRE(removals->size() == 2);
    CHECK((*removals)[0].path == "a");
    CHECK((*removals)[1].path == "dir/x");
    CHECK(store->counts().total() == 1);
    // A newer removal of a path replaces the older one; erasing is idempotent.
    REQUIRE(store->put_removal("a", state_with(Phase::dirty, "va2")));
    CHECK((*store->get_removal("a"))->version == "va2");
    REQUIRE(store->erase_removal("a"));
    REQUIRE(store->erase_removal("a"));
    CHECK_FALSE(*store->get_removal("a"));
    CHECK(store->list_removals()->size() == 1);
    // Paths are checked like file records'.
    CHECK_FALSE(store->put_removal("/abs", state_with(Phase::dirty)));
}
