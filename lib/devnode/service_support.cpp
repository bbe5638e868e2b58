// Helpers shared by riak-devnode's Service files (see service_internal.hpp). Any thread.
//
// Section numbers in comments (§N) name the topics listed in lib/devnode/README.md.
#include "lib/devnode/service_internal.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include "lib/devnode/encoding.hpp"
#include "proto/riak_paths.hpp"

namespace rfs::devnode::service_support {

namespace {

constexpr std::string_view kQuorumHelp =
    "query parameter must be an integer or one of the following words: 'one', 'quorum' or 'all'";
const std::set<std::string> kImmutableTypeProps = {"datatype", "write_once", "consistent"};
const std::set<std::string> kDatatypes = {"set", "counter", "map", "hll", "gset"};

} // namespace

Response text(int status, std::string body, std::string_view ctype) {
    Response r;
    r.status = status;
    r.set("Content-Type", std::string(ctype));
    r.body = std::move(body);
    return r;
}

// A response with no body (204, 405, 406, 409, 415, ...).
Response status_only(int status) {
    Response r;
    r.status = status;
    return r;
}

Response not_found() {
    return text(404, "not found\n");
}

// webmachine's own 404 (no route, or a `vtag` that matches no sibling).
Response generic_404() {
    return webmachine_404();
}

Response method_not_allowed(std::string_view allow) {
    Response r;
    r.status = 405;
    r.set("Allow", std::string(allow));
    return r;
}

Response error_500(std::string_view term) {
    return text(500, fmt::format("Error:\n{}\n", term));
}

bool is_method(const Request& req, std::string_view m) {
    return req.method == m;
}

std::optional<int64_t> parse_int(std::string_view s) {
    if (s.empty()) return std::nullopt;
    int64_t v = 0;
    const char* b = s.data();
    const char* e = s.data() + s.size();
    if (*b == '+') ++b;
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec != std::errc() || p != e) return std::nullopt;
    return v;
}

// Resolves a quorum value (param or property) against n; nullopt when malformed.
std::optional<int64_t> resolve_quorum(const json& v, int64_t n, const json& fallback, int depth) {
    if (v.is_number_integer()) {
        int64_t q = v.get<int64_t>();
        return q < 0 ? std::nullopt : std::optional<int64_t>(q);
    }
    if (!v.is_string()) return std::nullopt;
    auto s = v.get<std::string>();
    if (s == "one") return 1;
    if (s == "quorum") return n / 2 + 1;
    if (s == "all") return n;
    if (s == "default") {
        if (depth > 0) return n / 2 + 1;
        return resolve_quorum(fallback, n, fallback, depth + 1);
    }
    auto i = parse_int(s);
    if (!i || *i < 0) return std::nullopt;
    return *i;
}

int64_t n_val(const json& props) {
    auto it = props.find("n_val");
    return (it != props.end() && it->is_number_integer()) ? it->get<int64_t>() : 3;
}

bool prop_bool(const json& props, const char* name, bool dflt) {
    auto it = props.find(name);
    return (it != props.end() && it->is_boolean()) ? it->get<bool>() : dflt;
}

// The fsync mapping (README, "Durability"): a LevelDB sync write when a durable or primary
// acknowledgement is asked for, or sync_on_write says so. Riak keeps sync_on_write as a bucket
// property; the request parameter of the same name is devnode's per-request override.
bool wants_sync(const Request& req, const json& props, const Quorums& q) {
    auto forces = [](std::string_view v) { return v == "one" || v == "all"; };
    if (auto sow = req.param("sync_on_write"); sow && forces(*sow)) return true;
    if (auto it = props.find("sync_on_write");
        it != props.end() && it->is_string() && forces(it->get_ref<const std::string&>()))
        return true;
    return q.get("dw") > 0 || q.get("pw") > 0;
}

// Validates the quorum parameters `names` (§1.2); returns a 400 on failure.
std::optional<Response> check_quorums(const Request& req, const json& props,
                                      std::initializer_list<const char*> names, Quorums& out) {
    int64_t n = n_val(props);
    bool read_over = false, write_over = false;
    for (const char* name : names) {
        auto p = req.param(name);
        json dflt = props.contains(name) ? props[name] : json(0);
        std::optional<int64_t> q;
        if (p) {
            q = resolve_quorum(json(*p), n, dflt);
            if (!q) return text(400, fmt::format("{} {}\n", name, kQuorumHelp));
        } else {
            q = resolve_quorum(dflt, n, dflt);
            if (!q) q = 0;
        }
        out.v[name] = *q;
        if (*q > n) {
            std::string_view nm = name;
            if (nm == "r" || nm == "pr" || nm == "rw") {
                read_over = true;
            } else {
                write_over = true;
            }
        }
    }
    if (write_over || read_over)
        return text(400, fmt::format("Specified w/dw/pw/node_confirms values invalid for bucket n "
                                     "value of {}\n",
                                     n));
    if (auto t = req.param("timeout"); t) {
        auto v = parse_int(*t);
        if (!v || *v < 0) return text(400, fmt::format("Bad timeout value \"{}\"\n", *t));
    }
    for (const char* b : {"basic_quorum", "notfound_ok"}) {
        if (auto v = req.param(b); v) {
            auto l = to_lower(*v);
            if (l != "true" && l != "false")
                return text(400, fmt::format("{} query parameter must be true or false\n", b));
        }
    }
    return std::nullopt;
}

// Quoted entity tags of an If-Match/If-None-Match value (webmachine only sees "..." strings).
std::vector<std::string> quoted_tags(std::string_view v) {
    std::vector<std::string> out;
    size_t i = 0;
    while ((i = v.find('"', i)) != std::string_view::npos) {
        size_t j = v.find('"', i + 1);
        if (j == std::string_view::npos) break;
        out.emplace_back(v.substr(i + 1, j - i - 1));
        i = j + 1;
    }
    return out;
}

std::vector<Weighted> weighted_list(std::string_view header) {
    std::vector<Weighted> out;
    size_t i = 0;
    while (i <= header.size()) {
        size_t j = header.find(',', i);
        if (j == std::string_view::npos) j = header.size();
        std::string_view item = trim(header.substr(i, j - i));
        i = j + 1;
        if (item.empty()) continue;
        Weighted w{trim(item.substr(0, item.find(';'))), 1.0};
        for (size_t p = item.find(';'); p != std::string_view::npos;) {
            size_t e = item.find(';', p + 1);
            std::string_view param =
                trim(item.substr(p + 1, (e == std::string_view::npos ? item.size() : e) - p - 1));
            if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
                w.q = std::atof(std::string(param.substr(2)).c_str());
            p = e;
        }
        out.push_back(w);
    }
    return out;
}

// q-value the Accept header gives `type` (most specific matching range wins); 1 when no header.
double accept_q(const std::optional<std::string>& accept, std::string_view type) {
    if (!accept || trim(*accept).empty()) return 1.0;
    auto slash = type.find('/');
    std::string_view major = type.substr(0, slash);
    int best_spec = -1;
    double best_q = 0.0;
    for (const auto& [range, q] : weighted_list(*accept)) {
        int spec = -1;
        if (range == "*/*" || range == "*") {
            spec = 0;
        } else if (range.size() > 2 && range.substr(range.size() - 2) == "/*" &&
                   iequals(range.substr(0, range.size() - 2), major)) {
            spec = 1;
        } else if (iequals(range, type)) {
            spec = 2;
        }
        if (spec > best_spec) {
            best_spec = spec;
            best_q = q;
        }
    }
    return best_spec < 0 ? 0.0 : best_q;
}

std::string content_type_value(const Content& c) {
    std::string ct = c.content_type.empty() ? "application/octet-stream" : c.content_type;
    if (!c.charset.empty()) ct += "; charset=" + c.charset;
    return ct;
}

// Link header of a value; `v1` renders the legacy /riak/B/K form.
std::string link_value(const Content& c, const std::string& bucket, bool v1) {
    std::string out;
    for (const auto& l : c.links) {
        if (!out.empty()) out += ", ";
        out += v1 ? fmt::format("</riak/{}/{}>; riaktag=\"{}\"", proto::riak_quote_plus(l.bucket),
                                proto::riak_quote_plus(l.key), l.tag)
                  : fmt::format("</buckets/{}/keys/{}>; riaktag=\"{}\"",
                                proto::riak_quote_plus(l.bucket), proto::riak_quote_plus(l.key),
                                l.tag);
    }
    if (!out.empty()) out += ", ";
    out += v1 ? fmt::format("</riak/{}>; rel=\"up\"", proto::riak_quote_plus(bucket))
              : fmt::format("</buckets/{}>; rel=\"up\"", proto::riak_quote_plus(bucket));
    return out;
}

// Index headers grouped per field: `x-riak-index-<field>: v1, v2`.
std::vector<std::pair<std::string, std::string>> index_headers(const Content& c) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [field, term] : c.indexes) {
        std::string name = "x-riak-index-" + field;
        if (!out.empty() && out.back().first == name) {
            out.back().second += ", " + term;
        } else {
            out.emplace_back(name, term);
        }
    }
    return out;
}

// Headers describing one content (value response or multipart part).
void add_content_headers(std::vector<std::pair<std::string, std::string>>& h, const Content& c,
                         const std::string& bucket, bool part, bool v1) {
    h.emplace_back("Content-Type", content_type_value(c));
    if (!c.content_encoding.empty()) h.emplace_back("Content-Encoding", c.content_encoding);
    h.emplace_back("Link", link_value(c, bucket, v1));
    if (part) h.emplace_back("Etag", c.vtag);
    h.emplace_back("Last-Modified", format_http_date(c.last_modified_us / 1000000));
    if (c.deleted) h.emplace_back("X-Riak-Deleted", "true");
    for (const auto& m : c.meta)
        h.push_back(m);
    for (auto& ih : index_headers(c))
        h.push_back(std::move(ih));
}

std::string siblings_etag(const Object& obj) {
    std::string enc = encode_vclock(obj.clock);
    return base62(fnv1a64(enc)) + base62(fnv1a64(enc, 0x9e3779b97f4a7c15ULL));
}

// Re-cases a header name the way Erlang's packet parser does for names up to 20 characters.
std::string recase_header(std::string_view name) {
    if (name.size() > 20) return std::string(name);
    std::string out(name);
    bool up = true;
    for (auto& c : out) {
        c = static_cast<char>(up ? std::toupper(static_cast<unsigned char>(c))
                                 : std::tolower(static_cast<unsigned char>(c)));
        up = c == '-';
    }
    return out;
}

// Parses a Link header (§2.1). Returns false on bad syntax.
bool parse_links(std::string_view v, const std::string& own_bucket, std::vector<Link>& out) {
    size_t i = 0;
    auto skip_ws = [&] {
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            ++i;
    };
    skip_ws();
    while (i < v.size()) {
        if (v[i] != '<') return false;
        size_t close = v.find('>', i);
        if (close == std::string_view::npos) return false;
        std::string_view url = v.substr(i + 1, close - i - 1);
        i = close + 1;
        std::string tag, rel;
        while (true) {
            while (i < v.size() && (v[i] == ' ' || v[i] == '\t'))
                ++i;
            if (i >= v.size() || v[i] != ';') break;
            ++i;
            while (i < v.size() && (v[i] == ' ' || v[i] == '\t'))
                ++i;
            size_t eq = v.find('=', i);
            if (eq == std::string_view::npos) return false;
            std::string name(trim(v.substr(i, eq - i)));
            i = eq + 1;
            std::string value;
            if (i < v.size() && v[i] == '"') {
                size_t q = v.find('"', i + 1);
                if (q == std::string_view::npos) return false;
                value = std::string(v.substr(i + 1, q - i - 1));
                i = q + 1;
            } else {
                size_t e = v.find_first_of(",;", i);
                if (e == std::string_view::npos) e = v.size();
                value = std::string(trim(v.substr(i, e - i)));
                i = e;
            }
            if (name == "riaktag") {
                tag = value;
            } else if (name == "rel") {
                rel = value;
            }
        }
        std::vector<std::string> parts;
        size_t p = 0;
        while (p <= url.size()) {
            size_t q = url.find('/', p);
            if (q == std::string_view::npos) q = url.size();
            if (q > p) parts.push_back(proto::riak_unquote(url.substr(p, q - p)));
            p = q + 1;
        }
        bool v2 = parts.size() >= 2 && parts[0] == "buckets";
        bool v1 = parts.size() >= 2 && parts[0] == "riak";
        if (v2 && parts.size() == 4 && parts[2] == "keys" && !tag.empty()) {
            out.push_back(Link{parts[1], parts[3], tag});
        } else if (v1 && parts.size() == 3 && !tag.empty()) {
            out.push_back(Link{parts[1], parts[2], tag});
        } else if ((v2 || v1) && parts.size() == 2 && rel == "up" && parts[1] == own_bucket) {
            // The "up" link is implicit; Riak regenerates it on every read.
        } else {
            return false;
        }
        skip_ws();
    }
    return true;
}

json default_type_props() {
    return json{{"allow_mult", false},
                {"basic_quorum", false},
                {"big_vclock", 50},
                {"chash_keyfun", {{"mod", "riak_core_util"}, {"fun", "chash_std_keyfun"}}},
                {"dvv_enabled", false},
                {"dw", "quorum"},
                {"last_write_wins", false},
                {"linkfun", {{"mod", "riak_kv_wm_link_walker"}, {"fun", "mapreduce_linkfun"}}},
                {"n_val", 3},
                {"node_confirms", 0},
                {"notfound_ok", true},
                {"old_vclock", 86400},
                {"postcommit", json::array()},
                {"pr", 0},
                {"precommit", json::array()},
                {"pw", 0},
                {"r", "quorum"},
                {"rw", "quorum"},
                {"small_vclock", 50},
                {"sync_on_write", "backend"},
                {"w", "quorum"},
                {"young_vclock", 20}};
}

// Validates bucket properties (§8); returns the list of errors.
json validate_props(const json& props, bool type_level, const json& current) {
    json errors = json::array();
    auto err = [&](const std::string& k, const std::string& msg) {
        errors.push_back(json{{k, msg}});
    };
    for (const auto& [k, v] : props.items()) {
        if (k == "allow_mult" || k == "last_write_wins" || k == "dvv_enabled" ||
            k == "basic_quorum" || k == "notfound_ok" || k == "write_once" || k == "consistent") {
            if (!v.is_boolean()) err(k, "Must be a boolean");
        } else if (k == "n_val") {
            if (!v.is_number_integer() || v.get<int64_t>() <= 0)
                err(k, "Must be a positive integer");
        } else if (k == "r" || k == "w" || k == "dw" || k == "rw" || k == "pr" || k == "pw" ||
                   k == "node_confirms") {
            if (!resolve_quorum(v, 1 << 20, json("quorum")))
                err(k, "Must be an integer or one of: one, quorum, all, default");
        } else if (k == "precommit" || k == "postcommit") {
            if (!v.is_array()) err(k, "Must be a list of hooks");
        } else if (k == "datatype") {
            if (!v.is_string() || !kDatatypes.count(v.get<std::string>()))
                err(k, "Unknown datatype");
        }
        if (kImmutableTypeProps.count(k) && !type_level) {
            auto it = current.find(k);
            if (it == current.end() ? true : *it != v) err(k, "Cannot be modified");
        }
    }
    return errors;
}

// Content negotiation between offered media types; returns the chosen index or -1 (406).
int negotiate(const std::optional<std::string>& accept, const std::vector<std::string>& offered) {
    int best = -1;
    double best_q = 0.0;
    for (size_t i = 0; i < offered.size(); ++i) {
        double q = accept_q(accept, offered[i]);
        if (q > best_q) {
            best_q = q;
            best = static_cast<int>(i);
        }
    }
    return best;
}

std::string json_dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A key or bucket listing: {"NAME":[...]}, or with `stream` chunked {"NAME":[...]} batches of
// up to 1000 names closed by an empty one, which is how Riak ends a streamed listing.
Response listing(std::string_view name, const std::vector<std::string>& all, bool stream) {
    Response r;
    r.status = 200;
    r.set("Content-Type", "application/json");
    if (!stream) {
        r.body = json_dump(json{{name, all}});
        return r;
    }
    r.chunked = true;
    constexpr size_t kBatch = 1000;
    for (size_t i = 0; i < all.size(); i += kBatch) {
        auto first = all.begin() + static_cast<long>(i);
        auto last = all.begin() + static_cast<long>(std::min(i + kBatch, all.size()));
        r.chunks.push_back(json_dump(json{{name, std::vector<std::string>(first, last)}}));
    }
    r.chunks.push_back(json_dump(json{{name, json::array()}}));
    return r;
}

// A 400 with Riak's {"errors":[...]} list when property validation found any.
std::optional<Response> props_errors(const json& errors) {
    if (errors.empty()) return std::nullopt;
    return text(400, json_dump(json{{"errors", errors}}), "application/json");
}

// Props PUT bodies (bucket and type): `out` gets {"props":{...}} checked against `current`.
std::optional<Response> read_props_body(const Request& req, const json& current, json& out) {
    out = json::parse(req.body, nullptr, false);
    if (out.is_discarded() || !out.is_object() || !out.contains("props") ||
        !out["props"].is_object())
        return text(400, "JSON object must be of the form {\"props\":{...properties...}}\n");
    return props_errors(validate_props(out["props"], false, current));
}

// The props and data-type resources take only application/json (parameters ignored); they
// answer differently when it is missing (415 and 406).
bool has_json_content_type(const Request& req) {
    auto ct = req.header("Content-Type");
    return ct && iequals(trim(std::string_view(*ct).substr(0, ct->find(';'))), "application/json");
}

} // namespace rfs::devnode::service_support
