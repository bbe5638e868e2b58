// Set and counter data types of riak-devnode (see crdt.hpp). Any thread.
#include "lib/devnode/crdt.hpp"

#include <cstdint>
#include <optional>

#include "lib/devnode/encoding.hpp"

namespace rfs::devnode {

namespace {
constexpr std::string_view kContextMagic = "dc1";
} // namespace

CrdtValue CrdtValue::fresh() {
    CrdtValue v;
    v.actor = random_base62(64);
    return v;
}

std::optional<CrdtValue> CrdtValue::decode(std::string_view bytes) {
    RecordReader r(bytes);
    if (r.byte() != 1) return std::nullopt;
    CrdtValue v;
    v.actor = r.str();
    v.clock = r.u64();
    v.counter = r.i64();
    uint64_t n = r.u64();
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
        std::string member = r.str();
        uint64_t nd = r.u64();
        std::vector<uint64_t> dots;
        for (uint64_t k = 0; k < nd && r.ok(); ++k)
            dots.push_back(r.u64());
        v.entries.emplace(std::move(member), std::move(dots));
    }
    if (!r.ok() || !r.at_end()) return std::nullopt;
    return v;
}

std::string CrdtValue::encode() const {
    RecordWriter w;
    w.byte(1);
    w.str(actor);
    w.u64(clock);
    w.i64(counter);
    w.u64(entries.size());
    for (const auto& [m, dots] : entries) {
        w.str(m);
        w.u64(dots.size());
        for (uint64_t d : dots)
            w.u64(d);
    }
    return std::move(w.data());
}

std::vector<std::string> CrdtValue::set_members() const {
    std::vector<std::string> out;
    for (const auto& [m, dots] : entries)
        out.push_back(m);
    return out;
}

std::string CrdtValue::context() const {
    RecordWriter w;
    for (char c : kContextMagic)
        w.byte(static_cast<uint8_t>(c));
    w.str(actor);
    w.u64(clock);
    return base64_encode(w.data());
}

CrdtStatus CrdtValue::apply_set_op(const nlohmann::json& op, std::string& error) {
    if (!op.is_object() || op.empty()) {
        error = op.dump();
        return CrdtStatus::kBadRequest;
    }
    std::vector<std::string> adds, removes;
    std::optional<uint64_t> ctx; // the context's counter for our actor
    auto strings = [&](const nlohmann::json& v, std::vector<std::string>& out) {
        if (v.is_string()) {
            out.push_back(v.get<std::string>());
            return true;
        }
        if (!v.is_array()) return false;
        for (const auto& e : v) {
            if (!e.is_string()) return false;
            out.push_back(e.get<std::string>());
        }
        return true;
    };
    for (const auto& [k, v] : op.items()) {
        bool ok = true;
        if (k == "add") {
            ok = v.is_string() && strings(v, adds);
        } else if (k == "add_all") {
            ok = v.is_array() && strings(v, adds);
        } else if (k == "remove") {
            ok = v.is_string() && strings(v, removes);
        } else if (k == "remove_all") {
            ok = v.is_array() && strings(v, removes);
        } else if (k == "context") {
            ok = v.is_string();
            if (ok) {
                auto raw = base64_decode(v.get<std::string>());
                ok = raw && raw->substr(0, kContextMagic.size()) == kContextMagic;
                if (ok) {
                    RecordReader r(std::string_view(*raw).substr(kContextMagic.size()));
                    std::string a = r.str();
                    uint64_t c = r.u64();
                    ok = r.ok() && r.at_end();
                    ctx = a == actor ? c : 0;
                }
            }
        } else {
            ok = false;
        }
        if (!ok) {
            error = op.dump();
            return CrdtStatus::kBadRequest;
        }
    }
    if (!ctx) {
        for (const auto& m : removes) {
            if (!entries.count(m)) {
                error = "{precondition,{not_present,<<\"" + m + "\">>}}";
                return CrdtStatus::kPrecondition;
            }
        }
    }
    for (const auto& m : removes) {
        auto it = entries.find(m);
        if (it == entries.end()) continue;
        if (!ctx) {
            entries.erase(it);
            continue;
        }
        std::erase_if(it->second, [&](uint64_t d) { return d <= *ctx; });
        if (it->second.empty()) entries.erase(it);
    }
    for (const auto& m : adds)
        entries[m] = {++clock};
    return CrdtStatus::kOk;
}

CrdtStatus CrdtValue::apply_counter_op(const nlohmann::json& op, std::string& error) {
    // Riak's counters are Erlang integers of any size; ours are 64-bit, so an operation that
    // would leave that range is refused rather than wrapped (signed overflow).
    auto amount = [](const nlohmann::json& n) -> std::optional<int64_t> {
        if (n.is_number_unsigned() && n.get<uint64_t>() > uint64_t(INT64_MAX)) return std::nullopt;
        return n.get<int64_t>();
    };
    std::optional<int64_t> delta;
    if (op.is_number_integer()) {
        delta = amount(op);
    } else if (op == "increment") {
        delta = 1;
    } else if (op == "decrement") {
        delta = -1;
    } else if (op.is_object() && op.size() == 1 && op.begin().value().is_number_integer() &&
               (op.begin().key() == "increment" || op.begin().key() == "decrement")) {
        delta = amount(op.begin().value());
        if (delta && op.begin().key() == "decrement") {
            if (*delta == INT64_MIN)
                delta.reset();
            else
                delta = -*delta;
        }
    } else {
        error = op.dump();
        return CrdtStatus::kBadRequest;
    }
    int64_t sum = 0;
    if (!delta || __builtin_add_overflow(counter, *delta, &sum)) {
        error = "counter out of the 64-bit range: " + op.dump();
        return CrdtStatus::kBadRequest;
    }
    counter = sum;
    ++clock;
    return CrdtStatus::kOk;
}

} // namespace rfs::devnode
