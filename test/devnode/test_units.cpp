// Unit tests of riak-devnode's building blocks (no server): encodings, causality, index term
// order, the set data type, weighted header lists and fault configuration parsing. URL decoding,
// HTTP dates and UTF-8 checks are proto's, tested in test/proto.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "lib/devnode/crdt.hpp"
#include "lib/devnode/encoding.hpp"
#include "lib/devnode/faults.hpp"
#include "lib/devnode/http.hpp"
#include "lib/devnode/object.hpp"
#include "lib/devnode/service_internal.hpp"
#include "lib/devnode/store.hpp"

using namespace rfs::devnode;

TEST_CASE("base64 and base62", "[devnode][unit]") {
    for (const std::string& s :
         std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
        CHECK(base64_decode(base64_encode(s)) == s);
    }
    CHECK(base64_encode("hello") == "aGVsbG8=");
    CHECK_FALSE(base64_decode("a"));
    CHECK_FALSE(base64_decode("!!!!"));
    CHECK(base62(0) == "0");
    CHECK(base62(61) == "z");
    CHECK(base62(62) == "10");
    CHECK(random_base62(128) != random_base62(128));
}

TEST_CASE("request targets are split and decoded by proto's parser", "[devnode][unit]") {
    // The rules themselves are tested in test/proto (parse_target).
    Request req;
    req.target = "/buckets//b%20x/keys/k/?keys=true&a+b=c%3D;flag#frag";
    parse_target(req);
    CHECK(req.seg() == std::vector<std::string>{"buckets", "b x", "keys", "k"});
    CHECK(req.param("keys") == "true");
    CHECK(req.param("a b") == "c=");
    CHECK(req.param("flag") == "");
}

TEST_CASE("vclock causality", "[devnode][unit]") {
    Content a;
    a.value = "a";
    Object o1 = apply_write(std::nullopt, {}, a, true);
    REQUIRE(o1.siblings.size() == 1);
    CHECK(decode_vclock(encode_vclock(o1.clock)) == o1.clock);
    CHECK_FALSE(decode_vclock("garbage"));

    // A write carrying the current clock supersedes.
    Content b;
    b.value = "b";
    Object o2 = apply_write(o1, o1.clock, b, true);
    REQUIRE(o2.siblings.size() == 1);
    CHECK(o2.siblings[0].value == "b");
    // A blind write creates a sibling; a stale clock keeps what it has not seen.
    Content c;
    c.value = "c";
    Object o3 = apply_write(o2, {}, c, true);
    CHECK(o3.siblings.size() == 2);
    Object o4 = apply_write(o3, o1.clock, c, true);
    CHECK(o4.siblings.size() == 3);
    // The merged clock resolves everything.
    Object o5 = apply_write(o4, o4.clock, a, true);
    CHECK(o5.siblings.size() == 1);
    // allow_mult=false: always one value.
    Object o6 = apply_write(o4, {}, a, false);
    CHECK(o6.siblings.size() == 1);
    // A new incarnation is concurrent with clocks of the old one.
    Object fresh = apply_write(std::nullopt, {}, a, true);
    CHECK(fresh.actor != o1.actor);
    Object o7 = apply_write(fresh, o5.clock, b, true);
    CHECK(o7.siblings.size() == 2);

    auto round = decode_object(encode_object(o4));
    REQUIRE(round);
    CHECK(round->siblings.size() == 3);
    CHECK(round->clock == o4.clock);
    CHECK_FALSE(decode_object("junk"));
}

TEST_CASE("index terms sort like Riak compares them", "[devnode][unit]") {
    CHECK(encode_index_term("-5", true) < encode_index_term("-1", true));
    CHECK(encode_index_term("-1", true) < encode_index_term("0", true));
    CHECK(encode_index_term("9", true) < encode_index_term("10", true));
    CHECK(encode_index_term("ab", false) < encode_index_term("abc", false));
    CHECK(encode_index_term(std::string("a\0", 2), false) < encode_index_term("a\x01", false));
    CHECK(encode_index_term("a", false) < encode_index_term(std::string("a\0", 2), false));
}

TEST_CASE("set data type operations on CrdtValue", "[devnode][unit]") {
    using json = nlohmann::json;
    CrdtValue v = CrdtValue::fresh();
    std::string err;
    REQUIRE(v.apply_set_op(json{{"add_all", {"b", "a"}}}, err) == CrdtStatus::kOk);
    CHECK(v.set_members() == std::vector<std::string>{"a", "b"});
    std::string ctx = v.context();
    REQUIRE(v.apply_set_op(json{{"add", "a"}}, err) == CrdtStatus::kOk); // re-add after fetch
    REQUIRE(v.apply_set_op(json{{"remove_all", {"a", "b"}}, {"context", ctx}}, err) ==
            CrdtStatus::kOk);
    CHECK(v.set_members() == std::vector<std::string>{"a"}); // the concurrent add survives
    CHECK(v.apply_set_op(json{{"remove", "zz"}}, err) == CrdtStatus::kPrecondition);
    CHECK(v.apply_set_op(json{{"add", 3}}, err) == CrdtStatus::kBadRequest);
    CHECK(v.apply_set_op(json::array(), err) == CrdtStatus::kBadRequest);
    auto round = CrdtValue::decode(v.encode());
    REQUIRE(round);
    CHECK(round->set_members() == v.set_members());
}

TEST_CASE("counters refuse to leave the 64-bit range instead of wrapping", "[devnode][unit]") {
    using json = nlohmann::json;
    CrdtValue v = CrdtValue::fresh();
    std::string err;
    REQUIRE(v.apply_counter_op(json(INT64_MAX), err) == CrdtStatus::kOk);
    CHECK(v.apply_counter_op(json("increment"), err) == CrdtStatus::kBadRequest);
    CHECK(v.counter == INT64_MAX);
    CHECK(v.apply_counter_op(json::parse("18446744073709551615"), err) == CrdtStatus::kBadRequest);
    REQUIRE(v.apply_counter_op(json{{"decrement", INT64_MAX}}, err) == CrdtStatus::kOk);
    CHECK(v.counter == 0);
    CHECK(v.apply_counter_op(json{{"decrement", INT64_MIN}}, err) == CrdtStatus::kBadRequest);
    REQUIRE(v.apply_counter_op(json(INT64_MIN), err) == CrdtStatus::kOk);
    CHECK(v.apply_counter_op(json("decrement"), err) == CrdtStatus::kBadRequest);
    CHECK(v.counter == INT64_MIN);
}

TEST_CASE("fault configuration", "[devnode][unit]") {
    using json = nlohmann::json;
    std::string err;
    auto fc = FaultConfig::from_json(
        json::parse(R"({"latency_ms":5,"route_latency_ms":{"index":9},"routes":["object","index"],
                        "methods":["GET"]})"),
        err);
    REQUIRE(fc);
    CHECK(fc->latency_for("object") == 5);
    CHECK(fc->latency_for("index") == 9);
    CHECK(fc->applies("object", "GET"));
    CHECK_FALSE(fc->applies("object", "PUT"));
    CHECK_FALSE(fc->applies("ping", "GET"));
    CHECK_FALSE(FaultConfig::from_json(json::parse(R"({"reset_rate":-1})"), err));
    CHECK_FALSE(FaultConfig::from_json(json::parse(R"({"error_status":404})"), err));
    CHECK(route_class({"buckets", "b", "keys", "k"}) == "object");
    CHECK(route_class({"types", "t", "buckets", "b", "keys"}) == "keys");
    CHECK(route_class({"types", "t", "props"}) == "props");
    CHECK(route_class({"buckets", "b", "index", "f_bin", "v"}) == "index");
    CHECK(route_class({"ping"}) == "ping");
    CHECK(route_class({"riak", "b", "k"}) == "object");
    // Paths no route serves.
    CHECK(route_class({"riak", "b"}) == "other");
    CHECK(route_class({"buckets", "b", "keys", "k", "_,_,_"}) == "other");
    CHECK(route_class({"buckets", "b", "counters", "c"}) == "other");
}

TEST_CASE("weighted header lists: values and q parameters", "[devnode][unit]") {
    using service_support::weighted_list;
    auto items = weighted_list(" text/plain;level=1;Q=0.5 ,, application/json, gzip;q=0 , *;x=q=1");
    REQUIRE(items.size() == 4);
    CHECK(items[0].value == "text/plain");
    CHECK(items[0].q == 0.5);
    CHECK(items[1].value == "application/json");
    CHECK(items[1].q == 1.0);
    CHECK(items[2].value == "gzip");
    CHECK(items[2].q == 0.0);
    // Only a parameter named q is the weight, not a "q=" inside another parameter.
    CHECK(items[3].value == "*");
    CHECK(items[3].q == 1.0);
    CHECK(weighted_list("").empty());
    CHECK(weighted_list(" , ").empty());
}
