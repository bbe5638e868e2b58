// choose_sibling() and the name/object translation of lib/store (object_codec.hpp): pure
// functions, no server.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>

#include "lib/store/object_codec.hpp"
#include "lib/store/sibling_choice.hpp"

using namespace rfs::store;
namespace proto = rfs::proto;

namespace {

proto::RiakObject version(std::string value, std::string stamp, std::string etag) {
    proto::RiakObject o;
    o.value = std::move(value);
    o.content_type = "text/plain";
    o.etag = std::move(etag);
    if (!stamp.empty()) o.set_meta("riakfs-version", std::move(stamp));
    return o;
}

proto::RiakObject tombstone(std::string etag) {
    proto::RiakObject o;
    o.deleted = true;
    o.etag = std::move(etag);
    return o;
}

// The winner's value for every order of `siblings`: it must not depend on the order.
std::string winner_in_every_order(std::vector<proto::RiakObject> siblings) {
    std::vector<std::size_t> order(siblings.size());
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::string first;
    bool have = false;
    do {
        std::vector<proto::RiakObject> shuffled;
        for (auto i : order)
            shuffled.push_back(siblings[i]);
        const auto& w = shuffled[choose_sibling(shuffled)];
        const std::string name = w.deleted ? "<tombstone " + w.etag + ">" : w.value;
        if (!have) {
            first = name;
            have = true;
        }
        REQUIRE(name == first);
    } while (std::next_permutation(order.begin(), order.end()));
    return first;
}

} // namespace

TEST_CASE("the greatest riakfs-version wins, whatever the order", "[store][siblings]") {
    CHECK(winner_in_every_order({version("old", "0001", "zzz"), version("new", "0002", "aaa"),
                                 version("mid", "0001.5", "mmm")}) == "new");
    // Plain string comparison: fixed-width stamps order by age.
    CHECK(winner_in_every_order({version("a", "20240101T000000.000000001", "x"),
                                 version("b", "20240101T000000.000000010", "y")}) == "b");
}

TEST_CASE("a version without the stamp loses to one with it", "[store][siblings]") {
    CHECK(winner_in_every_order({version("foreign", "", "zzzz"), version("ours", "0", "a")}) ==
          "ours");
    // Meta names are matched case-insensitively (Riak re-cases short header names).
    proto::RiakObject recased = version("recased", "", "b");
    recased.meta.emplace_back("Riakfs-Version", "0009");
    CHECK(winner_in_every_order({version("lower", "0008", "c"), recased}) == "recased");
}

TEST_CASE("tombstones lose to live values", "[store][siblings]") {
    CHECK(winner_in_every_order({tombstone("zzz"), version("live", "", "a")}) == "live");
    CHECK(winner_in_every_order({tombstone("zzz"), version("live", "0001", "a"), tombstone("y")}) ==
          "live");
    // Only tombstones: one of them, deterministically.
    CHECK(winner_in_every_order({tombstone("a"), tombstone("b")}) == "<tombstone b>");
}

TEST_CASE("ties are broken by ETag, then value bytes", "[store][siblings]") {
    CHECK(winner_in_every_order({version("x", "0005", "tagA"), version("y", "0005", "tagB")}) ==
          "y");
    CHECK(winner_in_every_order({version("bbb", "0005", "same"), version("aaa", "0005", "same")}) ==
          "bbb");
    CHECK(sibling_wins(version("v", "2", "a"), version("v", "1", "z")));
    CHECK_FALSE(sibling_wins(version("v", "1", "z"), version("v", "2", "a")));
    CHECK_FALSE(sibling_wins(version("v", "1", "a"), version("v", "1", "a"))); // not strict > self
}

TEST_CASE("raw names are escaped for Riak and listed keys decoded back", "[store][codec]") {
    const std::string hostile = "dir/a b+c%d?e#f\r\n\xff\xfe";
    auto id = riak_object_id(proto::ObjectId{"", "bucket\xff", hostile});
    REQUIRE(id);
    CHECK(id->type.empty());
    CHECK(id->bucket == "bucket%FF");
    CHECK(id->key == proto::escape_name(hostile));
    CHECK(proto::is_valid_utf8(id->key));

    auto decoded = decode_keys({id->key, "plain", "not%zzescaped", "%41"});
    CHECK(decoded == std::vector<std::string>{hostile, "plain"}); // foreign names left out

    auto empty = riak_object_id(proto::ObjectId{"", "b", ""});
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code == Errc::invalid_argument);
    auto long_key = riak_object_id(proto::ObjectId{"", "b", std::string(70000, 'k')});
    REQUIRE_FALSE(long_key);
    CHECK(long_key.error().to_errno() == ENAMETOOLONG);
    auto bucket = riak_bucket_id(proto::BucketId{"t", "a/b"});
    REQUIRE(bucket);
    CHECK(bucket->bucket == "a/b");
    CHECK_FALSE(riak_bucket_id(proto::BucketId{"", ""}));
}

TEST_CASE("meta names are lower-cased both ways and must be distinct tokens", "[store][codec]") {
    Object o;
    o.value = "v";
    o.meta = {{"Mode", "0644"}, {"riakfs-version", "1"}};
    auto r = to_riak_object(o, "clock");
    REQUIRE(r);
    CHECK(r->vclock == "clock");
    CHECK(r->meta == proto::HeaderList{{"mode", "0644"}, {"riakfs-version", "1"}});

    o.meta = {{"Mode", "1"}, {"mode", "2"}};
    auto twice = to_riak_object(o, "");
    REQUIRE_FALSE(twice);
    CHECK(twice.error().to_errno() == EINVAL);
    o.meta = {{"bad name", "1"}};
    CHECK_FALSE(to_riak_object(o, ""));

    proto::RiakObject read;
    read.value = "body";
    read.content_type = "text/plain";
    read.meta = {{"Mtime", "5"}};
    Object back = from_riak_object(read, false);
    CHECK(back.value.empty());
    CHECK(back.meta == std::vector<std::pair<std::string, std::string>>{{"mtime", "5"}});
    REQUIRE(back.find_meta("MTIME"));
    CHECK(from_riak_object(read, true).value == "body");
}
