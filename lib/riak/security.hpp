// A secured Riak cluster, as the operator describes it: TLS files and a credentials file
// (riakfs's -o riak_ca=,riak_cert=,riak_key=,riak_credentials=; riakfsctl migrate's
// --riak-ca, --riak-cert, --riak-key, --riak-credentials), checked against the nodes and turned
// into a ClientConfig's `tls` and `authorization`.
//
// The rules: the TLS files need https:// nodes (they would silently do nothing otherwise), a
// client certificate comes with its key, and credentials are refused with http:// nodes (basic
// auth would send the password in clear). Start-up code only.
#pragma once

#include <string>
#include <vector>

#include "lib/riak/config.hpp"
#include "lib/riak/errors.hpp"
#include "lib/riak/tls.hpp"

namespace rfs::riak {

struct SecurityOptions {
    TlsFiles tls;
    std::string credentials_file; // "" = no credentials
    bool empty() const noexcept {
        return tls.ca_file.empty() && tls.cert_file.empty() && tls.key_file.empty() &&
               credentials_file.empty();
    }
};

// How the options are spelled where the operator gave them, for the error lines.
struct SecurityOptionNames {
    const char* ca;
    const char* cert;
    const char* key;
    const char* credentials;
};
inline constexpr SecurityOptionNames kMountOptionNames{
    "riak_ca=", "riak_cert=", "riak_key=", "riak_credentials="};
inline constexpr SecurityOptionNames kCtlOptionNames{"--riak-ca", "--riak-cert", "--riak-key",
                                                     "--riak-credentials"};

// The rules above, without reading any file; one line on failure.
Result<void> check_security_options(const std::vector<NodeAddress>& nodes,
                                    const SecurityOptions& options,
                                    const SecurityOptionNames& names);

// check_security_options, then reads the files and sets config.tls (for https:// nodes, from
// the system's trust store when no CA file is given) and config.authorization. config.nodes
// must be set.
Result<void> apply_security(const SecurityOptions& options, const SecurityOptionNames& names,
                            ClientConfig& config);

} // namespace rfs::riak
