// Riak's security over HTTP, as riak-devnode --user NAME:PASSWORD-FILE switches it on (doc §10,
// lib/devnode/README.md "Security"): like `riak-admin security enable` with a password source
// for those users and every permission granted to them.
//
//  * Over TLS, every request to a Riak resource needs `Authorization: Basic base64(user:pass)`
//    of a known user; without it, or with a wrong one, the answer is 401 with
//    `WWW-Authenticate: Basic realm="Riak"` and webmachine's 401 page, before the body is read.
//  * Over plain HTTP every such request gets 426: Riak takes no credentials in clear.
//  * /stats has no authorization in Riak and stays open; paths no route matches stay 404.
//
// Read-only after start: any thread.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/devnode/http.hpp"

namespace rfs::devnode {

class Access {
public:
    // name, password
    explicit Access(std::vector<std::pair<std::string, std::string>> users)
        : users_(std::move(users)) {}

    bool enabled() const noexcept { return !users_.empty(); }
    // nullopt: the request may proceed; otherwise Riak's refusal. `route` is route_class()'s.
    std::optional<Response> check(const Request& req, const std::string& route,
                                  bool over_tls) const;

private:
    bool known(const std::string& user, const std::string& password) const;
    std::vector<std::pair<std::string, std::string>> users_;
};

// Riak's answers, for the tests' and the README's reference.
Response unauthorized_401();
Response insecure_426();

// "--user NAME:PASSWORD-FILE": the name, and the password read from the file's first line; or
// a one-line error (a missing file, an empty password, a ':' Riak could not take).
std::optional<std::pair<std::string, std::string>> read_user(const std::string& spec,
                                                             std::string& error);

} // namespace rfs::devnode
