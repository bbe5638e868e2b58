// riak-devnode's request handling (lib/devnode): the bytes of one connection parsed as the server
// parses them (Beast's request parser with the server's limits, then request_from_header() and
// parse_target()), each request answered by the real Service over a LevelDB store in a temporary
// directory, in the server's two phases (before and after the body), and the answer serialised.
// Input: a selector byte (bit 0: the admin listener's bucket-type route instead of the Riak
// routes, bit 1: compat 3.0), then pipelined HTTP/1.x requests. The store lives as long as the
// process, so one input may meet what an earlier one stored (as a real node would).
// Properties: no crash; every request that reaches the service gets an answer with a status.
#include "fuzz_input.hpp"

#include <cstdlib>
#include <filesystem>
#include <memory>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "lib/devnode/faults.hpp"
#include "lib/devnode/request_head.hpp"
#include "lib/devnode/service.hpp"
#include "lib/devnode/store.hpp"

namespace http = boost::beast::http;
using namespace rfs::devnode;

namespace {

struct Node {
    Node(std::string compat) {
        char dir_template[] = "/tmp/fuzz-devnode-XXXXXX";
        const char* made = ::mkdtemp(dir_template);
        if (!made) rfs::fuzz::property_failed("mkdtemp");
        dir = made;
        config.data_dir = dir;
        config.compat = std::move(compat);
        config.object_size_maximum = 1 << 20; // small: the limit is reached by small inputs
        config.object_size_warning = 1 << 16;
        config.siblings_maximum = 8;
        config.bucket_types = {{"sets", R"({"datatype":"set"})"}, {"mult", ""}};
        std::string error;
        store = Store::open(dir, error);
        if (!store) rfs::fuzz::property_failed(error.c_str());
        service = std::make_unique<Service>(*store, config, stats);
        service->create_configured_types();
    }
    ~Node() {
        service.reset();
        store.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    std::string dir;
    Config config;
    Stats stats;
    std::unique_ptr<Store> store;
    std::unique_ptr<Service> service;
};

Node& node(bool compat30) {
    static Node v32("3.2"), v30("3.0");
    return compat30 ? v30 : v32;
}

// One phase of the service, with the server's handling of an exception (a 500).
std::optional<Response> call(Node& n, bool admin, Request& req, bool body_read) {
    try {
        return admin ? n.service->admin_types(req, body_read) : n.service->handle(req, body_read);
    } catch (const std::exception&) {
        Response r;
        r.status = 500;
        return r;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    rfs::fuzz::Input in(data, size);
    const std::uint8_t which = in.byte();
    const bool admin = which & 1;
    Node& n = node(which & 2);
    std::string_view wire = in.rest();

    while (!wire.empty()) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(1 << 20);
        parser.body_limit(n.config.object_size_maximum);
        parser.eager(true);
        boost::system::error_code ec;
        std::size_t used = parser.put(boost::asio::buffer(wire.data(), wire.size()), ec);
        while (!ec && used < wire.size() && !parser.is_done()) {
            std::size_t more =
                parser.put(boost::asio::buffer(wire.data() + used, wire.size() - used), ec);
            if (more == 0) break;
            used += more;
        }
        if (ec == http::error::need_more && parser.is_header_done()) {
            parser.put_eof(ec); // the connection ended inside the body
        }
        if (!parser.is_header_done()) return 0; // the server answers 400 or 431 and closes
        Request req;
        if (request_from_header(parser.get().base(), req) != 0) return 0;
        req.has_body =
            parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
        std::optional<Response> res;
        const auto& seg = req.seg();
        if (admin && seg.size() == 2 && seg[0] == "devnode" && seg[1] == "faults") {
            // The admin listener's fault switch: its JSON body, parsed as admin_faults() does.
            if (!parser.is_done()) return 0;
            auto j = nlohmann::json::parse(parser.get().body(), nullptr, false);
            std::string error;
            if (!j.is_discarded()) {
                if (auto fc = FaultConfig::from_json(j, error)) (void)fc->to_json().dump();
            }
            res = Response{};
        } else if (admin && !(seg.size() >= 2 && seg[0] == "devnode" && seg[1] == "types")) {
            res = webmachine_404(); // as answer_admin() does
        } else {
            if (req.has_body) res = call(n, admin, req, false);
            if (!res) {
                if (!parser.is_done()) return 0; // the body never arrived whole: the server closes
                req.body = parser.get().body();
                res = call(n, admin, req, true);
            }
        }
        if (res) {
            RFS_FUZZ_CHECK(res->status >= 100 && res->status < 600);
            (void)serialize_head(*res, req.version, parser.get().keep_alive());
        }
        if (!parser.is_done() || !parser.get().keep_alive() || used == 0) return 0;
        wire.remove_prefix(used);
    }
    return 0;
}
