// Operator-facing logging: one line per event, with a level and key=value fields. Any thread.
//
// A line on stderr is logfmt:
//     ts=2026-01-05T10:00:00.123Z level=info msg="serving /srv/data at /srv/data" mode=move
// Values with spaces, quotes, '=' or nothing in them are quoted ("..." with \" \\ \n escapes), so
// every event is exactly one line that a log shipper can split into fields. Levels are error,
// warning, info and debug; -d (or a reload, daemon/reload.hpp) enables debug.
//
// Where lines go: stderr while the daemon runs in the foreground; syslog once it has daemonized
// (stderr is /dev/null then); or a sink the daemon installs, such as the systemd journal
// (daemon/journal.hpp), which receives the message and the fields separately.
//
// Credentials never reach a log: every message and field value passes through
// redact_credentials(), so "http://user:secret@node:8098" is written "http://***@node:8098".
// Debug messages cost one branch when disabled.
#pragma once

#include <fmt/core.h>

#include <atomic>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace rfs::log {

enum class Level { error = 0, warning = 1, info = 2, debug = 3 };

// "error", "warning", "info", "debug".
std::string_view to_string(Level level);
// The inverse, for settings files; nullopt for anything else.
std::optional<Level> parse_level(std::string_view text);

// One key=value field of an event. Keys are lower-case words (a-z, 0-9, _).
struct Field {
    std::string_view key;
    std::string value;
};

// Receives every event that is enabled, already redacted. Any thread; must not log itself.
using Sink = void (*)(Level level, std::string_view message, std::span<const Field> fields);

// Process-wide settings; read from any thread.
void set_level(Level level);
Level level();
void use_syslog(bool enabled);
// Replaces stderr/syslog with `sink` (nullptr: back to them).
void set_sink(Sink sink);
bool enabled(Level level);
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

// The logfmt text of one event, without the trailing newline (and without ts= when
// `timestamp` is false: syslog and the journal stamp lines themselves).
std::string format_line(Level level, std::string_view message, std::span<const Field> fields,
                        bool timestamp = true);
// `text` with the user-info of every URL in it ("scheme://user:pass@") replaced by "***".
std::string redact_credentials(std::string_view text);

} // namespace rfs::log

#define RFS_LOG(level, ...)                                                                        \
    do {                                                                                           \
        if (::rfs::log::enabled(level)) ::rfs::log::write(level, ::fmt::format(__VA_ARGS__));      \
    } while (0)
#define RFS_LOG_ERROR(...) RFS_LOG(::rfs::log::Level::error, __VA_ARGS__)
#define RFS_LOG_WARN(...) RFS_LOG(::rfs::log::Level::warning, __VA_ARGS__)
#define RFS_LOG_INFO(...) RFS_LOG(::rfs::log::Level::info, __VA_ARGS__)
#define RFS_LOG_DEBUG(...) RFS_LOG(::rfs::log::Level::debug, __VA_ARGS__)
// An event with fields: RFS_LOG_EVENT(Level::info, "reloaded", {"log_level", "debug"}).
#define RFS_LOG_EVENT(level, message, ...)                                                         \
    do {                                                                                           \
        if (::rfs::log::enabled(level)) ::rfs::log::write(level, message, {__VA_ARGS__});          \
    } while (0)
