// Riak KV HTTP resources of riak-devnode (see service.hpp): objects (GET, PUT, DELETE; conditions,
// encodings, siblings). Any thread.
//
// Section numbers in comments (§N) name the topics listed in lib/devnode/README.md.
#include "lib/devnode/service_internal.hpp"

#include <algorithm>
#include <ctime>
#include <zlib.h>

#include <fmt/format.h>

#include "lib/devnode/encoding.hpp"

namespace rfs::devnode {

using namespace service_support;

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
            // "Now" from the clock Last-Modified comes from (now_seconds): with time(), a
            // Last-Modified of this very second could look like a date in the future for a
            // few milliseconds, and be ignored (200 instead of 304).
            if (d && *d <= now_seconds() && last_modified_s <= *d) return 304;
        }
    }
    return std::nullopt;
}

bool conditional_headers_present(const Request& req) {
    return req.header("If-None-Match") || req.header("If-Match") ||
           req.header("If-Unmodified-Since") || req.header("X-Riak-If-Not-Modified");
}

std::string object_etag(const Object& obj) {
    if (obj.siblings.size() == 1) return obj.siblings[0].vtag;
    return siblings_etag(obj);
}

// preconditions() for a write (PUT or DELETE) against the stored object `cur` (absent or a
// tombstone counts as not existing): the tag and date of what is stored now.
std::optional<int> write_preconditions(const Request& req, const std::optional<Object>& cur) {
    const bool exists = cur && !cur->all_deleted();
    if (!exists) return preconditions(req, false, "", 0);
    return preconditions(req, true, object_etag(*cur), cur->newest_modified_us() / 1000000);
}

// Content-coding negotiation of an object GET (§2.4): offered is the stored Content-Encoding, or
// identity and gzip. Returns the chosen coding, or nullopt for a 406.
std::optional<std::string> choose_encoding(const std::optional<std::string>& header,
                                           const std::string& stored) {
    std::vector<std::string> offered = stored.empty() ? std::vector<std::string>{"identity", "gzip"}
                                                      : std::vector<std::string>{to_lower(stored)};
    const std::string h = header ? *header : "identity;q=1.0,*;q=0.5";
    std::vector<std::pair<std::string, double>> prefs;
    for (const auto& [coding, q] : weighted_list(h))
        prefs.emplace_back(to_lower(coding), q);
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
    const auto items = weighted_list(*header);
    return std::any_of(items.begin(), items.end(), [&](const Weighted& w) {
        return (w.value == "*" || iequals(w.value, charset)) && w.q > 0.0;
    });
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
        if (auto pc = write_preconditions(req, cur)) return status_only(*pc);
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
        if (conditional_headers_present(req))
            if (auto pc = write_preconditions(req, cur)) return status_only(*pc);
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

} // namespace rfs::devnode
