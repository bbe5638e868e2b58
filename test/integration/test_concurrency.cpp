// Passthrough mode under concurrency: several application threads at once, served by more than one
// event loop. A request's reply can reach the kernel, and the application's next request (a close,
// say) can reach another loop, before the replying handler has returned: nothing a handler touches
// after replying may be freed by that next request. These tests make such races frequent; the
// fixture then checks that the daemon exited cleanly.
#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace riakfs::it;
using namespace std::chrono_literals;

namespace {

constexpr int kFiles = 64;
constexpr int kThreads = 6;
constexpr auto kRunFor = 3s;

// Two event loops even if the default changes; the stand-in takes no such option.
MountOptions two_loops(std::function<void(const std::string&)> prepare) {
    MountOptions o = MountOptions::prepared(std::move(prepare));
    if (is_riakfs()) o.extra_opts.push_back("threads=2");
    return o;
}

std::string file_name(int i) {
    return "f" + std::to_string(i);
}

// One worker's round: list the directory, read one file whole, write and remove a file of its
// own. Returns 0 or the first errno.
int one_round(const std::string& dir, int worker, int round) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return errno;
    int listed = 0;
    errno = 0;
    while (::readdir(d))
        ++listed;
    int err = errno;
    ::closedir(d);
    if (err) return err;
    if (listed < kFiles) return EIO; // every prepared file must be listed

    std::string path = dir + "/" + file_name((worker * 7 + round) % kFiles);
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return errno;
    char buf[8192];
    ssize_t n = ::read(fd, buf, sizeof buf);
    err = n < 0 ? errno : (n != 4096 ? EIO : 0);
    ::close(fd);
    if (err) return err;

    std::string mine = dir + "/w" + std::to_string(worker) + "-" + std::to_string(round);
    fd = ::open(mine.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return errno;
    err = ::write(fd, buf, 4096) == 4096 ? 0 : (errno ? errno : EIO);
    if (::close(fd) != 0 && !err) err = errno;
    if (!err && ::unlink(mine.c_str()) != 0) err = errno;
    return err;
}

} // namespace

TEST_CASE("listings, reads and creates from many threads on two event loops", "[concurrency]") {
    MountFixture fx(two_loops([](const std::string& src) {
        ::mkdir((src + "/d").c_str(), 0755);
        for (int i = 0; i < kFiles; ++i)
            write_file(src + "/d/" + file_name(i), std::string(4096, char('a' + i % 26)));
    }));
    std::atomic<bool> stop{false};
    std::atomic<int> rounds{0};
    std::vector<int> errors(kThreads, 0);
    std::vector<std::thread> workers;
    for (int w = 0; w < kThreads; ++w) {
        workers.emplace_back([&, w] {
            for (int round = 0; !stop.load() && errors[w] == 0; ++round) {
                errors[w] = one_round(fx.mnt("d"), w, round);
                rounds.fetch_add(1);
            }
        });
    }
    std::this_thread::sleep_for(kRunFor);
    stop = true;
    for (auto& t : workers)
        t.join();
    INFO(rounds.load() << " rounds");
    for (int w = 0; w < kThreads; ++w) {
        INFO("worker " << w);
        CHECK(errname(errors[w]) == "OK");
    }
    CHECK(rounds.load() > kThreads);
    CHECK(list_dir(fx.mnt("d")).size() == size_t(kFiles));
}

TEST_CASE("open and close of one file racing on two event loops", "[concurrency]") {
    // Each close of a written file sends FLUSH and, for the last one, RELEASE; reads and writes
    // of other descriptors of the same file are in flight meanwhile.
    MountFixture fx(two_loops(
        [](const std::string& src) { write_file(src + "/shared", std::string(65536, 's')); }));
    std::atomic<bool> stop{false};
    std::vector<int> errors(kThreads, 0);
    std::vector<std::thread> workers;
    for (int w = 0; w < kThreads; ++w) {
        workers.emplace_back([&, w] {
            char buf[4096];
            while (!stop.load() && errors[w] == 0) {
                int fd = ::open(fx.mnt("shared").c_str(), w % 2 ? O_RDWR : O_RDONLY);
                if (fd < 0) {
                    errors[w] = errno;
                    break;
                }
                off_t off = (w * 4096) % 65536;
                if (::pread(fd, buf, sizeof buf, off) != static_cast<ssize_t>(sizeof buf))
                    errors[w] = errno ? errno : EIO;
                else if (w % 2 && ::pwrite(fd, buf, sizeof buf, off) != sizeof buf)
                    errors[w] = errno ? errno : EIO;
                ::close(fd);
            }
        });
    }
    std::this_thread::sleep_for(kRunFor);
    stop = true;
    for (auto& t : workers)
        t.join();
    for (int w = 0; w < kThreads; ++w) {
        INFO("worker " << w);
        CHECK(errname(errors[w]) == "OK");
    }
    CHECK(read_file(fx.mnt("shared")) == std::string(65536, 's'));
}
