// The check riakfs makes before mounting (and riakfsctl migrate before copying) against https://
// nodes: every node is asked GET /ping once, through a real connection (TLS handshake,
// certificate and host name verification, credentials), so that a setup the cluster refuses is
// one clear line at start instead of copies that fail forever once the mount is up.
//
// What refuses the start: a node whose certificate fails verification (untrusted CA, expired,
// another host's) or whose TLS handshake fails, and a node that answers 401 (credentials
// missing or wrong), 403 or 426. A node that does not answer at all (down, unreachable, no
// answer within `limit`) only gets a warning: the client retries it later, as it would a plain
// http:// node that is down at start.
//
// It runs an io_context of its own on the calling thread and returns only once every
// connection is closed, so that no thread outlives it (the daemon forks afterwards; Asio's
// resolver thread is joined when that io_context goes).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lib/riak/config.hpp"
#include "lib/riak/security.hpp"

namespace rfs::riak {

struct NodeCheck {
    std::optional<std::string> refused;   // one line: the first node that refused, and why
    std::vector<std::string> unreachable; // "URL: why", one per node that did not answer
};

NodeCheck check_nodes(const ClientConfig& config, Duration limit, const SecurityOptionNames& names);

} // namespace rfs::riak
