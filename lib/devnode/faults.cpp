// Fault configuration parsing and matching (see faults.hpp). Any thread.
#include "lib/devnode/faults.hpp"

#include "lib/devnode/encoding.hpp"

#include <algorithm>
#include <set>

namespace rfs::devnode {

using json = nlohmann::json;

namespace {
const std::set<std::string> kRoutes = {"ping",  "stats", "object",    "keys", "buckets",
                                       "index", "props", "datatypes", "other"};
} // namespace

std::optional<FaultConfig> FaultConfig::from_json(const json& j, std::string& error) {
    if (!j.is_object()) {
        error = "fault configuration must be a JSON object";
        return std::nullopt;
    }
    FaultConfig c;
    auto non_negative = [&](const json& v, const std::string& name, uint64_t& out) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0) {
            error = name + " must be a non-negative integer";
            return false;
        }
        out = v.get<uint64_t>();
        return true;
    };
    auto probability = [&](const json& v, const std::string& name, double& out) {
        if (!v.is_number() || v.get<double>() < 0.0 || v.get<double>() > 1.0) {
            error = name + " must be a number between 0 and 1";
            return false;
        }
        out = v.get<double>();
        return true;
    };
    auto names = [&](const json& v, const std::string& name, std::vector<std::string>& out,
                     bool routes) {
        if (!v.is_array()) {
            error = name + " must be an array of strings";
            return false;
        }
        for (const auto& e : v) {
            if (!e.is_string() || (routes && !kRoutes.count(e.get<std::string>()))) {
                error = name + ": unknown entry " + e.dump();
                return false;
            }
            out.push_back(e.get<std::string>());
        }
        return true;
    };
    for (const auto& [k, v] : j.items()) {
        bool ok = true;
        if (k == "latency_ms") {
            ok = non_negative(v, k, c.latency_ms);
        } else if (k == "route_latency_ms") {
            if (!v.is_object()) {
                error = k + " must be an object of route -> ms";
                return std::nullopt;
            }
            for (const auto& [r, ms] : v.items()) {
                uint64_t n = 0;
                if (!kRoutes.count(r)) {
                    error = k + ": unknown route " + r;
                    return std::nullopt;
                }
                if (!non_negative(ms, k + "." + r, n)) return std::nullopt;
                c.route_latency_ms[r] = n;
            }
        } else if (k == "error_rate") {
            ok = probability(v, k, c.error_rate);
        } else if (k == "error_status") {
            ok = v.is_number_integer() && (v.get<int>() == 500 || v.get<int>() == 503);
            if (!ok) error = "error_status must be 500 or 503";
            if (ok) c.error_status = v.get<int>();
        } else if (k == "reset_rate") {
            ok = probability(v, k, c.reset_rate);
        } else if (k == "slow_body_bps") {
            ok = non_negative(v, k, c.slow_body_bps);
        } else if (k == "refuse_connections") {
            ok = v.is_boolean();
            if (!ok) error = "refuse_connections must be a boolean";
            if (ok) c.refuse_connections = v.get<bool>();
        } else if (k == "seed") {
            ok = v.is_number_unsigned(); // JSON's non-negative integers, up to 2^64 - 1
            if (!ok) error = "seed must be a non-negative integer";
            if (ok) c.seed = v.get<uint64_t>();
        } else if (k == "routes") {
            ok = names(v, k, c.routes, true);
        } else if (k == "methods") {
            ok = names(v, k, c.methods, false);
        } else {
            error = "unknown fault setting " + k;
            ok = false;
        }
        if (!ok) return std::nullopt;
    }
    return c;
}

json FaultConfig::to_json() const {
    return json{{"latency_ms", latency_ms},
                {"route_latency_ms", route_latency_ms},
                {"error_rate", error_rate},
                {"error_status", error_status},
                {"reset_rate", reset_rate},
                {"slow_body_bps", slow_body_bps},
                {"refuse_connections", refuse_connections},
                {"routes", routes},
                {"methods", methods},
                {"seed", seed ? json(*seed) : json(nullptr)}};
}

void Faults::set(FaultConfig c) {
    std::lock_guard lk(mu_);
    config_ = std::move(c);
    gen_.seed(config_.seed ? *config_.seed : random_u64());
}

bool Faults::happens(double rate) {
    if (rate <= 0.0) return false; // no draw: a fault that is off leaves the sequence alone
    std::lock_guard lk(mu_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(gen_) < rate;
}

bool FaultConfig::applies(const std::string& route, const std::string& method) const {
    bool r = routes.empty() || std::find(routes.begin(), routes.end(), route) != routes.end();
    bool m = methods.empty() || std::find(methods.begin(), methods.end(), method) != methods.end();
    return r && m;
}

uint64_t FaultConfig::latency_for(const std::string& route) const {
    auto it = route_latency_ms.find(route);
    return it != route_latency_ms.end() ? it->second : latency_ms;
}

std::string route_class(const std::vector<std::string>& s) {
    if (s.size() == 1 && (s[0] == "ping" || s[0] == "stats")) return s[0];
    if (!s.empty() && s[0] == "riak") return s.size() == 3 ? "object" : "other";
    size_t i = (!s.empty() && s[0] == "types") ? 2 : 0;
    if (s.size() == 3 && i == 2 && s[2] == "props") return "props";
    if (s.size() <= i || s[i] != "buckets") return "other";
    if (s.size() == i + 1) return "buckets";
    if (s.size() < i + 3) return "other";
    const std::string& what = s[i + 2];
    if (what == "keys" && s.size() <= i + 4) return s.size() == i + 3 ? "keys" : "object";
    if (what == "index" || what == "props" || what == "datatypes") return what;
    return "other";
}

} // namespace rfs::devnode
