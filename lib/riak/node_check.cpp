// The start-up check of secured nodes (see node_check.hpp).
#include "lib/riak/node_check.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/core.h>

#include "lib/riak/client.hpp"

namespace rfs::riak {

namespace {

// What a node's answer (or failure) to the check's ping means for the start.
void classify(const NodeAddress& node, const std::optional<Result<std::monostate>>& result,
              const ClientConfig& config, const SecurityOptionNames& names, NodeCheck& out) {
    const std::string url = node.url();
    if (!result) {
        out.unreachable.push_back(url + ": no answer in time");
        return;
    }
    if (*result) return;
    const Error& e = result->error();
    std::optional<std::string> refused;
    if (e.code == Errc::tls_failed) {
        refused = e.message;
    } else if (e.http_status == 401) {
        refused = config.authorization.empty()
                      ? fmt::format("{} asks for credentials (401 Unauthorized): give them with {}",
                                    url, names.credentials)
                      : fmt::format("{} refused the credentials of {} (401 Unauthorized: wrong "
                                    "user or password)",
                                    url, names.credentials);
    } else if (e.http_status == 403) {
        refused = fmt::format("{} answered 403 Forbidden to GET /ping", url);
    } else if (e.http_status == 426) {
        refused = fmt::format("{} answered 426: its security is enabled and it takes requests "
                              "only over https://",
                              url);
    }
    if (refused) {
        if (!out.refused) out.refused = std::move(*refused);
        return;
    }
    out.unreachable.push_back(url + ": " + e.describe());
}

} // namespace

NodeCheck check_nodes(const ClientConfig& config, Duration limit,
                      const SecurityOptionNames& names) {
    NodeCheck out;
    boost::asio::io_context ioc;
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<std::optional<Result<std::monostate>>> results(config.nodes.size());
    std::size_t pending = config.nodes.size();
    for (std::size_t i = 0; i < config.nodes.size(); ++i) {
        // One client per node, one connection, one attempt: the answer is that node's.
        ClientConfig one = config;
        one.nodes = {config.nodes[i]};
        one.telemetry = nullptr;
        one.health_interval = Duration::zero();
        one.connections_per_node = 1;
        one.connect_timeout = std::min(config.connect_timeout, limit);
        one.request_timeout = limit;
        one.retry.max_attempts = 1;
        clients.push_back(std::make_unique<Client>(ioc, std::move(one)));
        CallOptions call;
        call.attempts = 1;
        call.timeout = limit;
        auto ping = clients.back()->ping(call);
        boost::asio::co_spawn(
            ioc, std::move(ping),
            [&results, &pending, i](std::exception_ptr e, Result<std::monostate> r) {
                if (e) r = make_error(Errc::cancelled, "the check failed");
                results[i] = std::move(r);
                --pending;
            });
    }
    // Each ping ends by its own timeout; the bound here only guards against a bug.
    const auto deadline = std::chrono::steady_clock::now() + limit + std::chrono::seconds(2);
    while (pending > 0 && std::chrono::steady_clock::now() < deadline)
        ioc.run_one_until(deadline);
    // Close every connection and let their coroutines end before the io_context goes.
    for (auto& client : clients)
        client->stop();
    ioc.restart();
    ioc.run_for(std::chrono::seconds(1));
    for (std::size_t i = 0; i < config.nodes.size(); ++i)
        classify(config.nodes[i], results[i], config, names, out);
    return out;
}

} // namespace rfs::riak
