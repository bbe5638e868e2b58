#include "slow_fs.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>

namespace riakfs::it {
namespace {

// riakfs-it-slowfs is built next to integration_tests.
std::string slowfs_bin() {
    if (const char* env = ::getenv("RIAKFS_IT_SLOWFS")) return env;
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return "riakfs-it-slowfs";
    std::string self(buf, static_cast<size_t>(n));
    return self.substr(0, self.rfind('/') + 1) + "riakfs-it-slowfs";
}

} // namespace

SlowFs::SlowFs(MountFixture& fx, const std::string& dir, const std::string& ops)
    : fx_(fx), dir_(dir) {
    ::mkdir(dir.c_str(), 0755);
    int notify[2], gate[2];
    if (::pipe2(notify, O_CLOEXEC) != 0 || ::pipe2(gate, O_CLOEXEC) != 0)
        throw std::runtime_error("slowfs: pipe");
    std::string bin = slowfs_bin();
    pid_ = ::fork();
    if (pid_ == 0) {
        // Descriptors 3 (arrivals) and 4 (the gate), without close-on-exec.
        int n = ::fcntl(notify[1], F_DUPFD, 10), g = ::fcntl(gate[0], F_DUPFD, 10);
        ::dup2(n, 3);
        ::dup2(g, 4);
        ::execl(bin.c_str(), bin.c_str(), dir.c_str(), ops.c_str(), (char*)nullptr);
        ::_exit(127);
    }
    ::close(notify[1]);
    ::close(gate[0]);
    notify_ = notify[0];
    gate_ = gate[1];
    if (pid_ < 0) throw std::runtime_error("slowfs: fork");
    if (wait_arrival() != 'M') throw std::runtime_error("slowfs: not mounted (" + bin + ")");
}

SlowFs::~SlowFs() {
    open_gate();
    fx_.unmount(); // riakfs holds descriptors on the slowfs
    ::umount2(dir_.c_str(), MNT_DETACH);
    ::kill(pid_, SIGTERM);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    ::close(notify_);
}

char SlowFs::wait_arrival() {
    char c = 0;
    ssize_t n;
    do
        n = ::read(notify_, &c, 1);
    while (n < 0 && errno == EINTR);
    return n == 1 ? c : 0;
}

void SlowFs::let_one_go() {
    (void)!::write(gate_, "g", 1);
}

void SlowFs::open_gate() {
    if (gate_ >= 0) ::close(gate_);
    gate_ = -1;
}

bool completes(const std::function<void()>& fn, const std::function<void()>& unblock,
               std::chrono::seconds limit) {
    auto done = std::async(std::launch::async, fn);
    if (done.wait_for(limit) == std::future_status::ready) return true;
    unblock();
    done.wait();
    return false;
}

} // namespace riakfs::it
