// Riak naming layers and request targets; see riak_paths.hpp for the formats.
#include "proto/riak_paths.hpp"

#include <cerrno>
#include <charconv>

#include <boost/url/encode.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

namespace rfs::proto {
namespace {

constexpr char kHexUpper[] = "0123456789ABCDEF";

// Value of a hex digit, or -1. Accepts both cases.
int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

void append_escape(std::string& out, unsigned char byte) {
    out.push_back('%');
    out.push_back(kHexUpper[byte >> 4]);
    out.push_back(kHexUpper[byte & 0x0F]);
}

bool is_continuation(unsigned char b) noexcept {
    return (b & 0xC0) == 0x80;
}

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if the byte there does not
// start one (RFC 3629 table of well-formed byte sequences).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char b0 = at(0);
    if (b0 < 0x80) return 1;
    const std::size_t left = s.size() - i;
    if (b0 >= 0xC2 && b0 <= 0xDF) return left >= 2 && is_continuation(at(1)) ? 2 : 0;
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        if (left < 3) return 0;
        const unsigned char b1 = at(1);
        const unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;
        const unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;
        return b1 >= lo && b1 <= hi && is_continuation(at(2)) ? 3 : 0;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        if (left < 4) return 0;
        const unsigned char b1 = at(1);
        const unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;
        const unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;
        return b1 >= lo && b1 <= hi && is_continuation(at(2)) && is_continuation(at(3)) ? 4 : 0;
    }
    return 0;
}

Result<void> check_name(std::string_view what, std::string_view name) {
    if (name.empty()) return make_error(EINVAL, "empty {} cannot be addressed over HTTP", what);
    return {};
}

Result<std::string> finish_target(std::string target) {
    if (target.size() > kMaxTargetLength)
        return make_error(ENAMETOOLONG, "request target of {} bytes exceeds {}", target.size(),
                          kMaxTargetLength);
    return target;
}

} // namespace

// ---- Layer 1 --------------------------------------------------------------------------------

bool is_valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string escape_name(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    std::size_t i = 0;
    while (i < raw.size()) {
        const auto byte = static_cast<unsigned char>(raw[i]);
        if (byte == '%') {
            append_escape(out, byte);
            ++i;
            continue;
        }
        const std::size_t n = utf8_sequence_length(raw, i);
        if (n == 0) {
            append_escape(out, byte);
            ++i;
        } else {
            out.append(raw.substr(i, n));
            i += n;
        }
    }
    return out;
}

Result<std::string> unescape_name(std::string_view escaped) {
    if (!is_valid_utf8(escaped)) return make_error(EINVAL, "name is not valid UTF-8");
    std::string out;
    out.reserve(escaped.size());
    for (std::size_t i = 0; i < escaped.size(); ++i) {
        const char c = escaped[i];
        if (c != '%') {
            out.push_back(c);
            continue;
        }
        const auto is_upper_hex = [](char h) {
            return (h >= '0' && h <= '9') || (h >= 'A' && h <= 'F');
        };
        if (i + 2 >= escaped.size()) return make_error(EINVAL, "truncated escape at offset {}", i);
        if (!is_upper_hex(escaped[i + 1]) || !is_upper_hex(escaped[i + 2]))
            return make_error(EINVAL, "bad escape at offset {}", i);
        out.push_back(
            static_cast<char>(hex_value(escaped[i + 1]) * 16 + hex_value(escaped[i + 2])));
        i += 2;
    }
    // Canonical form only: every name has exactly one escaped spelling.
    if (escape_name(out) != escaped) return make_error(EINVAL, "non-canonical escape in name");
    return out;
}

// ---- Layer 2 --------------------------------------------------------------------------------

bool is_unreserved(char c) noexcept {
    return boost::urls::unreserved_chars(c);
}

std::string percent_encode(std::string_view raw) {
    return boost::urls::encode(raw, boost::urls::unreserved_chars);
}

std::string riak_quote_plus(std::string_view raw) {
    boost::urls::encoding_opts opts;
    opts.space_as_plus = true;
    return boost::urls::encode(raw, boost::urls::unreserved_chars, opts);
}

std::string encode_segment(std::string_view raw) {
    if (raw == ".") return "%2E";
    if (raw == "..") return "%2E%2E";
    return percent_encode(raw);
}

Result<std::string> percent_decode(std::string_view encoded) {
    const auto valid = boost::urls::make_pct_string_view(encoded);
    if (!valid) return make_error(EINVAL, "bad percent escape: {}", valid.error().message());
    return valid->decode(); // '+' stays '+' (encoding_opts::space_as_plus is off)
}

std::string riak_unquote(std::string_view encoded) {
    std::string out;
    out.reserve(encoded.size());
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        const char c = encoded[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%' && i + 2 < encoded.size() && hex_value(encoded[i + 1]) >= 0 &&
                   hex_value(encoded[i + 2]) >= 0) {
            out.push_back(
                static_cast<char>(hex_value(encoded[i + 1]) * 16 + hex_value(encoded[i + 2])));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string host_and_port(std::string_view host, std::uint16_t port) {
    if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
    return fmt::format("{}:{}", host, port);
}

// ---- Quorum / QueryParams -------------------------------------------------------------------

std::optional<Quorum> Quorum::parse(std::string_view text) {
    if (text == "one") return one();
    if (text == "quorum") return quorum();
    if (text == "all") return all();
    if (text == "default") return bucket_default();
    std::uint32_t n = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, n);
    if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
    return Quorum::n(n);
}

std::string Quorum::to_string() const {
    switch (kind_) {
    case Kind::one:
        return "one";
    case Kind::quorum:
        return "quorum";
    case Kind::all:
        return "all";
    case Kind::default_:
        return "default";
    case Kind::number:
        return std::to_string(number_);
    }
    return "default";
}

QueryParams& QueryParams::add(std::string_view name, std::string_view value) {
    if (!query_.empty()) query_.push_back('&');
    query_ += percent_encode(name);
    query_.push_back('=');
    query_ += percent_encode(value);
    return *this;
}

QueryParams& QueryParams::add(const RequestParams& p) {
    const auto quorum = [&](std::string_view name, const std::optional<Quorum>& q) {
        if (q) add(name, *q);
    };
    const auto flag = [&](std::string_view name, std::optional<bool> b) {
        if (b) add(name, *b);
    };
    quorum("r", p.r);
    quorum("pr", p.pr);
    quorum("w", p.w);
    quorum("dw", p.dw);
    quorum("pw", p.pw);
    quorum("rw", p.rw);
    quorum("node_confirms", p.node_confirms);
    flag("basic_quorum", p.basic_quorum);
    flag("notfound_ok", p.notfound_ok);
    flag("returnbody", p.returnbody);
    flag("include_context", p.include_context);
    if (p.timeout_ms) add("timeout", *p.timeout_ms);
    if (!p.sync_on_write.empty()) add("sync_on_write", std::string_view(p.sync_on_write));
    if (!p.vtag.empty()) add("vtag", std::string_view(p.vtag));
    return *this;
}

// ---- Targets --------------------------------------------------------------------------------

Result<std::string> bucket_path(const BucketId& b) {
    if (auto ok = check_name("bucket", b.bucket); !ok) return std::move(ok).error();
    std::string out;
    if (!b.type.empty()) out += "/types/" + encode_segment(b.type);
    out += "/buckets/" + encode_segment(b.bucket);
    return out;
}

Result<std::string> object_target(const ObjectId& o, const QueryParams& query) {
    if (auto ok = check_name("key", o.key); !ok) return std::move(ok).error();
    if (o.key.size() > kMaxKeyBytes)
        return make_error(ENAMETOOLONG, "key of {} bytes exceeds Riak's {}", o.key.size(),
                          kMaxKeyBytes);
    auto base = bucket_path(o.bucket_id());
    if (!base) return base;
    return finish_target(*base + "/keys/" + encode_segment(o.key) + query.to_string());
}

Result<std::string> bucket_keys_target(const BucketId& b, const QueryParams& query) {
    auto base = bucket_path(b);
    if (!base) return base;
    return finish_target(*base + "/keys" + query.to_string());
}

Result<std::string> key_list_target(const BucketId& b, bool stream,
                                    std::optional<std::uint32_t> timeout_ms) {
    QueryParams q;
    q.add("keys", std::string_view(stream ? "stream" : "true"));
    if (timeout_ms) q.add("timeout", *timeout_ms);
    return bucket_keys_target(b, q);
}

Result<std::string> bucket_list_target(std::string_view type, bool stream) {
    std::string out;
    if (!type.empty()) out += "/types/" + encode_segment(type);
    out += "/buckets";
    out += stream ? "?buckets=stream" : "?buckets=true";
    return finish_target(std::move(out));
}

Result<std::string> bucket_props_target(const BucketId& b) {
    auto base = bucket_path(b);
    if (!base) return base;
    return finish_target(*base + "/props");
}

Result<std::string> type_props_target(std::string_view type) {
    if (auto ok = check_name("bucket type", type); !ok) return std::move(ok).error();
    return finish_target("/types/" + encode_segment(type) + "/props");
}

Result<std::string> datatype_target(const ObjectId& o, const QueryParams& query) {
    if (auto ok = check_name("bucket type", o.type); !ok) return std::move(ok).error();
    if (auto ok = check_name("key", o.key); !ok) return std::move(ok).error();
    auto base = bucket_path(o.bucket_id());
    if (!base) return base;
    return finish_target(*base + "/datatypes/" + encode_segment(o.key) + query.to_string());
}

IndexQuery IndexQuery::exact(std::string field, std::string value) {
    IndexQuery q;
    q.field = std::move(field);
    q.value = std::move(value);
    return q;
}

IndexQuery IndexQuery::range(std::string field, std::string start, std::string end) {
    IndexQuery q;
    q.field = std::move(field);
    q.value = std::move(start);
    q.end = std::move(end);
    return q;
}

IndexQuery IndexQuery::bucket_keys() {
    return exact("$bucket", "_");
}

Result<std::string> index_target(const BucketId& b, const IndexQuery& iq) {
    if (iq.field != "$bucket" && iq.field != "$key" && !iq.field.ends_with("_bin") &&
        !iq.field.ends_with("_int"))
        return make_error(EINVAL, "index field '{}' must be $bucket, $key or end in _bin/_int",
                          iq.field);
    if (auto ok = check_name("index value", iq.value); !ok) return std::move(ok).error();
    if (iq.end) {
        if (auto ok = check_name("index range end", *iq.end); !ok) return std::move(ok).error();
    }
    auto base = bucket_path(b);
    if (!base) return base;
    std::string out = *base + "/index/" + encode_segment(iq.field) + "/" + encode_segment(iq.value);
    if (iq.end) out += "/" + encode_segment(*iq.end);
    QueryParams q;
    if (iq.max_results) q.add("max_results", *iq.max_results);
    if (!iq.continuation.empty()) q.add("continuation", std::string_view(iq.continuation));
    if (iq.return_terms) q.add("return_terms", true);
    if (iq.stream) q.add("stream", true);
    if (!iq.term_regex.empty()) q.add("term_regex", std::string_view(iq.term_regex));
    if (iq.timeout_ms) q.add("timeout", *iq.timeout_ms);
    return finish_target(out + q.to_string());
}

// ---- Target parsing -------------------------------------------------------------------------

std::optional<std::string> ParsedTarget::param(std::string_view name) const {
    for (const auto& [k, v] : query)
        if (k == name) return v;
    return std::nullopt;
}

ParsedTarget parse_target(std::string_view target) {
    ParsedTarget out;
    std::string_view path = target;
    std::string_view query;
    if (const auto q = target.find('?'); q != std::string_view::npos) {
        path = target.substr(0, q);
        query = target.substr(q + 1);
    }
    if (const auto hash = query.find('#'); hash != std::string_view::npos)
        query = query.substr(0, hash);
    while (!path.empty()) {
        const auto slash = path.find('/');
        const auto seg = path.substr(0, slash);
        if (!seg.empty()) out.segments.push_back(riak_unquote(seg));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    while (!query.empty()) {
        const auto end = query.find_first_of("&;");
        const auto pair = query.substr(0, end);
        if (!pair.empty()) {
            const auto eq = pair.find('=');
            if (eq == std::string_view::npos)
                out.query.emplace_back(riak_unquote(pair), std::string());
            else
                out.query.emplace_back(riak_unquote(pair.substr(0, eq)),
                                       riak_unquote(pair.substr(eq + 1)));
        }
        if (end == std::string_view::npos) break;
        query.remove_prefix(end + 1);
    }
    return out;
}

} // namespace rfs::proto
