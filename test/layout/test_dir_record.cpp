#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "lib/layout/dir_record.hpp"
#include "proto/riak_paths.hpp"

using namespace rfs::layout;
using json = nlohmann::json;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_dir_record {

namespace {

DirEntry file(std::uint64_t size = 12) {
    DirEntry e;
    e.type = EntryType::reg;
    e.mode = 0644;
    e.uid = 1000;
    e.gid = 100;
    e.mtime_ns = 1'700'000'000'123'456'789;
    e.ctime_ns = -5;
    e.atime_ns = INT64_MAX;
    e.size = size;
    return e;
}

DirEntry of_type(EntryType type) {
    DirEntry e = file(0);
    e.type = type;
    if (type == EntryType::lnk) e.target = "../t";
    if (type == EntryType::chr || type == EntryType::blk) e.rdev = 0x0801;
    if (type == EntryType::dir) e.nlink = 3;
    return e;
}

DirRecord sample() {
    DirRecord r;
    r.entries["a.txt"] = file();
    r.entries["sub"] = of_type(EntryType::dir);
    r.entries["link"] = of_type(EntryType::lnk);
    r.entries["fifo"] = of_type(EntryType::fifo);
    r.entries["tty"] = of_type(EntryType::chr);
    r.entries["sda1"] = of_type(EntryType::blk);
    r.entries["sock"] = of_type(EntryType::sock);
    r.entries["empty-dev"] = of_type(EntryType::chr);
    r.entries["empty-dev"].rdev = 0;
    DirEntry linked = file();
    linked.nlink = 2;
    linked.inode = "fd00:1234";
    r.entries["hard1"] = linked;
    r.entries["hard2"] = linked;
    return r;
}

std::string error_of(const json& doc) {
    auto r = decode_dir_record(doc.dump());
    INFO(doc.dump());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == EINVAL);
    CHECK(r.error().message.find('\n') == std::string::npos);
    return r.error().message;
}

} // namespace

TEST_CASE("dir record keys", "[dir_record]") {
    CHECK(dir_record_key("") == "/");
    CHECK(dir_record_key("dir") == "/dir");
    CHECK(dir_record_key("dir/sub") == "/dir/sub");
    CHECK(dir_record_key("50%/\xff") == "/50%/\xff");
}

TEST_CASE("entry types have stable names", "[dir_record]") {
    for (auto t : {EntryType::reg, EntryType::dir, EntryType::lnk, EntryType::fifo, EntryType::chr,
                   EntryType::blk, EntryType::sock})
        CHECK(parse_entry_type(entry_type_name(t)) == t);
    CHECK(entry_type_name(EntryType::lnk) == "lnk");
    CHECK_FALSE(parse_entry_type("file"));
}

TEST_CASE("dir records round-trip every entry type", "[dir_record]") {
    DirRecord r = sample();
    std::string body = encode_dir_record(r);
    auto back = decode_dir_record(body);
    REQUIRE(back);
    CHECK(*back == r);

    json doc = json::parse(body);
    CHECK(doc["format"] == "riakfs-dir/1");
    CHECK(doc["entries"]["a.txt"]["type"] == "reg");
    CHECK(doc["entries"]["a.txt"]["mode"] == 0644);
    CHECK(doc["entries"]["a.txt"]["mtime_ns"] == 1'700'000'000'123'456'789);
    CHECK_FALSE(doc["entries"]["a.txt"].contains("target"));
    CHECK_FALSE(doc["entries"]["a.txt"].contains("rdev"));
    CHECK_FALSE(doc["entries"]["a.txt"].contains("inode"));
    CHECK(doc["entries"]["link"]["target"] == "../t");
    CHECK(doc["entries"]["tty"]["rdev"] == 0x0801);
    CHECK(doc["entries"]["empty-dev"]["rdev"] == 0);
    CHECK(doc["entries"]["hard1"]["inode"] == "fd00:1234");
    CHECK_FALSE(doc["entries"]["sub"].contains("inode")); // directories have nlink > 1 anyway

    CHECK(*decode_dir_record(encode_dir_record(DirRecord{})) == DirRecord{});
}

TEST_CASE("hostile names and targets round-trip as valid UTF-8", "[dir_record]") {
    const std::string hostile[] = {"a b",
                                   "50%",
                                   "a+b",
                                   "what?",
                                   "#frag",
                                   "cr\rlf\n",
                                   "tab\t",
                                   "\x7f",
                                   "caf\xc3\xa9",
                                   "caf\xe9",
                                   "\xff\xfe\x80\xc0",
                                   "\"quoted\\\"",
                                   "%41",
                                   std::string(255, 'n'),
                                   std::string(255, '\xff')};
    DirRecord r;
    for (const auto& name : hostile) {
        DirEntry link = of_type(EntryType::lnk);
        link.target = "/x/" + name + "/\x01";
        REQUIRE(add_entry(r, name, link));
    }
    std::string body = encode_dir_record(r);
    CHECK(rfs::proto::is_valid_utf8(body));
    auto back = decode_dir_record(body);
    REQUIRE(back);
    CHECK(*back == r);

    CHECK(encode_entry_bytes("50% \xff\n\x7f~") == "50%25 %FF%0A%7F~");
    CHECK(encode_entry_bytes("caf\xc3\xa9") == "caf%C3%A9");
    std::string all;
    for (int c = 0; c < 256; ++c)
        all.push_back(static_cast<char>(c));
    CHECK(*decode_entry_bytes(encode_entry_bytes(all)) == all);
    for (std::string_view bad : {"%", "%4", "%zz", "%2e", "%41", "\n", "caf\xc3\xa9", "\x7f"})
        CHECK_FALSE(decode_entry_bytes(bad));
}

TEST_CASE("entry names are checked", "[dir_record]") {
    CHECK(check_entry_name("a"));
    CHECK(check_entry_name(std::string(255, 'x')));
    CHECK_FALSE(check_entry_name(""));
    CHECK_FALSE(check_entry_name(std::string(256, 'x')));
    CHECK_FALSE(check_entry_name("."));
    CHECK_FALSE(check_entry_name(".."));
    CHECK(check_entry_name("..."));
    CHECK_FALSE(check_entry_name("a/b"));
    CHECK_FALSE(check_entry_name(std::string("a\0b", 3)));
}

TEST_CASE("entries are checked against their type", "[dir_record]") {
    CHECK(check_entry(file()));
    DirEntry e = file();
    e.mode = 0100644; // type bits belong in `type`
    CHECK_FALSE(check_entry(e));
    e = file();
    e.target = "x";
    CHECK_FALSE(check_entry(e));
    e = file();
    e.rdev = 1;
    CHECK_FALSE(check_entry(e));
    e = file();
    e.nlink = 2; // needs an inode id
    CHECK_FALSE(check_entry(e));
    e.inode = "i";
    CHECK(check_entry(e));
    e.nlink = 1; // an id without hard links
    CHECK_FALSE(check_entry(e));
    e = file();
    e.nlink = 0;
    CHECK_FALSE(check_entry(e));
    e = of_type(EntryType::lnk);
    e.target.clear();
    CHECK_FALSE(check_entry(e));
    e.target = std::string(4096, 'x');
    CHECK_FALSE(check_entry(e));
    e.target = std::string(4095, 'x');
    CHECK(check_entry(e));
    e = of_type(EntryType::dir);
    e.inode = "i";
    CHECK_FALSE(check_entry(e));
}

TEST_CASE("decoding garbage or inconsistent records gives errors", "[dir_record]") {
    for (std::string_view garbage :
         {"", "null", "[]", "{", "\xff", "{\"format\":\"riakfs-dir/1\"}"})
        CHECK_FALSE(decode_dir_record(garbage));

    const json good = json::parse(encode_dir_record(sample()));
    auto edit = [&](auto change) {
        json doc = good;
        change(doc);
        return doc;
    };
    error_of(edit([](json& d) { d["format"] = "riakfs-dir/2"; }));
    error_of(edit([](json& d) { d["extra"] = 1; }));
    error_of(edit([](json& d) { d["entries"] = json::array(); }));
    error_of(edit([](json& d) { d["entries"]["x"] = 1; }));
    CHECK(error_of(edit([](json& d) {
              d["entries"]["a.txt"]["colour"] = 1;
          })).find("unknown member \"colour\"") != std::string::npos);
    for (const char* member :
         {"type", "mode", "uid", "gid", "mtime_ns", "ctime_ns", "atime_ns", "size", "nlink"})
        CHECK(error_of(edit([&](json& d) { d["entries"]["a.txt"].erase(member); })).find(member) !=
              std::string::npos);
    error_of(edit([](json& d) { d["entries"]["a.txt"]["type"] = "file"; }));
    error_of(edit([](json& d) { d["entries"]["a.txt"]["mode"] = -1; }));
    error_of(edit([](json& d) { d["entries"]["a.txt"]["mode"] = 1.5; }));
    error_of(edit([](json& d) { d["entries"]["a.txt"]["mode"] = "644"; }));
    error_of(edit([](json& d) { d["entries"]["a.txt"]["uid"] = 4294967296ull; }));
    error_of(edit([](json& d) { d["entries"]["a.txt"]["mtime_ns"] = 9223372036854775808ull; }));
    error_of(edit([](json& d) { d["entries"]["a.txt"]["size"] = -1; }));
    error_of(edit([](json& d) { d["entries"]["a.txt"]["target"] = "x"; }));
    error_of(edit([](json& d) { d["entries"]["a.txt"]["rdev"] = 0; }));
    error_of(edit([](json& d) { d["entries"]["a.txt"]["inode"] = "i"; }));
    error_of(edit([](json& d) { d["entries"]["hard1"].erase("inode"); }));
    error_of(edit([](json& d) { d["entries"]["hard1"]["inode"] = ""; }));
    error_of(edit([](json& d) { d["entries"]["hard1"]["inode"] = 7; }));
    error_of(edit([](json& d) { d["entries"]["link"].erase("target"); }));
    error_of(edit([](json& d) { d["entries"]["link"]["target"] = "%zz"; }));
    error_of(edit([](json& d) { d["entries"]["link"]["target"] = ""; }));
    error_of(edit([](json& d) { d["entries"]["tty"].erase("rdev"); }));
    for (const char* bad_name : {".", "..", "a/b", "%00", "%", "%2e", ""})
        error_of(edit([&](json& d) { d["entries"][bad_name] = d["entries"]["a.txt"]; }));
    error_of(edit([](json& d) { d["entries"][std::string(256, 'x')] = d["entries"]["a.txt"]; }));
}

TEST_CASE("add, remove and rename entries", "[dir_record]") {
    DirRecord r;
    REQUIRE(add_entry(r, "a", file(1)));
    CHECK(add_entry(r, "a", file(2)).error().code == EEXIST);
    CHECK(r.entries.at("a").size == 1);
    CHECK(add_entry(r, "b/c", file()).error().code == EINVAL);
    DirEntry bad = file();
    bad.nlink = 0;
    CHECK(add_entry(r, "z", bad).error().code == EINVAL);
    CHECK_FALSE(r.entries.contains("z"));

    REQUIRE(add_entry(r, "d", of_type(EntryType::dir)));
    REQUIRE(add_entry(r, "e", of_type(EntryType::dir)));

    // Plain rename.
    auto moved = rename_entry(r, "a", "a2");
    REQUIRE(moved);
    CHECK_FALSE(moved->has_value());
    CHECK(r.entries.at("a2").size == 1);
    CHECK_FALSE(r.entries.contains("a"));
    // Onto itself: nothing changes.
    REQUIRE(rename_entry(r, "a2", "a2"));
    CHECK(r.entries.at("a2").size == 1);
    // Replacing a file returns the old entry.
    REQUIRE(add_entry(r, "f", file(7)));
    auto replaced = rename_entry(r, "a2", "f");
    REQUIRE(replaced);
    REQUIRE(replaced->has_value());
    CHECK((*replaced)->size == 7);
    CHECK(r.entries.at("f").size == 1);
    // Kinds must agree, like rename(2).
    CHECK(rename_entry(r, "f", "d").error().code == EISDIR);
    CHECK(rename_entry(r, "d", "f").error().code == ENOTDIR);
    REQUIRE(rename_entry(r, "d", "e"));
    CHECK_FALSE(r.entries.contains("d"));
    CHECK(rename_entry(r, "missing", "x").error().code == ENOENT);
    CHECK(rename_entry(r, "f", "..").error().code == EINVAL);

    auto removed = remove_entry(r, "f");
    REQUIRE(removed);
    CHECK(removed->size == 1);
    CHECK(remove_entry(r, "f").error().code == ENOENT);
    CHECK(r.entries.size() == 1);
    CHECK(r.entries.contains("e"));
}

TEST_CASE("extended attributes round-trip as encoded bytes, and are checked", "[dir_record]") {
    DirRecord r;
    DirEntry e;
    e.mode = 0644;
    e.xattrs = {{"user.color", "blue"},
                {"user.bin", std::string("\0\xff%\n", 4)},
                {"system.posix_acl_access", std::string("\x02\0\0\0", 4)}};
    REQUIRE(add_entry(r, "f", e));
    std::string body = encode_dir_record(r);
    json doc = json::parse(body);
    CHECK(doc["entries"]["f"]["xattrs"]["user.color"] == "blue");
    CHECK(doc["entries"]["f"]["xattrs"]["user.bin"] == "%00%FF%25%0A");
    auto back = decode_dir_record(body);
    REQUIRE(back);
    CHECK(*back == r);
    // Absent when there are none; an empty object, a non-string value or a bad name is refused.
    CHECK_FALSE(json::parse(encode_dir_record(sample()))["entries"]["a.txt"].contains("xattrs"));
    for (const char* bad :
         {R"({"format":"riakfs-dir/1","entries":{"f":{"type":"reg","mode":0,"uid":0,"gid":0,
             "mtime_ns":0,"ctime_ns":0,"atime_ns":0,"size":0,"nlink":1,"xattrs":{}}}})",
          R"({"format":"riakfs-dir/1","entries":{"f":{"type":"reg","mode":0,"uid":0,"gid":0,
             "mtime_ns":0,"ctime_ns":0,"atime_ns":0,"size":0,"nlink":1,"xattrs":{"user.a":1}}}})",
          R"({"format":"riakfs-dir/1","entries":{"f":{"type":"reg","mode":0,"uid":0,"gid":0,
             "mtime_ns":0,"ctime_ns":0,"atime_ns":0,"size":0,"nlink":1,"xattrs":{"nodot":"x"}}}})"})
        CHECK_FALSE(decode_dir_record(bad));
}

} // namespace test_dir_record
