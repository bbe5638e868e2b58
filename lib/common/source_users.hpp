// Which processes hold something inside a directory: an open descriptor, their working or root
// directory, or a mapped file. Read from /proc before mounting over SOURCE.
//
// Why: a mount that sits on top of SOURCE hides it from every path lookup, so the kernel may
// cache what riakfs tells it for a day (cache=exclusive). The one way left to change SOURCE
// beside the mount is through something opened before it: a descriptor, a working directory
// (relative paths), a mapping. Such a process makes the long cache unsafe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace rfs {

// "PID (command)" of up to `max` processes other than this one holding `dir` (an absolute,
// resolved path) or anything beneath it. Processes that vanish or cannot be read are skipped:
// as root (which a mount over SOURCE needs) every process can be.
std::vector<std::string> processes_holding(const std::string& dir, std::size_t max);

} // namespace rfs
