// What the daemon answers on its control socket (lib/control/control_server.hpp): the status of
// the mount and the drain's controls. The request and answer formats are in README.md, section
// "riakfsctl"; `format` in the status says which version of that schema it follows.
#pragma once

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "lib/common/mount_options.hpp"
#include "lib/riak/node_pool.hpp"

#include "lib/control/control_server.hpp"

namespace rfs::layout {
class Mapper;
}
namespace rfs::migrate {
class Drain;
class LocalPins;
class MigrateObserver;
class Migrator;
class NamespaceSync;
} // namespace rfs::migrate
namespace rfs::state {
class StateStore;
}

namespace rfs {

struct ControlContext {
    std::string mountpoint, source, state_dir;
    Mode mode = Mode::migrate;
    migrate::Migrator* migrator = nullptr;
    migrate::Drain* drain = nullptr;
    state::StateStore* state = nullptr;
    // The Riak nodes as the client knows them (asked on the migrator's loop); empty when that
    // loop does not answer in time.
    std::function<std::vector<riak::NodeStatus>()> nodes;
    std::vector<std::string> node_urls; // as configured, for when `nodes` has no answer

    // For verify, recall and plan (streamed requests, each on a thread of its own).
    int source_root = -1;
    const layout::Mapper* mapper = nullptr;
    migrate::MigrateObserver* observer = nullptr;
    migrate::NamespaceSync* namespaces = nullptr;
    migrate::LocalPins* pins = nullptr;
    dev_t state_dir_dev = 0; // state_dir, skipped by the walks when it lies inside SOURCE
    ino_t state_dir_ino = 0;
};

nlohmann::json status_json(const ControlContext& context);
// Answers one request: {"cmd":"status"} or {"cmd":"drain", ...}. Throws std::invalid_argument
// with a one-line message for a request it does not understand.
nlohmann::json handle_control_request(const ControlContext& context, const nlohmann::json& request);

// The streamed requests ({"cmd":"verify"|"recall"|"plan", "path": ...}; README "The control
// protocol"): registers their handlers on `server`.
void add_stream_handlers(control::ControlServer& server, const ControlContext& context);

} // namespace rfs
