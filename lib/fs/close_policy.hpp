// Which file systems under SOURCE need the kernel's FLUSH on each close of a written file.
//
// FLUSH exists so that close() can report what the source reports at close: NFS, CIFS and FUSE
// sources write back there and may fail. Local disk and memory file systems have no flush
// operation at all, so closing a duplicate of our descriptor tells the application nothing, and
// the round trip (one of five requests per small file written) is pure cost. Locks stay in the
// kernel either way, and dirty mmap pages are written at munmap, not at flush.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <utility>
#include <vector>

namespace rfs::fs {

// Whether close() on a file system of type `f_type` (statfs) can never report an error. A short
// list of file systems known to have no flush operation; anything else keeps FLUSH.
bool close_never_fails(long f_type);

// close_never_fails() per device, asked of the file system once. Any thread.
class ClosePolicy {
public:
    // `fd` is an open descriptor on device `dev`, used only the first time `dev` is seen.
    bool needs_flush(dev_t dev, int fd);

private:
    std::mutex mu_;
    std::vector<std::pair<dev_t, bool>> known_; // a handful of devices at most
};

} // namespace rfs::fs
