// riak-devnode: a single-node, Riak-KV-HTTP-compatible server for tests, benchmarks and demos.
// Parses the command line, opens the LevelDB store, binds the listener and serves until SIGINT or
// SIGTERM. Prints "listening on HOST:PORT" on stdout once requests are accepted (port 0 picks a
// free port, so tests read the line to learn it).
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lib/devnode/encoding.hpp"
#include "lib/devnode/server.hpp"
#include "lib/devnode/service.hpp"
#include "lib/devnode/store.hpp"

namespace {

using rfs::devnode::Config;

constexpr const char* kUsage = R"(usage: riak-devnode --data DIR [options]
  --listen HOST:PORT            address to serve Riak's HTTP API on (default 127.0.0.1:8098;
                                port 0 picks a free port)
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
    return v * mul;
}

int64_t parse_int(std::string_view s, const char* flag) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 0)
        die(std::string("bad value for ") + flag);
    return v;
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
            auto colon = value.rfind(':');
            if (colon == std::string::npos) die("--listen expects HOST:PORT");
            c.listen_host = value.substr(0, colon);
            int64_t port = parse_int(value.substr(colon + 1), "--listen");
            if (port > 65535) die("--listen: port out of range");
            c.listen_port = static_cast<uint16_t>(port);
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
        } else if (name == "--compat") {
            if (value != "3.0" && value != "3.2") die("--compat must be 3.0 or 3.2");
            c.compat = value;
        } else {
            die("unknown option " + std::string(name) + " (see --help)");
        }
    }
    if (c.data_dir.empty()) die("--data DIR is required (see --help)");
    if (c.threads < 1) c.threads = 1;
    return c;
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
    std::printf("riak-devnode listening on %s:%u\n", config.listen_host.c_str(),
                static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    server.run();
    return 0;
}
