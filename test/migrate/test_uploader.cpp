// upload_and_verify against the in-memory store: layout of small and chunked files, holes,
// boundaries, replaced versions, failures and files changing during the copy.
#include "lib/migrate/uploader.hpp"

#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/layout/sha256.hpp"
#include "test/migrate/migrate_test_support.hpp"
#include "test/store/store_test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

using namespace rfs;
using migrate::test::TempTree;
using store::test::run_task;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_uploader {

namespace {

struct Fixture {
    TempTree tree;
    boost::asio::io_context ioc;
    store::MemoryObjectStore mem{ioc};

    riak::Result<migrate::UploadOutcome> upload(const std::string& rel, std::uint64_t chunk_size,
                                                const struct stat* snapshot = nullptr,
                                                bool expect_new = false) {
        int fd = ::open(tree.src(rel).c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        migrate::UploadInput in;
        in.rel_path = rel;
        in.location = *layout::Mapper::default_layout().map(rel);
        in.fd = fd;
        REQUIRE(::fstat(fd, &in.snapshot) == 0);
        if (snapshot) in.snapshot = *snapshot;
        in.chunk_size = chunk_size;
        in.version = layout::make_version();
        in.expect_new = expect_new;
        auto out = run_task(ioc, migrate::upload_and_verify(mem, std::move(in)));
        ::close(fd);
        return out;
    }
    store::Fetched get(const std::string& key) {
        return *run_task(ioc, mem.get(proto::ObjectId{"", "riakfs", key}));
    }
    std::set<std::string> keys() {
        auto list = run_task(ioc, mem.list_keys(proto::BucketId{"", "riakfs"}));
        return std::set<std::string>(list->begin(), list->end());
    }
    // Reassembles a chunked file from its manifest and chunks, as another client would (each
    // chunk checked by its CRC-32; the callers compare the whole).
    std::string reassemble(const std::string& key) {
        auto manifest = layout::decode_manifest(get(key).object.value);
        REQUIRE(manifest);
        std::string out;
        for (std::uint64_t i = 0; i < manifest->chunks.size(); ++i) {
            auto range = manifest->chunk_range(i);
            if (manifest->is_hole(i)) {
                out.append(range.length, '\0');
                continue;
            }
            auto chunk = get(manifest->chunk_key(i));
            REQUIRE(chunk.found);
            CHECK(manifest->chunk_check(i).matches(chunk.object.value));
            out += chunk.object.value;
        }
        return out;
    }
};

std::string pattern(std::size_t n, char seed = 'a') {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>(seed + i % 23);
    return s;
}

} // namespace

TEST_CASE("a small file is one object at its path key, with its attributes", "[uploader]") {
    Fixture fx;
    fx.tree.write("dir/a.txt", "hello riak");
    ::chmod(fx.tree.src("dir/a.txt").c_str(), 0640);
    auto out = fx.upload("dir/a.txt", 1 << 20);
    REQUIRE(out);
    CHECK_FALSE(out->changed);
    auto got = fx.get("dir/a.txt");
    REQUIRE(got.found);
    CHECK(got.object.value == "hello riak");
    auto meta = layout::decode_meta(got.object.meta);
    REQUIRE(meta);
    CHECK(meta->kind == layout::FileMeta::Kind::whole);
    CHECK(meta->sha256 == layout::sha256_hex("hello riak"));
    CHECK(meta->sha256 == out->sha256);
    CHECK(meta->size == 10);
    CHECK((meta->mode & 07777) == 0640);
    CHECK(meta->path == "dir/a.txt");
    CHECK(meta->version == out->version);
    CHECK(fx.keys() == std::set<std::string>{"dir/a.txt"});
}

TEST_CASE("empty files and files at the chunk boundary", "[uploader]") {
    Fixture fx;
    const std::uint64_t chunk = 1000;
    for (std::uint64_t size : {std::uint64_t(0), std::uint64_t(1), chunk - 1, chunk, chunk + 1,
                               3 * chunk, 3 * chunk + 7}) {
        INFO("size " << size);
        std::string name = "f" + std::to_string(size);
        std::string data = pattern(size);
        fx.tree.write(name, data);
        auto out = fx.upload(name, chunk);
        REQUIRE(out);
        auto meta = layout::decode_meta(fx.get(name).object.meta);
        REQUIRE(meta);
        CHECK(meta->size == size);
        CHECK(meta->sha256 == layout::sha256_hex(data));
        if (size <= chunk) {
            CHECK(meta->kind == layout::FileMeta::Kind::whole);
            CHECK(fx.get(name).object.value == data);
        } else {
            CHECK(meta->kind == layout::FileMeta::Kind::manifest);
            CHECK(fx.reassemble(name) == data);
        }
    }
}

TEST_CASE("chunks of zeros are holes, not objects", "[uploader]") {
    Fixture fx;
    std::string data = pattern(1000) + std::string(2000, '\0') + pattern(500, 'k');
    fx.tree.write("sparse", data);
    auto out = fx.upload("sparse", 1000);
    REQUIRE(out);
    CHECK(out->bytes_sent == 1500);
    auto manifest = layout::decode_manifest(fx.get("sparse").object.value);
    REQUIRE(manifest);
    CHECK_FALSE(manifest->is_hole(0));
    CHECK(manifest->is_hole(1));
    CHECK(manifest->is_hole(2));
    CHECK_FALSE(manifest->is_hole(3));
    CHECK(fx.keys().size() == 3); // manifest + 2 chunks
    CHECK(fx.reassemble("sparse") == data);
}

TEST_CASE("chunks in the file's holes are not read: holes in the manifest, the digest of the "
          "whole file",
          "[uploader]") {
    Fixture fx;
    // 64 KiB chunks (the file system reports holes by its blocks): data, three chunks of hole,
    // data across a chunk boundary, zeros written as data (a hole in the manifest all the same),
    // a hole up to a short last chunk that ends in data.
    constexpr std::uint64_t kChunk = 65536;
    std::string data(8 * kChunk + 1234, '\0');
    const std::string head = pattern(5000), across = pattern(3000, 'x'), tail = pattern(200, 't');
    data.replace(0, head.size(), head);
    data.replace(5 * kChunk - 1000, across.size(), across);
    data.replace(data.size() - tail.size(), tail.size(), tail);
    {
        int fd =
            ::open(fx.tree.src("holes").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        auto put = [&](std::uint64_t at, std::string_view bytes) {
            REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at)) ==
                    static_cast<ssize_t>(bytes.size()));
        };
        put(0, head);
        put(5 * kChunk - 1000, across);
        put(6 * kChunk, std::string(kChunk, '\0'));
        put(data.size() - tail.size(), tail);
        ::close(fd);
    }
    auto out = fx.upload("holes", kChunk);
    REQUIRE(out);
    CHECK(out->sha256 == layout::sha256_hex(data));
    CHECK(out->bytes_sent == 3 * kChunk + 1234);
    auto manifest = layout::decode_manifest(fx.get("holes").object.value);
    REQUIRE(manifest);
    REQUIRE(manifest->chunks.size() == 9);
    for (std::uint64_t i : {0, 4, 5, 8})
        CHECK_FALSE(manifest->is_hole(i));
    for (std::uint64_t i : {1, 2, 3, 6, 7})
        CHECK(manifest->is_hole(i));
    CHECK(fx.reassemble("holes") == data);
}

TEST_CASE("a new version replaces the old one's chunks: no orphans", "[uploader]") {
    Fixture fx;
    fx.tree.write("big", pattern(5000));
    REQUIRE(fx.upload("big", 1000));
    CHECK(fx.keys().size() == 6);
    fx.tree.write("big", pattern(3000, 'q'));
    auto out = fx.upload("big", 1000);
    REQUIRE(out);
    CHECK(out->chunks_removed == 5);
    CHECK(fx.keys().size() == 4);
    CHECK(fx.reassemble("big") == pattern(3000, 'q'));
    // From chunked to whole: every chunk goes.
    fx.tree.write("big", "small now");
    out = fx.upload("big", 1000);
    REQUIRE(out);
    CHECK(fx.keys() == std::set<std::string>{"big"});
}

TEST_CASE("a path never copied is written create-only, without reading its key first",
          "[uploader]") {
    using Op = store::MemoryObjectStore::Op;
    Fixture fx;
    fx.tree.write("new.txt", "fresh");
    fx.mem.clear_calls();
    auto out = fx.upload("new.txt", 1000, nullptr, true);
    REQUIRE(out);
    // The store's put_and_read (here put then get; on Riak one PUT with returnbody). No HEAD.
    std::vector<Op> ops;
    for (const auto& c : fx.mem.calls())
        ops.push_back(c.op);
    CHECK(ops == std::vector<Op>{Op::put, Op::get});
    CHECK(fx.get("new.txt").object.value == "fresh");
}

TEST_CASE("create-only meeting an existing key reads it and writes over it, leaving no orphans",
          "[uploader]") {
    Fixture fx;
    fx.tree.write("big", pattern(5000));
    REQUIRE(fx.upload("big", 1000));
    CHECK(fx.keys().size() == 6);
    // The state was lost (or another client wrote the key): the uploader expects a new key.
    fx.tree.write("big", pattern(3000, 'q'));
    auto out = fx.upload("big", 1000, nullptr, true);
    REQUIRE(out);
    CHECK(out->chunks_removed == 5);
    CHECK(fx.keys().size() == 4);
    CHECK(fx.reassemble("big") == pattern(3000, 'q'));
    fx.tree.write("big", "small now");
    out = fx.upload("big", 1000, nullptr, true);
    REQUIRE(out);
    CHECK(fx.get("big").object.value == "small now");
    CHECK(fx.keys() == std::set<std::string>{"big"});
}

TEST_CASE("a failing store is an error, never a copy", "[uploader]") {
    Fixture fx;
    fx.tree.write("f", "data");
    fx.mem.fail_next(1, riak::Errc::connection_refused);
    CHECK_FALSE(fx.upload("f", 1000));
    fx.mem.set_unreachable(true);
    fx.tree.write("g", pattern(4000));
    auto out = fx.upload("g", 1000);
    REQUIRE_FALSE(out);
    CHECK(out.error().to_errno() != 0);
    fx.mem.set_unreachable(false);
    CHECK(fx.upload("g", 1000));
}

TEST_CASE("a file that changed during the copy is reported changed", "[uploader]") {
    Fixture fx;
    fx.tree.write("f", "version one");
    struct stat older;
    REQUIRE(::stat(fx.tree.src("f").c_str(), &older) == 0);
    older.st_mtim.tv_sec -= 10; // what the caller saw before a write
    auto out = fx.upload("f", 1000, &older);
    REQUIRE(out);
    CHECK(out->changed);
    // A file that shrank under a chunked copy is changed too, and nothing half-read is kept.
    fx.tree.write("g", pattern(3000));
    struct stat bigger;
    REQUIRE(::stat(fx.tree.src("g").c_str(), &bigger) == 0);
    bigger.st_size = 5000;
    out = fx.upload("g", 1000, &bigger);
    REQUIRE(out);
    CHECK(out->changed);
}

} // namespace test_uploader
