#include <string>

#include <catch2/catch.hpp>

#include "lib/layout/mapping.hpp"

using namespace rfs::layout;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_mapping {

namespace {

Mapper parse(std::string_view text) {
    auto m = Mapper::from_json(text);
    INFO(text);
    REQUIRE(m.has_value());
    return std::move(m).value();
}

// The error message for an invalid configuration; fails the test if it parsed.
std::string error_of(std::string_view text) {
    auto m = Mapper::from_json(text);
    INFO(text);
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().code == EINVAL);
    CHECK(m.error().message.find('\n') == std::string::npos);
    return m.error().message;
}

std::string rule(std::string_view path, std::string_view bucket, std::string_view key) {
    return fmt::format(R"({{"rules":[{{"path":"{}","bucket":"{}","key":"{}"}}]}})", path, bucket,
                       key);
}

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("default layout maps every path to the bucket, key = path", "[mapping]") {
    auto m = Mapper::default_layout();
    CHECK(m.map("a.txt") == Location{"", "riakfs", "a.txt"});
    CHECK(m.map("dir/sub/a.txt") == Location{"", "riakfs", "dir/sub/a.txt"});
    CHECK(m.namespace_bucket() == rfs::proto::BucketId{"", "riakfs-ns"});
    CHECK_FALSE(m.map(""));
    CHECK_FALSE(m.map("a//b")); // not normalised: no empty components
    CHECK_FALSE(m.map("a/"));

    auto typed = Mapper::default_layout("files", "mytype");
    CHECK(typed.map("x") == Location{"mytype", "files", "x"});
    CHECK(typed.namespace_bucket() == rfs::proto::BucketId{"mytype", "riakfs-ns"});
}

TEST_CASE("the original tool's layout: /{m}/images/{f} -> IMG_{m}/{f}", "[mapping]") {
    auto m = parse(R"({"rules":[{"path":"/{m}/images/{f}","bucket":"IMG_{m}","key":"{f}"}]})");
    CHECK(m.map("2021/images/cat.jpg") == Location{"", "IMG_2021", "cat.jpg"});
    CHECK_FALSE(m.map("2021/images"));
    CHECK_FALSE(m.map("2021/images/sub/cat.jpg"));
    CHECK_FALSE(m.map("2021/videos/cat.jpg"));
    CHECK_FALSE(m.map("images/cat.jpg"));
}

TEST_CASE("rules are ordered, first match wins, unmatched paths stay local", "[mapping]") {
    auto m = parse(R"({"rules":[
        {"path":"/logs/{rest**}","bucket":"logs","key":"{rest}","type":"mytype"},
        {"path":"/{a}/{b}","bucket":"two","key":"{b}-{a}"},
        {"path":"/{any**}","bucket":"all","key":"{any}"}]})");
    CHECK(m.map("logs/2024/01/x.log") == Location{"mytype", "logs", "2024/01/x.log"});
    CHECK(m.map("logs/x") == Location{"mytype", "logs", "x"});
    CHECK(m.map("logs") == Location{"", "all", "logs"}); // {rest**} needs a component
    CHECK(m.map("p/q") == Location{"", "two", "q-p"});
    CHECK(m.map("p/q/r") == Location{"", "all", "p/q/r"});

    auto only = parse(rule("/keep/{f}", "b", "{f}"));
    CHECK_FALSE(only.map("other/f"));
    CHECK_FALSE(only.map("keep"));
}

TEST_CASE("captures with literal prefix and suffix inside a component", "[mapping]") {
    auto m = parse(rule("/{m}/img_{f}.jpg", "IMG_{m}", "{f}"));
    CHECK(m.map("x/img_cat.jpg") == Location{"", "IMG_x", "cat"});
    CHECK_FALSE(m.map("x/img_.jpg")); // the capture must be non-empty
    CHECK_FALSE(m.map("x/img_cat.png"));
    CHECK_FALSE(m.map("x/cat.jpg"));
    CHECK_FALSE(m.map("x/img.jpg")); // prefix and suffix may not overlap
}

TEST_CASE("captures are usable in both templates, several times", "[mapping]") {
    auto m = parse(rule("/{a}/{b**}", "{a}-{a}", "k/{b}/{a}"));
    CHECK(m.map("x/y/z") == Location{"", "x-x", "k/y/z/x"});
}

TEST_CASE("type 'default' is the default type; namespace bucket is configurable", "[mapping]") {
    auto m = parse(R"({"rules":[{"path":"/{f}","bucket":"b","key":"{f}","type":"default"}],
                       "namespace":{"bucket":"ns","type":"maps"}})");
    CHECK(m.map("f") == Location{"", "b", "f"});
    CHECK(m.namespace_bucket() == rfs::proto::BucketId{"maps", "ns"});
    CHECK(parse(R"({"rules":[]})").namespace_bucket() == rfs::proto::BucketId{"", "riakfs-ns"});
    CHECK_FALSE(parse(R"({"rules":[]})").map("a"));
}

TEST_CASE("hostile path bytes map to keys byte for byte (the store escapes them)", "[mapping]") {
    auto m = Mapper::default_layout();
    const std::string hostile[] = {"a b",      "50%",   "a+b",         "what?",   "#frag",
                                   "cr\rlf\n", "tab\t", "caf\xc3\xa9", "caf\xe9", "\xff\xfe"};
    for (const auto& name : hostile) {
        auto loc = m.map("d/" + name);
        REQUIRE(loc);
        CHECK(loc->key == "d/" + name);
    }
    const std::string long_name(255, 'n');
    CHECK(m.map("d/" + long_name)->key == "d/" + long_name);
    const std::string long_bin(255, '\x80');
    CHECK(m.map(long_bin)->key == long_bin);

    // Captured bytes reach the bucket too.
    auto img = parse(rule("/{m}/images/{f}", "IMG_{m}", "{f}"));
    auto hostile_loc = img.map("a%b\xff/images/x y");
    REQUIRE(hostile_loc);
    CHECK(hostile_loc->bucket == "IMG_a%b\xff");
    CHECK(hostile_loc->key == "x y");
}

TEST_CASE("keys under .riakfs/ are reserved for chunks", "[mapping]") {
    auto m = Mapper::default_layout();
    CHECK_FALSE(m.map(".riakfs/chunks/v/0"));
    CHECK(m.map(".riakfs")); // a file called .riakfs is fine
    CHECK(m.map(".riakfsx/a"));
    auto prefixed = parse(rule("/{f}", "b", ".riakfs/{f}"));
    CHECK_FALSE(prefixed.map("a"));
}

TEST_CASE("configuration errors are one clear line each", "[mapping]") {
    CHECK(contains(error_of("{"), "bad JSON"));
    CHECK(contains(error_of("[]"), "top level"));
    CHECK(contains(error_of("{}"), "missing \"rules\""));
    CHECK(contains(error_of(R"({"rules":{}})"), "must be an array"));
    CHECK(contains(error_of(R"({"rules":[], "extra":1})"), "unknown member \"extra\""));
    CHECK(contains(error_of(R"({"rules":[5]})"), "rule 1: must be an object"));
    CHECK(
        contains(error_of(R"({"rules":[{"bucket":"b","key":"k"}]})"), "rule 1: missing \"path\""));
    CHECK(contains(error_of(R"({"rules":[{"path":"/a","key":"k"}]})"), "missing \"bucket\""));
    CHECK(contains(error_of(R"({"rules":[{"path":"/a","bucket":"b"}]})"), "missing \"key\""));
    CHECK(contains(error_of(R"({"rules":[{"path":"/a","bucket":1,"key":"k"}]})"),
                   "\"bucket\" must be a string"));
    CHECK(contains(error_of(R"({"rules":[{"path":"/a","bucket":"b","key":"k","x":1}]})"),
                   "unknown member \"x\""));

    auto second = error_of(R"({"rules":[{"path":"/a","bucket":"b","key":"k"},
                                        {"path":"/{f}","bucket":"b","key":"{g}"}]})");
    CHECK(contains(second, "rule 2"));
    CHECK(contains(second, "unknown capture '{g}'"));

    CHECK(contains(error_of(rule("/{a}/{a}", "b", "{a}")), "duplicate capture '{a}'"));
    CHECK(Mapper::from_json(rule("/{a}/{b**}", "b", "{a}"))); // a capture may go unused
    CHECK(contains(error_of(rule("/{a}", "", "{a}")), "empty bucket template"));
    CHECK(contains(error_of(rule("/{a}", "b", "")), "empty key template"));
    CHECK(contains(error_of(rule("/{r**}/x", "b", "{r}")), "must be the whole last component"));
    CHECK(contains(error_of(rule("/x{r**}", "b", "{r}")), "must be the whole last component"));
    CHECK(contains(error_of(rule("/{r**}", "b", "{r**}")), "templates use '{r}'"));
    CHECK(contains(error_of(rule("/{a", "b", "k")), "unbalanced '{'"));
    CHECK(contains(error_of(rule("/a}", "b", "k")), "unbalanced '}' at offset 2"));
    CHECK(contains(error_of(rule("/{a{b}}", "b", "k")), "unbalanced '{'"));
    CHECK(contains(error_of(rule("/{a}", "b{", "k")), "unbalanced '{'"));
    CHECK(contains(error_of(rule("/{a}", "b", "{a}}")), "unbalanced '}'"));
    CHECK(contains(error_of(rule("/{}", "b", "k")), "bad capture name '{}'"));
    CHECK(contains(error_of(rule("/{1a}", "b", "k")), "bad capture name"));
    CHECK(contains(error_of(rule("/{a-b}", "b", "k")), "bad capture name"));
    CHECK(contains(error_of(rule("/{a}{b}", "b", "k")), "more than one capture"));
    CHECK(contains(error_of(rule("a/{f}", "b", "{f}")), "must start with '/'"));
    CHECK(contains(error_of(rule("/", "b", "k")), "empty component"));
    CHECK(contains(error_of(rule("/a//b", "b", "k")), "empty component"));
    CHECK(contains(error_of(rule("/a/", "b", "k")), "empty component"));

    auto typed = [](std::string_view type) {
        return fmt::format(R"({{"rules":[{{"path":"/a","bucket":"b","key":"k","type":"{}"}}]}})",
                           type);
    };
    CHECK(contains(error_of(typed("")), "empty type"));
    CHECK(contains(error_of(typed("my type")), "printable ASCII"));
    CHECK(contains(error_of(typed("a/b")), "printable ASCII"));
    CHECK(contains(error_of(typed("t\\u00e9")), "printable ASCII"));
    CHECK(contains(error_of(typed("{x}")), "fixed name"));

    CHECK(contains(error_of(R"({"rules":[],"namespace":{}})"), "namespace: missing \"bucket\""));
    CHECK(contains(error_of(R"({"rules":[],"namespace":{"bucket":""}})"), "empty bucket"));
    CHECK(contains(error_of(R"({"rules":[],"namespace":{"bucket":"a b"}})"), "namespace"));
    CHECK(contains(error_of(R"({"rules":[],"namespace":{"bucket":"n","x":1}})"),
                   "unknown member \"x\""));
}

} // namespace test_mapping
