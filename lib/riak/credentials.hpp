// Credentials for a Riak cluster with security enabled: HTTP basic authentication, read from a
// file so that a password never sits on a command line, in fstab, or in a unit file.
//
// The file (riakfs -o riak_credentials=FILE, riakfsctl migrate --riak-credentials FILE) holds
// one line, `USER:PASSWORD`, split at the first ':'; a final newline is allowed, nothing else.
// It must be a regular file owned by the user the program runs as, with no permission bits for
// group or others (chmod 600), like ssh's private keys: otherwise it is refused, since anyone
// else who can read it (or replace it) holds the cluster's password.
//
// A password containing ':' is refused too: Riak splits the decoded `user:password` at every
// ':' and expects exactly two parts, so such a password can never authenticate over HTTP (the
// request fails with a 500 there).
//
// Error messages name the file and what is wrong with it, never its content.
#pragma once

#include <string>

#include "lib/riak/errors.hpp"

namespace rfs::riak {

struct Credentials {
    std::string user;
    std::string password;
};

Result<Credentials> read_credentials_file(const std::string& path);
// The Authorization header's value: "Basic " + base64("user:password").
std::string basic_authorization(const Credentials& credentials);

} // namespace rfs::riak
