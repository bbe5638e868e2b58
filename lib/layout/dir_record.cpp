#include "lib/layout/dir_record.hpp"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/layout/percent_bytes.hpp"
#include "proto/riak_paths.hpp"

namespace rfs::layout {

using json = nlohmann::json;

namespace {

constexpr std::string_view kTypeNames[] = {"reg", "dir", "lnk", "fifo", "chr", "blk", "sock"};

bool kept_as_is(unsigned char c) {
    return c >= 0x20 && c <= 0x7E && c != '%';
}

bool has_hard_link_id(const DirEntry& e) {
    return e.type != EntryType::dir && e.nlink > 1;
}

// Reads one integer member into T, range-checked; errors name the member.
template <typename T> Result<T> integer(const json& obj, const char* name) {
    auto it = obj.find(name);
    if (it == obj.end()) return proto::make_error(EINVAL, "missing \"{}\"", name);
    bool fits = false;
    if (it->is_number_unsigned())
        fits =
            it->get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
    else if (it->is_number_integer())
        fits = std::numeric_limits<T>::is_signed;
    if (!fits) return proto::make_error(EINVAL, "\"{}\" must be an integer in range", name);
    return it->get<T>();
}

Result<std::string> encoded_string(const json& obj, const char* name) {
    auto it = obj.find(name);
    if (it == obj.end()) return proto::make_error(EINVAL, "missing \"{}\"", name);
    if (!it->is_string()) return proto::make_error(EINVAL, "\"{}\" must be a string", name);
    auto raw = decode_entry_bytes(it->get_ref<const std::string&>());
    if (!raw) return proto::make_error(EINVAL, "\"{}\": {}", name, raw.error().message);
    return raw;
}

Result<DirEntry> decode_entry(const json& obj) {
    if (!obj.is_object()) return proto::make_error(EINVAL, "entry must be an object");
    static constexpr std::string_view known[] = {
        "type", "mode",  "uid",    "gid",  "mtime_ns", "ctime_ns", "atime_ns",
        "size", "nlink", "target", "rdev", "inode",    "xattrs"};
    for (const auto& [name, value] : obj.items())
        if (std::find(std::begin(known), std::end(known), name) == std::end(known))
            return proto::make_error(EINVAL, "unknown member \"{}\"", name);
    DirEntry e;
    auto type = obj.find("type");
    if (type == obj.end() || !type->is_string())
        return proto::make_error(EINVAL, "\"type\" missing or not a string");
    auto parsed = parse_entry_type(type->get_ref<const std::string&>());
    if (!parsed) return proto::make_error(EINVAL, "unknown type \"{}\"", type->get<std::string>());
    e.type = *parsed;

    auto read = [&obj](const char* name, auto& out) -> Result<void> {
        auto v = integer<std::remove_reference_t<decltype(out)>>(obj, name);
        if (!v) return std::move(v).error();
        out = *v;
        return {};
    };
    for (auto ok : {read("mode", e.mode), read("uid", e.uid), read("gid", e.gid),
                    read("mtime_ns", e.mtime_ns), read("ctime_ns", e.ctime_ns),
                    read("atime_ns", e.atime_ns), read("size", e.size), read("nlink", e.nlink),
                    obj.contains("rdev") ? read("rdev", e.rdev) : Result<void>()})
        if (!ok) return ok.error();

    bool is_device = e.type == EntryType::chr || e.type == EntryType::blk;
    if (obj.contains("rdev") != is_device)
        return proto::make_error(EINVAL, "\"rdev\" is for chr and blk entries, and required there");
    if (obj.contains("target") != (e.type == EntryType::lnk))
        return proto::make_error(EINVAL, "\"target\" is for lnk entries, and required there");
    if (e.type == EntryType::lnk) {
        auto target = encoded_string(obj, "target");
        if (!target) return std::move(target).error();
        e.target = std::move(*target);
    }
    if (obj.contains("inode") != has_hard_link_id(e))
        return proto::make_error(EINVAL, "\"inode\" is required exactly when nlink > 1 "
                                         "on a non-directory");
    if (auto inode = obj.find("inode"); inode != obj.end()) {
        if (!inode->is_string() || inode->get_ref<const std::string&>().empty())
            return proto::make_error(EINVAL, "\"inode\" must be a non-empty string");
        e.inode = inode->get<std::string>();
    }
    if (auto xattrs = obj.find("xattrs"); xattrs != obj.end()) {
        if (!xattrs->is_object() || xattrs->empty())
            return proto::make_error(EINVAL, "\"xattrs\" must be a non-empty object");
        for (const auto& [name, value] : xattrs->items()) {
            auto raw_name = decode_entry_bytes(name);
            if (!raw_name) return std::move(raw_name).error();
            if (!value.is_string())
                return proto::make_error(EINVAL, "xattr \"{}\" must have a string value", name);
            auto raw_value = decode_entry_bytes(value.get_ref<const std::string&>());
            if (!raw_value) return std::move(raw_value).error();
            e.xattrs.emplace(std::move(*raw_name), std::move(*raw_value));
        }
    }
    if (auto ok = check_entry(e); !ok) return std::move(ok).error();
    return e;
}

} // namespace

std::string_view entry_type_name(EntryType type) {
    return kTypeNames[static_cast<int>(type)];
}

std::optional<EntryType> parse_entry_type(std::string_view name) {
    for (std::size_t i = 0; i < std::size(kTypeNames); ++i)
        if (kTypeNames[i] == name) return static_cast<EntryType>(i);
    return std::nullopt;
}

std::string dir_record_key(std::string_view rel_dir) {
    return fmt::format("/{}", rel_dir);
}

std::string encode_entry_bytes(std::string_view raw) {
    return percent_encode(raw, kept_as_is);
}

Result<std::string> decode_entry_bytes(std::string_view encoded) {
    return percent_decode(encoded, kept_as_is);
}

Result<void> check_entry_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameBytes)
        return proto::make_error(EINVAL, "name must be 1..{} bytes", kMaxNameBytes);
    if (name == "." || name == "..") return proto::make_error(EINVAL, "name cannot be . or ..");
    if (name.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos)
        return proto::make_error(EINVAL, "name cannot contain '/' or NUL");
    return {};
}

Result<void> check_entry(const DirEntry& e) {
    if (e.mode > 07777) return proto::make_error(EINVAL, "mode {:o} has bits beyond 07777", e.mode);
    if (e.type == EntryType::lnk) {
        if (e.target.empty() || e.target.size() > kMaxTargetBytes ||
            e.target.find('\0') != std::string::npos)
            return proto::make_error(EINVAL, "symlink target must be 1..{} bytes without NUL",
                                     kMaxTargetBytes);
    } else if (!e.target.empty()) {
        return proto::make_error(EINVAL, "only symlinks have a target");
    }
    if (e.rdev != 0 && e.type != EntryType::chr && e.type != EntryType::blk)
        return proto::make_error(EINVAL, "only devices have an rdev");
    if (e.inode.empty() == has_hard_link_id(e))
        return proto::make_error(EINVAL, "inode id required exactly when nlink > 1 on a "
                                         "non-directory");
    if (e.nlink == 0) return proto::make_error(EINVAL, "nlink must be at least 1");
    for (const auto& [name, value] : e.xattrs)
        if (name.empty() || name.size() > kMaxXattrNameBytes || name.find('.') == 0 ||
            name.find('\0') != std::string::npos || name.find('.') == std::string::npos ||
            value.size() > kMaxXattrValueBytes)
            return proto::make_error(EINVAL,
                                     "bad extended attribute (a name like user.x, a value "
                                     "up to {} bytes)",
                                     kMaxXattrValueBytes);
    return {};
}

namespace {

json encode_entry(const DirEntry& e) {
    json j = {{"type", entry_type_name(e.type)},
              {"mode", e.mode},
              {"uid", e.uid},
              {"gid", e.gid},
              {"mtime_ns", e.mtime_ns},
              {"ctime_ns", e.ctime_ns},
              {"atime_ns", e.atime_ns},
              {"size", e.size},
              {"nlink", e.nlink}};
    if (e.type == EntryType::lnk) j["target"] = encode_entry_bytes(e.target);
    if (e.type == EntryType::chr || e.type == EntryType::blk) j["rdev"] = e.rdev;
    if (has_hard_link_id(e)) j["inode"] = e.inode;
    if (!e.xattrs.empty()) {
        json x = json::object();
        for (const auto& [name, value] : e.xattrs)
            x[encode_entry_bytes(name)] = encode_entry_bytes(value);
        j["xattrs"] = std::move(x);
    }
    return j;
}

} // namespace

std::string encode_dir_record(const DirRecord& record) {
    json entries = json::object();
    for (const auto& [name, e] : record.entries)
        entries[encode_entry_bytes(name)] = encode_entry(e);
    json doc = {{"format", kDirRecordFormat}, {"entries", std::move(entries)}};
    if (record.parts > 1) doc["parts"] = record.parts;
    return doc.dump();
}

std::string dir_record_part_key(std::string_view rel_dir, std::uint32_t part) {
    return fmt::format("{}//{}", dir_record_key(rel_dir), part);
}

std::vector<DirRecord> split_dir_record(const DirRecord& record, std::size_t max_bytes) {
    // Room for the envelope and the "parts" member; each entry adds its "name":{...} and a comma.
    const std::size_t envelope = encode_dir_record(DirRecord{{}, 1000000000}).size();
    std::vector<DirRecord> parts(1);
    std::size_t used = envelope;
    for (const auto& [name, e] : record.entries) {
        std::size_t size =
            json(encode_entry_bytes(name)).dump().size() + 2 + encode_entry(e).dump().size();
        if (!parts.back().entries.empty() && used + size > max_bytes) {
            parts.emplace_back();
            used = envelope;
        }
        parts.back().entries.emplace(name, e);
        used += size;
    }
    parts.front().parts = static_cast<std::uint32_t>(parts.size());
    return parts;
}

Result<DirRecord> decode_dir_record(std::string_view body) {
    json doc;
    try {
        doc = json::parse(body);
    } catch (const json::exception& e) {
        return proto::make_error(EINVAL, "dir record: bad JSON: {}", e.what());
    }
    if (!doc.is_object()) return proto::make_error(EINVAL, "dir record: not a JSON object");
    for (const auto& [name, value] : doc.items())
        if (name != "format" && name != "entries" && name != "parts")
            return proto::make_error(EINVAL, "dir record: unknown member \"{}\"", name);
    auto format = doc.find("format");
    if (format == doc.end() || !format->is_string() || *format != kDirRecordFormat)
        return proto::make_error(EINVAL, "dir record: format must be \"{}\"", kDirRecordFormat);
    auto entries = doc.find("entries");
    if (entries == doc.end() || !entries->is_object())
        return proto::make_error(EINVAL, "dir record: \"entries\" missing or not an object");
    DirRecord record;
    if (doc.contains("parts")) {
        auto parts = integer<std::uint32_t>(doc, "parts");
        if (!parts || *parts < 2)
            return proto::make_error(EINVAL, "dir record: \"parts\" must be an integer >= 2");
        record.parts = *parts;
    }
    for (const auto& [encoded, value] : entries->items()) {
        auto name = decode_entry_bytes(encoded);
        if (!name)
            return proto::make_error(EINVAL, "dir record: entry name \"{}\": {}", encoded,
                                     name.error().message);
        if (auto ok = check_entry_name(*name); !ok)
            return proto::make_error(EINVAL, "dir record: entry \"{}\": {}", encoded,
                                     ok.error().message);
        auto entry = decode_entry(value);
        if (!entry)
            return proto::make_error(EINVAL, "dir record: entry \"{}\": {}", encoded,
                                     entry.error().message);
        record.entries.emplace(std::move(*name), std::move(*entry));
    }
    return record;
}

Result<void> add_entry(DirRecord& record, std::string name, DirEntry entry) {
    if (auto ok = check_entry_name(name); !ok) return ok;
    if (auto ok = check_entry(entry); !ok) return ok;
    if (record.entries.contains(name)) return proto::make_error(EEXIST, "entry exists");
    record.entries.emplace(std::move(name), std::move(entry));
    return {};
}

Result<DirEntry> remove_entry(DirRecord& record, std::string_view name) {
    auto it = record.entries.find(std::string(name));
    if (it == record.entries.end()) return proto::make_error(ENOENT, "no such entry");
    DirEntry removed = std::move(it->second);
    record.entries.erase(it);
    return removed;
}

Result<std::optional<DirEntry>> rename_entry(DirRecord& record, std::string_view from,
                                             std::string to) {
    auto src = record.entries.find(std::string(from));
    if (src == record.entries.end()) return proto::make_error(ENOENT, "no such entry");
    if (auto ok = check_entry_name(to); !ok) return std::move(ok).error();
    if (from == to) return std::optional<DirEntry>();
    std::optional<DirEntry> replaced;
    if (auto dst = record.entries.find(to); dst != record.entries.end()) {
        bool src_dir = src->second.type == EntryType::dir;
        bool dst_dir = dst->second.type == EntryType::dir;
        if (src_dir && !dst_dir)
            return proto::make_error(ENOTDIR, "cannot replace a non-directory");
        if (!src_dir && dst_dir) return proto::make_error(EISDIR, "cannot replace a directory");
        replaced = std::move(dst->second);
        record.entries.erase(dst);
    }
    auto node = record.entries.extract(src);
    node.key() = std::move(to);
    record.entries.insert(std::move(node));
    return replaced;
}

} // namespace rfs::layout
