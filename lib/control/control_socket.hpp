// The control socket of a mount: where it is, how the daemon and riakfsctl reach it, and the
// framing of its protocol (one JSON request line, one JSON answer line; README "riakfsctl").
//
// The socket is `state_dir/control.sock` (mode 0600; state_dir itself is 0700). A mount is found
// from its MOUNTPOINT through a registry: the daemon makes the symbolic link
// `/run/riakfs/<MOUNTPOINT with / and % as %2F and %25>.sock` pointing at its socket, and removes
// it at exit. Without the link (a daemon that could not write /run/riakfs, or one killed), the
// default state_dir of the mount's SOURCE (its fsname in /proc/self/mountinfo) is tried.
//
// Socket paths can be longer than sun_path's 108 bytes: both sides go through the socket's
// directory opened as a descriptor (/proc/self/fd/N/control.sock), whose path is always short.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rfs::control {

inline constexpr std::string_view kRegistryDir = "/run/riakfs";
inline constexpr std::string_view kSocketName = "control.sock";
// A request or an answer is one line of at most this many bytes.
inline constexpr std::size_t kMaxLine = std::size_t{4} << 20;

std::string socket_path(const std::string& state_dir);
// The registry link's name for an absolute MOUNTPOINT (a digest when the name would be too long
// for a file name).
std::string registry_name(std::string_view mountpoint);
std::string registry_path(std::string_view mountpoint);

// A listening socket at `path` (a stale socket there is replaced), mode 0600. -1 with *error set.
int listen_at(const std::string& path, std::string* error);
// A socket connected to `path`; -1 with errno set (ENOENT, ECONNREFUSED, EACCES, ...).
int connect_to(const std::string& path);

// One '\n'-terminated line (without the '\n'). False on end of file before a line, a line longer
// than kMaxLine, or an error (errno set; EAGAIN after a receive timeout).
bool read_line(int fd, std::string* line);
bool write_all(int fd, std::string_view data);

} // namespace rfs::control
