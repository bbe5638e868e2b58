// riak-devnode: a single-node, Riak-KV-HTTP-compatible server for tests, benchmarks and demos.
// Parses the command line, opens the LevelDB store, binds the listeners and serves until SIGINT or
// SIGTERM. Prints "listening on HOST:PORT" on stdout once requests are accepted (port 0 picks a
// free port, so tests read the line to learn it), then "admin routes on HOST:PORT" with --admin.
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include <boost/url/authority_view.hpp>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "lib/devnode/encoding.hpp"
#include "lib/devnode/security.hpp"
#include "lib/devnode/server.hpp"
#include "lib/devnode/service.hpp"
#include "lib/devnode/store.hpp"
#include "proto/riak_paths.hpp"

namespace {

using rfs::devnode::Config;

constexpr const char* kUsage = R"(usage: riak-devnode --data DIR [options]
  --listen HOST:PORT            address to serve Riak's HTTP API on (default 127.0.0.1:8098;
                                IPv6 in brackets, e.g. [::1]:8098; port 0 picks a free port)
  --admin HOST:PORT             serve the /devnode/ admin routes (fault injection, bucket type
                                creation) on this separate address; without it they do not exist
  --data DIR                    LevelDB data directory (created if missing)
  --threads N                   io threads (default 4)
  --object-size-warning BYTES   object.size.warning_threshold (default 5MB; suffixes KB MB GB)
  --object-size-maximum BYTES   object.size.maximum (default 50MB)
  --siblings-warning N          object.siblings.warning_threshold (default 25)
  --siblings-maximum N          object.siblings.maximum (default 100)
  --delete-mode MODE            keep | immediate | milliseconds before tombstones are reaped
                                (default 3000)
  --bucket-type NAME[=JSON]     create and activate a bucket type, e.g.
                                --bucket-type 'sets={"datatype":"set"}' (repeatable)
  --compat 3.0|3.2              Riak version quirks to follow (default 3.2, see README)
  --body-timeout MS             time a request body may take to arrive (default 30000)
  --max-connections N           connections served at once per listener (default 2048)
  --tls-cert FILE               serve the Riak API over TLS (https) with this certificate
                                chain (PEM); needs --tls-key
  --tls-key FILE                the certificate's private key (PEM, unencrypted)
  --tls-client-ca FILE          also require a client certificate signed by a CA in FILE
  --user NAME:PASSWORD-FILE     enable security: requests need basic authentication as NAME
                                with the password on the first line of PASSWORD-FILE (over
                                TLS; plain HTTP gets 426), as Riak with security enabled
                                (repeatable; /stats stays open)
  --verbose                     log connection errors
)";

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "riak-devnode: %s\n", msg.c_str());
    std::exit(1);
}

uint64_t parse_bytes(std::string_view s, const char* flag) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p == s.data()) die(std::string("bad value for ") + flag);
    std::string_view unit(p, s.data() + s.size() - p);
    uint64_t mul = 1;
    if (unit.empty() || unit == "B") {
        mul = 1;
    } else if (unit == "KB" || unit == "K" || unit == "KiB") {
        mul = 1ULL << 10;
    } else if (unit == "MB" || unit == "M" || unit == "MiB") {
        mul = 1ULL << 20;
    } else if (unit == "GB" || unit == "G" || unit == "GiB") {
        mul = 1ULL << 30;
    } else {
        die(std::string("bad unit for ") + flag);
    }
    if (v > UINT64_MAX / mul) die(std::string("value too large for ") + flag);
    return v * mul;
}

int64_t parse_int(std::string_view s, const char* flag) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 0)
        die(std::string("bad value for ") + flag);
    return v;
}

// HOST:PORT (an RFC 3986 authority, parsed by Boost.URL): the host an IP address, IPv6 in
// brackets ("[::1]:8098").
std::pair<std::string, uint16_t> parse_address(const std::string& value, const char* flag) {
    const auto authority = boost::urls::parse_authority(value);
    if (!authority || authority->has_userinfo() || !authority->has_port() ||
        authority->port().empty() || authority->host_type() == boost::urls::host_type::ipvfuture)
        die(std::string(flag) + " expects HOST:PORT, e.g. 127.0.0.1:8098 or [::1]:8098");
    const int64_t port = parse_int(authority->port(), flag);
    if (port > 65535) die(std::string(flag) + ": port out of range");
    return {authority->host_address(), static_cast<uint16_t>(port)};
}

Config parse_args(int argc, char** argv) {
    Config c;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        std::string value;
        std::string_view name = a;
        if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string_view::npos) {
            name = a.substr(0, eq);
            value = std::string(a.substr(eq + 1));
        } else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else if (a == "--verbose") {
            c.verbose = true;
            continue;
        } else {
            if (i + 1 >= argc) die(std::string("missing value for ") + std::string(a));
            value = argv[++i];
        }
        if (name == "--listen") {
            std::tie(c.listen_host, c.listen_port) = parse_address(value, "--listen");
        } else if (name == "--admin") {
            std::tie(c.admin_host, c.admin_port) = parse_address(value, "--admin");
            c.admin = true;
        } else if (name == "--body-timeout") {
            c.body_timeout_ms = static_cast<uint64_t>(parse_int(value, "--body-timeout"));
            if (c.body_timeout_ms == 0) die("--body-timeout must be at least 1 ms");
        } else if (name == "--max-connections") {
            c.max_connections = static_cast<uint64_t>(parse_int(value, "--max-connections"));
            if (c.max_connections == 0) die("--max-connections must be at least 1");
        } else if (name == "--data") {
            c.data_dir = value;
        } else if (name == "--threads") {
            c.threads = static_cast<int>(parse_int(value, "--threads"));
        } else if (name == "--object-size-warning") {
            c.object_size_warning = parse_bytes(value, "--object-size-warning");
        } else if (name == "--object-size-maximum") {
            c.object_size_maximum = parse_bytes(value, "--object-size-maximum");
        } else if (name == "--siblings-warning") {
            c.siblings_warning = static_cast<uint32_t>(parse_int(value, "--siblings-warning"));
        } else if (name == "--siblings-maximum") {
            c.siblings_maximum = static_cast<uint32_t>(parse_int(value, "--siblings-maximum"));
        } else if (name == "--delete-mode") {
            if (value == "keep") {
                c.delete_mode_ms = -1;
            } else if (value == "immediate") {
                c.delete_mode_ms = 0;
            } else {
                c.delete_mode_ms = parse_int(value, "--delete-mode");
            }
        } else if (name == "--bucket-type") {
            auto eq = value.find('=');
            std::string type = value.substr(0, eq);
            std::string props = eq == std::string::npos ? "" : value.substr(eq + 1);
            if (type.empty() || type == "default")
                die("--bucket-type needs a name other than default");
            if (!props.empty() && !nlohmann::json::accept(props))
                die("--bucket-type " + type + ": properties are not valid JSON");
            c.bucket_types.emplace_back(type, props);
        } else if (name == "--tls-cert") {
            c.tls_cert = value;
        } else if (name == "--tls-key") {
            c.tls_key = value;
        } else if (name == "--tls-client-ca") {
            c.tls_client_ca = value;
        } else if (name == "--user") {
            std::string error;
            auto user = rfs::devnode::read_user(value, error);
            if (!user) die(error);
            c.users.push_back(std::move(*user));
        } else if (name == "--compat") {
            if (value != "3.0" && value != "3.2") die("--compat must be 3.0 or 3.2");
            c.compat = value;
        } else {
            die("unknown option " + std::string(name) + " (see --help)");
        }
    }
    if (c.data_dir.empty()) die("--data DIR is required (see --help)");
    if (c.tls_cert.empty() != c.tls_key.empty()) die("--tls-cert and --tls-key go together");
    if (!c.tls_client_ca.empty() && c.tls_cert.empty())
        die("--tls-client-ca needs --tls-cert and --tls-key");
    if (c.threads < 1) c.threads = 1;
    return c;
}

// One line on stderr per listener that other machines may reach.
void warn_beyond_loopback(const Config& config, const rfs::devnode::Server& server) {
    if (!rfs::devnode::is_loopback_address(config.listen_host))
        std::fprintf(stderr,
                     "riak-devnode: warning: listening on %s, beyond loopback: anyone who can "
                     "reach it can read and change every object\n",
                     rfs::proto::host_and_port(config.listen_host, server.port()).c_str());
    if (config.admin && !rfs::devnode::is_loopback_address(config.admin_host))
        std::fprintf(stderr,
                     "riak-devnode: warning: admin routes on %s, beyond loopback: anyone who "
                     "can reach them can inject faults and create bucket types\n",
                     rfs::proto::host_and_port(config.admin_host, server.admin_port()).c_str());
}

} // namespace

int main(int argc, char** argv) {
    Config config = parse_args(argc, argv);
    std::string error;
    auto store = rfs::devnode::Store::open(config.data_dir, error);
    if (!store) die(error);
    rfs::devnode::Stats stats;
    stats.started_us = rfs::devnode::now_micros();
    rfs::devnode::Service service(*store, config, stats);
    try {
        service.create_configured_types();
    } catch (const std::exception& e) {
        die(std::string("cannot create bucket types: ") + e.what());
    }
    rfs::devnode::Server server(config, service, stats);
    if (!server.listen(error)) die(error);
    warn_beyond_loopback(config, server);
    // Both lines in one write: a reader that stops after the first must not make the second one
    // fail (or raise SIGPIPE) later.
    std::string lines = fmt::format("riak-devnode listening on {}\n",
                                    rfs::proto::host_and_port(config.listen_host, server.port()));
    if (config.admin)
        lines += fmt::format("riak-devnode admin routes on {}\n",
                             rfs::proto::host_and_port(config.admin_host, server.admin_port()));
    std::fwrite(lines.data(), 1, lines.size(), stdout);
    std::fflush(stdout);
    server.run();
    return 0;
}
