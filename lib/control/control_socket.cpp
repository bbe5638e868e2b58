#include "lib/control/control_socket.hpp"

#include "lib/common/unique_fd.hpp"
#include "lib/layout/sha256.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rfs::control {

namespace {

// "/proc/self/fd/N/name" for `path`, with `dir_fd` holding path's directory open.
bool short_address(const std::string& path, UniqueFd* dir_fd, sockaddr_un* addr, socklen_t* len) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    if (dir.empty()) dir = "/";
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    dir_fd->reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!*dir_fd) return false;
    std::string shortened = "/proc/self/fd/" + std::to_string(dir_fd->get()) + "/" + name;
    if (shortened.size() >= sizeof addr->sun_path) {
        errno = ENAMETOOLONG;
        return false;
    }
    std::memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    std::memcpy(addr->sun_path, shortened.data(), shortened.size());
    *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + shortened.size() + 1);
    return true;
}

} // namespace

std::string socket_path(const std::string& state_dir) {
    return state_dir + "/" + std::string(kSocketName);
}

std::string registry_name(std::string_view mountpoint) {
    std::string name;
    for (char c : mountpoint.size() > 1 ? mountpoint.substr(1) : std::string_view("root")) {
        if (c == '/')
            name += "%2F";
        else if (c == '%')
            name += "%25";
        else
            name += c;
    }
    if (name.size() > 200) {
        layout::Sha256 digest;
        digest.update(mountpoint);
        name = "sha256-" + digest.hex_digest();
    }
    return name + ".sock";
}

std::string registry_path(std::string_view mountpoint) {
    return std::string(kRegistryDir) + "/" + registry_name(mountpoint);
}

int listen_at(const std::string& path, std::string* error) {
    UniqueFd dir;
    sockaddr_un addr;
    socklen_t len;
    if (!short_address(path, &dir, &addr, &len)) {
        *error = "cannot use " + path + ": " + std::strerror(errno);
        return -1;
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        *error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    // A socket left by a daemon that was killed: this daemon holds the state_dir lock, so it is
    // nobody's.
    const std::string name = path.substr(path.rfind('/') + 1);
    struct stat st;
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
        ::unlinkat(dir.get(), name.c_str(), 0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::fchmodat(dir.get(), name.c_str(), 0600, 0) != 0 || ::listen(fd.get(), 16) != 0) {
        *error = "cannot listen on " + path + ": " + std::strerror(errno);
        return -1;
    }
    return fd.release();
}

int connect_to(const std::string& path) {
    UniqueFd dir;
    sockaddr_un addr;
    socklen_t len;
    if (!short_address(path, &dir, &addr, &len)) return -1;
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return -1;
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) return -1;
    return fd.release();
}

bool read_line(int fd, std::string* line) {
    line->clear();
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_PEEK);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = 0;
            return false;
        }
        auto* end = static_cast<char*>(std::memchr(buf, '\n', static_cast<size_t>(n)));
        size_t take = end ? static_cast<size_t>(end - buf) + 1 : static_cast<size_t>(n);
        n = ::recv(fd, buf, take, 0);
        if (n <= 0) return false;
        line->append(buf, static_cast<size_t>(n));
        if (end) {
            line->pop_back();
            return true;
        }
        if (line->size() > kMaxLine) {
            errno = EMSGSIZE;
            return false;
        }
    }
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

} // namespace rfs::control
