// `riakfsctl migrate SOURCE --riak URL[,URL]`: the migration without a mount. Runs in riakfsctl
// the same engine the daemon runs (Migrator, background Drain at full speed, NamespaceSync),
// with the same layout and the same state_dir format, so that a later mount of SOURCE with that
// state_dir finds every file verified and sends nothing again. Files are copied, never released
// (nothing serves placeholders while SOURCE is not mounted): mount in mode=move to free space.
#pragma once

#include <cstdint>
#include <string>

#include "lib/riak/security.hpp"

namespace rfs::ctl {

struct MigrateArgs {
    std::string source;
    std::string riak;               // URL[,URL...]
    riak::SecurityOptions security; // --riak-ca, --riak-cert, --riak-key, --riak-credentials
    std::string state_dir;          // "" = the default state_dir of SOURCE
    std::string config, bucket, bucket_type;
    std::uint64_t chunk_size = 1 << 20;
};

// Exit status: 0 every mapped file copied and verified, 1 otherwise (one line says why).
int migrate_command(const MigrateArgs& args);

} // namespace rfs::ctl
