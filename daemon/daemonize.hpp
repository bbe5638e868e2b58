// Going to the background the way an operator's `mount` (and fstab, and systemd's Type=forking)
// expects: the command returns only once the daemon serves, or has failed, with its exit status,
// and what went wrong is on its stderr. libfuse's fuse_daemonize() lets the parent exit 0 at
// once, so a failure while the daemon was still setting up (a restore that cannot read Riak,
// io_uring refused) reached neither the shell nor systemd.
#pragma once

namespace rfs {

class Daemonizer {
public:
    Daemonizer() = default;
    ~Daemonizer();
    Daemonizer(const Daemonizer&) = delete;
    Daemonizer& operator=(const Daemonizer&) = delete;

    // Unless `foreground`: forks; the parent waits until the child calls ready() (exit 0) or
    // exits (its status), and never returns. The child continues in a new session with "/" as
    // its directory and keeps stderr until ready(). Before any thread exists. Returns false
    // (errno set) when it cannot fork.
    bool start(bool foreground);
    // The daemon serves: the parent exits 0; the child's standard streams go to /dev/null and
    // its log to syslog. Once; nothing in the foreground.
    void ready();

private:
    int notify_fd_ = -1; // the child's end of the pipe the parent waits on
};

} // namespace rfs
