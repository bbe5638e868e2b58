// `-o settings=FILE`: the settings an operator may change while the mount runs, read at start
// and again at every SIGHUP (`systemctl reload`). Start-up thread and the reload handler only.
//
// The file holds key=value lines; blank lines and lines starting with '#' are ignored, spaces
// around keys and values too:
//     # /etc/riakfs/srv-data.conf
//     log_level = debug            # error, warning, info (the default) or debug
//     drain_rate = 50M             # the background drain's limits, as -o drain_rate= and
//     drain_files = 200            #   -o drain_files= (they replace those at start)
// Any other key is an error, as is a line without '='. A bad file refuses the start (one line)
// and, at a reload, changes nothing (one error line in the log).
#pragma once

#include "lib/common/log.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace rfs {

struct RuntimeSettings {
    std::optional<log::Level> log_level;
    // The background drain's limits (bytes and files a second, 0 = none), when the file sets them.
    std::optional<std::uint64_t> drain_bytes_per_second;
    std::optional<std::uint64_t> drain_files_per_second;
};

// Parses the text of a settings file; `name` (the path) prefixes error messages.
std::variant<RuntimeSettings, std::string> parse_runtime_settings(std::string_view text,
                                                                  std::string_view name);
// Reads and parses `path`; one line on error (unreadable, or what parse says).
std::variant<RuntimeSettings, std::string> read_runtime_settings(const std::string& path);

} // namespace rfs
