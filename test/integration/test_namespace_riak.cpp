// The namespace in Riak through a real mount against a real riak-devnode: after every kind of
// namespace operation the directory records (read back over HTTP, as any Riak client would)
// agree with SOURCE, and records of removed or renamed directories are gone. Then `-o restore`:
// a tree migrated through the mount is rebuilt into an empty SOURCE and state_dir from Riak, and
// every name, attribute and byte read through the new mount is the same. Last, seeded random
// operation sequences in mode=move and mode=migrate against native Linux, with the records, the
// bucket's objects and a restore checked at the end.
#include "ctl_test_support.hpp"
#include "mount_fixture.hpp"
#include "random_ops.hpp"
#include "riak_node.hpp"

#include "../support/test_seed.hpp"

#include "lib/layout/dir_record.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/layout/sha256.hpp"
#include "proto/riak_paths.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace riakfs::it;
using namespace std::chrono_literals;
namespace layout = rfs::layout;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_namespace_riak {

namespace {

MountOptions riak_mount(const RiakNode& node, const TempDir& dir, const std::string& mode,
                        std::vector<std::string> more = {}) {
    MountOptions opts;
    opts.extra_opts = {"mode=" + mode, "riak=" + node.url(), "state_dir=" + dir / "state"};
    for (auto& o : more)
        opts.extra_opts.push_back(o);
    return opts;
}

std::string ns_path(const std::string& riak_key) {
    return "/buckets/riakfs-ns/keys/" + url_key(riak_key);
}

// The Riak names of the namespace bucket's keys (JSON-decoded, still escaped).
std::set<std::string> ns_keys(const RiakNode& node) {
    HttpReply r = node.get("/buckets/riakfs-ns/keys?keys=true");
    if (r.status != 200) return {"<error>"};
    std::set<std::string> out;
    auto listing = nlohmann::json::parse(r.body);
    for (const auto& k : listing.at("keys"))
        out.insert(k.get<std::string>());
    return out;
}

// The whole record of `rel` from Riak (all parts); nullopt when absent or unreadable.
std::optional<layout::DirRecord> riak_record(const RiakNode& node, const std::string& rel) {
    HttpReply r = node.get(ns_path(rfs::proto::escape_name(layout::dir_record_key(rel))));
    if (r.status != 200) return std::nullopt;
    auto rec = layout::decode_dir_record(r.body);
    if (!rec) return std::nullopt;
    for (std::uint32_t i = 1; i < rec->parts; ++i) {
        HttpReply p =
            node.get(ns_path(rfs::proto::escape_name(layout::dir_record_part_key(rel, i))));
        if (p.status != 200) return std::nullopt;
        auto part = layout::decode_dir_record(p.body);
        if (!part) return std::nullopt;
        rec->entries.insert(part->entries.begin(), part->entries.end());
    }
    rec->parts = 1;
    return std::move(*rec);
}

// What the records must say of SOURCE's directory `rel`, from lstat, without the fields that
// move on their own (atime; ctime, which an xattr change or a link elsewhere moves too) and
// with hard-link ids replaced by the first name of the group (compared as groups).
struct Expected {
    std::map<std::string, std::string> entries; // name -> description
};

std::string describe_entry(const layout::DirEntry& e) {
    std::string d = std::string(layout::entry_type_name(e.type)) +
                    " mode=" + std::to_string(e.mode) + " uid=" + std::to_string(e.uid) +
                    " gid=" + std::to_string(e.gid) + " mtime=" + std::to_string(e.mtime_ns) +
                    " nlink=" + std::to_string(e.nlink);
    if (e.type != layout::EntryType::dir) d += " size=" + std::to_string(e.size);
    if (e.type == layout::EntryType::lnk) d += " -> " + e.target;
    if (e.type == layout::EntryType::chr || e.type == layout::EntryType::blk)
        d += " rdev=" + std::to_string(e.rdev);
    if (e.type != layout::EntryType::dir && e.nlink > 1) d += " linked";
    for (const auto& [name, value] : e.xattrs)
        if (name.rfind("user.", 0) == 0) d += " " + name + "=" + digest(value);
    return d;
}

// The user.* extended attributes of `path` itself (a symlink has none).
std::map<std::string, std::string> user_xattrs(const std::string& path) {
    std::map<std::string, std::string> out;
    char names[4096];
    ssize_t n = ::llistxattr(path.c_str(), names, sizeof names);
    for (ssize_t at = 0; at < n;) {
        std::string name(names + at);
        at += static_cast<ssize_t>(name.size()) + 1;
        if (name.rfind("user.", 0) != 0) continue;
        char value[4096];
        ssize_t v = ::lgetxattr(path.c_str(), name.c_str(), value, sizeof value);
        REQUIRE(v >= 0);
        out[name] = std::string(value, static_cast<std::size_t>(v));
    }
    return out;
}

std::map<std::string, std::string> local_entries(const std::string& source,
                                                 const std::string& rel) {
    std::map<std::string, std::string> out;
    std::string dir = rel.empty() ? source : source + "/" + rel;
    for (auto& p : std::filesystem::directory_iterator(dir)) {
        struct stat st;
        REQUIRE(::lstat(p.path().c_str(), &st) == 0);
        layout::DirEntry e;
        e.type = S_ISDIR(st.st_mode)    ? layout::EntryType::dir
                 : S_ISLNK(st.st_mode)  ? layout::EntryType::lnk
                 : S_ISFIFO(st.st_mode) ? layout::EntryType::fifo
                 : S_ISCHR(st.st_mode)  ? layout::EntryType::chr
                 : S_ISBLK(st.st_mode)  ? layout::EntryType::blk
                 : S_ISSOCK(st.st_mode) ? layout::EntryType::sock
                                        : layout::EntryType::reg;
        e.mode = st.st_mode & 07777;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        e.mtime_ns = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        e.size = static_cast<std::uint64_t>(st.st_size);
        e.nlink = static_cast<std::uint32_t>(st.st_nlink);
        if (S_ISLNK(st.st_mode)) e.target = std::filesystem::read_symlink(p.path()).string();
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) e.rdev = st.st_rdev;
        e.xattrs = user_xattrs(p.path());
        out[p.path().filename().string()] = describe_entry(e);
    }
    return out;
}

std::map<std::string, std::string> riak_entries(const layout::DirRecord& rec) {
    std::map<std::string, std::string> out;
    for (const auto& [name, e] : rec.entries)
        out[name] = describe_entry(e);
    return out;
}

// Every directory of SOURCE (relative paths, "" first).
std::vector<std::string> local_dirs(const std::string& source) {
    std::vector<std::string> dirs = {""};
    for (auto& p : std::filesystem::recursive_directory_iterator(source))
        if (std::filesystem::is_directory(p.symlink_status())) // not a symlink's target
            dirs.push_back(p.path().lexically_relative(source).string());
    return dirs;
}

// Waits (up to 60 s) until every directory's record agrees with SOURCE and the bucket holds no
// other record; reports the first disagreement otherwise.
void require_records_agree(const RiakNode& node, const std::string& source) {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    std::string why;
    while (true) {
        why.clear();
        auto dirs = local_dirs(source);
        std::set<std::string> wanted;
        for (const auto& rel : dirs) {
            wanted.insert(rfs::proto::escape_name(layout::dir_record_key(rel)));
            auto rec = riak_record(node, rel);
            if (!rec) {
                why = "no record of " + layout::dir_record_key(rel);
                break;
            }
            auto here = local_entries(source, rel);
            auto there = riak_entries(*rec);
            if (here != there) {
                why = "the record of " + layout::dir_record_key(rel) + " differs:";
                for (auto& [n, d] : here)
                    if (!there.count(n) || there[n] != d)
                        why += "\n  local " + n + ": " + d +
                               "\n  riak:  " + (there.count(n) ? there[n] : std::string("(none)"));
                for (auto& [n, d] : there)
                    if (!here.count(n)) why += "\n  only in riak: " + n + ": " + d;
                break;
            }
        }
        if (why.empty()) {
            std::set<std::string> heads;
            for (const auto& k : ns_keys(node))
                if (k == "/" || k.find("//") == std::string::npos) heads.insert(k);
            if (heads != wanted) {
                why = "records left over or missing:";
                for (auto& k : heads)
                    if (!wanted.count(k)) why += " +" + k;
                for (auto& k : wanted)
                    if (!heads.count(k)) why += " -" + k;
                why += "\n  listing: " + node.get("/buckets/riakfs-ns/keys?keys=true").body;
            }
        }
        if (why.empty()) return;
        if (std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(200ms);
    }
    FAIL(why);
}

void set_times(const std::string& path, std::int64_t mtime_sec) {
    timespec times[2] = {{mtime_sec, 1}, {mtime_sec, 123456789}};
    REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

} // namespace

TEST_CASE("namespace: every namespace operation through the mount is recorded in Riak",
          "[namespace]") {
    TempDir dir("riakfs-ns");
    RiakNode node(dir.path());
    MountOptions opts = riak_mount(node, dir, "shadow");
    opts.prepare = [](const std::string& src) {
        // There before the first mount: the first start records it.
        REQUIRE(::mkdir((src + "/old").c_str(), 0755) == 0);
        write_file(src + "/old/file", "old");
    };
    MountFixture fx(opts);
    require_records_agree(node, fx.source());

    // create, mkdir
    REQUIRE(::mkdir(fx.mnt("d").c_str(), 0750) == 0);
    REQUIRE(::mkdir(fx.mnt("d/sub").c_str(), 0755) == 0);
    REQUIRE(::mkdir(fx.mnt("d/sub/deeper").c_str(), 0755) == 0);
    write_file(fx.mnt("d/a.txt"), "hello", 0640);
    int fd = ::open(fx.mnt("d/sub/created").c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
    require_records_agree(node, fx.source());

    // write, truncate
    write_file(fx.mnt("d/a.txt"), "a longer content");
    require_records_agree(node, fx.source());
    REQUIRE(::truncate(fx.mnt("d/a.txt").c_str(), 3) == 0);
    require_records_agree(node, fx.source());

    // chmod, chown, utimens (a file and a directory)
    REQUIRE(::chmod(fx.mnt("d/a.txt").c_str(), 0604) == 0);
    REQUIRE(::chown(fx.mnt("d/a.txt").c_str(), 1234, 5678) == 0);
    set_times(fx.mnt("d/a.txt"), 1500000000);
    REQUIRE(::chmod(fx.mnt("d/sub").c_str(), 0711) == 0);
    require_records_agree(node, fx.source());

    // user xattrs: set, replaced, removed (a file and a directory)
    REQUIRE(::setxattr(fx.mnt("d/a.txt").c_str(), "user.one", "1", 1, 0) == 0);
    REQUIRE(::setxattr(fx.mnt("d/a.txt").c_str(), "user.two", "2\n\xff", 3, 0) == 0);
    REQUIRE(::setxattr(fx.mnt("d/sub").c_str(), "user.dir", "x", 1, 0) == 0);
    require_records_agree(node, fx.source());
    REQUIRE(::setxattr(fx.mnt("d/a.txt").c_str(), "user.one", "uno", 3, XATTR_REPLACE) == 0);
    REQUIRE(::removexattr(fx.mnt("d/a.txt").c_str(), "user.two") == 0);
    require_records_agree(node, fx.source());

    // hard link, symlink, fifo
    REQUIRE(::link(fx.mnt("d/a.txt").c_str(), fx.mnt("d/sub/hard").c_str()) == 0);
    REQUIRE(::symlink("../a.txt", fx.mnt("d/sub/sym").c_str()) == 0);
    REQUIRE(::mkfifo(fx.mnt("d/fifo").c_str(), 0620) == 0);
    require_records_agree(node, fx.source());
    {
        auto d = riak_record(node, "d");
        auto sub = riak_record(node, "d/sub");
        REQUIRE(d);
        REQUIRE(sub);
        CHECK(d->entries.at("a.txt").inode == sub->entries.at("hard").inode);
        CHECK(sub->entries.at("sym").target == "../a.txt");
    }

    // unlink, rmdir
    REQUIRE(::unlink(fx.mnt("d/sub/hard").c_str()) == 0);
    REQUIRE(::rmdir(fx.mnt("d/sub/deeper").c_str()) == 0);
    require_records_agree(node, fx.source());
    CHECK(node.get(ns_path("/d/sub/deeper")).status == 404);

    // The other name of a file that loses one (unlink, a rename over it), in a directory the
    // operation does not touch: its link count changes too. (A symlink can have hard links.)
    for (const char* d : {"e", "e/deep", "f"})
        REQUIRE(::mkdir(fx.mnt(d).c_str(), 0755) == 0);
    write_file(fx.mnt("e/deep/one"), "one");
    REQUIRE(::symlink("one", fx.mnt("e/deep/sym").c_str()) == 0);
    write_file(fx.mnt("e/deep/three"), "three");
    REQUIRE(::link(fx.mnt("e/deep/one").c_str(), fx.mnt("f/two").c_str()) == 0);
    REQUIRE(::link(fx.mnt("e/deep/sym").c_str(), fx.mnt("f/sym2").c_str()) == 0);
    REQUIRE(::link(fx.mnt("e/deep/three").c_str(), fx.mnt("f/four").c_str()) == 0);
    require_records_agree(node, fx.source());
    // Changed through one name: the other name's entry (mode, size, times, xattrs) too.
    REQUIRE(::chmod(fx.mnt("f/four").c_str(), 0600) == 0);
    REQUIRE(::setxattr(fx.mnt("f/four").c_str(), "user.via", "four", 4, 0) == 0);
    write_file(fx.mnt("f/two"), "one, longer");
    require_records_agree(node, fx.source());
    REQUIRE(::unlink(fx.mnt("f/two").c_str()) == 0);
    REQUIRE(::unlink(fx.mnt("f/sym2").c_str()) == 0);
    write_file(fx.mnt("f/five"), "five");
    REQUIRE(::rename(fx.mnt("f/five").c_str(), fx.mnt("f/four").c_str()) == 0);
    require_records_agree(node, fx.source());
    {
        auto deep = riak_record(node, "e/deep");
        REQUIRE(deep);
        for (const char* name : {"one", "sym", "three"}) {
            INFO(name);
            CHECK(deep->entries.at(name).nlink == 1);
            CHECK(deep->entries.at(name).inode.empty());
        }
    }

    // rename of a file, and of a whole directory subtree: nothing stays at the old names
    REQUIRE(::mkdir(fx.mnt("d/sub/x").c_str(), 0755) == 0);
    REQUIRE(::mkdir(fx.mnt("d/sub/x/y").c_str(), 0755) == 0);
    write_file(fx.mnt("d/sub/x/y/in.txt"), "inside");
    require_records_agree(node, fx.source());
    REQUIRE(::rename(fx.mnt("d/a.txt").c_str(), fx.mnt("renamed.txt").c_str()) == 0);
    REQUIRE(::rename(fx.mnt("d/sub").c_str(), fx.mnt("moved").c_str()) == 0);
    require_records_agree(node, fx.source());
    for (const char* gone : {"/d/sub", "/d/sub/x", "/d/sub/x/y"})
        CHECK(node.get(ns_path(gone)).status == 404);
    CHECK(riak_record(node, "moved/x/y"));

    // rm -r of a subtree through the mount
    std::filesystem::remove_all(fx.mnt("moved"));
    require_records_agree(node, fx.source());
}

TEST_CASE("namespace: hostile names in records", "[namespace]") {
    TempDir dir("riakfs-ns");
    RiakNode node(dir.path());
    MountFixture fx(riak_mount(node, dir, "shadow"));
    std::string d = "dir %+?#\r\n\xff";
    REQUIRE(::mkdir(fx.mnt(d).c_str(), 0755) == 0);
    for (const std::string& name :
         {std::string("sp ace"), std::string("50%"), std::string("a+b?c#d"),
          std::string("cr\rlf\n"), std::string("bad\xff\xfe"), std::string(255, 'n')})
        write_file(fx.mnt(d + "/" + name), name);
    REQUIRE(::symlink("t\xff%\n", fx.mnt(d + "/link").c_str()) == 0);
    require_records_agree(node, fx.source());
    REQUIRE(::rename(fx.mnt(d).c_str(), fx.mnt("plain").c_str()) == 0);
    require_records_agree(node, fx.source());
}

namespace {

// Every name below `root` -> what lstat says that a restore keeps (not ctime, not atime, not
// inode numbers: hard links as groups), symlink targets, and the SHA-256 of regular files.
std::map<std::string, std::string> snapshot(const std::string& root, bool with_bytes) {
    std::map<std::string, std::string> out;
    std::map<std::pair<dev_t, ino_t>, std::string> first;
    for (auto& p : std::filesystem::recursive_directory_iterator(root)) {
        std::string rel = p.path().lexically_relative(root).string();
        struct stat st;
        REQUIRE(::lstat(p.path().c_str(), &st) == 0);
        std::string d =
            "mode=" + std::to_string(st.st_mode) + " uid=" + std::to_string(st.st_uid) +
            " gid=" + std::to_string(st.st_gid) + " mtime=" + std::to_string(st.st_mtim.tv_sec) +
            "." + std::to_string(st.st_mtim.tv_nsec) + " nlink=" + std::to_string(st.st_nlink);
        if (!S_ISDIR(st.st_mode)) d += " size=" + std::to_string(st.st_size);
        if (S_ISLNK(st.st_mode)) d += " -> " + std::filesystem::read_symlink(p.path()).string();
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1)
            d += " group=" + first.emplace(std::pair{st.st_dev, st.st_ino}, rel).first->second;
        if (with_bytes && S_ISREG(st.st_mode)) d += " sha=" + digest(read_file(p.path()));
        for (const auto& [name, value] : user_xattrs(p.path()))
            d += " " + name + "=" + digest(value);
        out[rel] = d;
    }
    return out;
}

// Waits (up to 60 s) until GET of the file's key answers with its SHA-256.
bool wait_copied(const RiakNode& node, const std::string& key, const std::string& content) {
    std::string want = "x-riak-meta-riakfs-sha256: " + layout::sha256_hex(content);
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        HttpReply r = node.get("/buckets/riakfs/keys/" + url_key(rfs::proto::escape_name(key)));
        if (r.status == 200 && r.has_header(want)) return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

} // namespace

TEST_CASE("restore: a migrated tree comes back from Riak with every name, attribute and byte",
          "[namespace][restore]") {
    TempDir dir("riakfs-ns");
    RiakNode node(dir.path());
    std::string source = dir / "source";
    REQUIRE(::mkdir(source.c_str(), 0755) == 0);
    MountOptions opts = riak_mount(node, dir, "migrate");
    opts.source_dir = source;

    std::map<std::string, std::string> files = {
        {"top.txt", "top"},
        {"empty", ""},
        {"docs/readme.md", "read me"},
        {"docs/deep/er/x.bin", random_bytes(70000, 1)},
        {"big.bin", random_bytes(2621440 + 17, 2)}, // a manifest and three chunks
        {"odd %+?#\r\n\xff/name \xfe", "hostile"},
        {std::string(255, 'L'), "long name"},
    };
    std::map<std::string, std::string> before_bytes;
    {
        MountFixture fx(opts);
        REQUIRE(::mkdir(fx.mnt("docs").c_str(), 0750) == 0);
        REQUIRE(::mkdir(fx.mnt("docs/deep").c_str(), 0755) == 0);
        REQUIRE(::mkdir(fx.mnt("docs/deep/er").c_str(), 0700) == 0);
        REQUIRE(::mkdir(fx.mnt("odd %+?#\r\n\xff").c_str(), 0755) == 0);
        REQUIRE(::mkdir(fx.mnt("empty dir").c_str(), 0555) == 0);
        for (const auto& [path, content] : files)
            write_file(fx.mnt(path), content);
        REQUIRE(::link(fx.mnt("top.txt").c_str(), fx.mnt("docs/top-link").c_str()) == 0);
        REQUIRE(::symlink("../top.txt", fx.mnt("docs/sym").c_str()) == 0);
        REQUIRE(::symlink("dangling target", fx.mnt("dangling").c_str()) == 0);
        REQUIRE(::mkfifo(fx.mnt("docs/fifo").c_str(), 0604) == 0);
        REQUIRE(::chown(fx.mnt("docs/readme.md").c_str(), 1234, 5678) == 0);
        REQUIRE(::chmod(fx.mnt("docs/readme.md").c_str(), 0600) == 0);
        const std::string binary("\0\xff\x01 %", 5);
        REQUIRE(::setxattr(fx.mnt("docs/readme.md").c_str(), "user.color", "blue", 4, 0) == 0);
        REQUIRE(::setxattr(fx.mnt("docs/readme.md").c_str(), "user.bytes", binary.data(),
                           binary.size(), 0) == 0);
        REQUIRE(::setxattr(fx.mnt("docs").c_str(), "user.dir", "d", 1, 0) == 0);
        set_times(fx.mnt("docs/readme.md"), 1400000000);
        set_times(fx.mnt("docs/deep"), 1300000000);
        set_times(fx.mnt("docs/sym"), 1200000000);
        for (const auto& [path, content] : files) {
            INFO("copy of " << path);
            REQUIRE(wait_copied(node, path, content));
        }
        // docs/top-link is never written through its own name: it has no object of its own,
        // and the restore links it to top.txt's.
        require_records_agree(node, fx.source());
        before_bytes = snapshot(fx.mountpoint(), true);
        fx.unmount();
    }
    auto before = snapshot(source, false);

    // Lose everything local.
    for (auto& p : std::filesystem::directory_iterator(source))
        std::filesystem::remove_all(p.path());
    std::filesystem::remove_all(dir / "state");

    opts.extra_opts.push_back("restore");
    MountFixture fx(opts);
    CHECK(snapshot(source, false) == before);
    // Placeholders hold no data: the bytes read through the mount come from Riak.
    struct stat st;
    REQUIRE(::stat((source + "/big.bin").c_str(), &st) == 0);
    CHECK(st.st_blocks * 512 < 65536);
    auto after_bytes = snapshot(fx.mountpoint(), true);
    // docs/top-link has no object of its own: its bytes come through the released inode.
    for (const auto& [path, d] : before_bytes)
        if (after_bytes[path] != d) UNSCOPED_INFO(path << ": " << d << " | " << after_bytes[path]);
    CHECK(after_bytes == before_bytes);
    // The records made from the restored tree agree too (and no first-start walk was needed).
    require_records_agree(node, fx.source());
}

TEST_CASE("restore: refused on a non-empty SOURCE, and fails in one line while Riak is down",
          "[namespace][restore]") {
    TempDir dir("riakfs-ns");
    RiakNode node(dir.path());
    std::string src = dir / "src", mnt = dir / "mnt";
    REQUIRE(::mkdir(src.c_str(), 0755) == 0);
    REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
    // In the foreground, and as a mount command run from a shell or fstab (the daemon goes to
    // the background): either way the command's status and stderr say what failed.
    bool foreground = GENERATE(true, false);
    INFO((foreground ? "-f" : "in the background"));
    auto run = [&](const std::string& state) {
        std::vector<std::string> argv = {daemon_bin(), src, mnt, "-o",
                                         "mode=shadow,restore,riak=" + node.url() +
                                             ",state_dir=" + state};
        if (foreground) argv.push_back("-f");
        return run_cmd(argv, 60s);
    };
    auto error_lines = [](const std::string& err) {
        std::vector<std::string> out;
        std::size_t at = 0;
        while (at < err.size()) {
            std::size_t end = err.find('\n', at);
            if (end == std::string::npos) end = err.size();
            std::string line = err.substr(at, end - at);
            if (line.find("ERROR") != std::string::npos || line.find("error") != std::string::npos)
                out.push_back(line);
            at = end + 1;
        }
        return out;
    };

    write_file(src + "/here", "not empty");
    ProcResult busy = run(dir / "state1");
    CHECK(busy.exited);
    CHECK(busy.exit_code == 1);
    auto lines = error_lines(busy.err);
    INFO(busy.err);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("empty SOURCE") != std::string::npos);
    CHECK_FALSE(is_fuse_mounted(mnt));

    std::filesystem::remove(src + "/here");
    node.stop();
    ProcResult down = run(dir / "state2");
    CHECK(down.exited);
    CHECK(down.exit_code == 1);
    lines = error_lines(down.err);
    INFO(down.err);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("cannot read the record of /") != std::string::npos);
    CHECK_FALSE(is_fuse_mounted(mnt));
    CHECK(std::filesystem::is_empty(src));
}

// A further name of a hard-linked file has no state record (one naming the first name's object
// would let its unlink delete that object): its reads go through the released inode's marker.
TEST_CASE("restore: every name of a hard-linked file reads its bytes", "[namespace][restore]") {
    TempDir dir("riakfs-ns");
    RiakNode node(dir.path());
    std::string source = dir / "source";
    REQUIRE(::mkdir(source.c_str(), 0755) == 0);
    MountOptions opts = riak_mount(node, dir, "migrate");
    opts.source_dir = source;
    {
        MountFixture fx(opts);
        REQUIRE(::mkdir(fx.mnt("d").c_str(), 0755) == 0);
        write_file(fx.mnt("z.txt"), "linked content");
        REQUIRE(::link(fx.mnt("z.txt").c_str(), fx.mnt("d/a-link").c_str()) == 0);
        REQUIRE(wait_copied(node, "z.txt", "linked content"));
        require_records_agree(node, fx.source());
        fx.unmount();
    }
    for (auto& p : std::filesystem::directory_iterator(source))
        std::filesystem::remove_all(p.path());
    std::filesystem::remove_all(dir / "state");
    opts.extra_opts.push_back("restore");
    MountFixture fx(opts);
    CHECK(read_file(fx.mnt("z.txt")) == "linked content");
    CHECK(read_file(fx.mnt("d/a-link")) == "linked content");
}

namespace {

// No copy work left: nothing queued, no record of a copy or release under way.
bool settled(const nlohmann::json& s) {
    const auto& r = s.at("records");
    return s.at("queue").at("copies") == 0 && s.at("queue").at("removals") == 0 &&
           r.at("dirty") == 0 && r.at("uploading") == 0 && r.at("copied") == 0 &&
           r.at("releasing") == 0;
}

// The objects of the data bucket are those the files of SOURCE hold: every plain key names a
// regular file (none left at a removed or renamed name; a further name of a hard-linked file has
// none of its own), and the chunk objects are exactly those the manifests name.
void require_no_orphan_objects(const RiakNode& node, const std::string& source) {
    std::set<std::string> files;
    for (auto& p : std::filesystem::recursive_directory_iterator(source))
        if (std::filesystem::is_regular_file(p.symlink_status()))
            files.insert(rfs::proto::escape_name(p.path().lexically_relative(source).string()));
    std::set<std::string> plain, chunks, named;
    std::string manifests; // for a failure's message: which key holds which version's chunks
    for (const auto& k : node.keys("riakfs")) {
        if (k.rfind(".riakfs/", 0) != 0)
            plain.insert(k);
        else if (node.get("/buckets/riakfs/keys/" + url_key(k)).status != 404)
            chunks.insert(k);
    }
    for (const auto& k : plain) {
        INFO("object " << k);
        HttpReply r = node.get("/buckets/riakfs/keys/" + url_key(k));
        // A deleted key is listed until its tombstone is reaped (as on Riak: delete_mode).
        if (r.status == 404) continue;
        REQUIRE(r.status == 200);
        CHECK(files.count(k) == 1);
        if (!r.has_header("x-riak-meta-riakfs-kind: manifest")) continue;
        auto manifest = layout::decode_manifest(r.body);
        REQUIRE(manifest);
        manifests +=
            "  " + k + ": " + manifest->version + ", size " + std::to_string(manifest->size) + "\n";
        for (std::uint64_t i = 0; i < manifest->chunks.size(); ++i)
            if (!manifest->is_hole(i)) named.insert(manifest->chunk_key(i));
    }
    INFO("manifests:\n" << manifests);
    CHECK(chunks == named);
}

// Whether the Riak modes refuse `op`, a RENAME_EXCHANGE: either name is a directory (natively)
// or a released placeholder (in SOURCE).
bool exchange_refused(const std::string& native, const std::string& source,
                      const riakfs::it::random_ops::Op& op) {
    for (const auto& p : {op.p1, op.p2}) {
        struct stat st;
        if (::lstat((native + "/" + p).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return true;
        if (has_marker(source + "/" + p)) return true;
    }
    return false;
}

// The tree read through the mount equals the native one (released files' bytes from Riak).
void require_same_tree(const std::string& native, const std::string& mnt, const std::string& when) {
    using namespace riakfs::it::random_ops;
    std::map<std::string, std::string> tn, tm;
    describe_tree(native, "", tn);
    describe_tree(mnt, "", tm);
    INFO(when << ", native vs mount:\n" << tree_diff(tn, tm));
    REQUIRE(tm == tn);
}

// Applies `op` natively and through the mount (an exchange the Riak modes refuse, through the
// mount only) and requires the same result; `log` gets the operation and its native result.
void apply_both(const std::string& native, const std::string& mnt, const std::string& source,
                const riakfs::it::random_ops::Op& op, std::vector<std::string>& log, int step) {
    using namespace riakfs::it::random_ops;
    int en = 0, em = 0;
    if (op.kind == kExchange) {
        // Refused in the Riak modes for a directory or a released file (README, "The Riak
        // modes"): then not made natively either.
        em = apply_op(mnt, op);
        if (em == EINVAL && exchange_refused(native, source, op)) {
            log.push_back(op.describe() + " -> refused");
            return;
        }
        en = apply_op(native, op);
    } else {
        en = apply_op(native, op);
        em = apply_op(mnt, op);
    }
    log.push_back(op.describe() + " -> " + errname(en));
    if (en != em) {
        const std::string tail = log_tail(log);
        INFO("step " << step << ": " << op.describe() << "\nlast ops (native result):\n" << tail);
        REQUIRE(errname(em) == errname(en));
    }
}

// After the round's operations: the copies settled, the tree, the namespace records and the
// data bucket agree; returns the tree's snapshot through the mount for the restore to match.
std::map<std::string, std::string> settle_and_check(const RiakNode& node, MountFixture& fx,
                                                    const std::string& native,
                                                    const std::vector<std::string>& log) {
    using namespace riakfs::it::random_ops;
    // The last pass read every file to its end: in mode=migrate that copies what was only ever
    // linked, truncated or renamed into place.
    wait_ctl_status(fx.mountpoint(), 30s, settled);
    // What the checks below find wrong may come from any operation of the round.
    INFO("the round's operations (native result):\n" << log_tail(log, log.size()));
    require_same_tree(native, fx.mountpoint(), "settled");
    require_records_agree(node, fx.source());
    require_no_orphan_objects(node, fx.source());
    return snapshot(fx.mountpoint(), true);
}

// Empties SOURCE and state_dir, mounts with restore, and requires the tree `mounted`.
void require_restored(const TempDir& dir, const std::string& source, MountOptions opts,
                      const std::map<std::string, std::string>& mounted) {
    using namespace riakfs::it::random_ops;
    for (auto& p : std::filesystem::directory_iterator(source))
        std::filesystem::remove_all(p.path());
    std::filesystem::remove_all(dir / "state");
    opts.extra_opts.push_back("restore");
    MountFixture fx(opts);
    auto restored = snapshot(fx.mountpoint(), true);
    for (const auto& [path, d] : mounted)
        if (restored[path] != d) UNSCOPED_INFO(path << ": " << d << " | " << restored[path]);
    CHECK(restored == mounted);
}

} // namespace

namespace {

// The directories every random round starts with, made natively and through the mount.
void make_start_dirs(const std::string& native, const MountFixture& fx) {
    for (const auto& d : {"a", "b", "a/c"}) {
        REQUIRE(::mkdir((native + "/" + d).c_str(), 0755) == 0);
        REQUIRE(::mkdir(fx.mnt(d).c_str(), 0755) == 0);
    }
}

// What the random mode=move tests share: a node, an empty SOURCE, the native tree beside it,
// and the options of a mode=move mount of SOURCE (small chunks, no cache; `more` besides).
struct MoveRig {
    explicit MoveRig(const std::string& name, const std::vector<std::string>& more = {})
        : dir("riakfs-" + name), native("riakfs-" + name + "-native"), node(dir.path()),
          source(dir / "source") {
        REQUIRE(::mkdir(source.c_str(), 0755) == 0);
        std::vector<std::string> all = {"chunk_size=4096", "cache=never"};
        all.insert(all.end(), more.begin(), more.end());
        opts = riak_mount(node, dir, "move", all);
        opts.source_dir = source;
    }
    TempDir dir, native;
    RiakNode node;
    std::string source;
    MountOptions opts;
};

// The kill -9 tests': a restart logs the copies, releases and removals it resumes.
struct CrashRig : MoveRig {
    explicit CrashRig(const std::string& name) : MoveRig(name) { opts.warnings_expected = true; }
};

} // namespace

// The operations of the differential test (random_ops.hpp: creates and writes at offsets up to
// 20 KB, so with 4 KiB chunks sparse manifests too, appends, truncates, renames and exchanges,
// hard and symbolic links, chmod, user xattrs) through a mode=move or mode=migrate mount and on a
// plain directory, with short pauses that let copies and releases run between them. Every
// result and, every 50 operations, the whole tree read through the mount must agree; then,
// with the copies settled, the tree again (released files' bytes from Riak), the namespace
// records, the data bucket (no orphan), and a restore from Riak alone into an empty SOURCE and
// state_dir.
TEST_CASE("namespace: random operation sequences in the Riak modes agree with native Linux, "
          "with Riak, and after a restore",
          "[namespace][differential][restore]") {
    using namespace riakfs::it::random_ops;
    const std::uint64_t base = rfs::test::fixed_or_test_seed("riak differential", 20261206);
    constexpr int kRounds = 4, kSteps = 200;
    for (std::uint64_t round = 0; round < kRounds; ++round) {
        const std::uint64_t seed = base + round;
        const std::string mode = round % 2 == 0 ? "move" : "migrate";
        INFO("mode=" << mode << ", seed " << seed << " (rerun with RIAKFS_TEST_SEED=" << seed
                     << ")");
        TempDir dir("riakfs-ns");
        TempDir native("riakfs-ns-native");
        RiakNode node(dir.path());
        std::string source = dir / "source";
        REQUIRE(::mkdir(source.c_str(), 0755) == 0);
        MountOptions opts = riak_mount(node, dir, mode, {"chunk_size=4096", "cache=never"});
        opts.source_dir = source;
        std::map<std::string, std::string> mounted;
        {
            MountFixture fx(opts);
            make_start_dirs(native.path(), fx);
            std::vector<std::string> log;
            std::mt19937_64 rng(seed);
            for (int step = 0; step < kSteps; ++step) {
                apply_both(native.path(), fx.mountpoint(), source, random_op(rng), log, step);
                if (rng() % 8 == 0)
                    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
                if (step % 50 == 49)
                    require_same_tree(native.path(), fx.mountpoint(),
                                      "after step " + std::to_string(step));
            }
            mounted = settle_and_check(node, fx, native.path(), log);
            fx.unmount();
        }
        require_restored(dir, source, opts, mounted);
    }
}

namespace {

// A handle held open across operations, natively and through the mount.
struct HeldHandle {
    int native = -1, mounted = -1;
    std::string path; // where it was opened
};

// Reads the whole file through each side's handle and requires the same bytes (or the same
// error), and the same size from fstat.
void require_same_through(const HeldHandle& h, const std::string& what) {
    auto read_all = [](int fd, std::string* out) {
        out->assign(64 << 10, '\0');
        ssize_t n = ::pread(fd, out->data(), out->size(), 0);
        if (n < 0) return errno;
        out->resize(static_cast<size_t>(n));
        return 0;
    };
    std::string bn, bm;
    int en = read_all(h.native, &bn), em = read_all(h.mounted, &bm);
    INFO(what << ": the handle opened at " << h.path);
    REQUIRE(errname(em) == errname(en));
    CHECK(bm.size() == bn.size());
    REQUIRE(digest(bm) == digest(bn));
    struct stat sn {
    }, sm{};
    REQUIRE(::fstat(h.native, &sn) == 0);
    REQUIRE(::fstat(h.mounted, &sm) == 0);
    CHECK(sm.st_size == sn.st_size);
}

} // namespace

// Handles held open across the differential test's operations, in mode=move with no memory for
// Riak's data: files are released between operations, so a held handle reads Riak's copy, and
// the operations unlink, rename over, truncate and write the files it is open on (writes
// through other handles fetch the data back, and the file is released again). Every read
// through a held handle must give what the same handle gives natively; then the copies settle
// and the bucket holds no orphan. Before the fixes that came with it, such reads failed with
// EIO once the file was released again, unlinked or replaced, or read zeros once it was
// released again under a handle that had found its data back.
TEST_CASE("namespace: handles held open across random operations in mode=move read what native "
          "Linux reads",
          "[namespace][differential][handles]") {
    using namespace riakfs::it::random_ops;
    const std::uint64_t seed = rfs::test::fixed_or_test_seed("riak held handles", 20261208);
    INFO("seed " << seed << " (rerun with RIAKFS_TEST_SEED=" << seed << ")");
    constexpr int kSteps = 300;
    constexpr size_t kMostHeld = 6;
    MoveRig rig("held", {"cache_size=0"});
    const TempDir& native = rig.native;
    const std::string& source = rig.source;
    MountFixture fx(rig.opts);
    make_start_dirs(native.path(), fx);
    std::vector<std::string> log;
    std::vector<HeldHandle> held;
    auto close_held = [&](size_t i) {
        ::close(held[i].native);
        ::close(held[i].mounted);
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
    };
    std::mt19937_64 rng(seed);
    for (int step = 0; step < kSteps; ++step) {
        const unsigned what = rng() % 10;
        if (what < 5 || (held.empty() && what >= 7)) {
            apply_both(native.path(), fx.mountpoint(), source, random_op(rng), log, step);
        } else if (what < 7) {
            if (held.size() >= kMostHeld) close_held(rng() % held.size());
            const std::string p = pick_path(rng);
            // Read-write sometimes: its writes are seen by the other handles of the file.
            const int flags = (rng() % 3 == 0 ? O_RDWR : O_RDONLY) | O_CLOEXEC;
            HeldHandle h;
            h.path = p;
            h.native = ::open((native.path() + "/" + p).c_str(), flags);
            const int en = h.native < 0 ? errno : 0;
            h.mounted = ::open(fx.mnt(p).c_str(), flags);
            const int em = h.mounted < 0 ? errno : 0;
            log.push_back("open " + p + ((flags & O_RDWR) ? " rw" : " ro") + " -> " + errname(en));
            if ((h.native < 0) != (h.mounted < 0)) {
                INFO("step " << step << "\n" << log_tail(log));
                FAIL("open " << p << ": native " << errname(en) << ", mount " << errname(em));
            }
            if (h.native >= 0) held.push_back(h);
        } else if (what < 9) {
            const HeldHandle& h = held[rng() % held.size()];
            if (rng() % 4 == 0) {
                // A write through the held handle (EBADF on a read-only one, on both sides).
                std::string data = random_bytes(1 + rng() % 3000, rng());
                const off_t at = static_cast<off_t>(rng() % 12000);
                const ssize_t wn = ::pwrite(h.native, data.data(), data.size(), at);
                const int en = wn < 0 ? errno : 0;
                const ssize_t wm = ::pwrite(h.mounted, data.data(), data.size(), at);
                const int em = wm < 0 ? errno : 0;
                log.push_back("pwrite through " + h.path + " -> " + errname(en));
                INFO("step " << step << "\n" << log_tail(log));
                REQUIRE(errname(em) == errname(en));
            }
            log.push_back("read through " + h.path);
            INFO("step " << step << "\n" << log_tail(log, 40));
            require_same_through(h, "step " + std::to_string(step));
        } else {
            close_held(rng() % held.size());
            log.push_back("close");
        }
        // Pauses in which copies and releases run.
        if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
    }
    for (const auto& h : held)
        require_same_through(h, "at the end");
    while (!held.empty())
        close_held(0);
    settle_and_check(rig.node, fx, native.path(), log);
}

// Crash safety of the namespace: the same operations through a mode=move mount, with the daemon
// killed (SIGKILL) right after an operation every 15-60 of them, while copies, releases and the
// namespace changes held behind them (a rename waits for a copy of its path) are under way.
// After each restart the tree read through the mount equals the native one; at the end, settled,
// the namespace records, the data bucket (no orphan) and a restore from Riak alone agree too.
TEST_CASE("namespace: kill -9 between random operations in mode=move loses nothing and leaves "
          "nothing behind",
          "[namespace][differential][crash]") {
    using namespace riakfs::it::random_ops;
    const std::uint64_t seed = rfs::test::fixed_or_test_seed("riak crash", 20261207);
    INFO("seed " << seed << " (rerun with RIAKFS_TEST_SEED=" << seed << ")");
    constexpr int kSteps = 400;
    CrashRig rig("ns-crash");
    const TempDir& dir = rig.dir;
    const TempDir& native = rig.native;
    const RiakNode& node = rig.node;
    const std::string& source = rig.source;
    const MountOptions& opts = rig.opts;
    std::map<std::string, std::string> mounted;
    std::vector<std::string> log;
    {
        auto fx = std::make_unique<MountFixture>(opts);
        make_start_dirs(native.path(), *fx);
        std::mt19937_64 rng(seed);
        int next_kill = 15 + static_cast<int>(rng() % 45), kills = 0;
        for (int step = 0; step < kSteps; ++step) {
            apply_both(native.path(), fx->mountpoint(), source, random_op(rng), log, step);
            if (step == next_kill) {
                fx->kill_daemon();
                fx.reset();
                log.push_back("-- kill -9, restart");
                ++kills;
                fx = std::make_unique<MountFixture>(opts);
                INFO("the operations so far (native result):\n" << log_tail(log, log.size()));
                require_same_tree(native.path(), fx->mountpoint(),
                                  "after the restart at step " + std::to_string(step));
                next_kill = step + 15 + static_cast<int>(rng() % 45);
            } else if (rng() % 8 == 0) {
                std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
            }
        }
        CHECK(kills >= 6);
        mounted = settle_and_check(node, *fx, native.path(), log);
        fx->unmount();
    }
    INFO("the operations (native result):\n" << log_tail(log, log.size()));
    require_restored(dir, source, opts, mounted);
}

namespace {

// Past the ids the mounts before wrote (theirs count from 1): an id the journal holds already
// would take that note's outcome or settled line.
constexpr std::uint64_t kFreshId = 1'000'000;

// A note as the daemon appends it to state_dir/namespace.journal (lib/migrate/intent_journal.cpp:
// a LEB128 length, then 'I', the id, the kind, both paths and two dev/ino pairs), for a restart
// to find as a crash would leave it.
void append_journal_note(const std::string& state_dir, std::uint64_t id, char kind,
                         const std::string& from, const std::string& to = "",
                         const struct stat* moving = nullptr) {
    auto varint = [](std::string& out, std::uint64_t v) {
        do {
            std::uint8_t b = v & 0x7f;
            v >>= 7;
            out.push_back(static_cast<char>(v ? b | 0x80 : b));
        } while (v);
    };
    std::string record = "I";
    varint(record, id);
    record.push_back(kind);
    for (const auto* p : {&from, &to}) {
        varint(record, p->size());
        record += *p;
    }
    varint(record, moving ? moving->st_dev : 0);
    varint(record, moving ? moving->st_ino : 0);
    varint(record, 0);
    varint(record, 0);
    std::string line;
    varint(line, record.size());
    line += record;
    std::ofstream out(state_dir + "/namespace.journal", std::ios::app | std::ios::binary);
    out << line;
}

// The line saying the intent `id` was made (SOURCE answered), as the daemon appends it.
void append_journal_made(const std::string& state_dir, std::uint64_t id) {
    std::string record = "M";
    for (std::uint64_t v = id;;) {
        std::uint8_t b = v & 0x7f;
        v >>= 7;
        record.push_back(static_cast<char>(v ? b | 0x80 : b));
        if (!v) break;
    }
    std::string line(1, static_cast<char>(record.size()));
    line += record;
    std::ofstream out(state_dir + "/namespace.journal", std::ios::app | std::ios::binary);
    out << line;
}

} // namespace

// The data loss a crash caused before the journal: a released file renamed just before the
// daemon died kept its record at the old name, and the next file made there had its object (the
// released file's only copy) replaced. Here the rename is made in SOURCE with the daemon
// stopped, and its intent (no outcome line: judged by SOURCE) left in the journal as a crash
// between the two would leave it.
TEST_CASE("namespace: a rename the daemon died before recording is recorded at the next start",
          "[namespace][crash][move]") {
    TempDir dir("riakfs-ns-journal");
    RiakNode node(dir.path());
    MountOptions opts = riak_mount(node, dir, "move");
    opts.source_dir = dir / "source";
    REQUIRE(::mkdir(opts.source_dir.c_str(), 0755) == 0);
    const std::string content = random_bytes(5000, 7);
    {
        MountFixture fx(opts);
        write_file(fx.mnt("a.txt"), content);
        REQUIRE(wait_released(fx.src("a.txt")));
        wait_ctl_status(fx.mountpoint(), 30s, settled);
    }
    const std::string src = opts.source_dir;
    REQUIRE(::rename((src + "/a.txt").c_str(), (src + "/b.txt").c_str()) == 0);
    struct stat moved;
    REQUIRE(::lstat((src + "/b.txt").c_str(), &moved) == 0);
    append_journal_note(dir / "state", kFreshId, 'r', "a.txt", "b.txt", &moved);
    MountFixture fx(opts);
    // A new file at the old name, copied (and released) under the key a.txt.
    write_file(fx.mnt("a.txt"), "the new a");
    REQUIRE(wait_copied(node, "a.txt", "the new a"));
    wait_ctl_status(fx.mountpoint(), 30s, settled);
    CHECK(read_file(fx.mnt("b.txt")) == content);
    CHECK(read_file(fx.mnt("a.txt")) == "the new a");
    require_records_agree(node, fx.source());
    require_no_orphan_objects(node, fx.source());
}

// Found by the mid-operation crash test (seed 2851): renames the daemon died before recording,
// replayed at the next start after SOURCE made all of them. A released file's directory renamed
// three times (a/c -> a/y -> a/a -> c): at the second, the record (dirty, its copy still at key
// a/c/b, to follow the file) could not be checked for a placeholder at a/a/b, gone since, and
// was taken for a changed file's: the object at a/c/b, the only copy, was removed with its
// chunks while the file moved on to c/b, whose reads then failed with EIO.
TEST_CASE("namespace: a released file's directory renamed three times before the daemon recorded "
          "it keeps its bytes",
          "[namespace][crash][move]") {
    TempDir dir("riakfs-ns-journal");
    RiakNode node(dir.path());
    MountOptions opts = riak_mount(node, dir, "move", {"chunk_size=4096"});
    opts.source_dir = dir / "source";
    REQUIRE(::mkdir(opts.source_dir.c_str(), 0755) == 0);
    const std::string content = random_bytes(13000, 9); // a manifest and 4 chunks
    {
        MountFixture fx(opts);
        REQUIRE(::mkdir(fx.mnt("a").c_str(), 0755) == 0);
        REQUIRE(::mkdir(fx.mnt("a/c").c_str(), 0755) == 0);
        write_file(fx.mnt("a/c/b"), content);
        REQUIRE(wait_released(fx.src("a/c/b")));
        wait_ctl_status(fx.mountpoint(), 30s, settled);
    }
    const std::string src = opts.source_dir;
    std::uint64_t id = kFreshId;
    for (auto [from, to] : {std::pair{"a/c", "a/y"}, {"a/y", "a/a"}, {"a/a", "c"}}) {
        REQUIRE(::rename((src + "/" + from).c_str(), (src + "/" + to).c_str()) == 0);
        struct stat moved;
        REQUIRE(::lstat((src + "/" + to).c_str(), &moved) == 0);
        append_journal_note(dir / "state", id, 'r', from, to, &moved);
        append_journal_made(dir / "state", id++);
    }
    MountFixture fx(opts);
    wait_ctl_status(fx.mountpoint(), 30s, settled);
    auto got = try_read_file(fx.mnt("c/b"));
    REQUIRE(got);
    CHECK(digest(*got) == digest(content));
    require_records_agree(node, fx.source());
    require_no_orphan_objects(node, fx.source());
}

// Changes noted once made (a file created, written and closed): the namespace record and the
// copy they call for are made at the next start if the daemon died before making them durable.
// Here the file is made in SOURCE with the daemon stopped, which no mount would ever see, and
// its notes left in the journal.
TEST_CASE("namespace: a create and a close the daemon died before recording are recorded at the "
          "next start",
          "[namespace][crash]") {
    TempDir dir("riakfs-ns-journal-close");
    RiakNode node(dir.path());
    MountOptions opts = riak_mount(node, dir, "migrate");
    opts.source_dir = dir / "source";
    REQUIRE(::mkdir(opts.source_dir.c_str(), 0755) == 0);
    {
        MountFixture fx(opts);
        REQUIRE(::mkdir(fx.mnt("d").c_str(), 0755) == 0);
        wait_ctl_status(fx.mountpoint(), 30s, settled);
        require_records_agree(node, fx.source());
    }
    write_file(opts.source_dir + "/d/new.txt", "made before the crash");
    append_journal_note(dir / "state", kFreshId, 'n', "d/new.txt");
    append_journal_note(dir / "state", kFreshId + 1, 'c', "d/new.txt");
    MountFixture fx(opts);
    REQUIRE(wait_copied(node, "d/new.txt", "made before the crash"));
    require_records_agree(node, fx.source());
}

namespace {

// Whether `op` writes data in several calls (create + write, append, O_TRUNC + write): cut by a
// crash, its file may hold any part of it.
bool writes_in_steps(const riakfs::it::random_ops::Op& op) {
    return op.kind == 0 || op.kind == 1 || op.kind == 14;
}

// The tree without `paths` (a file an operation cut short may have left in any state).
std::map<std::string, std::string> tree_without(std::map<std::string, std::string> tree,
                                                const std::set<std::string>& paths) {
    for (const auto& p : paths)
        tree.erase(p);
    return tree;
}

// Where, relative to `root`, a write through `rel` creates or writes its file: symlinks among
// its directories, and a dangling one at its end, resolved (a create through one makes the file
// where it points).
std::string written_path(const std::string& root, const std::string& rel) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path base = fs::canonical(root, ec);
    if (ec) return rel;
    fs::path at = fs::path(root) / rel;
    for (int hops = 0; hops < 8 && fs::is_symlink(fs::symlink_status(at, ec)); ++hops) {
        const fs::path target = fs::read_symlink(at, ec);
        if (ec) return rel;
        at = target.is_absolute() ? target : at.parent_path() / target;
    }
    at = fs::weakly_canonical(at, ec);
    if (ec) return rel;
    const fs::path inside = at.lexically_relative(base);
    if (inside.empty() || *inside.begin() == "..") return rel;
    return inside.string();
}

// The names of the file `rel` writes to in `root` (following a symlink): `rel`, the path it
// resolves to (the file a create through it makes) and every hard link of its target.
std::set<std::string> names_written(const std::string& root, const std::string& rel,
                                    const std::map<std::string, std::string>& tree) {
    std::set<std::string> out{rel, written_path(root, rel)};
    struct stat target;
    if (::stat((root + "/" + rel).c_str(), &target) != 0) return out;
    for (const auto& [path, d] : tree) {
        struct stat st;
        if (::lstat((root + "/" + path).c_str(), &st) == 0 && st.st_dev == target.st_dev &&
            st.st_ino == target.st_ino)
            out.insert(path);
    }
    return out;
}

} // namespace

// Crash safety at any moment: the same operations through a mode=move mount from a thread,
// with the daemon killed (SIGKILL) at a random moment, usually in the middle of an operation
// (a rename, an exchange waiting for a release, a truncate fetching a released file back). After
// the restart the tree read through the mount must equal the native one as it was before the
// operation cut short, or after it; only a file being written may hold any part of its write.
// At the end, settled, the namespace records, the data bucket and a restore must agree too.
TEST_CASE("namespace: kill -9 at random moments of random operations in mode=move loses "
          "nothing",
          "[namespace][differential][crash]") {
    using namespace riakfs::it::random_ops;
    const std::uint64_t seed = rfs::test::fixed_or_test_seed("riak crash mid-op", 20261208);
    INFO("seed " << seed << " (rerun with RIAKFS_TEST_SEED=" << seed << ")");
    constexpr int kKills = 8;
    CrashRig rig("ns-midop");
    const TempDir& dir = rig.dir;
    const TempDir& native = rig.native;
    const RiakNode& node = rig.node;
    const std::string& source = rig.source;
    const MountOptions& opts = rig.opts;
    std::mt19937_64 rng(seed);
    std::vector<std::string> log;
    auto fx = std::make_unique<MountFixture>(opts);
    make_start_dirs(native.path(), *fx);
    int cut = 0;
    for (int kill = 0; kill < kKills; ++kill) {
        // The operations of this round, made from another thread until the mount goes away.
        std::vector<Op> ops;
        for (int i = 0; i < 400; ++i)
            ops.push_back(random_op(rng));
        std::optional<Op> in_flight;
        std::string mismatch;
        std::mt19937_64 pauses(rng()); // the worker's own: rng stays this thread's
        std::thread worker([&, mnt = fx->mountpoint()] {
            for (const Op& op : ops) {
                // Through the mount first: a call the crash answers (ENOTCONN) was not made
                // natively.
                int em = apply_op(mnt, op);
                if (em == ENOTCONN || em == ECONNABORTED) {
                    in_flight = op;
                    return;
                }
                if (op.kind == kExchange && em == EINVAL &&
                    exchange_refused(native.path(), source, op)) {
                    log.push_back(op.describe() + " -> refused");
                    continue;
                }
                int en = apply_op(native.path(), op);
                log.push_back(op.describe() + " -> " + errname(en));
                if (en != em) {
                    mismatch = op.describe() + ": native " + errname(en) + ", mount " +
                               errname(em) + "\nthe operations so far (native result):\n" +
                               log_tail(log, log.size());
                    return;
                }
                if (pauses() % 8 == 0)
                    std::this_thread::sleep_for(std::chrono::milliseconds(pauses() % 20));
            }
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 400));
        fx->kill_daemon();
        worker.join();
        INFO(mismatch);
        REQUIRE(mismatch.empty());
        fx.reset();
        fx = std::make_unique<MountFixture>(opts);
        INFO("the operations so far (native result):\n" << log_tail(log, log.size()));
        std::map<std::string, std::string> before, mounted;
        describe_tree(native.path(), "", before);
        describe_tree(fx->mountpoint(), "", mounted);
        if (in_flight) ++cut;
        if (in_flight && mounted != before) {
            // Made (in part, for a write): what it leaves natively, in a copy of the tree.
            TempDir after_dir("riakfs-ns-midop-after");
            const std::string copy = after_dir / "t";
            REQUIRE(run_cmd({"cp", "-a", native.path(), copy}, 30s).exit_code == 0);
            (void)apply_op(copy, *in_flight);
            std::map<std::string, std::string> after;
            describe_tree(copy, "", after);
            const std::string& p1 = in_flight->p1;
            INFO("cut short: " << in_flight->describe() << "\nbefore it, native vs mount:\n"
                               << tree_diff(before, mounted) << "after it, native vs mount:\n"
                               << tree_diff(after, mounted));
            if (mounted == after) {
                (void)apply_op(native.path(), *in_flight);
            } else {
                REQUIRE(writes_in_steps(*in_flight));
                const auto written = names_written(native.path(), p1, before);
                auto rest = tree_without(mounted, written);
                REQUIRE((rest == tree_without(before, written) ||
                         rest == tree_without(after, written)));
                // The native file takes what the write left through the mount (through p1:
                // its symlink's target, for all its names).
                if (auto data = try_read_file(fx->mnt(p1))) {
                    struct stat st;
                    REQUIRE(::stat(fx->mnt(p1).c_str(), &st) == 0);
                    int fd = ::open((native / p1).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
                    REQUIRE(fd >= 0);
                    REQUIRE(::write(fd, data->data(), data->size()) ==
                            static_cast<ssize_t>(data->size()));
                    ::close(fd);
                    REQUIRE(::chmod((native / p1).c_str(), st.st_mode & 07777) == 0);
                } else {
                    std::filesystem::remove(native / p1);
                }
            }
            log.push_back("  (cut short by the kill, made: " + in_flight->describe() + ")");
        }
        log.push_back("-- kill -9, restart");
        require_same_tree(native.path(), fx->mountpoint(),
                          "after the restart of kill " + std::to_string(kill));
    }
    // The kills did cut operations short (the others fell between two).
    CHECK(cut >= kKills / 2);
    auto mounted = settle_and_check(node, *fx, native.path(), log);
    fx->unmount();
    require_restored(dir, source, opts, mounted);
}

} // namespace test_namespace_riak
