// riakfsctl's side of the control socket: finding a mount's socket, one request and its answer,
// and streamed requests (verify, recall, plan: event lines, then the answer). Every failure is
// one line on stderr and the exit status error_status() (1; riakfsctl verify uses 2).
#pragma once

#include <nlohmann/json.hpp>

#include "lib/common/mount_table.hpp"

#include <functional>
#include <optional>
#include <string>

namespace rfs::ctl {

// The exit status of die(): 1 unless a command sets another.
void set_error_status(int status);
[[noreturn]] void die(const std::string& message);
[[noreturn]] void usage_error(const std::string& message);

// MOUNTPOINT as the mount table names it (absolute, symlinks resolved when it can be stat'ed).
std::string absolute_mountpoint(const std::string& path);
// Where the control socket of the mount at `given` is (`state_dir` given: that one's).
std::string find_socket(const std::string& given, const std::string& state_dir);
// One request, one answer; dies with the daemon's error when it refuses.
nlohmann::json ask(const std::string& given, const std::string& socket,
                   const nlohmann::json& request);
// A streamed request: `on_event` gets each event line, the answer is returned (or the daemon's
// refusal dies).
nlohmann::json ask_stream(const std::string& given, const std::string& socket,
                          const nlohmann::json& request,
                          const std::function<void(const nlohmann::json&)>& on_event);

} // namespace rfs::ctl
