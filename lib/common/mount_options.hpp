// Command-line and `-o` option parsing for the riakfs daemon. Start-up thread only.
//
// riakfs is invoked the way FUSE file systems are, so mount.fuse3, fstab and systemd can start it:
//   riakfs SOURCE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]
// Options riakfs understands are consumed here; every other `-o` option is handed to libfuse,
// which validates it (allow_other, ro, fsname=..., and so on).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rfs {

enum class Mode { passthrough, shadow, migrate, move };

std::string_view to_string(Mode mode);

// How long the kernel may trust what it was told, after libfuse's passthrough_ll:
// never = 0 s and direct I/O, auto = 1 s, always = one day (safe only when nothing but this mount
// changes SOURCE, e.g. when the mount hides SOURCE by sitting on top of it). exclusive = always,
// chosen because SOURCE is hidden under the mount (or the operator says nothing else changes it):
// the timeouts are a day, and changes riakfs itself makes beside the requests (releases, fetches
// back) are told to the kernel (LocalFs::source_changed).
enum class CachePolicy { never, automatic, always, exclusive };

struct MountOptions {
    // Without mode=: migrate when riak= is given, else passthrough.
    Mode mode = Mode::passthrough;
    bool mode_given = false; // mode= was on the command line
    CachePolicy cache = CachePolicy::automatic;
    bool cache_given = false; // cache= was on the command line (else riakfs picks: see main)
    // Explicit timeouts override the cache policy's defaults (seconds).
    std::optional<double> attr_timeout;
    std::optional<double> entry_timeout;
    std::optional<double> negative_timeout;
    // "-o writeback_cache": the kernel keeps written pages and sends them later, in larger
    // writes, and owns the sizes and mtimes of regular files meanwhile. Only safe when nothing
    // but this mount changes SOURCE: cache=always or exclusive (writeback_refusal). Off by
    // default until bench/ shows what it is worth.
    bool writeback_cache = false;
    // Event-loop threads that read FUSE requests and run local I/O on io_uring. Two by default:
    // with one, every metadata syscall waits behind the one before it (a create's RELEASE
    // behind the next file's LOOKUP, a cold stat's disk read behind the next); bench/README.md.
    unsigned threads = 2;
    // Threads for calls that may block for long (fsync, fallocate, flush, truncates), and as
    // many again for copy_file_range.
    unsigned blocking_threads = 2;
    // "-o riak=URL[,URL...]": the Riak nodes, as given (the Riak modes use them).
    std::string riak_nodes;
    // A secured cluster (README "Riak over TLS, with credentials"; lib/riak/security.hpp): CA
    // file to trust instead of the system store, client certificate and key (https:// nodes),
    // and the file holding USER:PASSWORD for basic authentication. File names only: the daemon
    // reads and checks them at start.
    std::string riak_ca;
    std::string riak_cert;
    std::string riak_key;
    std::string riak_credentials;
    // "-o riak_timeout=S": how long one request to Riak may take, from its dispatch to the end of
    // its answer, before it counts as failed (and is retried or fails the call with EIO). 30 s
    // suits a healthy cluster and the largest objects riakfs writes (a chunk); a cluster known to
    // stall wants it shorter, so that applications get their EIO sooner.
    double riak_timeout = 30;
    // The Riak modes' layout and state (see README "The Riak modes").
    std::string bucket = "riakfs";
    std::string bucket_type;            // "" = the default type
    std::uint64_t chunk_size = 1 << 20; // files above it are chunked
    std::string state_dir;              // "" = default_state_dir(SOURCE)
    // mode=migrate: bytes of Riak objects kept in memory for reads (an LRU; never exceeded).
    std::uint64_t cache_size = std::uint64_t{256} << 20;
    std::string config; // JSON layout file with mapping rules ("" = none)
    // "-o restore": rebuild an empty SOURCE from the namespace records in Riak before serving.
    bool restore = false;
    // The background drain (lib/migrate/drain.hpp): "-o drain=on" starts it with the daemon
    // (riakfsctl can start it later either way); rates are per second, 0 = unlimited.
    bool drain = false;
    std::string drain_order = "path"; // path, size or atime
    std::uint64_t drain_bytes_per_second = 0;
    std::uint64_t drain_files_per_second = 0;
    bool drain_yield = true; // one file in flight while FUSE requests arrive (DrainOptions)
    // Operations (README "Metrics and logs", "fstab and systemd"). "-o metrics=IP:PORT": the
    // Prometheus endpoint ("" = none). "-o settings=FILE": log level and drain settings, read at
    // start and again at every SIGHUP (lib/common/runtime_settings.hpp).
    std::string metrics;
    std::string settings_file;
};

// Where a mount keeps its state when state_dir= is not given: one directory per SOURCE under
// /var/lib/riakfs, named after SOURCE's absolute path ("/srv/data" -> "srv%2Fdata").
std::string default_state_dir(const std::string& absolute_source);

struct CommandLine {
    std::string source;
    std::string mountpoint;
    bool foreground = false;
    bool debug = false;
    bool show_help = false;
    bool show_version = false;
    MountOptions options;
    // `-o` options for libfuse, in order, already split at commas.
    std::vector<std::string> fuse_options;
};

struct ParseError {
    std::string message;
};

// Parses argv (argv[0] excluded). On failure returns a one-line message for the operator.
// Does not touch the file system: SOURCE is checked by the daemon itself.
std::variant<CommandLine, ParseError> parse_command_line(const std::vector<std::string>& args);

// One riakfs `-o` option ("drain_rate=50M") applied to `options`: the one-line error, or
// nothing. "not a riakfs option" for an option that belongs to libfuse. (The settings= file
// takes drain_rate and drain_files with the same values as the options.)
std::optional<std::string> apply_riakfs_option(const std::string& option, MountOptions& options);

// Timeouts after applying the cache policy and explicit overrides.
struct Timeouts {
    double attr;
    double entry;
    double negative;
    bool keep_cache;
    bool direct_io;
};
Timeouts effective_timeouts(const MountOptions& options);

// Why writeback_cache cannot be used with `options.cache` (one line for the operator), or
// nothing. With the writeback cache the kernel trusts its own size and mtime of a file over
// SOURCE's: a change made beside the mount would never be seen, and the kernel's later writes
// would overwrite it. Asked at parse time for an explicit cache=, and again once the daemon
// has chosen the policy (exclusive when SOURCE is MOUNTPOINT, else auto).
std::optional<std::string> writeback_refusal(const MountOptions& options);

std::string usage(std::string_view program);

} // namespace rfs
