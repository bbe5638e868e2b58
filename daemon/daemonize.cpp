#include "daemon/daemonize.hpp"

#include "lib/common/log.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace rfs {

Daemonizer::~Daemonizer() {
    if (notify_fd_ >= 0) ::close(notify_fd_); // not ready: the parent reports the exit status
}

namespace {

// As fuse_daemonize() does: the daemon must not keep a directory busy (every path it uses later
// is absolute or a descriptor); "/" always exists.
void leave_working_directory() {
    [[maybe_unused]] int ignored = ::chdir("/");
}

} // namespace

bool Daemonizer::start(bool foreground) {
    if (foreground) {
        leave_working_directory();
        return true;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    pid_t child = ::fork();
    if (child < 0) {
        int err = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        errno = err;
        return false;
    }
    if (child > 0) {
        ::close(fds[1]);
        char ready = 0;
        ssize_t n;
        do {
            n = ::read(fds[0], &ready, 1);
        } while (n < 0 && errno == EINTR);
        if (n == 1) ::_exit(0);
        // The child ended without serving: its status is ours (it said why on stderr).
        int status = 0;
        while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
        ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
    }
    ::close(fds[0]);
    notify_fd_ = fds[1];
    ::setsid();
    leave_working_directory();
    return true;
}

void Daemonizer::ready() {
    if (notify_fd_ < 0) return;
    log::use_syslog(true);
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        ::dup2(null_fd, 0);
        ::dup2(null_fd, 1);
        ::dup2(null_fd, 2);
        if (null_fd > 2) ::close(null_fd);
    }
    char ready = 1;
    while (::write(notify_fd_, &ready, 1) < 0 && errno == EINTR) {
    }
    ::close(notify_fd_);
    notify_fd_ = -1;
}

} // namespace rfs
