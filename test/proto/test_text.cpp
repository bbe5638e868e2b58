// Unit tests for proto/text: the header text helpers and HTTP dates, shared by proto/ and
// riak-devnode.
#include <catch2/catch.hpp>

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "proto/text.hpp"

using namespace rfs::proto;
using Strings = std::vector<std::string>;

TEST_CASE("case-insensitive comparison, lower-casing and trimming", "[proto][text]") {
    CHECK(iequals("Content-Type", "content-TYPE"));
    CHECK_FALSE(iequals("Content-Type", "Content-Typ"));
    CHECK_FALSE(iequals("\xc3\xa9", "\xc3\x89")); // ASCII only: bytes >= 0x80 compare exactly
    CHECK(istarts_with("X-Riak-Meta-Owner", "x-riak-meta-"));
    CHECK_FALSE(istarts_with("X-Riak", "x-riak-meta-"));
    CHECK(to_lower("X-Riak-Index-Owner_BIN") == "x-riak-index-owner_bin");
    CHECK(trim(" \t value \t\r") == "value");
    CHECK(trim("\r value") == "\r value"); // a leading CR is not whitespace to trim
    CHECK(trim("   ").empty());
}

TEST_CASE("index header values are split as Riak splits them", "[proto][text]") {
    // riak_kv_wm_object: re:split(Value, ",\\s"): a comma and one whitespace byte, no trimming.
    CHECK(split_index_values("a") == Strings{"a"});
    CHECK(split_index_values("a, b") == Strings{"a", "b"});
    CHECK(split_index_values("a,\tb") == Strings{"a", "b"});
    CHECK(split_index_values("a,  b") == Strings{"a", " b"});
    CHECK(split_index_values("a,b") == Strings{"a,b"});
    CHECK(split_index_values("a, ") == Strings{"a", ""});
    CHECK(split_index_values("") == Strings{""});
}

TEST_CASE("HTTP dates", "[proto][text]") {
    CHECK(format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") ==
          std::optional<std::time_t>(784111777));
    CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") ==
          std::optional<std::time_t>(784111777));
    CHECK(parse_http_date("Sun Nov  6 08:49:37 1994") == std::optional<std::time_t>(784111777));
    CHECK_FALSE(parse_http_date("yesterday").has_value());
    CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT").has_value());
    for (std::time_t t = 0; t < 4'000'000'000; t += 86'399 * 37)
        REQUIRE(parse_http_date(format_http_date(t)) == std::optional<std::time_t>(t));
}
