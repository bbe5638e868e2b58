#include "lib/store/sibling_choice.hpp"

#include <string>
#include <tuple>

#include "lib/store/object_store.hpp"

namespace rfs::store {

namespace {

// What the rules compare, most significant first.
using Rank = std::tuple<bool, bool, const std::string&, const std::string&, const std::string&>;

Rank rank(const proto::RiakObject& o) {
    static const std::string kNone;
    const std::string* stamp = o.find_meta(kVersionMeta);
    return Rank(!o.deleted, stamp != nullptr, stamp ? *stamp : kNone, o.etag, o.value);
}

} // namespace

bool sibling_wins(const proto::RiakObject& a, const proto::RiakObject& b) {
    return rank(a) > rank(b);
}

std::size_t choose_sibling(const std::vector<proto::RiakObject>& siblings) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < siblings.size(); ++i)
        if (sibling_wins(siblings[i], siblings[best])) best = i;
    return best;
}

} // namespace rfs::store
