#include <algorithm>
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "lib/layout/file_object.hpp"
#include "lib/layout/sha256.hpp"
#include "proto/riak_messages.hpp"

using namespace rfs::layout;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_file_object {

namespace {

FileMeta sample() {
    FileMeta m;
    m.mode = 0100644;
    m.uid = 1000;
    m.gid = 4294967295u;
    m.mtime_ns = 1'700'000'000'123'456'789;
    m.ctime_ns = -1; // before the epoch
    m.atime_ns = 0;
    m.size = 5'000'000'000ull;
    m.sha256 = sha256_hex("content");
    m.version = make_version_at(1'700'000'000'123'456'789ull, 0xdeadbeef);
    m.path = "dir/a file%+?#\r\n\xff.txt";
    m.kind = FileMeta::Kind::manifest;
    return m;
}

std::string& value_of(MetaList& list, std::string_view name) {
    auto it = std::find_if(list.begin(), list.end(), [&](auto& p) { return p.first == name; });
    REQUIRE(it != list.end());
    return it->second;
}

void erase_named(MetaList& list, std::string_view name) {
    std::erase_if(list, [&](auto& p) { return p.first == name; });
}

} // namespace

TEST_CASE("file metadata round-trips and every value is header-safe", "[file_object]") {
    FileMeta m = sample();
    MetaList list = encode_meta(m);
    CHECK(list.size() == 11);
    for (const auto& [name, value] : list) {
        INFO(name << ": " << value);
        CHECK(name.starts_with("riakfs-"));
        // Captured by value: clang 14 (the asan build) cannot capture a structured binding.
        CHECK(name == [n = name] {
            std::string lower = n;
            std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
            return lower;
        }());
        CHECK(rfs::proto::is_token(name));
        CHECK(rfs::proto::is_header_safe(value));
    }
    CHECK(value_of(list, "riakfs-mode") == "100644");
    CHECK(value_of(list, "riakfs-ctime") == "-1");
    CHECK(value_of(list, "riakfs-size") == "5000000000");
    CHECK(value_of(list, "riakfs-kind") == "manifest");
    CHECK(value_of(list, "riakfs-path") == "dir/a%20file%25%2B%3F%23%0D%0A%FF.txt");
    auto back = decode_meta(list);
    REQUIRE(back);
    CHECK(*back == m);

    m.kind = FileMeta::Kind::whole;
    CHECK(value_of(list = encode_meta(m), "riakfs-kind") == "whole");
    CHECK(decode_meta(list)->kind == FileMeta::Kind::whole);
}

TEST_CASE("metadata names survive Riak re-casing; other metadata is ignored", "[file_object]") {
    MetaList list = encode_meta(sample());
    for (auto& [name, value] : list) {
        name[0] = 'R';
        name[7] = static_cast<char>(std::toupper(name[7]));
    }
    list.emplace_back("Owner", "someone else");
    list.emplace_back("riakfs-future-field", "x");
    auto back = decode_meta(list);
    REQUIRE(back);
    CHECK(*back == sample());
}

TEST_CASE("missing, repeated or garbled fields are errors", "[file_object]") {
    const MetaList good = encode_meta(sample());
    for (const auto& [name, value] : good) {
        MetaList missing = good;
        erase_named(missing, name);
        auto r = decode_meta(missing);
        INFO(name);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == EINVAL);
        CHECK(r.error().message.find(name) != std::string::npos);

        MetaList twice = good;
        twice.emplace_back("R" + name.substr(1), value); // same name, other case
        CHECK_FALSE(decode_meta(twice));
    }
    const std::pair<std::string, std::string> garbled[] = {
        {"riakfs-mode", "100648"},
        {"riakfs-mode", "0100644"},
        {"riakfs-mode", "1000000"},
        {"riakfs-mode", ""},
        {"riakfs-uid", "-1"},
        {"riakfs-uid", "4294967296"},
        {"riakfs-uid", "+1"},
        {"riakfs-gid", " 1"},
        {"riakfs-gid", "01"},
        {"riakfs-mtime", "1.5"},
        {"riakfs-mtime", "-0"},
        {"riakfs-ctime", "9223372036854775808"},
        {"riakfs-atime", "1e9"},
        {"riakfs-size", "-5"},
        {"riakfs-size", "18446744073709551616"},
        {"riakfs-sha256", "abc"},
        {"riakfs-sha256", std::string(64, 'A')},
        {"riakfs-version", "v1"},
        {"riakfs-version", make_version_at(1, 2) + "0"},
        {"riakfs-path", ""},
        {"riakfs-path", "a b"},
        {"riakfs-path", "a%2"},
        {"riakfs-path", "a%2f"},
        {"riakfs-path", "%41"},
        {"riakfs-path", "%2Fa"},
        {"riakfs-kind", "Whole"},
        {"riakfs-kind", ""},
    };
    for (const auto& [name, bad] : garbled) {
        MetaList list = good;
        value_of(list, name) = bad;
        INFO(name << " = '" << bad << "'");
        CHECK_FALSE(decode_meta(list));
    }
    // Extremes that are valid.
    MetaList list = good;
    value_of(list, "riakfs-ctime") = "-9223372036854775808";
    value_of(list, "riakfs-size") = "18446744073709551615";
    value_of(list, "riakfs-mode") = "177777";
    auto r = decode_meta(list);
    REQUIRE(r);
    CHECK(r->ctime_ns == INT64_MIN);
    CHECK(r->size == UINT64_MAX);
    CHECK(r->mode == 0177777);
}

TEST_CASE("path metadata encoding is reversible and strict", "[file_object]") {
    std::string all;
    for (int c = 0; c < 256; ++c)
        all.push_back(static_cast<char>(c));
    auto encoded = encode_path_meta(all);
    CHECK(rfs::proto::is_header_safe(encoded));
    CHECK(*decode_path_meta(encoded) == all);
    CHECK(encode_path_meta("a/b-c.d_e~f") == "a/b-c.d_e~f");
    CHECK(encode_path_meta("caf\xc3\xa9") == "caf%C3%A9");
    CHECK_FALSE(decode_path_meta("%"));
    CHECK_FALSE(decode_path_meta("%G0"));
    CHECK_FALSE(decode_path_meta("%2e")); // '.' needs no escape (and lowercase hex)
}

TEST_CASE("version stamps order by time, then by the random part", "[file_object]") {
    auto a = make_version_at(1000, 0xffff);
    auto b = make_version_at(1001, 0);
    CHECK(a == "00000000000003e8-000000000000ffff");
    CHECK(is_valid_version(a));
    CHECK(compare_versions(a, b) < 0);
    CHECK(compare_versions(b, a) > 0);
    CHECK(compare_versions(a, a) == 0);
    CHECK(compare_versions(make_version_at(5, 1), make_version_at(5, 2)) < 0);
    // Time dominates even across a change in the number of significant digits.
    CHECK(compare_versions(make_version_at(0xf, 0), make_version_at(0x10, 0)) < 0);
    // A malformed stamp never wins over a valid one.
    CHECK(compare_versions("zzzz", a) < 0);
    CHECK(compare_versions(a, "") > 0);
    CHECK_FALSE(is_valid_version("00000000000003E8-000000000000ffff"));
    CHECK_FALSE(is_valid_version("00000000000003e8_000000000000ffff"));
    CHECK_FALSE(is_valid_version("3e8-ffff"));
}

TEST_CASE("make_version is well-formed, current and strictly increasing", "[file_object]") {
    std::set<std::string> seen;
    std::string prev = make_version();
    CHECK(is_valid_version(prev));
    for (int i = 0; i < 10000; ++i) {
        std::string next = make_version();
        REQUIRE(is_valid_version(next));
        REQUIRE(compare_versions(prev, next) < 0);
        seen.insert(next);
        prev = next;
    }
    CHECK(seen.size() == 10000);
    // The time part is the real clock (later than November 2023).
    CHECK(prev.substr(0, 16) > make_version_at(1'700'000'000'000'000'000ull, 0).substr(0, 16));
}

} // namespace test_file_object
