// The behaviour every ObjectStore must have, as test bodies run against both implementations:
// test_memory_store.cpp (MemoryObjectStore, keeping tombstones like Riak's default delete_mode)
// and test_riak_store.cpp (RiakObjectStore against a real riak-devnode). Passing both is what
// makes the fake a faithful stand-in.
// Single-threaded test code.
#pragma once

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "test/store/store_test_support.hpp"

namespace rfs::store::test {

// What a contract test needs: the store, its loop, and a bucket type with allow_mult=true.
struct Harness {
    virtual ~Harness() = default;
    virtual ObjectStore& store() = 0;
    virtual asio::io_context& context() = 0;
    std::string mult_type = "mult";

    template <typename T> T operator()(asio::awaitable<T> task) {
        return run_task(context(), std::move(task));
    }
};

// Runs two calls at the same time on the harness's loop; both results.
template <typename A, typename B>
std::pair<A, B> run_both(Harness& h, asio::awaitable<A> a, asio::awaitable<B> b) {
    std::optional<A> ra;
    std::optional<B> rb;
    asio::co_spawn(h.context(), std::move(a),
                   [&](std::exception_ptr, A v) { ra.emplace(std::move(v)); });
    asio::co_spawn(h.context(), std::move(b),
                   [&](std::exception_ptr, B v) { rb.emplace(std::move(v)); });
    h(([&]() -> asio::awaitable<int> {
        asio::steady_timer t(co_await asio::this_coro::executor);
        while (!ra || !rb) {
            t.expires_after(std::chrono::milliseconds(1));
            co_await t.async_wait(asio::use_awaitable);
        }
        co_return 0;
    })());
    return {std::move(*ra), std::move(*rb)};
}

inline void contract_round_trip(Harness& h) {
    ObjectStore& s = h.store();
    const proto::ObjectId id{"", "rt", "file one"};
    auto put = h(s.put(id, object("hello", "0001", {{"Mode", "0644"}, {"uid", "1000"}}), {}));
    REQUIRE(put);

    auto got = h(s.get(id));
    REQUIRE(got);
    CHECK(got->found);
    CHECK(got->siblings == 1);
    CHECK(got->object.value == "hello");
    CHECK(got->object.content_type == "text/plain");
    CHECK_FALSE(got->vclock.empty());
    CHECK_FALSE(got->etag.empty());
    REQUIRE(got->object.find_meta("mode"));
    CHECK(*got->object.find_meta("mode") == "0644");
    CHECK(version_of(*got) == "0001");
    for (const auto& [name, value] : got->object.meta)
        CHECK((name == "mode" || name == "uid" || name == "riakfs-version")); // lower-case

    auto head = h(s.head(id));
    REQUIRE(head);
    CHECK(head->found);
    CHECK(head->object.value.empty());
    CHECK(head->object.meta.size() == got->object.meta.size());
    CHECK(head->etag == got->etag);
    CHECK(head->vclock == got->vclock);

    // A write with the vclock read replaces the value; no siblings in the default type.
    auto again = h(s.put(id, object("second", "0002"), PutOptions{got->vclock}));
    REQUIRE(again);
    auto second = h(s.get(id));
    REQUIRE(second);
    CHECK(second->object.value == "second");
    CHECK(second->siblings == 1);
    CHECK(second->etag != got->etag);

    // Empty content type: stored as octet-stream, any bytes kept.
    const std::string binary("\0\xff\r\n", 4);
    Object raw;
    raw.value = binary;
    REQUIRE(h(s.put(proto::ObjectId{"", "rt", "bin"}, raw, {})));
    auto bin = h(s.get(proto::ObjectId{"", "rt", "bin"}));
    REQUIRE(bin);
    CHECK(bin->object.value == binary);
    CHECK(bin->object.content_type == "application/octet-stream");

    // Not durable: still stored.
    PutOptions fast;
    fast.durable = false;
    REQUIRE(h(s.put(proto::ObjectId{"", "rt", "fast"}, object("f"), fast)));
    auto f = h(s.get(proto::ObjectId{"", "rt", "fast"}));
    REQUIRE(f);
    CHECK(f->object.value == "f");
}

inline void contract_not_found(Harness& h) {
    ObjectStore& s = h.store();
    const proto::ObjectId id{"", "nf", "never written"};
    auto got = h(s.get(id));
    REQUIRE(got);
    CHECK_FALSE(got->found);
    CHECK(got->vclock.empty());
    auto head = h(s.head(id));
    REQUIRE(head);
    CHECK_FALSE(head->found);

    // A deleted key: not found, with the tombstone's vclock to re-create it from.
    const proto::ObjectId gone{"", "nf", "deleted"};
    REQUIRE(h(s.put(gone, object("x"), {})));
    auto removed = h(s.remove(gone, {}));
    REQUIRE(removed);
    CHECK(*removed);
    auto after = h(s.get(gone));
    REQUIRE(after);
    CHECK_FALSE(after->found);
    CHECK(after->object.value.empty());
    CHECK_FALSE(after->vclock.empty());
    auto head_after = h(s.head(gone));
    REQUIRE(head_after);
    CHECK_FALSE(head_after->found);
}

inline void contract_siblings(Harness& h) {
    ObjectStore& s = h.store();
    const proto::ObjectId id{h.mult_type, "sib", "k"};
    REQUIRE(h(s.put(id, object("base", "0001"), {})));
    auto base = h(s.get(id));
    REQUIRE(base);
    REQUIRE(base->siblings == 1);

    // Two writers that both read `base` write at the same time: neither covers the other.
    auto [a, b] = run_both(h, s.put(id, object("A", "0003"), PutOptions{base->vclock}),
                           s.put(id, object("B", "0002"), PutOptions{base->vclock}));
    REQUIRE(a);
    REQUIRE(b);
    auto got = h(s.get(id));
    REQUIRE(got);
    CHECK(got->found);
    CHECK(got->siblings == 2);
    CHECK(got->object.value == "A"); // the greater riakfs-version
    CHECK(version_of(*got) == "0003");
    auto head = h(s.head(id));
    INFO((head ? std::string() : head.error().describe()));
    REQUIRE(head);
    CHECK(head->siblings == 2);
    CHECK(head->object.value.empty());
    CHECK(version_of(*head) == "0003");
    CHECK(head->vclock == got->vclock);
    CHECK(head->etag == got->etag);

    // The order of writing does not matter: the older stamp loses even when written last.
    const proto::ObjectId id2{h.mult_type, "sib", "k2"};
    REQUIRE(h(s.put(id2, object("new", "0009"), {})));
    REQUIRE(h(s.put(id2, object("old", "0008"), {}))); // blind: a sibling
    auto got2 = h(s.get(id2));
    REQUIRE(got2);
    CHECK(got2->siblings == 2);
    CHECK(got2->object.value == "new");

    // The vclock read covers both siblings: the next write collapses them.
    REQUIRE(h(s.put(id, object("C", "0004"), PutOptions{got->vclock})));
    auto collapsed = h(s.get(id));
    REQUIRE(collapsed);
    CHECK(collapsed->siblings == 1);
    CHECK(collapsed->object.value == "C");

    // A writer with a stale vclock (base's) adds a sibling next to C instead of replacing it.
    REQUIRE(h(s.put(id, object("stale", "0003.5"), PutOptions{base->vclock})));
    auto stale = h(s.get(id));
    REQUIRE(stale);
    CHECK(stale->siblings == 2);
    CHECK(stale->object.value == "C"); // 0004 > 0003.5

    // A delete racing a write: the live value wins over the tombstone.
    const proto::ObjectId race{h.mult_type, "sib", "race"};
    REQUIRE(h(s.put(race, object("v1", "0001"), {})));
    auto read = h(s.get(race));
    REQUIRE(read);
    RemoveOptions blind_causal; // vclock only: a tombstone descending from v1
    blind_causal.vclock = read->vclock;
    auto [del, wrote] = run_both(h, s.remove(race, blind_causal),
                                 s.put(race, object("v2", "0002"), PutOptions{read->vclock}));
    REQUIRE(del);
    REQUIRE(wrote);
    auto after_race = h(s.get(race));
    REQUIRE(after_race);
    CHECK(after_race->found);
    CHECK(after_race->siblings == 2);
    CHECK(after_race->object.value == "v2");

    // Removing what was read removes every sibling.
    auto removed = h(s.remove(race, RemoveOptions::matching(*after_race)));
    REQUIRE(removed);
    CHECK(*removed);
    auto none = h(s.get(race));
    REQUIRE(none);
    CHECK_FALSE(none->found);
}

inline void contract_default_type_has_no_siblings(Harness& h) {
    ObjectStore& s = h.store();
    const proto::ObjectId id{"", "lww", "k"};
    REQUIRE(h(s.put(id, object("one", "0001"), {})));
    REQUIRE(h(s.put(id, object("two", "0002"), {}))); // blind
    auto got = h(s.get(id));
    REQUIRE(got);
    CHECK(got->siblings == 1);
    CHECK(got->object.value == "two");
}

inline void check_stale(const Result<bool>& r) {
    REQUIRE_FALSE(r);
    CHECK(r.error().to_errno() == ESTALE);
    CHECK(r.error().http_status == 412);
}

inline void contract_remove(Harness& h) {
    ObjectStore& s = h.store();
    SECTION("a retried delete answers false") {
        const proto::ObjectId id{"", "rm", "a"};
        REQUIRE(h(s.put(id, object("v1"), {})));
        auto read = h(s.get(id));
        REQUIRE(read);
        auto first = h(s.remove(id, RemoveOptions::matching(*read)));
        REQUIRE(first);
        CHECK(*first);
        auto retry = h(s.remove(id, RemoveOptions::matching(*read)));
        REQUIRE(retry);
        CHECK_FALSE(*retry);
        auto got = h(s.get(id));
        REQUIRE(got);
        CHECK_FALSE(got->found);
    }
    SECTION("a retried delete does not remove a re-created key") {
        const proto::ObjectId id{"", "rm", "b"};
        REQUIRE(h(s.put(id, object("v1"), {})));
        auto read = h(s.get(id));
        REQUIRE(read);
        REQUIRE(h(s.remove(id, RemoveOptions::matching(*read))));
        auto tomb = h(s.get(id));
        REQUIRE(tomb);
        REQUIRE_FALSE(tomb->found);
        REQUIRE(h(s.put(id, object("v2"), PutOptions{tomb->vclock}))); // re-create
        check_stale(h(s.remove(id, RemoveOptions::matching(*read))));
        auto got = h(s.get(id));
        REQUIRE(got);
        CHECK(got->found);
        CHECK(got->object.value == "v2");
    }
    SECTION("a delete of a changed key is refused") {
        const proto::ObjectId id{"", "rm", "c"};
        REQUIRE(h(s.put(id, object("v1"), {})));
        auto read = h(s.get(id));
        REQUIRE(read);
        REQUIRE(h(s.put(id, object("v2"), PutOptions{read->vclock})));
        check_stale(h(s.remove(id, RemoveOptions::matching(*read))));
        auto now = h(s.get(id));
        REQUIRE(now);
        REQUIRE(now->object.value == "v2");
        auto removed = h(s.remove(id, RemoveOptions::matching(*now)));
        REQUIRE(removed);
        CHECK(*removed);
    }
    SECTION("unconditional deletes") {
        const proto::ObjectId id{"", "rm", "d"};
        auto absent = h(s.remove(id, {}));
        REQUIRE(absent);
        CHECK_FALSE(*absent);
        REQUIRE(h(s.put(id, object("v"), {})));
        auto removed = h(s.remove(id, {}));
        REQUIRE(removed);
        CHECK(*removed);
        auto again = h(s.remove(id, {}));
        REQUIRE(again);
        CHECK_FALSE(*again);
        // With an ETag, an absent key is "already absent" too.
        RemoveOptions some_etag;
        some_etag.etag = "no-such-tag";
        auto never = h(s.remove(proto::ObjectId{"", "rm", "never"}, some_etag));
        REQUIRE(never);
        CHECK_FALSE(*never);
    }
}

inline void contract_create_only(Harness& h) {
    ObjectStore& s = h.store();
    const proto::ObjectId id{"", "co", "k"};
    PutOptions create;
    create.create_only = true;
    REQUIRE(h(s.put(id, object("first"), create)));
    auto second = h(s.put(id, object("second"), create));
    REQUIRE_FALSE(second);
    CHECK(second.error().to_errno() == EEXIST);
    CHECK(second.error().http_status == 412);
    auto got = h(s.get(id));
    REQUIRE(got);
    CHECK(got->object.value == "first");
    // A deleted key can be created again.
    REQUIRE(h(s.remove(id, RemoveOptions::matching(*got))));
    REQUIRE(h(s.put(id, object("third"), create)));
}

// put_and_read: the write's answer is what was stored (with meta and a causal context), a
// create-only write of an existing key fails as put() does, and a write that leaves siblings
// answers with the chosen one, as get() would.
inline void contract_put_and_read(Harness& h) {
    ObjectStore& s = h.store();
    const proto::ObjectId id{"", "pr", "k"};
    PutOptions create;
    create.create_only = true;
    auto first = h(s.put_and_read(id, object("first", "0001"), create));
    REQUIRE(first);
    CHECK(first->found);
    CHECK(first->object.value == "first");
    CHECK(version_of(*first) == "0001");
    auto again = h(s.put_and_read(id, object("second", "0002"), create));
    REQUIRE_FALSE(again);
    CHECK(again.error().to_errno() == EEXIST);
    auto over = h(s.put_and_read(id, object("second", "0002"), PutOptions{first->vclock}));
    REQUIRE(over);
    CHECK(over->object.value == "second");
    CHECK(over->siblings == 1);
    auto got = h(s.get(id));
    REQUIRE(got);
    CHECK(got->object.value == "second");

    const proto::ObjectId sib{h.mult_type, "pr", "k"};
    REQUIRE(h(s.put(sib, object("newer", "0009"), {})));
    auto blind = h(s.put_and_read(sib, object("older", "0008"), {})); // a sibling
    REQUIRE(blind);
    CHECK(blind->siblings == 2);
    CHECK(blind->object.value == "newer");
    CHECK_FALSE(blind->vclock.empty());
}

// Names with every byte that has a meaning in URLs, HTTP or JSON, and non-UTF-8.
inline std::vector<std::string> hostile_keys() {
    return {"a b",      "50%",      "50%25",       "x+y",     "q?x=1",    "h#frag",
            "cr\rlf\n", "\xff\xfe", "caf\xc3\xa9", "caf\xe9", "dir/file", "..",
            ".",        "/lead",    "trail/",      "%2F",     "\t\x01"};
}

inline void contract_hostile_names(Harness& h) {
    ObjectStore& s = h.store();
    const proto::BucketId bucket{"", "hostile /%+?#\xff\r\n"};
    auto keys = hostile_keys();
    for (const auto& k : keys) {
        INFO("key " << k);
        REQUIRE(h(s.put(proto::ObjectId{bucket.type, bucket.bucket, k}, object(k), {})));
    }
    for (const auto& k : keys) {
        INFO("key " << k);
        auto got = h(s.get(proto::ObjectId{bucket.type, bucket.bucket, k}));
        REQUIRE(got);
        CHECK(got->found);
        CHECK(got->object.value == k);
    }
    auto listed = h(s.list_keys(bucket));
    REQUIRE(listed);
    auto sorted = *listed;
    std::sort(sorted.begin(), sorted.end());
    std::sort(keys.begin(), keys.end());
    CHECK(sorted == keys);

    auto empty = h(s.list_keys(proto::BucketId{"", "no such bucket"}));
    REQUIRE(empty);
    CHECK(empty->empty());
}

inline void contract_invalid_input(Harness& h) {
    ObjectStore& s = h.store();
    auto empty_key = h(s.put(proto::ObjectId{"", "inv", ""}, object("x"), {}));
    REQUIRE_FALSE(empty_key);
    CHECK(empty_key.error().code == Errc::invalid_argument);
    auto empty_get = h(s.get(proto::ObjectId{"", "inv", ""}));
    REQUIRE_FALSE(empty_get);
    CHECK(empty_get.error().code == Errc::invalid_argument);

    auto bad_value =
        h(s.put(proto::ObjectId{"", "inv", "k"}, object("x", "", {{"m", "a\nb"}}), {}));
    REQUIRE_FALSE(bad_value);
    CHECK(bad_value.error().to_errno() == EINVAL);
    auto bad_name = h(s.put(proto::ObjectId{"", "inv", "k"}, object("x", "", {{"a b", "1"}}), {}));
    REQUIRE_FALSE(bad_name);
    CHECK(bad_name.error().to_errno() == EINVAL);
    Object bad_type = object("x");
    bad_type.content_type = "nonsense";
    auto type = h(s.put(proto::ObjectId{"", "inv", "k"}, bad_type, {}));
    REQUIRE_FALSE(type);
    CHECK(type.error().to_errno() == EINVAL);
    // Nothing was stored by the refused calls.
    auto got = h(s.get(proto::ObjectId{"", "inv", "k"}));
    REQUIRE(got);
    CHECK_FALSE(got->found);
}

} // namespace rfs::store::test
