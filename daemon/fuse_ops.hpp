// The low-level FUSE operations of the passthrough overlay. Called on event-loop threads.
#pragma once

#include "daemon/open_handles.hpp"
#include "lib/common/mount_options.hpp"
#include "lib/fs/close_policy.hpp"
#include "lib/fs/inode_table.hpp"
#include "lib/io/executor.hpp"

#include <fuse_lowlevel.h>

namespace rfs {

// Everything the handlers share; passed to libfuse as the session's userdata.
struct Overlay {
    Overlay(fs::InodeTable& inodes, const Timeouts& timeouts)
        : inodes(inodes), timeouts(timeouts) {}

    fs::InodeTable& inodes;
    // Set once the daemon has forked and may start threads, before the first request is read.
    io::Executor* executor = nullptr;
    // Set once the session exists; for notifications to the kernel.
    fuse_session* session = nullptr;
    Timeouts timeouts;
    // Open files and directories, closed at shutdown if their RELEASE never came (main.cpp,
    // once no loop or blocking call can be using them).
    OpenHandles handles;
    fs::ClosePolicy close_policy; // which opens need FLUSH
    // Other users can reach the mount (allow_other/allow_root): the kernel checks access
    // (default_permissions), including POSIX ACLs when it supports them (posix_acl).
    bool shared = false;
    bool posix_acl = false;   // set by init
    bool apply_umask = false; // set by init: the kernel sends modes unmasked (DONT_MASK)
    uid_t daemon_uid = ::geteuid();
    gid_t daemon_gid = ::getegid();
};

// The operation table for `mode`.
fuse_lowlevel_ops overlay_operations(Mode mode);

} // namespace rfs
