#include "daemon/metrics_page.hpp"

#include "daemon/fuse_metrics.hpp"
#include "lib/common/log.hpp"
#include "lib/fs/inode_table.hpp"
#include "lib/metrics/exposition.hpp"
#include "lib/migrate/drain.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/riak_reader.hpp"
#include "lib/riak/telemetry.hpp"

namespace rfs {
namespace {

using metrics::TextExposition;
using Type = TextExposition::Type;

constexpr riak::CallMethod kMethods[] = {riak::CallMethod::get,  riak::CallMethod::put,
                                         riak::CallMethod::post, riak::CallMethod::head,
                                         riak::CallMethod::del,  riak::CallMethod::other};

void write_riak(TextExposition& out, const riak::Telemetry& riak) {
    out.family("riakfs_riak_requests_total", Type::counter,
               "Requests to Riak (all attempts of one call count once), by HTTP method.");
    for (auto m : kMethods)
        out.sample({{"method", to_string(m)}}, riak.latency(m).count);
    out.family("riakfs_riak_request_duration_seconds", Type::histogram,
               "Time from starting a Riak request to its answer or final failure, retries "
               "included, by HTTP method.");
    for (auto m : kMethods)
        out.histogram({{"method", to_string(m)}}, riak.latency(m));
    out.family("riakfs_riak_node_up", Type::gauge,
               "1 while the Riak node answers (requests or health pings), 0 once a connection "
               "or ping to it failed.");
    riak.for_each_node([&](const std::string& url, bool up) {
        // Node URLs never hold credentials (riak= refuses them); redact anyway, to be sure.
        std::string node = log::redact_credentials(url);
        out.sample({{"node", node}}, std::uint64_t{up ? 1u : 0u});
    });
}

void write_migration(TextExposition& out, const migrate::MigratorStats& s) {
    out.single("riakfs_migrate_queue_depth", Type::gauge,
               "Files waiting to be copied or being copied, and objects waiting to be deleted.",
               static_cast<double>(s.queued));
    out.single("riakfs_migrate_removals_queued", Type::gauge,
               "Objects waiting to be deleted from Riak (part of the queue depth).",
               static_cast<double>(s.removals_queued));
    out.single("riakfs_migrate_files_migrated_total", Type::counter,
               "Files copied into Riak and verified since the daemon started.",
               static_cast<double>(s.files_copied));
    out.single("riakfs_migrate_bytes_migrated_total", Type::counter,
               "Bytes of the files copied into Riak and verified since the daemon started.",
               static_cast<double>(s.bytes_copied));
    out.single("riakfs_migrate_files_released_total", Type::counter,
               "mode=move: files whose local data was released since the daemon started.",
               static_cast<double>(s.files_released));
    out.single("riakfs_migrate_bytes_released_total", Type::counter,
               "mode=move: local bytes freed by releases since the daemon started.",
               static_cast<double>(s.bytes_freed));
    out.single("riakfs_migrate_files_skipped_total", Type::counter,
               "Queued files not copied: already verified and unchanged, gone, or not regular.",
               static_cast<double>(s.skipped));
    out.single("riakfs_migrate_objects_removed_total", Type::counter,
               "Objects deleted from Riak after unlinks and renames (chunks not counted).",
               static_cast<double>(s.objects_removed));
    out.single("riakfs_migrate_files_relocated_total", Type::counter,
               "Copies moved to a new key after a rename.", static_cast<double>(s.files_relocated));
}

void write_reader(TextExposition& out, const migrate::RiakReader& reader) {
    auto s = reader.stats();
    out.single("riakfs_read_cache_hits_total", Type::counter,
               "Reads from Riak whose object, manifest or chunk was in the memory cache.",
               static_cast<double>(s.cache_hits));
    out.single("riakfs_read_cache_misses_total", Type::counter,
               "Objects, manifests and chunks not in the cache and fetched from Riak (readahead "
               "included).",
               static_cast<double>(s.fetches));
    out.single("riakfs_read_readaheads_total", Type::counter,
               "Chunks fetched ahead of a sequential reader.", static_cast<double>(s.readaheads));
    out.single("riakfs_read_dropped_behind_total", Type::counter,
               "Chunks a sequential reader of a large file had passed, let go of at once.",
               static_cast<double>(s.dropped_behind));
    out.single("riakfs_read_cache_bytes", Type::gauge,
               "Bytes held in the cache of objects read from Riak.",
               static_cast<double>(reader.cached_bytes()));
    out.single("riakfs_read_cache_limit_bytes", Type::gauge, "The cache's bound (cache_size=).",
               static_cast<double>(reader.cache_limit()));
}

// The background drain's pass, as riakfsctl status shows it: files and bytes by what became of
// them, its state and its limits.
void write_drain(TextExposition& out, const migrate::DrainProgress& p) {
    out.family("riakfs_drain_files", Type::gauge,
               "The drain's current pass: mapped regular files found by its walk (total), with a "
               "verified copy (migrated), released (mode=move), failed, and remaining.");
    auto tallies = [&](auto field) {
        out.sample({{"state", "total"}}, field(p.total));
        out.sample({{"state", "migrated"}}, field(p.migrated));
        out.sample({{"state", "released"}}, field(p.released));
        out.sample({{"state", "failed"}}, field(p.failed));
        out.sample({{"state", "remaining"}}, field(p.remaining()));
    };
    tallies([](const migrate::DrainTally& t) { return t.files; });
    out.family("riakfs_drain_bytes", Type::gauge,
               "The bytes of the files of riakfs_drain_files, by the same states.");
    tallies([](const migrate::DrainTally& t) { return t.bytes; });
    out.family("riakfs_drain_state", Type::gauge,
               "1 for the drain's state (off, walking, running, paused or finished), 0 for the "
               "others.");
    for (auto state :
         {migrate::DrainProgress::State::off, migrate::DrainProgress::State::walking,
          migrate::DrainProgress::State::running, migrate::DrainProgress::State::paused,
          migrate::DrainProgress::State::finished})
        out.sample({{"state", migrate::to_string(state)}},
                   std::uint64_t{p.state == state ? 1u : 0u});
    out.single("riakfs_drain_pass", Type::gauge, "Passes started in this state_dir.",
               static_cast<double>(p.pass));
    out.family("riakfs_drain_limit", Type::gauge,
               "The drain's limits in force, a second (0: none): bytes and files.");
    out.sample({{"unit", "bytes"}}, p.bytes_per_second);
    out.sample({{"unit", "files"}}, p.files_per_second);
}

// One family for every kind of error, so that one alert can watch them all.
void write_errors(TextExposition& out, const MetricsSources& sources,
                  const migrate::MigratorStats* migration) {
    out.family("riakfs_errors_total", Type::counter,
               "Errors by kind: fuse_eio (requests answered EIO), fuse_unanswered (a handler "
               "failed; answered EIO), migrate_failed (failed copy or delete attempts, each "
               "retried), read_fallback (reads answered from the local file because Riak "
               "failed), riak_<code> (Riak requests that failed, by client error code).");
    out.sample({{"kind", "fuse_eio"}}, fuse_metrics::eio_answers());
    out.sample({{"kind", "fuse_unanswered"}}, fuse_metrics::unanswered());
    if (migration) out.sample({{"kind", "migrate_failed"}}, migration->failures);
    if (sources.reader) out.sample({{"kind", "read_fallback"}}, sources.reader->stats().fallbacks);
    if (sources.riak) {
        for (int code = 1; code <= static_cast<int>(riak::kLastErrc); ++code) {
            auto errc = static_cast<riak::Errc>(code);
            std::string kind = std::string("riak_") + riak::to_string(errc);
            out.sample({{"kind", kind}}, sources.riak->failures(errc));
        }
    }
}

} // namespace

std::string render_metrics(const MetricsSources& sources) {
    TextExposition out;
    out.family("riakfs_info", Type::gauge, "Always 1; the labels describe the mount.");
    out.sample({{"mode", sources.mode}, {"version", "0.1.0"}}, std::uint64_t{1});
    fuse_metrics::write(out);
    if (sources.inodes) {
        out.family("riakfs_inodes", Type::gauge,
                   "Inodes riakfs remembers: those the kernel holds a lookup on, and the root.");
        out.sample({}, static_cast<std::uint64_t>(sources.inodes->size()));
    }
    std::optional<migrate::MigratorStats> migration;
    if (sources.migrator) migration = sources.migrator->stats();
    if (sources.riak) write_riak(out, *sources.riak);
    if (migration) write_migration(out, *migration);
    if (sources.reader) write_reader(out, *sources.reader);
    if (sources.drain) write_drain(out, sources.drain->progress());
    write_errors(out, sources, migration ? &*migration : nullptr);
    return out.text();
}

} // namespace rfs
