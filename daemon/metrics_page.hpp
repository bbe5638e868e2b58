// The text of GET /metrics (lib/metrics/http_endpoint.hpp): every metric riakfs exposes, read
// from where it is kept (atomics, or the engine's own stats under its lock) on the endpoint's
// thread. README, "Metrics", lists them.
#pragma once

#include <memory>
#include <string>

namespace rfs {
namespace migrate {
class Drain;
class Migrator;
class RiakReader;
} // namespace migrate
namespace riak {
class Telemetry;
}
namespace fs {
class InodeTable;
}

// What there is to report; the Riak parts are null in mode=passthrough. Each must outlive the
// endpoint that renders the page.
struct MetricsSources {
    std::string mode;
    const migrate::Migrator* migrator = nullptr;
    const migrate::Drain* drain = nullptr;
    std::shared_ptr<const migrate::RiakReader> reader;
    std::shared_ptr<const riak::Telemetry> riak;
    const fs::InodeTable* inodes = nullptr;
};

std::string render_metrics(const MetricsSources& sources);

} // namespace rfs
