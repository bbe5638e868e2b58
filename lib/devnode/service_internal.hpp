// Shared by the files that make up riak-devnode's Service (service*.cpp): the resolved route
// and the small response, quorum, header and property helpers more than one resource uses. Not
// part of the devnode API.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/devnode/service.hpp"

namespace rfs::devnode {

using json = nlohmann::json;

struct Service::Target {
    enum Kind {
        kObject,
        kKeys,
        kBuckets,
        kIndex,
        kProps,
        kTypeProps,
        kDatatype,
    };
    Kind kind = kObject;
    std::string type = "default";
    bool typed = false;
    std::string bucket;
    std::string key;
    bool has_key = false;
    bool v1 = false;               // legacy /riak/B/K route: Links rendered in that form
    std::vector<std::string> rest; // index arguments
    // Shared with Service's props cache: a request must not copy them (a GET spent a tenth of
    // its time building and copying these JSON trees).
    std::shared_ptr<const json> type_props_p;
    std::shared_ptr<const json> props_p; // effective bucket properties
    const json& type_props() const { return *type_props_p; }
    const json& props() const { return *props_p; }
};

// The helpers, in a namespace of their own so that each service file says where they come from
// (`using namespace service_support`).
namespace service_support {

Response text(int status, std::string body, std::string_view ctype = "text/plain");

// A response with no body (204, 405, 406, 409, 415, ...).
Response status_only(int status);

Response not_found();

// webmachine's own 404 (no route, or a `vtag` that matches no sibling).
Response generic_404();

Response method_not_allowed(std::string_view allow);

Response error_500(std::string_view term);

bool is_method(const Request& req, std::string_view m);

std::optional<int64_t> parse_int(std::string_view s);

// Resolves a quorum value (param or property) against n; nullopt when malformed.
std::optional<int64_t> resolve_quorum(const json& v, int64_t n, const json& fallback,
                                      int depth = 0);

int64_t n_val(const json& props);

bool prop_bool(const json& props, const char* name, bool dflt);

struct Quorums {
    std::map<std::string, int64_t> v;
    int64_t get(const std::string& n) const {
        auto it = v.find(n);
        return it == v.end() ? 0 : it->second;
    }
};

// The fsync mapping (README, "Durability"): a LevelDB sync write when a durable or primary
// acknowledgement is asked for, or sync_on_write says so. Riak keeps sync_on_write as a bucket
// property; the request parameter of the same name is devnode's per-request override.
bool wants_sync(const Request& req, const json& props, const Quorums& q);

// Validates the quorum parameters `names` (§1.2); returns a 400 on failure.
std::optional<Response> check_quorums(const Request& req, const json& props,
                                      std::initializer_list<const char*> names, Quorums& out);

// Quoted entity tags of an If-Match/If-None-Match value (webmachine only sees "..." strings).
std::vector<std::string> quoted_tags(std::string_view v);

// One element of a weighted list header (Accept, Accept-Encoding, Accept-Charset): the text
// before its first ';' and its q parameter (1 when it has none).
struct Weighted {
    std::string_view value;
    double q;
};
// The elements of such a header in order, empty elements skipped. The one parser of these lists
// here: content type, coding and charset negotiation all read their header through it.
std::vector<Weighted> weighted_list(std::string_view header);

// q-value the Accept header gives `type` (most specific matching range wins); 1 when no header.
double accept_q(const std::optional<std::string>& accept, std::string_view type);

std::string content_type_value(const Content& c);

// Link header of a value; `v1` renders the legacy /riak/B/K form.
std::string link_value(const Content& c, const std::string& bucket, bool v1);

// Index headers grouped per field: `x-riak-index-<field>: v1, v2`.
std::vector<std::pair<std::string, std::string>> index_headers(const Content& c);

// Headers describing one content (value response or multipart part).
void add_content_headers(std::vector<std::pair<std::string, std::string>>& h, const Content& c,
                         const std::string& bucket, bool part, bool v1);

std::string siblings_etag(const Object& obj);

// Re-cases a header name the way Erlang's packet parser does for names up to 20 characters.
std::string recase_header(std::string_view name);

// Parses a Link header (§2.1). Returns false on bad syntax.
bool parse_links(std::string_view v, const std::string& own_bucket, std::vector<Link>& out);

json default_type_props();

// Validates bucket properties (§8); returns the list of errors.
json validate_props(const json& props, bool type_level, const json& current);

// Content negotiation between offered media types; returns the chosen index or -1 (406).
int negotiate(const std::optional<std::string>& accept, const std::vector<std::string>& offered);

std::string json_dump(const json& j);

// A key or bucket listing: {"NAME":[...]}, or with `stream` chunked {"NAME":[...]} batches of
// up to 1000 names closed by an empty one, which is how Riak ends a streamed listing.
Response listing(std::string_view name, const std::vector<std::string>& all, bool stream);

// A 400 with Riak's {"errors":[...]} list when property validation found any.
std::optional<Response> props_errors(const json& errors);

// Props PUT bodies (bucket and type): `out` gets {"props":{...}} checked against `current`.
std::optional<Response> read_props_body(const Request& req, const json& current, json& out);

// The props and data-type resources take only application/json (parameters ignored); they
// answer differently when it is missing (415 and 406).
bool has_json_content_type(const Request& req);

} // namespace service_support

} // namespace rfs::devnode
