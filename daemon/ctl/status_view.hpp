// How riakfsctl shows a mount's status (the JSON of README "riakfsctl status --json"): plain
// lines for scripts and pipes, and the same with a progress bar and ETA for the live view.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace rfs::ctl {

// 1536 -> "1.5 KiB"; below 1 KiB "N B".
std::string format_bytes(double bytes);
// 3725 -> "1h02m05s"; 42 -> "42s".
std::string format_duration(double seconds);
// "[#####.....]" `width` characters wide in all, for a fraction in [0, 1].
std::string progress_bar(double fraction, int width);
// The status as lines "name  value"; with `live`, a progress bar line of `width` columns too.
// Fields missing from `status` are shown as "?", never a crash.
std::string render_status(const nlohmann::json& status, bool live, int width = 80);

} // namespace rfs::ctl
