#include "daemon/ctl/status_view.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace rfs::ctl {

namespace {

using json = nlohmann::json;

// The value at `path` (e.g. {"drain", "total", "files"}) as a number, or NaN when absent.
double number(const json& j, std::initializer_list<const char*> path) {
    const json* at = &j;
    for (const char* key : path) {
        if (!at->is_object() || !at->contains(key)) return NAN;
        at = &(*at)[key];
    }
    return at->is_number() ? at->get<double>() : NAN;
}

std::string text(const json& j, std::initializer_list<const char*> path) {
    const json* at = &j;
    for (const char* key : path) {
        if (!at->is_object() || !at->contains(key)) return "?";
        at = &(*at)[key];
    }
    return at->is_string() ? at->get<std::string>() : at->dump();
}

std::string count(double n) {
    return std::isnan(n) ? "?" : fmt::format("{}", static_cast<std::uint64_t>(n));
}

std::string bytes(double n) {
    return std::isnan(n) ? "?" : format_bytes(n);
}

std::string tally(const json& s, const char* name) {
    return fmt::format("{} files, {}", count(number(s, {"drain", name, "files"})),
                       bytes(number(s, {"drain", name, "bytes"})));
}

std::string limit(double value, const char* unit, bool is_bytes) {
    if (std::isnan(value)) return "?";
    if (value == 0) return "unlimited";
    return (is_bytes ? format_bytes(value) : count(value)) + unit;
}

std::string percent(double part, double whole) {
    if (std::isnan(part) || std::isnan(whole)) return "?";
    if (whole <= 0) return "100.0%";
    return fmt::format("{:.1f}%", 100.0 * std::min(1.0, part / whole));
}

} // namespace

std::string format_bytes(double n) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (std::isnan(n) || n < 0) return "?";
    int unit = 0;
    while (n >= 1024 && unit < 5) {
        n /= 1024;
        ++unit;
    }
    return unit == 0 ? fmt::format("{} B", static_cast<std::uint64_t>(n))
                     : fmt::format("{:.1f} {}", n, units[unit]);
}

std::string format_duration(double seconds) {
    if (std::isnan(seconds) || seconds < 0) return "?";
    auto s = static_cast<std::uint64_t>(std::ceil(seconds));
    if (s < 60) return fmt::format("{}s", s);
    if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
    if (s < 86400 * 3) return fmt::format("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60);
    return fmt::format("{}d{:02}h", s / 86400, s / 3600 % 24);
}

std::string progress_bar(double fraction, int width) {
    const int inner = std::max(1, width - 2);
    if (std::isnan(fraction)) fraction = 0;
    fraction = std::clamp(fraction, 0.0, 1.0);
    const int full = static_cast<int>(std::floor(fraction * inner));
    return "[" + std::string(static_cast<size_t>(full), '#') +
           std::string(static_cast<size_t>(inner - full), '.') + "]";
}

std::string render_status(const json& s, bool live, int width) {
    std::string out;
    auto line = [&](const char* name, const std::string& value) {
        out += fmt::format("{:<11} {}\n", name, value);
    };
    line("mountpoint", fmt::format("{} (source {}, mode {})", text(s, {"mountpoint"}),
                                   text(s, {"source"}), text(s, {"mode"})));
    if (s.contains("riak") && s["riak"].is_array()) {
        for (const auto& node : s["riak"]) {
            std::string health = !node.contains("healthy") || node["healthy"].is_null() ? "unknown"
                                 : node["healthy"].get<bool>()                          ? "up"
                                                                                        : "down";
            std::string why = node.value("last_error", "");
            if (health == "down" && !why.empty()) health += " (" + why + ")";
            line("riak", text(node, {"url"}) + " " + health);
        }
    }
    const double total_files = number(s, {"drain", "total", "files"});
    const double total_bytes = number(s, {"drain", "total", "bytes"});
    const double done_files = number(s, {"drain", "migrated", "files"});
    const double done_bytes = number(s, {"drain", "migrated", "bytes"});
    const bool yields = text(s, {"drain", "yielding"}) == "true";
    line("drain",
         fmt::format("{}{}, pass {}, order {}, limits {} and {}", text(s, {"drain", "state"}),
                     yields ? " (yielding to applications)" : "",
                     count(number(s, {"drain", "pass"})), text(s, {"drain", "order"}),
                     limit(number(s, {"drain", "limits", "bytes_per_second"}), "/s", true),
                     limit(number(s, {"drain", "limits", "files_per_second"}), " files/s", false)));
    line("progress",
         fmt::format("{} of {} files ({}), {} of {} ({})", count(done_files), count(total_files),
                     percent(done_files, total_files), bytes(done_bytes), bytes(total_bytes),
                     percent(done_bytes, total_bytes)));
    line("migrated", tally(s, "migrated"));
    line("released", tally(s, "released"));
    line("remaining", tally(s, "remaining"));
    std::string failed = count(number(s, {"drain", "failed", "files"})) + " files";
    if (std::string why = text(s, {"drain", "last_error"}); !why.empty() && why != "?")
        failed += " (last: " + why + ")";
    line("failed", failed);
    line("rates", fmt::format("{:.1f} files/s, {}/s", number(s, {"rates", "files_per_second"}),
                              bytes(number(s, {"rates", "bytes_per_second"}))));
    const double eta = number(s, {"drain", "eta_seconds"});
    line("eta", std::isnan(eta) ? "unknown (nothing moving)" : format_duration(eta));
    std::string queue = fmt::format("{} copies, {} removals", count(number(s, {"queue", "copies"})),
                                    count(number(s, {"queue", "removals"})));
    // Absent from an older daemon's answer (NaN): nothing said.
    if (const double waiting = number(s, {"queue", "waiting_long"}); waiting > 0)
        queue += fmt::format(", {} waiting for over 2 minutes (see the log)", count(waiting));
    line("queue", queue);
    if (s.contains("records") && s["records"].is_object()) {
        // In the order a file goes through them (README "Phases"), not the JSON's.
        std::string records;
        for (const char* phase :
             {"dirty", "uploading", "copied", "verified", "releasing", "released"})
            if (s["records"].contains(phase))
                records += (records.empty() ? "" : ", ") + std::string(phase) + " " +
                           s["records"][phase].dump();
        line("records", records);
    }
    if (s.contains("recent_errors") && s["recent_errors"].is_array() &&
        !s["recent_errors"].empty()) {
        for (const auto& e : s["recent_errors"])
            line("error", e.is_string() ? e.get<std::string>() : e.dump());
    } else {
        line("errors", "none");
    }
    if (live) {
        // By bytes when there are any (that is what takes the time), else by files.
        double fraction = total_bytes > 0   ? done_bytes / total_bytes
                          : total_files > 0 ? done_files / total_files
                                            : 1.0;
        std::string tail = fmt::format(" {:5.1f}%  ETA {}", 100.0 * std::clamp(fraction, 0.0, 1.0),
                                       std::isnan(eta) ? std::string("?") : format_duration(eta));
        out += "\n" + progress_bar(fraction, std::max(12, width - static_cast<int>(tail.size()))) +
               tail + "\n";
    }
    return out;
}

} // namespace rfs::ctl
