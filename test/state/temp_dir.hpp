// A temporary directory for lib/state's tests, removed with everything in it when the object
// goes. It is made on a disk file system that can hold trusted xattrs and punch holes (the
// placeholder needs both): /var/tmp first, then /tmp.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "lib/state/placeholder.hpp"

namespace rfs::state::test {

class TempDir {
public:
    TempDir() {
        for (const char* base : {"/var/tmp", "/tmp"}) {
            std::string pattern = std::string(base) + "/rfs-state-test.XXXXXX";
            if (!::mkdtemp(pattern.data())) continue;
            int fd = ::open(pattern.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            bool fits = fd >= 0 && probe_support(fd).has_value();
            if (fd >= 0) ::close(fd);
            if (fits) {
                path_ = pattern;
                return;
            }
            std::filesystem::remove_all(pattern);
        }
    }
    ~TempDir() {
        if (!path_.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(path_, ec);
        }
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    // Empty when neither place supports trusted xattrs and hole punching.
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

} // namespace rfs::state::test
