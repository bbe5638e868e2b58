// MemoryObjectStore: the shared contract (store_contract.hpp) and what only the fake has:
// completion through its io_context, injected siblings and faults, the call log, tombstone
// keeping and reaping.
#include <catch2/catch.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "lib/store/memory_object_store.hpp"
#include "test/store/store_contract.hpp"

using namespace rfs::store;
using namespace rfs::store::test;
namespace proto = rfs::proto;

namespace {

struct MemoryHarness : Harness {
    // Tombstones kept, as Riak keeps them for delete_mode (3 s by default).
    explicit MemoryHarness(MemoryStoreOptions options = {true}) : memory(ioc, options) {}
    ObjectStore& store() override { return memory; }
    asio::io_context& context() override { return ioc; }

    asio::io_context ioc;
    MemoryObjectStore memory;
};

} // namespace

TEST_CASE("memory store: put, get, head round trip", "[store][memory]") {
    MemoryHarness h;
    contract_round_trip(h);
}

TEST_CASE("memory store: not found", "[store][memory]") {
    MemoryHarness h;
    contract_not_found(h);
}

TEST_CASE("memory store: siblings", "[store][memory]") {
    MemoryHarness h;
    contract_siblings(h);
}

TEST_CASE("memory store: no siblings in the default type", "[store][memory]") {
    MemoryHarness h;
    contract_default_type_has_no_siblings(h);
}

TEST_CASE("memory store: conditional removes", "[store][memory]") {
    MemoryHarness h;
    contract_remove(h);
}

TEST_CASE("memory store: create only", "[store][memory]") {
    MemoryHarness h;
    contract_create_only(h);
}

TEST_CASE("memory store: put_and_read", "[store][memory]") {
    MemoryHarness h;
    contract_put_and_read(h);
}

TEST_CASE("memory store: hostile names", "[store][memory]") {
    MemoryHarness h;
    contract_hostile_names(h);
}

TEST_CASE("memory store: invalid input", "[store][memory]") {
    MemoryHarness h;
    contract_invalid_input(h);
}

TEST_CASE("memory store: calls complete through the io_context", "[store][memory]") {
    MemoryHarness h;
    MemoryObjectStore& s = h.memory;
    const proto::ObjectId id{"", "b", "k"};
    // A handler posted before the call runs before the call completes: the call went through
    // the loop instead of completing inline.
    auto order = h([&]() -> asio::awaitable<std::vector<std::string>> {
        std::vector<std::string> seen;
        asio::post(h.ioc, [&] { seen.push_back("posted"); });
        auto call = s.put(id, object("v"), PutOptions{});
        auto put = co_await std::move(call);
        seen.push_back(put ? "put" : "put failed");
        co_return seen;
    }());
    CHECK(order == std::vector<std::string>{"posted", "put"});
    // Nothing runs without the loop: a spawned call has not completed before it runs.
    bool done = false;
    asio::co_spawn(h.ioc, s.get(id), [&](std::exception_ptr, Result<Fetched>) { done = true; });
    CHECK_FALSE(done);
    h.ioc.restart();
    h.ioc.run();
    CHECK(done);
}

TEST_CASE("memory store: injected siblings", "[store][memory]") {
    MemoryHarness h;
    MemoryObjectStore& s = h.memory;
    const proto::ObjectId id{"", "inj", "k"}; // default type: injection still makes siblings
    REQUIRE(h(s.put(id, object("live", "0001"), {})));
    s.inject_sibling(id, object("newer", "0005"));
    s.inject_sibling(id, {}, true);
    s.inject_sibling(id, object("no stamp"));
    CHECK(s.versions(id) == 4);
    auto got = h(s.get(id));
    REQUIRE(got);
    CHECK(got->siblings == 4);
    CHECK(got->object.value == "newer");
    // The vclock covers all of them: a put with it leaves one version, even without allow_mult.
    s.set_allow_mult(proto::BucketId{"", "inj"}, true);
    REQUIRE(h(s.put(id, object("merged", "0006"), PutOptions{got->vclock})));
    CHECK(s.versions(id) == 1);

    // Only tombstone siblings: not found.
    const proto::ObjectId dead{"", "inj", "dead"};
    s.inject_sibling(dead, {}, true);
    s.inject_sibling(dead, {}, true);
    auto none = h(s.get(dead));
    REQUIRE(none);
    CHECK_FALSE(none->found);
    CHECK_FALSE(none->vclock.empty());
}

TEST_CASE("memory store: allow_mult per bucket", "[store][memory]") {
    MemoryHarness h;
    MemoryObjectStore& s = h.memory;
    const proto::BucketId plain_typed{"typed", "plain"};
    s.set_allow_mult(plain_typed, false);
    const proto::ObjectId a{"typed", "plain", "k"};
    REQUIRE(h(s.put(a, object("1"), {})));
    REQUIRE(h(s.put(a, object("2"), {})));
    CHECK(s.versions(a) == 1);
    const proto::ObjectId b{"", "multi", "k"};
    s.set_allow_mult(proto::BucketId{"", "multi"}, true);
    REQUIRE(h(s.put(b, object("1"), {})));
    REQUIRE(h(s.put(b, object("2"), {})));
    CHECK(s.versions(b) == 2);
    // A vclock the store never issued is refused like Riak refuses a garbled one (500).
    auto bad = h(s.put(b, object("3"), PutOptions{"not a vclock"}));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == Errc::server_error);
}

TEST_CASE("memory store: tombstones are listed until reaped", "[store][memory]") {
    SECTION("kept") {
        MemoryHarness h;
        MemoryObjectStore& s = h.memory;
        REQUIRE(h(s.put(proto::ObjectId{"", "t", "a"}, object("a"), {})));
        REQUIRE(h(s.put(proto::ObjectId{"", "t", "b"}, object("b"), {})));
        REQUIRE(h(s.remove(proto::ObjectId{"", "t", "a"}, {})));
        auto listed = h(s.list_keys(proto::BucketId{"", "t"}));
        REQUIRE(listed);
        CHECK(listed->size() == 2);
        s.reap_tombstones();
        listed = h(s.list_keys(proto::BucketId{"", "t"}));
        REQUIRE(listed);
        CHECK(*listed == std::vector<std::string>{"b"});
        auto gone = h(s.get(proto::ObjectId{"", "t", "a"}));
        REQUIRE(gone);
        CHECK_FALSE(gone->found);
        CHECK(gone->vclock.empty()); // reaped: nothing left
    }
    SECTION("reaped at once") {
        MemoryHarness h(MemoryStoreOptions{false});
        MemoryObjectStore& s = h.memory;
        const proto::ObjectId id{"", "t", "a"};
        REQUIRE(h(s.put(id, object("a"), {})));
        auto read = h(s.get(id));
        REQUIRE(read);
        REQUIRE(h(s.remove(id, RemoveOptions::matching(*read))));
        auto listed = h(s.list_keys(proto::BucketId{"", "t"}));
        REQUIRE(listed);
        CHECK(listed->empty());
        // A re-create with the old vclock (from another incarnation) is simply a new value.
        REQUIRE(h(s.put(id, object("again"), PutOptions{read->vclock})));
        auto got = h(s.get(id));
        REQUIRE(got);
        CHECK(got->object.value == "again");
        CHECK(got->siblings == 1);
        auto retry = h(s.remove(id, RemoveOptions::matching(*read)));
        REQUIRE_FALSE(retry);
        CHECK(retry.error().to_errno() == ESTALE);
    }
}

TEST_CASE("memory store: size limit", "[store][memory]") {
    MemoryHarness h(MemoryStoreOptions{true, 100});
    auto big = h(h.memory.put(proto::ObjectId{"", "b", "k"}, object(std::string(200, 'x')), {}));
    REQUIRE_FALSE(big);
    CHECK(big.error().code == Errc::object_too_large);
    CHECK(big.error().to_errno() == EFBIG);
    REQUIRE(h(h.memory.put(proto::ObjectId{"", "b", "k"}, object(std::string(50, 'x')), {})));
}

TEST_CASE("memory store: injected failures are errors, never not-found", "[store][memory]") {
    MemoryHarness h;
    MemoryObjectStore& s = h.memory;
    const proto::ObjectId id{"", "f", "k"};
    const proto::BucketId bucket{"", "f"};
    REQUIRE(h(s.put(id, object("v"), {})));

    SECTION("fail_next") {
        s.fail_next(2, Errc::timeout);
        auto a = h(s.get(id));
        REQUIRE_FALSE(a);
        CHECK(a.error().code == Errc::timeout);
        CHECK(a.error().to_errno() == ETIMEDOUT);
        auto b = h(s.list_keys(bucket));
        REQUIRE_FALSE(b);
        CHECK(b.error().code == Errc::timeout);
        auto c = h(s.get(id)); // the third call goes through
        REQUIRE(c);
        CHECK(c->found);

        s.fail_next(1, Errc::server_error);
        auto d = h(s.head(id));
        REQUIRE_FALSE(d);
        CHECK(d.error().http_status == 503);
    }
    SECTION("a lost answer: applied, then failed") {
        s.fail_next(1, Errc::outcome_unknown, true);
        auto put = h(s.put(id, object("applied"), {}));
        REQUIRE_FALSE(put);
        CHECK(put.error().code == Errc::outcome_unknown);
        auto got = h(s.get(id));
        REQUIRE(got);
        CHECK(got->object.value == "applied");

        s.fail_next(1, Errc::connection_reset, true);
        auto del = h(s.remove(id, RemoveOptions::matching(*got)));
        REQUIRE_FALSE(del);
        // Retrying the delete is safe: the key is gone, so false.
        auto retry = h(s.remove(id, RemoveOptions::matching(*got)));
        REQUIRE(retry);
        CHECK_FALSE(*retry);
    }
    SECTION("a failed write changes nothing") {
        s.fail_next(1, Errc::connection_refused);
        REQUIRE_FALSE(h(s.put(id, object("lost"), {})));
        auto got = h(s.get(id));
        REQUIRE(got);
        CHECK(got->object.value == "v");
    }
    SECTION("unreachable") {
        s.set_unreachable(true);
        auto get = h(s.get(id));
        REQUIRE_FALSE(get);
        CHECK(get.error().code == Errc::connection_refused);
        auto absent = h(s.get(proto::ObjectId{"", "f", "absent"}));
        REQUIRE_FALSE(absent); // not "found = false"
        auto head = h(s.head(id));
        REQUIRE_FALSE(head);
        auto list = h(s.list_keys(bucket));
        REQUIRE_FALSE(list); // not an empty list
        CHECK(list.error().to_errno() == ECONNREFUSED);
        REQUIRE_FALSE(h(s.put(id, object("no"), {})));
        REQUIRE_FALSE(h(s.remove(id, {})));
        s.set_unreachable(false);
        auto back = h(s.get(id));
        REQUIRE(back);
        CHECK(back->object.value == "v");
    }
}

TEST_CASE("memory store: call log", "[store][memory]") {
    MemoryHarness h;
    MemoryObjectStore& s = h.memory;
    const proto::ObjectId id{"", "log", "k"};
    REQUIRE(h(s.put(id, object("v"), {})));
    REQUIRE(h(s.get(id)));
    REQUIRE(h(s.head(id)));
    s.set_unreachable(true);
    REQUIRE_FALSE(h(s.list_keys(proto::BucketId{"", "log"}))); // failed calls are logged too
    s.set_unreachable(false);
    REQUIRE(h(s.remove(id, {})));
    using Op = MemoryObjectStore::Op;
    std::vector<Op> ops;
    for (const auto& c : s.calls())
        ops.push_back(c.op);
    CHECK(ops == std::vector<Op>{Op::put, Op::get, Op::head, Op::list_keys, Op::remove});
    CHECK(s.calls().front().id == id);
    CHECK(s.calls()[3].id == proto::ObjectId{"", "log", ""});
    s.clear_calls();
    CHECK(s.calls().empty());
}
