#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "lib/layout/crc32.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/layout/sha256.hpp"

using namespace rfs::layout;
using json = nlohmann::json;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_manifest {

namespace {

const std::string kVersion = make_version_at(1'700'000'000'000'000'000ull, 42);

// A format 1 manifest: each stored chunk with its SHA-256 and CRC-32.
Manifest filled(std::uint64_t size, std::uint64_t chunk_size) {
    Manifest m = Manifest::for_file(size, chunk_size, kVersion);
    m.sha256 = sha256_hex("whole");
    for (std::size_t i = 0; i < m.chunks.size(); ++i)
        if (i % 3 != 1) { // every third a hole
            m.chunks[i] = sha256_hex(std::to_string(i));
            m.crc32[i] = rfs::layout::crc32_of(std::to_string(i));
        }
    return m;
}

// What the uploader writes (format 2): stored chunks with a CRC-32 and no digest.
Manifest filled_without_digests(std::uint64_t size, std::uint64_t chunk_size) {
    Manifest m = filled(size, chunk_size);
    for (auto& chunk : m.chunks)
        if (chunk) chunk->clear();
    return m;
}

// Manifests made by `make` for files of several sizes (empty, one short chunk, chunk
// boundaries, many chunks) decode to what was encoded.
void round_trips(Manifest (*make)(std::uint64_t, std::uint64_t)) {
    for (std::uint64_t size : {0ull, 3ull, 4ull, 5ull, 4097ull}) {
        Manifest m = make(size, 4);
        std::string body = encode_manifest(m);
        auto back = decode_manifest(body);
        INFO(body);
        REQUIRE(back);
        CHECK(*back == m);
    }
}

std::string error_of(const json& doc) {
    auto r = decode_manifest(doc.dump());
    INFO(doc.dump());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == EINVAL);
    return r.error().message;
}

} // namespace

TEST_CASE("chunk keys derive from the version", "[manifest]") {
    CHECK(chunk_prefix_for(kVersion) == ".riakfs/chunks/" + kVersion + "/");
    CHECK(chunk_key(chunk_prefix_for("v"), 0) == ".riakfs/chunks/v/0");
    CHECK(chunk_key("p/", 12345678901ull) == "p/12345678901");
    auto m = Manifest::for_file(10, 4, kVersion);
    CHECK(m.chunk_prefix == chunk_prefix_for(kVersion));
    CHECK(m.chunk_key(2) == chunk_prefix_for(kVersion) + "2");
}

TEST_CASE("chunk counts and ranges at the boundaries", "[manifest]") {
    const std::uint64_t C = 1 << 20;
    CHECK_FALSE(needs_manifest(0, C));
    CHECK_FALSE(needs_manifest(C - 1, C));
    CHECK_FALSE(needs_manifest(C, C));
    CHECK(needs_manifest(C + 1, C));

    CHECK(Manifest::chunk_count(0, C) == 0);
    CHECK(Manifest::chunk_count(C - 1, C) == 1);
    CHECK(Manifest::chunk_count(C, C) == 1);
    CHECK(Manifest::chunk_count(C + 1, C) == 2);
    CHECK(Manifest::chunk_count(2 * C, C) == 2);

    auto m = Manifest::for_file(C + 1, C, kVersion);
    CHECK(m.chunks.size() == 2);
    CHECK(m.is_hole(0));
    CHECK(m.chunk_range(0) == ChunkRange{0, C});
    CHECK(m.chunk_range(1) == ChunkRange{C, 1});
    CHECK(m.chunk_range(2) == ChunkRange{C + 1, 0});

    auto exact = Manifest::for_file(C, C, kVersion);
    CHECK(exact.chunk_range(0) == ChunkRange{0, C});
    CHECK(exact.chunk_range(1) == ChunkRange{C, 0});
    CHECK(Manifest::for_file(C - 1, C, kVersion).chunk_range(0) == ChunkRange{0, C - 1});
    CHECK(Manifest::for_file(0, C, kVersion).chunk_range(0) == ChunkRange{0, 0});
}

TEST_CASE("chunks_for covers exactly the chunks a read touches", "[manifest]") {
    auto m = Manifest::for_file(10, 4, kVersion); // chunks [0,4) [4,8) [8,10)
    CHECK(m.chunks_for(0, 1) == ChunkSpan{0, 1});
    CHECK(m.chunks_for(0, 4) == ChunkSpan{0, 1});
    CHECK(m.chunks_for(0, 5) == ChunkSpan{0, 2});
    CHECK(m.chunks_for(3, 2) == ChunkSpan{0, 2});
    CHECK(m.chunks_for(4, 4) == ChunkSpan{1, 2});
    CHECK(m.chunks_for(7, 100) == ChunkSpan{1, 3}); // clipped at EOF
    CHECK(m.chunks_for(9, 1) == ChunkSpan{2, 3});
    CHECK(m.chunks_for(10, 1).empty()); // at EOF
    CHECK(m.chunks_for(50, 1).empty());
    CHECK(m.chunks_for(2, 0).empty());
    CHECK(m.chunks_for(0, UINT64_MAX) == ChunkSpan{0, 3}); // no overflow
    CHECK(m.chunks_for(5, UINT64_MAX) == ChunkSpan{1, 3});
}

TEST_CASE("multi-GiB and huge sizes are plain arithmetic", "[manifest]") {
    const std::uint64_t C = 1 << 20;
    const std::uint64_t size = 5ull * 1024 * 1024 * 1024 + 17; // 5 GiB + 17
    CHECK(Manifest::chunk_count(size, C) == 5 * 1024 + 1);
    Manifest m;
    m.size = size;
    m.chunk_size = C;
    CHECK(m.chunk_range(5 * 1024) == ChunkRange{5ull << 30, 17});
    CHECK(m.chunk_range(5 * 1024 - 1) == ChunkRange{(5ull << 30) - C, C});
    CHECK(m.chunks_for((5ull << 30) - 1, 2) == ChunkSpan{5 * 1024 - 1, 5 * 1024 + 1});

    m.size = UINT64_MAX;
    m.chunk_size = kMaxChunkSize;
    const std::uint64_t last = Manifest::chunk_count(UINT64_MAX, kMaxChunkSize) - 1;
    CHECK(m.chunk_range(last).offset + m.chunk_range(last).length == UINT64_MAX);
    CHECK(m.chunks_for(UINT64_MAX - 1, UINT64_MAX) == ChunkSpan{last, last + 1});
}

TEST_CASE("format 1 manifests (chunk digests) round-trip with holes", "[manifest]") {
    round_trips(filled);
    Manifest m = filled(9, 4);
    json doc = json::parse(encode_manifest(m));
    CHECK(doc["format"] == "riakfs-manifest/1");
    CHECK(doc["size"] == 9);
    CHECK(doc["chunk_size"] == 4);
    CHECK(doc["chunks"].size() == 3);
    CHECK(doc["chunks"][1].is_null());
    CHECK(doc["chunk_prefix"] == ".riakfs/chunks/" + kVersion + "/");
    CHECK(decode_manifest(encode_manifest(m))->is_hole(1));
    CHECK_FALSE(decode_manifest(encode_manifest(m))->is_hole(0));
    CHECK(doc["crc32"].size() == 3);
    CHECK(doc["crc32"][0] == rfs::layout::crc32_of("0"));
    CHECK(doc["crc32"][1].is_null());
    CHECK(decode_manifest(encode_manifest(m))->chunk_crc32(2) == rfs::layout::crc32_of("2"));
    CHECK_FALSE(decode_manifest(encode_manifest(m))->chunk_crc32(1));

    // A manifest written before the CRC-32s: the same, without them (readers check SHA-256s).
    doc.erase("crc32");
    auto old = decode_manifest(doc.dump());
    REQUIRE(old);
    CHECK(old->crc32.empty());
    CHECK_FALSE(old->chunk_crc32(0));
    CHECK(old->chunks == m.chunks);
    CHECK(json::parse(encode_manifest(*old)).count("crc32") == 0);
}

TEST_CASE("crc32_of is zlib's CRC-32", "[manifest]") {
    CHECK(rfs::layout::crc32_of("") == 0);
    CHECK(rfs::layout::crc32_of("123456789") == 0xCBF43926u); // the polynomial's check value
}

TEST_CASE("decoding garbage or inconsistent manifests gives errors", "[manifest]") {
    for (std::string_view garbage : {"", "null", "[]", "{", "\xff\xfe", "{\"format\":1}", "42"})
        CHECK_FALSE(decode_manifest(garbage));

    const json good = json::parse(encode_manifest(filled(9, 4)));
    auto with = [&](const char* member, json value) {
        json doc = good;
        doc[member] = std::move(value);
        return doc;
    };
    auto without = [&](const char* member) {
        json doc = good;
        doc.erase(member);
        return doc;
    };
    for (const char* member :
         {"format", "size", "chunk_size", "sha256", "version", "chunk_prefix", "chunks"})
        CHECK(error_of(without(member)).find(member) != std::string::npos);

    CHECK(error_of(with("format", "riakfs-manifest/3")).find("unsupported format") !=
          std::string::npos);
    CHECK(error_of(with("extra", 1)).find("unknown member") != std::string::npos);
    error_of(with("size", -1));
    error_of(with("size", 9.5));
    error_of(with("size", "9"));
    error_of(with("size", 13)); // needs 4 chunks, 3 listed
    error_of(with("size", 8));  // needs 2 chunks
    error_of(with("chunk_size", 0));
    error_of(with("chunk_size", kMaxChunkSize + 1));
    CHECK(decode_manifest(with("chunk_size", 3).dump())); // 9 bytes in 3-byte chunks: 3 chunks
    error_of(with("sha256", "abc"));
    error_of(with("sha256", std::string(64, 'F')));
    error_of(with("version", "v1"));
    error_of(with("chunk_prefix", ".riakfs/chunks/other/"));
    error_of(with("chunks", json::object()));
    error_of(with("chunks", json::array({nullptr, nullptr, 5})));
    error_of(with("chunks", json::array({nullptr, nullptr, "abc"})));
    error_of(with("chunks", json::array({nullptr, nullptr})));
    error_of(with("chunks", json::array({nullptr, nullptr, nullptr, nullptr})));
    // CRC-32s (chunks 0 and 2 are stored, 1 is a hole): as long as the chunks, a 32-bit number
    // for each stored chunk and null for each hole.
    CHECK(decode_manifest(with("crc32", json::array({0, nullptr, 0xffffffffu})).dump()));
    error_of(with("crc32", json::object()));
    error_of(with("crc32", json::array({1, nullptr})));
    error_of(with("crc32", json::array({1, nullptr, 2, 3})));
    error_of(with("crc32", json::array({1, 2, 3})));             // a number for the hole
    error_of(with("crc32", json::array({nullptr, nullptr, 3}))); // null for a stored chunk
    error_of(with("crc32", json::array({-1, nullptr, 3})));
    error_of(with("crc32", json::array({0x100000000ull, nullptr, 3})));
    error_of(with("crc32", json::array({"1", nullptr, 3})));
    error_of(with("crc32", json::array({1.5, nullptr, 3})));
}

TEST_CASE("format 2 manifests: CRC-32s mark and check the chunks, no chunk digests", "[manifest]") {
    round_trips(filled_without_digests);
    Manifest m = filled_without_digests(9, 4);
    json doc = json::parse(encode_manifest(m));
    CHECK(doc["format"] == "riakfs-manifest/2");
    CHECK(doc.count("chunks") == 0);
    CHECK(doc["crc32"] == json::array({crc32_of("0"), nullptr, crc32_of("2")}));
    CHECK(doc["sha256"] == sha256_hex("whole"));
    auto back = decode_manifest(doc.dump());
    REQUIRE(back);
    CHECK(back->is_hole(1));
    CHECK_FALSE(back->is_hole(0));
    CHECK(back->chunks[0] == std::string());
    CHECK(back->chunk_crc32(2) == crc32_of("2"));

    // A stored chunk without a CRC-32 has nothing to be checked by: written as format 1 (which
    // the decoder then refuses for its empty digest, rather than losing the chunk's check).
    Manifest unchecked = m;
    unchecked.crc32[0].reset();
    CHECK(json::parse(encode_manifest(unchecked))["format"] == "riakfs-manifest/1");
    CHECK_FALSE(decode_manifest(encode_manifest(unchecked)));

    auto with = [&](const char* member, json value) {
        json d = doc;
        d[member] = std::move(value);
        return d;
    };
    json no_crcs = doc;
    no_crcs.erase("crc32");
    CHECK(error_of(no_crcs).find("crc32") != std::string::npos);
    CHECK(error_of(with("chunks", json::array({nullptr, nullptr, nullptr}))).find("format 1") !=
          std::string::npos);
    error_of(with("crc32", json::array({1, nullptr})));
    error_of(with("crc32", json::array({1, nullptr, "3"})));
    error_of(with("crc32", json::array({0x100000000ull, nullptr, 3})));
    CHECK(decode_manifest(with("crc32", json::array({nullptr, nullptr, nullptr})).dump())
              ->is_hole(0)); // every chunk a hole: a sparse file
}

TEST_CASE("a chunk is checked by its CRC-32, else by its SHA-256", "[manifest]") {
    Manifest m = filled_without_digests(9, 4);
    CHECK(m.chunk_check(0).matches("0"));
    CHECK_FALSE(m.chunk_check(0).matches("1"));
    CHECK_FALSE(m.chunk_check(1).matches(""));  // a hole: never fetched, matches nothing
    CHECK_FALSE(m.chunk_check(7).matches("7")); // past the end

    Manifest old = filled(9, 4); // format 1 without CRC-32s: the digests are the check
    old.crc32.clear();
    CHECK(old.chunk_check(2).matches("2"));
    CHECK_FALSE(old.chunk_check(2).matches("0"));
    CHECK(filled(9, 4).chunk_check(2).crc32 == crc32_of("2")); // with both, the cheap one
}

} // namespace test_manifest
