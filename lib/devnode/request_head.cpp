#include "lib/devnode/request_head.hpp"

namespace rfs::devnode {

int request_from_header(const boost::beast::http::request_header<>& head, Request& req) {
    req.method = std::string(head.method_string());
    req.target = std::string(head.target());
    req.version = head.version();
    std::size_t count = 0;
    bool too_long = req.target.size() + req.method.size() + 10 > kMaxRequestLine;
    for (const auto& f : head) {
        req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
        too_long = too_long || f.name_string().size() + f.value().size() + 2 > kMaxRequestLine;
        ++count;
    }
    if (too_long) return 431;
    if (count > kMaxRequestHeaders) return 400;
    parse_target(req);
    return 0;
}

} // namespace rfs::devnode
