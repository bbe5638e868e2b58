// Unit tests for proto/riak_paths: the name escape, percent-encoding and request targets.
#include <catch2/catch.hpp>

#include <cctype>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "proto/riak_paths.hpp"

using namespace rfs::proto;

namespace {

// Byte strings a file name can hold, biased towards the troublesome ones: URL delimiters,
// the escape character, controls, valid and broken UTF-8 fragments. Never NUL.
std::string random_name(std::mt19937_64& rng) {
    static const std::string kSpecial = " %+/?#&=;:@!$'()*,[]\\\"<>{}|^`\r\n\t~.-_";
    static const char* const kFragments[] = {"\xc3\xa9",
                                             "\xe2\x82\xac",
                                             "\xf0\x9f\x98\x80",
                                             "\xc3",
                                             "\xa9",
                                             "\xe2\x82",
                                             "\xed\xa0\x80",
                                             "\xc0\xaf",
                                             "\xf4\x90\x80\x80",
                                             "\xef\xbf\xbf",
                                             "\xf8\x88\x80\x80",
                                             "%25",
                                             "%C3%A9",
                                             "%2F",
                                             "..",
                                             "+",
                                             "\xe0\x80\xaf",
                                             "\xf0\x8f\xbf\xbf"};
    std::uniform_int_distribution<int> len_dist(0, 24);
    std::uniform_int_distribution<int> kind_dist(0, 9);
    std::uniform_int_distribution<int> byte_dist(1, 255);
    std::string out;
    const int parts = len_dist(rng);
    for (int i = 0; i < parts; ++i) {
        switch (kind_dist(rng)) {
        case 0:
        case 1:
        case 2:
            out.push_back(static_cast<char>(byte_dist(rng)));
            break;
        case 3:
        case 4:
            out.push_back(kSpecial[rng() % kSpecial.size()]);
            break;
        case 5:
        case 6:
            out += kFragments[rng() % std::size(kFragments)];
            break;
        default:
            out.push_back(static_cast<char>('a' + rng() % 26));
            break;
        }
    }
    return out;
}

// Independent UTF-8 check: nlohmann's lexer validates RFC 3629 strictly inside strings.
bool json_accepts_utf8(const std::string& s) {
    std::string literal = "\"";
    for (const char c : s) {
        const auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || c == '"' || c == '\\') {
            literal += fmt::format("\\u{:04x}", b);
        } else {
            literal.push_back(c);
        }
    }
    literal += "\"";
    return !nlohmann::json::parse(literal, nullptr, false).is_discarded();
}

bool only_url_chars(const std::string& target) {
    for (std::size_t i = 0; i < target.size(); ++i) {
        const char c = target[i];
        if (is_unreserved(c) || c == '/' || c == '?' || c == '=' || c == '&') continue;
        if (c == '%' && i + 2 < target.size() &&
            std::isxdigit(static_cast<unsigned char>(target[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(target[i + 2])))
            continue;
        return false;
    }
    return true;
}

} // namespace

TEST_CASE("name escape examples", "[proto][paths]") {
    CHECK(escape_name("plain.txt") == "plain.txt");
    CHECK(escape_name("50% off") == "50%25 off");
    CHECK(escape_name("a b+c/d?e#f") == "a b+c/d?e#f");
    CHECK(escape_name("caf\xc3\xa9") == "caf\xc3\xa9");
    CHECK(escape_name("caf\xe9") == "caf%E9");
    CHECK(escape_name("\xc3") == "%C3");
    CHECK(escape_name("\xed\xa0\x80") == "%ED%A0%80"); // encoded surrogate
    CHECK(escape_name("\xc0\xaf") == "%C0%AF");        // overlong '/'
    CHECK(escape_name("\xf4\x90\x80\x80") == "%F4%90%80%80");
    CHECK(escape_name("\xe2\x82") == "%E2%82");
    CHECK(escape_name("\xe2\x82\xac") == "\xe2\x82\xac");
    CHECK(escape_name("line\r\nbreak") == "line\r\nbreak");
    CHECK(escape_name("") == "");
}

TEST_CASE("unescape_name rejects non-canonical names", "[proto][paths]") {
    CHECK(unescape_name("50%25 off").value() == "50% off");
    CHECK(unescape_name("caf%E9").value() == "caf\xe9");
    for (const char* bad : {"%", "%4", "%GG", "%e9", "%41", "%C3%A9", "100%", "\xff", "%2"}) {
        INFO(bad);
        const auto r = unescape_name(bad);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == EINVAL);
    }
}

TEST_CASE("is_valid_utf8 agrees with an independent validator", "[proto][paths]") {
    std::mt19937_64 rng(20261125);
    for (int i = 0; i < 5000; ++i) {
        const std::string s = random_name(rng);
        INFO(percent_encode(s));
        REQUIRE(is_valid_utf8(s) == json_accepts_utf8(s));
    }
}

TEST_CASE("name escape round-trips random byte strings", "[proto][paths]") {
    std::mt19937_64 rng(0x5eed0001);
    for (int i = 0; i < 20000; ++i) {
        const std::string raw = random_name(rng);
        INFO("raw (url form): " << percent_encode(raw));
        const std::string escaped = escape_name(raw);
        REQUIRE(is_valid_utf8(escaped));
        REQUIRE(json_accepts_utf8(escaped));
        const auto back = unescape_name(escaped);
        REQUIRE(back.has_value());
        REQUIRE(*back == raw);
        const bool untouched = is_valid_utf8(raw) && raw.find('%') == std::string::npos;
        REQUIRE((escaped == raw) == untouched);
    }
}

TEST_CASE("percent-encoding round-trips and stays in the unreserved set", "[proto][paths]") {
    std::mt19937_64 rng(0x5eed0002);
    for (int i = 0; i < 20000; ++i) {
        std::string raw = random_name(rng);
        if (i % 7 == 0) raw.push_back('\0'); // layer 2 takes any bytes
        INFO("raw: " << percent_encode(raw));
        const std::string enc = percent_encode(raw);
        for (std::size_t k = 0; k < enc.size(); ++k) {
            if (enc[k] == '%') {
                REQUIRE(k + 2 < enc.size());
                REQUIRE(std::isxdigit(static_cast<unsigned char>(enc[k + 1])));
                REQUIRE(std::isxdigit(static_cast<unsigned char>(enc[k + 2])));
                k += 2;
            } else {
                REQUIRE(is_unreserved(enc[k]));
            }
        }
        REQUIRE(percent_decode(enc).value() == raw);
        REQUIRE(riak_unquote(enc) == raw); // what Riak decodes
        REQUIRE(riak_unquote(encode_segment(raw)) == raw);
    }
}

TEST_CASE("is_valid_utf8 rejects overlong forms, surrogates and code points past U+10FFFF",
          "[proto][paths]") {
    // The one UTF-8 check of the project. riak-devnode had its own, which took a lead byte's
    // length at face value: it accepted the first ten of these.
    for (const char* bad : {
             "\xc0\xaf",             // '/' as an overlong 2-byte form
             "\xc1\xbf",             // overlong U+007F
             "\xe0\x80\xaf",         // '/' as an overlong 3-byte form
             "\xe0\x9f\xbf",         // overlong U+07FF
             "\xf0\x80\x80\xaf",     // '/' as an overlong 4-byte form
             "\xf0\x8f\xbf\xbf",     // overlong U+FFFF
             "\xed\xa0\x80",         // U+D800, a surrogate
             "\xed\xbf\xbf",         // U+DFFF
             "\xf4\x90\x80\x80",     // U+110000
             "\xf7\xbf\xbf\xbf",     // U+1FFFFF
             "\xf8\x88\x80\x80\x80", // 5-byte form
             "\xc3",                 // truncated
             "\xa9",                 // stray continuation byte
             "ok\xe2\x82",           // truncated at the end
         }) {
        INFO(percent_encode(bad));
        CHECK_FALSE(is_valid_utf8(bad));
    }
    for (const char* good :
         {"", "plain", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
          "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "caf\xc3\xa9"}) {
        INFO(percent_encode(good));
        CHECK(is_valid_utf8(good));
    }
}

TEST_CASE("percent_decode and riak_unquote edge cases", "[proto][paths]") {
    CHECK(percent_encode("a+b c/%") == "a%2Bb%20c%2F%25");
    CHECK(percent_encode(std::string("\0\xe9\xff~-._Az09", 11)) == "%00%E9%FF~-._Az09");
    CHECK(riak_quote_plus("a b/c~") == "a+b%2Fc~");
    CHECK(riak_quote_plus("x+y %") == "x%2By+%25");
    CHECK(riak_quote_plus(std::string("\0\xe9", 2)) == "%00%E9");
    CHECK(percent_decode("%41%4a%00").value() == std::string("AJ\0", 3));
    CHECK_FALSE(percent_decode("%").has_value());
    CHECK_FALSE(percent_decode("a%").has_value());
    CHECK(riak_unquote("%41%4a") == "AJ");
    CHECK(encode_segment(".") == "%2E");
    CHECK(encode_segment("..") == "%2E%2E");
    CHECK(encode_segment("...") == "...");
    CHECK(percent_decode("a%2fb").value() == "a/b");
    CHECK(percent_decode("a+b").value() == "a+b");
    CHECK_FALSE(percent_decode("a%2").has_value());
    CHECK_FALSE(percent_decode("a%zz").has_value());
    CHECK(riak_unquote("a+b%20c") == "a b c");
    CHECK(riak_unquote("100%") == "100%");
    CHECK(riak_unquote("%zz%4") == "%zz%4");
}

TEST_CASE("object targets survive Riak's router for every name", "[proto][paths]") {
    std::mt19937_64 rng(0x5eed0003);
    int checked = 0;
    for (int i = 0; i < 10000; ++i) {
        const std::string key = escape_name(random_name(rng));
        const std::string bucket = escape_name(random_name(rng));
        if (key.empty() || bucket.empty()) continue;
        const ObjectId typed{"files", bucket, key};
        QueryParams q;
        q.add("w", Quorum::quorum()).add("returnbody", true);
        for (const ObjectId& id : {typed, ObjectId{"", bucket, key}}) {
            const auto target = object_target(id, q);
            REQUIRE(target.has_value());
            INFO(*target);
            REQUIRE(only_url_chars(*target));
            const ParsedTarget parsed = parse_target(*target);
            std::vector<std::string> expected;
            if (!id.type.empty()) expected = {"types", id.type};
            expected.insert(expected.end(), {"buckets", bucket, "keys", key});
            REQUIRE(parsed.segments == expected);
            REQUIRE(parsed.param("w") == std::optional<std::string>("quorum"));
            REQUIRE(parsed.param("returnbody") == std::optional<std::string>("true"));
            ++checked;
        }
    }
    CHECK(checked > 15000);
}

TEST_CASE("target builders", "[proto][paths]") {
    CHECK(object_target({"", "b", "a/b c+d"}).value() == "/buckets/b/keys/a%2Fb%20c%2Bd");
    CHECK(object_target({"t", "b", "k"}).value() == "/types/t/buckets/b/keys/k");
    CHECK(object_target({"", "b", "."}).value() == "/buckets/b/keys/%2E");
    CHECK(bucket_keys_target({"", "b"}).value() == "/buckets/b/keys");
    CHECK(key_list_target({"", "b"}, false).value() == "/buckets/b/keys?keys=true");
    CHECK(key_list_target({"t", "b"}, true, 5000).value() ==
          "/types/t/buckets/b/keys?keys=stream&timeout=5000");
    CHECK(bucket_list_target("", false).value() == "/buckets?buckets=true");
    CHECK(bucket_list_target("t", true).value() == "/types/t/buckets?buckets=stream");
    CHECK(bucket_props_target({"", "my bucket"}).value() == "/buckets/my%20bucket/props");
    CHECK(type_props_target("sets").value() == "/types/sets/props");
    CHECK(datatype_target({"sets", "d", "k"}).value() == "/types/sets/buckets/d/datatypes/k");
    CHECK_FALSE(datatype_target({"", "d", "k"}).has_value());
    CHECK(ping_target() == "/ping");
    CHECK(stats_target() == "/stats");

    SECTION("invalid names") {
        CHECK(object_target({"", "", "k"}).error().code == EINVAL);
        CHECK(object_target({"", "b", ""}).error().code == EINVAL);
        CHECK(object_target({"", "b", std::string(kMaxKeyBytes + 1, 'k')}).error().code ==
              ENAMETOOLONG);
        CHECK(object_target({"", "b", std::string(3000, '/')}).error().code == ENAMETOOLONG);
    }
}

TEST_CASE("request parameters", "[proto][paths]") {
    RequestParams p;
    p.r = Quorum::one();
    p.pr = Quorum::n(2);
    p.w = Quorum::all();
    p.dw = Quorum::quorum();
    p.pw = Quorum::n(0);
    p.rw = Quorum::bucket_default();
    p.node_confirms = Quorum::n(1);
    p.basic_quorum = false;
    p.notfound_ok = false;
    p.returnbody = true;
    p.timeout_ms = 1500;
    p.vtag = "5V+x/y";
    QueryParams q;
    q.add(p);
    CHECK(q.to_string() == "?r=one&pr=2&w=all&dw=quorum&pw=0&rw=default&node_confirms=1&"
                           "basic_quorum=false&notfound_ok=false&returnbody=true&timeout=1500&"
                           "vtag=5V%2Bx%2Fy");
    CHECK(QueryParams().to_string().empty());
    // Overloads pick the value's own type: a string literal stays a string, an int a number.
    CHECK(QueryParams()
              .add("keys", "stream")
              .add("timeout", 5000)
              .add("flag", true)
              .add("name", std::string("a b"))
              .add("n", std::uint64_t{1} << 40)
              .to_string() == "?keys=stream&timeout=5000&flag=true&name=a%20b&n=1099511627776");
    CHECK(Quorum::parse("quorum") == Quorum::quorum());
    CHECK(Quorum::parse("3") == Quorum::n(3));
    CHECK_FALSE(Quorum::parse("three").has_value());
    CHECK_FALSE(Quorum::parse("").has_value());
    CHECK_FALSE(Quorum::parse("-1").has_value());
}

TEST_CASE("index targets", "[proto][paths]") {
    CHECK(index_target({"", "b"}, IndexQuery::exact("parent_bin", "dir/a b")).value() ==
          "/buckets/b/index/parent_bin/dir%2Fa%20b");
    auto range = IndexQuery::range("size_int", "10", "20");
    range.return_terms = true;
    range.max_results = 100;
    range.continuation = "g2gCYgAAAA==";
    CHECK(index_target({"t", "b"}, range).value() ==
          "/types/t/buckets/b/index/size_int/10/20?max_results=100&continuation=g2gCYgAAAA%3D%3D&"
          "return_terms=true");
    auto all = IndexQuery::bucket_keys();
    all.max_results = 10;
    CHECK(index_target({"", "b"}, all).value() == "/buckets/b/index/%24bucket/_?max_results=10");
    CHECK(parse_target(index_target({"", "b"}, all).value()).segments ==
          std::vector<std::string>{"buckets", "b", "index", "$bucket", "_"});
    CHECK(index_target({"", "b"}, IndexQuery::exact("parent", "x")).error().code == EINVAL);
    CHECK(index_target({"", "b"}, IndexQuery::exact("p_bin", "")).error().code == EINVAL);
}

TEST_CASE("parse_target splits like Riak's router", "[proto][paths]") {
    const auto t = parse_target("//buckets/a+b//keys/k%2Fx/?keys=true&x=%41+&flag");
    CHECK(t.segments == std::vector<std::string>{"buckets", "a b", "keys", "k/x"});
    CHECK(t.param("keys") == std::optional<std::string>("true"));
    CHECK(t.param("x") == std::optional<std::string>("A "));
    CHECK(t.param("flag") == std::optional<std::string>(""));
    CHECK_FALSE(t.param("none").has_value());
}

TEST_CASE("parse_target splits the query on & and ; and drops a fragment", "[proto][paths]") {
    // mochiweb_util:parse_qs takes both separators.
    const auto t = parse_target("/buckets/b/keys?keys=true;timeout=5&a+b=c%3D#frag");
    CHECK(t.segments == std::vector<std::string>{"buckets", "b", "keys"});
    CHECK(t.param("keys") == std::optional<std::string>("true"));
    CHECK(t.param("timeout") == std::optional<std::string>("5"));
    CHECK(t.param("a b") == std::optional<std::string>("c="));
    CHECK(t.query.size() == 3);
}

TEST_CASE("host_and_port brackets IPv6 addresses", "[proto][paths]") {
    CHECK(host_and_port("127.0.0.1", 8098) == "127.0.0.1:8098");
    CHECK(host_and_port("riak.example", 80) == "riak.example:80");
    CHECK(host_and_port("::1", 8098) == "[::1]:8098");
    CHECK(host_and_port("fe80::1%lo", 1) == "[fe80::1%lo]:1");
}
