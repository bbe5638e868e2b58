#include "lib/common/source_users.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <memory>
#include <string_view>

namespace rfs {
namespace {

bool beneath(std::string_view path, std::string_view dir) {
    if (dir == "/") return !path.empty() && path[0] == '/';
    return path.starts_with(dir) && (path.size() == dir.size() || path[dir.size()] == '/');
}

std::string link_target(const std::string& link) {
    char buf[4096];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Whether any link in /proc/PID/<dir> (fd, map_files) points beneath `target`.
bool any_link_beneath(const std::string& proc_dir, const std::string& target) {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(proc_dir.c_str()), ::closedir);
    if (!d) return false;
    while (dirent* e = ::readdir(d.get())) {
        if (e->d_name[0] == '.') continue;
        if (beneath(link_target(proc_dir + "/" + e->d_name), target)) return true;
    }
    return false;
}

} // namespace

std::vector<std::string> processes_holding(const std::string& dir, std::size_t max) {
    std::vector<std::string> found;
    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
    if (!proc) return found;
    const std::string self = std::to_string(::getpid());
    while (found.size() < max) {
        dirent* e = ::readdir(proc.get());
        if (!e) break;
        if (!std::isdigit(static_cast<unsigned char>(e->d_name[0])) || e->d_name == self) continue;
        const std::string base = std::string("/proc/") + e->d_name;
        const bool holds =
            beneath(link_target(base + "/cwd"), dir) || beneath(link_target(base + "/root"), dir) ||
            any_link_beneath(base + "/fd", dir) || any_link_beneath(base + "/map_files", dir);
        if (!holds) continue;
        std::string comm;
        std::getline(std::ifstream(base + "/comm"), comm);
        found.push_back(std::string(e->d_name) + " (" + comm + ")");
    }
    return found;
}

} // namespace rfs
