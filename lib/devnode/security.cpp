// riak-devnode's basic authentication (see security.hpp).
#include "lib/devnode/security.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <openssl/evp.h>

namespace rfs::devnode {

namespace {

// Base64 (RFC 4648, with padding) to bytes; nullopt when it is not valid base64.
std::optional<std::string> decode_base64(std::string_view text) {
    if (text.empty() || text.size() % 4 != 0) return std::nullopt;
    std::string out(text.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    // EVP_DecodeBlock counts the padding as zero bytes.
    std::size_t size = static_cast<std::size_t>(n);
    for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i)
        --size;
    out.resize(size);
    return out;
}

// Compares without stopping at the first difference, so the time taken says nothing about
// how much of a guess was right.
bool same(const std::string& a, const std::string& b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

} // namespace

Response unauthorized_401() {
    // webmachine (Riak 3.2) renders a 401 without a body of the resource's own as this page.
    Response r;
    r.status = 401;
    r.set("WWW-Authenticate", "Basic realm=\"Riak\"");
    r.set("Content-Type", "text/html");
    r.body = "<html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1>"
             "Unauthorized<p><hr><address>mochiweb+webmachine web server</address></body></html>";
    return r;
}

Response insecure_426() {
    Response r;
    r.status = 426;
    r.body = "Security is enabled and Riak does not accept credentials over HTTP. Try HTTPS "
             "instead.";
    return r;
}

bool Access::known(const std::string& user, const std::string& password) const {
    bool found = false;
    for (const auto& [name, secret] : users_)
        found = (name == user && same(secret, password)) || found;
    return found;
}

std::optional<Response> Access::check(const Request& req, const std::string& route,
                                      bool over_tls) const {
    if (!enabled() || route == "stats" || route == "other") return std::nullopt;
    if (!over_tls) return insecure_426();
    const auto header = req.header("Authorization");
    // Riak matches the scheme as written: "Basic " and the base64 of user:password.
    if (!header || !header->starts_with("Basic ")) return unauthorized_401();
    const auto decoded = decode_base64(trim(std::string_view(*header).substr(6)));
    if (!decoded) return unauthorized_401();
    const auto colon = decoded->find(':');
    if (colon == std::string::npos) return unauthorized_401();
    if (!known(decoded->substr(0, colon), decoded->substr(colon + 1))) return unauthorized_401();
    return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> read_user(const std::string& spec,
                                                             std::string& error) {
    const auto colon = spec.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == spec.size()) {
        error = "--user expects NAME:PASSWORD-FILE";
        return std::nullopt;
    }
    const std::string name = spec.substr(0, colon), file = spec.substr(colon + 1);
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        error = "--user " + name + ": cannot read '" + file + "': " + std::strerror(errno);
        return std::nullopt;
    }
    std::string password;
    std::getline(in, password);
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) {
        error = "--user " + name + ": '" + file + "' holds no password on its first line";
        return std::nullopt;
    }
    // Riak splits user:password at every ':' and fails the request on a third part.
    if (password.find(':') != std::string::npos) {
        error = "--user " + name + ": the password contains ':', which Riak cannot take over HTTP";
        return std::nullopt;
    }
    return std::pair{name, password};
}

} // namespace rfs::devnode
