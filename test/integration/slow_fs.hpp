// A source that is slow on demand: riakfs-it-slowfs (slowfs.cpp) mounted inside SOURCE, whose
// chosen operations wait until the test lets them go. Tests use it to show that a request stuck
// on a slow source holds back neither the event loops nor the inode table.
#pragma once

#include <sys/mount.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <future>
#include <string>

#include "mount_fixture.hpp"

namespace riakfs::it {

class SlowFs {
public:
    // Mounts a slowfs on `dir` (made if absent; normally inside fx's SOURCE) whose operations
    // `ops` ("flush,setattr,read,opendir") wait. `fx` is unmounted first when this goes.
    SlowFs(MountFixture& fx, const std::string& dir, const std::string& ops);
    ~SlowFs();
    SlowFs(const SlowFs&) = delete;
    SlowFs& operator=(const SlowFs&) = delete;

    // Waits until a waiting operation has arrived, and returns its letter ('f', 's', 'r', 'o').
    char wait_arrival();
    // Lets one waiting operation go on.
    void let_one_go();
    // Lets every operation go on, now and from now on.
    void open_gate();

private:
    MountFixture& fx_;
    std::string dir_;
    pid_t pid_ = -1;
    int notify_ = -1; // read end: arrivals
    int gate_ = -1;   // write end: one byte per call let go
};

// Runs `fn` on another thread and says whether it returned within `limit`, a bound meant only
// to turn a hang into a failure (generous: a loaded machine must never reach it). On a hang,
// `unblock` is called so that `fn` can finish before this returns.
bool completes(const std::function<void()>& fn, const std::function<void()>& unblock,
               std::chrono::seconds limit = std::chrono::seconds(20));

} // namespace riakfs::it
