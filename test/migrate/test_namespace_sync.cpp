// The namespace records (NamespaceSync) and `-o restore` (restore_tree), with real files, a real
// state store and the in-memory object store: records follow the local tree after every kind of
// change, removed and renamed directories leave no record behind, large directories are split,
// Riak failures keep the dirty marks (across a restart), and a restore rebuilds a tree as
// placeholders with every name and attribute.
#include "lib/migrate/namespace_sync.hpp"

#include "lib/common/unique_fd.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/migrate/restore.hpp"
#include "lib/state/placeholder.hpp"
#include "test/migrate/migrate_test_support.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace rfs;
using namespace std::chrono_literals;
using migrate::test::open_state;
using migrate::test::run_on;
using migrate::test::TempTree;
namespace asio = boost::asio;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_namespace_sync {

namespace {

// A Migrator on the in-memory store, and the namespace sync on its loop.
struct Engine {
    Engine(const TempTree& tree, const layout::Mapper& mapper, migrate::NamespaceOptions no = {})
        : tree(tree), mapper(mapper) {
        state = open_state(tree.state_dir(), tree.source());
        migrate::MigratorOptions mo;
        mo.retry_first = 20ms;
        mo.retry_max = 100ms;
        migrator = std::make_unique<migrate::Migrator>(
            tree.source_fd(), mapper, *state,
            [this](asio::io_context& context) {
                auto made = std::make_unique<store::MemoryObjectStore>(context);
                mem = made.get();
                return made;
            },
            mo);
        migrator->start();
        no.coalesce = 20ms;
        no.retry_first = 20ms;
        no.retry_max = 100ms;
        options = no;
        start_sync();
    }
    ~Engine() {
        if (sync) sync->stop(0ms);
        migrator->stop(0ms);
    }
    // `via`: the store the sync talks to (default: the memory store itself).
    void start_sync(store::ObjectStore* via = nullptr) {
        sync = std::make_unique<migrate::NamespaceSync>(
            tree.source_fd(), mapper, *state, migrator->context(), via ? *via : *mem, options);
        sync->start();
    }
    void idle() {
        REQUIRE(migrator->wait_idle(20s));
        REQUIRE(sync->wait_idle(20s));
    }
    void on_loop(std::function<void()> fn) {
        run_on(migrator->context(), [](std::function<void()> f) -> asio::awaitable<void> {
            f();
            co_return;
        }(std::move(fn)));
    }
    // The record of `rel` as a reader of Riak sees it (all parts); nullopt when absent.
    std::optional<layout::DirRecord> record(const std::string& rel) {
        std::string error;
        auto got =
            run_on(migrator->context(),
                   [](store::ObjectStore* s, proto::BucketId b, std::string r,
                      std::string* err) -> asio::awaitable<std::optional<layout::DirRecord>> {
                       auto call = migrate::read_dir_record(*s, b, r);
                       auto read = co_await std::move(call);
                       if (!read) {
                           *err = read.error().message;
                           co_return std::nullopt;
                       }
                       co_return *read;
                   }(mem, mapper.namespace_bucket(), rel, &error));
        INFO(error);
        REQUIRE(error.empty());
        return got;
    }
    // The record the local directory makes now.
    layout::DirRecord local(const std::string& rel) {
        UniqueFd fd(migrate::open_dir_beneath(tree.source_fd(), rel));
        REQUIRE(fd);
        auto made = migrate::read_local_dir(fd.get(), rel, mapper, *state);
        REQUIRE(made);
        return *made;
    }
    std::set<std::string> ns_keys() {
        auto list = run_on(migrator->context(), mem->list_keys(mapper.namespace_bucket()));
        REQUIRE(list);
        return std::set<std::string>(list->begin(), list->end());
    }
    std::set<std::string> indexed() {
        std::set<std::string> out;
        REQUIRE(state->aux_for_each(state::AuxKind::dir_record, "",
                                    [&](std::string_view k, std::string_view) {
                                        out.insert(std::string(k));
                                        return true;
                                    }));
        return out;
    }
    // Every directory of the local tree agrees with its record, and nothing else is recorded.
    void check_agrees() {
        std::set<std::string> dirs = {"/"};
        for (auto& p : std::filesystem::recursive_directory_iterator(tree.source()))
            if (p.is_directory() && !p.is_symlink())
                dirs.insert("/" + std::filesystem::relative(p.path(), tree.source()).string());
        for (const auto& key : dirs) {
            INFO("directory " << key);
            auto rec = record(migrate::rel_of_key(key));
            REQUIRE(rec);
            rec->parts = 1;
            auto here = local(migrate::rel_of_key(key));
            // Access times move with every read (this test's own walk reads the directories):
            // records carry them as last seen.
            for (auto* r : {&*rec, &here})
                for (auto& [name, e] : r->entries)
                    e.atime_ns = 0;
            INFO("riak:  " << layout::encode_dir_record(*rec));
            INFO("local: " << layout::encode_dir_record(here));
            CHECK(*rec == here);
        }
        std::set<std::string> heads;
        for (const auto& k : ns_keys())
            if (k.find("//") == std::string::npos || k == "/") heads.insert(k);
        CHECK(heads == dirs);
        CHECK(indexed() == dirs);
    }

    const TempTree& tree;
    const layout::Mapper& mapper;
    migrate::NamespaceOptions options;
    std::unique_ptr<state::StateStore> state;
    std::unique_ptr<migrate::Migrator> migrator;
    std::unique_ptr<migrate::NamespaceSync> sync;
    store::MemoryObjectStore* mem = nullptr;
};

void make_dir(const TempTree& tree, const std::string& rel, mode_t mode = 0755) {
    REQUIRE(::mkdir(tree.src(rel).c_str(), mode) == 0);
}

} // namespace

TEST_CASE("namespace: the first start records the whole tree", "[namespace_sync]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    make_dir(tree, "a");
    make_dir(tree, "a/b", 0750);
    make_dir(tree, "empty");
    tree.write("top.txt", "top");
    tree.write("a/b/deep.txt", "deep");
    REQUIRE(::symlink("../top.txt", tree.src("a/link").c_str()) == 0);
    REQUIRE(::mkfifo(tree.src("a/fifo").c_str(), 0640) == 0);
    REQUIRE(::link(tree.src("top.txt").c_str(), tree.src("a/b/hard").c_str()) == 0);
    REQUIRE(::chown(tree.src("a/b/deep.txt").c_str(), 1234, 5678) == 0);

    Engine engine(tree, mapper);
    engine.idle();
    engine.check_agrees();
    auto root = engine.record("");
    REQUIRE(root);
    CHECK(root->entries.at("a").type == layout::EntryType::dir);
    CHECK(root->entries.at("top.txt").size == 3);
    CHECK(root->entries.at("top.txt").nlink == 2);
    auto a = engine.record("a");
    REQUIRE(a);
    CHECK(a->entries.at("link").type == layout::EntryType::lnk);
    CHECK(a->entries.at("link").target == "../top.txt");
    CHECK(a->entries.at("fifo").type == layout::EntryType::fifo);
    CHECK(a->entries.at("fifo").mode == 0640);
    auto b = engine.record("a/b");
    REQUIRE(b);
    CHECK(b->entries.at("deep.txt").uid == 1234);
    CHECK(b->entries.at("deep.txt").gid == 5678);
    CHECK(b->entries.at("hard").inode == root->entries.at("top.txt").inode);
    CHECK_FALSE(b->entries.at("hard").inode.empty());
    CHECK(engine.record("empty")->entries.empty());
}

TEST_CASE("namespace: records follow creates, writes, attributes, unlinks and renames",
          "[namespace_sync]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    Engine engine(tree, mapper);
    engine.idle();
    engine.check_agrees();

    // mkdir and create
    make_dir(tree, "x");
    engine.sync->dir_changed("x");
    engine.sync->entry_changed("x", true);
    make_dir(tree, "x/y");
    engine.sync->dir_changed("x/y");
    engine.sync->entry_changed("x/y", true);
    tree.write("x/y/f.txt", "hello");
    engine.sync->entry_changed("x/y/f.txt", true);
    engine.idle();
    engine.check_agrees();
    CHECK(engine.record("x/y")->entries.at("f.txt").size == 5);

    // write, truncate, chmod, chown, utimens
    tree.write("x/y/f.txt", "a longer content");
    engine.sync->entry_changed("x/y/f.txt", false);
    engine.idle();
    CHECK(engine.record("x/y")->entries.at("f.txt").size == 16);
    REQUIRE(::truncate(tree.src("x/y/f.txt").c_str(), 3) == 0);
    REQUIRE(::chmod(tree.src("x/y/f.txt").c_str(), 0600) == 0);
    REQUIRE(::chown(tree.src("x/y/f.txt").c_str(), 42, 43) == 0);
    timespec times[2] = {{1000, 5}, {2000, 7}};
    REQUIRE(::utimensat(AT_FDCWD, tree.src("x/y/f.txt").c_str(), times, 0) == 0);
    engine.sync->entry_changed("x/y/f.txt", false);
    REQUIRE(::chmod(tree.src("x/y").c_str(), 0700) == 0);
    engine.sync->entry_changed("x/y", false);
    engine.idle();
    engine.check_agrees();
    auto f = engine.record("x/y")->entries.at("f.txt");
    CHECK(f.size == 3);
    CHECK(f.mode == 0600);
    CHECK(f.uid == 42);
    CHECK(f.gid == 43);
    CHECK(f.mtime_ns == 2000000000007);
    CHECK(engine.record("x")->entries.at("y").mode == 0700);

    // hard link and symlink
    REQUIRE(::link(tree.src("x/y/f.txt").c_str(), tree.src("x/g").c_str()) == 0);
    engine.sync->entry_changed("x/g", true);
    engine.sync->entry_changed("x/y/f.txt", false);
    REQUIRE(::symlink("y/f.txt", tree.src("x/s").c_str()) == 0);
    engine.sync->entry_changed("x/s", true);
    engine.idle();
    engine.check_agrees();
    CHECK(engine.record("x")->entries.at("g").inode ==
          engine.record("x/y")->entries.at("f.txt").inode);

    // rename of a directory subtree: no record is left at the old names
    make_dir(tree, "x/y/z");
    engine.sync->dir_changed("x/y/z");
    engine.sync->entry_changed("x/y/z", true);
    engine.idle();
    REQUIRE(engine.record("x/y/z"));
    REQUIRE(::rename(tree.src("x").c_str(), tree.src("w").c_str()) == 0);
    engine.sync->renamed("x", "w");
    engine.idle();
    engine.check_agrees();
    CHECK_FALSE(engine.record("x"));
    CHECK_FALSE(engine.record("x/y"));
    CHECK_FALSE(engine.record("x/y/z"));
    CHECK(engine.record("w/y/z"));

    // rename of a file across directories, unlink, rmdir
    REQUIRE(::rename(tree.src("w/y/f.txt").c_str(), tree.src("moved.txt").c_str()) == 0);
    engine.sync->renamed("w/y/f.txt", "moved.txt");
    REQUIRE(::unlink(tree.src("w/s").c_str()) == 0);
    engine.sync->entry_changed("w/s", true);
    REQUIRE(::rmdir(tree.src("w/y/z").c_str()) == 0);
    engine.sync->dir_changed("w/y/z");
    engine.sync->entry_changed("w/y/z", true);
    engine.idle();
    engine.check_agrees();
    CHECK(engine.record("")->entries.count("moved.txt") == 1);
    CHECK_FALSE(engine.record("w/y/z"));

    // a whole subtree removed behind the hooks' back: the parent's next record drops them all
    std::filesystem::remove_all(tree.src("w"));
    engine.sync->entry_changed("w", true);
    engine.idle();
    engine.check_agrees();
    CHECK(engine.ns_keys() == std::set<std::string>{"/"});
}

TEST_CASE("namespace: paths the layout does not map are left out, directories are kept",
          "[namespace_sync]") {
    TempTree tree;
    auto mapper = layout::Mapper::from_json(
        R"({"rules":[{"path":"/{m}/images/{f}","bucket":"IMG_{m}","key":"{f}"}],
            "namespace":{"bucket":"ns-test"}})");
    REQUIRE(mapper);
    make_dir(tree, "cats");
    make_dir(tree, "cats/images");
    tree.write("cats/images/tom.jpg", "jpeg");
    tree.write("cats/readme.txt", "local only");
    Engine engine(tree, *mapper);
    engine.idle();
    engine.check_agrees();
    CHECK(engine.record("cats")->entries.count("images") == 1);
    CHECK(engine.record("cats")->entries.count("readme.txt") == 0);
    CHECK(engine.record("cats/images")->entries.count("tom.jpg") == 1);
}

TEST_CASE("namespace: hostile names round-trip", "[namespace_sync]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    std::vector<std::string> names = {"sp ace",   "50% off",     "a+b?c#d",
                                      "cr\rlf\n", "bad\xff\xfe", std::string(255, 'n')};
    make_dir(tree, "d %\xff");
    for (const auto& n : names)
        tree.write("d %\xff/" + n, n);
    Engine engine(tree, mapper);
    engine.idle();
    engine.check_agrees();
    auto rec = engine.record("d %\xff");
    REQUIRE(rec);
    for (const auto& n : names)
        CHECK(rec->entries.count(n) == 1);
}

TEST_CASE("namespace: a large directory is split into parts, and shrinks again",
          "[namespace_sync]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    make_dir(tree, "big");
    for (int i = 0; i < 300; ++i)
        tree.write("big/" + std::string(100, 'f') + std::to_string(i), "x");
    migrate::NamespaceOptions no;
    no.max_record_bytes = 16384;
    Engine engine(tree, mapper, no);
    engine.idle();
    engine.check_agrees();
    auto rec = engine.record("big");
    REQUIRE(rec);
    CHECK(rec->parts > 2);
    CHECK(rec->entries.size() == 300);
    CHECK(engine.ns_keys().count("/big//1") == 1);
    // No part is larger than allowed.
    for (const auto& k : engine.ns_keys()) {
        auto got = run_on(engine.migrator->context(),
                          engine.mem->get({"", std::string(layout::kDefaultNamespaceBucket), k}));
        REQUIRE(got);
        CHECK(got->object.value.size() <= no.max_record_bytes);
    }

    for (int i = 10; i < 300; ++i)
        std::filesystem::remove(tree.src("big/" + std::string(100, 'f') + std::to_string(i)));
    engine.sync->entry_changed("big/x", true);
    engine.idle();
    engine.check_agrees();
    CHECK(engine.record("big")->parts == 1);
    CHECK(engine.ns_keys() == std::set<std::string>{"/", "/big"});
}

namespace {
// The in-memory store whose PUTs each take `delay`, noting when each PUT of `watched` began and
// ended (steady clock), as a slow node or a large record would.
class SlowPutStore final : public store::ObjectStore {
public:
    SlowPutStore(asio::io_context& context, store::ObjectStore& inner,
                 std::chrono::milliseconds delay, std::string watched)
        : context_(context), inner_(inner), delay_(delay), watched_(std::move(watched)) {}
    store::Task<store::Fetched> get(proto::ObjectId id) override {
        return inner_.get(std::move(id));
    }
    store::Task<store::Fetched> head(proto::ObjectId id) override {
        return inner_.head(std::move(id));
    }
    store::Task<std::string> put(proto::ObjectId id, store::Object object,
                                 store::PutOptions options) override {
        const bool watched = id.key == watched_;
        if (watched) note(began_);
        asio::steady_timer timer(context_, delay_);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        auto call = inner_.put(std::move(id), std::move(object), std::move(options));
        auto put = co_await std::move(call);
        if (watched) note(ended_);
        co_return put;
    }
    store::Task<bool> remove(proto::ObjectId id, store::RemoveOptions options) override {
        return inner_.remove(std::move(id), std::move(options));
    }
    store::Task<std::vector<std::string>> list_keys(proto::BucketId bucket) override {
        return inner_.list_keys(std::move(bucket));
    }
    using Times = std::vector<std::chrono::steady_clock::time_point>;
    std::pair<Times, Times> times() {
        std::lock_guard lock(mu_);
        return {began_, ended_};
    }

private:
    void note(Times& times) {
        std::lock_guard lock(mu_);
        times.push_back(std::chrono::steady_clock::now());
    }
    asio::io_context& context_;
    store::ObjectStore& inner_;
    const std::chrono::milliseconds delay_;
    const std::string watched_;
    std::mutex mu_;
    Times began_, ended_;
};
} // namespace

// A directory whose record takes long to write (here: a slow node) is written again only after
// kSlowFactor times that, however often it changes: the namespace cannot take the whole loop.
TEST_CASE("namespace: a directory that is slow to write waits longer before its next write",
          "[namespace_sync]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    make_dir(tree, "busy");
    tree.write("busy/a", "x");
    Engine engine(tree, mapper);
    engine.idle();
    engine.sync->stop(0ms);
    engine.sync.reset();
    constexpr auto kDelay = 300ms;
    SlowPutStore slow(engine.migrator->context(), *engine.mem, kDelay, "/busy");
    migrate::NamespaceOptions no = engine.options; // coalesce 20 ms
    migrate::NamespaceSync sync(tree.source_fd(), mapper, *engine.state, engine.migrator->context(),
                                slow, no);
    sync.start();
    // Changes keep coming, every 20 ms, for long enough to see two writes after the first.
    std::size_t writes = 0;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    for (int i = 0; writes < 3 && std::chrono::steady_clock::now() < deadline; ++i) {
        tree.write("busy/f" + std::to_string(i % 50), "y");
        sync.entry_changed("busy/f" + std::to_string(i % 50), true);
        std::this_thread::sleep_for(20ms);
        writes = slow.times().second.size();
    }
    REQUIRE(sync.wait_idle(30s));
    sync.stop(0ms);
    auto [began, ended] = slow.times();
    REQUIRE(ended.size() >= 3);
    // Each write took at least kDelay; the next began no sooner than kSlowFactor times that
    // after it ended (with the default 20 ms it would follow within about 20 ms).
    for (std::size_t i = 0; i + 1 < began.size() && i < ended.size(); ++i) {
        INFO("write " << i);
        CHECK(began[i + 1] - ended[i] >= migrate::NamespaceOptions::kSlowFactor * kDelay - 50ms);
    }
}

TEST_CASE("namespace: Riak failures keep the dirty marks, across a restart", "[namespace_sync]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    Engine engine(tree, mapper);
    engine.idle();
    engine.on_loop([&] { engine.mem->set_unreachable(true); });
    make_dir(tree, "later");
    engine.sync->dir_changed("later");
    engine.sync->entry_changed("later", true);
    CHECK_FALSE(engine.sync->wait_idle(500ms));
    CHECK(engine.sync->stats().failures > 0);
    engine.sync->stop(0ms);
    auto dirty = engine.state->aux_get(state::AuxKind::dirty_dir, "/later");
    REQUIRE(dirty);
    CHECK(dirty->has_value());

    // A new start resumes it once Riak answers again.
    engine.on_loop([&] { engine.mem->set_unreachable(false); });
    engine.start_sync();
    engine.idle();
    engine.check_agrees();
    CHECK(engine.record("later"));
}

namespace {

// The memory store, except that the first PUT of `key` is carried out and its answer lost (a
// timeout after the node took the write, or a crash between the write and what follows it).
class LosesFirstPutAnswer final : public store::ObjectStore {
public:
    LosesFirstPutAnswer(store::MemoryObjectStore& mem, std::string key)
        : mem_(mem), key_(std::move(key)) {}
    store::Task<store::Fetched> get(proto::ObjectId id) override { return mem_.get(id); }
    store::Task<store::Fetched> head(proto::ObjectId id) override { return mem_.head(id); }
    store::Task<std::string> put(proto::ObjectId id, store::Object object,
                                 store::PutOptions options) override {
        const bool lose = !lost_ && id.key == key_;
        lost_ = lost_ || lose;
        auto call = mem_.put(std::move(id), std::move(object), std::move(options));
        return lose ? lost(std::move(call)) : std::move(call);
    }
    store::Task<bool> remove(proto::ObjectId id, store::RemoveOptions options) override {
        return mem_.remove(id, options);
    }
    store::Task<std::vector<std::string>> list_keys(proto::BucketId bucket) override {
        return mem_.list_keys(bucket);
    }

private:
    static store::Task<std::string> lost(store::Task<std::string> call) {
        (void)co_await std::move(call);
        co_return riak::make_error(riak::Errc::timeout, "answer lost (test)", ETIMEDOUT);
    }
    store::MemoryObjectStore& mem_;
    std::string key_;
    bool lost_ = false;
};

} // namespace

// A directory's first record written to Riak whose answer was lost (or a crash right after the
// write): the directory is not known as recorded. Removed before the retry, its record stayed
// in Riak for good ("never recorded", nothing deleted), a directory the tree no longer has.
TEST_CASE("namespace: a record whose write's answer was lost is deleted with its directory",
          "[namespace_sync]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    Engine engine(tree, mapper);
    engine.idle();
    engine.sync->stop(0ms);
    LosesFirstPutAnswer lossy(*engine.mem, "/gone");
    engine.options.retry_first = 300ms; // the directory is removed before the retry
    engine.start_sync(&lossy);
    make_dir(tree, "gone");
    engine.sync->dir_changed("gone");
    engine.sync->entry_changed("gone", true);
    for (int i = 0; i < 2000 && engine.sync->stats().failures == 0; ++i)
        std::this_thread::sleep_for(1ms);
    REQUIRE(engine.ns_keys().count("/gone") > 0); // written, answer lost
    REQUIRE(::rmdir(tree.src("gone").c_str()) == 0);
    engine.sync->dir_changed("gone");
    engine.sync->entry_changed("gone", true);
    engine.idle();
    CHECK(engine.sync->stats().failures > 0);
    engine.check_agrees();
}

// ---- restore ----------------------------------------------------------------------------------

namespace {

struct Restored {
    std::string error;
    migrate::RestoreReport report;
};

Restored restore_into(Engine& engine, const TempTree& target, state::StateStore& state) {
    return run_on(engine.migrator->context(),
                  [](int root, const layout::Mapper* m, state::StateStore* s,
                     store::ObjectStore* st) -> asio::awaitable<Restored> {
                      auto call = migrate::restore_tree(root, *m, *s, *st);
                      auto done = co_await std::move(call);
                      if (!done) co_return Restored{done.error().message, {}};
                      co_return Restored{"", *done};
                  }(target.source_fd(), &engine.mapper, &state, engine.mem));
}

// Every name below `a` and `b`, with what lstat says (and symlink targets).
std::map<std::string, std::string> describe(const std::string& root) {
    std::map<std::string, std::string> out;
    std::map<std::pair<dev_t, ino_t>, std::string> first_name;
    for (auto& p : std::filesystem::recursive_directory_iterator(root)) {
        std::string rel = std::filesystem::relative(p.path(), root).string();
        struct stat st;
        REQUIRE(::lstat(p.path().c_str(), &st) == 0);
        std::string d = fmt::format("mode={:o} uid={} gid={} nlink={} mtime={}", st.st_mode,
                                    st.st_uid, st.st_gid, st.st_nlink, rfs::ns_of(st.st_mtim));
        if (!S_ISDIR(st.st_mode)) d += fmt::format(" size={}", st.st_size);
        if (S_ISLNK(st.st_mode)) d += " -> " + std::filesystem::read_symlink(p.path()).string();
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
            auto [it, first] = first_name.emplace(std::pair{st.st_dev, st.st_ino}, rel);
            d += " same-as=" + it->second;
        }
        out[rel] = d;
    }
    return out;
}

} // namespace

TEST_CASE("restore rebuilds the tree as placeholders, with every name and attribute", "[restore]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    make_dir(tree, "a");
    make_dir(tree, "a/b", 0750);
    make_dir(tree, "empty", 0711);
    tree.write("top.txt", "top content");
    tree.write("a/b/deep.txt", std::string(3000, 'd'));
    tree.write("a/bad\xff name", "hostile");
    REQUIRE(::symlink("../top.txt", tree.src("a/link").c_str()) == 0);
    REQUIRE(::mkfifo(tree.src("a/fifo").c_str(), 0640) == 0);
    REQUIRE(::link(tree.src("top.txt").c_str(), tree.src("a/b/hard").c_str()) == 0);
    REQUIRE(::chown(tree.src("a/b/deep.txt").c_str(), 1234, 5678) == 0);
    REQUIRE(::chmod(tree.src("a/b/deep.txt").c_str(), 0604) == 0);
    timespec times[2] = {{1000, 5}, {1600000000, 123456789}};
    REQUIRE(::utimensat(AT_FDCWD, tree.src("a/b").c_str(), times, 0) == 0);

    Engine engine(tree, mapper);
    for (auto p : {"top.txt", "a/b/deep.txt", "a/bad\xff name", "a/b/hard"})
        engine.migrator->file_closed(p, true);
    engine.idle();
    auto before = describe(tree.source());

    TempTree target;
    auto state2 = open_state(target.state_dir(), target.source());
    auto restored = restore_into(engine, target, *state2);
    REQUIRE(restored.error == "");
    CHECK(restored.report.directories == 3);
    CHECK(restored.report.files == 3);
    CHECK(restored.report.hard_links == 1);
    CHECK(restored.report.symlinks == 1);
    CHECK(restored.report.others == 1);
    CHECK(restored.report.missing == 0);
    CHECK(describe(target.source()) == before);

    // Placeholders: no data, the marker and a released record naming the object.
    struct stat st;
    REQUIRE(::stat(target.src("a/b/deep.txt").c_str(), &st) == 0);
    UniqueFd fd(::open(target.src("a/b/deep.txt").c_str(), O_RDONLY));
    CHECK(::lseek(fd.get(), 0, SEEK_DATA) == -1); // a hole from start to end
    CHECK(errno == ENXIO);
    auto marker = state::read_marker(fd.get());
    REQUIRE(marker);
    REQUIRE(marker->has_value());
    CHECK((*marker)->key == "a/b/deep.txt");
    CHECK((*marker)->size == 3000);
    auto rec = state2->get("a/b/deep.txt");
    REQUIRE(rec);
    REQUIRE(rec->has_value());
    CHECK((*rec)->phase == state::Phase::released);
    CHECK((*rec)->sha256 == (*marker)->sha256);
    CHECK((*rec)->ino == st.st_ino);
    CHECK(static_cast<std::uint64_t>((*rec)->ctime_ns) ==
          static_cast<std::uint64_t>(rfs::ns_of(st.st_ctim)));
    CHECK_FALSE(state2->aux_get(state::AuxKind::restoring, "")->has_value());

    // The hard link keeps its recorded id in the records made from the restored tree.
    REQUIRE(::stat(target.src("top.txt").c_str(), &st) == 0);
    auto id = state2->aux_get(state::AuxKind::inode_id, migrate::local_inode_id(st));
    REQUIRE(id);
    CHECK(**id == engine.record("")->entries.at("top.txt").inode);

    // Refused now: SOURCE and state_dir are not empty.
    auto again = restore_into(engine, target, *state2);
    CHECK(again.error.find("empty state_dir") != std::string::npos);
    TempTree other;
    other.write("x", "x");
    auto state3 = open_state(other.state_dir(), other.source());
    CHECK(restore_into(engine, other, *state3).error.find("empty SOURCE") != std::string::npos);
}

TEST_CASE("restore: a missing object is skipped and counted; Riak down is an error; an "
          "interrupted restore resumes",
          "[restore]") {
    TempTree tree;
    auto mapper = layout::Mapper::default_layout();
    make_dir(tree, "d");
    tree.write("d/copied.txt", "copied");
    tree.write("d/never.txt", "never copied");
    Engine engine(tree, mapper);
    engine.migrator->file_closed("d/copied.txt", true);
    engine.idle();

    {
        TempTree target;
        auto state2 = open_state(target.state_dir(), target.source());
        auto restored = restore_into(engine, target, *state2);
        REQUIRE(restored.error == "");
        CHECK(restored.report.missing == 1);
        CHECK(restored.report.files == 1);
        CHECK(std::filesystem::exists(target.src("d/copied.txt")));
        CHECK_FALSE(std::filesystem::exists(target.src("d/never.txt")));
    }
    {
        TempTree target;
        auto state2 = open_state(target.state_dir(), target.source());
        engine.on_loop([&] { engine.mem->set_unreachable(true); });
        auto failed = restore_into(engine, target, *state2);
        engine.on_loop([&] { engine.mem->set_unreachable(false); });
        CHECK(failed.error.find("cannot read the record of /") != std::string::npos);
        CHECK(state2->aux_get(state::AuxKind::restoring, "")->has_value());

        // Run again: resumed although the state store is no longer empty.
        auto first = restore_into(engine, target, *state2);
        REQUIRE(first.error == "");
        CHECK(first.report.resumed);
        // Interrupted after a while: one file lost its record, a directory is half made.
        REQUIRE(state2->aux_put(state::AuxKind::restoring, "", ""));
        REQUIRE(state2->erase("d/copied.txt"));
        auto resumed = restore_into(engine, target, *state2);
        REQUIRE(resumed.error == "");
        CHECK(resumed.report.resumed);
        CHECK(resumed.report.files == 1);
        auto rec = state2->get("d/copied.txt");
        REQUIRE(rec);
        CHECK(rec->has_value());
    }
}

TEST_CASE("split records: parts encode within the limit and decode back", "[dir_record]") {
    layout::DirRecord rec;
    for (int i = 0; i < 500; ++i) {
        layout::DirEntry e;
        e.size = static_cast<std::uint64_t>(i);
        rec.entries.emplace("name-" + std::to_string(i) + std::string(50, '%'), e);
    }
    auto parts = layout::split_dir_record(rec, 8192);
    REQUIRE(parts.size() > 3);
    CHECK(parts[0].parts == parts.size());
    layout::DirRecord joined;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        std::string body = layout::encode_dir_record(parts[i]);
        CHECK(body.size() <= 8192);
        auto decoded = layout::decode_dir_record(body);
        REQUIRE(decoded);
        CHECK(decoded->parts == (i == 0 ? parts.size() : 1));
        joined.entries.insert(decoded->entries.begin(), decoded->entries.end());
    }
    CHECK(joined.entries == rec.entries);
    CHECK(layout::split_dir_record(rec).size() == 1);
    CHECK(layout::dir_record_part_key("a/b", 2) == "/a/b//2");
    CHECK(layout::dir_record_part_key("", 1) == "///1");
    CHECK_FALSE(layout::decode_dir_record(R"({"format":"riakfs-dir/1","entries":{},"parts":1})"));
}

} // namespace test_namespace_sync
