// Riak KV HTTP resources of riak-devnode (see service.hpp): routing, the properties cache and
// object loading. Any thread.
//
// Section numbers in comments (§N) name the topics listed in lib/devnode/README.md.
#include "lib/devnode/service_internal.hpp"

#include <fmt/format.h>

#include "lib/devnode/encoding.hpp"

namespace rfs::devnode {

using namespace service_support;

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

} // namespace rfs::devnode
