// Node URL parsing (see config.hpp).
#include "lib/riak/config.hpp"

#include <charconv>

#include <fmt/core.h>

namespace rfs::riak {

std::string NodeAddress::host_header() const {
    if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
    return fmt::format("{}:{}", host, port);
}

std::string NodeAddress::url() const {
    return "http://" + host_header();
}

Result<NodeAddress> parse_node_url(std::string_view url) {
    const auto bad = [&](std::string_view why) {
        return make_error(Errc::invalid_argument, fmt::format("Riak URL '{}': {}", url, why));
    };
    constexpr std::string_view scheme = "http://";
    if (url.substr(0, scheme.size()) != scheme) return bad("only http:// is supported");
    std::string_view rest = url.substr(scheme.size());
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        if (rest.substr(slash) != "/") return bad("a path is not supported");
        rest = rest.substr(0, slash);
    }
    NodeAddress out;
    std::string_view port_text;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
        out.host = std::string(rest.substr(1, close - 1));
        rest = rest.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad("junk after the IPv6 literal");
            port_text = rest.substr(1);
        }
    } else {
        const auto colon = rest.find(':');
        out.host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
    }
    if (out.host.empty()) return bad("no host");
    if (!port_text.empty() || rest.ends_with(':')) {
        unsigned port = 0;
        const auto [end, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
            port > 65535)
            return bad("bad port");
        out.port = static_cast<std::uint16_t>(port);
    }
    return out;
}

Result<std::vector<NodeAddress>> parse_node_list(std::string_view urls) {
    std::vector<NodeAddress> out;
    while (true) {
        const auto comma = urls.find(',');
        auto one = parse_node_url(urls.substr(0, comma));
        if (!one) return std::move(one).error();
        out.push_back(std::move(*one));
        if (comma == std::string_view::npos) break;
        urls = urls.substr(comma + 1);
    }
    return out;
}

} // namespace rfs::riak
