// RiakReader against the in-memory store: whole objects, chunked reads across chunk boundaries,
// holes, reads past the end, the cache bound, readahead, and every kind of failure falling back
// to the local file.
#include "lib/migrate/riak_reader.hpp"

#include "lib/layout/crc32.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/layout/sha256.hpp"
#include "lib/migrate/uploader.hpp"
#include "test/migrate/migrate_test_support.hpp"
#include "test/store/store_test_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <random>
#include <thread>

using namespace rfs;
using migrate::test::GatedStore;
using migrate::test::TempTree;
using store::test::run_task;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_riak_reader {

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string out(n, '\0');
    for (auto& c : out)
        c = static_cast<char>(rng());
    return out;
}

std::int64_t ns_of(const timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

struct Fixture {
    TempTree tree;
    boost::asio::io_context ioc;
    store::MemoryObjectStore mem{ioc};
    std::shared_ptr<migrate::RiakReader> reader;
    std::vector<int> fds;

    explicit Fixture(std::uint64_t cache_size = 256 << 20, bool readahead = true,
                     std::chrono::milliseconds retry_after = std::chrono::milliseconds(0)) {
        migrate::ReaderOptions options;
        options.retry_after = retry_after;
        options.cache_size = cache_size;
        options.readahead = readahead;
        reader = std::make_shared<migrate::RiakReader>(ioc, mem, options);
    }
    ~Fixture() {
        for (int fd : fds)
            ::close(fd);
    }

    // Writes `data` as `rel`, copies it as the Migrator does, and returns its state record.
    state::FileState copy(const std::string& rel, const std::string& data,
                          std::uint64_t chunk_size) {
        tree.write(rel, data);
        int fd = open(rel);
        migrate::UploadInput in;
        in.rel_path = rel;
        in.location = *layout::Mapper::default_layout().map(rel);
        in.fd = fd;
        REQUIRE(::fstat(fd, &in.snapshot) == 0);
        in.chunk_size = chunk_size;
        in.version = layout::make_version();
        auto st = in.snapshot;
        auto loc = in.location;
        auto out = run_task(ioc, migrate::upload_and_verify(mem, std::move(in)));
        REQUIRE(out);
        state::FileState rec;
        rec.phase = state::Phase::verified;
        rec.version = out->version;
        rec.sha256 = out->sha256;
        rec.type = loc.type;
        rec.bucket = loc.bucket;
        rec.key = loc.key;
        rec.size = static_cast<std::uint64_t>(st.st_size);
        rec.mtime_ns = ns_of(st.st_mtim);
        rec.ctime_ns = ns_of(st.st_ctim);
        rec.dev = st.st_dev;
        rec.ino = st.st_ino;
        mem.clear_calls();
        return rec;
    }
    int open(const std::string& rel) {
        int fd = ::open(tree.src(rel).c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        fds.push_back(fd);
        return fd;
    }
    riak::Result<std::string> fetch(const state::FileState& rec, std::uint64_t off,
                                    std::uint64_t size) {
        return run_task(ioc, reader->fetch(rec, off, size));
    }
    migrate::Served read(const state::FileState& rec, int fd, std::uint64_t off,
                         std::uint64_t size) {
        return run_task(ioc, reader->read_or_local(rec, fd, off, size));
    }
    std::size_t gets() const {
        std::size_t n = 0;
        for (auto& c : mem.calls())
            n += c.op == store::MemoryObjectStore::Op::get;
        return n;
    }
    void put_raw(const state::FileState& rec, const std::string& key, store::Object object) {
        auto put = run_task(ioc, mem.put(proto::ObjectId{rec.type, rec.bucket, key},
                                         std::move(object), store::PutOptions{}));
        REQUIRE(put);
    }
    store::Fetched get_raw(const state::FileState& rec, const std::string& key) {
        return *run_task(ioc, mem.get(proto::ObjectId{rec.type, rec.bucket, key}));
    }
};

constexpr std::uint64_t kChunk = 4096;

} // namespace

TEST_CASE("a read waiting for a prefetch hears when it lands, or when riak_timeout passed") {
    using Wait = migrate::RiakReader::Wait;
    Fixture f;
    std::string data = random_bytes(3000, 21);
    auto rec = f.copy("w.bin", data, kChunk);
    GatedStore gated(f.ioc);
    const proto::ObjectId id{rec.type, rec.bucket, rec.key};
    REQUIRE(run_task(f.ioc, gated.mem.put(id, f.get_raw(rec, rec.key).object, {})));
    migrate::ReaderOptions options;
    options.riak_timeout = std::chrono::milliseconds(200);
    auto reader = std::make_shared<migrate::RiakReader>(f.ioc, gated, options);
    std::vector<Wait> ended;
    auto note = [&](Wait w) { ended.push_back(w); };
    auto run_until = [&](std::size_t n) {
        f.ioc.restart();
        while (ended.size() < n)
            REQUIRE(f.ioc.run_one_for(std::chrono::seconds(5)) == 1);
    };

    CHECK_FALSE(reader->when_prefetched(rec, note)); // nothing on its way

    // Riak does not answer: the waiter hears after riak_timeout (a quarter late at most).
    gated.close(GatedStore::Gate::get);
    reader->prefetch(rec);
    REQUIRE(reader->when_prefetched(rec, note));
    const auto t0 = std::chrono::steady_clock::now();
    run_until(1);
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(ended[0] == Wait::timed_out);
    CHECK(waited >= std::chrono::milliseconds(200));
    CHECK(waited < std::chrono::seconds(2));
    CHECK_FALSE(reader->cached_read(rec, 0, 100));

    // The fetch went on; a waiter registered now hears when it lands, and finds the bytes.
    REQUIRE(reader->when_prefetched(rec, note));
    gated.open(GatedStore::Gate::get);
    run_until(2);
    CHECK(ended[1] == Wait::fetched);
    auto hit = reader->cached_read(rec, 0, 100);
    REQUIRE(hit);
    CHECK(std::string(hit->data, hit->size) == data.substr(0, 100));
    CHECK_FALSE(reader->when_prefetched(rec, note)); // cached: nothing to wait for

    // The timer behind the timeouts stops once nothing is on its way: the loop runs dry.
    f.ioc.restart();
    f.ioc.run();
    CHECK(ended.size() == 2);
}

TEST_CASE("a prefetch made on the calling loop is answered there, not on the reader's loop") {
    using Wait = migrate::RiakReader::Wait;
    Fixture f; // f.ioc and f.mem: the reader's own loop and store (the migration loop's)
    std::string data = random_bytes(3000, 22);
    auto rec = f.copy("here.bin", data, kChunk);
    // Another loop with a store of its own (a FUSE loop and its Riak client).
    boost::asio::io_context here;
    GatedStore here_store(here);
    const proto::ObjectId id{rec.type, rec.bucket, rec.key};
    REQUIRE(run_task(here, here_store.mem.put(id, f.get_raw(rec, rec.key).object, {})));
    here_store.mem.clear_calls();
    f.mem.clear_calls(); // get_raw's GET
    std::vector<Wait> ended;
    auto note = [&](Wait w) { ended.push_back(w); };

    f.reader->prefetch_here(rec, here, here_store);
    f.reader->prefetch_here(rec, here, here_store); // on its way: not fetched twice
    f.reader->prefetch(rec);                        // nor by the reader's loop
    REQUIRE(f.reader->when_prefetched(rec, note));
    here.restart();
    while (ended.empty())
        REQUIRE(here.run_one_for(std::chrono::seconds(5)) == 1);
    CHECK(ended[0] == Wait::fetched);
    auto hit = f.reader->cached_read(rec, 0, 4096);
    REQUIRE(hit);
    CHECK(std::string(hit->data, hit->size) == data);
    CHECK(here_store.mem.calls().size() == 1); // the one GET, made on `here`
    // The reader's loop only ran the waiters' expiry timer (which ends once none waits).
    f.ioc.restart();
    f.ioc.run();
    CHECK(f.gets() == 0);
    CHECK(ended.size() == 1);
    f.reader->prefetch_here(rec, here, here_store); // cached: nothing to fetch
    here.restart();
    here.poll();
    CHECK(here_store.mem.calls().size() == 1);

    SECTION("a manifest found there has its first chunk fetched on the reader's loop") {
        std::string big = random_bytes(3 * kChunk, 23);
        auto brec = f.copy("big.bin", big, kChunk);
        auto manifest = f.get_raw(brec, brec.key);
        REQUIRE(run_task(
            here, here_store.mem.put({brec.type, brec.bucket, brec.key}, manifest.object, {})));
        here_store.mem.clear_calls();
        f.mem.clear_calls();
        f.reader->prefetch_here(brec, here, here_store);
        here.restart();
        here.run();
        CHECK(here_store.mem.calls().size() == 1); // the manifest
        f.ioc.restart();
        f.ioc.run();
        CHECK(f.gets() == 1); // its first chunk, from the reader's store
        auto first = f.reader->cached_read(brec, 0, kChunk);
        REQUIRE(first);
        CHECK(std::string(first->data, first->size) == big.substr(0, kChunk));
    }
    SECTION("a loop destroyed with its fetch unfinished drops the waiters, uncalled") {
        std::string other = random_bytes(2000, 24);
        auto orec = f.copy("other.bin", other, kChunk);
        std::vector<Wait> dropped;
        {
            boost::asio::io_context gone;
            GatedStore gone_store(gone);
            gone_store.close(GatedStore::Gate::get);
            f.reader->prefetch_here(orec, gone, gone_store);
            REQUIRE(f.reader->when_prefetched(orec, [&](Wait w) { dropped.push_back(w); }));
            gone.poll(); // the GET waits at the closed gate
            CHECK(gone_store.held.load());
        }
        CHECK(dropped.empty());
        // Nothing is on its way any more: a new prefetch may start one.
        CHECK_FALSE(f.reader->when_prefetched(orec, [](Wait) {}));
    }
}

TEST_CASE("a whole object is read from Riak, in pieces, with one GET") {
    Fixture f;
    std::string data = random_bytes(3000, 1);
    auto rec = f.copy("a.bin", data, kChunk);
    auto got = f.fetch(rec, 0, 1000);
    REQUIRE(got);
    CHECK(*got == data.substr(0, 1000));
    got = f.fetch(rec, 1000, 5000); // clipped at the end of the file
    REQUIRE(got);
    CHECK(*got == data.substr(1000));
    CHECK(f.gets() == 1); // the second read came from the cache
    CHECK(f.reader->stats().cache_hits == 1);
}

TEST_CASE("reads past the end of the file are empty; an empty file needs no GET") {
    Fixture f;
    std::string data = random_bytes(10000, 2);
    auto rec = f.copy("big.bin", data, kChunk);
    auto got = f.fetch(rec, 10000, 4096);
    REQUIRE(got);
    CHECK(got->empty());
    got = f.fetch(rec, 50000, 1);
    REQUIRE(got);
    CHECK(got->empty());
    CHECK(f.gets() == 0);
    auto empty = f.copy("empty", "", kChunk);
    got = f.fetch(empty, 0, 4096);
    REQUIRE(got);
    CHECK(got->empty());
}

TEST_CASE("chunked reads across chunk boundaries fetch only the chunks they touch") {
    Fixture f(256 << 20, /*readahead=*/false);
    std::string data = random_bytes(5 * kChunk + 123, 3);
    auto rec = f.copy("big.bin", data, kChunk);
    // Bytes 4000..8200: chunks 0, 1 and 2.
    auto got = f.fetch(rec, 4000, 4200);
    REQUIRE(got);
    CHECK(*got == data.substr(4000, 4200));
    CHECK(f.gets() == 1 + 3); // the manifest, then chunks 0..2
    f.mem.clear_calls();
    got = f.fetch(rec, 5 * kChunk - 10, 1000); // the short last chunk, clipped
    REQUIRE(got);
    CHECK(*got == data.substr(5 * kChunk - 10));
    CHECK(f.gets() == 2); // chunks 4 and 5 (the manifest is cached)
    // Every offset and size combination around the boundaries.
    for (std::uint64_t off : {0ul, 1ul, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk - 7}) {
        for (std::uint64_t len : {1ul, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk}) {
            auto piece = f.fetch(rec, off, len);
            REQUIRE(piece);
            CHECK(*piece == data.substr(off, len));
        }
    }
}

TEST_CASE("holes read as zeros and are never fetched") {
    Fixture f(256 << 20, false);
    std::string data =
        random_bytes(kChunk, 4) + std::string(2 * kChunk, '\0') + random_bytes(kChunk / 2, 5);
    auto rec = f.copy("sparse.bin", data, kChunk);
    auto got = f.fetch(rec, kChunk + 10, kChunk);
    REQUIRE(got);
    CHECK(*got == std::string(kChunk, '\0'));
    CHECK(f.gets() == 1); // the manifest only
    got = f.fetch(rec, 0, data.size());
    REQUIRE(got);
    CHECK(*got == data);
}

TEST_CASE("a sequential reader has the next chunk fetched ahead, once") {
    Fixture f;
    std::string data = random_bytes(4 * kChunk, 6);
    auto rec = f.copy("seq.bin", data, kChunk);
    std::string all;
    for (std::uint64_t off = 0; off < data.size(); off += 1024) {
        auto got = f.fetch(rec, off, 1024);
        REQUIRE(got);
        all += *got;
    }
    CHECK(all == data);
    CHECK(f.gets() == 1 + 4); // every chunk once, ahead of the reader or not
    CHECK(f.reader->stats().readaheads >= 2);
}

TEST_CASE("a sequential reader's passed chunks leave the cache; small files stay") {
    // 40 chunks: more than a quarter of the cache, so drop-behind applies.
    Fixture f(64 * kChunk);
    std::string small = random_bytes(kChunk / 2, 11);
    auto rec_small = f.copy("small.bin", small, kChunk);
    REQUIRE(f.fetch(rec_small, 0, kChunk));
    const std::uint64_t small_cached = f.reader->cached_bytes();
    REQUIRE(small_cached == small.size());

    std::string data = random_bytes(40 * kChunk, 12);
    auto rec = f.copy("stream.bin", data, kChunk);
    std::string all;
    std::uint64_t most_cached = 0;
    for (std::uint64_t off = 0; off < data.size(); off += 1024) {
        auto got = f.fetch(rec, off, 1024);
        REQUIRE(got);
        all += *got;
        most_cached = std::max(most_cached, f.reader->cached_bytes());
    }
    f.ioc.restart();
    f.ioc.run(); // what was fetched ahead lands
    CHECK(all == data);
    CHECK(f.gets() == 1 + 40); // the manifest and each chunk once: none dropped too early
    // The chunk being read, the one before it, and those fetched ahead (3) are all it holds.
    CHECK(most_cached <= small_cached + 6 * kChunk + 4096);
    CHECK(f.reader->stats().dropped_behind >= 30);
    // The small file was not pushed out by the stream.
    REQUIRE(f.fetch(rec_small, 0, kChunk));
    CHECK(f.gets() == 1 + 40);

    // A file up to a quarter of the cache stays whole: read again, it costs no GET.
    std::string part = random_bytes(16 * kChunk, 13);
    auto rec_part = f.copy("part.bin", part, kChunk);
    for (int pass = 0; pass < 2; ++pass)
        for (std::uint64_t off = 0; off < part.size(); off += 1024)
            REQUIRE(f.fetch(rec_part, off, 1024));
    f.ioc.restart();
    f.ioc.run();
    CHECK(f.gets() == 1 + 16);

    // Reads that are not sequential keep what they fetched.
    Fixture g;
    auto rec_g = g.copy("random.bin", data, kChunk);
    for (std::uint64_t i : {7, 2, 30, 15, 21}) {
        REQUIRE(g.fetch(rec_g, i * kChunk + 100, 200));
    }
    g.ioc.restart();
    g.ioc.run();
    CHECK(g.reader->stats().dropped_behind == 0);
}

TEST_CASE("the cache never holds more than cache_size bytes") {
    const std::uint64_t limit = 3 * kChunk + 100;
    Fixture f(limit);
    std::string data = random_bytes(20 * kChunk, 7);
    auto rec = f.copy("big.bin", data, kChunk);
    std::string small = random_bytes(kChunk - 1, 8);
    auto rec_small = f.copy("small.bin", small, kChunk);
    std::mt19937 rng(9);
    for (int i = 0; i < 200; ++i) {
        std::uint64_t off = rng() % data.size();
        std::uint64_t len = 1 + rng() % (2 * kChunk);
        auto got = f.fetch(rec, off, len);
        REQUIRE(got);
        CHECK(*got == data.substr(off, len));
        REQUIRE(f.reader->cached_bytes() <= limit);
        if (i % 7 == 0) {
            auto s = f.fetch(rec_small, 0, kChunk);
            REQUIRE(s);
            CHECK(*s == small);
            REQUIRE(f.reader->cached_bytes() <= limit);
        }
    }
    CHECK(f.reader->cached_bytes() > 0);
    // An object larger than the whole cache is served and not kept.
    Fixture tiny(100);
    auto rec2 = tiny.copy("x.bin", small, kChunk);
    auto got = tiny.fetch(rec2, 0, kChunk);
    REQUIRE(got);
    CHECK(*got == small);
    CHECK(tiny.reader->cached_bytes() == 0);
}

TEST_CASE("chunks fetched ahead count against cache_size while on their way") {
    // Readahead keeps up to a quarter of the cache on its way: 3 chunks here.
    const std::uint64_t limit = 12 * kChunk + 100;
    Fixture f(limit);
    std::string data = random_bytes(48 * kChunk, 10);
    auto rec = f.copy("ahead.bin", data, kChunk);
    // The bound is checked after every handler the loop runs, so also while chunks fetched
    // ahead have their room but not yet their answer.
    std::size_t checks_in_flight = 0;
    auto run_checking = [&](auto done) {
        f.ioc.restart();
        while (!done()) {
            REQUIRE(f.ioc.run_one_for(std::chrono::seconds(10)) == 1);
            const std::uint64_t reserved = f.reader->reserved_bytes();
            checks_in_flight += reserved > 0;
            REQUIRE(f.reader->cached_bytes() + reserved <= limit);
        }
    };
    for (std::uint64_t off = 0; off < data.size(); off += kChunk) {
        std::optional<riak::Result<std::string>> got;
        boost::asio::co_spawn(
            f.ioc, f.reader->fetch(rec, off, kChunk),
            [&](std::exception_ptr, riak::Result<std::string> r) { got.emplace(std::move(r)); });
        run_checking([&] { return got.has_value(); });
        REQUIRE(*got);
        CHECK(**got == data.substr(off, kChunk));
    }
    f.ioc.restart();
    f.ioc.run(); // the last chunks fetched ahead land
    CHECK(checks_in_flight > 0);
    CHECK(f.reader->reserved_bytes() == 0); // every reservation went into an entry or away
    CHECK(f.reader->cached_bytes() <= limit);
}

TEST_CASE("a corrupted chunk is detected and the read falls back to the local file") {
    Fixture f(256 << 20, false);
    std::string data = random_bytes(3 * kChunk, 10);
    auto rec = f.copy("big.bin", data, kChunk);
    auto manifest = layout::decode_manifest(f.get_raw(rec, rec.key).object.value);
    REQUIRE(manifest);
    store::Object bad;
    bad.value = random_bytes(kChunk, 11); // same size, other bytes
    bad.content_type = "application/octet-stream";
    f.put_raw(rec, manifest->chunk_key(1), bad);
    auto got = f.fetch(rec, kChunk, 100);
    REQUIRE(!got);
    CHECK(got.error().to_errno() == EBADMSG);
    int fd = f.open("big.bin");
    auto served = f.read(rec, fd, kChunk - 50, 200);
    CHECK(served.err == 0);
    CHECK(!served.from_riak);
    REQUIRE(served.error);
    CHECK(served.data == data.substr(kChunk - 50, 200));
    // The good chunk 0 still reads from Riak.
    served = f.read(rec, fd, 0, 100);
    CHECK(served.from_riak);
    CHECK(served.data == data.substr(0, 100));
}

TEST_CASE("chunks are checked by their CRC-32, or by their SHA-256 in a manifest without them") {
    Fixture f(256 << 20, false);
    std::string data = random_bytes(3 * kChunk, 20);
    auto rec = f.copy("big.bin", data, kChunk);
    auto stored = f.get_raw(rec, rec.key);
    auto manifest = layout::decode_manifest(stored.object.value);
    REQUIRE(manifest);
    REQUIRE(manifest->chunk_crc32(1) == layout::crc32_of(data.substr(kChunk, kChunk)));
    // One bit flipped in chunk 1: its CRC-32 tells.
    auto chunk = f.get_raw(rec, manifest->chunk_key(1));
    chunk.object.value[kChunk / 2] ^= 4;
    f.put_raw(rec, manifest->chunk_key(1), chunk.object);
    auto got = f.fetch(rec, kChunk, 100);
    REQUIRE(!got);
    CHECK(got.error().to_errno() == EBADMSG);
    CHECK(got.error().message.find("CRC-32") != std::string::npos);

    // The manifest as written before the CRC-32s (riakfs-manifest/1: chunk digests, no
    // "crc32"), read by a fresh reader: chunk 0 reads, and the flipped bit is found by the
    // SHA-256.
    layout::Manifest old = *manifest;
    for (std::uint64_t i = 0; i < old.chunks.size(); ++i)
        old.chunks[i] = layout::sha256_hex(data.substr(i * kChunk, kChunk));
    old.crc32.clear();
    stored.object.value = layout::encode_manifest(old);
    REQUIRE(nlohmann::json::parse(stored.object.value)["format"] == "riakfs-manifest/1");
    f.put_raw(rec, rec.key, stored.object);
    migrate::ReaderOptions options;
    options.readahead = false;
    f.reader = std::make_shared<migrate::RiakReader>(f.ioc, f.mem, options);
    auto first = f.fetch(rec, 0, 100);
    REQUIRE(first);
    CHECK(*first == data.substr(0, 100));
    got = f.fetch(rec, kChunk, 100);
    REQUIRE(!got);
    CHECK(got.error().message.find("SHA-256") != std::string::npos);
}

TEST_CASE("a corrupted whole object is detected") {
    Fixture f;
    std::string data = random_bytes(1000, 12);
    auto rec = f.copy("a.bin", data, kChunk);
    auto stored = f.get_raw(rec, rec.key);
    stored.object.value[10] ^= 1; // same metadata and version, one bit flipped
    f.put_raw(rec, rec.key, stored.object);
    auto got = f.fetch(rec, 0, 100);
    REQUIRE(!got);
    CHECK(got.error().to_errno() == EBADMSG);
    auto served = f.read(rec, f.open("a.bin"), 0, 2000);
    CHECK(!served.from_riak);
    CHECK(served.data == data);
}

TEST_CASE("another version in Riak is reported stale and the local file is read") {
    Fixture f;
    std::string data = random_bytes(1000, 13);
    auto rec = f.copy("a.bin", data, kChunk);
    auto newer = rec;
    newer.version = layout::make_version(); // what someone else wrote since
    auto got = f.fetch(newer, 0, 100);
    REQUIRE(!got);
    CHECK(got.error().to_errno() == ESTALE);
    auto served = f.read(newer, f.open("a.bin"), 0, 100);
    CHECK(!served.from_riak);
    CHECK(served.data == data.substr(0, 100));
}

TEST_CASE("store failures fall back to the local file, never zeros or a short read") {
    Fixture f;
    std::string data = random_bytes(3 * kChunk + 5, 14);
    auto rec = f.copy("big.bin", data, kChunk);
    int fd = f.open("big.bin");
    f.mem.set_unreachable(true);
    auto served = f.read(rec, fd, 100, 2 * kChunk);
    CHECK(served.err == 0);
    CHECK(!served.from_riak);
    REQUIRE(served.error);
    CHECK(served.data == data.substr(100, 2 * kChunk));
    served = f.read(rec, fd, 3 * kChunk, kChunk); // at the end: short only because of EOF
    CHECK(served.data == data.substr(3 * kChunk));
    f.mem.set_unreachable(false);
    f.mem.fail_next(1, riak::Errc::server_error);
    served = f.read(rec, fd, 0, 10);
    CHECK(!served.from_riak);
    CHECK(served.data == data.substr(0, 10));
    served = f.read(rec, fd, 0, 10); // Riak answers again
    CHECK(served.from_riak);
    CHECK(served.data == data.substr(0, 10));
}

TEST_CASE("a local file that changed since its copy is read locally") {
    Fixture f;
    std::string data = random_bytes(1000, 15);
    auto rec = f.copy("a.bin", data, kChunk);
    int fd = f.open("a.bin");
    CHECK(f.read(rec, fd, 0, 10).from_riak);
    f.tree.write("a.bin", "new content"); // same inode, new size and times
    auto served = f.read(rec, fd, 0, 100);
    CHECK(!served.from_riak);
    CHECK(served.changed);
    CHECK(served.data == "new content");
}

TEST_CASE("after Riak failed, reads stay local for retry_after without asking it") {
    Fixture f(256 << 20, true, std::chrono::milliseconds(300));
    std::string data = random_bytes(100, 16);
    auto rec = f.copy("a.bin", data, kChunk);
    int fd = f.open("a.bin");
    f.mem.fail_next(1, riak::Errc::connection_refused);
    CHECK(!f.read(rec, fd, 0, 100).from_riak);
    f.mem.clear_calls();
    auto served = f.read(rec, fd, 0, 100);
    CHECK(!served.from_riak);
    CHECK(served.data == data);
    CHECK(f.mem.calls().empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    served = f.read(rec, fd, 0, 100);
    CHECK(served.from_riak);
    CHECK(served.data == data);
}

} // namespace test_riak_reader
