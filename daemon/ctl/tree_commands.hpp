// riakfsctl's commands that walk a tree: verify, recall and plan (README "riakfsctl"). verify,
// recall and plan of a MOUNTPOINT run inside the daemon (streamed requests of the control
// protocol) and show their progress here; plan of a SOURCE walks it here, with the layout given
// on the command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rfs::ctl {

// PATH as the operator typed it -> relative to MOUNTPOINT ("" = all of it): absolute paths
// must lie under `mountpoint`, others are taken relative to it. Dies (usage) on "..".
std::string path_in_mount(const std::string& mountpoint, const std::string& path);

struct VerifyArgs {
    std::string given, socket, path;
    bool repair = false, as_json = false;
};
// Exit status: 0 all agree, 1 mismatches (or copies still pending), 2 errors.
int verify_command(const VerifyArgs& args);

struct RecallArgs {
    std::string given, socket, path;
    bool delete_from_riak = false;
};
// Exit status: 0 every file is local, 1 some could not be brought back.
int recall_command(const RecallArgs& args);

struct PlanArgs {
    std::string given;                       // SOURCE or MOUNTPOINT as typed
    std::string socket;                      // a mount's control socket; "" = plan SOURCE here
    std::string config, bucket, bucket_type; // the layout of a SOURCE
    std::optional<std::uint64_t> rate;       // bytes a second, overrides the mount's
    bool as_json = false;
};
int plan_command(const PlanArgs& args);

} // namespace rfs::ctl
