// Riak KV HTTP resources of riak-devnode (see service.hpp): data types (counters, sets, maps,
// HyperLogLogs, grow-only sets). Any thread.
//
// Section numbers in comments (§N) name the topics listed in lib/devnode/README.md.
#include "lib/devnode/service_internal.hpp"

#include <fmt/format.h>

#include "lib/devnode/crdt.hpp"
#include "lib/devnode/encoding.hpp"
#include "proto/riak_paths.hpp"

namespace rfs::devnode {

using namespace service_support;

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

} // namespace rfs::devnode
