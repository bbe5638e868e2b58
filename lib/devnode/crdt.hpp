// Convergent data types of riak-devnode's /types/T/buckets/B/datatypes/K resource: an
// observed-remove set (ORSWOT with one actor per incarnation, so a context is just that actor's
// counter) and a counter. Values are stored as the single sibling of a normal object.
// Plain data; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace rfs::devnode {

enum class CrdtStatus { kOk, kBadRequest, kPrecondition };

struct CrdtValue {
    std::string actor;
    uint64_t clock = 0;                                   // last dot issued by `actor`
    std::map<std::string, std::vector<uint64_t>> entries; // set member -> dots
    int64_t counter = 0;

    static CrdtValue fresh();
    static std::optional<CrdtValue> decode(std::string_view bytes);
    std::string encode() const;

    std::vector<std::string> set_members() const; // sorted
    std::string context() const;                  // opaque base64

    // Applies {"add":..,"add_all":[..],"remove":..,"remove_all":[..],"context":".."}.
    // Removing a member without a context that is not present is a precondition failure
    // (`error` then holds the Erlang-style term Riak reports).
    CrdtStatus apply_set_op(const nlohmann::json& op, std::string& error);
    // Applies N, "increment", "decrement", {"increment":N} or {"decrement":N}.
    CrdtStatus apply_counter_op(const nlohmann::json& op, std::string& error);
};

} // namespace rfs::devnode
