// Riak KV HTTP resources of riak-devnode (see service.hpp): bucket and bucket type properties, and
// the admin route that creates types. Any thread.
//
// Section numbers in comments (§N) name the topics listed in lib/devnode/README.md.
#include "lib/devnode/service_internal.hpp"

#include <fmt/format.h>

namespace rfs::devnode {

using namespace service_support;

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
