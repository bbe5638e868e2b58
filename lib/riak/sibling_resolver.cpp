// Sibling resolution by Last-Modified with a deterministic tiebreak (see sibling_resolver.hpp).
#include "lib/riak/sibling_resolver.hpp"

#include <cassert>
#include <charconv>
#include <compare>
#include <cstdint>
#include <ctime>
#include <optional>

namespace rfs::riak {
namespace {

std::optional<std::uint64_t> meta_version(const proto::RiakObject& o, const std::string& name) {
    if (name.empty()) return std::nullopt;
    const std::string* v = o.find_meta(name);
    if (v == nullptr) return std::nullopt;
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size()) return std::nullopt;
    return n;
}

std::int64_t modified(const proto::RiakObject& o) {
    const auto t = proto::parse_http_date(o.last_modified);
    return t ? static_cast<std::int64_t>(*t) : INT64_MIN;
}

} // namespace

bool SiblingResolver::newer(const proto::RiakObject& a, const proto::RiakObject& b) const {
    if (const auto c = modified(a) <=> modified(b); c != 0) return c > 0;
    const auto va = meta_version(a, version_meta), vb = meta_version(b, version_meta);
    if (va != vb) return va > vb; // nullopt is smallest
    if (a.deleted != b.deleted) return !a.deleted;
    if (const auto c = a.etag <=> b.etag; c != 0) return c > 0;
    return a.value > b.value;
}

std::size_t SiblingResolver::pick(const std::vector<proto::RiakObject>& siblings) const {
    assert(!siblings.empty());
    std::size_t best = 0;
    for (std::size_t i = 1; i < siblings.size(); ++i)
        if (newer(siblings[i], siblings[best])) best = i;
    return best;
}

Resolution resolve_siblings(std::vector<proto::RiakObject> siblings, std::string vclock,
                            const SiblingResolver& resolver) {
    Resolution out;
    out.vclock = std::move(vclock);
    if (siblings.empty()) return out;
    const std::size_t w = resolver.pick(siblings);
    for (std::size_t i = 0; i < siblings.size(); ++i) {
        if (i == w)
            out.winner = std::move(siblings[i]);
        else
            out.dropped.push_back(std::move(siblings[i]));
    }
    return out;
}

} // namespace rfs::riak
