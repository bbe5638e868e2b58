#include "lib/layout/file_object.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <openssl/rand.h>

#include "lib/layout/percent_bytes.hpp"
#include "lib/layout/sha256.hpp"

namespace rfs::layout {

namespace {

constexpr std::string_view kMode = "riakfs-mode", kUid = "riakfs-uid", kGid = "riakfs-gid",
                           kMtime = "riakfs-mtime", kCtime = "riakfs-ctime",
                           kAtime = "riakfs-atime", kSize = "riakfs-size", kSha = "riakfs-sha256",
                           kVersion = "riakfs-version", kPath = "riakfs-path",
                           kKind = "riakfs-kind";

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

bool is_path_safe(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '/';
}

// Whole-string integer parse in `base`, accepting only the form encode_meta() writes: no '+',
// no leading zeros, no "-0", no spaces.
template <typename T> std::optional<T> parse_int(std::string_view text, int base) {
    T v{};
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
    char canonical[32];
    auto end = std::to_chars(canonical, canonical + sizeof canonical, v, base).ptr;
    if (std::string_view(canonical, end - canonical) != text) return std::nullopt;
    return v;
}

class MetaReader {
public:
    explicit MetaReader(const MetaList& meta) : meta_(meta) {}

    Result<std::string_view> get(std::string_view name) const {
        const std::string* found = nullptr;
        for (const auto& [n, v] : meta_) {
            if (!iequals(n, name)) continue;
            if (found) return proto::make_error(EINVAL, "metadata {} appears twice", name);
            found = &v;
        }
        if (!found) return proto::make_error(EINVAL, "metadata {} is missing", name);
        return std::string_view(*found);
    }

    template <typename T> Result<T> number(std::string_view name, int base = 10) const {
        auto text = get(name);
        if (!text) return std::move(text).error();
        auto v = parse_int<T>(*text, base);
        if (!v) return proto::make_error(EINVAL, "metadata {} is not a valid number", name);
        return *v;
    }

private:
    const MetaList& meta_;
};

} // namespace

std::string encode_path_meta(std::string_view raw) {
    return percent_encode(raw, is_path_safe);
}

Result<std::string> decode_path_meta(std::string_view encoded) {
    return percent_decode(encoded, is_path_safe, " in path");
}

MetaList encode_meta(const FileMeta& m) {
    return {
        {std::string(kMode), fmt::format("{:o}", m.mode)},
        {std::string(kUid), std::to_string(m.uid)},
        {std::string(kGid), std::to_string(m.gid)},
        {std::string(kMtime), std::to_string(m.mtime_ns)},
        {std::string(kCtime), std::to_string(m.ctime_ns)},
        {std::string(kAtime), std::to_string(m.atime_ns)},
        {std::string(kSize), std::to_string(m.size)},
        {std::string(kSha), m.sha256},
        {std::string(kVersion), m.version},
        {std::string(kPath), encode_path_meta(m.path)},
        {std::string(kKind), m.kind == FileMeta::Kind::whole ? "whole" : "manifest"},
    };
}

Result<FileMeta> decode_meta(const MetaList& list) {
    MetaReader r(list);
    FileMeta m;
    auto mode = r.number<std::uint32_t>(kMode, 8);
    if (!mode) return std::move(mode).error();
    if (*mode > 0177777) return proto::make_error(EINVAL, "metadata {} out of range", kMode);
    m.mode = *mode;
    std::pair<std::string_view, std::uint32_t*> ids[] = {{kUid, &m.uid}, {kGid, &m.gid}};
    for (auto [name, out] : ids) {
        auto v = r.number<std::uint32_t>(name);
        if (!v) return std::move(v).error();
        *out = *v;
    }
    std::pair<std::string_view, std::int64_t*> times[] = {
        {kMtime, &m.mtime_ns}, {kCtime, &m.ctime_ns}, {kAtime, &m.atime_ns}};
    for (auto [name, out] : times) {
        auto v = r.number<std::int64_t>(name);
        if (!v) return std::move(v).error();
        *out = *v;
    }
    auto size = r.number<std::uint64_t>(kSize);
    if (!size) return std::move(size).error();
    m.size = *size;
    auto sha = r.get(kSha);
    if (!sha) return std::move(sha).error();
    if (!is_sha256_hex(*sha))
        return proto::make_error(EINVAL, "metadata {} is not 64 lowercase hex digits", kSha);
    m.sha256 = *sha;
    auto version = r.get(kVersion);
    if (!version) return std::move(version).error();
    if (!is_valid_version(*version))
        return proto::make_error(EINVAL, "metadata {} is not a version stamp", kVersion);
    m.version = *version;
    auto path = r.get(kPath);
    if (!path) return std::move(path).error();
    auto raw = decode_path_meta(*path);
    if (!raw) return proto::make_error(EINVAL, "metadata {}: {}", kPath, raw.error().message);
    if (raw->empty()) return proto::make_error(EINVAL, "metadata {} is empty", kPath);
    m.path = std::move(*raw);
    auto kind = r.get(kKind);
    if (!kind) return std::move(kind).error();
    if (*kind == "whole")
        m.kind = FileMeta::Kind::whole;
    else if (*kind == "manifest")
        m.kind = FileMeta::Kind::manifest;
    else
        return proto::make_error(EINVAL, "metadata {} must be whole or manifest", kKind);
    return m;
}

// ---- Version stamps -------------------------------------------------------------------------

std::string make_version_at(std::uint64_t unix_ns, std::uint64_t random) {
    return fmt::format("{:016x}-{:016x}", unix_ns, random);
}

std::string make_version() {
    static std::atomic<std::uint64_t> last{0};
    auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    std::uint64_t prev = last.load(std::memory_order_relaxed), next;
    do {
        next = now > prev ? now : prev + 1;
    } while (!last.compare_exchange_weak(prev, next, std::memory_order_relaxed));
    std::uint64_t random = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&random), sizeof random) != 1) {
        thread_local std::mt19937_64 fallback{std::random_device{}()};
        random = fallback();
    }
    return make_version_at(next, random);
}

bool is_valid_version(std::string_view text) noexcept {
    if (text.size() != 33 || text[16] != '-') return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (i != 16 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

int compare_versions(std::string_view a, std::string_view b) noexcept {
    bool va = is_valid_version(a), vb = is_valid_version(b);
    if (va != vb) return va ? 1 : -1;
    int c = a.compare(b);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

} // namespace rfs::layout
