// Every endpoint of the client against the real riak-devnode: objects (plain and typed paths,
// quorum parameters, returnbody, vclocks, conditional headers, user metadata, 2i headers),
// siblings and their resolution, key listings, 2i queries, bucket props, ping, stats, sets.
#include <catch2/catch.hpp>

#include <cerrno>
#include <thread>

#include "test/riak/riak_test_support.hpp"

using namespace rfs::riak;
using namespace rfs::riak::test;
namespace proto = rfs::proto;

namespace {

struct Fixture : ClientFixture {
    Fixture()
        : ClientFixture({"--bucket-type", "mult", "--bucket-type", R"(sets={"datatype":"set"})"}) {
        client.start();
    }
};

} // namespace

TEST_CASE("ping and stats", "[riak][endpoints]") {
    Fixture f;
    auto pong = f(f.client.ping());
    REQUIRE(pong);
    auto stats = f(f.client.stats());
    REQUIRE(stats);
    CHECK(stats->raw.is_object());
    CHECK(stats->number("node_gets").has_value());
}

TEST_CASE("object put, get, head, delete on plain and typed paths", "[riak][endpoints]") {
    Fixture f;
    for (const std::string type : {"", "mult"}) {
        INFO("type '" << type << "'");
        const proto::ObjectId id{type, "bucket one", proto::escape_name("dir/a file+%?#\xff")};
        proto::RiakObject obj = text("hello");
        obj.set_meta("mode", "0644");
        obj.add_index("parent_bin", "dir");
        obj.add_index("size_int", "5");
        proto::StoreOptions so;
        so.params.w = proto::Quorum::quorum();
        so.params.dw = proto::Quorum::one();
        so.params.pw = proto::Quorum::n(0);
        auto put = f(f.client.store(id, obj, so));
        REQUIRE(put);
        CHECK(put->outcome == proto::Outcome::no_content);

        proto::FetchOptions fo;
        fo.params.r = proto::Quorum::one();
        auto got = f(f.client.fetch(id, fo));
        REQUIRE(got);
        REQUIRE(got->outcome == proto::Outcome::ok);
        CHECK(got->object.value == "hello");
        CHECK(got->object.content_type == "text/plain");
        CHECK_FALSE(got->object.vclock.empty());
        CHECK_FALSE(got->object.etag.empty());
        CHECK_FALSE(got->object.last_modified.empty());
        REQUIRE(got->object.find_meta("mode"));
        CHECK(*got->object.find_meta("mode") == "0644");
        CHECK(got->object.index_values("parent_bin") == std::vector<std::string>{"dir"});
        CHECK(got->object.index_values("size_int") == std::vector<std::string>{"5"});

        auto head = f(f.client.head(id));
        REQUIRE(head);
        CHECK(head->outcome == proto::Outcome::ok);
        CHECK(head->object.value.empty());
        CHECK(head->object.etag == got->object.etag);

        // Conditional GET: 304 with the current ETag.
        proto::FetchOptions cond;
        cond.conditions.if_none_match = got->object.etag;
        auto nm = f(f.client.fetch(id, cond));
        REQUIRE(nm);
        CHECK(nm->outcome == proto::Outcome::not_modified);

        // Update with the vclock carried from the read, returnbody.
        proto::RiakObject next = got->object;
        next.value = "hello again";
        proto::StoreOptions rb;
        rb.params.returnbody = true;
        auto upd = f(f.client.store(id, next, rb));
        REQUIRE(upd);
        REQUIRE(upd->outcome == proto::Outcome::ok); // no sibling even on the allow_mult type
        CHECK(upd->object.value == "hello again");
        CHECK_FALSE(upd->object.vclock.empty());

        proto::DeleteOptions del;
        del.params.rw = proto::Quorum::quorum();
        auto gone = f(f.client.remove(id, del));
        REQUIRE(gone);
        CHECK(gone->outcome == proto::Outcome::no_content);
        auto missing = f(f.client.fetch(id));
        REQUIRE(missing);
        CHECK(missing->outcome == proto::Outcome::not_found);
        CHECK(missing->object.deleted); // tombstone with its vclock
        CHECK_FALSE(missing->object.vclock.empty());
        auto again = f(f.client.remove(id));
        REQUIRE(again);
        CHECK(again->outcome == proto::Outcome::not_found); // idempotent delete
    }
}

TEST_CASE("POST with a server-chosen key, and POST to a key", "[riak][endpoints]") {
    Fixture f;
    auto created = f(f.client.store(proto::ObjectId{"", "b", ""}, text("new")));
    REQUIRE(created);
    REQUIRE(created->outcome == proto::Outcome::created);
    CHECK_FALSE(created->key.empty());
    auto got = f(f.client.fetch(proto::ObjectId{"", "b", created->key}));
    REQUIRE(got);
    CHECK(got->object.value == "new");

    proto::StoreOptions post;
    post.use_post = true;
    REQUIRE(f(f.client.store(proto::ObjectId{"", "b", "k"}, text("posted"), post)));
    CHECK(f(f.client.fetch(proto::ObjectId{"", "b", "k"}))->object.value == "posted");
}

TEST_CASE("conditional writes and HTTP errors map to errnos", "[riak][endpoints]") {
    Fixture f;
    const proto::ObjectId id{"", "c", "k"};
    proto::StoreOptions create;
    create.conditions.if_none_match = "*";
    REQUIRE(f(f.client.store(id, text("v1"), create)));
    auto dup = f(f.client.store(id, text("v2"), create));
    REQUIRE_FALSE(dup);
    CHECK(dup.error().code == Errc::client_error);
    CHECK(dup.error().http_status == 412);
    CHECK(dup.error().to_errno() == EEXIST);

    auto cur = f(f.client.fetch(id));
    proto::StoreOptions cas;
    cas.conditions.if_match = cur->object.etag;
    REQUIRE(f(f.client.store(id, text("v3"), cas)));
    auto stale = f(f.client.store(id, text("v4"), cas)); // the ETag changed
    REQUIRE_FALSE(stale);
    CHECK(stale.error().to_errno() == EEXIST);

    proto::FetchOptions bad;
    bad.params.r = proto::Quorum::n(7); // above n_val
    auto r = f(f.client.fetch(id, bad));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::client_error);
    CHECK(r.error().http_status == 400);
    CHECK(r.error().to_errno() == EINVAL);

    auto unknown = f(f.client.store(proto::ObjectId{"nosuchtype", "b", "k"}, text("x")));
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().code == Errc::client_error);
    CHECK(unknown.error().http_status == 404);
    CHECK(unknown.error().to_errno() == ENOENT);

    // Builder refusals never reach the wire.
    proto::RiakObject badmeta = text("x");
    badmeta.add_index("name_txt", "x");
    auto refused = f(f.client.store(id, badmeta));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::invalid_argument);
}

TEST_CASE("siblings are fetched whole and resolved to the newest write",
          "[riak][endpoints][siblings]") {
    Fixture f;
    const proto::ObjectId id{"mult", "s", "k"};
    REQUIRE(f(f.client.store(id, text("older"))));
    // Last-Modified has one-second resolution: make the second write visibly newer.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    REQUIRE(f(f.client.store(id, text("newer")))); // blind write: a sibling
    REQUIRE(f(f.client.store(id, text("newer")))); // and another, same second

    auto sib = f(f.client.fetch_siblings(id));
    REQUIRE(sib);
    CHECK(sib->found);
    REQUIRE(sib->values.size() == 3);
    CHECK_FALSE(sib->vclock.empty());

    // The same versions sibling by sibling (?vtag=), for nodes not asked for multipart.
    auto one_by_one = f(f.client.fetch_siblings(id, false));
    REQUIRE(one_by_one);
    REQUIRE(one_by_one->values.size() == 3);
    CHECK(one_by_one->vclock == sib->vclock);
    auto values = [](const Siblings& s) {
        std::vector<std::string> v;
        for (const auto& o : s.values)
            v.push_back(o.value + "/" + o.etag);
        std::sort(v.begin(), v.end());
        return v;
    };
    CHECK(values(*one_by_one) == values(*sib));

    auto resolved = f(f.client.resolve(id));
    REQUIRE(resolved);
    CHECK(resolved->siblings == 3);
    CHECK(resolved->written);
    CHECK(resolved->object.value == "newer");
    CHECK(resolved->dropped.size() == 2);
    CHECK_FALSE(resolved->vclock.empty());

    auto after = f(f.client.fetch(id));
    REQUIRE(after);
    REQUIRE(after->outcome == proto::Outcome::ok); // the 300's vclock collapsed them
    CHECK(after->object.value == "newer");

    // Nothing to resolve: no write.
    auto calm = f(f.client.resolve(id));
    REQUIRE(calm);
    CHECK_FALSE(calm->written);
    CHECK(calm->siblings == 1);

    // Siblings listed as text vtags are fetched one by one.
    REQUIRE(f(f.client.store(id, text("third"))));
    proto::FetchOptions plain;
    plain.multipart_siblings = false;
    auto listed = f(f.client.fetch(id, plain));
    REQUIRE(listed);
    REQUIRE(listed->outcome == proto::Outcome::siblings);
    CHECK(listed->vtags.size() == 2);

    auto missing = f(f.client.resolve(proto::ObjectId{"mult", "s", "absent"}));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().to_errno() == ENOENT);
}

TEST_CASE("key listing, plain and streamed", "[riak][endpoints][listing]") {
    Fixture f;
    const proto::BucketId bucket{"", "list"};
    std::vector<std::string> expected;
    for (int i = 0; i < 25; ++i) {
        expected.push_back("key " + std::to_string(i));
        REQUIRE(f(f.client.store(proto::ObjectId{"", "list", expected.back()}, text("v"))));
    }
    std::sort(expected.begin(), expected.end());
    for (bool stream : {false, true}) {
        auto keys = f(f.client.list_keys(bucket, stream));
        REQUIRE(keys);
        std::sort(keys->begin(), keys->end());
        CHECK(*keys == expected);
    }
}

TEST_CASE("secondary index queries with pagination", "[riak][endpoints][2i]") {
    Fixture f;
    const proto::BucketId bucket{"", "idx"};
    for (int i = 0; i < 10; ++i) {
        proto::RiakObject o = text("v");
        o.add_index("parent_bin", i < 6 ? "a" : "b");
        o.add_index("n_int", std::to_string(i));
        REQUIRE(f(f.client.store(proto::ObjectId{"", "idx", "k" + std::to_string(i)}, o)));
    }
    auto exact = f(f.client.query_index(bucket, proto::IndexQuery::exact("parent_bin", "a")));
    REQUIRE(exact);
    CHECK(exact->keys.size() == 6);

    auto range = f(f.client.query_index(bucket, proto::IndexQuery::range("n_int", "3", "7")));
    REQUIRE(range);
    CHECK(range->keys.size() == 5);

    std::vector<std::string> all;
    auto q = proto::IndexQuery::exact("parent_bin", "a");
    q.max_results = 4;
    for (int page = 0; page < 5; ++page) {
        auto r = f(f.client.query_index(bucket, q));
        REQUIRE(r);
        all.insert(all.end(), r->keys.begin(), r->keys.end());
        if (r->continuation.empty()) break;
        q.continuation = r->continuation;
    }
    CHECK(all.size() == 6);

    auto streamed = proto::IndexQuery::range("n_int", "0", "9");
    streamed.stream = true;
    auto s = f(f.client.query_index(bucket, streamed));
    REQUIRE(s);
    CHECK(s->keys.size() == 10);
}

TEST_CASE("bucket props get and set", "[riak][endpoints][props]") {
    Fixture f;
    const proto::BucketId bucket{"", "pb"};
    auto before = f(f.client.get_bucket_props(bucket));
    REQUIRE(before);
    CHECK(before->allow_mult == false);
    CHECK(before->n_val == 3u);
    proto::BucketProps change;
    change.allow_mult = true;
    REQUIRE(f(f.client.set_bucket_props(bucket, change)));
    auto after = f(f.client.get_bucket_props(bucket));
    REQUIRE(after);
    CHECK(after->allow_mult == true);
    auto typed = f(f.client.get_bucket_props(proto::BucketId{"mult", "x"}));
    REQUIRE(typed);
    CHECK(typed->allow_mult == true);
}

TEST_CASE("set data type fetch and update", "[riak][endpoints][sets]") {
    Fixture f;
    const proto::ObjectId id{"sets", "s", "members"};
    auto none = f(f.client.fetch_set(id));
    REQUIRE(none);
    CHECK_FALSE(none->has_value());
    proto::SetUpdate add;
    add.add = {"b", "a", "c"};
    REQUIRE(f(f.client.update_set(id, add)));
    auto got = f(f.client.fetch_set(id));
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK((*got)->members == std::vector<std::string>{"a", "b", "c"});
    proto::SetUpdate remove;
    remove.remove = {"b"};
    remove.context = (*got)->context;
    proto::RequestParams rb;
    rb.returnbody = true;
    auto after = f(f.client.update_set(id, remove, rb));
    REQUIRE(after);
    REQUIRE(after->has_value());
    CHECK((*after)->members == std::vector<std::string>{"a", "c"});
}

TEST_CASE("raw execute returns any status", "[riak][endpoints]") {
    Fixture f;
    auto res = f(
        f.client.execute(proto::make_request(proto::http::verb::get, "", "/buckets/x/keys/none")));
    REQUIRE(res);
    CHECK(res->result_int() == 404);
}

TEST_CASE("large values round-trip byte-exact", "[riak][endpoints]") {
    Fixture f;
    std::string value(8 * 1024 * 1024 + 17, '\0');
    for (std::size_t i = 0; i < value.size(); ++i)
        value[i] = static_cast<char>((i * 2654435761u) >> 13);
    proto::RiakObject o;
    o.value = value;
    o.content_type = "application/octet-stream";
    REQUIRE(f(f.client.store(proto::ObjectId{"", "big", "8m"}, std::move(o))));
    auto got = f(f.client.fetch(proto::ObjectId{"", "big", "8m"}));
    REQUIRE(got);
    CHECK(got->object.value.size() == value.size());
    CHECK(got->object.value == value);
}
