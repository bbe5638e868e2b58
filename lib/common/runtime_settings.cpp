#include "lib/common/runtime_settings.hpp"

#include "lib/common/mount_options.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace rfs {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

} // namespace

std::variant<RuntimeSettings, std::string> parse_runtime_settings(std::string_view text,
                                                                  std::string_view name) {
    RuntimeSettings out;
    unsigned number = 0;
    while (!text.empty()) {
        ++number;
        std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        // A '#' starts a comment (values never need one).
        line = trim(line.substr(0, line.find('#')));
        if (line.empty()) continue;
        std::size_t eq = line.find('=');
        if (eq == std::string_view::npos)
            return fmt::format("{}:{}: expected key = value, not '{}'", name, number, line);
        std::string_view key = trim(line.substr(0, eq));
        std::string_view value = trim(line.substr(eq + 1));
        if (key == "log_level") {
            auto level = log::parse_level(value);
            if (!level)
                return fmt::format("{}:{}: log_level must be error, warning, info or debug, not "
                                   "'{}'",
                                   name, number, value);
            out.log_level = *level;
        } else if (key == "drain_rate" || key == "drain_files") {
            // The same values as the mount options of the same names.
            MountOptions parsed;
            if (auto error = apply_riakfs_option(fmt::format("{}={}", key, value), parsed))
                return fmt::format("{}:{}: {}", name, number, *error);
            if (key == "drain_rate")
                out.drain_bytes_per_second = parsed.drain_bytes_per_second;
            else
                out.drain_files_per_second = parsed.drain_files_per_second;
        } else {
            return fmt::format("{}:{}: unknown setting '{}' (known: log_level, drain_rate, "
                               "drain_files)",
                               name, number, key);
        }
    }
    return out;
}

std::variant<RuntimeSettings, std::string> read_runtime_settings(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fmt::format("settings={}: {}", path, std::strerror(errno));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return fmt::format("settings={}: cannot read it", path);
    return parse_runtime_settings(text, "settings=" + path);
}

} // namespace rfs
