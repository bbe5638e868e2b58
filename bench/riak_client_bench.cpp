// riak-client-bench: the Riak client's own throughput (lib/riak, the code riakfs sends with),
// for bench/run-riak-tls, which runs it against one riak-devnode over http:// and https://.
//
//   riak-client-bench --url URL [--ca FILE] [--credentials FILE] --op get|put|reconnect
//                     --size BYTES --count N [--keys K] [--concurrency C]
//                     [--connections N] [--depth D] [--bucket B]
//
// put: N stores of SIZE-byte values to keys 0..K-1 (round robin), w and dw quorum (riakfs's
// durable writes). get: first stores K objects of SIZE bytes (untimed), then N fetches of them
// (round robin). reconnect: N GET /ping, each asking the node to close the connection after
// its answer, so every request opens a new connection (and, over TLS, resumes the session): the
// cost of connecting. C calls are in flight at once (default 16), on up to --connections per
// node (default 4, riakfs's) with --depth pipelined on each (default 4, riakfs's).
// Prints one JSON line: {"op","size","count","seconds","ops_per_second","mib_per_second",
// "errors","first_error","handshakes","resumed"}; exit status 1 if any call failed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "lib/riak/client.hpp"
#include "lib/riak/security.hpp"

namespace {

namespace asio = boost::asio;
namespace proto = rfs::proto;
using namespace rfs::riak;

struct Args {
    std::string url, ca, credentials, op, bucket = "bench";
    std::size_t size = 4096, count = 1000, keys = 1000, concurrency = 16, connections = 4,
                depth = 4;
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "riak-client-bench: %s\n", why.c_str());
    std::exit(2);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string name = argv[i];
        if (i + 1 >= argc) usage(name + " needs a value");
        const std::string value = argv[++i];
        auto number = [&] { return static_cast<std::size_t>(std::stoull(value)); };
        if (name == "--url")
            a.url = value;
        else if (name == "--ca")
            a.ca = value;
        else if (name == "--credentials")
            a.credentials = value;
        else if (name == "--op")
            a.op = value;
        else if (name == "--bucket")
            a.bucket = value;
        else if (name == "--size")
            a.size = number();
        else if (name == "--count")
            a.count = number();
        else if (name == "--keys")
            a.keys = number();
        else if (name == "--concurrency")
            a.concurrency = number();
        else if (name == "--connections")
            a.connections = number();
        else if (name == "--depth")
            a.depth = number();
        else
            usage("unknown option " + name);
    }
    if (a.url.empty() || (a.op != "get" && a.op != "put" && a.op != "reconnect"))
        usage("needs --url and --op get|put|reconnect");
    if (a.keys == 0 || a.concurrency == 0) usage("--keys and --concurrency must be positive");
    return a;
}

struct Run {
    Client& client;
    const Args& args;
    std::string value;
    std::size_t next = 0, done = 0, errors = 0;
    std::string first_error;

    proto::ObjectId key(std::size_t i) const {
        return proto::ObjectId{"", args.bucket, "k" + std::to_string(i % args.keys)};
    }

    // One of the C workers: takes the next call until `total` have been started.
    asio::awaitable<void> worker(std::string op, std::size_t total) {
        while (next < total) {
            const std::size_t i = next++;
            Error failure;
            bool ok = true;
            if (op == "put") {
                proto::RiakObject object;
                object.value = value;
                object.content_type = "application/octet-stream";
                proto::StoreOptions options;
                options.params.w = proto::Quorum::quorum();
                options.params.dw = proto::Quorum::quorum();
                auto call = client.store(key(i), std::move(object), options);
                auto r = co_await std::move(call);
                if (!r) ok = false, failure = r.error();
            } else if (op == "get") {
                proto::FetchOptions options;
                auto call = client.fetch(key(i), options);
                auto r = co_await std::move(call);
                if (!r || r->outcome != proto::Outcome::ok || r->object.value.size() != args.size)
                    ok = false,
                    failure = r ? make_error(Errc::unexpected_response, "bad object") : r.error();
            } else {
                auto request =
                    proto::make_request(proto::http::verb::get, "", proto::ping_target());
                request.set(proto::http::field::connection, "close");
                auto call = client.execute(std::move(request));
                auto r = co_await std::move(call);
                if (!r || r->result_int() != 200)
                    ok = false,
                    failure = r ? make_error(Errc::unexpected_response, "not 200") : r.error();
            }
            if (!ok) {
                if (errors++ == 0) first_error = failure.describe();
            }
            ++done;
        }
    }

    // Runs `total` calls of `op` with C workers; the seconds it took.
    double go(asio::io_context& ioc, const std::string& op, std::size_t total) {
        next = done = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t w = 0; w < args.concurrency; ++w)
            asio::co_spawn(ioc, worker(op, total), asio::detached);
        while (done < total)
            ioc.run_one();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
};

} // namespace

int main(int argc, char** argv) {
    const Args args = parse(argc, argv);
    auto nodes = parse_node_list(args.url);
    if (!nodes) usage(nodes.error().message);
    ClientConfig config;
    config.nodes = *nodes;
    config.connections_per_node = args.connections;
    config.pipeline_depth = args.depth;
    config.health_interval = Duration::zero();
    SecurityOptions security;
    security.tls.ca_file = args.ca;
    security.credentials_file = args.credentials;
    if (auto ok = apply_security(security, kCtlOptionNames, config); !ok) usage(ok.error().message);
    asio::io_context ioc;
    Client client(ioc, config);
    Run run{client, args, std::string(args.size, 'x'), 0, 0, 0, {}};
    for (std::size_t i = 0; i < args.size; ++i)
        run.value[i] = static_cast<char>('a' + i % 26);
    if (args.op == "get") {
        run.go(ioc, "put", args.keys); // the objects to read, untimed
        run.errors = 0;
    }
    const double seconds = run.go(ioc, args.op, args.count);
    const auto node = client.nodes().front();
    const double ops = seconds > 0 ? double(args.count) / seconds : 0;
    const double mib = args.op == "reconnect" ? 0 : ops * double(args.size) / (1 << 20);
    nlohmann::json out = {{"op", args.op},
                          {"size", args.size},
                          {"count", args.count},
                          {"seconds", seconds},
                          {"ops_per_second", ops},
                          {"mib_per_second", mib},
                          {"errors", run.errors},
                          {"first_error", run.first_error},
                          {"handshakes", node.tls_handshakes},
                          {"resumed", node.tls_resumed}};
    std::printf("%s\n", out.dump().c_str());
    client.stop();
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(200));
    return run.errors == 0 ? 0 : 1;
}
