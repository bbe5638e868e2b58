// What the daemon answers on its control socket (lib/control/control_server.hpp): the status of
// the mount and the drain's controls. The request and answer formats are in README.md, section
// "riakfsctl"; `format` in the status says which version of that schema it follows.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "lib/common/mount_options.hpp"
#include "lib/riak/node_pool.hpp"

namespace rfs::migrate {
class Drain;
class Migrator;
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
};

nlohmann::json status_json(const ControlContext& context);
// Answers one request: {"cmd":"status"} or {"cmd":"drain", ...}. Throws std::invalid_argument
// with a one-line message for a request it does not understand.
nlohmann::json handle_control_request(const ControlContext& context, const nlohmann::json& request);

} // namespace rfs
