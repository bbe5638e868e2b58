#include "daemon/systemd.hpp"

#include "lib/common/log.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace rfs::systemd {
namespace {

constexpr int kPriority[] = {3 /*err*/, 4 /*warning*/, 6 /*info*/, 7 /*debug*/};

// "RIAKFS_" and the key in upper case: journal field names are [A-Z0-9_].
std::string journal_field_name(std::string_view key) {
    std::string name = "RIAKFS_";
    for (char c : key)
        name += std::isalnum(static_cast<unsigned char>(c))
                    ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                    : '_';
    return name;
}

void journal_sink(log::Level level, std::string_view message, std::span<const log::Field> fields) {
    // MESSAGE is the same logfmt text as on stderr (without ts=: the journal stamps entries), so
    // `journalctl -u` reads like the foreground output; each field is also its own journal field.
    std::vector<std::string> items;
    items.reserve(fields.size() + 3);
    items.push_back("MESSAGE=" + log::format_line(level, message, fields, false));
    items.push_back("PRIORITY=" + std::to_string(kPriority[static_cast<int>(level)]));
    items.push_back("SYSLOG_IDENTIFIER=riakfs");
    for (const auto& field : fields)
        items.push_back(journal_field_name(field.key) + "=" + field.value);
    std::vector<iovec> iov;
    iov.reserve(items.size());
    for (auto& item : items)
        iov.push_back(iovec{item.data(), item.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) {
        // The journal refused (gone, full): the line still goes to stderr, which systemd reads.
        std::string line = log::format_line(level, message, fields) + "\n";
        [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
    }
}

void notify(const std::string& text) {
    sd_notify(0, text.c_str());
}

} // namespace

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st;
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev &&
           static_cast<unsigned long long>(st.st_ino) == ino;
}

bool log_to_journal_if_attached() {
    if (!stderr_is_journal()) return false;
    log::set_sink(journal_sink);
    return true;
}

void notify_ready(std::string_view status) {
    notify("READY=1\nSTATUS=" + std::string(status));
}

void notify_status(std::string_view status) {
    notify("STATUS=" + std::string(status));
}

void notify_reloading() {
    notify("RELOADING=1\nSTATUS=reloading settings");
}

void notify_reloaded(std::string_view status) {
    notify("READY=1\nSTATUS=" + std::string(status));
}

void notify_stopping(std::string_view status) {
    notify("STOPPING=1\nSTATUS=" + std::string(status));
}

} // namespace rfs::systemd
