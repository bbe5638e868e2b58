#include "lib/common/mount_options.hpp"

#include <fmt/core.h>

#include <charconv>
#include <cmath>

namespace rfs {
namespace {

std::optional<double> parse_seconds(std::string_view text) {
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value < 0)
        return std::nullopt;
    return value;
}

// "1048576", "512K", "1M": bytes, with an optional binary K/M/G suffix.
std::optional<std::uint64_t> parse_size(std::string_view text) {
    if (text.empty()) return std::nullopt;
    std::uint64_t unit = 1;
    switch (text.back()) {
    case 'K':
    case 'k':
        unit = 1 << 10;
        break;
    case 'M':
    case 'm':
        unit = 1 << 20;
        break;
    case 'G':
    case 'g':
        unit = 1 << 30;
        break;
    default:
        break;
    }
    if (unit != 1) text.remove_suffix(1);
    if (text.empty() || text.size() > 12) return std::nullopt;
    std::uint64_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n * unit;
}

std::optional<unsigned> parse_count(std::string_view text, unsigned max) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > max)
        return std::nullopt;
    return value;
}

// Splits an `-o` argument at commas; a backslash escapes a comma, as in libfuse.
std::vector<std::string> split_options(std::string_view list) {
    std::vector<std::string> out;
    std::string current;
    for (size_t i = 0; i < list.size(); ++i) {
        if (list[i] == '\\' && i + 1 < list.size()) {
            current += list[++i];
        } else if (list[i] == ',') {
            if (!current.empty()) out.push_back(std::move(current));
            current.clear();
        } else {
            current += list[i];
        }
    }
    if (!current.empty()) out.push_back(std::move(current));
    // "riak=URL,URL" lists nodes with the same comma that separates options: words that are
    // plainly further URLs belong to the riak= before them.
    std::vector<std::string> joined;
    for (auto& word : out) {
        bool url = word.starts_with("http://") || word.starts_with("https://");
        if (url && !joined.empty() && joined.back().starts_with("riak="))
            joined.back() += "," + word;
        else
            joined.push_back(std::move(word));
    }
    return joined;
}

// Returns an error message, or nothing if the option was consumed; `ours` is false for options
// that belong to libfuse.
std::optional<std::string> apply_option(const std::string& option, MountOptions& mo, bool& ours) {
    auto eq = option.find('=');
    std::string_view name = std::string_view(option).substr(0, eq);
    std::string_view value =
        eq == std::string::npos ? std::string_view() : std::string_view(option).substr(eq + 1);
    ours = true;
    if (name == "mode") {
        if (value == "passthrough")
            mo.mode = Mode::passthrough;
        else if (value == "shadow")
            mo.mode = Mode::shadow;
        else if (value == "migrate")
            mo.mode = Mode::migrate;
        else if (value == "move")
            mo.mode = Mode::move;
        else
            return fmt::format("unknown mode '{}' (expected passthrough, shadow, migrate or move)",
                               value);
        mo.mode_given = true;
        return std::nullopt;
    }
    if (name == "cache") {
        if (value == "never")
            mo.cache = CachePolicy::never;
        else if (value == "auto")
            mo.cache = CachePolicy::automatic;
        else if (value == "always")
            mo.cache = CachePolicy::always;
        else if (value == "exclusive")
            mo.cache = CachePolicy::exclusive;
        else
            return fmt::format(
                "unknown cache policy '{}' (expected never, auto, always or exclusive)", value);
        mo.cache_given = true;
        return std::nullopt;
    }
    if (name == "attr_timeout" || name == "entry_timeout" || name == "negative_timeout") {
        auto seconds = parse_seconds(value);
        if (!seconds)
            return fmt::format("{} needs a number of seconds >= 0, not '{}'", name, value);
        (name == "attr_timeout"    ? mo.attr_timeout
         : name == "entry_timeout" ? mo.entry_timeout
                                   : mo.negative_timeout) = *seconds;
        return std::nullopt;
    }
    if (name == "riak_timeout") {
        auto seconds = parse_seconds(value);
        // Below a millisecond no answer could arrive; above an hour it is no longer a limit.
        if (!seconds || *seconds < 0.001 || *seconds > 3600)
            return fmt::format(
                "riak_timeout needs a number of seconds from 0.001 to 3600, not '{}'", value);
        mo.riak_timeout = *seconds;
        return std::nullopt;
    }
    if (name == "threads" || name == "blocking_threads") {
        auto count = parse_count(value, 64);
        if (!count)
            return fmt::format("{} needs a whole number from 1 to 64, not '{}'", name, value);
        (name == "threads" ? mo.threads : mo.blocking_threads) = *count;
        return std::nullopt;
    }
    if (name == "riak") {
        // Checked in full (URL syntax) by the daemon, which knows the Riak client.
        if (value.empty())
            return std::string("riak= needs a node URL, e.g. riak=http://127.0.0.1:8098");
        mo.riak_nodes = std::string(value);
        return std::nullopt;
    }
    if (name == "riak_ca" || name == "riak_cert" || name == "riak_key" ||
        name == "riak_credentials") {
        // Files, read and checked by the daemon (lib/riak/security.hpp).
        if (value.empty()) return fmt::format("{}= needs a file", name);
        (name == "riak_ca"     ? mo.riak_ca
         : name == "riak_cert" ? mo.riak_cert
         : name == "riak_key"  ? mo.riak_key
                               : mo.riak_credentials) = std::string(value);
        return std::nullopt;
    }
    if (name == "bucket" || name == "bucket_type" || name == "state_dir" || name == "config") {
        if (value.empty() && name != "bucket_type") return fmt::format("{}= needs a value", name);
        (name == "bucket"        ? mo.bucket
         : name == "bucket_type" ? mo.bucket_type
         : name == "state_dir"   ? mo.state_dir
                                 : mo.config) = std::string(value);
        return std::nullopt;
    }
    if (name == "chunk_size") {
        auto bytes = parse_size(value);
        // Riak warns above 5 MB per object and refuses 50 MB by default; a chunk is one object.
        if (!bytes || *bytes < 4096 || *bytes > (std::uint64_t{32} << 20))
            return fmt::format("chunk_size needs a size from 4K to 32M (e.g. 1M), not '{}'", value);
        mo.chunk_size = *bytes;
        return std::nullopt;
    }
    if (name == "writeback_cache") {
        if (eq != std::string::npos) return std::string("writeback_cache takes no value");
        mo.writeback_cache = true;
        return std::nullopt;
    }
    if (name == "restore") {
        if (eq != std::string::npos) return std::string("restore takes no value");
        mo.restore = true;
        return std::nullopt;
    }
    if (name == "metrics" || name == "settings") {
        // metrics= is checked in full (IP:PORT) by the daemon, which binds it before mounting.
        if (value.empty())
            return name == "metrics"
                       ? std::string("metrics= needs IP:PORT, e.g. metrics=127.0.0.1:9100")
                       : std::string("settings= needs a file");
        (name == "metrics" ? mo.metrics : mo.settings_file) = std::string(value);
        return std::nullopt;
    }
    if (name == "cache_size") {
        auto bytes = parse_size(value);
        if (!bytes || *bytes > (std::uint64_t{1} << 40))
            return fmt::format("cache_size needs a size (e.g. 256M, 0 for none), not '{}'", value);
        mo.cache_size = *bytes;
        return std::nullopt;
    }
    if (name == "drain" || name == "drain_rate" || name == "drain_files" || name == "drain_order" ||
        name == "drain_yield") {
        if (name == "drain" || name == "drain_yield") {
            if (value != "on" && value != "off")
                return fmt::format("{} needs on or off, not '{}'", name, value);
            (name == "drain" ? mo.drain : mo.drain_yield) = value == "on";
        } else if (name == "drain_rate") {
            auto bytes = parse_size(value);
            if (!bytes || *bytes > (std::uint64_t{1} << 40))
                return fmt::format("drain_rate needs bytes per second (e.g. 50M, 0 for no limit), "
                                   "not '{}'",
                                   value);
            mo.drain_bytes_per_second = *bytes;
        } else if (name == "drain_files") {
            auto files = parse_size(value);
            if (!files || value.find_first_not_of("0123456789") != std::string_view::npos ||
                *files > 1000000000)
                return fmt::format("drain_files needs files per second (e.g. 200, 0 for no "
                                   "limit), not '{}'",
                                   value);
            mo.drain_files_per_second = *files;
        } else {
            if (value != "path" && value != "size" && value != "atime")
                return fmt::format("unknown drain_order '{}' (expected path, size or atime)",
                                   value);
            mo.drain_order = std::string(value);
        }
        return std::nullopt;
    }
    ours = false;
    return std::nullopt;
}

} // namespace

std::optional<std::string> apply_riakfs_option(const std::string& option, MountOptions& options) {
    bool ours = false;
    if (auto error = apply_option(option, options, ours)) return error;
    if (!ours) return "not a riakfs option: " + option;
    return std::nullopt;
}

std::string_view to_string(Mode mode) {
    switch (mode) {
    case Mode::passthrough:
        return "passthrough";
    case Mode::shadow:
        return "shadow";
    case Mode::migrate:
        return "migrate";
    case Mode::move:
        return "move";
    }
    return "?";
}

std::variant<CommandLine, ParseError> parse_command_line(const std::vector<std::string>& args) {
    CommandLine cl;
    bool single_thread = false;
    std::vector<std::string> positional;
    std::vector<std::string> option_words;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "-f")
            cl.foreground = true;
        else if (arg == "-d" || arg == "-odebug")
            cl.debug = cl.foreground = true;
        else if (arg == "-s") {
            // libfuse's single-threaded switch: one event loop, whatever threads= says.
            single_thread = true;
        } else if (arg == "-h" || arg == "--help")
            cl.show_help = true;
        else if (arg == "-V" || arg == "--version")
            cl.show_version = true;
        else if (arg == "-o") {
            if (i + 1 >= args.size()) return ParseError{"-o needs an argument"};
            for (auto& w : split_options(args[++i]))
                option_words.push_back(std::move(w));
        } else if (arg.starts_with("-o")) {
            for (auto& w : split_options(std::string_view(arg).substr(2)))
                option_words.push_back(std::move(w));
        } else if (arg.starts_with("-") && arg.size() > 1) {
            return ParseError{fmt::format("unknown argument '{}' (see --help)", arg)};
        } else {
            positional.push_back(arg);
        }
    }
    if (cl.show_help || cl.show_version) return cl;

    for (const auto& word : option_words) {
        bool ours = false;
        if (auto error = apply_option(word, cl.options, ours)) return ParseError{*error};
        if (ours) continue;
        if (word == "debug") {
            cl.debug = cl.foreground = true;
            continue;
        }
        cl.fuse_options.push_back(word);
    }
    // With riak= and no mode=, the Riak nodes are there to be used: migrate.
    if (!cl.options.mode_given && !cl.options.riak_nodes.empty()) cl.options.mode = Mode::migrate;
    if (cl.options.restore && cl.options.mode == Mode::passthrough)
        return ParseError{"restore rebuilds SOURCE from Riak: it needs riak= and a Riak mode "
                          "(shadow, migrate or move)"};
    if (cl.options.drain && cl.options.mode == Mode::passthrough)
        return ParseError{"drain=on: the background drain copies files into Riak; it needs riak= "
                          "and a Riak mode (shadow, migrate or move), not mode=passthrough"};
    for (const auto& [given, name] : {std::pair{&cl.options.riak_ca, "riak_ca="},
                                      std::pair{&cl.options.riak_cert, "riak_cert="},
                                      std::pair{&cl.options.riak_key, "riak_key="},
                                      std::pair{&cl.options.riak_credentials, "riak_credentials="}})
        if (!given->empty() && cl.options.riak_nodes.empty())
            return ParseError{
                fmt::format("{} is for the Riak nodes: it needs riak=https://...", name)};
    if (cl.options.mode != Mode::passthrough && cl.options.riak_nodes.empty())
        return ParseError{fmt::format("mode={} needs the Riak nodes: riak=http://HOST:PORT[,...]",
                                      to_string(cl.options.mode))};
    if (cl.options.cache_given)
        if (auto refusal = writeback_refusal(cl.options)) return ParseError{*refusal};
    if (positional.size() < 2) return ParseError{"need SOURCE and MOUNTPOINT (see --help)"};
    if (positional.size() > 2)
        return ParseError{fmt::format("unexpected argument '{}' (see --help)", positional[2])};
    cl.source = positional[0];
    cl.mountpoint = positional[1];
    if (cl.source.empty() || cl.mountpoint.empty())
        return ParseError{"SOURCE and MOUNTPOINT must not be empty"};
    if (single_thread) cl.options.threads = 1;
    return cl;
}

Timeouts effective_timeouts(const MountOptions& options) {
    Timeouts t{};
    switch (options.cache) {
    case CachePolicy::never:
        t = {0, 0, 0, false, true};
        break;
    case CachePolicy::automatic:
        t = {1, 1, 0, true, false};
        break;
    case CachePolicy::always:
    case CachePolicy::exclusive:
        t = {86400, 86400, 86400, true, false};
        break;
    }
    if (options.attr_timeout) t.attr = *options.attr_timeout;
    if (options.entry_timeout) t.entry = *options.entry_timeout;
    if (options.negative_timeout) t.negative = *options.negative_timeout;
    return t;
}

std::optional<std::string> writeback_refusal(const MountOptions& options) {
    if (!options.writeback_cache) return std::nullopt;
    if (options.cache == CachePolicy::always || options.cache == CachePolicy::exclusive)
        return std::nullopt;
    return fmt::format("writeback_cache needs cache=always or cache=exclusive (nothing but the "
                       "mount changes SOURCE), not cache={}",
                       options.cache == CachePolicy::never ? "never" : "auto");
}

std::string default_state_dir(const std::string& absolute_source) {
    std::string name;
    for (char c : absolute_source.size() > 1 ? absolute_source.substr(1) : std::string("root")) {
        if (c == '/' || c == '%')
            name += fmt::format("%{:02X}", static_cast<unsigned char>(c));
        else
            name += c;
    }
    return "/var/lib/riakfs/" + name;
}

std::string usage(std::string_view program) {
    return fmt::format(
        "usage: {} SOURCE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]\n"
        "\n"
        "Serves SOURCE at MOUNTPOINT (they may be the same directory).\n"
        "\n"
        "riakfs options:\n"
        "  -o mode=passthrough      serve SOURCE as it is (the default without riak=)\n"
        "  -o mode=shadow           serve SOURCE, and copy every file written or read to its\n"
        "                           end into Riak in the background (needs riak=)\n"
        "  -o mode=migrate          as shadow, and read files whose copy is verified from Riak\n"
        "                           (needs riak=; the default when riak= is given)\n"
        "  -o mode=move             as migrate, and free the local data of every verified\n"
        "                           file (a placeholder stays; reads fetch from Riak, writes\n"
        "                           bring the data back first; needs riak= and root)\n"
        "  -o cache=never|auto|always|exclusive  kernel caching: 0 s, 1 s, one day; exclusive\n"
        "                           (one day) is the default when SOURCE is MOUNTPOINT, else auto\n"
        "  -o attr_timeout=S,entry_timeout=S,negative_timeout=S   override the cache policy\n"
        "  -o writeback_cache       the kernel keeps written pages and sends them later (off by\n"
        "                           default); needs cache=always or exclusive: refused with\n"
        "                           cache=never or auto\n"
        "  -o threads=N             event-loop threads (default 2)\n"
        "  -o blocking_threads=N    threads for fsync/fallocate/flush/truncate, and as many more\n"
        "                           for copy_file_range (default 2)\n"
        "  -o riak=URL[,URL...]     Riak nodes, e.g. "
        "riak=http://10.0.0.1:8098,http://10.0.0.2:8098\n"
        "                           (for the Riak modes; mode=passthrough does not use them);\n"
        "                           https:// for TLS, the certificate verified against the\n"
        "                           system's trust store and the node's host name\n"
        "  -o riak_ca=FILE          trust the CA certificates in FILE (PEM) instead\n"
        "  -o riak_cert=FILE,riak_key=FILE   client certificate and its key (PEM)\n"
        "  -o riak_credentials=FILE basic authentication: one line USER:PASSWORD in a file\n"
        "                           of the daemon's user, mode 600 (https:// only)\n"
        "  -o riak_timeout=S        one request to Riak may take S seconds before it counts\n"
        "                           as failed (retried, or EIO to the application; default 30)\n"
        "  -o bucket=NAME,bucket_type=TYPE   where files go (default bucket riakfs, key = path)\n"
        "  -o config=FILE           JSON mapping rules from paths to bucket and key\n"
        "  -o chunk_size=SIZE       files above it are stored in chunks (default 1M)\n"
        "  -o state_dir=DIR         per-mount state (default /var/lib/riakfs/<SOURCE>)\n"
        "  -o cache_size=SIZE       migrate, move: memory for objects read from Riak (256M)\n"
        "  -o restore               rebuild an empty SOURCE (and state_dir) from the namespace\n"
        "                           records in Riak before serving; data stays in Riak\n"
        "  -o drain=on|off          copy the files nobody touches too, in the background\n"
        "                           (default off; riakfsctl drain starts, pauses, paces it)\n"
        "  -o drain_rate=SIZE       drain at most SIZE bytes a second (e.g. 50M; 0: no limit)\n"
        "  -o drain_files=N         drain at most N files a second (0: no limit)\n"
        "  -o drain_order=path|size|atime   path order, largest first, or coldest first\n"
        "  -o drain_yield=on|off    one file at a time while applications use the mount\n"
        "                           (default on: their requests keep their latency)\n"
        "  -o metrics=IP:PORT       serve Prometheus metrics at http://IP:PORT/metrics\n"
        "                           (off by default; keep it on 127.0.0.1)\n"
        "  -o settings=FILE         log_level, drain_rate and drain_files, read at start and\n"
        "                           again on SIGHUP (systemctl reload)\n"
        "  -f                       stay in the foreground\n"
        "  -d                       debug output (implies -f)\n"
        "  -s                       single event loop\n"
        "\n"
        "Standard FUSE mount options (allow_other, ro, fsname=..., ...) are passed to libfuse.\n"
        "With allow_other or allow_root, default_permissions is added: the kernel checks every\n"
        "user's access against the modes of the source.\n",
        program);
}

} // namespace rfs
