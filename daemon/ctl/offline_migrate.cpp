#include "daemon/ctl/offline_migrate.hpp"

#include "daemon/ctl/connection.hpp"
#include "daemon/ctl/status_view.hpp"
#include "lib/common/mount_options.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/layout/mapping.hpp"
#include "lib/migrate/drain.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/namespace_sync.hpp"
#include "lib/migrate/riak_backed_store.hpp"
#include "lib/riak/config.hpp"
#include "lib/riak/node_check.hpp"
#include "lib/riak/security.hpp"
#include "lib/state/state_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

namespace rfs::ctl {

namespace {

layout::Mapper mapper_of(const MigrateArgs& a) {
    if (a.config.empty())
        return layout::Mapper::default_layout(a.bucket.empty() ? "riakfs" : a.bucket,
                                              a.bucket_type);
    std::ifstream in(a.config, std::ios::binary);
    if (!in) die("--config " + a.config + ": " + std::strerror(errno));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = layout::Mapper::from_json(text);
    if (!parsed) die("--config " + a.config + ": " + parsed.error().message);
    return std::move(*parsed);
}

std::string progress_text(const migrate::DrainProgress& p) {
    const auto remaining = p.remaining();
    const double fraction =
        p.total.bytes > 0
            ? double(p.migrated.bytes) / double(p.total.bytes)
            : (p.total.files > 0 ? double(p.migrated.files) / double(p.total.files) : 0);
    if (p.state == migrate::DrainProgress::State::walking)
        return "migrate: walking SOURCE, " + std::to_string(p.walked) + " files seen";
    std::string eta = "?";
    if (remaining.bytes > 0 && p.copy_bytes_per_second > 0)
        eta = format_duration(double(remaining.bytes) / p.copy_bytes_per_second);
    return progress_bar(fraction, 22) + " " + std::to_string(p.migrated.files) + "/" +
           std::to_string(p.total.files) + " files, " + format_bytes(double(p.migrated.bytes)) +
           " of " + format_bytes(double(p.total.bytes)) + ", " +
           format_bytes(p.copy_bytes_per_second) + "/s, eta " + eta;
}

} // namespace

int migrate_command(const MigrateArgs& a) {
    char resolved[PATH_MAX];
    if (!::realpath(a.source.c_str(), resolved))
        die("cannot use SOURCE '" + a.source + "': " + std::strerror(errno));
    const std::string source = resolved;
    if (auto mount = topmost_mount(source); mount && mount->type == "fuse.riakfs")
        die("'" + a.source + "' is a riakfs mount: its daemon migrates it (riakfsctl drain)");
    auto nodes = riak::parse_node_list(a.riak);
    if (!nodes) die("--riak " + a.riak + ": " + nodes.error().message);
    riak::ClientConfig client_config;
    client_config.nodes = *nodes;
    if (auto ok = riak::apply_security(a.security, riak::kCtlOptionNames, client_config); !ok)
        die(ok.error().message);
    layout::Mapper mapper = mapper_of(a);

    // The daemon's state_dir, opened exactly as the daemon opens it: a mount of SOURCE with this
    // state_dir then finds every copy made here (and a running daemon keeps it locked).
    state::OpenOptions options;
    options.state_dir = a.state_dir.empty() ? default_state_dir(source)
                                            : std::filesystem::absolute(a.state_dir).string();
    options.source = source;
    auto opened = state::StateStore::open(options);
    if (!opened) die(opened.error().message);
    std::unique_ptr<state::StateStore> state = std::move(*opened);
    UniqueFd root(::open(source.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) die("cannot use SOURCE '" + a.source + "': " + std::strerror(errno));

    if (client_config.nodes.front().tls) {
        // A certificate or password the cluster refuses would have every copy retried forever:
        // say so now, in one line (lib/riak/node_check.hpp).
        auto check =
            riak::check_nodes(client_config, std::chrono::seconds(5), riak::kCtlOptionNames);
        if (check.refused) die("--riak: " + *check.refused);
        for (const auto& node : check.unreachable)
            std::fprintf(stderr,
                         "riakfsctl: warning: Riak node not answering (tried again "
                         "while copying): %s\n",
                         node.c_str());
    }
    migrate::MigratorOptions mo;
    mo.chunk_size = a.chunk_size;
    migrate::Migrator migrator(
        root.get(), mapper, *state,
        [client_config](boost::asio::io_context& context) {
            return std::make_unique<migrate::RiakBackedStore>(context, client_config);
        },
        mo);
    migrator.start();
    migrate::NamespaceSync namespaces(root.get(), mapper, *state, migrator.context(),
                                      migrator.object_store());
    namespaces.start();
    migrate::DrainOptions drain_options;
    drain_options.start = true;
    struct stat state_st;
    if (::stat(options.state_dir.c_str(), &state_st) == 0) {
        drain_options.skip_dev = state_st.st_dev;
        drain_options.skip_ino = state_st.st_ino;
    }
    migrate::Drain drain(root.get(), mapper, *state, migrator, drain_options);
    drain.start();

    const bool tty = ::isatty(STDERR_FILENO) != 0;
    migrate::DrainProgress p;
    for (;;) {
        p = drain.progress();
        if (p.state == migrate::DrainProgress::State::finished) break;
        if (tty) std::fprintf(stderr, "\r\x1b[K%s", progress_text(p).c_str());
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    // Copies of failed files are retried by the migrator: wait for them while they make
    // progress, and for the namespace records.
    while (!migrator.wait_idle(std::chrono::milliseconds(250)) ||
           !namespaces.wait_idle(std::chrono::milliseconds(250))) {
        auto stats = migrator.stats();
        if (tty)
            std::fprintf(
                stderr, "\r\x1b[Kmigrate: finishing, %llu queued%s%s",
                static_cast<unsigned long long>(stats.queued),
                stats.last_error.empty() ? "" : ", last error: ", stats.last_error.c_str());
    }
    if (tty) std::fputs("\r\x1b[K", stderr);
    drain.stop();
    p = drain.progress();
    namespaces.stop(std::chrono::seconds(5));
    migrator.stop(std::chrono::seconds(5));
    auto counts = state->counts();
    const std::uint64_t verified = counts[state::Phase::verified] + counts[state::Phase::released];
    // The pass's own count misses files whose retries succeeded after it ended; the state
    // records (now that the migrator is idle) say what Riak holds.
    std::printf("migrated %s to Riak: %llu mapped files (%s), %llu with a verified copy; "
                "state in %s\n",
                source.c_str(), static_cast<unsigned long long>(p.total.files),
                format_bytes(double(p.total.bytes)).c_str(),
                static_cast<unsigned long long>(verified), options.state_dir.c_str());
    if (verified < p.total.files) {
        std::fprintf(stderr, "riakfsctl: %llu file(s) could not be copied%s%s\n",
                     static_cast<unsigned long long>(p.total.files - verified),
                     p.last_error.empty() ? "" : ": ", p.last_error.c_str());
        return 1;
    }
    return 0;
}

} // namespace rfs::ctl
