// The low-level FUSE operations: the translation between libfuse's requests and fs::LocalFs,
// which takes every file-system decision. Called on event-loop threads.
#pragma once

#include "lib/common/mount_options.hpp"
#include "lib/fs/local_fs.hpp"
#include "lib/io/executor.hpp"

#include <fuse_lowlevel.h>

#include <functional>
#include <string_view>

namespace rfs {

// Everything the handlers share; passed to libfuse as the session's userdata. It is also the
// file system's way to notify the kernel (fs::KernelNotifier).
struct Overlay final : fs::KernelNotifier {
    explicit Overlay(fs::LocalFs& fs) : fs(fs) {}

    fs::LocalFs& fs;
    // Set once the daemon has forked and may start threads, before the first request is read.
    io::Executor* executor = nullptr;
    // Set once the session exists; for notifications to the kernel.
    fuse_session* session = nullptr;
    // Other users can reach the mount (allow_other/allow_root): the kernel checks access
    // (default_permissions), including POSIX ACLs when it supports them (posix_acl).
    bool shared = false;
    bool posix_acl = false; // set by init
    // writeback_cache was asked for (the cache policy allows it: writeback_refusal); init
    // negotiates it and tells LocalFs when the kernel agreed.
    bool writeback_cache = false;
    // Runs once on the loop that answered the kernel's INIT, right after the answer went out:
    // from then on the mount answers (readiness for the shell and for systemd).
    std::function<void()> on_serving;

    void forget_negative_entry(fs::NodeId parent, std::string_view name) override;
    void attributes_changed(fs::NodeId node) override;
};

// The operation table for `mode`.
fuse_lowlevel_ops overlay_operations(Mode mode);

#ifdef RFS_TEST_FAULTS
// Test builds only (riakfs-test-faults, never installed): a fault to inject, named by the
// RIAKFS_TEST_FAULT environment variable, to show that a throwing handler still answers.
//   throw_in_open   every OPEN throws std::bad_alloc once its descriptor is open
//   throw_in_fsync  every FSYNC throws on the blocking pool before it answers
//   lose_readdirplus_reply  every READDIRPLUS reply is lost as an interrupted one is (the
//                   kernel gets EIO; the entries' lookups must be undone)
// and the failing C library calls of syscall_faults.hpp. Returns false for an unknown name.
bool set_test_fault(std::string_view name, fs::LocalFs& fs);
#endif

} // namespace rfs
