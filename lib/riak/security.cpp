// TLS and credentials options (see security.hpp).
#include "lib/riak/security.hpp"

#include <fmt/core.h>

#include "lib/riak/credentials.hpp"

namespace rfs::riak {

Result<void> check_security_options(const std::vector<NodeAddress>& nodes, const SecurityOptions& o,
                                    const SecurityOptionNames& names) {
    const auto bad = [](std::string message) {
        return make_error(Errc::invalid_argument, std::move(message));
    };
    const bool tls = !nodes.empty() && nodes.front().tls;
    if (o.tls.cert_file.empty() != o.tls.key_file.empty())
        return bad(fmt::format("{} and {} go together: a client certificate and its key",
                               names.cert, names.key));
    if (!tls) {
        if (!o.credentials_file.empty())
            return bad(fmt::format("{} with http:// nodes: basic authentication would send the "
                                   "password in clear; use https:// nodes",
                                   names.credentials));
        for (const auto& [given, name] :
             {std::pair{&o.tls.ca_file, names.ca}, std::pair{&o.tls.cert_file, names.cert}})
            if (!given->empty())
                return bad(fmt::format("{} is for TLS: it needs https:// nodes", name));
    }
    return {};
}

Result<void> apply_security(const SecurityOptions& o, const SecurityOptionNames& names,
                            ClientConfig& config) {
    if (auto ok = check_security_options(config.nodes, o, names); !ok) return ok;
    const bool tls = !config.nodes.empty() && config.nodes.front().tls;
    if (tls) {
        // Its errors name the file ("CA file '...': ...", "client key '...': ...").
        auto context = TlsContext::make(o.tls);
        if (!context) return std::move(context).error();
        config.tls = std::move(*context);
    }
    if (!o.credentials_file.empty()) {
        auto credentials = read_credentials_file(o.credentials_file);
        if (!credentials) {
            Error e = std::move(credentials).error();
            e.message = fmt::format("{}: {}", names.credentials, e.message);
            return e;
        }
        config.authorization = basic_authorization(*credentials);
    }
    return {};
}

} // namespace rfs::riak
