// Node URL parsing (see config.hpp).
#include "lib/riak/config.hpp"

#include <charconv>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <fmt/core.h>

#include "proto/riak_paths.hpp"

namespace rfs::riak {

std::string NodeAddress::host_header() const {
    return proto::host_and_port(host, port);
}

std::string NodeAddress::url() const {
    return (tls ? "https://" : "http://") + host_header();
}

Result<NodeAddress> parse_node_url(std::string_view url) {
    const auto bad = [&](std::string_view why) {
        return make_error(Errc::invalid_argument, fmt::format("Riak URL '{}': {}", url, why));
    };
    const auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) return bad(fmt::format("not a URL ({})", parsed.error().message()));
    const boost::urls::url_view& u = *parsed;
    const bool tls = u.scheme_id() == boost::urls::scheme::https;
    if (u.scheme_id() != boost::urls::scheme::http && !tls)
        return bad("only http:// and https:// are supported");
    if (u.has_userinfo())
        return bad("credentials do not belong in the URL (give them in a credentials file)");
    if (u.host_type() == boost::urls::host_type::ipvfuture) return bad("unsupported address");
    if (u.encoded_path() != "" && u.encoded_path() != "/") return bad("a path is not supported");
    if (u.has_query()) return bad("a query is not supported");
    NodeAddress out;
    out.tls = tls;
    out.host = u.host_address(); // IPv6 literals without their brackets
    if (out.host.empty()) return bad("no host");
    if (u.has_port()) {
        // Boost 1.81's port_number() wraps ports above 65535, so the digits are read here.
        const auto text = u.port();
        unsigned port = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
        if (ec != std::errc() || end != text.data() + text.size() || port == 0 || port > 65535)
            return bad("bad port");
        out.port = static_cast<std::uint16_t>(port);
    }
    return out;
}

Result<std::vector<NodeAddress>> parse_node_list(std::string_view urls) {
    const std::string_view whole = urls;
    std::vector<NodeAddress> out;
    while (true) {
        const auto comma = urls.find(',');
        auto one = parse_node_url(urls.substr(0, comma));
        if (!one) return std::move(one).error();
        if (!out.empty() && one->tls != out.front().tls)
            return make_error(Errc::invalid_argument,
                              fmt::format("'{}' mixes http:// and https:// nodes: give every node "
                                          "the same scheme",
                                          whole));
        out.push_back(std::move(*one));
        if (comma == std::string_view::npos) break;
        urls = urls.substr(comma + 1);
    }
    return out;
}

} // namespace rfs::riak
