// Riak HTTP messages <-> structs: objects and their headers, request builders for the object,
// datatype, listing and props resources, response parsers (single values, siblings as text or
// multipart/mixed, tombstones, key lists, 2i results, bucket props, /ping, /stats, sets), and
// the translation from HTTP status to errno. Formatters for the server side of the same
// formats are here too, for the test server (lib/devnode).
// Pure functions over values: callable from any thread. Nothing here throws on bad input: JSON
// is parsed with nlohmann's non-throwing parse and every failure is an Error value.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include "proto/result.hpp"
#include "proto/riak_paths.hpp"
#include "proto/text.hpp"

namespace rfs::proto {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct BucketProps;

// ---- Objects --------------------------------------------------------------------------------

// One secondary-index entry. `field` is lower-case and ends in _bin or _int. Values travel in
// request headers, so a _bin value derived from a name must be made header-safe first, e.g.
// percent_encode(name): that keeps it reversible, free of ", " and prefix-preserving (but not
// order-preserving). Query it with the same stored string (index_target() encodes it again).
// Riak returns index headers lower-cased; several values of one field may share a header.
struct IndexEntry {
    std::string field;
    std::string value;
    friend bool operator==(const IndexEntry&, const IndexEntry&) = default;
};

// A Riak object (or one sibling of it) as carried by HTTP headers + body.
struct RiakObject {
    std::string value;            // the stored bytes
    std::string content_type;     // whole header value, e.g. "text/plain; charset=utf-8"
    std::string content_encoding; // stored verbatim by Riak, never transcoded
    std::string vclock;           // X-Riak-Vclock: opaque base64, send back unchanged
    std::string etag;             // the vtag, without quotes
    std::string last_modified;    // RFC 1123 date as received ("" if absent)
    HeaderList meta;              // X-Riak-Meta-<name>: {name as received, value}
    std::vector<IndexEntry> indexes;
    bool deleted = false; // X-Riak-Deleted: true (tombstone)

    // Meta names are matched case-insensitively: Riak re-cases short header names.
    const std::string* find_meta(std::string_view name) const;
    void set_meta(std::string_view name, std::string value); // replaces any same-named entry
    std::vector<std::string> index_values(std::string_view field) const;
    void add_index(std::string field, std::string value);
};

// Longest request header line (name, ": ", value) sent: Riak answers 431 (400 before 2019) to
// lines that do not fit mochiweb's ~8 KB receive buffer. Longer values give EMSGSIZE.
inline constexpr std::size_t kMaxHeaderLine = 8000;

// True if `value` can be sent as a header value and comes back unchanged: printable ASCII and
// HT only (no CR, LF, NUL, DEL or bytes >= 0x80), no leading or trailing whitespace.
// Percent-encode anything else (percent_encode() output always passes).
bool is_header_safe(std::string_view value) noexcept;
// True for a non-empty RFC 7230 token (header names, X-Riak-Meta suffixes).
bool is_token(std::string_view name) noexcept;

// Reads an object from headers and body: Content-Type, Content-Encoding, X-Riak-Vclock, ETag
// (quotes and W/ stripped), Last-Modified, X-Riak-Deleted, X-Riak-Meta-*, X-Riak-Index-* (names
// matched case-insensitively; several index values in one header are split at ", ").
RiakObject object_from_headers(const http::fields& fields, std::string body);
RiakObject object_from_headers(const HeaderList& headers, std::string body);

// HTTP dates: format_http_date() and parse_http_date() are in proto/text.hpp.

// ---- Requests -------------------------------------------------------------------------------

// Conditional request headers. ETags are given unquoted and sent quoted; "*" is sent as is.
struct Conditions {
    std::optional<std::string> if_none_match; // GET/HEAD: 304 on match; PUT: 412 if it exists
    std::optional<std::string> if_match;      // 412 on mismatch or a missing key
    std::optional<std::time_t> if_modified_since;
    std::optional<std::time_t> if_unmodified_since;
    std::string if_not_modified; // X-Riak-If-Not-Modified: <vclock> (Riak 3.0.13+, 409)
};

struct FetchOptions {
    bool head = false;
    RequestParams params;
    Conditions conditions;
    // Ask for siblings as multipart/mixed ("multipart/mixed, */*;q=0.5"); otherwise no Accept
    // header is sent and siblings come back as a text list of vtags.
    bool multipart_siblings = true;
};

struct StoreOptions {
    RequestParams params; // e.g. w, dw, returnbody
    Conditions conditions;
    bool use_post = false;          // POST instead of PUT to /keys/K (same meaning)
    bool multipart_siblings = true; // for returnbody=true answers with siblings
};

struct DeleteOptions {
    RequestParams params;
    Conditions conditions;
    std::string vclock; // X-Riak-Vclock of the version being deleted ("" = none)
};

// A bare request with Host set, HTTP/1.1, no body. Never sends Accept-Encoding (Riak would
// gzip bodies), Expect, Referer or Origin.
Request make_request(http::verb method, std::string_view host, std::string target);

// The exact bytes of a message on the wire (start line, headers, body as framed by its
// Content-Length or chunked encoding). Call prepare_payload() first, as the builders here do.
std::string to_wire(const Request& request);
std::string to_wire(const Response& response);

// GET or HEAD of an object.
Result<Request> make_fetch_request(std::string_view host, const ObjectId& id,
                                   const FetchOptions& options = {});
// PUT (or POST) of `object` to id.key; with an empty id.key, POST to /keys for a server-chosen
// key (201 + Location). Sends value, Content-Type (application/octet-stream if empty),
// Content-Encoding, X-Riak-Vclock, X-Riak-Meta-*, X-Riak-Index-* (one header line per value).
// EINVAL if a meta name is not a token, an index field does not end in _bin/_int (after
// lower-casing), an _int value is not an integer, a _bin value contains "," followed by
// whitespace (Riak would split it), or any header value is not is_header_safe(); EMSGSIZE if
// a header line exceeds kMaxHeaderLine.
Result<Request> make_store_request(std::string_view host, const ObjectId& id,
                                   const RiakObject& object, const StoreOptions& options = {});
// The same, taking the object's value into the body instead of copying it (a 1 MiB chunk each).
Result<Request> make_store_request(std::string_view host, const ObjectId& id, RiakObject&& object,
                                   const StoreOptions& options = {});
Result<Request> make_delete_request(std::string_view host, const ObjectId& id,
                                    const DeleteOptions& options = {});
// PUT {"props":{...}} to the bucket's props.
Result<Request> make_bucket_props_request(std::string_view host, const BucketId& bucket,
                                          const BucketProps& props);

// ---- Object responses -----------------------------------------------------------------------

enum class Outcome {
    ok,           // 200: one value (GET/HEAD, or PUT with returnbody)
    created,      // 201: POST with a server-chosen key
    no_content,   // 204: stored / deleted
    siblings,     // 300: several values
    not_modified, // 304
    not_found,    // 404: absent, or a tombstone (object.deleted, object.vclock set)
};

struct ObjectResponse {
    Outcome outcome = Outcome::ok;
    unsigned status = 0;
    RiakObject object;                // ok: the value; not_found: tombstone headers if any
    std::vector<RiakObject> siblings; // siblings as multipart: every part, in order
    std::vector<std::string> vtags;   // siblings: every vtag (from the text list or the parts)
    std::string vclock;               // X-Riak-Vclock of the whole response (covers siblings)
    std::string key;                  // created: the key from Location
};

// Status -> Outcome for 200/201/204/300/304/404; anything else becomes error_from_response().
// `head`: the request was HEAD, so there is no body to parse.
Result<ObjectResponse> parse_object_response(const Response& response, bool head = false);
// The same, taking a 200's body instead of copying it (a 1 MiB chunk's copy and its fresh pages
// were a sixth of the reading thread's time). `response` keeps its headers.
Result<ObjectResponse> parse_object_response(Response&& response, bool head = false);

// The one status -> errno table (STYLE 3.5): 400 EINVAL, 401/403/426 EACCES, 404 ENOENT,
// 406/415 EPROTO, 409 ESTALE (X-Riak-If-Not-Modified), 412 EEXIST, 413/431 ENAMETOOLONG,
// 500 {too_large,N} EFBIG, 500 {too_many_siblings,N} EMLINK, 500 overload or
// insufficient_vnodes EAGAIN, 503 ETIMEDOUT, other 5xx EIO, anything else EPROTO.
// The message holds the status and the first line(s) of the body; http_status is set.
Error error_from_response(const Response& response);

// ---- Siblings -------------------------------------------------------------------------------

// "Siblings:\n" then one vtag per line (LF or CRLF).
Result<std::vector<std::string>> parse_sibling_list(std::string_view body);
std::string format_sibling_list(const std::vector<std::string>& vtags);

struct MultipartPart {
    HeaderList headers; // in order, values trimmed
    std::string body;
};
// The boundary parameter of a multipart Content-Type (quotes removed), if any.
std::optional<std::string> multipart_boundary(std::string_view content_type);
// RFC 2046 body: preamble ignored, parts between "--boundary" delimiter lines, closing
// "--boundary--" required (EPROTO otherwise). Accepts CRLF or bare LF line ends.
Result<std::vector<MultipartPart>> parse_multipart(std::string_view body,
                                                   std::string_view boundary);
// Riak's 300 multipart body: for each sibling Content-Type, Content-Encoding, Etag (unquoted),
// Last-Modified, X-Riak-Deleted, meta and index headers, then the value.
std::string format_multipart_siblings(std::string_view boundary,
                                      const std::vector<RiakObject>& siblings);

// ---- Listings -------------------------------------------------------------------------------

// {"keys":[...]} (or member "buckets"); {"error":...} -> EIO.
Result<std::vector<std::string>> parse_key_list(std::string_view body,
                                                std::string_view member = "keys");
Result<std::string> format_key_list(const std::vector<std::string>& keys,
                                    std::string_view member = "keys");

// Splits a byte stream of concatenated JSON objects ({...}{...}, whitespace allowed between)
// at arbitrary chunk boundaries. Each complete object is parsed on its own.
class JsonObjectStream {
public:
    // Appends `bytes` and moves every object completed so far into `out`. EPROTO on bytes
    // outside an object or unparseable JSON; the stream is unusable afterwards.
    Result<void> feed(std::string_view bytes, std::vector<nlohmann::json>& out);
    // EPROTO if an object is incomplete.
    Result<void> finish() const;
    std::size_t buffered() const noexcept { return buf_.size(); }

private:
    std::string buf_; // bytes of the incomplete object, starting at its '{'
    std::size_t scan_ = 0;
    int depth_ = 0;
    bool in_string_ = false;
    bool escape_ = false;
    bool failed_ = false;
};

// keys=stream (or buckets=stream): one {"keys":[...]} per chunk; an in-band {"error":...}
// becomes EIO. Feed body bytes as they arrive, take keys whenever convenient.
class KeyStreamDecoder {
public:
    explicit KeyStreamDecoder(std::string member = "keys") : member_(std::move(member)) {}
    Result<void> feed(std::string_view bytes);
    Result<void> finish() const { return stream_.finish(); }
    std::vector<std::string> take_keys() { return std::exchange(keys_, {}); }

private:
    std::string member_;
    JsonObjectStream stream_;
    std::vector<std::string> keys_;
};
// A whole streamed body at once.
Result<std::vector<std::string>> parse_key_stream(std::string_view body,
                                                  std::string_view member = "keys");

// ---- Secondary indexes ----------------------------------------------------------------------

struct IndexResults {
    std::vector<std::string> keys;                          // {"keys":[...]}
    std::vector<std::pair<std::string, std::string>> terms; // return_terms: {term, key}
    std::string continuation;                               // "" on the last page
};
// {"keys":[...],"continuation":"..."} or {"results":[{"term":"key"},...]}; {"error":...} EIO.
Result<IndexResults> parse_index_results(std::string_view body);
// stream=true: multipart/mixed of JSON parts, merged in order.
Result<IndexResults> parse_index_stream(std::string_view content_type, std::string_view body);
Result<std::string> format_index_results(const IndexResults& results);

// ---- Bucket props, ping, stats --------------------------------------------------------------

struct BucketProps {
    std::optional<std::uint32_t> n_val;
    std::optional<bool> allow_mult, last_write_wins, dvv_enabled, basic_quorum, notfound_ok;
    std::optional<bool> write_once, consistent;
    std::optional<Quorum> r, w, dw, rw, pr, pw, node_confirms;
    std::optional<std::string> datatype;
    // parse: the whole "props" object as received. format: extra members to send (the typed
    // members above override same-named ones).
    nlohmann::json raw = nlohmann::json::object();
};
Result<BucketProps> parse_bucket_props(std::string_view body); // {"props":{...}}
Result<std::string> format_bucket_props(const BucketProps& props);

// 200 with body "OK" -> ok; otherwise an error.
Result<void> check_ping_response(const Response& response);

struct NodeStats {
    nlohmann::json raw; // the whole object
    std::string riak_kv_version;
    std::string storage_backend;
    std::vector<std::string> ring_members;
    std::vector<std::string> connected_nodes;
    // A numeric stat (e.g. "node_get_fsm_time_95"), if present and numeric.
    std::optional<double> number(std::string_view name) const;
};
Result<NodeStats> parse_stats(std::string_view body);

// ---- Set data type --------------------------------------------------------------------------

struct SetValue {
    std::vector<std::string> members;
    std::string context; // opaque; needed for removes
};
struct SetUpdate {
    std::vector<std::string> add;
    std::vector<std::string> remove;
    std::string context;
    bool empty() const noexcept { return add.empty() && remove.empty(); }
};

// {"type":"set","value":[...],"context":"..."}
Result<SetValue> parse_set_value(std::string_view body);
Result<std::string> format_set_value(const SetValue& value);
// {"add_all":[...],"remove_all":[...],"context":"..."}; empty lists and context are omitted.
// EINVAL for members that are not valid UTF-8.
Result<std::string> format_set_update(const SetUpdate& update);
// Server side: accepts add, add_all, remove, remove_all and context.
Result<SetUpdate> parse_set_update(std::string_view body);

Result<Request> make_set_fetch_request(std::string_view host, const ObjectId& id,
                                       const RequestParams& params = {});
Result<Request> make_set_update_request(std::string_view host, const ObjectId& id,
                                        const SetUpdate& update, const RequestParams& params = {});
// 200 -> the value; 404 ({"type":"set","error":"notfound"}) -> nullopt; else error.
Result<std::optional<SetValue>> parse_set_fetch_response(const Response& response);
// 204 -> nullopt; 200 (returnbody) -> the value; else error.
Result<std::optional<SetValue>> parse_set_update_response(const Response& response);

} // namespace rfs::proto
