// The Migrator follows the namespace: unlink, rmdir and rename of copied files delete the objects
// at their old keys (manifests with their chunks) and copy the files again under their new ones,
// with real files, a real state store and the in-memory object store. Removals that meet a copy
// in progress, a failing store or a restart still end with no object left behind.
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/pending_uploads.hpp"

#include "lib/common/log.hpp"
#include "lib/common/timespec_ns.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/layout/sha256.hpp"
#include "test/migrate/migrate_test_support.hpp"

#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <span>
#include <string_view>
#include <thread>

using namespace rfs;
using namespace std::chrono_literals;
using migrate::test::GatedStore;
using migrate::test::open_state;
using migrate::test::run_on;
using migrate::test::TempTree;
namespace asio = boost::asio;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_namespace {

namespace {

struct Engine {
    Engine(const TempTree& tree, const layout::Mapper& mapper,
           std::function<void(GatedStore&)> prepare = {},
           std::chrono::milliseconds long_wait = 120s) {
        state = open_state(tree.state_dir(), tree.source());
        migrate::MigratorOptions mo;
        mo.long_wait = long_wait;
        mo.chunk_size = 1000;
        mo.retry_first = 20ms;
        mo.retry_max = 100ms;
        migrator = std::make_unique<migrate::Migrator>(
            tree.source_fd(), mapper, *state,
            [this, prepare](asio::io_context& context) {
                auto made = std::make_unique<GatedStore>(context);
                store = made.get();
                mem = &made->mem;
                if (prepare) prepare(*made);
                return made;
            },
            mo);
        migrator->start();
    }
    ~Engine() { migrator->stop(0ms); }

    // Runs `fn` on the migrator's loop and waits for it.
    void on_loop(std::function<void()> fn) {
        run_on(migrator->context(), [](std::function<void()> f) -> asio::awaitable<void> {
            f();
            co_return;
        }(std::move(fn)));
    }
    store::Fetched get(const std::string& key, const std::string& bucket = "riakfs") {
        return *run_on(migrator->context(), mem->get(proto::ObjectId{"", bucket, key}));
    }
    std::set<std::string> keys(const std::string& bucket = "riakfs") {
        auto list = run_on(migrator->context(), mem->list_keys(proto::BucketId{"", bucket}));
        REQUIRE(list);
        return std::set<std::string>(list->begin(), list->end());
    }
    // The keys that are not chunks.
    std::set<std::string> file_keys(const std::string& bucket = "riakfs") {
        std::set<std::string> out;
        for (auto& k : keys(bucket))
            if (!k.starts_with(layout::kReservedKeyPrefix)) out.insert(k);
        return out;
    }
    // The keys of the chunks the manifest at `key` names.
    std::set<std::string> chunks_of(const std::string& key) {
        auto got = get(key);
        REQUIRE(got.found);
        auto manifest = layout::decode_manifest(got.object.value);
        REQUIRE(manifest);
        std::set<std::string> out;
        for (std::uint64_t i = 0; i < manifest->chunks.size(); ++i)
            if (!manifest->is_hole(i)) out.insert(manifest->chunk_key(i));
        return out;
    }
    // What the bucket holds when only `files` are left: their keys and their manifests' chunks.
    std::set<std::string> keys_of(std::initializer_list<std::string> files) {
        std::set<std::string> out;
        for (const auto& f : files) {
            out.insert(f);
            auto got = get(f);
            REQUIRE(got.found);
            auto meta = layout::decode_meta(got.object.meta);
            REQUIRE(meta);
            if (meta->kind == layout::FileMeta::Kind::manifest)
                for (auto& k : chunks_of(f))
                    out.insert(k);
        }
        return out;
    }
    // A file's content as a reader of the bucket sees it (whole object or manifest + chunks).
    std::string content(const std::string& key) {
        auto got = get(key);
        if (!got.found) return "<absent>";
        auto meta = layout::decode_meta(got.object.meta);
        REQUIRE(meta);
        if (meta->kind == layout::FileMeta::Kind::whole) return got.object.value;
        auto manifest = layout::decode_manifest(got.object.value);
        REQUIRE(manifest);
        std::string out;
        for (std::uint64_t i = 0; i < manifest->chunks.size(); ++i) {
            auto range = manifest->chunk_range(i);
            if (manifest->is_hole(i)) {
                out.append(range.length, '\0');
                continue;
            }
            auto chunk = get(manifest->chunk_key(i));
            REQUIRE(chunk.found);
            out += chunk.object.value;
        }
        return out;
    }
    // Every object of the bucket, to be found in Riak by the next Engine (objects_in()).
    std::map<std::string, store::Object> objects() {
        std::map<std::string, store::Object> out;
        for (auto& key : keys())
            out[key] = get(key).object;
        return out;
    }
    std::optional<state::FileState> record(const std::string& path) {
        auto got = state->get(path);
        REQUIRE(got);
        return *got;
    }
    std::vector<state::PathState> removals() {
        auto got = state->list_removals();
        REQUIRE(got);
        return *got;
    }
    void copy_now(std::initializer_list<std::string> paths) {
        copy_now(std::vector<std::string>(paths));
    }
    void copy_now(const std::vector<std::string>& paths) {
        for (const auto& p : paths)
            migrator->file_closed(p, true);
        REQUIRE(migrator->wait_idle(20s));
        for (const auto& p : paths)
            REQUIRE(record(p)->phase == state::Phase::verified);
    }

    std::unique_ptr<state::StateStore> state;
    std::unique_ptr<migrate::Migrator> migrator;
    GatedStore* store = nullptr;
    store::MemoryObjectStore* mem = nullptr;
};

void rename_local(const TempTree& tree, const std::string& from, const std::string& to,
                  unsigned flags = 0) {
    REQUIRE(::renameat2(AT_FDCWD, tree.src(from).c_str(), AT_FDCWD, tree.src(to).c_str(), flags) ==
            0);
}

template <typename Cond> bool eventually(Cond cond, std::chrono::seconds limit = 20s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return cond();
}

// An Engine's store preparation that puts `held` (Engine::objects() of a run before) in Riak.
std::function<void(GatedStore&)> objects_in(const std::map<std::string, store::Object>& held) {
    return [&held](GatedStore& s) {
        for (auto& [key, object] : held)
            s.mem.inject_sibling(proto::ObjectId{"", "riakfs", key}, object);
    };
}

const std::string kBig = [] {
    std::string s;
    for (int i = 0; i < 2500; ++i)
        s += static_cast<char>('a' + i % 26);
    return s;
}(); // three chunks of 1000 bytes
const std::string kBigReversed(kBig.rbegin(), kBig.rend());

// p (kBig) and q (kBigReversed), swapped by three renames (p -> t, q -> p, t -> q), each
// handed to the migrator as the mount would.
void swap_by_three_renames(const TempTree& tree, migrate::Migrator& migrator) {
    for (auto [from, to] : {std::pair{"p", "t"}, std::pair{"q", "p"}, std::pair{"t", "q"}}) {
        rename_local(tree, from, to);
        migrator.path_renamed(from, to, false);
    }
}

// Renames the directory `from` to `to`, in SOURCE and as the mount tells the migrator, with the
// moves of the copies under it held at the store (their GET waits until Gate::get opens).
void rename_with_moves_held(Engine& engine, const TempTree& tree, const std::string& from,
                            const std::string& to) {
    engine.on_loop([&] { engine.store->close(GatedStore::Gate::get); });
    rename_local(tree, from, to);
    engine.migrator->path_renamed(from, to, false);
    REQUIRE(eventually([&] { return engine.store->held.load(); }));
}

} // namespace

TEST_CASE("unlink deletes a whole object and forgets the file", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("a.txt", "alpha");
    tree.write("keep.txt", "kept");
    Engine engine(tree, mapper);
    engine.copy_now({"a.txt", "keep.txt"});
    REQUIRE(engine.get("a.txt").found);

    std::filesystem::remove(tree.src("a.txt"));
    engine.migrator->path_removed("a.txt");
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK_FALSE(engine.get("a.txt").found);
    CHECK_FALSE(engine.record("a.txt"));
    CHECK(engine.removals().empty());
    CHECK(engine.keys() == std::set<std::string>{"keep.txt"});
    CHECK(engine.migrator->stats().objects_removed == 1);
}

TEST_CASE("unlink of a large file deletes its manifest and every chunk", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("big.bin", kBig);
    Engine engine(tree, mapper);
    engine.copy_now({"big.bin"});
    REQUIRE(engine.chunks_of("big.bin").size() == 3);
    REQUIRE(engine.keys().size() == 4);

    std::filesystem::remove(tree.src("big.bin"));
    engine.migrator->path_removed("big.bin");
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys().empty());
    CHECK_FALSE(engine.record("big.bin"));
    CHECK(engine.removals().empty());
}

TEST_CASE("a path never copied needs nothing in Riak", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("never.txt", "never copied");
    Engine engine(tree, mapper);
    std::filesystem::remove(tree.src("never.txt"));
    engine.migrator->path_removed("never.txt");
    REQUIRE(engine.migrator->wait_idle(20s));
    engine.on_loop([&] { CHECK(engine.mem->calls().empty()); });
    CHECK(engine.removals().empty());
}

TEST_CASE("rename moves the object to the new key", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("a.txt", "moving");
    tree.write("big.bin", kBig);
    Engine engine(tree, mapper);
    engine.copy_now({"a.txt", "big.bin"});

    std::filesystem::create_directory(tree.src("d"));
    rename_local(tree, "a.txt", "d/b.txt");
    rename_local(tree, "big.bin", "big2.bin");
    engine.migrator->path_renamed("a.txt", "d/b.txt", false);
    engine.migrator->path_renamed("big.bin", "big2.bin", false);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.file_keys() == std::set<std::string>{"d/b.txt", "big2.bin"});
    CHECK(engine.content("d/b.txt") == "moving");
    CHECK(engine.content("big2.bin") == kBig);
    // Nothing but the new manifest's chunks.
    auto expected = engine.chunks_of("big2.bin");
    expected.insert("d/b.txt");
    expected.insert("big2.bin");
    CHECK(engine.keys() == expected);
    CHECK_FALSE(engine.record("a.txt"));
    CHECK_FALSE(engine.record("big.bin"));
    REQUIRE(engine.record("d/b.txt"));
    CHECK(engine.record("d/b.txt")->phase == state::Phase::verified);
    CHECK(engine.record("d/b.txt")->key == "d/b.txt");
    CHECK(engine.removals().empty());
}

TEST_CASE("rename over an existing file replaces its object and drops its chunks", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("small", "the new content");
    tree.write("target", kBig); // a manifest and three chunks, replaced
    Engine engine(tree, mapper);
    engine.copy_now({"small", "target"});
    REQUIRE(engine.keys().size() == 5);

    rename_local(tree, "small", "target");
    engine.migrator->path_renamed("small", "target", false);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys() == std::set<std::string>{"target"});
    CHECK(engine.content("target") == "the new content");
    CHECK_FALSE(engine.record("small"));
    CHECK(engine.record("target")->sha256 == layout::sha256_hex("the new content"));
}

TEST_CASE("RENAME_EXCHANGE copies both files again", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("x", "first");
    tree.write("y", kBig);
    Engine engine(tree, mapper);
    engine.copy_now({"x", "y"});

    rename_local(tree, "x", "y", RENAME_EXCHANGE);
    engine.migrator->path_renamed("x", "y", true);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("x") == kBig);
    CHECK(engine.content("y") == "first");
    CHECK(engine.keys() == engine.keys_of({"x", "y"}));
    CHECK(engine.record("x")->sha256 == layout::sha256_hex(kBig));
    CHECK(engine.record("y")->sha256 == layout::sha256_hex("first"));
}

TEST_CASE("a file removed right after an exchange takes only its own object", "[namespace]") {
    // The exchange left each record naming the other file's object; the unlink that followed
    // removed that object (the one the other name's new copy had just written).
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("c", "the c file");
    tree.write("y", "the y file");
    Engine engine(tree, mapper);
    engine.copy_now({"c", "y"});

    // The copies the exchange queues wait at the store, so the unlink of y is handled after
    // the copy of y (a namespace operation waits for its paths' copies) and its removal runs
    // after the copy of c.
    engine.on_loop([&] { engine.store->close(GatedStore::Gate::put); });
    rename_local(tree, "c", "y", RENAME_EXCHANGE);
    engine.migrator->path_renamed("c", "y", true);
    REQUIRE(eventually([&] { return engine.store->held.load(); }));
    std::filesystem::remove(tree.src("y"));
    engine.migrator->path_removed("y");
    std::this_thread::sleep_for(100ms);
    engine.on_loop([&] { engine.store->open(GatedStore::Gate::put); });
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("c") == "the y file");
    CHECK(engine.keys() == std::set<std::string>{"c"});
}

TEST_CASE("directory rename moves every copied file under it", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("d/x", "ex");
    tree.write("d/sub/y", kBig);
    tree.write("d/never", "never copied");
    tree.write("dx", "a neighbour, not under d/");
    Engine engine(tree, mapper);
    engine.copy_now({"d/x", "d/sub/y", "dx"});

    rename_local(tree, "d", "e");
    engine.migrator->path_renamed("d", "e", false);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.file_keys() == std::set<std::string>{"e/x", "e/sub/y", "dx"});
    CHECK(engine.content("e/x") == "ex");
    CHECK(engine.content("e/sub/y") == kBig);
    CHECK(engine.content("dx") == "a neighbour, not under d/");
    CHECK(engine.keys().size() == 3 + 3);
    CHECK_FALSE(engine.record("d/x"));
    CHECK_FALSE(engine.record("d/sub/y"));
    CHECK_FALSE(engine.record("e/never"));
    CHECK(engine.record("e/sub/y")->phase == state::Phase::verified);
    CHECK(engine.removals().empty());
}

TEST_CASE("rmdir drops the records left under the directory and their objects", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("dir/f", "removed behind the mount's back");
    Engine engine(tree, mapper);
    engine.copy_now({"dir/f"});
    std::filesystem::remove_all(tree.src("dir"));
    engine.migrator->path_removed("dir");
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys().empty());
    CHECK_FALSE(engine.record("dir/f"));
    CHECK(engine.removals().empty());
}

TEST_CASE("moving out of the mapped area deletes, moving in copies", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::from_json(
        R"({"rules":[{"path":"/keep/{f}","bucket":"kept","key":"{f}"}]})");
    REQUIRE(mapper);
    tree.write("keep/x", "x content");
    tree.write("local/y", "y content");
    Engine engine(tree, *mapper);
    engine.copy_now({"keep/x"});
    REQUIRE(engine.keys("kept") == std::set<std::string>{"x"});

    rename_local(tree, "keep/x", "local/x");
    engine.migrator->path_renamed("keep/x", "local/x", false);
    rename_local(tree, "local/y", "keep/y");
    engine.migrator->path_renamed("local/y", "keep/y", false);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys("kept") == std::set<std::string>{"y"});
    CHECK(engine.get("y", "kept").object.value == "y content");
    CHECK_FALSE(engine.record("keep/x"));
    CHECK_FALSE(engine.record("local/x"));
    CHECK(engine.record("keep/y")->phase == state::Phase::verified);
}

TEST_CASE("an unlink during the copy of the same path leaves nothing behind", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("f", kBig);
    Engine engine(tree, mapper, [](GatedStore& s) { s.close(GatedStore::Gate::put); });
    engine.migrator->file_closed("f", true);
    REQUIRE(eventually([&] { return engine.store->held.load(); }));
    // The copy is half made (its first chunk waits at the gate): the file goes now. The
    // removal waits for the copy of the same path to end (held_namespace_ops_).
    std::filesystem::remove(tree.src("f"));
    engine.migrator->path_removed("f");
    CHECK_FALSE(engine.migrator->wait_idle(200ms));
    CHECK(engine.removals().empty());
    engine.on_loop([&] { engine.store->open(GatedStore::Gate::put); });
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys().empty());
    CHECK_FALSE(engine.record("f"));
    CHECK(engine.removals().empty());
}

TEST_CASE("a rename during the copy of the same path leaves only the new key", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("f", kBig);
    Engine engine(tree, mapper, [](GatedStore& s) { s.close(GatedStore::Gate::put); });
    engine.migrator->file_closed("f", true);
    REQUIRE(eventually([&] { return engine.store->held.load(); }));
    rename_local(tree, "f", "g");
    engine.migrator->path_renamed("f", "g", false);
    // Held until the copy of f ends, which finds the file renamed (its ctime moved).
    CHECK_FALSE(engine.migrator->wait_idle(200ms));
    CHECK(engine.removals().empty());
    engine.on_loop([&] { engine.store->open(GatedStore::Gate::put); });
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.file_keys() == std::set<std::string>{"g"});
    CHECK(engine.content("g") == kBig);
    CHECK(engine.keys().size() == 4);
    CHECK_FALSE(engine.record("f"));
    CHECK(engine.record("g")->phase == state::Phase::verified);
    CHECK(engine.removals().empty());
}

TEST_CASE("a file re-created at once keeps its new copy", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("f", kBig);
    Engine engine(tree, mapper);
    engine.copy_now({"f"});
    std::filesystem::remove(tree.src("f"));
    engine.migrator->path_removed("f");
    tree.write("f", "born again");
    engine.migrator->file_closed("f", true);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys() == std::set<std::string>{"f"});
    CHECK(engine.content("f") == "born again");
    CHECK(engine.record("f")->phase == state::Phase::verified);
    CHECK(engine.removals().empty());
}

TEST_CASE("a removal while the store fails is retried until it is done", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("big.bin", kBig);
    Engine engine(tree, mapper);
    engine.copy_now({"big.bin"});
    engine.on_loop([&] { engine.mem->set_unreachable(true); });
    auto failures = engine.migrator->stats().failures;

    std::filesystem::remove(tree.src("big.bin"));
    engine.migrator->path_removed("big.bin");
    REQUIRE(eventually([&] { return engine.migrator->stats().failures >= failures + 3; }));
    CHECK(engine.removals().size() == 1);
    CHECK(engine.migrator->stats().removals_queued == 1);
    CHECK_FALSE(engine.migrator->wait_idle(100ms));
    engine.on_loop([&] { engine.mem->set_unreachable(false); });
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys().empty());
    CHECK(engine.removals().empty());
    CHECK(engine.migrator->stats().removals_queued == 0);
}

TEST_CASE("two removals of one path for different objects both happen", "[namespace]") {
    // A path's removal waits (Riak down) when a second one of the same path, for another
    // object, is recorded: it takes a slot of its own instead of overwriting the first, whose
    // object was then left behind.
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("a", "first a");
    tree.write("z", "the z file");
    Engine engine(tree, mapper);
    engine.copy_now({"a", "z"});
    engine.on_loop([&] { engine.mem->set_unreachable(true); });

    std::filesystem::remove(tree.src("a"));
    engine.migrator->path_removed("a"); // key a: pending while Riak is down
    rename_local(tree, "z", "a");
    engine.migrator->path_renamed("z", "a", false); // the copy of key z is to follow to key a
    std::filesystem::remove(tree.src("a"));
    engine.migrator->path_removed("a"); // key z, before its copy could follow
    REQUIRE(eventually([&] { return engine.removals().size() == 2; }));
    engine.on_loop([&] { engine.mem->set_unreachable(false); });
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys().empty());
    CHECK(engine.removals().empty());
}

TEST_CASE("a removal keeps the record a later rename moved onto its path", "[namespace]") {
    // The removal of y (Riak down) runs after b was renamed onto y and y renamed on to z, but
    // before that second rename is handled: y is no file then, and the removal erased the
    // record at y, b's, whose copy was to follow it. The second rename found nothing to move,
    // and b's object stayed at its old key.
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("b", "the b file");
    tree.write("y", "the y file");
    Engine engine(tree, mapper);
    engine.copy_now({"b", "y"});
    engine.on_loop([&] { engine.mem->set_unreachable(true); });

    std::filesystem::remove(tree.src("y"));
    engine.migrator->path_removed("y");
    rename_local(tree, "b", "y");
    engine.migrator->path_renamed("b", "y", false);
    rename_local(tree, "y", "z");
    REQUIRE(::symlink("b", tree.src("y").c_str()) == 0);
    REQUIRE(eventually([&] { return engine.record("y") && !engine.record("y")->key.empty(); }));
    engine.on_loop([&] { engine.mem->set_unreachable(false); });
    REQUIRE(eventually([&] { return engine.removals().empty(); }));
    engine.migrator->path_renamed("y", "z", false);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.file_keys() == std::set<std::string>{"z"});
    CHECK(engine.content("z") == "the b file");
}

TEST_CASE("pending removals survive a restart of the Migrator", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("big.bin", kBig);
    std::map<std::string, store::Object> held; // what Riak holds, carried to the next run
    {
        Engine engine(tree, mapper);
        engine.copy_now({"big.bin"});
        held = engine.objects();
        REQUIRE(held.size() == 4);
        engine.on_loop([&] { engine.mem->set_unreachable(true); });
        std::filesystem::remove(tree.src("big.bin"));
        engine.migrator->path_removed("big.bin");
        REQUIRE(eventually([&] { return engine.removals().size() == 1; }));
    } // stopped with the removal pending
    Engine engine(tree, mapper, objects_in(held));
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys().empty());
    CHECK(engine.removals().empty());
    CHECK_FALSE(engine.record("big.bin"));
}

// A new version of a large file replaces the old one's chunks, and deletes them once it is in
// place. Deletes that failed (Riak failing just then) left those chunks behind for good: the
// upload's note, which named them, went with the record of the new version.
TEST_CASE("replaced chunks Riak would not delete are noted and deleted at the next start",
          "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("big", kBig);
    const std::string& second = kBigReversed;  // three other chunks
    std::map<std::string, store::Object> held; // what Riak holds, carried to the next run
    std::set<std::string> expected{"big"};
    auto notes = [](const state::StateStore& state) {
        std::size_t n = 0;
        REQUIRE(state.aux_for_each(state::AuxKind::pending_upload, "",
                                   [&](std::string_view, std::string_view) {
                                       ++n;
                                       return true;
                                   }));
        return n;
    };
    {
        Engine engine(tree, mapper);
        engine.copy_now({"big"});
        const auto old_chunks = engine.chunks_of("big");
        engine.store->refuse_chunk_removals = true;
        tree.write("big", second);
        engine.copy_now({"big"});
        REQUIRE(engine.migrator->wait_idle(20s));
        CHECK(engine.content("big") == second);
        for (const auto& key : old_chunks)
            CHECK(engine.get(key).found); // not deleted...
        CHECK(notes(*engine.state) == 1); // ...but noted
        for (const auto& key : engine.chunks_of("big"))
            expected.insert(key);
        held = engine.objects();
        REQUIRE(held.size() == 7);
    }
    Engine engine(tree, mapper, objects_in(held));
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys() == expected);
    CHECK(engine.content("big") == second);
    CHECK(engine.record("big")->phase == state::Phase::verified);
    CHECK(notes(*engine.state) == 0);
}

// A directory renamed with a large file in it, and a new file made at the old name, both still
// to be copied when the daemon stops: at the next start the new file (first in path order) was
// copied before the old one's copy had moved to its new key. Written over the old object, it
// dropped the chunks the moved manifest still named (a released file then had nothing left to
// read: a random kill -9 test found one "unreadable" after a restart).
TEST_CASE("a copy to a key waits until the copy a rename left there has moved away",
          "[namespace][crash]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("a/big", kBig);
    std::map<std::string, store::Object> held; // what Riak holds, carried to the next run
    {
        Engine engine(tree, mapper);
        engine.copy_now({"a/big"});
        // The move of the copy waits at the store; the new a/big is recorded dirty meanwhile.
        rename_with_moves_held(engine, tree, "a", "x");
        tree.write("a/big", kBigReversed);
        engine.migrator->file_closed("a/big", true);
        REQUIRE(eventually([&] {
            auto rec = engine.record("a/big");
            return rec && rec->phase == state::Phase::dirty;
        }));
        held = engine.objects();
    }                          // stopped with both copies pending
    REQUIRE(held.size() == 4); // a/big's manifest and its three chunks
    Engine engine(tree, mapper, objects_in(held));
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("x/big") == kBig);
    CHECK(engine.content("a/big") == kBigReversed);
    CHECK(engine.record("x/big")->phase == state::Phase::verified);
    CHECK(engine.record("a/big")->phase == state::Phase::verified);
}

// The log's lines, while one of these lives (log::set_sink takes a plain function).
class LogLines {
public:
    LogLines() {
        {
            std::lock_guard lock(mu());
            lines().clear();
        }
        log::set_sink(&LogLines::sink);
    }
    ~LogLines() { log::set_sink(nullptr); }
    bool has(std::string_view part) const {
        std::lock_guard lock(mu());
        for (const auto& line : lines())
            if (line.find(part) != std::string::npos) return true;
        return false;
    }
    std::size_t count(std::string_view part) const {
        std::lock_guard lock(mu());
        std::size_t n = 0;
        for (const auto& line : lines())
            n += line.find(part) != std::string::npos;
        return n;
    }
    std::string all() const {
        std::lock_guard lock(mu());
        std::string text;
        for (const auto& line : lines())
            text += line + "\n";
        return text;
    }

private:
    static void sink(log::Level, std::string_view message, std::span<const log::Field>) {
        std::lock_guard lock(mu());
        lines().emplace_back(message);
    }
    static std::mutex& mu() {
        static std::mutex m;
        return m;
    }
    static std::vector<std::string>& lines() {
        static std::vector<std::string> l;
        return l;
    }
};

// A copy kept waiting (here for the move of the copy a rename left at its key, held at the
// store) is pending in status with nothing failing: once the wait lasts, the log says what it
// waits for, and then that it waits no longer.
TEST_CASE("a copy that waits for long says in the log what it waits for", "[namespace]") {
    LogLines log_lines;
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("a/big", kBig);
    Engine engine(tree, mapper, {}, 100ms);
    engine.copy_now({"a/big"});
    rename_with_moves_held(engine, tree, "a", "x");
    tree.write("a/big", kBigReversed);
    engine.migrator->file_closed("a/big", true);
    const bool logged = eventually([&] {
        return log_lines.has("the copy of a/big has waited over 0.1 s for the move of the copy at "
                             "key a/big (bucket riakfs) to its new key");
    });
    INFO(log_lines.all());
    REQUIRE(logged);
    CHECK_FALSE(log_lines.has("waits no longer"));
    engine.on_loop([&] { engine.store->open(GatedStore::Gate::get); });
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(eventually([&] { return log_lines.has("the copy of a/big waits no longer"); }));
    CHECK(engine.content("x/big") == kBig);
    CHECK(engine.content("a/big") == kBigReversed);
}

// An outage can keep thousands waiting: a look logs ten of them, then how many more. (The 25
// new files' copies are queued within milliseconds, a look is every 50 ms: one look, perhaps
// two, sees them all become long waits, and one of those has more than ten.)
TEST_CASE("many copies waiting for long are logged ten by name a look, then counted",
          "[namespace]") {
    LogLines log_lines;
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    std::vector<std::string> names;
    for (int i = 0; i < 25; ++i) {
        names.push_back(fmt::format("a/f{:02}", i));
        tree.write(names.back(), "copied " + names.back());
    }
    Engine engine(tree, mapper, {}, 100ms);
    engine.copy_now(names);
    rename_with_moves_held(engine, tree, "a", "x");
    for (const auto& name : names) {
        tree.write(name, "new " + name);
        engine.migrator->file_closed(name, true);
    }
    // Each new file's wait once: by name, or in a count.
    auto accounted = [&](std::string_view named, const std::regex& counted) {
        std::size_t n = log_lines.count(named);
        const std::string text = log_lines.all();
        for (std::sregex_iterator it(text.begin(), text.end(), counted), end; it != end; ++it)
            n += std::stoul((*it)[1]);
        return n;
    };
    const std::regex more_waited(R"(and (\d+) more copies or removals have waited over 0\.1 s)");
    const bool all_long = eventually(
        [&] { return accounted("has waited over 0.1 s for", more_waited) == names.size(); });
    INFO(log_lines.all());
    REQUIRE(all_long);
    CHECK(log_lines.count("more copies or removals have waited") >= 1);
    CHECK(log_lines.count("has waited over 0.1 s for") < names.size());
    // Counted in the status too.
    CHECK(eventually([&] { return engine.migrator->stats().long_waits == names.size(); }));
    engine.on_loop([&] { engine.store->open(GatedStore::Gate::get); });
    REQUIRE(engine.migrator->wait_idle(20s));
    const std::regex more_ended(R"(and (\d+) more copies or removals wait no longer)");
    CHECK(eventually(
        [&] { return accounted("waits no longer (after", more_ended) == names.size(); }));
    CHECK(eventually([&] { return engine.migrator->stats().long_waits == 0; }));
    for (const auto& name : names) {
        CHECK(engine.content(name) == "new " + name);
        CHECK(engine.content("x" + name.substr(1)) == "copied " + name);
    }
}

// A rename over a copied file leaves the replaced object at the target's key for the move of
// the renamed copy to replace. Unlinked (or renamed away) before that move, the new name took
// the move with it, and nothing ever replaced or deleted the old object (random kill -9 test,
// seeds 197, 226, 232: an object left at a key no file has).
TEST_CASE("a rename over a file, then the new name removed, leaves no object behind",
          "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("src", "the renamed file");
    tree.write("dst", kBig); // replaced: a manifest and three chunks
    tree.write("src2", "another");
    tree.write("dst2", "replaced too");
    Engine engine(tree, mapper);
    engine.copy_now({"src", "dst", "src2", "dst2"});
    // The loop hears of each rename while its target is there, and of the next operation
    // before any worker has taken the move of the renamed copy (as a busy loop does).
    auto on_loop_later = [&](std::function<void()> fn) {
        asio::post(engine.migrator->context(), std::move(fn));
    };
    on_loop_later([] { std::this_thread::sleep_for(200ms); });
    rename_local(tree, "src", "dst");
    engine.migrator->path_renamed("src", "dst", false);
    on_loop_later([&] { std::filesystem::remove(tree.src("dst")); });
    engine.migrator->path_removed("dst");
    rename_local(tree, "src2", "dst2");
    engine.migrator->path_renamed("src2", "dst2", false);
    on_loop_later([&] { rename_local(tree, "dst2", "elsewhere"); });
    engine.migrator->path_renamed("dst2", "elsewhere", false);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys() == std::set<std::string>{"elsewhere"});
    CHECK(engine.content("elsewhere") == "another");
    CHECK(engine.removals().empty());
}

// The same with an exchange in the middle: the rename over dst leaves dst's object for the move
// of src's copy to replace; an exchange takes that copy's record away from dst before the move
// ran, and the file the exchange brought to dst is removed before its copy. Only a plain rename
// queued the removal of what a moving record's name left at its own key, so dst's object stayed
// for good (random kill -9 test, seed 2101: an object at a key where SOURCE has a directory).
TEST_CASE("an exchange before the move of a copy renamed over a file leaves no object behind",
          "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("src", "the renamed file");
    tree.write("dst", kBig);          // replaced: a manifest and three chunks
    tree.write("other", "exchanged"); // never copied: no record comes to dst with it
    Engine engine(tree, mapper);
    engine.copy_now({"src", "dst"});
    auto on_loop_later = [&](std::function<void()> fn) {
        asio::post(engine.migrator->context(), std::move(fn));
    };
    on_loop_later([] { std::this_thread::sleep_for(200ms); });
    rename_local(tree, "src", "dst");
    engine.migrator->path_renamed("src", "dst", false);
    on_loop_later([&] {
        rename_local(tree, "other", "dst", RENAME_EXCHANGE);
        std::filesystem::remove(tree.src("dst"));
    });
    engine.migrator->path_renamed("other", "dst", true);
    engine.migrator->path_removed("dst");
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("other") == "the renamed file");
    CHECK(engine.keys() == engine.keys_of({"other"}));
    CHECK(engine.removals().empty());
}

// Two copied files swapped by three renames (p -> t, q -> p, t -> q) while the moves of their
// copies wait at the store: both end up at their new keys, nothing left over, no copy waiting
// for ever for a key another move is to leave.
TEST_CASE("two files renamed onto each other's names both end up copied", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("p", kBig);
    tree.write("q", kBigReversed);
    Engine engine(tree, mapper);
    engine.copy_now({"p", "q"});
    engine.on_loop([&] { engine.store->close(GatedStore::Gate::get); }); // moves wait together
    swap_by_three_renames(tree, *engine.migrator);
    REQUIRE(eventually([&] { return engine.store->held.load(); }));
    engine.on_loop([&] { engine.store->open(GatedStore::Gate::get); });
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("p") == kBigReversed);
    CHECK(engine.content("q") == kBig);
    CHECK(engine.keys() == engine.keys_of({"p", "q"}));
}

// Marks `path`'s verified copy as its only one, as a release does (the marker, the record),
// leaving the local bytes: the migrator then treats Riak's copy as the file's content.
void mark_released(Engine& engine, const TempTree& tree, const std::string& path) {
    auto rec = engine.record(path);
    REQUIRE(rec);
    rfs::UniqueFd fd(::open(tree.src(path).c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(fd);
    REQUIRE(state::write_marker(fd.get(), state::marker_of(*rec)));
    struct stat st;
    REQUIRE(::fstat(fd.get(), &st) == 0);
    rec->phase = state::Phase::released;
    rec->ctime_ns = rfs::ns_of(st.st_ctim);
    REQUIRE(engine.state->put(path, *rec));
}

// Released files swapped the same way (their renamed records stay dirty, so each rename moves
// them): each move's new key holds the copy the other is to take away, a ring of moves. One
// parks its copy (relocate_one) and the other moves; without that, the first move replaced the
// other's manifest and deleted its chunks. Here the daemon stops after one copy parked, before
// it moved on to its new key: the next start moves it on. Nothing at the parking key is left.
TEST_CASE("released files swapped by three renames: a copy parks, and moves on after a restart",
          "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("p", kBig);
    tree.write("q", kBigReversed);
    std::map<std::string, store::Object> held;
    {
        Engine engine(tree, mapper);
        engine.copy_now({"p", "q"});
        mark_released(engine, tree, "p");
        mark_released(engine, tree, "q");
        engine.on_loop([&] {
            engine.store->close(GatedStore::Gate::get); // the moves wait together
            // Only parking succeeds: a copy parked cannot move on.
            engine.store->refuse_put = [](const proto::ObjectId& id) {
                return !id.key.starts_with(layout::kReservedKeyPrefix);
            };
        });
        swap_by_three_renames(tree, *engine.migrator);
        REQUIRE(eventually([&] { return engine.store->held.load(); }));
        engine.on_loop([&] { engine.store->open(GatedStore::Gate::get); });
        auto parked = [&](const std::string& path) {
            auto rec = engine.record(path);
            return rec && rec->key.starts_with(".riakfs/moving/");
        };
        REQUIRE(eventually([&] { return parked("p") || parked("q"); }));
        REQUIRE(eventually([&] { return engine.removals().empty(); })); // its old key is free
        held = engine.objects();
    } // stopped with one copy parked, its move on failing
    Engine engine(tree, mapper, objects_in(held));
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("p") == kBigReversed);
    CHECK(engine.content("q") == kBig);
    CHECK(engine.keys() == engine.keys_of({"p", "q"}));
    CHECK(engine.record("p")->phase == state::Phase::released);
    CHECK(engine.record("q")->phase == state::Phase::released);
}

// A released file renamed away (its copy still to move from its old key), then a new file made
// at the old name and renamed away too before it was ever copied (its copy waited for that
// key): the new file's record has no version, and its removal, which takes whatever its key
// holds, deleted the moving copy with its chunks while the move was in flight (the random
// kill test, seed 892: "the chunk is missing" when the released file was read back).
TEST_CASE("a file never copied, renamed away from a key another copy is moving from, takes "
          "nothing with it",
          "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("z", kBig);
    Engine engine(tree, mapper);
    engine.copy_now({"z"});
    mark_released(engine, tree, "z");
    engine.on_loop([&] { engine.store->close(GatedStore::Gate::put); }); // the move waits there
    rename_local(tree, "z", "b");
    engine.migrator->path_renamed("z", "b", false);
    REQUIRE(eventually([&] { return engine.store->held.load(); }));
    tree.write("z", "new at the old name");
    engine.migrator->file_closed("z", true); // waits: its key is the move's source
    REQUIRE(eventually([&] { return engine.record("z").has_value(); })); // recorded dirty
    rename_local(tree, "z", "w");
    engine.migrator->path_renamed("z", "w", false);
    std::this_thread::sleep_for(100ms); // a removal of key z would run now
    engine.on_loop([&] { engine.store->open(GatedStore::Gate::put); });
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("b") == kBig);
    CHECK(engine.content("w") == "new at the old name");
    CHECK(engine.keys() == engine.keys_of({"b", "w"}));
}

// A released file moved (z -> b) leaves the removal of its old manifest at key z, keeping the
// chunks the moved one names. A file made at z since and removed before its copy queues a
// removal of whatever key z holds (its copy could have been on its way). When that one ran
// first, or beside the other, it found the old manifest still there and deleted it with its
// chunks: the released file had nothing left to read (random kill -9 test, seed 1746).
TEST_CASE("a removal with no version waits for one of the same key that keeps a moved copy's "
          "chunks",
          "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("z", kBig);
    Engine engine(tree, mapper);
    engine.copy_now({"z"});
    mark_released(engine, tree, "z");
    // Riak refuses deletes for a while: the old manifest's removal is retried, its delay grown
    // to the longest (100 ms here).
    engine.store->refuse_removals = true;
    rename_local(tree, "z", "b");
    engine.migrator->path_renamed("z", "b", false);
    REQUIRE(eventually([&] {
        auto rec = engine.record("b");
        return rec && rec->phase == state::Phase::released && rec->key == "b";
    }));
    tree.write("z", "new at the old name");
    engine.migrator->file_closed("z", true); // waits: key z's removal is pending
    REQUIRE(eventually([&] { return engine.record("z").has_value(); }));
    std::this_thread::sleep_for(300ms);
    engine.store->refuse_removals = false;
    // The new file's removal is queued while the other one waits out its delay: it comes first.
    std::filesystem::remove(tree.src("z"));
    engine.migrator->path_removed("z");
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("b") == kBig);
    CHECK(engine.keys() == engine.keys_of({"b"}));
    CHECK(engine.removals().empty());
}

// A released file's relocation (a -> b) that wrote its copy at the new key and the marker, and
// was killed before recording the move: the record still names the old key. Renamed again
// (b -> c) before the next copy of it ran, the rename took the new key, this path's own, for a
// leftover of a move still to come and queued the removal of whatever it held: the copy the
// marker names, chunks and all.
TEST_CASE("a rename of a released file whose relocation was stopped before recording it keeps "
          "the copy its marker names",
          "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("a", kBig);
    std::map<std::string, store::Object> held;
    state::FileState rec;
    {
        Engine engine(tree, mapper);
        engine.copy_now({"a"});
        mark_released(engine, tree, "a");
        held = engine.objects();
        rec = *engine.record("a");
    }
    // What the killed relocation left: the copy at b too, the marker naming b, the record (of
    // the rename a -> b) naming a.
    held["b"] = held["a"];
    rename_local(tree, "a", "b");
    {
        auto state = open_state(tree.state_dir(), tree.source());
        state::FileState moved = rec;
        moved.phase = state::Phase::dirty;
        state::StateStore::Batch batch;
        batch.erase("a");
        batch.put("b", moved);
        REQUIRE(state->apply(batch));
        state::Marker m = state::marker_of(rec);
        m.key = "b";
        rfs::UniqueFd fd(::open(tree.src("b").c_str(), O_RDWR | O_CLOEXEC));
        REQUIRE(fd);
        REQUIRE(state::write_marker(fd.get(), m));
    }
    rename_local(tree, "b", "c");
    Engine engine(tree, mapper, objects_in(held));
    engine.migrator->path_renamed("b", "c", false);
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("c") == kBig);
    CHECK(engine.keys() == engine.keys_of({"c"}));
    CHECK(engine.record("c")->phase == state::Phase::released);
}

// A fetch back of a released file cut short (a crash, or Riak failing) after its writes moved
// the mtime: the next copy took the placeholder for one changed beside the mount (an error, and
// the file stuck: never moved with a rename, nor restorable under its new name). The fetch's
// note (placeholder.hpp) says what moved the mtime: it goes back to the marker's.
TEST_CASE("a placeholder whose fetch back was cut short is moved with its rename", "[namespace]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("a", kBig);
    Engine engine(tree, mapper);
    engine.copy_now({"a"});
    mark_released(engine, tree, "a");
    const auto copied_mtime = engine.record("a")->mtime_ns;
    {
        rfs::UniqueFd fd(::open(tree.src("a").c_str(), O_RDWR | O_CLOEXEC));
        REQUIRE(fd);
        REQUIRE(state::note_fetching(fd.get()));
        REQUIRE(::pwrite(fd.get(), kBig.data(), 100, 0) == 100); // the mtime moves
    }
    rename_local(tree, "a", "b");
    engine.migrator->path_renamed("a", "b", false);
    REQUIRE(engine.migrator->wait_idle(20s));
    auto rec = engine.record("b");
    REQUIRE(rec);
    CHECK(rec->key == "b");
    CHECK(rec->phase == state::Phase::released);
    struct stat st;
    REQUIRE(::stat(tree.src("b").c_str(), &st) == 0);
    CHECK(rfs::ns_of(st.st_mtim) == copied_mtime);
    CHECK(engine.content("b") == kBig);
    CHECK(engine.keys() == engine.keys_of({"b"}));
}

// A copy of a large file killed after its chunks and manifest were written, before the record
// naming the version: the note written before the first chunk (pending_uploads.hpp) has the
// next start delete them all, the manifest too (it is that version's). Here no record is left
// at all (the file and its record went since, as a rename's or unlink's would), so nothing else
// would ever delete them.
TEST_CASE("a chunked copy a crash cut short leaves none of its objects behind",
          "[namespace][crash]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    const std::string data(2500, 'b');
    tree.write("big", data);
    const std::string cut = layout::make_version();
    const std::string prefix = layout::chunk_prefix_for(cut);
    std::filesystem::remove(tree.src("big"));
    {
        auto state = open_state(tree.state_dir(), tree.source());
        state::StateStore::Batch batch;
        batch.aux(migrate::note_pending_upload({cut, "big", "", "riakfs", "big", 3, {}}));
        REQUIRE(state->apply(batch));
    }
    Engine engine(tree, mapper, [&](GatedStore& store) {
        // What the killed copy wrote.
        for (std::uint64_t i = 0; i < 3; ++i)
            store.mem.inject_sibling({"", "riakfs", layout::chunk_key(prefix, i)},
                                     {data.substr(i * 1000, 1000), "", {}});
        layout::FileMeta meta;
        meta.kind = layout::FileMeta::Kind::manifest;
        meta.version = cut;
        meta.size = data.size();
        meta.path = "big";
        meta.mode = 0100644;
        meta.sha256 = layout::sha256_hex(data);
        meta.mtime_ns = meta.ctime_ns = meta.atime_ns = 1;
        store.mem.inject_sibling(
            {"", "riakfs", "big"},
            {layout::encode_manifest(layout::Manifest::for_file(data.size(), 1000, cut)),
             "application/json", layout::encode_meta(meta)});
    });
    REQUIRE(engine.migrator->wait_idle(20s));
    auto left = engine.keys();
    INFO("left: " << left.size() << (left.empty() ? "" : " " + *left.begin()));
    CHECK(left.empty());
    CHECK_FALSE(engine.record("big"));
    std::size_t notes = 0;
    REQUIRE(engine.state->aux_for_each(state::AuxKind::pending_upload, "",
                                       [&](std::string_view, std::string_view) {
                                           ++notes;
                                           return true;
                                       }));
    CHECK(notes == 0);
}

TEST_CASE("a removal and another file's copy wait for the open handles of the object they "
          "would delete",
          "[namespace]") {
    // A released file unlinked or renamed over while open: its handles read its only copy
    // (open_copies.hpp). A copy of the held file itself goes on.
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    tree.write("a", "a, as its handles read it");
    tree.write("b", "b, as its handles read it");
    tree.write("c", "c, whose own new version goes on");
    Engine engine(tree, mapper);
    engine.copy_now({"a", "b", "c"});
    auto id_of = [&](const std::string& rel) {
        struct stat st {};
        REQUIRE(::stat(tree.src(rel).c_str(), &st) == 0);
        return migrate::FileId{st.st_dev, st.st_ino};
    };
    auto hold = [&](const std::string& rel) {
        return engine.migrator->hold_open_copy(layout::Location{"", "riakfs", rel},
                                               engine.record(rel)->version, id_of(rel));
    };
    auto hold_a = hold("a");
    auto hold_a2 = hold("a"); // a second handle of a
    auto hold_b = hold("b");
    auto hold_c = hold("c");
    // a unlinked, then made again at its name; n renamed over b; c written in place.
    std::filesystem::remove(tree.src("a"));
    engine.migrator->path_removed("a");
    tree.write("a", "the new a");
    engine.migrator->file_closed("a", true);
    tree.write("n", "n, renamed over b");
    rename_local(tree, "n", "b");
    engine.migrator->path_renamed("n", "b", false);
    tree.write("c", "c, written again");
    engine.migrator->file_closed("c", true);
    CHECK_FALSE(engine.migrator->wait_idle(300ms));
    CHECK(engine.content("a") == "a, as its handles read it");
    CHECK(engine.content("b") == "b, as its handles read it");
    CHECK(engine.content("c") == "c, written again");
    // Two handles of one file: the first close is not the last.
    hold_a.reset();
    CHECK_FALSE(engine.migrator->wait_idle(300ms));
    CHECK(engine.content("a") == "a, as its handles read it");
    hold_a2.reset();
    hold_b.reset();
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.content("a") == "the new a");
    CHECK(engine.content("b") == "n, renamed over b");
    CHECK(engine.file_keys() == std::set<std::string>{"a", "b", "c"});
    hold_c.reset();
}

TEST_CASE("a held version's chunks stay while its copy is renamed, replaced and removed",
          "[namespace]") {
    // A large file's chunks are named by its version: a handle that reads the copy at its old
    // key after a rename moved it reads the chunks the moved manifest names too. Neither the
    // removal of the moved copy (its new name unlinked) nor the copy of a file renamed over it
    // (which replaces that manifest and drops its chunks) may delete them while it reads.
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    const std::string big = kBig; // a manifest and its chunks of 1000 bytes
    tree.write("big", big);
    tree.write("other", std::string(2500, 'o')); // another manifest
    Engine engine(tree, mapper);
    engine.copy_now({"big", "other"});
    const auto chunks = engine.chunks_of("big");
    REQUIRE(chunks.size() >= 2);
    struct stat st {};
    REQUIRE(::stat(tree.src("big").c_str(), &st) == 0);
    auto hold = engine.migrator->hold_open_copy(layout::Location{"", "riakfs", "big"},
                                                engine.record("big")->version,
                                                migrate::FileId{st.st_dev, st.st_ino});
    auto have_chunks = [&] {
        auto keys = engine.keys();
        for (const auto& c : chunks)
            if (!keys.count(c)) return false;
        return true;
    };
    // Renamed: the manifest moves to key "moved", naming the same chunks; key "big" stays.
    rename_local(tree, "big", "moved");
    engine.migrator->path_renamed("big", "moved", false);
    REQUIRE(eventually([&] { return engine.get("moved").found; }));
    // Another file renamed over it: its copy replaces the manifest at "moved".
    rename_local(tree, "other", "moved");
    engine.migrator->path_renamed("other", "moved", false);
    REQUIRE(eventually([&] { return engine.content("moved") != big; }));
    CHECK_FALSE(engine.migrator->wait_idle(300ms));
    CHECK(have_chunks());
    CHECK(engine.content("big") == big);
    // And that one removed too.
    std::filesystem::remove(tree.src("moved"));
    engine.migrator->path_removed("moved");
    CHECK_FALSE(engine.migrator->wait_idle(300ms));
    CHECK(have_chunks());
    CHECK(engine.content("big") == big);
    hold.reset();
    REQUIRE(engine.migrator->wait_idle(20s));
    CHECK(engine.keys().empty());
}

} // namespace test_namespace
