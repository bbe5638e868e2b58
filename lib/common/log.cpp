#include "lib/common/log.hpp"

#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace rfs::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<bool> g_syslog{false};
std::atomic<Sink> g_sink{nullptr};

bool needs_quotes(std::string_view value) {
    if (value.empty()) return true;
    for (char c : value)
        if (c == ' ' || c == '=' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
            return true;
    return false;
}

void append_value(std::string& out, std::string_view value) {
    if (!needs_quotes(value)) {
        out += value;
        return;
    }
    out += '"';
    for (char c : value) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20)
                out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
            else
                out += c;
        }
    }
    out += '"';
}

std::string timestamp_now() {
    timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    ::gmtime_r(&ts.tv_sec, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       ts.tv_nsec / 1000000);
}

// Characters that end a URL's authority (user-info cannot hold them unescaped).
bool ends_authority(char c) {
    return c == '/' || c == ' ' || c == ',' || c == '"' || c == '\'' || c == '\n' || c == '?' ||
           c == '#' || c == '\t';
}

} // namespace

std::string_view to_string(Level level) {
    switch (level) {
    case Level::error:
        return "error";
    case Level::warning:
        return "warning";
    case Level::info:
        return "info";
    case Level::debug:
        return "debug";
    }
    return "info";
}

std::optional<Level> parse_level(std::string_view text) {
    for (Level l : {Level::error, Level::warning, Level::info, Level::debug})
        if (text == to_string(l)) return l;
    return std::nullopt;
}

void set_level(Level level) {
    g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

Level level() {
    return static_cast<Level>(g_level.load(std::memory_order_relaxed));
}

void use_syslog(bool enabled) {
    if (enabled) openlog("riakfs", LOG_PID, LOG_DAEMON);
    g_syslog.store(enabled, std::memory_order_relaxed);
}

void set_sink(Sink sink) {
    g_sink.store(sink, std::memory_order_release);
}

bool enabled(Level level) {
    return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

std::string redact_credentials(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t at = 0;
    for (;;) {
        std::size_t scheme_end = text.find("://", at);
        if (scheme_end == std::string_view::npos) break;
        std::size_t authority = scheme_end + 3;
        std::size_t end = authority;
        std::size_t last_at = std::string_view::npos;
        while (end < text.size() && !ends_authority(text[end])) {
            if (text[end] == '@') last_at = end;
            ++end;
        }
        out.append(text.substr(at, authority - at));
        if (last_at != std::string_view::npos) {
            out += "***";
            out.append(text.substr(last_at, end - last_at));
        } else {
            out.append(text.substr(authority, end - authority));
        }
        at = end;
    }
    out.append(text.substr(at));
    return out;
}

std::string format_line(Level level, std::string_view message, std::span<const Field> fields,
                        bool timestamp) {
    std::string line;
    if (timestamp) {
        line += "ts=";
        line += timestamp_now();
        line += ' ';
    }
    line += "level=";
    line += to_string(level);
    line += " msg=";
    append_value(line, message);
    for (const auto& field : fields) {
        line += ' ';
        line += field.key;
        line += '=';
        append_value(line, field.value);
    }
    return line;
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
    std::string clean_message = redact_credentials(message);
    std::vector<Field> clean;
    clean.reserve(fields.size());
    for (const auto& field : fields)
        clean.push_back(Field{field.key, redact_credentials(field.value)});
    if (Sink sink = g_sink.load(std::memory_order_acquire))
        return sink(level, clean_message, clean);
    if (g_syslog.load(std::memory_order_relaxed)) {
        static constexpr int kPriority[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        std::string line = format_line(level, clean_message, clean, false);
        syslog(kPriority[static_cast<int>(level)], "%s", line.c_str());
        return;
    }
    // One write() per line so lines from different threads never interleave.
    std::string line = format_line(level, clean_message, clean);
    line += '\n';
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

} // namespace rfs::log
