#include "lib/layout/mapping.hpp"

#include <cerrno>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace rfs::layout {

namespace {

using json = nlohmann::json;
using Piece = Mapper::Piece;
using Component = Mapper::Component;
using Rule = Mapper::Rule;

struct Capture {
    std::string name;
    bool rest = false;
};

bool is_name_start(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_name_char(char c) {
    return is_name_start(c) || (c >= '0' && c <= '9');
}

// Splits "lit{name}lit{rest**}" into pieces; a capture piece's text is "name" or "name**".
// Error offsets are counted from `base` (the position of `text` in what the user wrote).
Result<std::vector<Piece>> parse_pieces(std::string_view text, std::size_t base = 0) {
    std::vector<Piece> out;
    std::string literal;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '}') return proto::make_error(EINVAL, "unbalanced '}}' at offset {}", base + i);
        if (c != '{') {
            literal.push_back(c);
            continue;
        }
        std::size_t close = text.find_first_of("{}", i + 1);
        if (close == std::string_view::npos || text[close] == '{')
            return proto::make_error(EINVAL, "unbalanced '{{' at offset {}", base + i);
        std::string_view inner = text.substr(i + 1, close - i - 1);
        std::string_view name = inner;
        if (name.ends_with("**")) name.remove_suffix(2);
        bool ok = !name.empty() && is_name_start(name[0]);
        for (char n : name)
            ok = ok && is_name_char(n);
        if (!ok) return proto::make_error(EINVAL, "bad capture name '{{{}}}'", inner);
        if (!literal.empty()) out.push_back(Piece{false, std::exchange(literal, {})});
        out.push_back(Piece{true, std::string(inner)});
        i = close;
    }
    if (!literal.empty()) out.push_back(Piece{false, std::move(literal)});
    return out;
}

bool is_rest(const Piece& p) {
    return p.capture && p.text.ends_with("**");
}
std::string capture_name(const Piece& p) {
    return is_rest(p) ? p.text.substr(0, p.text.size() - 2) : p.text;
}

Result<std::vector<Component>> parse_pattern(std::string_view text) {
    if (!text.starts_with('/')) return proto::make_error(EINVAL, "path must start with '/'");
    auto pieces = parse_pieces(text.substr(1), 1);
    if (!pieces) return std::move(pieces).error();
    // Cut literal pieces at '/' so that each component's pieces are grouped together.
    std::vector<std::vector<Piece>> groups(1);
    for (Piece& p : *pieces) {
        if (p.capture) {
            groups.back().push_back(std::move(p));
            continue;
        }
        std::string_view lit = p.text;
        for (std::size_t slash; (slash = lit.find('/')) != std::string_view::npos;) {
            if (slash > 0) groups.back().push_back(Piece{false, std::string(lit.substr(0, slash))});
            groups.emplace_back();
            lit.remove_prefix(slash + 1);
        }
        if (!lit.empty()) groups.back().push_back(Piece{false, std::string(lit)});
    }
    std::vector<Component> out;
    std::set<std::string> names;
    for (std::size_t g = 0; g < groups.size(); ++g) {
        const auto& group = groups[g];
        if (group.empty()) return proto::make_error(EINVAL, "path has an empty component");
        Component comp;
        std::size_t captures = 0;
        for (const Piece& p : group) {
            if (!p.capture) {
                (captures == 0 ? comp.prefix : comp.suffix) += p.text;
                continue;
            }
            if (++captures > 1)
                return proto::make_error(EINVAL, "component {} has more than one capture", g + 1);
            comp.capture = capture_name(p);
            comp.rest = is_rest(p);
            if (!names.insert(comp.capture).second)
                return proto::make_error(EINVAL, "duplicate capture '{{{}}}'", comp.capture);
        }
        if (comp.rest && (group.size() != 1 || g + 1 != groups.size()))
            return proto::make_error(EINVAL, "'{{{}**}}' must be the whole last component",
                                     comp.capture);
        out.push_back(std::move(comp));
    }
    return out;
}

Result<std::vector<Piece>> parse_template(std::string_view text, const std::vector<Component>& path,
                                          std::string_view what) {
    if (text.empty()) return proto::make_error(EINVAL, "empty {} template", what);
    auto pieces = parse_pieces(text);
    if (!pieces) return proto::make_error(EINVAL, "{}: {}", what, pieces.error().message);
    for (const Piece& p : *pieces) {
        if (!p.capture) continue;
        if (is_rest(p))
            return proto::make_error(EINVAL, "{}: templates use '{{{}}}', not '{{{}}}'", what,
                                     capture_name(p), p.text);
        bool known = false;
        for (const Component& c : path)
            known = known || c.capture == p.text;
        if (!known) return proto::make_error(EINVAL, "{}: unknown capture '{{{}}}'", what, p.text);
    }
    return pieces;
}

// A fixed Riak name (bucket type or namespace bucket): what a shell-created bucket type can be
// called, and nothing the request line would need to guess about.
Result<std::string> parse_fixed_name(std::string_view text, std::string_view what) {
    for (char c : text) {
        if (c == '{' || c == '}')
            return proto::make_error(EINVAL, "{} '{}' is a fixed name: no captures", what, text);
        if (c <= ' ' || c >= 0x7F || c == '/')
            return proto::make_error(EINVAL, "{} '{}': only printable ASCII without spaces or '/'",
                                     what, text);
    }
    return std::string(text);
}

Result<std::string> string_member(const json& obj, const char* name, bool required) {
    auto it = obj.find(name);
    if (it == obj.end()) {
        if (required) return proto::make_error(EINVAL, "missing \"{}\"", name);
        return std::string();
    }
    if (!it->is_string()) return proto::make_error(EINVAL, "\"{}\" must be a string", name);
    return it->get<std::string>();
}

Result<void> only_members(const json& obj, std::initializer_list<std::string_view> allowed) {
    for (const auto& [name, value] : obj.items()) {
        bool ok = false;
        for (auto a : allowed)
            ok = ok || name == a;
        if (!ok) return proto::make_error(EINVAL, "unknown member \"{}\"", name);
    }
    return {};
}

Result<Rule> parse_rule(const json& obj) {
    if (!obj.is_object()) return proto::make_error(EINVAL, "must be an object");
    if (auto ok = only_members(obj, {"path", "bucket", "key", "type"}); !ok)
        return std::move(ok).error();
    auto path_text = string_member(obj, "path", true);
    auto bucket_text = string_member(obj, "bucket", true);
    auto key_text = string_member(obj, "key", true);
    auto type_text = string_member(obj, "type", false);
    for (auto* r : {&path_text, &bucket_text, &key_text, &type_text})
        if (!*r) return r->error();
    Rule rule;
    auto path = parse_pattern(*path_text);
    if (!path) return proto::make_error(EINVAL, "path '{}': {}", *path_text, path.error().message);
    rule.path = std::move(*path);
    auto bucket = parse_template(*bucket_text, rule.path, "bucket");
    if (!bucket) return std::move(bucket).error();
    auto key = parse_template(*key_text, rule.path, "key");
    if (!key) return std::move(key).error();
    rule.bucket = std::move(*bucket);
    rule.key = std::move(*key);
    if (obj.contains("type")) {
        if (type_text->empty()) return proto::make_error(EINVAL, "empty type (omit it instead)");
        auto type = parse_fixed_name(*type_text, "type");
        if (!type) return std::move(type).error();
        rule.type = *type == "default" ? std::string() : std::move(*type);
    }
    return rule;
}

Result<proto::BucketId> parse_namespace(const json& obj) {
    if (!obj.is_object()) return proto::make_error(EINVAL, "namespace: must be an object");
    auto fail = [](const proto::Error& e) {
        return proto::make_error(EINVAL, "namespace: {}", e.message);
    };
    if (auto ok = only_members(obj, {"bucket", "type"}); !ok) return fail(ok.error());
    auto bucket = string_member(obj, "bucket", true);
    if (!bucket) return fail(bucket.error());
    auto type = string_member(obj, "type", false);
    if (!type) return fail(type.error());
    if (bucket->empty()) return fail(proto::make_error(EINVAL, "empty bucket"));
    auto b = parse_fixed_name(*bucket, "bucket");
    if (!b) return fail(b.error());
    auto t = parse_fixed_name(*type, "type");
    if (!t) return fail(t.error());
    return proto::BucketId{*t == "default" ? std::string() : *t, *b};
}

bool match_component(const Component& c, std::string_view part, std::vector<std::string>& values) {
    if (c.capture.empty()) return part == c.prefix;
    if (part.size() <= c.prefix.size() + c.suffix.size()) return false;
    if (!part.starts_with(c.prefix) || !part.ends_with(c.suffix)) return false;
    values.emplace_back(
        part.substr(c.prefix.size(), part.size() - c.prefix.size() - c.suffix.size()));
    return true;
}

// Captured values in the order of the pattern's captures, or nullopt.
std::optional<std::vector<std::string>> match(const std::vector<Component>& pattern,
                                              std::string_view path) {
    std::vector<std::string> values;
    std::string_view rest = path;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        const Component& c = pattern[i];
        bool last = i + 1 == pattern.size();
        if (c.rest) {
            // One or more components, none empty.
            if (rest.empty() || rest.starts_with('/') || rest.ends_with('/') ||
                rest.find("//") != std::string_view::npos)
                return std::nullopt;
            values.emplace_back(rest);
            return values;
        }
        std::size_t slash = rest.find('/');
        if (last != (slash == std::string_view::npos)) return std::nullopt;
        if (!match_component(c, rest.substr(0, slash), values)) return std::nullopt;
        rest = last ? std::string_view() : rest.substr(slash + 1);
    }
    return values;
}

std::string expand(const std::vector<Piece>& tmpl, const std::vector<Component>& pattern,
                   const std::vector<std::string>& values) {
    std::string out;
    for (const Piece& p : tmpl) {
        if (!p.capture) {
            out += p.text;
            continue;
        }
        std::size_t v = 0;
        for (const Component& c : pattern) {
            if (c.capture.empty()) continue;
            if (c.capture == p.text) break;
            ++v;
        }
        out += values[v];
    }
    return out;
}

} // namespace

Result<Mapper> Mapper::from_json(std::string_view text) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        return proto::make_error(EINVAL, "layout: bad JSON: {}", e.what());
    }
    if (!doc.is_object()) return proto::make_error(EINVAL, "layout: top level must be an object");
    if (auto ok = only_members(doc, {"rules", "namespace"}); !ok)
        return proto::make_error(EINVAL, "layout: {}", ok.error().message);
    auto rules = doc.find("rules");
    if (rules == doc.end()) return proto::make_error(EINVAL, "layout: missing \"rules\"");
    if (!rules->is_array()) return proto::make_error(EINVAL, "layout: \"rules\" must be an array");
    Mapper m;
    for (std::size_t i = 0; i < rules->size(); ++i) {
        auto rule = parse_rule((*rules)[i]);
        if (!rule)
            return proto::make_error(EINVAL, "layout: rule {}: {}", i + 1, rule.error().message);
        m.rules_.push_back(std::move(*rule));
    }
    if (auto ns = doc.find("namespace"); ns != doc.end()) {
        auto id = parse_namespace(*ns);
        if (!id) return proto::make_error(EINVAL, "layout: {}", id.error().message);
        m.namespace_ = std::move(*id);
    }
    return m;
}

Mapper Mapper::default_layout(std::string bucket, std::string type) {
    Mapper m;
    Rule rule;
    rule.path.push_back(Component{"", "path", true, ""});
    rule.bucket.push_back(Piece{false, std::move(bucket)});
    rule.key.push_back(Piece{true, "path"});
    rule.type = type == "default" ? std::string() : type;
    m.rules_.push_back(std::move(rule));
    m.namespace_.type = m.rules_.back().type;
    return m;
}

std::optional<Location> Mapper::map(std::string_view rel_path) const {
    if (excluded_ && excluded_(rel_path)) return std::nullopt;
    for (const Rule& rule : rules_) {
        auto values = match(rule.path, rel_path);
        if (!values) continue;
        Location loc{rule.type, expand(rule.bucket, rule.path, *values),
                     expand(rule.key, rule.path, *values)};
        if (loc.key.starts_with(kReservedKeyPrefix)) return std::nullopt;
        return loc;
    }
    return std::nullopt;
}

} // namespace rfs::layout
