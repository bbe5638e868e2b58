// Operator-facing logging: one fmt-based macro set. Any thread.
//
// Messages go to stderr while the daemon runs in the foreground and to syslog once it has
// daemonized (stderr is /dev/null then). Debug messages cost one branch when disabled.
#pragma once

#include <fmt/core.h>

#include <atomic>
#include <string_view>

namespace rfs::log {

enum class Level { error = 0, warning = 1, info = 2, debug = 3 };

// Process-wide settings; set once at start-up, read from any thread.
void set_level(Level level);
void use_syslog(bool enabled);
bool enabled(Level level);
void write(Level level, std::string_view message);

} // namespace rfs::log

#define RFS_LOG(level, ...)                                                                        \
    do {                                                                                           \
        if (::rfs::log::enabled(level)) ::rfs::log::write(level, ::fmt::format(__VA_ARGS__));      \
    } while (0)
#define RFS_LOG_ERROR(...) RFS_LOG(::rfs::log::Level::error, __VA_ARGS__)
#define RFS_LOG_WARN(...) RFS_LOG(::rfs::log::Level::warning, __VA_ARGS__)
#define RFS_LOG_INFO(...) RFS_LOG(::rfs::log::Level::info, __VA_ARGS__)
#define RFS_LOG_DEBUG(...) RFS_LOG(::rfs::log::Level::debug, __VA_ARGS__)
