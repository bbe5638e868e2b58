// Run-time fault injection of riak-devnode, switched over the admin route /devnode/faults, which
// only the --admin listener serves (real Riak does not route it). See lib/devnode/README.md for
// the JSON format.
// Any thread: Faults guards its FaultConfig and its random generator with a mutex; readers take
// a copy of the configuration per request.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rfs::devnode {

struct FaultConfig {
    uint64_t latency_ms = 0;                          // added before every matching request
    std::map<std::string, uint64_t> route_latency_ms; // per route class, overrides latency_ms
    double error_rate = 0.0;                          // probability of answering with an error
    int error_status = 503;                           // 503 "request timed out" or 500 "overload"
    double reset_rate = 0.0;          // probability of a TCP reset after half the response was sent
    uint64_t slow_body_bps = 0;       // response bytes per second (0 = full speed)
    bool refuse_connections = false;  // accept and immediately close new connections
    std::vector<std::string> routes;  // route classes the per-request faults apply to (empty: all)
    std::vector<std::string> methods; // methods they apply to (empty: all)
    // Seeds the draws of error_rate and reset_rate, so that a test can replay a failing run: the
    // same seed gives the same sequence of draws (the same faults for requests that arrive in the
    // same order). Unset: a seed of its own each time the configuration is set.
    std::optional<uint64_t> seed;

    // Parses the admin JSON; nullopt with `error` set on invalid input.
    static std::optional<FaultConfig> from_json(const nlohmann::json& j, std::string& error);
    nlohmann::json to_json() const;

    bool applies(const std::string& route, const std::string& method) const;
    uint64_t latency_for(const std::string& route) const;
};

// Route class names: "ping", "stats", "object", "keys", "buckets", "index", "props",
// "datatypes", "other". The legacy object route /riak/B/K is "object".
std::string route_class(const std::vector<std::string>& segments);

class Faults {
public:
    FaultConfig get() const {
        std::lock_guard lk(mu_);
        return config_;
    }
    // Replaces the configuration and restarts the draws from its seed.
    void set(FaultConfig c);
    // Whether a fault of probability `rate` happens now: the next draw of the generator. One
    // generator for every connection and thread, so that the sequence follows the seed alone.
    bool happens(double rate);

private:
    mutable std::mutex mu_;
    FaultConfig config_;
    std::mt19937_64 gen_; // guarded by mu_
};

} // namespace rfs::devnode
