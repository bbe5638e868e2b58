// The Riak KV HTTP behaviour of riak-devnode: routing, object/listing/2i/props/datatype
// resources, stats. Transport-neutral: takes a parsed Request and returns a Response.
//
// Any thread: every method may run concurrently on the server's io threads. Object
// read-modify-write cycles hold Store::key_mutex(); bucket/type props use props_mu_.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/devnode/http.hpp"
#include "lib/devnode/object.hpp"
#include "lib/devnode/store.hpp"

namespace rfs::devnode {

struct Config {
    std::string listen_host = "127.0.0.1";
    uint16_t listen_port = 8098;
    std::string data_dir;
    int threads = 4;
    uint64_t object_size_warning = 5ULL << 20;  // object.size.warning_threshold
    uint64_t object_size_maximum = 50ULL << 20; // object.size.maximum
    uint32_t siblings_warning = 25;             // object.siblings.warning_threshold
    uint32_t siblings_maximum = 100;            // object.siblings.maximum
    int64_t delete_mode_ms = 3000;              // -1 = keep, 0 = immediate
    // "3.0": 400 for a missing Content-Type and a silent close after an early answer with an
    // unread body (webmachine 1.11.1). "3.2": 500 for a missing Content-Type and the unread body
    // is drained (up to 64 MB) so the connection survives (webmachine main).
    std::string compat = "3.2";
    std::vector<std::pair<std::string, std::string>> bucket_types; // name, JSON props
    std::string node_name = "devnode@127.0.0.1";
    bool verbose = false;
    // --admin HOST:PORT: a second listener that serves only the /devnode/ admin routes (fault
    // injection, bucket type creation). Without it those routes do not exist anywhere, and the
    // Riak listener answers them with webmachine's 404 as real Riak does.
    bool admin = false;
    std::string admin_host;
    uint16_t admin_port = 0;
    // How long a request body may take to arrive, from the first body read to the last byte
    // (webmachine waits forever, which lets partial bodies hold connection slots for good).
    uint64_t body_timeout_ms = 30000;
    uint64_t max_connections = 2048; // per listener; mochiweb's `max`
    // TLS on the Riak listener (--tls-cert, --tls-key: PEM files), like Riak's https listener;
    // --tls-client-ca: also require a client certificate signed by that CA. The admin listener
    // stays plain HTTP (keep it on loopback).
    std::string tls_cert;
    std::string tls_key;
    std::string tls_client_ca;
    // --user NAME:PASSWORD-FILE (repeatable): security enabled for these users (name,
    // password), as `riak-admin security enable` (lib/devnode/security.hpp).
    std::vector<std::pair<std::string, std::string>> users;
    bool tls() const { return !tls_cert.empty(); }
};

// Counters shown by /stats. Any thread.
struct Stats {
    std::atomic<uint64_t> gets{0}, puts{0}, deletes{0}, requests{0};
    std::atomic<uint64_t> get_time_us{0}, put_time_us{0};
    std::atomic<uint64_t> siblings_seen_max{0}, objsize_max{0};
    std::atomic<uint64_t> list_keys{0}, index_queries{0}, crdt_updates{0}, crdt_fetches{0};
    std::atomic<uint64_t> too_large{0}, size_warnings{0}, sync_writes{0}, async_writes{0};
    std::atomic<uint64_t> connections_accepted{0}, connections_active{0};
    std::atomic<uint64_t> faults_injected{0}, faults_refused_connections{0};
    std::atomic<uint64_t> reaped{0};
    std::atomic<uint64_t> body_timeouts{0}; // connections closed because a body was too slow
    // TLS handshakes completed, of which resumed a session; handshakes that failed; requests
    // refused for missing or wrong credentials (401) or for coming in clear (426).
    std::atomic<uint64_t> tls_handshakes{0}, tls_resumed{0}, tls_failures{0};
    std::atomic<uint64_t> auth_refusals{0};
    int64_t started_us = 0;

    // Per-second ring of the last 60 s of gets/puts (node_gets / node_puts are 1-minute windows).
    void note_get();
    void note_put();
    uint64_t window_gets();
    uint64_t window_puts();

private:
    struct Slot {
        int64_t sec = 0;
        uint64_t gets = 0, puts = 0;
    };
    std::mutex mu_;
    Slot slots_[60];
    Slot& slot_now();
};

class Service {
public:
    Service(Store& store, const Config& config, Stats& stats);

    // Header phase (`body_read` false): runs everything Riak decides before reading the request
    // body (routing, method, parameter and header validation, preconditions); returns a response
    // only to refuse early, nullopt to go on and read the body. Body phase: always answers.
    std::optional<Response> handle(Request& req, bool body_read);

    // The admin route /devnode/types/NAME (served on the --admin listener only), in the same two
    // phases as handle().
    std::optional<Response> admin_types(Request& req, bool body_read);

    // Builds the bucket types named in the config (skipping existing ones).
    void create_configured_types();

    Stats& stats() { return stats_; }

private:
    struct Target; // resolved route

    std::optional<Response> object(Request& req, Target& t, bool body_read);
    Response get_object(Request& req, Target& t);
    std::optional<Response> put_object(Request& req, Target& t, bool body_read);
    std::optional<Response> delete_object(Request& req, Target& t, bool body_read);
    Response list_keys(Request& req, Target& t);
    Response list_buckets(Request& req, Target& t);
    Response index_query(Request& req, Target& t);
    std::optional<Response> bucket_props(Request& req, Target& t, bool body_read);
    std::optional<Response> type_props(Request& req, Target& t, bool body_read);
    std::optional<Response> datatype(Request& req, Target& t, bool body_read);
    Response stats_json(Request& req);

    // Bucket type properties; nullopt when the type does not exist.
    std::optional<nlohmann::json> type_properties(const std::string& type);
    // Effective properties of a bucket (type defaults overlaid by the bucket's own).
    nlohmann::json bucket_properties(const std::string& type, const std::string& bucket,
                                     const nlohmann::json& type_props);

    // The same, cached until the next props or type write (props_changed()); nullptr for an
    // unknown type. cached_type_props(T) is cached_bucket_props(T, {}, nullptr).
    std::shared_ptr<const nlohmann::json> cached_type_props(const std::string& type);
    std::shared_ptr<const nlohmann::json>
    cached_bucket_props(const std::string& type, const std::string& bucket,
                        const std::shared_ptr<const nlohmann::json>& type_props);
    void props_changed();

    // Loads an object; an expired tombstone is reaped and reads as absent. `locked`: the caller
    // holds the key mutex (else it is taken for the reap only).
    std::optional<Object> load(const std::string& type, const std::string& bucket,
                               const std::string& key, bool locked = false);
    bool tombstone_expired(const Object& obj) const;

    Store& store_;
    const Config& config_;
    Stats& stats_;
    std::mutex props_mu_;
    std::shared_mutex props_cache_mu_; // taken after props_mu_, never before
    uint64_t props_generation_ = 0;
    std::unordered_map<std::string, std::shared_ptr<const nlohmann::json>> props_cache_;
};

} // namespace rfs::devnode
