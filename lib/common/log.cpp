#include "lib/common/log.hpp"

#include <syslog.h>
#include <unistd.h>

#include <string>

namespace rfs::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<bool> g_syslog{false};

const char* label(Level level) {
    switch (level) {
    case Level::error:
        return "ERROR";
    case Level::warning:
        return "WARNING";
    case Level::info:
        return "info";
    case Level::debug:
        return "debug";
    }
    return "";
}
} // namespace

void set_level(Level level) {
    g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

void use_syslog(bool enabled) {
    if (enabled) openlog("riakfs", LOG_PID, LOG_DAEMON);
    g_syslog.store(enabled, std::memory_order_relaxed);
}

bool enabled(Level level) {
    return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view message) {
    if (g_syslog.load(std::memory_order_relaxed)) {
        static constexpr int kPriority[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        syslog(kPriority[static_cast<int>(level)], "%.*s", static_cast<int>(message.size()),
               message.data());
        return;
    }
    // One write() per line so lines from different threads never interleave.
    std::string line = fmt::format("riakfs: {}: {}\n", label(level), message);
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

} // namespace rfs::log
