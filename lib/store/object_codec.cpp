#include "lib/store/object_codec.hpp"

#include <algorithm>
#include <cerrno>
#include <string_view>

#include <fmt/core.h>

namespace rfs::store {

namespace {

std::string to_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    });
    return out;
}

} // namespace

const std::string* Object::find_meta(std::string_view name) const {
    const std::string lower = to_lower(name);
    for (const auto& [k, v] : meta)
        if (to_lower(k) == lower) return &v;
    return nullptr;
}

Result<proto::ObjectId> riak_object_id(const proto::ObjectId& raw) {
    proto::ObjectId id{raw.type, proto::escape_name(raw.bucket), proto::escape_name(raw.key)};
    // The target builder is the one place that knows what Riak can address; asking it here
    // makes the fake refuse the same names as the real store.
    auto target = proto::object_target(id);
    if (!target) return riak::from_proto(target.error());
    return id;
}

Result<proto::BucketId> riak_bucket_id(const proto::BucketId& raw) {
    proto::BucketId bucket{raw.type, proto::escape_name(raw.bucket)};
    auto target = proto::key_list_target(bucket, true);
    if (!target) return riak::from_proto(target.error());
    return bucket;
}

Result<proto::RiakObject> to_riak_object(Object object, std::string vclock) {
    proto::RiakObject out;
    out.value = std::move(object.value);
    out.content_type = std::move(object.content_type);
    out.vclock = std::move(vclock);
    for (auto& [name, value] : object.meta) {
        std::string lower = to_lower(name);
        if (!proto::is_token(lower))
            return riak::make_error(Errc::invalid_argument,
                                    fmt::format("meta name '{}' is not a token", name), EINVAL);
        // Riak would join repeated headers into one value with ", ": refuse rather than store
        // something else than was given.
        if (out.find_meta(lower))
            return riak::make_error(Errc::invalid_argument,
                                    fmt::format("meta name '{}' given twice", lower), EINVAL);
        out.meta.emplace_back(std::move(lower), std::move(value));
    }
    // Everything else (header-safe values, line lengths, content type form) is checked by
    // proto::make_store_request, which both stores run.
    return out;
}

Object from_riak_object(proto::RiakObject object, bool with_value) {
    Object out;
    if (with_value) out.value = std::move(object.value);
    out.content_type = std::move(object.content_type);
    out.meta.reserve(object.meta.size());
    for (auto& [name, value] : object.meta)
        out.meta.emplace_back(to_lower(name), std::move(value));
    return out;
}

std::vector<std::string> decode_keys(const std::vector<std::string>& riak_keys) {
    std::vector<std::string> out;
    out.reserve(riak_keys.size());
    for (const auto& k : riak_keys) {
        auto raw = proto::unescape_name(k);
        if (raw) out.push_back(std::move(*raw));
    }
    return out;
}

std::size_t object_size(const proto::RiakObject& o) {
    std::size_t n =
        o.value.size() + o.content_type.size() + o.content_encoding.size() + o.vclock.size();
    for (const auto& [name, value] : o.meta)
        n += name.size() + value.size();
    for (const auto& i : o.indexes)
        n += i.field.size() + i.value.size();
    return n;
}

} // namespace rfs::store
