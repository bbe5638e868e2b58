#include "lib/riak/telemetry.hpp"

namespace rfs::riak {

std::string_view to_string(CallMethod method) {
    switch (method) {
    case CallMethod::get:
        return "GET";
    case CallMethod::put:
        return "PUT";
    case CallMethod::post:
        return "POST";
    case CallMethod::head:
        return "HEAD";
    case CallMethod::del:
        return "DELETE";
    case CallMethod::other:
        return "other";
    }
    return "other";
}

Telemetry::NodeHealth& Telemetry::node(const std::string& url) {
    std::lock_guard lock(nodes_mu_);
    for (auto& n : nodes_)
        if (n.url == url) return n;
    return nodes_.emplace_back(url);
}

void Telemetry::record(CallMethod method, std::uint64_t ns, Errc failure,
                       unsigned status) noexcept {
    latency_[static_cast<std::size_t>(method)].record(ns);
    if (failure != Errc::ok)
        failures_[static_cast<std::size_t>(failure)].add();
    else if (status >= 500)
        failures_[static_cast<std::size_t>(Errc::server_error)].add();
}

metrics::HistogramSnapshot Telemetry::latency(CallMethod method) const {
    metrics::HistogramSnapshot out;
    latency_[static_cast<std::size_t>(method)].add_to(out);
    return out;
}

std::uint64_t Telemetry::failures(Errc code) const {
    return failures_[static_cast<std::size_t>(code)].value();
}

void Telemetry::for_each_node(
    const std::function<void(const std::string& url, bool up)>& fn) const {
    std::lock_guard lock(nodes_mu_);
    for (const auto& n : nodes_)
        fn(n.url, n.up.load(std::memory_order_relaxed));
}

} // namespace rfs::riak
