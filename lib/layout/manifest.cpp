#include "lib/layout/manifest.hpp"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/layout/crc32.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/layout/sha256.hpp"

namespace rfs::layout {

using json = nlohmann::json;

std::string chunk_prefix_for(std::string_view version) {
    return fmt::format(".riakfs/chunks/{}/", version);
}

std::string chunk_key(std::string_view chunk_prefix, std::uint64_t index) {
    return fmt::format("{}{}", chunk_prefix, index);
}

std::string parked_key(std::string_view version) {
    return fmt::format(".riakfs/moving/{}", version);
}

Manifest Manifest::for_file(std::uint64_t size, std::uint64_t chunk_size, std::string version) {
    Manifest m;
    m.size = size;
    m.chunk_size = chunk_size;
    m.chunk_prefix = chunk_prefix_for(version);
    m.version = std::move(version);
    m.chunks.resize(chunk_count(size, chunk_size));
    m.crc32.resize(m.chunks.size());
    return m;
}

std::uint64_t Manifest::chunk_count(std::uint64_t size, std::uint64_t chunk_size) {
    if (chunk_size == 0) return 0;
    return size / chunk_size + (size % chunk_size != 0 ? 1 : 0);
}

ChunkRange Manifest::chunk_range(std::uint64_t index) const {
    if (chunk_size == 0 || index >= chunk_count(size, chunk_size)) return {size, 0};
    std::uint64_t offset = index * chunk_size;
    return {offset, std::min(chunk_size, size - offset)};
}

ChunkSpan Manifest::chunks_for(std::uint64_t offset, std::uint64_t length) const {
    if (chunk_size == 0 || length == 0 || offset >= size) return {0, 0};
    std::uint64_t last_byte = offset + std::min(length, size - offset) - 1;
    return {offset / chunk_size, last_byte / chunk_size + 1};
}

std::string Manifest::chunk_key(std::uint64_t index) const {
    return layout::chunk_key(chunk_prefix, index);
}

namespace {

// Format 2 fits: no stored chunk has a digest, and each has a CRC-32 to be checked by.
bool fits_format_2(const Manifest& m) {
    if (m.crc32.size() != m.chunks.size()) return false;
    for (std::size_t i = 0; i < m.chunks.size(); ++i)
        if (m.chunks[i] && (!m.chunks[i]->empty() || !m.crc32[i])) return false;
    return true;
}

} // namespace

std::string encode_manifest(const Manifest& m) {
    json crcs = json::array();
    for (const auto& c : m.crc32)
        crcs.push_back(c ? json(*c) : json(nullptr));
    const bool digests = !fits_format_2(m);
    json doc = {
        {"format", digests ? kManifestFormatWithDigests : kManifestFormat},
        {"size", m.size},
        {"chunk_size", m.chunk_size},
        {"sha256", m.sha256},
        {"version", m.version},
        {"chunk_prefix", m.chunk_prefix},
    };
    if (digests) {
        json chunks = json::array();
        for (const auto& c : m.chunks)
            chunks.push_back(c ? json(*c) : json(nullptr));
        doc["chunks"] = std::move(chunks);
    }
    if (!digests || !m.crc32.empty()) doc["crc32"] = std::move(crcs); // format 2 needs them
    return doc.dump();
}

bool ChunkCheck::matches(std::string_view value) const {
    if (crc32) return crc32_of(value) == *crc32;
    return !sha256.empty() && sha256_hex(value) == sha256;
}

ChunkCheck Manifest::chunk_check(std::uint64_t index) const {
    ChunkCheck check;
    if (index >= chunks.size() || !chunks[index]) return check;
    check.crc32 = chunk_crc32(index);
    if (!check.crc32) check.sha256 = *chunks[index];
    return check;
}

namespace {

proto::Error fail(std::string_view what) {
    return proto::make_error(EINVAL, "manifest: {}", what);
}

Result<std::uint64_t> unsigned_member(const json& doc, const char* name) {
    auto it = doc.find(name);
    if (it == doc.end()) return proto::make_error(EINVAL, "manifest: missing \"{}\"", name);
    if (!it->is_number_unsigned())
        return proto::make_error(EINVAL, "manifest: \"{}\" must be a non-negative integer", name);
    return it->get<std::uint64_t>();
}

Result<std::string> string_member(const json& doc, const char* name) {
    auto it = doc.find(name);
    if (it == doc.end()) return proto::make_error(EINVAL, "manifest: missing \"{}\"", name);
    if (!it->is_string())
        return proto::make_error(EINVAL, "manifest: \"{}\" must be a string", name);
    return it->get<std::string>();
}

} // namespace

Result<Manifest> decode_manifest(std::string_view body) {
    json doc;
    try {
        doc = json::parse(body);
    } catch (const json::exception& e) {
        return proto::make_error(EINVAL, "manifest: bad JSON: {}", e.what());
    }
    if (!doc.is_object()) return fail("not a JSON object");
    for (const auto& [name, value] : doc.items()) {
        static constexpr std::string_view known[] = {
            "format", "size", "chunk_size", "sha256", "version", "chunk_prefix", "chunks", "crc32"};
        if (std::find(std::begin(known), std::end(known), name) == std::end(known))
            return proto::make_error(EINVAL, "manifest: unknown member \"{}\"", name);
    }
    auto format = string_member(doc, "format");
    if (!format) return std::move(format).error();
    const bool digests = *format == kManifestFormatWithDigests;
    if (!digests && *format != kManifestFormat)
        return proto::make_error(EINVAL, "manifest: unsupported format \"{}\"", *format);

    Manifest m;
    auto size = unsigned_member(doc, "size");
    if (!size) return std::move(size).error();
    auto chunk_size = unsigned_member(doc, "chunk_size");
    if (!chunk_size) return std::move(chunk_size).error();
    m.size = *size;
    m.chunk_size = *chunk_size;
    if (m.chunk_size == 0 || m.chunk_size > kMaxChunkSize)
        return proto::make_error(EINVAL, "manifest: chunk_size {} outside 1..{}", m.chunk_size,
                                 kMaxChunkSize);

    auto sha = string_member(doc, "sha256");
    if (!sha) return std::move(sha).error();
    if (!is_sha256_hex(*sha)) return fail("sha256 is not 64 lowercase hex digits");
    m.sha256 = std::move(*sha);
    auto version = string_member(doc, "version");
    if (!version) return std::move(version).error();
    if (!is_valid_version(*version)) return fail("version is not a version stamp");
    m.version = std::move(*version);
    auto prefix = string_member(doc, "chunk_prefix");
    if (!prefix) return std::move(prefix).error();
    if (*prefix != chunk_prefix_for(m.version)) return fail("chunk_prefix does not match version");
    m.chunk_prefix = std::move(*prefix);

    const std::uint64_t expected = Manifest::chunk_count(m.size, m.chunk_size);
    auto chunks = doc.find("chunks");
    if (!digests) {
        if (chunks != doc.end()) return fail("\"chunks\" belongs to format 1");
    } else {
        if (chunks == doc.end()) return fail("missing \"chunks\"");
        if (!chunks->is_array()) return fail("\"chunks\" must be an array");
        if (chunks->size() != expected)
            return proto::make_error(EINVAL, "manifest: {} chunks listed, size {} needs {}",
                                     chunks->size(), m.size, expected);
        m.chunks.reserve(chunks->size());
        for (std::size_t i = 0; i < chunks->size(); ++i) {
            const json& c = (*chunks)[i];
            if (c.is_null()) {
                m.chunks.emplace_back();
            } else if (c.is_string() && is_sha256_hex(c.get_ref<const std::string&>())) {
                m.chunks.emplace_back(c.get<std::string>());
            } else {
                return proto::make_error(EINVAL, "manifest: chunk {} is neither null nor a digest",
                                         i);
            }
        }
    }
    auto crcs = doc.find("crc32");
    if (crcs == doc.end()) {
        if (!digests) return fail("missing \"crc32\"");
        return m;
    }
    if (!crcs->is_array()) return fail("\"crc32\" must be an array");
    if (crcs->size() != expected)
        return proto::make_error(EINVAL, "manifest: {} CRC-32s listed for {} chunks", crcs->size(),
                                 expected);
    if (!digests) m.chunks.resize(expected); // filled below: a hole or a chunk without digest
    m.crc32.reserve(crcs->size());
    for (std::size_t i = 0; i < crcs->size(); ++i) {
        const json& c = (*crcs)[i];
        if (!digests && !c.is_null()) m.chunks[i].emplace(); // stored, no digest recorded
        if (c.is_null() && !m.chunks[i]) {
            m.crc32.emplace_back();
        } else if (c.is_number_unsigned() && m.chunks[i] && c.get<std::uint64_t>() <= 0xffffffffu) {
            m.crc32.emplace_back(static_cast<std::uint32_t>(c.get<std::uint64_t>()));
        } else {
            return proto::make_error(
                EINVAL, "manifest: CRC-32 {} is neither a 32-bit number nor the hole's null", i);
        }
    }
    return m;
}

} // namespace rfs::layout
