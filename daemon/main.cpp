// riakfs: serves SOURCE at MOUNTPOINT. Start-up and shutdown ordering live here.
//
// Order matters: everything that can fail on bad input is checked before anything is mounted;
// no thread exists before the daemon forks (Daemonizer); on the way out the event loops stop, the
// blocking pool drains (its calls still reply), and only then is the session destroyed, since
// every outstanding request points into it.
#include "daemon/control.hpp"
#include "daemon/daemonize.hpp"
#include "daemon/fuse_channel.hpp"
#include "daemon/fuse_ops.hpp"
#include "daemon/service.hpp"
#include "lib/common/log.hpp"
#include "lib/common/mount_options.hpp"
#include "lib/common/mount_table.hpp"
#include "lib/common/source_users.hpp"
#include "lib/control/control_server.hpp"
#include "lib/control/control_socket.hpp"
#include "lib/fs/inode_table.hpp"
#include "lib/fs/local_fs.hpp"
#include "lib/io/executor.hpp"
#include "lib/layout/mapping.hpp"
#include "lib/migrate/drain.hpp"
#include "lib/migrate/local_pins.hpp"
#include "lib/migrate/migrate_observer.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/namespace_sync.hpp"
#include "lib/migrate/restore.hpp"
#include "lib/migrate/riak_backed_store.hpp"
#include "lib/migrate/shadow_observer.hpp"
#include "lib/riak/config.hpp"
#include "lib/riak/node_check.hpp"
#include "lib/riak/security.hpp"
#include "lib/riak/telemetry.hpp"
#include "lib/state/placeholder.hpp"
#include "lib/state/state_store.hpp"

#include <fuse_lowlevel.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_future.hpp>

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int fail(const std::string& message) {
    // The message may quote the command line: no credentials (README, "Metrics and logs").
    std::fprintf(stderr, "riakfs: error: %s\n", rfs::log::redact_credentials(message).c_str());
    return 1;
}

// libfuse splits -o values at commas; a backslash keeps one literal.
std::string escape_option_value(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == ',' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

// A sanitizer build replaces malloc with the sanitizer's allocator, whose mallopt changes nothing
// and says so: there is nothing to set, and no warning to give (a warning fails the integration
// tests, which read the daemon's stderr). GCC says a sanitizer is on with __SANITIZE_*__, clang
// with __has_feature.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RFS_SANITIZED_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RFS_SANITIZED_MALLOC 1
#endif
#endif

// The Riak modes receive objects of up to chunk_size into the heap and free them as the cache
// lets them go. With glibc's defaults such a block goes back to the kernel as soon as it is freed
// (mmap'd above the dynamic threshold, or trimmed off the top of its arena above twice that),
// and the next one lands on fresh pages that must be faulted in again: reading a 256 MiB file
// made 66,000 page faults, and on a VM whose host backs a guest page at its first touch
// (Firecracker) filling fresh memory cost more than the copy into it. Fixed thresholds above a
// few chunks keep freed blocks for the next ones (1,700 faults). RiakReader's malloc_trim still
// gives memory back after cache evictions.
void keep_freed_chunks_for_reuse([[maybe_unused]] std::uint64_t chunk_size) {
#ifndef RFS_SANITIZED_MALLOC
    constexpr std::uint64_t kMaxMmapThreshold = 32 << 20; // glibc's ceiling on 64-bit
    const std::uint64_t mmap_threshold =
        std::min(kMaxMmapThreshold, std::max<std::uint64_t>(4 << 20, 2 * chunk_size));
    if (::mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold)) != 1 ||
        ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(2 * mmap_threshold)) != 1)
        RFS_LOG_WARN("cannot set malloc's thresholds: freed chunks go back to the kernel");
#endif
}

// Inodes keep descriptors up to a budget, and open files need theirs: lift the soft limit to the
// hard one. Returns the limit now in force.
rlim_t raise_fd_limit() {
    rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) getrlimit(RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur;
}

// libfuse reports a bad option in its own words on stderr, after which riakfs would add a line of
// its own. While the session is being created its messages are collected here instead, so the
// operator sees exactly one line either way.
std::string g_fuse_messages;

void collect_fuse_message(fuse_log_level, const char* fmt, va_list ap) {
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    if (n > 0) g_fuse_messages.append(buf, std::min<size_t>(size_t(n), sizeof buf - 1));
}

// libfuse's collected text as one line: "fuse: " prefixes dropped, line breaks folded.
std::string fuse_messages_one_line() {
    std::string out;
    size_t start = 0;
    while (start < g_fuse_messages.size()) {
        size_t end = g_fuse_messages.find('\n', start);
        if (end == std::string::npos) end = g_fuse_messages.size();
        std::string line = g_fuse_messages.substr(start, end - start);
        if (line.rfind("fuse: ", 0) == 0) line.erase(0, 6);
        if (!line.empty()) out += (out.empty() ? "" : "; ") + line;
        start = end + 1;
    }
    return out;
}

// The file-system type of the topmost mount on directory `dir` ("fuse.riakfs", ...), or "" when
// nothing is mounted exactly there.
std::string top_mount_type(const std::string& dir) {
    char resolved[PATH_MAX];
    if (!::realpath(dir.c_str(), resolved)) return "";
    auto mount = rfs::topmost_mount(resolved);
    return mount ? mount->type : std::string();
}

// What the Riak modes need, checked before anything is mounted.
struct RiakSetup {
    // The nodes, and for a secured cluster the TLS context and the Authorization header.
    rfs::riak::ClientConfig client;
    std::optional<rfs::layout::Mapper> mapper;
    rfs::state::OpenOptions state;
};

rfs::riak::SecurityOptions security_options(const rfs::MountOptions& o) {
    rfs::riak::SecurityOptions out;
    out.tls.ca_file = o.riak_ca;
    out.tls.cert_file = o.riak_cert;
    out.tls.key_file = o.riak_key;
    out.credentials_file = o.riak_credentials;
    return out;
}

// For https:// nodes: each node is asked once, through TLS and with the credentials, so that a
// certificate or a password the cluster refuses stops the start in one line (unreachable nodes
// only get a warning, as plain ones down at start would be retried). Runs before the fork and
// leaves no thread behind (lib/riak/node_check.hpp).
std::optional<std::string> check_secured_nodes(const rfs::riak::ClientConfig& client) {
    if (client.nodes.empty() || !client.nodes.front().tls) return std::nullopt;
    auto check =
        rfs::riak::check_nodes(client, std::chrono::seconds(5), rfs::riak::kMountOptionNames);
    if (check.refused) return "riak=: " + *check.refused;
    for (const auto& node : check.unreachable)
        RFS_LOG_WARN("Riak node not answering at start (it is tried again later): {}", node);
    return std::nullopt;
}

// Reads the layout and checks that the state directory can be had, or says in one line why
// not. The state store is closed again: LevelDB may start threads, and none may exist before
// the daemon forks (Daemonizer); it is reopened once the daemon runs.
std::optional<std::string> prepare_riak(const rfs::CommandLine& cl, const std::string& source,
                                        RiakSetup* out) {
    auto nodes = rfs::riak::parse_node_list(cl.options.riak_nodes);
    if (!nodes) return "riak=" + cl.options.riak_nodes + ": " + nodes.error().message;
    out->client.nodes = *nodes;
    out->client.request_timeout = std::chrono::duration_cast<rfs::riak::Duration>(
        std::chrono::duration<double>(cl.options.riak_timeout));
    if (auto ok = rfs::riak::apply_security(security_options(cl.options),
                                            rfs::riak::kMountOptionNames, out->client);
        !ok)
        return ok.error().message;
    if (!cl.options.config.empty()) {
        std::ifstream in(cl.options.config, std::ios::binary);
        if (!in) return "config=" + cl.options.config + ": " + std::strerror(errno);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto mapper = rfs::layout::Mapper::from_json(text);
        if (!mapper) return "config=" + cl.options.config + ": " + mapper.error().message;
        out->mapper.emplace(std::move(*mapper));
    } else {
        out->mapper.emplace(
            rfs::layout::Mapper::default_layout(cl.options.bucket, cl.options.bucket_type));
    }
    // Absolute: the daemon leaves its working directory before the store is reopened.
    out->state.state_dir = cl.options.state_dir.empty()
                               ? rfs::default_state_dir(source)
                               : std::filesystem::absolute(cl.options.state_dir).string();
    out->state.source = source;
    auto store = rfs::state::StateStore::open(out->state);
    if (!store) return store.error().message;
    if (cl.options.mode == rfs::Mode::move) {
        // Released files are marked with a trusted.* attribute and emptied by punching holes.
        rfs::UniqueFd dir(::open(cl.source.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir) return "cannot use SOURCE '" + cl.source + "': " + std::strerror(errno);
        if (auto ok = rfs::state::probe_support(dir.get()); !ok)
            return "mode=move: " + ok.error().message;
    }
    // Last: it is the one check that waits for the network.
    return check_secured_nodes(out->client);
}

// The restore, on the migrator's loop (where its object store lives); `out` gets the result.
boost::asio::awaitable<void>
run_restore(int root, const rfs::layout::Mapper* mapper, rfs::state::StateStore* state,
            rfs::store::ObjectStore* store,
            std::optional<rfs::state::Result<rfs::migrate::RestoreReport>>* out) {
    auto call = rfs::migrate::restore_tree(root, *mapper, *state, *store);
    out->emplace(co_await std::move(call));
}

// `-o restore` (or an interrupted one): SOURCE is rebuilt from Riak before anything is served.
// Throws with one line when it cannot be.
void restore_if_asked(const rfs::CommandLine& cl, int root, const rfs::layout::Mapper& mapper,
                      rfs::state::StateStore& state, rfs::migrate::Migrator& migrator) {
    auto unfinished = state.aux_get(rfs::state::AuxKind::restoring, "");
    if (!unfinished) throw std::runtime_error(unfinished.error().message);
    if (!cl.options.restore) {
        if (*unfinished)
            throw std::runtime_error("state_dir " + state.state_dir() +
                                     " holds an unfinished restore: mount again with -o restore "
                                     "to finish it");
        return;
    }
    RFS_LOG_INFO("restoring {} from the namespace records in Riak", cl.source);
    std::optional<rfs::state::Result<rfs::migrate::RestoreReport>> result;
    auto done = boost::asio::co_spawn(
        migrator.context(), run_restore(root, &mapper, &state, &migrator.object_store(), &result),
        boost::asio::use_future);
    done.get();
    if (!result || !*result)
        throw std::runtime_error("restore failed: " +
                                 (result ? result->error().message : std::string("no result")));
    const auto& r = **result;
    RFS_LOG_INFO("restored {} director(ies), {} file(s), {} hard link(s), {} symlink(s), {} other "
                 "node(s){}",
                 r.directories, r.files, r.hard_links, r.symlinks, r.others,
                 r.resumed ? " (an interrupted restore, resumed)" : "");
    if (r.missing > 0)
        RFS_LOG_WARN("restore: {} file(s) had no object in Riak and were skipped (named above)",
                     r.missing);
}

// The Riak nodes as the migrator's client knows them, asked on its loop (where the client
// lives); empty when the loop does not answer within a second.
// With no cache= given: a mount on top of SOURCE hides it from every path lookup, so the kernel
// may trust what it is told for a day (cache=exclusive), unless a process already holds
// something inside SOURCE (a descriptor, its working directory, a mapping), through which SOURCE
// can still change beside the mount. An explicit cache=exclusive is the operator's word for a
// SOURCE nothing else changes; such processes are named all the same.
void choose_cache_policy(rfs::MountOptions& options, const struct stat& source,
                         const struct stat& mountpoint, const std::string& source_path) {
    const bool hidden = source.st_dev == mountpoint.st_dev && source.st_ino == mountpoint.st_ino;
    if (options.cache_given && options.cache != rfs::CachePolicy::exclusive) return;
    if (!options.cache_given && !hidden) return;
    const auto holders = rfs::processes_holding(source_path, 3);
    std::string named;
    for (const auto& h : holders)
        named += (named.empty() ? "" : ", ") + h;
    if (options.cache_given) {
        if (!holders.empty())
            RFS_LOG_WARN("cache=exclusive: processes hold files or directories in {} ({}{}); "
                         "changes they make will not be seen for up to a day",
                         source_path, named, holders.size() == 3 ? ", ..." : "");
        return;
    }
    if (!holders.empty()) {
        RFS_LOG_WARN("{} is mounted over itself, but processes hold files or directories in it "
                     "({}{}): cache=auto (1 s); restart them on the mount and remount for "
                     "cache=exclusive",
                     source_path, named, holders.size() == 3 ? ", ..." : "");
        return;
    }
    options.cache = rfs::CachePolicy::exclusive;
    RFS_LOG_INFO("{} is mounted over itself: cache=exclusive (the kernel keeps entries, "
                 "attributes and pages for a day)",
                 source_path);
}

std::vector<rfs::riak::NodeStatus> riak_nodes_of(rfs::migrate::Migrator& migrator) {
    auto answer = std::make_shared<std::promise<std::vector<rfs::riak::NodeStatus>>>();
    auto future = answer->get_future();
    boost::asio::post(migrator.context(), [&migrator, answer] {
        auto* store = dynamic_cast<rfs::migrate::RiakBackedStore*>(&migrator.object_store());
        answer->set_value(store ? store->client().nodes() : std::vector<rfs::riak::NodeStatus>{});
    });
    if (future.wait_for(std::chrono::seconds(1)) != std::future_status::ready) return {};
    return future.get();
}

// riakfsctl finds a mount's control socket through /run/riakfs (lib/control/control_socket.hpp).
// Best effort: without it riakfsctl falls back to the default state_dir of SOURCE.
void register_control_socket(const std::string& mountpoint, const std::string& socket) {
    const std::string dir(rfs::control::kRegistryDir);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        RFS_LOG_DEBUG("cannot make {}: {}", dir, std::strerror(errno));
        return;
    }
    const std::string link = rfs::control::registry_path(mountpoint);
    const std::string temp = link + ".new" + std::to_string(::getpid());
    ::unlink(temp.c_str());
    if (::symlink(socket.c_str(), temp.c_str()) != 0 || ::rename(temp.c_str(), link.c_str()) != 0) {
        RFS_LOG_WARN("cannot register the control socket in {}: {} (riakfsctl needs "
                     "--state-dir for this mount)",
                     dir, std::strerror(errno));
        ::unlink(temp.c_str());
    }
}

void unregister_control_socket(const std::string& mountpoint, const std::string& socket) {
    const std::string link = rfs::control::registry_path(mountpoint);
    char target[PATH_MAX];
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)) == socket) ::unlink(link.c_str());
}

fuse_session* new_session(fuse_args* args, const fuse_lowlevel_ops& ops, void* userdata,
                          std::string* error) {
    g_fuse_messages.clear();
    fuse_set_log_func(collect_fuse_message);
    fuse_session* se = fuse_session_new(args, &ops, sizeof ops, userdata);
    fuse_set_log_func(nullptr); // back to libfuse's own stderr output
    if (!se) {
        std::string why = fuse_messages_one_line();
        *error = "invalid FUSE mount options" + (why.empty() ? std::string() : ": " + why);
    } else if (!g_fuse_messages.empty()) {
        // Not an error (e.g. the version line under -d): show it as libfuse would have.
        std::fputs(g_fuse_messages.c_str(), stderr);
    }
    return se;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = rfs::parse_command_line(args);
    if (auto* error = std::get_if<rfs::ParseError>(&parsed)) return fail(error->message);
    auto& cl = std::get<rfs::CommandLine>(parsed);
    if (cl.show_help) {
        std::fputs(rfs::usage("riakfs").c_str(), stdout);
        return 0;
    }
    if (cl.show_version) {
        std::printf("riakfs 0.1.0 (libfuse %s)\n", fuse_pkgversion());
        return 0;
    }
    // Before any thread starts: the FUSE loops (loop 0 is this thread), their helper pools and
    // the control server inherit it; the migration's threads set their own (thread_role.hpp).
    (void)rfs::io::apply_thread_role(rfs::io::ThreadRole::serving);
    if (cl.debug) rfs::log::set_level(rfs::log::Level::debug);
    if (!cl.options.riak_nodes.empty() && cl.options.mode == rfs::Mode::passthrough) {
        auto nodes = rfs::riak::parse_node_list(cl.options.riak_nodes);
        if (!nodes) return fail("riak=" + cl.options.riak_nodes + ": " + nodes.error().message);
        // Kept in fstab lines switched back to passthrough; harmless, but say so.
        if (cl.options.mode == rfs::Mode::passthrough)
            RFS_LOG_WARN("mode=passthrough does not use Riak; riak={} is ignored{}",
                         cl.options.riak_nodes,
                         security_options(cl.options).empty()
                             ? ""
                             : " (and so are its TLS and credentials options)");
    }

    // Operators script mounts: a second riakfs stacked on a live one would serve the first
    // mount's view (or itself, when SOURCE is MOUNTPOINT) and hide it.
    if (top_mount_type(cl.mountpoint) == "fuse.riakfs")
        return fail("MOUNTPOINT '" + cl.mountpoint +
                    "' is already a riakfs mount; unmount it first (fusermount3 -u)");

    int root = ::open(cl.source.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return fail("cannot use SOURCE '" + cl.source + "': " + std::strerror(errno));
    rfs::UniqueFd root_fd(root);
    struct stat root_stat;
    if (::fstat(root, &root_stat) != 0)
        return fail("cannot stat SOURCE '" + cl.source + "': " + std::strerror(errno));
    // Serving needs to list and enter SOURCE; check with the daemon's own credentials.
    if (::faccessat(root, ".", R_OK | X_OK, AT_EACCESS) != 0)
        return fail("cannot read SOURCE '" + cl.source + "': " + std::strerror(errno));
    struct stat mnt_stat;
    if (::stat(cl.mountpoint.c_str(), &mnt_stat) != 0)
        return fail("cannot use MOUNTPOINT '" + cl.mountpoint + "': " + std::strerror(errno));
    if (!S_ISDIR(mnt_stat.st_mode))
        return fail("MOUNTPOINT '" + cl.mountpoint + "' is not a directory");

    rlim_t fd_limit = raise_fd_limit();
    if (cl.options.mode != rfs::Mode::passthrough)
        keep_freed_chunks_for_reuse(cl.options.chunk_size);
    // The kernel already applied the caller's umask to every mode it sends.
    ::umask(0);

    std::vector<std::string> fuse_argv_text = {"riakfs"};
    if (cl.debug) fuse_argv_text.push_back("-d");
    auto add_option = [&](const std::string& opt) {
        fuse_argv_text.push_back("-o");
        fuse_argv_text.push_back(opt);
    };
    // Once other users can reach the mount, the kernel must check their access against the
    // modes we report (the daemon itself may act as root). Without allow_other/allow_root only
    // the mounting user gets in, whose access the source already checks for the daemon; leaving
    // default_permissions off then spares a GETATTR of the parent before every create.
    bool shared = false;
    for (const auto& opt : cl.fuse_options)
        if (opt == "allow_other" || opt == "allow_root") shared = true;
    if (shared) add_option("default_permissions");
    char resolved[PATH_MAX];
    std::string fsname = ::realpath(cl.source.c_str(), resolved) ? resolved : cl.source;
    add_option("fsname=" + escape_option_value(fsname));
    add_option("subtype=riakfs");
    // Our parser removed the backslashes that kept commas literal; libfuse needs them back.
    for (const auto& opt : cl.fuse_options)
        add_option(escape_option_value(opt));
    std::vector<char*> fuse_argv;
    for (auto& s : fuse_argv_text)
        fuse_argv.push_back(s.data());
    fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(fuse_argv.size()), fuse_argv.data());
    // fuse_session_new() copies the arguments into memory of its own as it parses them: freed
    // on every way out, the early failures included.
    struct FreeFuseArgs {
        fuse_args* args;
        ~FreeFuseArgs() { fuse_opt_free_args(args); }
    } free_fargs{&fargs};

    choose_cache_policy(cl.options, root_stat, mnt_stat, fsname);
    // Without cache=, the policy is known only now (SOURCE hidden under the mount or not).
    if (auto refusal = rfs::writeback_refusal(cl.options)) return fail(*refusal);

    RiakSetup riak_setup;
    bool riak_mode = cl.options.mode != rfs::Mode::passthrough;
    if (riak_mode)
        if (auto error = prepare_riak(cl, fsname, &riak_setup)) return fail(*error);
    // metrics= and settings= (README "Metrics and logs"): bound and read before mounting.
    auto prepared_service = rfs::Service::prepare(cl);
    if (auto* error = std::get_if<std::string>(&prepared_service)) return fail(*error);
    auto service = std::move(std::get<std::unique_ptr<rfs::Service>>(prepared_service));
    // SOURCE again, for the migrator's own reads (resolved beneath it, never through the mount).
    rfs::UniqueFd migrate_root(::open(cl.source.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));

    // Before the mount: afterwards a MOUNTPOINT path would resolve through the mount itself.
    std::string mountpoint_abs =
        ::realpath(cl.mountpoint.c_str(), resolved) ? resolved : cl.mountpoint;

    rfs::fs::InodeTable inodes(std::move(root_fd), root_stat);
    // Half the descriptors for inodes to keep, an eighth for reopened ones; the rest stays free
    // for open files and directories, /dev/fuse and io_uring.
    size_t fd_room = fd_limit == RLIM_INFINITY ? size_t(1) << 20 : size_t(fd_limit);
    inodes.set_fd_budget(fd_room / 2, std::clamp<size_t>(fd_room / 8, 16, 4096));
    rfs::fs::LocalFs::Config fs_config;
    fs_config.timeouts = rfs::effective_timeouts(cl.options);
    // In every mode: a SOURCE that a move mount left placeholders in keeps their markers private.
    fs_config.hidden_xattr = rfs::state::is_name_hidden;
    rfs::fs::LocalFs local_fs(inodes, fs_config);
    rfs::Overlay overlay(local_fs);
    overlay.shared = shared;
    overlay.writeback_cache = cl.options.writeback_cache;
    local_fs.set_notifier(&overlay);
#ifdef RFS_TEST_FAULTS
    if (const char* fault = std::getenv("RIAKFS_TEST_FAULT"))
        if (!rfs::set_test_fault(fault, local_fs))
            return fail(std::string("unknown RIAKFS_TEST_FAULT '") + fault + "'");
#endif
    fuse_lowlevel_ops ops = rfs::overlay_operations(cl.options.mode);

    std::string session_error;
    fuse_session* se = new_session(&fargs, ops, &overlay, &session_error);
    if (!se) return fail(session_error);
    overlay.session = se;
    if (fuse_session_mount(se, cl.mountpoint.c_str()) != 0) {
        fuse_session_destroy(se);
        return fail("cannot mount on '" + cl.mountpoint + "'");
    }
    rfs::Daemonizer daemon;
    if (!daemon.start(cl.foreground)) {
        int err = errno;
        fuse_session_unmount(se);
        fuse_session_destroy(se);
        return fail(std::string("cannot go to the background: ") + std::strerror(err));
    }
    service->attach_journal();
    RFS_LOG_INFO("serving {} at {} (mode={}, {} loop(s))", cl.source, cl.mountpoint,
                 rfs::to_string(cl.options.mode), cl.options.threads);

    // From here on the mount is up (and we may have daemonized): a failure to set up the loops
    // (io_uring refused, no threads, no descriptors) must still end in one line and a clean
    // unmount, never in an uncaught exception that leaves a dead mount behind.
    int status = 0;
    try {
        rfs::io::Executor executor(cl.options.threads, cl.options.blocking_threads);
        overlay.executor = &executor;
        local_fs.set_executor(&executor);
        // Runs on every way out, once the loops and the blocking pool are done with the handles
        // (a blocking fsync may still hold a descriptor until join_blocking()).
        struct CloseHandles {
            rfs::fs::LocalFs& fs;
            ~CloseHandles() { fs.close_all_handles(); }
        } close_handles{local_fs};
        // The Riak modes: the state store, the migrator's own loop, and the hooks that feed it.
        std::unique_ptr<rfs::state::StateStore> state;
        rfs::migrate::ReleaseGate release_gate;               // outlives the migrator and the hooks
        std::unique_ptr<rfs::migrate::LocalPins> pins;        // likewise (the mapper asks it)
        std::unique_ptr<rfs::migrate::IntentJournal> journal; // outlives the migrator
        std::unique_ptr<rfs::migrate::Migrator> migrator;
        std::unique_ptr<rfs::migrate::ShadowObserver> observer;
        std::unique_ptr<rfs::migrate::NamespaceSync> namespace_sync;
        std::shared_ptr<rfs::migrate::RiakReader> reader;
        // A Riak client per FUSE loop, for the fetches a LOOKUP or an OPEN starts (see below).
        std::vector<std::unique_ptr<rfs::migrate::RiakBackedStore>> loop_stores;
        auto riak_telemetry = std::make_shared<rfs::riak::Telemetry>(); // for the metrics
        std::unique_ptr<rfs::migrate::Drain> drain;
        rfs::migrate::ForegroundActivity foreground; // FUSE requests, which the drain yields to
        rfs::ControlContext control_context;
        std::unique_ptr<rfs::control::ControlServer> control;
        rfs::Service::DrainConnection drain_settings; // reloads set the drain's limits
        if (riak_mode) {
            auto opened = rfs::state::StateStore::open(riak_setup.state);
            if (!opened) throw std::runtime_error(opened.error().message);
            state = std::move(*opened);
            // Paths recalled with riakfsctl recall: never released again, and those recalled
            // with --delete-from-riak map to nothing (everything below follows the mapper).
            auto loaded_pins = rfs::migrate::LocalPins::load(*state);
            if (!loaded_pins) throw std::runtime_error(loaded_pins.error().message);
            pins = std::move(*loaded_pins);
            riak_setup.mapper->set_exclusion(
                [p = pins.get()](std::string_view path) { return p->local_only(path); });
            // Unlinks, rmdirs and renames a crash kept from being recorded: found before
            // anything changes SOURCE, recorded once the hooks are in place (below).
            auto opened_journal = rfs::migrate::IntentJournal::open(riak_setup.state.state_dir,
                                                                    *state, migrate_root.get());
            if (!opened_journal) throw std::runtime_error(opened_journal.error().message);
            journal = std::move(*opened_journal);
            rfs::migrate::MigratorOptions mo;
            mo.chunk_size = cl.options.chunk_size;
            mo.journal = journal.get();
            mo.pins = pins.get();
            if (cl.options.mode == rfs::Mode::move) mo.release = &release_gate;
            mo.source_changing = [&local_fs](dev_t dev, ino_t ino, const timespec& mtime) {
                local_fs.source_changing(dev, ino, mtime);
            };
            mo.source_changed = [&local_fs](dev_t dev, ino_t ino) {
                local_fs.source_changed(dev, ino);
            };
            rfs::riak::ClientConfig client_config = riak_setup.client;
            client_config.telemetry = riak_telemetry;
            migrator = std::make_unique<rfs::migrate::Migrator>(
                migrate_root.get(), *riak_setup.mapper, *state,
                [client_config](boost::asio::io_context& context) {
                    return std::make_unique<rfs::migrate::RiakBackedStore>(context, client_config);
                },
                mo);
            migrator->start();
            // Before the first request, and before the namespace sync looks at the tree.
            restore_if_asked(cl, migrate_root.get(), *riak_setup.mapper, *state, *migrator);
            namespace_sync = std::make_unique<rfs::migrate::NamespaceSync>(
                migrate_root.get(), *riak_setup.mapper, *state, migrator->context(),
                migrator->object_store());
            namespace_sync->set_journal(journal.get());
            namespace_sync->set_entry_stat(
                [&local_fs](int dir_fd, const char* name, struct stat* st) {
                    return local_fs.lstat_as_shown(dir_fd, name, st);
                });
            namespace_sync->start();
            // Reads from Riak run on the migrator's loop: verified copies (migrate, move) and
            // released files (move, and restored trees in every mode).
            rfs::migrate::ReaderOptions ro;
            ro.cache_size = cl.options.cache_size;
            reader = std::make_shared<rfs::migrate::RiakReader>(migrator->context(),
                                                                migrator->object_store(), ro);
            rfs::migrate::MigrateObserverOptions oo;
            oo.serve_verified = cl.options.mode != rfs::Mode::shadow;
            oo.release = cl.options.mode == rfs::Mode::move;
            // A small file's fetch at its LOOKUP is made and answered on the FUSE loop that will
            // serve its READ, through that loop's own client: through the migration loop it
            // cost two more thread wake-ups per file (bench/README, "read 4K files").
            for (unsigned i = 0; i < executor.size(); ++i)
                loop_stores.push_back(std::make_unique<rfs::migrate::RiakBackedStore>(
                    executor.loop(i).context(), client_config));
            oo.calling_loop = [&loop_stores]() -> rfs::migrate::LoopStore {
                rfs::io::Loop* loop = rfs::io::Executor::current();
                if (!loop || loop->index() >= loop_stores.size()) return {};
                return {&loop->context(), loop_stores[loop->index()].get()};
            };
            // A reader opening a directory's small files in order has the next ones fetched
            // ahead (lib/migrate/sibling_prefetch.hpp).
            oo.source_root = migrate_root.get();
            auto migrate_observer = std::make_unique<rfs::migrate::MigrateObserver>(
                local_fs, *migrator, *state, reader, release_gate, oo);
            control_context.observer = migrate_observer.get();
            observer = std::move(migrate_observer);
            observer->set_namespace(namespace_sync.get());
            observer->set_journal(journal.get());
            observer->record_unrecorded();
            local_fs.set_observer(observer.get());

            rfs::migrate::DrainOptions drain_options;
            drain_options.start = cl.options.drain;
            drain_options.order = rfs::migrate::parse_drain_order(cl.options.drain_order)
                                      .value_or(rfs::migrate::DrainOrder::path);
            drain_options.bytes_per_second = cl.options.drain_bytes_per_second;
            drain_options.files_per_second = cl.options.drain_files_per_second;
            drain_options.count_released = cl.options.mode == rfs::Mode::move;
            drain_options.foreground = &foreground;
            if (!cl.options.drain_yield) drain_options.yield_in_flight = 0;
            struct stat state_dir_stat;
            if (::stat(riak_setup.state.state_dir.c_str(), &state_dir_stat) == 0) {
                drain_options.skip_dev = state_dir_stat.st_dev;
                drain_options.skip_ino = state_dir_stat.st_ino;
                control_context.state_dir_dev = state_dir_stat.st_dev;
                control_context.state_dir_ino = state_dir_stat.st_ino;
            }
            drain = std::make_unique<rfs::migrate::Drain>(migrate_root.get(), *riak_setup.mapper,
                                                          *state, *migrator, drain_options);
            drain->start();
            drain_settings = service->connect_drain(*drain);

            control_context.mountpoint = mountpoint_abs;
            control_context.source = fsname;
            control_context.state_dir = riak_setup.state.state_dir;
            control_context.mode = cl.options.mode;
            control_context.migrator = migrator.get();
            control_context.drain = drain.get();
            control_context.state = state.get();
            control_context.nodes = [m = migrator.get()] { return riak_nodes_of(*m); };
            for (const auto& node : riak_setup.client.nodes)
                control_context.node_urls.push_back(node.url());
            control_context.source_root = migrate_root.get();
            control_context.mapper = &*riak_setup.mapper;
            control_context.namespaces = namespace_sync.get();
            control_context.pins = pins.get();
            control = std::make_unique<rfs::control::ControlServer>(
                rfs::control::socket_path(riak_setup.state.state_dir),
                [&control_context](const nlohmann::json& request) {
                    return rfs::handle_control_request(control_context, request);
                });
            rfs::add_stream_handlers(*control, control_context);
            if (auto error = control->start(); !error.empty()) {
                RFS_LOG_WARN("no control socket (riakfsctl cannot reach this mount): {}", error);
                control.reset();
            } else {
                register_control_socket(mountpoint_abs,
                                        rfs::control::socket_path(riak_setup.state.state_dir));
            }
        }
        // On every way out: no hook may run once the migrator is gone, and what is still queued
        // gets a few seconds to finish (the rest resumes at the next start).
        struct StopMigrator {
            rfs::fs::LocalFs& fs;
            std::unique_ptr<rfs::migrate::Migrator>& migrator;
            std::unique_ptr<rfs::migrate::NamespaceSync>& namespace_sync;
            std::unique_ptr<rfs::migrate::Drain>& drain;
            std::unique_ptr<rfs::control::ControlServer>& control;
            const std::string& mountpoint;
            const std::string& state_dir;
            ~StopMigrator() {
                if (control) {
                    control->stop();
                    unregister_control_socket(mountpoint, rfs::control::socket_path(state_dir));
                }
                // It hands files to the migrator: it stops first.
                if (drain) drain->stop();
                fs.set_observer(nullptr);
                // Its work runs on the migrator's loop: it stops first.
                if (namespace_sync) namespace_sync->stop(std::chrono::seconds(5));
                if (migrator) migrator->stop(std::chrono::seconds(5));
            }
        } stop_migrator{local_fs,
                        migrator,
                        namespace_sync,
                        drain,
                        control,
                        mountpoint_abs,
                        riak_setup.state.state_dir};
        // Declared after the engine: the endpoint (and its reads of the engine) goes first.
        auto metrics_endpoint = service->start_metrics(
            {std::string(rfs::to_string(cl.options.mode)), migrator.get(), drain.get(), reader,
             riak_mode ? riak_telemetry : nullptr, &inodes});
        // The mount serves once the kernel's INIT is answered: `riakfs` (the parent) returns 0
        // and systemd gets READY=1.
        overlay.on_serving = [&daemon, &service, status = "serving " + cl.mountpoint] {
            daemon.ready();
            service->serving(status);
        };
        std::vector<std::unique_ptr<rfs::FuseChannel>> channels;
        for (unsigned i = 0; i < executor.size(); ++i) {
            channels.push_back(std::make_unique<rfs::FuseChannel>(
                se, executor.loop(i), [&executor] { executor.stop(); }, &foreground));
            channels.back()->start();
        }
        // SIGINT, SIGTERM: unmount; SIGHUP: reload settings= (Service::reload).
        boost::asio::signal_set signals(executor.loop(0).context(), SIGINT, SIGTERM, SIGHUP);
        service->watch_signals(signals, executor, [&](int signo) {
            RFS_LOG_EVENT(rfs::log::Level::info, "unmounting on a signal",
                          {"signal", sigabbrev_np(signo)});
            fuse_session_exit(se);
            executor.stop();
        });
        executor.run();
        executor.join_blocking();
        channels.clear();
    } catch (const std::exception& e) {
        overlay.executor = nullptr;
        local_fs.set_executor(nullptr);
        RFS_LOG_ERROR("cannot serve {}: {}; unmounting", cl.mountpoint, e.what());
        status = 1;
    } catch (...) {
        overlay.executor = nullptr;
        local_fs.set_executor(nullptr);
        RFS_LOG_ERROR("cannot serve {}: unknown exception; unmounting", cl.mountpoint);
        status = 1;
    }
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    RFS_LOG_INFO("unmounted {}", cl.mountpoint);
    return status;
}
