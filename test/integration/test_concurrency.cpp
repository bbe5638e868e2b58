// Passthrough mode under concurrency: several application threads at once, served by more than one
// event loop. A request's reply can reach the kernel, and the application's next request (a close,
// say) can reach another loop, before the replying handler has returned: nothing a handler touches
// after replying may be freed by that next request. These tests make such races frequent; the
// fixture then checks that the daemon exited cleanly.
#include "mount_fixture.hpp"

#include "../support/test_seed.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
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

namespace {

constexpr int kChurnNames = 300; // split over two directories, so renames cross them
constexpr int kChurnThreads = 6;
constexpr int kChurnOps = 10000; // per thread: bounded by work, not by time
constexpr int kChurnHeld = 20;   // files each thread keeps open, to run the daemon short

std::string churn_name(int i) {
    return "d" + std::to_string(i % 2) + "/n" + std::to_string(i);
}

// What a churn thread ran into that the races between threads do not explain.
struct ChurnResult {
    int unexpected = 0;
    std::string first; // "op: ERRNO"
    int estale = 0;
    int emfile = 0;
};

// One thread of the churn: random creates, stats, reads, renames, links and unlinks on names the
// other threads change as well. ENOENT and EEXIST are the answers those races give natively;
// any other, ESTALE and EMFILE above all, is the daemon's.
ChurnResult churn(const MountFixture& fx, std::uint64_t seed) {
    ChurnResult result;
    std::mt19937_64 rng(seed);
    auto pick = [&] { return churn_name(static_cast<int>(rng() % kChurnNames)); };
    std::vector<int> held;
    auto note = [&](const char* op, int err) {
        if (err == 0 || err == ENOENT || err == EEXIST) return;
        if (err == EMFILE) ++result.emfile;
        if (err == ESTALE) ++result.estale;
        if (result.unexpected++ == 0) result.first = std::string(op) + ": " + errname(err);
    };
    char buf[256];
    for (int op = 0; op < kChurnOps; ++op) {
        switch (rng() % 7) {
        case 0: {
            int fd = ::open(fx.mnt(pick()).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
            if (fd < 0) {
                note("create", errno);
                break;
            }
            if (::write(fd, "churn", 5) != 5) note("write", errno);
            ::close(fd);
            break;
        }
        case 1: {
            struct stat st;
            if (::lstat(fx.mnt(pick()).c_str(), &st) != 0) note("stat", errno);
            break;
        }
        case 2: {
            int fd = ::open(fx.mnt(pick()).c_str(), O_RDONLY);
            if (fd < 0) {
                note("open", errno);
                break;
            }
            if (::read(fd, buf, sizeof buf) < 0) note("read", errno);
            // Kept open for a while: the daemon's descriptors for open files, added to the ones
            // its inodes keep, run past its limit, and it must let the kept ones go (shed()).
            held.push_back(fd);
            if (held.size() > kChurnHeld) {
                ::close(held.front());
                held.erase(held.begin());
            }
            break;
        }
        case 3:
            if (::rename(fx.mnt(pick()).c_str(), fx.mnt(pick()).c_str()) != 0)
                note("rename", errno);
            break;
        case 4:
            if (::link(fx.mnt(pick()).c_str(), fx.mnt(pick()).c_str()) != 0) note("link", errno);
            break;
        case 5:
            if (::unlink(fx.mnt(pick()).c_str()) != 0) note("unlink", errno);
            break;
        case 6:
            // By descriptor, so that nothing retries it: the kernel walks a path again after an
            // ESTALE (LOOKUP_REVAL), which hides a stale inode from path calls. GETXATTR carries
            // no file handle, so the daemon reaches the inode itself; the kernel caches nothing.
            if (!held.empty() &&
                ::fgetxattr(held[rng() % held.size()], "user.churn", buf, sizeof buf) < 0 &&
                errno != ENODATA)
                note("fgetxattr", errno);
            break;
        }
    }
    for (int fd : held)
        ::close(fd);
    return result;
}

} // namespace

TEST_CASE("create/stat/read/rename/link/unlink churn on two loops with few descriptors",
          "[concurrency][shed]") {
    // Issue 14: under this load, with the daemon short of descriptors, one loop's shed() let an
    // inode's kept descriptor go before the inode had its file handle, and a request on the other
    // loop got ESTALE (about once in a million operations; test_inode_table forces that window).
    // And in about one run in ten, both loops ran short at once and shed side by side; each,
    // counting the descriptors the other still held a moment longer, found it had closed none,
    // and two requests got EMFILE (a window test_inode_table forces too). Here the whole path
    // runs through a real mount: the daemon runs out, lets its kept descriptors go while the
    // other loop resolves inodes, and no request may fail for it.
    MountOptions opts = two_loops([](const std::string& src) {
        ::mkdir((src + "/d0").c_str(), 0755);
        ::mkdir((src + "/d1").c_str(), 0755);
        for (int i = 0; i < kChurnNames; i += 2)
            write_file(src + "/" + churn_name(i), "churn");
    });
    // 200 as in the report: 100 descriptors for inodes to keep, 25 for the cache. The threads
    // hold up to 6 x 21 files open, each one a descriptor of the daemon's: with the kept ones and
    // its own dozen or so (/dev/fuse, io_uring, logs) that is past 200, so the daemon must let
    // its kept descriptors go (and log it); once it has, everything fits.
    opts.nofile_limit = 200;
    MountFixture fx(opts);
    const std::uint64_t seed = rfs::test::test_seed("churn");
    INFO("seed " << seed << " (RIAKFS_TEST_SEED repeats the choices, not the interleaving)");
    std::vector<ChurnResult> results(kChurnThreads);
    std::vector<std::thread> workers;
    for (int w = 0; w < kChurnThreads; ++w)
        workers.emplace_back([&, w] { results[w] = churn(fx, seed + w); });
    for (auto& t : workers)
        t.join();
    for (int w = 0; w < kChurnThreads; ++w) {
        INFO("thread " << w << ": first " << results[w].first);
        CHECK(results[w].estale == 0);
        CHECK(results[w].emfile == 0);
        CHECK(results[w].unexpected == 0);
    }
    // The path under test ran: the daemon let its kept descriptors go during the churn.
    INFO(fx.stderr_text());
    CHECK(fx.stderr_text().find("out of descriptors: let ") != std::string::npos);
}
