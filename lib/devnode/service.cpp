// Riak KV HTTP resources of riak-devnode (see service.hpp). Any thread.
//
// Section numbers in comments (§N) name the topics listed in lib/devnode/README.md.
#include "lib/devnode/service.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <map>
#include <regex>

#include <set>
#include <zlib.h>

#include <fmt/format.h>

#include "lib/devnode/crdt.hpp"
#include "lib/devnode/encoding.hpp"
#include "proto/riak_paths.hpp"

namespace rfs::devnode {

using json = nlohmann::json;

struct Service::Target {
    enum Kind {
        kObject,
        kKeys,
        kBuckets,
        kIndex,
        kProps,
        kTypeProps,
        kDatatype,
    };
    Kind kind = kObject;
    std::string type = "default";
    bool typed = false;
    std::string bucket;
    std::string key;
    bool has_key = false;
    bool v1 = false;               // legacy /riak/B/K route: Links rendered in that form
    std::vector<std::string> rest; // index arguments
    // Shared with Service's props cache: a request must not copy them (a GET spent a tenth of
    // its time building and copying these JSON trees).
    std::shared_ptr<const json> type_props_p;
    std::shared_ptr<const json> props_p; // effective bucket properties
    const json& type_props() const { return *type_props_p; }
    const json& props() const { return *props_p; }
};

namespace {

constexpr std::string_view kQuorumHelp =
    "query parameter must be an integer or one of the following words: 'one', 'quorum' or 'all'";

Response text(int status, std::string body, std::string_view ctype = "text/plain") {
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
std::optional<int64_t> resolve_quorum(const json& v, int64_t n, const json& fallback,
                                      int depth = 0) {
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

struct Quorums {
    std::map<std::string, int64_t> v;
    int64_t get(const std::string& n) const {
        auto it = v.find(n);
        return it == v.end() ? 0 : it->second;
    }
};

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

// q-value the Accept header gives `type` (most specific matching range wins); 1 when no header.
double accept_q(const std::optional<std::string>& accept, std::string_view type) {
    if (!accept || trim(*accept).empty()) return 1.0;
    auto slash = type.find('/');
    std::string_view major = type.substr(0, slash);
    int best_spec = -1;
    double best_q = 0.0;
    std::string_view a = *accept;
    size_t i = 0;
    while (i <= a.size()) {
        size_t j = a.find(',', i);
        if (j == std::string_view::npos) j = a.size();
        std::string_view item = trim(a.substr(i, j - i));
        i = j + 1;
        if (item.empty()) continue;
        std::string_view range = trim(item.substr(0, item.find(';')));
        double q = 1.0;
        size_t p = item.find(';');
        while (p != std::string_view::npos) {
            size_t e = item.find(';', p + 1);
            std::string_view param =
                trim(item.substr(p + 1, (e == std::string_view::npos ? item.size() : e) - p - 1));
            if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
                q = std::atof(std::string(param.substr(2)).c_str());
            p = e;
        }
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

const std::set<std::string> kImmutableTypeProps = {"datatype", "write_once", "consistent"};
const std::set<std::string> kDatatypes = {"set", "counter", "map", "hll", "gset"};

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

} // namespace

// ---------------------------------------------------------------------------------------------
// Stats

Stats::Slot& Stats::slot_now() {
    int64_t sec = now_micros() / 1000000;
    Slot& s = slots_[sec % 60];
    if (s.sec != sec) s = Slot{sec, 0, 0};
    return s;
}

void Stats::note_get() {
    std::lock_guard lk(mu_);
    slot_now().gets++;
}

void Stats::note_put() {
    std::lock_guard lk(mu_);
    slot_now().puts++;
}

uint64_t Stats::window_gets() {
    std::lock_guard lk(mu_);
    int64_t sec = now_micros() / 1000000;
    uint64_t n = 0;
    for (const auto& s : slots_)
        if (sec - s.sec < 60) n += s.gets;
    return n;
}

uint64_t Stats::window_puts() {
    std::lock_guard lk(mu_);
    int64_t sec = now_micros() / 1000000;
    uint64_t n = 0;
    for (const auto& s : slots_)
        if (sec - s.sec < 60) n += s.puts;
    return n;
}

// ---------------------------------------------------------------------------------------------
// Service

Service::Service(Store& store, const Config& config, Stats& stats)
    : store_(store), config_(config), stats_(stats) {}

void Service::create_configured_types() {
    for (const auto& [name, props_text] : config_.bucket_types) {
        if (store_.get_type(name)) continue;
        json props = default_type_props();
        props["allow_mult"] = true;
        props["dvv_enabled"] = true;
        props["active"] = true;
        props["claimant"] = config_.node_name;
        if (!props_text.empty()) {
            json given = json::parse(props_text);
            if (given.contains("props")) given = given["props"];
            for (const auto& [k, v] : given.items())
                props[k] = v;
        }
        store_.put_type(name, props.dump());
    }
}

std::optional<json> Service::type_properties(const std::string& type) {
    if (type == "default") return default_type_props();
    auto stored = store_.get_type(type);
    if (!stored) return std::nullopt;
    json j = json::parse(*stored, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
}

json Service::bucket_properties(const std::string& type, const std::string& bucket,
                                const json& type_props) {
    json props = type_props;
    if (auto own = store_.get_bucket_props(type, bucket)) {
        json j = json::parse(*own, nullptr, false);
        if (j.is_object()) {
            for (const auto& [k, v] : j.items())
                props[k] = v;
        }
    }
    return props;
}

namespace {

// Cache key of a (type, bucket) pair; the length prefix keeps any bytes unambiguous.
std::string props_cache_key(std::string_view type, std::string_view bucket) {
    return fmt::format("{}:{}{}", type.size(), type, bucket);
}

// Enough for every bucket a test or benchmark touches; past it the cache starts over.
constexpr size_t kPropsCacheMax = 4096;

} // namespace

std::shared_ptr<const json> Service::cached_type_props(const std::string& type) {
    return cached_bucket_props(type, {}, nullptr);
}

std::shared_ptr<const json> Service::cached_bucket_props(const std::string& type,
                                                         const std::string& bucket,
                                                         const std::shared_ptr<const json>& tp) {
    // Type entries use the key with no bucket, bucket entries the key with one (tp is set).
    std::string key = tp ? props_cache_key(type, bucket) + '/' : props_cache_key(type, "");
    uint64_t generation;
    {
        std::shared_lock lk(props_cache_mu_);
        if (auto it = props_cache_.find(key); it != props_cache_.end()) return it->second;
        generation = props_generation_;
    }
    std::shared_ptr<const json> value;
    if (tp) {
        value = std::make_shared<const json>(bucket_properties(type, bucket, *tp));
    } else if (auto props = type_properties(type)) {
        value = std::make_shared<const json>(std::move(*props));
    } else {
        return nullptr; // unknown types are not cached: one may be created at any time
    }
    std::unique_lock lk(props_cache_mu_);
    // A props write since we read the store makes our value stale: use it once, cache nothing.
    if (generation == props_generation_) {
        if (props_cache_.size() >= kPropsCacheMax) props_cache_.clear();
        props_cache_.emplace(std::move(key), value);
    }
    return value;
}

void Service::props_changed() {
    std::unique_lock lk(props_cache_mu_);
    ++props_generation_;
    props_cache_.clear();
}

bool Service::tombstone_expired(const Object& obj) const {
    if (config_.delete_mode_ms < 0 || !obj.all_deleted()) return false;
    return now_micros() - obj.newest_modified_us() >= config_.delete_mode_ms * 1000;
}

std::optional<Object> Service::load(const std::string& type, const std::string& bucket,
                                    const std::string& key, bool locked) {
    auto obj = store_.get(type, bucket, key);
    if (!obj || !tombstone_expired(*obj)) return obj;
    // Reap under the key mutex, re-checking: a writer may have re-created the key meanwhile.
    std::unique_lock<std::mutex> lk(store_.key_mutex(type, bucket, key), std::defer_lock);
    if (!locked) {
        lk.lock();
        obj = store_.get(type, bucket, key);
        if (!obj || !tombstone_expired(*obj)) return obj;
    }
    std::string err;
    if (store_.remove(type, bucket, key, obj, false, err)) stats_.reaped++;
    return std::nullopt;
}

std::optional<Response> Service::handle(Request& req, bool body_read) {
    stats_.requests++;
    const auto& s = req.seg();
    if (s.size() == 1 && s[0] == "ping") {
        if (!is_method(req, "GET") && !is_method(req, "HEAD"))
            return method_not_allowed("GET, HEAD");
        Response r = text(200, "OK", "text/html");
        r.head = is_method(req, "HEAD");
        return r;
    }
    if (s.size() == 1 && s[0] == "stats") {
        if (!is_method(req, "GET") && !is_method(req, "HEAD"))
            return method_not_allowed("GET, HEAD");
        return stats_json(req);
    }

    Target t;
    size_t i = 0;
    if (!s.empty() && s[0] == "riak") {
        // The legacy object route /riak/B/K (still routed by Riak 3.x; the conformance suite
        // reads through it). The rest of the old "API v1" (/riak/B, link walking) is not served.
        if (s.size() != 3) return generic_404();
        t.v1 = true;
        t.bucket = s[1];
        t.key = s[2];
        t.has_key = true;
        t.type_props_p = cached_type_props("default");
        t.props_p = cached_bucket_props(t.type, t.bucket, t.type_props_p);
        return object(req, t, body_read);
    }
    if (!s.empty() && s[0] == "types") {
        if (s.size() < 3) return generic_404();
        t.type = s[1];
        t.typed = true;
        if (s.size() == 3 && s[2] == "props") {
            t.kind = Target::kTypeProps;
            return type_props(req, t, body_read);
        }
        if (s[2] != "buckets") return generic_404();
        i = 2;
    }
    if (s.size() <= i || s[i] != "buckets") return generic_404();
    if (s.size() == i + 1) {
        t.kind = Target::kBuckets;
    } else {
        t.bucket = s[i + 1];
        if (s.size() == i + 2) return generic_404();
        const std::string& what = s[i + 2];
        size_t n = s.size() - (i + 3); // segments after the resource name
        if (what == "keys" && n == 0) {
            t.kind = Target::kKeys;
        } else if (what == "keys" && n == 1) {
            t.kind = Target::kObject;
            t.key = s[i + 3];
            t.has_key = true;
        } else if (what == "props" && n == 0) {
            t.kind = Target::kProps;
        } else if (what == "index" && (n == 2 || n == 3)) {
            t.kind = Target::kIndex;
            t.rest.assign(s.begin() + static_cast<long>(i + 3), s.end());
        } else if (what == "datatypes" && n <= 1) {
            t.kind = Target::kDatatype;
            if (n == 1) {
                t.key = s[i + 3];
                t.has_key = true;
            }
        } else {
            return generic_404();
        }
    }

    t.type_props_p = cached_type_props(t.type);
    if (!t.type_props_p) return text(404, fmt::format("Unknown bucket type: {}", t.type));
    if (t.kind != Target::kBuckets)
        t.props_p = cached_bucket_props(t.type, t.bucket, t.type_props_p);

    switch (t.kind) {
    case Target::kObject:
        return object(req, t, body_read);
    case Target::kKeys:
        if (is_method(req, "POST")) return object(req, t, body_read);
        if (!is_method(req, "GET") && !is_method(req, "HEAD"))
            return method_not_allowed("GET, POST");
        return list_keys(req, t);
    case Target::kBuckets:
        if (!is_method(req, "GET") && !is_method(req, "HEAD"))
            return method_not_allowed("GET, HEAD");
        return list_buckets(req, t);
    case Target::kIndex:
        if (!is_method(req, "GET") && !is_method(req, "HEAD"))
            return method_not_allowed("GET, HEAD");
        return index_query(req, t);
    case Target::kProps:
        return bucket_props(req, t, body_read);
    case Target::kDatatype:
        return datatype(req, t, body_read);
    case Target::kTypeProps:
        break;
    }
    return generic_404();
}

std::optional<Response> Service::object(Request& req, Target& t, bool body_read) {
    if (is_method(req, "GET") || is_method(req, "HEAD")) {
        if (!body_read) return std::nullopt;
        return get_object(req, t);
    }
    if (is_method(req, "PUT") || is_method(req, "POST")) return put_object(req, t, body_read);
    if (is_method(req, "DELETE")) return delete_object(req, t, body_read);
    return method_not_allowed("HEAD, GET, POST, PUT, DELETE");
}

namespace {

// Conditional request evaluation (webmachine decisions G8-L17). `exists` is false for absent keys
// and tombstones. Returns 304/412 or nullopt to proceed.
std::optional<int> preconditions(const Request& req, bool exists, const std::string& etag,
                                 int64_t last_modified_s) {
    bool get_like = req.method == "GET" || req.method == "HEAD";
    auto if_match = req.header("If-Match");
    if (!exists) {
        if (if_match) return 412;
        return std::nullopt;
    }
    if (if_match && trim(*if_match) != "*") {
        auto tags = quoted_tags(*if_match);
        if (std::find(tags.begin(), tags.end(), etag) == tags.end()) return 412;
    }
    if (auto ius = req.header("If-Unmodified-Since")) {
        if (auto d = parse_http_date(trim(*ius)); d && last_modified_s > *d) return 412;
    }
    if (auto inm = req.header("If-None-Match")) {
        bool match = trim(*inm) == "*";
        if (!match) {
            auto tags = quoted_tags(*inm);
            match = std::find(tags.begin(), tags.end(), etag) != tags.end();
        }
        if (match) return get_like ? 304 : 412;
    }
    if (get_like) {
        if (auto ims = req.header("If-Modified-Since")) {
            auto d = parse_http_date(trim(*ims));
            if (d && *d <= std::time(nullptr) && last_modified_s <= *d) return 304;
        }
    }
    return std::nullopt;
}

bool conditional_headers_present(const Request& req) {
    return req.header("If-None-Match") || req.header("If-Match") ||
           req.header("If-Unmodified-Since") || req.header("X-Riak-If-Not-Modified");
}

std::string object_etag(const Object& obj) {
    std::vector<const Content*> live;
    if (obj.siblings.size() == 1) return obj.siblings[0].vtag;
    return siblings_etag(obj);
}

// Content-coding negotiation of an object GET (§2.4): offered is the stored Content-Encoding, or
// identity and gzip. Returns the chosen coding, or nullopt for a 406.
std::optional<std::string> choose_encoding(const std::optional<std::string>& header,
                                           const std::string& stored) {
    std::vector<std::string> offered = stored.empty() ? std::vector<std::string>{"identity", "gzip"}
                                                      : std::vector<std::string>{to_lower(stored)};
    std::string h = header ? *header : "identity;q=1.0,*;q=0.5";
    std::vector<std::pair<std::string, double>> prefs;
    size_t i = 0;
    while (i <= h.size()) {
        size_t j = h.find(',', i);
        if (j == std::string::npos) j = h.size();
        std::string_view item = trim(std::string_view(h).substr(i, j - i));
        i = j + 1;
        if (item.empty()) continue;
        std::string coding = to_lower(trim(item.substr(0, item.find(';'))));
        double q = 1.0;
        if (auto p = item.find(";"); p != std::string_view::npos) {
            auto qp = item.find("q=", p);
            if (qp != std::string_view::npos)
                q = std::atof(std::string(item.substr(qp + 2)).c_str());
        }
        prefs.emplace_back(coding, q);
    }
    std::stable_sort(prefs.begin(), prefs.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    auto listed = [&](const std::string& c) {
        return std::any_of(prefs.begin(), prefs.end(), [&](const auto& p) { return p.first == c; });
    };
    for (const auto& [coding, q] : prefs) {
        if (q <= 0.0) continue;
        if (coding == "*") {
            for (const auto& o : offered)
                if (!listed(o)) return o;
            continue;
        }
        if (std::find(offered.begin(), offered.end(), coding) != offered.end()) return coding;
    }
    // identity stays acceptable unless refused explicitly.
    bool identity_refused = std::any_of(prefs.begin(), prefs.end(), [](const auto& p) {
        return (p.first == "identity" || p.first == "*") && p.second <= 0.0;
    });
    if (!identity_refused && std::find(offered.begin(), offered.end(), "identity") != offered.end())
        return "identity";
    return std::nullopt;
}

// A stored charset is the only one offered (§2.4): Accept-Charset must allow it.
bool charset_acceptable(const std::optional<std::string>& header, const std::string& charset) {
    if (!header || trim(*header).empty()) return true;
    std::string_view h = *header;
    size_t i = 0;
    while (i <= h.size()) {
        size_t j = h.find(',', i);
        if (j == std::string_view::npos) j = h.size();
        std::string_view item = trim(h.substr(i, j - i));
        i = j + 1;
        std::string_view name = trim(item.substr(0, item.find(';')));
        double q = 1.0;
        if (auto qp = item.find("q="); qp != std::string_view::npos)
            q = std::atof(std::string(item.substr(qp + 2)).c_str());
        if ((name == "*" || iequals(name, charset)) && q > 0.0) return true;
    }
    return false;
}

std::string gzip(std::string_view in) {
    z_stream zs{};
    deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&zs, in.size()) + 32, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

// Applies the negotiated content coding to a GET response. False: 406.
bool apply_encoding(const Request& req, Response& r, const std::string& stored) {
    auto coding = choose_encoding(req.header("Accept-Encoding"), stored);
    if (!coding) return false;
    if (stored.empty() && *coding == "gzip") {
        r.body = gzip(r.body);
        r.set("Content-Encoding", "gzip");
    }
    return true;
}

// Builds the 200/300 body of an object (GET or returnbody). Accept decides between text and
// multipart for siblings; a single value must match Accept or it is a 406.
Response render_object(const Request& req, const Object& obj, const std::string& bucket,
                       const Content* chosen, bool v1) {
    Response r;
    auto accept = req.header("Accept");
    r.set("X-Riak-Vclock", encode_vclock(obj.clock));
    if (chosen != nullptr) {
        std::string ct =
            chosen->content_type.empty() ? "application/octet-stream" : chosen->content_type;
        if (negotiate(accept, {ct}) < 0) {
            Response na;
            na.status = 406;
            return na;
        }
        r.status = 200;
        r.set("Vary", "Accept-Encoding");
        add_content_headers(r.headers, *chosen, bucket, false, v1);
        r.set("ETag", "\"" + chosen->vtag + "\"");
        r.body = chosen->value;
        return r;
    }
    int pick = negotiate(accept, {"text/plain", "multipart/mixed"});
    if (pick < 0) {
        Response na;
        na.status = 406;
        return na;
    }
    r.status = 300;
    r.set("Vary", "Accept, Accept-Encoding");
    r.set("ETag", "\"" + siblings_etag(obj) + "\"");
    r.set("Last-Modified", format_http_date(obj.newest_modified_us() / 1000000));
    if (pick == 0) {
        r.set("Content-Type", "text/plain");
        r.body = "Siblings:\n";
        for (const auto& c : obj.siblings)
            r.body += c.vtag + "\n";
        return r;
    }
    std::string boundary = random_base62(96);
    r.set("Content-Type", "multipart/mixed; boundary=" + boundary);
    std::string body = "\r\n";
    for (const auto& c : obj.siblings) {
        body += "--" + boundary + "\r\n";
        std::vector<std::pair<std::string, std::string>> h;
        add_content_headers(h, c, bucket, true, v1);
        for (const auto& [n, v] : h)
            body += n + ": " + v + "\r\n";
        body += "\r\n";
        body += c.value;
        body += "\r\n";
    }
    body += "--" + boundary + "--\r\n";
    r.body = std::move(body);
    return r;
}

} // namespace

Response Service::get_object(Request& req, Target& t) {
    int64_t t0 = now_micros();
    Quorums q;
    if (auto bad = check_quorums(req, t.props(), {"r", "pr"}, q)) return *bad;
    stats_.gets++;
    stats_.note_get();
    auto obj = load(t.type, t.bucket, t.key);
    Response r;
    bool head = is_method(req, "HEAD");
    if (!obj) {
        if (req.header("If-Match")) {
            r.status = 412;
        } else {
            r = not_found();
        }
        r.head = head;
        return r;
    }
    stats_.siblings_seen_max = std::max<uint64_t>(stats_.siblings_seen_max, obj->siblings.size());
    const Content* chosen = nullptr;
    if (auto vtag = req.param("vtag")) {
        for (const auto& c : obj->siblings)
            if (c.vtag == *vtag) chosen = &c;
        if (chosen == nullptr) {
            r = generic_404();
            r.head = head;
            return r;
        }
    } else if (obj->all_deleted()) {
        if (auto pc = preconditions(req, false, "", 0)) {
            r.status = *pc;
        } else {
            r = not_found();
            r.set("X-Riak-Deleted", "true");
            r.set("X-Riak-Vclock", encode_vclock(obj->clock));
        }
        r.head = head;
        return r;
    } else if (obj->siblings.size() == 1) {
        chosen = &obj->siblings[0];
    }
    std::string etag = chosen ? chosen->vtag : siblings_etag(*obj);
    int64_t lm = (chosen ? chosen->last_modified_us : obj->newest_modified_us()) / 1000000;
    if (auto pc = preconditions(req, true, etag, lm)) {
        r.status = *pc;
        if (*pc == 304) {
            r.set("ETag", "\"" + etag + "\"");
            r.set("Last-Modified", format_http_date(lm));
            r.set("Vary", "Accept-Encoding");
        }
        r.head = head;
        return r;
    }
    r = render_object(req, *obj, t.bucket, chosen, t.v1);
    if (chosen != nullptr && !chosen->charset.empty() &&
        !charset_acceptable(req.header("Accept-Charset"), chosen->charset)) {
        r = Response{};
        r.status = 406;
    }
    if (r.status != 406 && !apply_encoding(req, r, chosen ? chosen->content_encoding : "")) {
        r = Response{};
        r.status = 406;
    }
    r.head = head;
    uint64_t size = 0;
    for (const auto& c : obj->siblings)
        size += c.value.size();
    stats_.objsize_max = std::max<uint64_t>(stats_.objsize_max, size);
    if (size > config_.object_size_warning) {
        stats_.size_warnings++;
        std::fprintf(stderr, "riak-devnode: warning: read of large object %s/%s/%s (%llu bytes)\n",
                     t.type.c_str(), t.bucket.c_str(), t.key.c_str(),
                     static_cast<unsigned long long>(size));
    }
    stats_.get_time_us += static_cast<uint64_t>(now_micros() - t0);
    return r;
}

std::optional<Response> Service::put_object(Request& req, Target& t, bool body_read) {
    Quorums q;
    if (auto bad = check_quorums(req, t.props(), {"w", "dw", "pw", "node_confirms"}, q)) return bad;

    // Content-Type (§2.1, §13).
    auto ctype = req.header("Content-Type");
    if (!ctype) {
        if (config_.compat == "3.0") return text(400, "Missing Content-Type request header\n");
        return text(500,
                    "<html><head><title>500 Internal Server Error</title></head><body><h1>"
                    "Internal Server Error</h1>The server encountered an error while processing "
                    "this request:<br><pre>{error,{error,function_clause,[{riak_kv_wm_object,"
                    "accept_doc_body,missing_content_type}]}}</pre><P><HR><ADDRESS>"
                    "mochiweb+webmachine web server</ADDRESS></body></html>",
                    "text/html");
    }
    Content content;
    {
        std::string_view cv = *ctype;
        std::string_view mt = trim(cv.substr(0, cv.find(';')));
        if (mt.find('/') == std::string_view::npos || mt.front() == '/' || mt.back() == '/') {
            return status_only(415);
        }
        content.content_type = std::string(mt);
        size_t p = cv.find(';');
        while (p != std::string_view::npos) {
            size_t e = cv.find(';', p + 1);
            std::string_view param =
                trim(cv.substr(p + 1, (e == std::string_view::npos ? cv.size() : e) - p - 1));
            if (param.size() > 8 && iequals(param.substr(0, 8), "charset=")) {
                std::string_view cs = param.substr(8);
                if (cs.size() >= 2 && cs.front() == '"' && cs.back() == '"')
                    cs = cs.substr(1, cs.size() - 2);
                content.charset = std::string(cs);
            }
            p = e;
        }
    }
    if (auto ce = req.header("Content-Encoding")) content.content_encoding = *ce;

    // User metadata, indexes and links.
    for (const auto& [name, value] : req.headers) {
        std::string lname = to_lower(name);
        if (lname.rfind("x-riak-meta-", 0) == 0 && lname.size() > 12) {
            std::string emitted = recase_header(name);
            auto it = std::find_if(content.meta.begin(), content.meta.end(),
                                   [&](const auto& m) { return iequals(m.first, emitted); });
            if (it != content.meta.end()) {
                it->second += ", " + value;
            } else {
                content.meta.emplace_back(emitted, value);
            }
        } else if (lname.rfind("x-riak-index-", 0) == 0) {
            std::string field = lname.substr(13);
            bool is_int = field.size() > 4 && field.substr(field.size() - 4) == "_int";
            bool is_bin = field.size() > 4 && field.substr(field.size() - 4) == "_bin";
            if (!is_int && !is_bin)
                return text(400, fmt::format("Unknown field type for field: '{}'.\n", field));
            for (auto& v : split_index_values(value)) {
                if (is_int) {
                    auto iv = parse_int(trim(v));
                    if (!iv)
                        return text(400, fmt::format("Could not parse field '{}', value '{}'.\n",
                                                     field, v));
                    content.indexes.emplace_back(field, std::to_string(*iv));
                } else {
                    content.indexes.emplace_back(field, v);
                }
            }
        }
    }
    std::sort(content.indexes.begin(), content.indexes.end());
    content.indexes.erase(std::unique(content.indexes.begin(), content.indexes.end()),
                          content.indexes.end());
    if (auto link = req.header("Link")) {
        if (!parse_links(*link, t.bucket, content.links))
            return text(400, "Invalid Link header. Links must be of the form "
                             "</buckets/BUCKET/keys/KEY>; riaktag=\"TAG\" or </riak/BUCKET/KEY>; "
                             "riaktag=\"TAG\"\n");
    }
    std::optional<VClock> client_clock;
    if (auto vc = req.header("X-Riak-Vclock")) {
        client_clock = decode_vclock(*vc);
        if (!client_clock) return error_500("{badarg,bad_vclock}");
    }

    // Conditional PUT (3.0.13+: reads only when conditional headers are present).
    auto check_conditions = [&](const std::optional<Object>& cur) -> std::optional<Response> {
        bool exists = cur && !cur->all_deleted();
        std::string etag = exists ? object_etag(*cur) : "";
        int64_t lm = exists ? cur->newest_modified_us() / 1000000 : 0;
        if (auto pc = preconditions(req, exists, etag, lm)) {
            Response r;
            r.status = *pc;
            return r;
        }
        if (auto inm = req.header("X-Riak-If-Not-Modified")) {
            auto want = decode_vclock(*inm);
            if (!cur || !want || !clock_equal(*want, cur->clock)) {
                return status_only(409);
            }
        }
        return std::nullopt;
    };
    if (!body_read) {
        if (t.has_key && conditional_headers_present(req)) {
            if (auto r = check_conditions(load(t.type, t.bucket, t.key))) return r;
        }
        return std::nullopt;
    }

    int64_t t0 = now_micros();
    bool created = !t.has_key;
    if (created) {
        // riak_core_util:unique_id_62(): up to 27 base-62 characters.
        t.key = random_base62(64) + random_base62(64) + random_base62(32);
        if (t.key.size() > 27) t.key.resize(27);
    }
    content.value = std::move(req.body);
    bool allow_mult = prop_bool(t.props(), "allow_mult", false);
    bool sync = wants_sync(req, t.props(), q);

    Object result;
    {
        std::lock_guard lk(store_.key_mutex(t.type, t.bucket, t.key));
        auto cur = load(t.type, t.bucket, t.key, true);
        if (conditional_headers_present(req)) {
            if (auto r = check_conditions(cur)) return r;
        }
        result = apply_write(cur, client_clock.value_or(VClock{}), std::move(content), allow_mult);
        std::string encoded = encode_object(result);
        if (encoded.size() > config_.object_size_maximum) {
            stats_.too_large++;
            return error_500(fmt::format("{{too_large,{}}}", encoded.size()));
        }
        if (result.siblings.size() > config_.siblings_maximum)
            return error_500(fmt::format("{{too_many_siblings,{}}}", result.siblings.size()));
        if (encoded.size() > config_.object_size_warning) {
            stats_.size_warnings++;
            std::fprintf(stderr,
                         "riak-devnode: warning: writing large object %s/%s/%s (%zu bytes)\n",
                         t.type.c_str(), t.bucket.c_str(), t.key.c_str(), encoded.size());
        }
        if (result.siblings.size() > config_.siblings_warning)
            std::fprintf(stderr, "riak-devnode: warning: object %s/%s/%s has %zu siblings\n",
                         t.type.c_str(), t.bucket.c_str(), t.key.c_str(), result.siblings.size());
        std::string err;
        if (!store_.put(t.type, t.bucket, t.key, cur, result, sync, err, &encoded))
            return error_500(fmt::format("{{backend_error,\"{}\"}}", err));
    }
    (sync ? stats_.sync_writes : stats_.async_writes)++;
    stats_.puts++;
    stats_.note_put();
    stats_.put_time_us += static_cast<uint64_t>(now_micros() - t0);

    bool returnbody = req.param("returnbody") == std::optional<std::string>("true");
    Response r;
    if (returnbody) {
        const Content* chosen = result.siblings.size() == 1 ? &result.siblings[0] : nullptr;
        r = render_object(req, result, t.bucket, chosen, t.v1);
        if (r.status == 406) r.status = 200; // the write happened; negotiation is moot
    } else {
        r.status = 204;
        r.set("Vary", "Accept-Encoding");
    }
    if (created) {
        r.status = 201;
        std::string loc = t.typed
                              ? fmt::format("/types/{}/buckets/{}/keys/{}", t.type, t.bucket, t.key)
                              : fmt::format("/buckets/{}/keys/{}", t.bucket, t.key);
        r.set("Location", loc);
    }
    return r;
}

std::optional<Response> Service::delete_object(Request& req, Target& t, bool body_read) {
    Quorums q;
    if (auto bad = check_quorums(req, t.props(), {"r", "w", "dw", "pw", "pr", "rw"}, q)) return bad;
    std::optional<VClock> client_clock;
    if (auto vc = req.header("X-Riak-Vclock")) {
        client_clock = decode_vclock(*vc);
        if (!client_clock) return error_500("{badarg,bad_vclock}");
    }
    if (!body_read) return std::nullopt;
    bool sync = wants_sync(req, t.props(), q);
    bool allow_mult = prop_bool(t.props(), "allow_mult", false);
    {
        std::lock_guard lk(store_.key_mutex(t.type, t.bucket, t.key));
        auto cur = load(t.type, t.bucket, t.key, true);
        bool exists = cur && !cur->all_deleted();
        // Every conditional header counts for DELETE too (webmachine G8-I13): If-None-Match
        // with `*` or the current tag on an existing object is a 412, like on PUT.
        if (conditional_headers_present(req)) {
            std::string etag = exists ? object_etag(*cur) : "";
            int64_t lm = exists ? cur->newest_modified_us() / 1000000 : 0;
            if (auto pc = preconditions(req, exists, etag, lm)) {
                Response r;
                r.status = *pc;
                return r;
            }
        }
        VClock ctx;
        if (client_clock) {
            ctx = *client_clock;
        } else {
            if (!exists) return not_found();
            ctx = cur->clock;
        }
        Content tomb;
        tomb.deleted = true;
        Object result = apply_write(cur, ctx, std::move(tomb), allow_mult);
        std::string err;
        bool ok = true;
        if (config_.delete_mode_ms == 0 && result.all_deleted()) {
            ok = store_.remove(t.type, t.bucket, t.key, cur, sync, err);
        } else {
            ok = store_.put(t.type, t.bucket, t.key, cur, result, sync, err);
        }
        if (!ok) return error_500(fmt::format("{{backend_error,\"{}\"}}", err));
    }
    (sync ? stats_.sync_writes : stats_.async_writes)++;
    stats_.deletes++;
    return status_only(204);
}

Response Service::list_keys(Request& req, Target& t) {
    auto keys = req.param("keys");
    if (auto tm = req.param("timeout"); tm && !parse_int(*tm))
        return text(400, fmt::format("Bad timeout value \"{}\"\n", *tm));
    if (!keys || (*keys != "true" && *keys != "stream"))
        return text(400, "Bad value for keys parameter: use keys=true or keys=stream\n");
    stats_.list_keys++;
    std::vector<std::string> all;
    store_.scan_objects(t.type, t.bucket, "", [&](std::string_view k, std::string_view v) {
        auto obj = decode_object(v);
        if (obj && tombstone_expired(*obj)) return true;
        all.emplace_back(k);
        return true;
    });
    return listing("keys", all, *keys == "stream");
}

Response Service::list_buckets(Request& req, Target& t) {
    auto b = req.param("buckets");
    if (!b || (*b != "true" && *b != "stream"))
        return text(400, "Bad value for buckets parameter: use buckets=true or buckets=stream\n");
    std::vector<std::string> all;
    for (auto& bucket : store_.buckets(t.type)) {
        bool any = false;
        store_.scan_objects(t.type, bucket, "", [&](std::string_view, std::string_view v) {
            auto obj = decode_object(v);
            any = obj && !tombstone_expired(*obj);
            return !any;
        });
        if (any) all.push_back(bucket);
    }
    return listing("buckets", all, *b == "stream");
}

Response Service::index_query(Request& req, Target& t) {
    stats_.index_queries++;
    std::string field = t.rest[0];
    bool range = t.rest.size() == 3;
    bool is_bucket = field == "$bucket";
    bool is_key = field == "$key";
    bool is_int = false;
    if (!is_bucket && !is_key) {
        field = to_lower(field);
        is_int = field.size() > 4 && field.substr(field.size() - 4) == "_int";
        bool is_bin = field.size() > 4 && field.substr(field.size() - 4) == "_bin";
        if (!is_int && !is_bin)
            return text(400, fmt::format("Unknown field type for field: '{}'.\n", field));
    }
    std::string start = t.rest[1];
    std::string end = range ? t.rest[2] : t.rest[1];
    if (is_int) {
        auto a = parse_int(start), b = parse_int(end);
        if (!a || !b)
            return text(400, fmt::format("Could not parse index value '{}'.\n", !a ? start : end));
        start = std::to_string(*a);
        end = std::to_string(*b);
    }
    if (is_key && !range) end = start;

    std::optional<uint64_t> max_results;
    if (auto m = req.param("max_results")) {
        auto v = parse_int(*m);
        if (!v || *v <= 0)
            return text(400, fmt::format("Invalid \"max_results\" parameter: {}\n", *m));
        max_results = static_cast<uint64_t>(*v);
    }
    std::optional<std::pair<std::string, std::string>> cont;
    if (auto c = req.param("continuation")) {
        auto raw = base64_decode(*c);
        bool ok = raw.has_value();
        if (ok) {
            RecordReader rr(*raw);
            std::string term = rr.str();
            std::string key = rr.str();
            ok = rr.ok() && rr.at_end();
            if (ok) cont.emplace(term, key);
        }
        if (!ok) return text(400, fmt::format("Invalid continuation: {}\n", *c));
    }
    bool return_terms = false;
    if (auto rt = req.param("return_terms")) {
        auto l = to_lower(*rt);
        if (l != "true" && l != "false")
            return text(400, fmt::format("Invalid \"return_terms\" parameter: {}\n", *rt));
        return_terms = l == "true" && range && !is_bucket;
    }
    bool stream = false;
    if (auto st = req.param("stream")) {
        auto l = to_lower(*st);
        if (l != "true" && l != "false")
            return text(400, fmt::format("Invalid \"stream\" parameter: {}\n", *st));
        stream = l == "true";
    }
    if (auto tm = req.param("timeout"); tm) {
        auto v = parse_int(*tm);
        if (!v || *v < 0) return text(400, fmt::format("Invalid \"timeout\" parameter: {}\n", *tm));
    }
    std::optional<std::regex> regex;
    if (auto re = req.param("term_regex")) {
        if (!range || is_int || is_bucket)
            return text(400, "Can not use term regular expressions on integer queries\n");
        try {
            regex.emplace(*re);
        } catch (const std::regex_error&) {
            return text(400, fmt::format("Invalid term regular expression {}\n", *re));
        }
    }

    std::vector<std::pair<std::string, std::string>> results; // term, key
    auto within = [&](const std::string& term) {
        if (is_int) return *parse_int(term) <= *parse_int(end);
        return term <= end;
    };
    auto accept_more = [&] { return !max_results || results.size() < *max_results; };
    if (is_bucket || is_key) {
        std::string from = is_bucket ? "" : start;
        if (cont) from = cont->second;
        store_.scan_objects(t.type, t.bucket, from, [&](std::string_view k, std::string_view v) {
            std::string key(k);
            if (cont && key == cont->second) return true;
            if (is_key && key > end) return false;
            auto obj = decode_object(v);
            if (obj && tombstone_expired(*obj)) return true;
            results.emplace_back(key, key);
            return accept_more();
        });
    } else {
        std::string from = cont ? cont->first : start;
        std::optional<std::string> after;
        if (cont) after = cont->second;
        store_.scan_index(t.type, t.bucket, field, is_int, from, after,
                          [&](const std::string& term, std::string_view key) {
                              if (!within(term)) return false;
                              if (regex && !std::regex_search(term, *regex)) return true;
                              results.emplace_back(term, std::string(key));
                              return accept_more();
                          });
    }

    auto body_of = [&](size_t from, size_t to) {
        json j;
        if (return_terms) {
            json arr = json::array();
            for (size_t i = from; i < to; ++i)
                arr.push_back(json{{results[i].first, results[i].second}});
            j["results"] = arr;
        } else {
            json arr = json::array();
            for (size_t i = from; i < to; ++i)
                arr.push_back(results[i].second);
            j["keys"] = arr;
        }
        return j;
    };
    std::optional<std::string> continuation;
    if (max_results && results.size() == *max_results && !results.empty()) {
        RecordWriter w;
        w.str(results.back().first);
        w.str(results.back().second);
        continuation = base64_encode(w.data());
    }
    Response r;
    r.status = 200;
    if (!stream) {
        r.set("Content-Type", "application/json");
        json j = body_of(0, results.size());
        if (continuation) j["continuation"] = *continuation;
        r.body = json_dump(j);
        return r;
    }
    std::string boundary = random_base62(96);
    r.set("Content-Type", "multipart/mixed;boundary=" + boundary);
    r.chunked = true;
    auto part = [&](const json& j) {
        return "\r\n--" + boundary + "\r\nContent-Type: application/json\r\n\r\n" + json_dump(j);
    };
    constexpr size_t kBatch = 1000;
    for (size_t i = 0; i < results.size(); i += kBatch)
        r.chunks.push_back(part(body_of(i, std::min(i + kBatch, results.size()))));
    if (continuation) r.chunks.push_back(part(json{{"continuation", *continuation}}));
    r.chunks.push_back("\r\n--" + boundary + "--\r\n");
    return r;
}

std::optional<Response> Service::bucket_props(Request& req, Target& t, bool body_read) {
    if (is_method(req, "GET") || is_method(req, "HEAD")) {
        if (!body_read) return std::nullopt;
        json props = t.props();
        props["name"] = t.bucket;
        Response r = text(200, json_dump(json{{"props", props}}), "application/json");
        r.head = is_method(req, "HEAD");
        return r;
    }
    if (is_method(req, "DELETE")) {
        if (!body_read) return std::nullopt;
        std::lock_guard lk(props_mu_);
        store_.delete_bucket_props(t.type, t.bucket);
        props_changed();
        return status_only(204);
    }
    if (!is_method(req, "PUT") && !is_method(req, "POST"))
        return method_not_allowed("GET, HEAD, PUT, POST, DELETE");
    if (!has_json_content_type(req)) return status_only(415);
    if (!body_read) return std::nullopt;
    json j;
    if (auto bad = read_props_body(req, t.type_props(), j)) return bad;
    std::lock_guard lk(props_mu_);
    json own = json::object();
    if (auto stored = store_.get_bucket_props(t.type, t.bucket)) {
        own = json::parse(*stored, nullptr, false);
        if (!own.is_object()) own = json::object();
    }
    for (const auto& [k, v] : j["props"].items()) {
        if (k != "name") own[k] = v;
    }
    store_.put_bucket_props(t.type, t.bucket, own.dump());
    props_changed();
    return status_only(204);
}

std::optional<Response> Service::type_props(Request& req, Target& t, bool body_read) {
    // riak_kv_wm_bucket_type: an unknown type is a missing resource, so after the method check
    // webmachine's own HTML 404 (observed on Riak 3.2.0), not the object routes' text.
    if (!is_method(req, "GET") && !is_method(req, "HEAD") && !is_method(req, "PUT"))
        return method_not_allowed("GET, HEAD, PUT");
    auto tp = type_properties(t.type);
    if (!tp) return webmachine_404();
    if (is_method(req, "GET") || is_method(req, "HEAD")) {
        if (!body_read) return std::nullopt;
        Response r = text(200, json_dump(json{{"props", *tp}}), "application/json");
        r.head = is_method(req, "HEAD");
        return r;
    }
    if (t.type == "default") return text(400, "Cannot modify the default bucket type\n");
    if (!has_json_content_type(req)) return status_only(415);
    if (!body_read) return std::nullopt;
    json j;
    if (auto bad = read_props_body(req, *tp, j)) return bad;
    std::lock_guard lk(props_mu_);
    for (const auto& [k, v] : j["props"].items())
        (*tp)[k] = v;
    store_.put_type(t.type, tp->dump());
    props_changed();
    return status_only(204);
}

std::optional<Response> Service::datatype(Request& req, Target& t, bool body_read) {
    if (t.type == "default") {
        Response r;
        r.status = 301;
        r.set("Location", fmt::format("/buckets/{}/counters/{}", proto::riak_quote_plus(t.bucket),
                                      proto::riak_quote_plus(t.key)));
        return r;
    }
    std::string dt = t.props().value("datatype", "");
    if (dt.empty())
        return text(404, fmt::format("Bucket type {} has no datatype property\n", t.type));
    if (!prop_bool(t.props(), "allow_mult", true))
        return text(403, "Bucket must be allow_mult=true\n");
    if (dt != "set" && dt != "counter")
        return text(501, fmt::format("riak-devnode does not implement the {} datatype\n", dt));
    Quorums q;
    if (auto bad = check_quorums(req, t.props(), {"r", "w", "dw", "pw", "pr", "node_confirms"}, q))
        return bad;
    bool include_context = to_lower(req.param("include_context").value_or("true")) != "false";

    auto render = [&](const CrdtValue& v) {
        json j{{"type", dt}};
        if (dt == "set") {
            j["value"] = v.set_members();
            if (include_context) j["context"] = v.context();
        } else {
            j["value"] = v.counter;
        }
        return text(200, json_dump(j), "application/json");
    };

    if (is_method(req, "GET") || is_method(req, "HEAD")) {
        if (!t.has_key) return method_not_allowed("POST");
        if (!body_read) return std::nullopt;
        stats_.crdt_fetches++;
        auto obj = load(t.type, t.bucket, t.key);
        std::optional<CrdtValue> v;
        if (obj && !obj->all_deleted()) {
            for (const auto& c : obj->siblings)
                if (!c.deleted) v = CrdtValue::decode(c.value);
        }
        if (!v)
            return text(404, json_dump(json{{"type", dt}, {"error", "notfound"}}),
                        "application/json");
        Response r = render(*v);
        r.head = is_method(req, "HEAD");
        return r;
    }
    if (!is_method(req, "POST")) return method_not_allowed("GET, HEAD, POST");
    if (!has_json_content_type(req)) return status_only(406);
    if (!body_read) return std::nullopt;
    json op = json::parse(req.body, nullptr, false);
    if (op.is_discarded()) return text(400, "Couldn't decode JSON: " + req.body + "\n");
    bool created = !t.has_key;
    if (created) {
        t.key = random_base62(64) + random_base62(64) + random_base62(32);
        if (t.key.size() > 27) t.key.resize(27);
    }
    CrdtValue result;
    {
        std::lock_guard lk(store_.key_mutex(t.type, t.bucket, t.key));
        auto cur = load(t.type, t.bucket, t.key, true);
        CrdtValue value;
        if (cur && !cur->all_deleted()) {
            for (const auto& c : cur->siblings)
                if (!c.deleted)
                    if (auto v = CrdtValue::decode(c.value)) value = *v;
        } else {
            value = CrdtValue::fresh();
        }
        std::string error;
        CrdtStatus st =
            dt == "set" ? value.apply_set_op(op, error) : value.apply_counter_op(op, error);
        if (st == CrdtStatus::kBadRequest)
            return text(400, fmt::format("Invalid operation on datatype '{}': {}\n", dt, error));
        if (st == CrdtStatus::kPrecondition) return error_500(error);
        Content c;
        c.content_type = dt == "set" ? "application/riak_set" : "application/riak_counter";
        c.value = value.encode();
        // A datatype is one converged value: the new state supersedes the stored one.
        Object obj = apply_write(cur, cur ? cur->clock : VClock{}, std::move(c), false);
        std::string encoded = encode_object(obj);
        if (encoded.size() > config_.object_size_maximum)
            return error_500(fmt::format("{{too_large,{}}}", encoded.size()));
        std::string err;
        bool sync = wants_sync(req, t.props(), q);
        if (!store_.put(t.type, t.bucket, t.key, cur, obj, sync, err))
            return error_500(fmt::format("{{backend_error,\"{}\"}}", err));
        (sync ? stats_.sync_writes : stats_.async_writes)++;
        result = value;
    }
    stats_.crdt_updates++;
    Response r;
    if (to_lower(req.param("returnbody").value_or("false")) == "true") {
        r = render(result);
    } else {
        r.status = 204;
    }
    if (created) {
        r.status = 201;
        // Riak 3.2.0 points at the object resource (`/keys/`), not at `/datatypes/`.
        r.set("Location", fmt::format("/types/{}/buckets/{}/keys/{}", t.type, t.bucket, t.key));
    }
    return r;
}

Response Service::stats_json(Request& req) {
    uint64_t gets = stats_.gets, puts = stats_.puts;
    long rss_pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        long size = 0;
        if (std::fscanf(f, "%ld %ld", &size, &rss_pages) != 2) rss_pages = 0;
        std::fclose(f);
    }
    uint64_t get_mean = gets ? stats_.get_time_us / gets : 0;
    uint64_t put_mean = puts ? stats_.put_time_us / puts : 0;
    json j{
        {"nodename", config_.node_name},
        {"connected_nodes", json::array()},
        {"ring_members", json::array({config_.node_name})},
        {"ring_num_partitions", 64},
        {"ring_creation_size", 64},
        {"storage_backend", "riak_kv_eleveldb_backend"},
        {"riak_kv_version", "3.0.16-devnode"},
        {"node_gets", stats_.window_gets()},
        {"node_gets_total", gets},
        {"node_puts", stats_.window_puts()},
        {"node_puts_total", puts},
        {"vnode_gets_total", gets},
        {"vnode_puts_total", puts},
        {"node_get_fsm_time_mean", get_mean},
        {"node_get_fsm_time_95", get_mean},
        {"node_get_fsm_time_99", get_mean},
        {"node_put_fsm_time_mean", put_mean},
        {"node_put_fsm_time_95", put_mean},
        {"node_put_fsm_time_99", put_mean},
        {"node_get_fsm_siblings_100", stats_.siblings_seen_max.load()},
        {"node_get_fsm_objsize_100", stats_.objsize_max.load()},
        {"node_get_fsm_rejected", 0},
        {"node_get_fsm_rejected_60s", 0},
        {"node_get_fsm_rejected_total", 0},
        {"node_put_fsm_rejected", 0},
        {"node_put_fsm_rejected_60s", 0},
        {"node_put_fsm_rejected_total", 0},
        {"node_get_fsm_active", 0},
        {"node_put_fsm_active", 0},
        {"read_repairs", 0},
        {"read_repairs_total", 0},
        {"list_fsm_active", 0},
        {"index_fsm_active", 0},
        {"memory_total", rss_pages * 4096},
        {"memory_processes", rss_pages * 4096},
        {"sys_process_count", stats_.connections_active.load()},
        {"object_deletes_total", stats_.deletes.load()},
        {"object_set_merge_total", stats_.crdt_updates.load()},
        {"index_fsm_create", stats_.index_queries.load()},
        {"list_fsm_create", stats_.list_keys.load()},
        {"devnode_requests_total", stats_.requests.load()},
        {"devnode_sync_writes_total", stats_.sync_writes.load()},
        {"devnode_async_writes_total", stats_.async_writes.load()},
        {"devnode_too_large_total", stats_.too_large.load()},
        {"devnode_size_warnings_total", stats_.size_warnings.load()},
        {"devnode_tombstones_reaped_total", stats_.reaped.load()},
        {"devnode_connections_accepted_total", stats_.connections_accepted.load()},
        {"devnode_connections_active", stats_.connections_active.load()},
        {"devnode_faults_injected_total", stats_.faults_injected.load()},
        {"devnode_connections_refused_total", stats_.faults_refused_connections.load()},
        {"devnode_body_timeouts_total", stats_.body_timeouts.load()},
        {"devnode_tls_handshakes_total", stats_.tls_handshakes.load()},
        {"devnode_tls_resumed_total", stats_.tls_resumed.load()},
        {"devnode_tls_failures_total", stats_.tls_failures.load()},
        {"devnode_auth_refusals_total", stats_.auth_refusals.load()},
        {"devnode_uptime_seconds", (now_micros() - stats_.started_us) / 1000000},
    };
    bool pretty = accept_q(req.header("Accept"), "text/plain") >
                  accept_q(req.header("Accept"), "application/json");
    Response r =
        text(200, pretty ? j.dump(4) : j.dump(), pretty ? "text/plain" : "application/json");
    r.head = is_method(req, "HEAD");
    return r;
}

std::optional<Response> Service::admin_types(Request& req, bool body_read) {
    if (req.seg().size() != 3) return generic_404();
    const std::string& name = req.seg()[2];
    if (is_method(req, "GET")) {
        auto tp = type_properties(name);
        if (!tp) return text(404, fmt::format("Unknown bucket type: {}", name));
        return text(200, json_dump(json{{"props", *tp}}), "application/json");
    }
    if (!is_method(req, "PUT")) return method_not_allowed("GET, PUT");
    if (!body_read) return std::nullopt;
    if (name == "default") return text(400, "The default bucket type always exists\n");
    json props = json::object();
    if (!trim(req.body).empty()) {
        json j = json::parse(req.body, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            return text(400, "Body must be {\"props\":{...}}\n");
        props = j.contains("props") ? j["props"] : j;
    }
    if (auto bad = props_errors(validate_props(props, true, json::object()))) return bad;
    std::lock_guard lk(props_mu_);
    if (store_.get_type(name)) {
        return status_only(204);
    }
    json full = default_type_props();
    full["allow_mult"] = true;
    full["dvv_enabled"] = true;
    full["active"] = true;
    full["claimant"] = config_.node_name;
    for (const auto& [k, v] : props.items())
        full[k] = v;
    store_.put_type(name, full.dump());
    props_changed();
    return status_only(201);
}

} // namespace rfs::devnode
