// The low-level FUSE operations: the translation between libfuse's requests and fs::LocalFs,
// which takes every file-system decision. Called on event-loop threads.
#pragma once

#include "lib/common/mount_options.hpp"
#include "lib/fs/local_fs.hpp"
#include "lib/io/executor.hpp"

#include <fuse_lowlevel.h>

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

    void forget_negative_entry(fs::NodeId parent, std::string_view name) override;
};

// The operation table for `mode`.
fuse_lowlevel_ops overlay_operations(Mode mode);

} // namespace rfs
