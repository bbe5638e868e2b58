#include "daemon/control.hpp"

#include "lib/common/log.hpp"
#include "lib/migrate/drain.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/plan.hpp"
#include "lib/migrate/recall.hpp"
#include "lib/migrate/verify.hpp"
#include "lib/state/state_store.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace rfs {

namespace {

nlohmann::json tally(const migrate::DrainTally& t) {
    return {{"files", t.files}, {"bytes", t.bytes}};
}

nlohmann::json drain_json(const migrate::DrainProgress& p) {
    const auto remaining = p.remaining();
    nlohmann::json eta = nullptr;
    // At the rate copies go now: bytes when they move, else files.
    if (remaining.files == 0)
        eta = 0;
    else if (p.copy_bytes_per_second > 0 && remaining.bytes > 0)
        eta = std::ceil(static_cast<double>(remaining.bytes) / p.copy_bytes_per_second);
    else if (p.copy_files_per_second > 0)
        eta = std::ceil(static_cast<double>(remaining.files) / p.copy_files_per_second);
    return {{"state", migrate::to_string(p.state)},
            {"order", migrate::to_string(p.order)},
            {"pass", p.pass},
            {"limits",
             {{"bytes_per_second", p.bytes_per_second}, {"files_per_second", p.files_per_second}}},
            {"walked", p.walked},
            {"total", tally(p.total)},
            {"migrated", tally(p.migrated)},
            {"released", tally(p.released)},
            {"failed", tally(p.failed)},
            {"remaining", tally(remaining)},
            {"in_flight", p.in_flight},
            {"yielding", p.yielding},
            {"last_error", p.last_error},
            {"eta_seconds", eta}};
}

std::uint64_t rate_value(const nlohmann::json& request, const char* name) {
    const auto& v = request.at(name);
    if (!v.is_number_unsigned())
        throw std::invalid_argument(std::string(name) + " must be a whole number >= 0");
    return v.get<std::uint64_t>();
}

} // namespace

nlohmann::json status_json(const ControlContext& c) {
    nlohmann::json riak = nlohmann::json::array();
    auto nodes = c.nodes ? c.nodes() : std::vector<riak::NodeStatus>{};
    if (nodes.empty()) {
        for (const auto& url : c.node_urls)
            riak.push_back({{"url", url}, {"healthy", nullptr}, {"last_error", ""}});
    } else {
        for (const auto& n : nodes)
            riak.push_back({{"url", n.url}, {"healthy", n.healthy}, {"last_error", n.last_error}});
    }
    const auto stats = c.migrator->stats();
    nlohmann::json records = nlohmann::json::object();
    const auto counts = c.state->counts();
    for (size_t i = 0; i < state::FileState::phase_count; ++i)
        records[std::string(state::phase_name(static_cast<state::Phase>(i)))] = counts.by_phase[i];
    const auto drain = c.drain->progress();
    return {{"format", 1},
            {"mountpoint", c.mountpoint},
            {"source", c.source},
            {"state_dir", c.state_dir},
            {"mode", to_string(c.mode)},
            {"riak", riak},
            {"queue",
             {{"copies", stats.queued - stats.removals_queued},
              {"removals", stats.removals_queued},
              {"waiting_long", stats.long_waits}}},
            {"copies",
             {{"files", stats.files_copied},
              {"bytes", stats.bytes_copied},
              {"failures", stats.failures},
              {"released_files", stats.files_released},
              {"released_bytes", stats.bytes_freed}}},
            {"rates",
             {{"files_per_second", drain.copy_files_per_second},
              {"bytes_per_second", drain.copy_bytes_per_second}}},
            {"records", records},
            {"drain", drain_json(drain)},
            {"recent_errors", stats.recent_errors}};
}

nlohmann::json handle_control_request(const ControlContext& c, const nlohmann::json& request) {
    const auto cmd = request.at("cmd").get<std::string>();
    if (cmd == "status") return {{"ok", true}, {"status", status_json(c)}};
    if (cmd == "drain") {
        const bool pause = request.value("pause", false);
        const bool resume = request.value("resume", false);
        const bool bytes = request.contains("bytes_per_second");
        const bool files = request.contains("files_per_second");
        if (pause && resume) throw std::invalid_argument("drain: pause or resume, not both");
        if (!pause && !resume && !bytes && !files)
            throw std::invalid_argument(
                "drain needs pause, resume, bytes_per_second or files_per_second");
        if (bytes || files) {
            auto now = c.drain->progress();
            c.drain->set_limits(
                bytes ? rate_value(request, "bytes_per_second") : now.bytes_per_second,
                files ? rate_value(request, "files_per_second") : now.files_per_second);
        }
        if (pause && !c.drain->pause())
            throw std::invalid_argument("the drain is not running (start it with --resume)");
        if (resume) c.drain->resume();
        return {{"ok", true}, {"drain", drain_json(c.drain->progress())}};
    }
    throw std::invalid_argument("unknown command '" + cmd +
                                "' (status, drain, verify, recall or plan)");
}

} // namespace rfs

// ---- streamed requests: verify, recall, plan ------------------------------------------------

namespace rfs {

namespace {

// The request's "path": "" (all of SOURCE) or a path relative to SOURCE as the state store
// keys them (riakfsctl normalises what the operator typed).
std::string request_path(const nlohmann::json& request) {
    if (!request.contains("path")) return {};
    const auto& v = request["path"];
    if (!v.is_string()) throw std::invalid_argument("path must be a string");
    std::string path = v.get<std::string>();
    if (!path.empty() && !state::is_valid_path(path))
        throw std::invalid_argument("path '" + path +
                                    "' must be relative to the mount, without '.' or '..'");
    return path;
}

bool request_flag(const nlohmann::json& request, const char* name) {
    if (!request.contains(name)) return false;
    if (!request[name].is_boolean())
        throw std::invalid_argument(std::string(name) + " must be true or false");
    return request[name].get<bool>();
}

nlohmann::json plan_tally(const migrate::PlanTally& t) {
    return {{"files", t.files}, {"bytes", t.bytes}};
}

nlohmann::json verify_counts_json(const migrate::VerifyCounts& c) {
    return {{"files", c.files},
            {"bytes", c.bytes},
            {"directories", c.directories},
            {"checked_files", c.checked_files},
            {"checked_bytes", c.checked_bytes},
            {"released", c.released},
            {"agreeing", c.agreeing},
            {"mismatches", c.mismatches},
            {"pending", c.pending},
            {"errors", c.errors},
            {"repairs", c.repairs},
            {"walking", c.walking}};
}

nlohmann::json recall_counts_json(const migrate::RecallCounts& c) {
    return {{"files", c.files},
            {"bytes", c.bytes},
            {"released", c.released},
            {"recalled", c.recalled},
            {"recalled_bytes", c.recalled_bytes},
            {"failed", c.failed},
            {"riak_objects", c.riak_objects},
            {"removals_left", c.removals_left},
            {"deleting", c.deleting}};
}

nlohmann::json plan_json(const migrate::PlanReport& r) {
    return {{"mapped", plan_tally(r.mapped)},     {"unmapped", plan_tally(r.unmapped)},
            {"in_riak", plan_tally(r.in_riak)},   {"released", plan_tally(r.released)},
            {"to_send", plan_tally(r.to_send)},   {"kept_whole", plan_tally(r.kept_whole)},
            {"freeable_bytes", r.freeable_bytes}, {"directories", r.directories},
            {"walk_errors", r.walk_errors}};
}

nlohmann::json verify(const ControlContext& c, const nlohmann::json& request,
                      const control::ControlServer::Emit& emit) {
    const std::string path = request_path(request);
    const bool repair = request_flag(request, "repair");
    migrate::VerifyEnv env;
    env.source_root = c.source_root;
    env.mapper = c.mapper;
    env.state = c.state;
    env.loop = &c.migrator->context();
    env.store = &c.migrator->object_store();
    env.migrator = c.migrator;
    env.namespaces = c.namespaces;
    env.skip_dev = c.state_dir_dev;
    env.skip_ino = c.state_dir_ino;
    migrate::Verifier verifier(
        env, repair,
        [&](const migrate::VerifyFinding& f) {
            return emit({{"event", "finding"},
                         {"kind", migrate::to_string(f.kind)},
                         {"path", f.path},
                         {"what", f.what},
                         {"repair", f.repair}});
        },
        [&](const migrate::VerifyCounts& counts) {
            return emit({{"event", "progress"}, {"progress", verify_counts_json(counts)}});
        });
    auto counts = verifier.run(path);
    if (counts.stopped) throw std::runtime_error("verify stopped before it ended");
    return {{"ok", true}, {"verify", verify_counts_json(counts)}};
}

nlohmann::json recall(const ControlContext& c, const nlohmann::json& request,
                      const control::ControlServer::Emit& emit) {
    const std::string path = request_path(request);
    const bool delete_from_riak = request_flag(request, "delete_from_riak");
    migrate::RecallEnv env;
    env.source_root = c.source_root;
    env.state = c.state;
    env.pins = c.pins;
    env.observer = c.observer;
    env.migrator = c.migrator;
    env.namespaces = c.namespaces;
    env.skip_dev = c.state_dir_dev;
    env.skip_ino = c.state_dir_ino;
    RFS_LOG_INFO("riakfsctl recall of {}{}", path.empty() ? "SOURCE" : path,
                 delete_from_riak ? ", deleting its Riak copies" : "");
    auto counts = migrate::recall_tree(
        env, path, delete_from_riak,
        [&](const migrate::RecallCounts& counts) {
            return emit({{"event", "progress"}, {"progress", recall_counts_json(counts)}});
        },
        [&](const std::string& p, const std::string& why) {
            emit({{"event", "failure"}, {"path", p}, {"why", why}});
        });
    if (counts.stopped) throw std::runtime_error("recall stopped before it ended");
    return {{"ok", true}, {"recall", recall_counts_json(counts)}};
}

nlohmann::json plan(const ControlContext& c, const nlohmann::json& request,
                    const control::ControlServer::Emit& emit) {
    const std::string path = request_path(request);
    migrate::PlanReport report;
    migrate::WalkOptions options{c.state_dir_dev, c.state_dir_ino};
    int err =
        migrate::plan_tree(c.source_root, path, *c.mapper, c.state, options, &report,
                           [&](const migrate::PlanReport& r) {
                               return emit({{"event", "progress"}, {"progress", plan_json(r)}});
                           });
    if (err == ENOENT) throw std::invalid_argument("'" + path + "' does not exist in SOURCE");
    if (err != 0) throw std::invalid_argument("cannot walk '" + path + "': " + std::strerror(err));
    const auto drain = c.drain->progress();
    auto answer = plan_json(report);
    answer["mode"] = to_string(c.mode);
    answer["rates"] = {{"bytes_per_second", drain.copy_bytes_per_second},
                       {"files_per_second", drain.copy_files_per_second},
                       {"limit_bytes_per_second", drain.bytes_per_second},
                       {"limit_files_per_second", drain.files_per_second}};
    return {{"ok", true}, {"plan", answer}};
}

} // namespace

void add_stream_handlers(control::ControlServer& server, const ControlContext& c) {
    server.add_stream(
        "verify", [&c](const nlohmann::json& request, const control::ControlServer::Emit& emit) {
            return verify(c, request, emit);
        });
    server.add_stream(
        "recall", [&c](const nlohmann::json& request, const control::ControlServer::Emit& emit) {
            return recall(c, request, emit);
        });
    server.add_stream(
        "plan", [&c](const nlohmann::json& request, const control::ControlServer::Emit& emit) {
            return plan(c, request, emit);
        });
}

} // namespace rfs
