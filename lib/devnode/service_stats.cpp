// Riak KV HTTP resources of riak-devnode (see service.hpp): the /stats resource and its counters.
// Any thread.
//
// Section numbers in comments (§N) name the topics listed in lib/devnode/README.md.
#include "lib/devnode/service_internal.hpp"

#include <cstdio>

#include "lib/devnode/encoding.hpp"

namespace rfs::devnode {

using namespace service_support;

// ---------------------------------------------------------------------------------------------
// Stats

Stats::Slot& Stats::slot_now() {
    int64_t sec = now_seconds();
    Slot& s = slots_[sec % 60];
    if (s.sec != sec) s = Slot{sec, 0, 0};
    return s;
}

void Stats::note_get() {
    std::lock_guard lk(mu_);
    slot_now().gets++;
}

void Stats::note_put() {
    std::lock_guard lk(mu_);
    slot_now().puts++;
}

uint64_t Stats::window_gets() {
    std::lock_guard lk(mu_);
    int64_t sec = now_seconds();
    uint64_t n = 0;
    for (const auto& s : slots_)
        if (sec - s.sec < 60) n += s.gets;
    return n;
}

uint64_t Stats::window_puts() {
    std::lock_guard lk(mu_);
    int64_t sec = now_seconds();
    uint64_t n = 0;
    for (const auto& s : slots_)
        if (sec - s.sec < 60) n += s.puts;
    return n;
}

Response Service::stats_json(Request& req) {
    uint64_t gets = stats_.gets, puts = stats_.puts;
    long rss_pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        long size = 0;
        if (std::fscanf(f, "%ld %ld", &size, &rss_pages) != 2) rss_pages = 0;
        std::fclose(f);
    }
    uint64_t get_mean = gets ? stats_.get_time_us / gets : 0;
    uint64_t put_mean = puts ? stats_.put_time_us / puts : 0;
    json j{
        {"nodename", config_.node_name},
        {"connected_nodes", json::array()},
        {"ring_members", json::array({config_.node_name})},
        {"ring_num_partitions", 64},
        {"ring_creation_size", 64},
        {"storage_backend", "riak_kv_eleveldb_backend"},
        {"riak_kv_version", "3.0.16-devnode"},
        {"node_gets", stats_.window_gets()},
        {"node_gets_total", gets},
        {"node_puts", stats_.window_puts()},
        {"node_puts_total", puts},
        {"vnode_gets_total", gets},
        {"vnode_puts_total", puts},
        {"node_get_fsm_time_mean", get_mean},
        {"node_get_fsm_time_95", get_mean},
        {"node_get_fsm_time_99", get_mean},
        {"node_put_fsm_time_mean", put_mean},
        {"node_put_fsm_time_95", put_mean},
        {"node_put_fsm_time_99", put_mean},
        {"node_get_fsm_siblings_100", stats_.siblings_seen_max.load()},
        {"node_get_fsm_objsize_100", stats_.objsize_max.load()},
        {"node_get_fsm_rejected", 0},
        {"node_get_fsm_rejected_60s", 0},
        {"node_get_fsm_rejected_total", 0},
        {"node_put_fsm_rejected", 0},
        {"node_put_fsm_rejected_60s", 0},
        {"node_put_fsm_rejected_total", 0},
        {"node_get_fsm_active", 0},
        {"node_put_fsm_active", 0},
        {"read_repairs", 0},
        {"read_repairs_total", 0},
        {"list_fsm_active", 0},
        {"index_fsm_active", 0},
        {"memory_total", rss_pages * 4096},
        {"memory_processes", rss_pages * 4096},
        {"sys_process_count", stats_.connections_active.load()},
        {"object_deletes_total", stats_.deletes.load()},
        {"object_set_merge_total", stats_.crdt_updates.load()},
        {"index_fsm_create", stats_.index_queries.load()},
        {"list_fsm_create", stats_.list_keys.load()},
        {"devnode_requests_total", stats_.requests.load()},
        {"devnode_sync_writes_total", stats_.sync_writes.load()},
        {"devnode_async_writes_total", stats_.async_writes.load()},
        {"devnode_too_large_total", stats_.too_large.load()},
        {"devnode_size_warnings_total", stats_.size_warnings.load()},
        {"devnode_tombstones_reaped_total", stats_.reaped.load()},
        {"devnode_connections_accepted_total", stats_.connections_accepted.load()},
        {"devnode_connections_active", stats_.connections_active.load()},
        {"devnode_faults_injected_total", stats_.faults_injected.load()},
        {"devnode_connections_refused_total", stats_.faults_refused_connections.load()},
        {"devnode_body_timeouts_total", stats_.body_timeouts.load()},
        {"devnode_tls_handshakes_total", stats_.tls_handshakes.load()},
        {"devnode_tls_resumed_total", stats_.tls_resumed.load()},
        {"devnode_tls_failures_total", stats_.tls_failures.load()},
        {"devnode_auth_refusals_total", stats_.auth_refusals.load()},
        {"devnode_uptime_seconds", (now_micros() - stats_.started_us) / 1000000},
    };
    bool pretty = accept_q(req.header("Accept"), "text/plain") >
                  accept_q(req.header("Accept"), "application/json");
    Response r =
        text(200, pretty ? j.dump(4) : j.dump(), pretty ? "text/plain" : "application/json");
    r.head = is_method(req, "HEAD");
    return r;
}

} // namespace rfs::devnode
