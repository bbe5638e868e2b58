// Riak HTTP messages <-> structs; see riak_messages.hpp.
#include "proto/riak_messages.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/serializer.hpp>

#include "proto/text.hpp"

namespace rfs::proto {
namespace {

using json = nlohmann::json;

constexpr std::string_view kMetaPrefix = "x-riak-meta-";
constexpr std::string_view kIndexPrefix = "x-riak-index-";
constexpr std::string_view kMultipartAccept = "multipart/mixed, */*;q=0.5";

std::string unquote_etag(std::string_view v) {
    v = trim(v);
    if (v.size() >= 2 && (v[0] == 'W' || v[0] == 'w') && v[1] == '/') v.remove_prefix(2);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return std::string(v);
}

void apply_header(RiakObject& obj, std::string_view name, std::string_view value) {
    if (iequals(name, "content-type")) {
        obj.content_type = trim(value);
    } else if (iequals(name, "content-encoding")) {
        obj.content_encoding = trim(value);
    } else if (iequals(name, "x-riak-vclock")) {
        obj.vclock = trim(value);
    } else if (iequals(name, "etag")) {
        obj.etag = unquote_etag(value);
    } else if (iequals(name, "last-modified")) {
        obj.last_modified = trim(value);
    } else if (iequals(name, "x-riak-deleted")) {
        obj.deleted = iequals(trim(value), "true");
    } else if (istarts_with(name, kMetaPrefix) && name.size() > kMetaPrefix.size()) {
        obj.meta.emplace_back(name.substr(kMetaPrefix.size()), trim(value));
    } else if (istarts_with(name, kIndexPrefix) && name.size() > kIndexPrefix.size()) {
        const std::string field = to_lower(name.substr(kIndexPrefix.size()));
        for (const auto& v : split_index_values(value))
            obj.indexes.push_back(IndexEntry{field, std::string(trim(v))});
    }
}

std::string body_summary(std::string_view body) {
    std::string s;
    for (const char c : body.substr(0, 240))
        s.push_back(c == '\n' || c == '\r' ? ' ' : c);
    return std::string(trim(s));
}

bool is_integer(std::string_view v) noexcept {
    if (!v.empty() && (v.front() == '-' || v.front() == '+')) v.remove_prefix(1);
    return !v.empty() &&
           std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<json> parse_json(std::string_view body, std::string_view what) {
    json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded()) return make_error(EPROTO, "{}: invalid JSON", what);
    return j;
}

Error in_band_error(const json& j) {
    const auto& e = j["error"];
    return make_error(EIO, "riak error: {}", e.is_string() ? e.get<std::string>() : dump(e));
}

Result<void> append_strings(const json& arr, std::vector<std::string>& out, std::string_view what) {
    if (!arr.is_array()) return make_error(EPROTO, "{}: expected an array", what);
    for (const auto& v : arr) {
        if (!v.is_string()) return make_error(EPROTO, "{}: expected strings", what);
        out.push_back(v.get<std::string>());
    }
    return {};
}

Result<void> check_utf8(const std::vector<std::string>& items, std::string_view what) {
    for (const auto& s : items)
        if (!is_valid_utf8(s)) return make_error(EINVAL, "{} is not valid UTF-8", what);
    return {};
}

Result<void> set_checked(Request& req, std::string_view name, std::string_view value) {
    if (!is_header_safe(value))
        return make_error(EINVAL, "value of header {} is not header-safe", name);
    if (name.size() + 2 + value.size() > kMaxHeaderLine)
        return make_error(EMSGSIZE, "header {} is longer than Riak accepts", name);
    req.insert(name, value);
    return {};
}

Result<void> apply_conditions(Request& req, const Conditions& c) {
    const auto etag_header = [&](std::string_view name,
                                 const std::optional<std::string>& tag) -> Result<void> {
        if (!tag) return {};
        if (*tag == "*") return set_checked(req, name, "*");
        if (tag->empty() || tag->find('"') != std::string::npos)
            return make_error(EINVAL, "bad ETag for {}", name);
        return set_checked(req, name, "\"" + *tag + "\"");
    };
    if (auto r = etag_header("If-None-Match", c.if_none_match); !r) return r;
    if (auto r = etag_header("If-Match", c.if_match); !r) return r;
    if (c.if_modified_since)
        req.set(http::field::if_modified_since, format_http_date(*c.if_modified_since));
    if (c.if_unmodified_since)
        req.set(http::field::if_unmodified_since, format_http_date(*c.if_unmodified_since));
    if (!c.if_not_modified.empty())
        if (auto r = set_checked(req, "X-Riak-If-Not-Modified", c.if_not_modified); !r) return r;
    return {};
}

// Appends Riak's per-object headers in the form GET responses and multipart parts use.
void append_object_headers(std::string& out, const RiakObject& obj) {
    const auto line = [&](std::string_view name, std::string_view value) {
        out.append(name).append(": ").append(value).append("\r\n");
    };
    line("Content-Type", obj.content_type.empty() ? "application/octet-stream" : obj.content_type);
    if (!obj.content_encoding.empty()) line("Content-Encoding", obj.content_encoding);
    if (!obj.etag.empty()) line("Etag", obj.etag);
    if (!obj.last_modified.empty()) line("Last-Modified", obj.last_modified);
    if (obj.deleted) line("X-Riak-Deleted", "true");
    for (const auto& [name, value] : obj.meta)
        line("X-Riak-Meta-" + name, value);
    for (const auto& idx : obj.indexes)
        line("x-riak-index-" + idx.field, idx.value);
}

template <bool IsRequest>
std::string serialize(const http::message<IsRequest, http::string_body>& msg) {
    http::serializer<IsRequest, http::string_body> sr{msg};
    std::string out;
    out.reserve(msg.body().size() + 512);
    boost::system::error_code ec;
    while (!ec && !sr.is_done()) {
        sr.next(ec, [&](boost::system::error_code&, const auto& buffers) {
            std::size_t n = 0;
            for (auto it = boost::asio::buffer_sequence_begin(buffers);
                 it != boost::asio::buffer_sequence_end(buffers); ++it) {
                const boost::asio::const_buffer b = *it;
                out.append(static_cast<const char*>(b.data()), b.size());
                n += b.size();
            }
            sr.consume(n);
        });
    }
    return out;
}

} // namespace

std::string to_wire(const Request& request) {
    return serialize(request);
}
std::string to_wire(const Response& response) {
    return serialize(response);
}

// ---- Objects --------------------------------------------------------------------------------

const std::string* RiakObject::find_meta(std::string_view name) const {
    for (const auto& [k, v] : meta)
        if (iequals(k, name)) return &v;
    return nullptr;
}

void RiakObject::set_meta(std::string_view name, std::string value) {
    std::erase_if(meta, [&](const auto& kv) { return iequals(kv.first, name); });
    meta.emplace_back(std::string(name), std::move(value));
}

std::vector<std::string> RiakObject::index_values(std::string_view field) const {
    std::vector<std::string> out;
    for (const auto& e : indexes)
        if (iequals(e.field, field)) out.push_back(e.value);
    return out;
}

void RiakObject::add_index(std::string field, std::string value) {
    indexes.push_back(IndexEntry{to_lower(field), std::move(value)});
}

bool is_header_safe(std::string_view value) noexcept {
    for (const char ch : value) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t') || c >= 0x7F) return false;
    }
    return value.empty() || (value.front() != ' ' && value.front() != '\t' && value.back() != ' ' &&
                             value.back() != '\t');
}

bool is_token(std::string_view name) noexcept {
    static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               kExtra.find(c) != std::string_view::npos;
    });
}

RiakObject object_from_headers(const http::fields& fields, std::string body) {
    RiakObject obj;
    for (const auto& f : fields)
        apply_header(obj, f.name_string(), f.value());
    obj.value = std::move(body);
    return obj;
}

RiakObject object_from_headers(const HeaderList& headers, std::string body) {
    RiakObject obj;
    for (const auto& [name, value] : headers)
        apply_header(obj, name, value);
    obj.value = std::move(body);
    return obj;
}

// ---- Requests -------------------------------------------------------------------------------

Request make_request(http::verb method, std::string_view host, std::string target) {
    Request req;
    req.method(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, host);
    return req;
}

Result<Request> make_fetch_request(std::string_view host, const ObjectId& id,
                                   const FetchOptions& options) {
    auto target = object_target(id, QueryParams().add(options.params));
    if (!target) return std::move(target).error();
    Request req = make_request(options.head ? http::verb::head : http::verb::get, host, *target);
    if (options.multipart_siblings) req.set(http::field::accept, kMultipartAccept);
    if (auto r = apply_conditions(req, options.conditions); !r) return std::move(r).error();
    req.prepare_payload();
    return req;
}

namespace {
// `movable_value`: object's value when the caller gives it up (moved into the body, not copied).
Result<Request> make_store_request(std::string_view host, const ObjectId& id,
                                   const RiakObject& object, const StoreOptions& options,
                                   std::string* movable_value) {
    const QueryParams query = QueryParams().add(options.params);
    const bool server_key = id.key.empty();
    auto target = server_key ? bucket_keys_target(id.bucket_id(), query) : object_target(id, query);
    if (!target) return std::move(target).error();
    const auto verb = server_key || options.use_post ? http::verb::post : http::verb::put;
    Request req = make_request(verb, host, *target);

    const std::string& type =
        object.content_type.empty() ? std::string("application/octet-stream") : object.content_type;
    if (type.find('/') == std::string::npos)
        return make_error(EINVAL, "Content-Type '{}' has no type/subtype form", type);
    if (auto r = set_checked(req, "Content-Type", type); !r) return std::move(r).error();
    if (!object.content_encoding.empty())
        if (auto r = set_checked(req, "Content-Encoding", object.content_encoding); !r)
            return std::move(r).error();
    if (!object.vclock.empty())
        if (auto r = set_checked(req, "X-Riak-Vclock", object.vclock); !r)
            return std::move(r).error();
    for (const auto& [name, value] : object.meta) {
        if (!is_token(name)) return make_error(EINVAL, "meta name '{}' is not a token", name);
        if (auto r = set_checked(req, "X-Riak-Meta-" + name, value); !r)
            return std::move(r).error();
    }
    for (const auto& idx : object.indexes) {
        const std::string field = to_lower(idx.field);
        if (!is_token(field) || !(field.ends_with("_bin") || field.ends_with("_int")))
            return make_error(EINVAL, "index field '{}' must end in _bin or _int", idx.field);
        if (field.ends_with("_int") && !is_integer(idx.value))
            return make_error(EINVAL, "index {} value is not an integer", field);
        if (split_index_values(idx.value).size() != 1)
            return make_error(EINVAL, "index {} value contains ', ' (Riak would split it)", field);
        if (auto r = set_checked(req, "X-Riak-Index-" + field, idx.value); !r)
            return std::move(r).error();
    }
    if (options.multipart_siblings && options.params.returnbody.value_or(false))
        req.set(http::field::accept, kMultipartAccept);
    if (auto r = apply_conditions(req, options.conditions); !r) return std::move(r).error();
    req.body() = movable_value ? std::move(*movable_value) : object.value;
    req.prepare_payload();
    return req;
}
} // namespace

Result<Request> make_store_request(std::string_view host, const ObjectId& id,
                                   const RiakObject& object, const StoreOptions& options) {
    return make_store_request(host, id, object, options, nullptr);
}

Result<Request> make_store_request(std::string_view host, const ObjectId& id, RiakObject&& object,
                                   const StoreOptions& options) {
    return make_store_request(host, id, object, options, &object.value);
}

Result<Request> make_delete_request(std::string_view host, const ObjectId& id,
                                    const DeleteOptions& options) {
    auto target = object_target(id, QueryParams().add(options.params));
    if (!target) return std::move(target).error();
    Request req = make_request(http::verb::delete_, host, *target);
    if (!options.vclock.empty())
        if (auto r = set_checked(req, "X-Riak-Vclock", options.vclock); !r)
            return std::move(r).error();
    if (auto r = apply_conditions(req, options.conditions); !r) return std::move(r).error();
    req.prepare_payload();
    return req;
}

Result<Request> make_bucket_props_request(std::string_view host, const BucketId& bucket,
                                          const BucketProps& props) {
    auto target = bucket_props_target(bucket);
    if (!target) return std::move(target).error();
    auto body = format_bucket_props(props);
    if (!body) return std::move(body).error();
    Request req = make_request(http::verb::put, host, *target);
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(*body);
    req.prepare_payload();
    return req;
}

// ---- Object responses -----------------------------------------------------------------------

Error error_from_response(const Response& res) {
    const unsigned status = res.result_int();
    const std::string summary = body_summary(res.body());
    int code = EPROTO;
    switch (status) {
    case 400:
        code = EINVAL;
        break;
    case 401:
    case 403:
    case 426:
        code = EACCES;
        break;
    case 404:
        code = ENOENT;
        break;
    case 406:
    case 415:
        code = EPROTO;
        break;
    case 409:
        code = ESTALE;
        break;
    case 412:
        code = EEXIST;
        break;
    case 413:
    case 431:
        code = ENAMETOOLONG;
        break;
    case 500:
        if (summary.find("too_large") != std::string::npos)
            code = EFBIG;
        else if (summary.find("too_many_siblings") != std::string::npos)
            code = EMLINK;
        else if (summary.find("overload") != std::string::npos ||
                 summary.find("insufficient_vnodes") != std::string::npos)
            code = EAGAIN;
        else
            code = EIO;
        break;
    case 503:
        code = ETIMEDOUT;
        break;
    default:
        code = status >= 500 ? EIO : EPROTO;
        break;
    }
    return make_error(code, fmt::format("HTTP {}: {}", status, summary), status);
}

namespace {
// `movable_body`: res's body when the caller gives it up (a 200's value is moved, not copied).
Result<ObjectResponse> parse_object_response(const Response& res, bool head,
                                             std::string* movable_body) {
    ObjectResponse out;
    out.status = res.result_int();
    switch (out.status) {
    case 200:
        out.outcome = Outcome::ok;
        out.object = object_from_headers(res.base(), head           ? std::string()
                                                     : movable_body ? std::move(*movable_body)
                                                                    : res.body());
        break;
    case 201: {
        out.outcome = Outcome::created;
        const std::string_view location = res[http::field::location];
        const auto slash = location.rfind('/');
        if (location.empty() || slash == std::string_view::npos || slash + 1 == location.size())
            return make_error(EPROTO, "201 without a usable Location");
        out.key = riak_unquote(location.substr(slash + 1));
        break;
    }
    case 204:
        out.outcome = Outcome::no_content;
        break;
    case 300: {
        out.outcome = Outcome::siblings;
        if (head) break;
        const std::string_view type = res[http::field::content_type];
        if (istarts_with(trim(type), "multipart/")) {
            const auto boundary = multipart_boundary(type);
            if (!boundary) return make_error(EPROTO, "multipart 300 without a boundary");
            auto parts = parse_multipart(res.body(), *boundary);
            if (!parts) return std::move(parts).error();
            for (auto& part : *parts) {
                RiakObject sib = object_from_headers(part.headers, std::move(part.body));
                sib.vclock = std::string(trim(res["X-Riak-Vclock"]));
                out.vtags.push_back(sib.etag);
                out.siblings.push_back(std::move(sib));
            }
        } else {
            auto vtags = parse_sibling_list(res.body());
            if (!vtags) return std::move(vtags).error();
            out.vtags = std::move(*vtags);
        }
        break;
    }
    case 304:
        out.outcome = Outcome::not_modified;
        break;
    case 404:
        out.outcome = Outcome::not_found;
        out.object = object_from_headers(res.base(), std::string());
        out.object.content_type.clear(); // the "not found" page's type, not the object's
        break;
    default:
        return error_from_response(res);
    }
    out.vclock = std::string(trim(res["X-Riak-Vclock"]));
    return out;
}
} // namespace

Result<ObjectResponse> parse_object_response(const Response& res, bool head) {
    return parse_object_response(res, head, nullptr);
}

Result<ObjectResponse> parse_object_response(Response&& res, bool head) {
    return parse_object_response(res, head, &res.body());
}

// ---- Siblings -------------------------------------------------------------------------------

Result<std::vector<std::string>> parse_sibling_list(std::string_view body) {
    std::vector<std::string> vtags;
    bool first = true;
    while (!body.empty()) {
        const auto nl = body.find('\n');
        const std::string_view line = trim(body.substr(0, nl));
        body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
        if (first) {
            if (line != "Siblings:") return make_error(EPROTO, "300 body is not a sibling list");
            first = false;
        } else if (!line.empty()) {
            vtags.emplace_back(line);
        }
    }
    if (first) return make_error(EPROTO, "empty sibling list");
    return vtags;
}

std::string format_sibling_list(const std::vector<std::string>& vtags) {
    std::string out = "Siblings:\n";
    for (const auto& v : vtags)
        out += v + "\n";
    return out;
}

std::optional<std::string> multipart_boundary(std::string_view content_type) {
    std::size_t pos = content_type.find(';');
    while (pos != std::string_view::npos) {
        std::string_view rest = content_type.substr(pos + 1);
        const auto next = rest.find(';');
        std::string_view param = trim(rest.substr(0, next));
        const auto eq = param.find('=');
        if (eq != std::string_view::npos && iequals(trim(param.substr(0, eq)), "boundary")) {
            std::string_view v = trim(param.substr(eq + 1));
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
            if (v.empty()) return std::nullopt;
            return std::string(v);
        }
        pos = next == std::string_view::npos ? next : pos + 1 + next;
    }
    return std::nullopt;
}

Result<std::vector<MultipartPart>> parse_multipart(std::string_view body,
                                                   std::string_view boundary) {
    const std::string delim = "--" + std::string(boundary);
    // A delimiter counts only at the start of the body or right after a line break.
    const auto find_delim = [&](std::size_t from) -> std::size_t {
        for (std::size_t p = body.find(delim, from); p != std::string_view::npos;
             p = body.find(delim, p + 1)) {
            if (p == 0 || body[p - 1] == '\n') return p;
        }
        return std::string_view::npos;
    };
    std::vector<MultipartPart> parts;
    std::size_t pos = find_delim(0);
    if (pos == std::string_view::npos) return make_error(EPROTO, "multipart body has no delimiter");
    for (;;) {
        std::size_t p = pos + delim.size();
        if (body.substr(p, 2) == "--") return parts; // close delimiter; epilogue ignored
        while (p < body.size() && (body[p] == ' ' || body[p] == '\t'))
            ++p;
        if (body.substr(p, 2) == "\r\n")
            p += 2;
        else if (body.substr(p, 1) == "\n")
            p += 1;
        else
            return make_error(EPROTO, "malformed multipart delimiter line");
        const std::size_t next = find_delim(p);
        if (next == std::string_view::npos)
            return make_error(EPROTO, "multipart body has no closing delimiter");
        // The line break before the next delimiter belongs to the delimiter.
        std::size_t end = next;
        if (end > p && body[end - 1] == '\n') --end;
        if (end > p && body[end - 1] == '\r') --end;
        std::string_view part = body.substr(p, end - p);
        MultipartPart mp;
        for (;;) {
            const auto nl = part.find('\n');
            std::string_view line = part.substr(0, nl);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            part = nl == std::string_view::npos ? std::string_view() : part.substr(nl + 1);
            if (line.empty()) break;
            const auto colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0)
                return make_error(EPROTO, "malformed multipart part header");
            mp.headers.emplace_back(std::string(line.substr(0, colon)),
                                    std::string(trim(line.substr(colon + 1))));
            if (nl == std::string_view::npos) break;
        }
        mp.body = std::string(part);
        parts.push_back(std::move(mp));
        pos = next;
    }
}

std::string format_multipart_siblings(std::string_view boundary,
                                      const std::vector<RiakObject>& siblings) {
    std::string out = "\r\n";
    for (const auto& sib : siblings) {
        out.append("--").append(boundary).append("\r\n");
        append_object_headers(out, sib);
        out.append("\r\n").append(sib.value).append("\r\n");
    }
    out.append("--").append(boundary).append("--\r\n");
    return out;
}

// ---- Listings -------------------------------------------------------------------------------

Result<std::vector<std::string>> parse_key_list(std::string_view body, std::string_view member) {
    auto j = parse_json(body, "key list");
    if (!j) return std::move(j).error();
    if (!j->is_object()) return make_error(EPROTO, "key list: expected an object");
    if (j->contains("error")) return in_band_error(*j);
    const auto it = j->find(member);
    if (it == j->end()) return make_error(EPROTO, "key list: no '{}' member", member);
    std::vector<std::string> keys;
    if (auto r = append_strings(*it, keys, "key list"); !r) return std::move(r).error();
    return keys;
}

Result<std::string> format_key_list(const std::vector<std::string>& keys, std::string_view member) {
    if (auto r = check_utf8(keys, "key"); !r) return std::move(r).error();
    json j = json::object();
    j[std::string(member)] = keys;
    return dump(j);
}

Result<void> JsonObjectStream::feed(std::string_view bytes, std::vector<nlohmann::json>& out) {
    if (failed_) return make_error(EPROTO, "JSON stream already failed");
    std::size_t start = 0; // start of the not-yet-buffered part of an open object in `bytes`
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const char c = bytes[i];
        if (depth_ == 0) {
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
            if (c != '{') {
                failed_ = true;
                return make_error(EPROTO, "JSON stream: unexpected byte between objects");
            }
            start = i;
            depth_ = 1;
            continue;
        }
        if (in_string_) {
            if (escape_)
                escape_ = false;
            else if (c == '\\')
                escape_ = true;
            else if (c == '"')
                in_string_ = false;
            continue;
        }
        if (c == '"') {
            in_string_ = true;
        } else if (c == '{' || c == '[') {
            ++depth_;
        } else if (c == '}' || c == ']') {
            if (--depth_ == 0) {
                buf_.append(bytes.substr(start, i + 1 - start));
                json j = json::parse(buf_, nullptr, false);
                buf_.clear();
                if (j.is_discarded()) {
                    failed_ = true;
                    return make_error(EPROTO, "JSON stream: invalid object");
                }
                out.push_back(std::move(j));
            }
        }
    }
    if (depth_ > 0) buf_.append(bytes.substr(start));
    return {};
}

Result<void> JsonObjectStream::finish() const {
    if (failed_) return make_error(EPROTO, "JSON stream failed");
    if (depth_ > 0) return make_error(EPROTO, "JSON stream ends inside an object");
    return {};
}

Result<void> KeyStreamDecoder::feed(std::string_view bytes) {
    std::vector<json> objects;
    auto r = stream_.feed(bytes, objects);
    for (const auto& j : objects) {
        if (j.contains("error")) return in_band_error(j);
        const auto it = j.find(member_);
        if (it == j.end()) return make_error(EPROTO, "key stream: object without '{}'", member_);
        if (auto a = append_strings(*it, keys_, "key stream"); !a) return a;
    }
    return r;
}

Result<std::vector<std::string>> parse_key_stream(std::string_view body, std::string_view member) {
    KeyStreamDecoder dec{std::string(member)};
    if (auto r = dec.feed(body); !r) return std::move(r).error();
    if (auto r = dec.finish(); !r) return std::move(r).error();
    return dec.take_keys();
}

// ---- Secondary indexes ----------------------------------------------------------------------

namespace {

Result<void> merge_index_json(const json& j, IndexResults& out) {
    if (!j.is_object()) return make_error(EPROTO, "2i: expected an object");
    if (j.contains("error")) return in_band_error(j);
    if (const auto it = j.find("keys"); it != j.end())
        if (auto r = append_strings(*it, out.keys, "2i keys"); !r) return r;
    if (const auto it = j.find("results"); it != j.end()) {
        if (!it->is_array()) return make_error(EPROTO, "2i results: expected an array");
        for (const auto& entry : *it) {
            if (!entry.is_object() || entry.size() != 1 || !entry.begin().value().is_string())
                return make_error(EPROTO, "2i results: expected {{term: key}} objects");
            out.terms.emplace_back(entry.begin().key(), entry.begin().value().get<std::string>());
        }
    }
    if (const auto it = j.find("continuation"); it != j.end()) {
        if (!it->is_string() && !it->is_null())
            return make_error(EPROTO, "2i continuation: expected a string");
        out.continuation = it->is_string() ? it->get<std::string>() : std::string();
    }
    return {};
}

} // namespace

Result<IndexResults> parse_index_results(std::string_view body) {
    auto j = parse_json(body, "2i results");
    if (!j) return std::move(j).error();
    IndexResults out;
    if (auto r = merge_index_json(*j, out); !r) return std::move(r).error();
    return out;
}

Result<IndexResults> parse_index_stream(std::string_view content_type, std::string_view body) {
    const auto boundary = multipart_boundary(content_type);
    if (!boundary) return make_error(EPROTO, "2i stream without a multipart boundary");
    auto parts = parse_multipart(body, *boundary);
    if (!parts) return std::move(parts).error();
    IndexResults out;
    for (const auto& part : *parts) {
        auto j = parse_json(part.body, "2i stream part");
        if (!j) return std::move(j).error();
        if (auto r = merge_index_json(*j, out); !r) return std::move(r).error();
    }
    return out;
}

Result<std::string> format_index_results(const IndexResults& results) {
    if (auto r = check_utf8(results.keys, "2i key"); !r) return std::move(r).error();
    json j = json::object();
    if (!results.terms.empty()) {
        json arr = json::array();
        for (const auto& [term, key] : results.terms) {
            if (!is_valid_utf8(term) || !is_valid_utf8(key))
                return make_error(EINVAL, "2i term or key is not valid UTF-8");
            json entry = json::object();
            entry[term] = key;
            arr.push_back(std::move(entry));
        }
        j["results"] = std::move(arr);
    } else {
        j["keys"] = results.keys;
    }
    if (!results.continuation.empty()) j["continuation"] = results.continuation;
    return dump(j);
}

// ---- Bucket props, ping, stats --------------------------------------------------------------

namespace {

// The boolean and quorum members of BucketProps with their JSON names, in one list so that
// parsing and formatting cannot drift apart. `P` is BucketProps or const BucketProps.
template <typename P, typename BoolFn, typename QuorumFn>
void for_each_typed_prop(P& p, const BoolFn& boolean, const QuorumFn& quorum) {
    boolean("allow_mult", p.allow_mult);
    boolean("last_write_wins", p.last_write_wins);
    boolean("dvv_enabled", p.dvv_enabled);
    boolean("basic_quorum", p.basic_quorum);
    boolean("notfound_ok", p.notfound_ok);
    boolean("write_once", p.write_once);
    boolean("consistent", p.consistent);
    quorum("r", p.r);
    quorum("w", p.w);
    quorum("dw", p.dw);
    quorum("rw", p.rw);
    quorum("pr", p.pr);
    quorum("pw", p.pw);
    quorum("node_confirms", p.node_confirms);
}

} // namespace

Result<BucketProps> parse_bucket_props(std::string_view body) {
    auto j = parse_json(body, "bucket props");
    if (!j) return std::move(j).error();
    if (!j->is_object() || !j->contains("props") || !(*j)["props"].is_object())
        return make_error(EPROTO, "bucket props: expected {{\"props\":{{...}}}}");
    BucketProps p;
    p.raw = (*j)["props"];
    const json& props = p.raw;
    const auto boolean = [&](const char* name, std::optional<bool>& dst) {
        if (const auto it = props.find(name); it != props.end() && it->is_boolean())
            dst = it->get<bool>();
    };
    const auto quorum = [&](const char* name, std::optional<Quorum>& dst) {
        const auto it = props.find(name);
        if (it == props.end()) return;
        if (it->is_number_unsigned())
            dst = Quorum::n(it->get<std::uint32_t>());
        else if (it->is_string())
            dst = Quorum::parse(it->get<std::string>());
    };
    if (const auto it = props.find("n_val"); it != props.end() && it->is_number_unsigned())
        p.n_val = it->get<std::uint32_t>();
    for_each_typed_prop(p, boolean, quorum);
    if (const auto it = props.find("datatype"); it != props.end() && it->is_string())
        p.datatype = it->get<std::string>();
    return p;
}

Result<std::string> format_bucket_props(const BucketProps& p) {
    json props = p.raw.is_object() ? p.raw : json::object();
    const auto boolean = [&](const char* name, const std::optional<bool>& v) {
        if (v) props[name] = *v;
    };
    const auto quorum = [&](const char* name, const std::optional<Quorum>& q) {
        if (!q) return;
        if (q->kind() == Quorum::Kind::number)
            props[name] = q->number();
        else
            props[name] = q->to_string();
    };
    if (p.n_val) props["n_val"] = *p.n_val;
    for_each_typed_prop(p, boolean, quorum);
    if (p.datatype) props["datatype"] = *p.datatype;
    return dump(json{{"props", std::move(props)}});
}

Result<void> check_ping_response(const Response& res) {
    if (res.result_int() != 200) return error_from_response(res);
    if (trim(res.body()) != "OK") return make_error(EPROTO, "/ping answered 200 without OK");
    return {};
}

std::optional<double> NodeStats::number(std::string_view name) const {
    if (!raw.is_object()) return std::nullopt;
    const auto it = raw.find(name);
    if (it == raw.end() || !it->is_number()) return std::nullopt;
    return it->get<double>();
}

Result<NodeStats> parse_stats(std::string_view body) {
    auto j = parse_json(body, "stats");
    if (!j) return std::move(j).error();
    if (!j->is_object()) return make_error(EPROTO, "stats: expected an object");
    NodeStats s;
    s.raw = std::move(*j);
    const auto str = [&](const char* name, std::string& dst) {
        if (const auto it = s.raw.find(name); it != s.raw.end() && it->is_string())
            dst = it->get<std::string>();
    };
    const auto list = [&](const char* name, std::vector<std::string>& dst) {
        if (const auto it = s.raw.find(name); it != s.raw.end() && it->is_array())
            for (const auto& v : *it)
                if (v.is_string()) dst.push_back(v.get<std::string>());
    };
    str("riak_kv_version", s.riak_kv_version);
    str("storage_backend", s.storage_backend);
    list("ring_members", s.ring_members);
    list("connected_nodes", s.connected_nodes);
    return s;
}

// ---- Set data type --------------------------------------------------------------------------

Result<SetValue> parse_set_value(std::string_view body) {
    auto j = parse_json(body, "set");
    if (!j) return std::move(j).error();
    if (!j->is_object()) return make_error(EPROTO, "set: expected an object");
    if (const auto t = j->find("type"); t != j->end() && (!t->is_string() || *t != "set"))
        return make_error(EPROTO, "set: datatype is {}", dump(*t));
    if (const auto e = j->find("error"); e != j->end()) {
        if (e->is_string() && *e == "notfound") return make_error(ENOENT, "set not found");
        return in_band_error(*j);
    }
    SetValue v;
    const auto val = j->find("value");
    if (val == j->end()) return make_error(EPROTO, "set: no value");
    if (auto r = append_strings(*val, v.members, "set value"); !r) return std::move(r).error();
    if (const auto c = j->find("context"); c != j->end() && c->is_string())
        v.context = c->get<std::string>();
    return v;
}

Result<std::string> format_set_value(const SetValue& value) {
    if (auto r = check_utf8(value.members, "set member"); !r) return std::move(r).error();
    json j = {{"type", "set"}, {"value", value.members}};
    if (!value.context.empty()) j["context"] = value.context;
    return dump(j);
}

Result<std::string> format_set_update(const SetUpdate& update) {
    if (update.empty()) return make_error(EINVAL, "empty set update");
    if (auto r = check_utf8(update.add, "set member"); !r) return std::move(r).error();
    if (auto r = check_utf8(update.remove, "set member"); !r) return std::move(r).error();
    if (!is_valid_utf8(update.context)) return make_error(EINVAL, "set context is not UTF-8");
    json j = json::object();
    if (!update.add.empty()) j["add_all"] = update.add;
    if (!update.remove.empty()) j["remove_all"] = update.remove;
    if (!update.context.empty()) j["context"] = update.context;
    return dump(j);
}

Result<SetUpdate> parse_set_update(std::string_view body) {
    json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded()) return make_error(EINVAL, "Couldn't decode JSON");
    if (!j.is_object() || j.empty()) return make_error(EINVAL, "set update: expected an object");
    SetUpdate u;
    for (const auto& [name, v] : j.items()) {
        Result<void> r;
        if (name == "add" || name == "remove") {
            if (!v.is_string()) return make_error(EINVAL, "set update: '{}' needs a string", name);
            (name == "add" ? u.add : u.remove).push_back(v.get<std::string>());
        } else if (name == "add_all" || name == "remove_all") {
            r = append_strings(v, name == "add_all" ? u.add : u.remove, "set update");
        } else if (name == "context") {
            if (!v.is_string()) return make_error(EINVAL, "set update: context needs a string");
            u.context = v.get<std::string>();
        } else {
            return make_error(EINVAL, "Invalid operation on datatype 'set': {}", name);
        }
        if (!r) return make_error(EINVAL, "set update: '{}' needs an array of strings", name);
    }
    return u;
}

Result<Request> make_set_fetch_request(std::string_view host, const ObjectId& id,
                                       const RequestParams& params) {
    auto target = datatype_target(id, QueryParams().add(params));
    if (!target) return std::move(target).error();
    Request req = make_request(http::verb::get, host, *target);
    req.prepare_payload();
    return req;
}

Result<Request> make_set_update_request(std::string_view host, const ObjectId& id,
                                        const SetUpdate& update, const RequestParams& params) {
    auto target = datatype_target(id, QueryParams().add(params));
    if (!target) return std::move(target).error();
    auto body = format_set_update(update);
    if (!body) return std::move(body).error();
    Request req = make_request(http::verb::post, host, *target);
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(*body);
    req.prepare_payload();
    return req;
}

Result<std::optional<SetValue>> parse_set_fetch_response(const Response& res) {
    if (res.result_int() == 404) return std::optional<SetValue>();
    if (res.result_int() != 200) return error_from_response(res);
    auto v = parse_set_value(res.body());
    if (!v) return std::move(v).error();
    return std::optional<SetValue>(std::move(*v));
}

Result<std::optional<SetValue>> parse_set_update_response(const Response& res) {
    if (res.result_int() == 204) return std::optional<SetValue>();
    if (res.result_int() != 200) return error_from_response(res);
    auto v = parse_set_value(res.body());
    if (!v) return std::move(v).error();
    return std::optional<SetValue>(std::move(*v));
}

} // namespace rfs::proto
