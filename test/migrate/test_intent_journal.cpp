// The namespace changes' write-ahead journal (lib/migrate/intent_journal.hpp): which intents a
// reopened journal hands back to be recorded (made and not marked applied; without an outcome
// line, judged by what SOURCE shows), that the applied marks and a torn last line are honoured,
// and the pending-upload notes' encoding (lib/migrate/pending_uploads.hpp).
#include "lib/migrate/intent_journal.hpp"
#include "lib/migrate/pending_uploads.hpp"
#include "migrate_test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

using namespace rfs;
using namespace rfs::migrate;
using rfs::migrate::test::open_state;
using rfs::migrate::test::TempTree;

namespace {

IntentJournal::Identity identity(const std::string& path) {
    struct stat st;
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return {st.st_dev, st.st_ino};
}

std::unique_ptr<IntentJournal> open_journal(const TempTree& tree, state::StateStore& state) {
    auto journal = IntentJournal::open(tree.state_dir(), state, tree.source_fd());
    REQUIRE(journal);
    return std::move(*journal);
}

std::vector<std::string> unrecorded(const IntentJournal& journal) {
    std::vector<std::string> out;
    for (const auto& i : journal.unrecorded())
        out.push_back(std::string(1, static_cast<char>(i.kind)) + " " + i.from +
                      (i.to.empty() ? "" : " " + i.to));
    return out;
}

} // namespace

TEST_CASE("a reopened journal hands back the changes made and never recorded, in order",
          "[journal]") {
    TempTree tree;
    auto state = open_state(tree.state_dir(), tree.source());
    tree.write("a", "1");
    tree.write("b", "2");
    tree.write("c", "3");
    tree.write("d", "4");
    {
        auto journal = open_journal(tree, *state);
        CHECK(journal->unrecorded().empty());
        using Kind = IntentJournal::Kind;
        // Made, recorded (its batch marked it applied): nothing to do again.
        auto done = journal->note(Kind::unlink, "a", "", identity(tree.src("a")), {});
        REQUIRE(::unlink(tree.src("a").c_str()) == 0);
        journal->made(done);
        state::StateStore::Batch batch;
        batch.aux(IntentJournal::applied_op(done));
        REQUIRE(state->apply(batch));
        journal->recorded(done);
        // Made, not recorded: handed back.
        auto renamed = journal->note(Kind::rename, "b", "b2", identity(tree.src("b")), {});
        REQUIRE(::rename(tree.src("b").c_str(), tree.src("b2").c_str()) == 0);
        journal->made(renamed);
        // Refused by SOURCE: nothing to record.
        auto refused = journal->note(Kind::rename, "nope", "x", {}, {});
        journal->not_made(refused);
        // No outcome line (the daemon died between the change and the line): made, as SOURCE
        // shows, and one not made.
        auto cut = journal->note(Kind::rename, "c", "c2", identity(tree.src("c")), {});
        REQUIRE(::rename(tree.src("c").c_str(), tree.src("c2").c_str()) == 0);
        (void)journal->note(Kind::unlink, "d", "", identity(tree.src("d")), {});
        CHECK(journal->outstanding() == 3);
        (void)cut;
    }
    auto journal = open_journal(tree, *state);
    CHECK(unrecorded(*journal) == std::vector<std::string>{"r b b2", "r c c2"});
    CHECK(journal->outstanding() == 2);
    // New intents get new ids.
    auto next = journal->note(IntentJournal::Kind::unlink, "d", "", identity(tree.src("d")), {});
    for (const auto& i : journal->unrecorded())
        CHECK(next > i.id);
}

TEST_CASE("a durable intent is synced before note() returns, the others are not", "[journal]") {
    TempTree tree;
    auto state = open_state(tree.state_dir(), tree.source());
    tree.write("a", "1");
    tree.write("b", "2");
    using Kind = IntentJournal::Kind;
    {
        auto journal = open_journal(tree, *state);
        auto plain = journal->note(Kind::rename, "a", "a2", identity(tree.src("a")), {});
        CHECK(plain != 0);
        CHECK(journal->syncs() == 0);
        auto durable = journal->note(Kind::rename, "b", "b2", identity(tree.src("b")), {}, 1, true);
        CHECK(durable != 0);
        CHECK(journal->syncs() == 1);
        // After-the-fact notes never ask for it.
        (void)journal->note_touch(Kind::closed, "a", 1);
        CHECK(journal->syncs() == 1);
        REQUIRE(::rename(tree.src("b").c_str(), tree.src("b2").c_str()) == 0);
    }
    // Written like any other: with no outcome line, judged by what SOURCE shows (a2 was never
    // made); the close's note comes back until settled.
    auto journal = open_journal(tree, *state);
    CHECK(unrecorded(*journal) == std::vector<std::string>{"r b b2", "c a"});
}

// An application's fsyncdir through the mount (FsObserver::on_dir_synced) syncs the journal
// when that can matter: while notes are outstanding and some line was written since the last
// sync, so that a program syncing often with no namespace change pays nothing.
TEST_CASE("an application's sync syncs the journal only for outstanding notes not yet synced",
          "[journal]") {
    TempTree tree;
    auto state = open_state(tree.state_dir(), tree.source());
    auto journal = open_journal(tree, *state);
    using Kind = IntentJournal::Kind;
    journal->sync_outstanding(); // nothing noted
    CHECK(journal->syncs() == 0);
    auto created = journal->note_touch(Kind::touched_names, "a", 1);
    journal->sync_outstanding();
    CHECK(journal->syncs() == 1);
    journal->sync_outstanding(); // nothing written since
    CHECK(journal->syncs() == 1);
    auto closed = journal->note_touch(Kind::closed, "a", 1);
    journal->sync_outstanding();
    CHECK(journal->syncs() == 2);
    // Recorded: nothing outstanding, though settle lines were written since.
    journal->recorded(created);
    journal->recorded(closed);
    CHECK(journal->outstanding() == 0);
    journal->sync_outstanding();
    CHECK(journal->syncs() == 2);
    // A durable note's sync covers what was written before it.
    tree.write("b", "1");
    (void)journal->note_touch(Kind::touched, "b", 1);
    (void)journal->note(Kind::rename, "b", "c", identity(tree.src("b")), {}, 1, true);
    CHECK(journal->syncs() == 3);
    journal->sync_outstanding();
    CHECK(journal->syncs() == 3);
}

// fsyncdirs through the mount run on blocking-work threads while hooks note and settle on the
// loops, and a compaction swaps the journal's descriptor meanwhile: each sync works on a
// descriptor of its own, and every note outstanding at the end comes back after a reopen.
TEST_CASE("syncs from other threads while notes come, settle and the journal is rewritten",
          "[journal]") {
    TempTree tree;
    auto state = open_state(tree.state_dir(), tree.source());
    using Kind = IntentJournal::Kind;
    const std::string long_path(200, 'p');
    std::vector<std::uint64_t> left;
    {
        auto journal = open_journal(tree, *state);
        std::atomic<bool> done{false};
        std::vector<std::thread> syncers;
        for (int t = 0; t < 2; ++t)
            syncers.emplace_back([&] {
                while (!done.load())
                    journal->sync_outstanding();
            });
        // About 3 MiB of notes, all but every 500th settled: compacted a few times.
        for (int i = 0; i < 12000; ++i) {
            auto id = journal->note_touch(Kind::touched, long_path + std::to_string(i), 1);
            REQUIRE(id != 0);
            if (i % 500 == 0)
                left.push_back(id);
            else
                journal->recorded(id);
        }
        done = true;
        for (auto& t : syncers)
            t.join();
        CHECK(journal->outstanding() == left.size());
        CHECK(journal->syncs() > 0);
    }
    struct stat st;
    REQUIRE(::stat((tree.state_dir() + "/namespace.journal").c_str(), &st) == 0);
    CHECK(st.st_size < (1 << 20)); // rewritten at least once
    auto journal = open_journal(tree, *state);
    CHECK(journal->unrecorded().size() == left.size());
}

TEST_CASE("an exchange and an rmdir without an outcome line are judged by SOURCE", "[journal]") {
    TempTree tree;
    auto state = open_state(tree.state_dir(), tree.source());
    tree.write("x", "x");
    tree.write("y", "y");
    REQUIRE(::mkdir(tree.src("dir").c_str(), 0755) == 0);
    REQUIRE(::mkdir(tree.src("kept").c_str(), 0755) == 0);
    {
        auto journal = open_journal(tree, *state);
        using Kind = IntentJournal::Kind;
        (void)journal->note(Kind::exchange, "x", "y", identity(tree.src("x")),
                            identity(tree.src("y")));
        REQUIRE(::renameat2(AT_FDCWD, tree.src("x").c_str(), AT_FDCWD, tree.src("y").c_str(),
                            RENAME_EXCHANGE) == 0);
        (void)journal->note(Kind::rmdir, "dir", "", identity(tree.src("dir")), {});
        REQUIRE(::rmdir(tree.src("dir").c_str()) == 0);
        (void)journal->note(Kind::rmdir, "kept", "", identity(tree.src("kept")), {});
    }
    auto journal = open_journal(tree, *state);
    CHECK(unrecorded(*journal) == std::vector<std::string>{"x x y", "d dir"});
}

TEST_CASE("a torn last line of the journal is ignored", "[journal]") {
    TempTree tree;
    auto state = open_state(tree.state_dir(), tree.source());
    tree.write("a", "1");
    {
        auto journal = open_journal(tree, *state);
        auto id = journal->note(IntentJournal::Kind::rename, "a", "b", identity(tree.src("a")), {});
        REQUIRE(::rename(tree.src("a").c_str(), tree.src("b").c_str()) == 0);
        journal->made(id);
    }
    // Half of an intent line, as a daemon killed inside the write could leave.
    int fd = ::open((tree.state_dir() + "/namespace.journal").c_str(), O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "\x20I\x05", 3) == 3);
    ::close(fd);
    auto journal = open_journal(tree, *state);
    CHECK(unrecorded(*journal) == std::vector<std::string>{"r a b"});
}

TEST_CASE("a pending upload's note keeps its chunks and the ones it replaces", "[journal]") {
    PendingUpload upload{
        "v1", "dir/big", "", "riakfs", "dir/big", 3, {".riakfs/chunks/v0/0", "k\n2"}};
    auto op = note_pending_upload(upload);
    CHECK(op.kind == state::AuxKind::pending_upload);
    CHECK(op.key == "v1");
    REQUIRE(op.value);
    auto back = decode_pending_upload("v1", *op.value);
    REQUIRE(back);
    CHECK(back->path == "dir/big");
    CHECK(back->bucket == "riakfs");
    CHECK(back->key == "dir/big");
    CHECK(back->chunks == 3);
    CHECK(back->replaced == upload.replaced);
    CHECK(!decode_pending_upload("v1", op.value->substr(0, op.value->size() - 1)));
    CHECK(!drop_pending_upload("v1").value);
}

TEST_CASE("notes made after their change come back until every part settled them", "[journal]") {
    TempTree tree;
    auto state = open_state(tree.state_dir(), tree.source());
    using Kind = IntentJournal::Kind;
    {
        auto journal = open_journal(tree, *state);
        auto closed = journal->note_touch(Kind::closed, "gone-or-not", 2);
        auto touched = journal->note_touch(Kind::touched, "t", 1);
        auto settled = journal->note_touch(Kind::touched_names, "n", 1);
        journal->recorded(settled);
        journal->recorded(closed); // one part of two
        CHECK(journal->outstanding() == 2);
        (void)touched;
    }
    auto journal = open_journal(tree, *state);
    // Whatever SOURCE shows (neither path exists); not the settled one.
    CHECK(unrecorded(*journal) == std::vector<std::string>{"c gone-or-not", "t t"});
}

TEST_CASE("a large journal is rewritten with its outstanding notes, and the other intents' "
          "applied marks go",
          "[journal]") {
    TempTree tree;
    auto state = open_state(tree.state_dir(), tree.source());
    tree.write("keep", "k");
    using Kind = IntentJournal::Kind;
    const std::string file = tree.state_dir() + "/namespace.journal";
    std::uint64_t kept = 0;
    {
        auto journal = open_journal(tree, *state);
        // Outstanding throughout: made, not recorded.
        kept = journal->note(Kind::unlink, "kept", "", {1, 2}, {});
        journal->made(kept);
        const std::string name(60, 'x');
        for (int i = 0; i < 20000; ++i) {
            auto id = journal->note(Kind::rename, name, name + "2", {1, 3}, {});
            if (i % 1000 == 0) { // some marked applied (of no intent made: only their erasure
                                 // is looked at)
                state::StateStore::Batch batch;
                batch.aux(IntentJournal::applied_op(id));
                REQUIRE(state->apply(batch));
            }
            journal->not_made(id);
        }
        struct stat st;
        REQUIRE(::stat(file.c_str(), &st) == 0);
        CHECK(st.st_size < (1 << 20));
        CHECK(journal->outstanding() == 1);
    }
    std::size_t marks = 0;
    REQUIRE(state->aux_for_each(state::AuxKind::applied_intent, "",
                                [&](std::string_view, std::string_view) {
                                    ++marks;
                                    return true;
                                }));
    // 20 were written: those before the last rewrite are gone.
    CHECK(marks < 20);
    auto journal = open_journal(tree, *state);
    REQUIRE(journal->unrecorded().size() == 1);
    CHECK(journal->unrecorded()[0].id == kept);
    CHECK(journal->unrecorded()[0].from == "kept");
}
