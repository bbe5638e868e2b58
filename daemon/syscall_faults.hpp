// Test builds only (riakfs-test-faults, never installed): C library calls made to fail on
// purpose, so that the integration tests can show what the daemon does when such a call fails
// for real. syscall_faults.cpp is linked into riakfs-test-faults alone and defines the C
// library's functions itself; the daemon's calls (lib/ included) reach those first, and they
// pass every call on unchanged unless its fault is armed and the call is the one it targets.
#pragma once

#ifdef RFS_TEST_FAULTS

#include <string_view>

namespace rfs::test_faults {

// Arms the fault `name` (RIAKFS_TEST_FAULT) for the daemon's whole life; false for a name that
// is not one of these:
//   fuse_nonblock_fails  making a /dev/fuse descriptor non-blocking (fcntl F_SETFL) fails with
//                        EINVAL: each event loop's channel does that at start
//   setid_restore_fails  fchmod or fchmodat giving a set-user-ID or set-group-ID bit fails with
//                        EPERM: as the daemon puts those bits back on an object it handed over
//                        to its creator
//   rename_stat_fails    fstatat of a name beginning with "fault-" in a directory fails with
//                        EIO: as rename looks at what it moves when inodes are reached by name
//   no_request_buffers   a request buffer (aligned_alloc of a BufferPool::kBufferSize) asked
//                        for on an event loop's thread is not allocated: each channel keeps the
//                        one it got when it started, and a READ that needs one of its own finds
//                        no memory
bool arm(std::string_view name);

} // namespace rfs::test_faults

#endif
