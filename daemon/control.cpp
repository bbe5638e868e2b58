#include "daemon/control.hpp"

#include "lib/migrate/drain.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/state/state_store.hpp"

#include <cmath>
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
    return {
        {"format", 1},
        {"mountpoint", c.mountpoint},
        {"source", c.source},
        {"state_dir", c.state_dir},
        {"mode", to_string(c.mode)},
        {"riak", riak},
        {"queue",
         {{"copies", stats.queued - stats.removals_queued}, {"removals", stats.removals_queued}}},
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
    throw std::invalid_argument("unknown command '" + cmd + "' (status or drain)");
}

} // namespace rfs
