// Riak bucket/key naming and request targets (URL path + query) for Riak's HTTP API.
// Pure functions over strings: callable from any thread.
//
// Two layers sit between a file name and a request line:
//
//   file name bytes --escape_name()--> Riak name (valid UTF-8) --percent_encode()--> URL segment
//                   <-unescape_name()--                          <-percent_decode()--
//
// Layer 1: the name escape (a STORAGE FORMAT: keys and buckets written by riakfs are stored in
// this form, and other Riak clients read them back in listings, 2i results and Links).
//
//   * The output is always valid UTF-8 (RFC 3629: shortest form, no surrogates, <= U+10FFFF),
//     because Riak's JSON encoder (key listings, 2i) fails on anything else.
//   * The escape character is '%' (0x25). Escaped bytes are written as '%' followed by exactly
//     two UPPERCASE hexadecimal digits giving the byte value: "%25" for '%' itself, "%FF" for a
//     0xFF byte, "%C3" for a lone 0xC3 lead byte, etc.
//   * Escaped are: the '%' byte, and every byte that is not part of a well-formed UTF-8
//     sequence (stray continuation bytes, truncated or overlong sequences, encoded surrogates,
//     code points above U+10FFFF, bytes 0xC0, 0xC1, 0xF5..0xFF). Bytes of a malformed sequence
//     are judged one at a time: a lead byte whose sequence is broken is escaped, and scanning
//     resumes at the next byte.
//   * Everything else (ASCII including space, '+', '/', '?', '#', CR, LF and other controls,
//     and well-formed multi-byte UTF-8) is copied unchanged.
//   * Example: "50% off\xff.txt" <-> "50%25 off%FF.txt"; "caf\xc3\xa9" (UTF-8 e-acute) is
//     unchanged; Latin-1 "caf\xe9" <-> "caf%E9".
//   * Decoding is strict so that the mapping is a bijection between byte strings and
//     well-formed names: unescape_name() rejects (EINVAL) a '%' not followed by two uppercase
//     hex digits, an escape of a byte that would not have been escaped ("%41" for 'A', "%C3%A9"
//     for a valid sequence), and input that is not valid UTF-8. Keys written by other clients
//     that fail this check are simply not riakfs names.
//
// Layer 2: URL percent-encoding of any byte string, for request-target path segments and query
// parameters. Every byte outside the RFC 3986 unreserved set (A-Z a-z 0-9 - . _ ~) becomes
// %XX (uppercase hex), including '+', '/', '%' and space; a whole segment "." or ".." is
// encoded as "%2E"/"%2E%2E" so no client normalises it. Riak decodes each path segment
// form-style ('+' is a space); riak_unquote() reproduces that for the test server.
// Encoding and strict decoding are Boost.URL's (boost::urls::encode with unreserved_chars,
// make_pct_string_view + decode). riak_unquote() and parse_target() stay hand-written: Riak
// (mochiweb) keeps a malformed escape literally and accepts request targets that are not valid
// RFC 3986 (raw non-ASCII bytes, '"', '<', ...), where Boost.URL refuses the whole string.
//
// Request-target builders take Riak names (layer-1 output, or any bytes) and percent-encode
// every bucket-type, bucket, key and index segment, so nothing they contain reaches the request
// line unescaped. They reject (EINVAL) empty names, which Riak's router cannot address, keys
// over 65536 bytes (ENAMETOOLONG, Riak's key_too_large), and targets longer than
// kMaxTargetLength (ENAMETOOLONG: Riak answers 431 to request lines over ~8 KB).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/result.hpp"

namespace rfs::proto {

inline constexpr std::size_t kMaxKeyBytes = 65536;
inline constexpr std::size_t kMaxTargetLength = 8000;

// ---- Layer 1: name escape -------------------------------------------------------------------

// True if `s` is well-formed UTF-8 (RFC 3629). The empty string is valid.
bool is_valid_utf8(std::string_view s) noexcept;

// File-name bytes -> Riak name (valid UTF-8). Total: any byte string is accepted.
std::string escape_name(std::string_view raw);

// Riak name -> file-name bytes. EINVAL if `escaped` is not a canonical escape_name() output.
Result<std::string> unescape_name(std::string_view escaped);

// ---- Layer 2: URL percent-encoding ----------------------------------------------------------

// True for A-Z a-z 0-9 - . _ ~
bool is_unreserved(char c) noexcept;

// Any bytes -> only unreserved characters and %XX. Does not special-case "."/"..".
std::string percent_encode(std::string_view raw);
// mochiweb_util:quote_plus, as Riak writes bucket and key names into the URLs of its Link and
// Location headers: percent_encode() except that a space becomes '+'.
std::string riak_quote_plus(std::string_view raw);

// One path segment: percent_encode(), plus "." and ".." fully encoded.
std::string encode_segment(std::string_view raw);

// Strict inverse of percent_encode(): EINVAL on '%' not followed by two hex digits. '+' is kept
// as '+' (riakfs never emits it unencoded). Accepts lowercase hex.
Result<std::string> percent_decode(std::string_view encoded);

// What Riak (mochiweb_util:unquote) does to a path segment or query component: '+' becomes a
// space, %XX (either case) becomes the byte, and a '%' not followed by two hex digits is kept
// literally. Never fails. For the test server.
std::string riak_unquote(std::string_view encoded);

// "host:port" for a Host header or a log line; a host containing ':' (an IPv6 address) is put
// in brackets: "[::1]:8098".
std::string host_and_port(std::string_view host, std::uint16_t port);

// ---- Quorum and request parameters ----------------------------------------------------------

// A quorum value: a symbolic word or an integer.
class Quorum {
public:
    enum class Kind { one, quorum, all, default_, number };

    static Quorum one() { return Quorum(Kind::one, 0); }
    static Quorum quorum() { return Quorum(Kind::quorum, 0); }
    static Quorum all() { return Quorum(Kind::all, 0); }
    static Quorum bucket_default() { return Quorum(Kind::default_, 0); }
    static Quorum n(std::uint32_t count) { return Quorum(Kind::number, count); }

    // Parses "one", "quorum", "all", "default" or a non-negative decimal integer.
    static std::optional<Quorum> parse(std::string_view text);

    Kind kind() const noexcept { return kind_; }
    std::uint32_t number() const noexcept { return number_; }
    std::string to_string() const;

    friend bool operator==(const Quorum&, const Quorum&) = default;

private:
    Quorum(Kind kind, std::uint32_t number) : kind_(kind), number_(number) {}
    Kind kind_;
    std::uint32_t number_;
};

// Request parameters of the object, datatype and listing resources. Unset members are not sent.
struct RequestParams {
    std::optional<Quorum> r, pr, w, dw, pw, rw, node_confirms;
    std::optional<bool> basic_quorum, notfound_ok, returnbody, include_context;
    std::optional<std::uint32_t> timeout_ms;
    std::string sync_on_write; // "", or default/backend/one/all
    std::string vtag;          // select one sibling (GET/HEAD)
};

// Ordered query-string builder. Names and values are percent-encoded when added.
class QueryParams {
public:
    QueryParams& add(std::string_view name, std::string_view value);
    QueryParams& add(std::string_view name, const char* value) {
        return add(name, std::string_view(value));
    }
    QueryParams& add(std::string_view name, const std::string& value) {
        return add(name, std::string_view(value));
    }
    // Exactly bool (a const char* or an int must not silently become "true").
    template <typename B>
    requires std::same_as<B, bool> QueryParams& add(std::string_view name, B value) {
        return add(name, std::string_view(value ? "true" : "false"));
    }
    template <std::integral I>
    requires(!std::same_as<I, bool>) QueryParams& add(std::string_view name, I value) {
        return add(name, std::string_view(std::to_string(value)));
    }
    QueryParams& add(std::string_view name, const Quorum& value) {
        return add(name, std::string_view(value.to_string()));
    }
    QueryParams& add(const RequestParams& params);

    bool empty() const noexcept { return query_.empty(); }
    // "" when empty, else "?a=b&c=d".
    std::string to_string() const { return query_.empty() ? std::string() : "?" + query_; }

private:
    std::string query_;
};

// ---- Request targets ------------------------------------------------------------------------

// A bucket, in bucket type `type` ("" = the default type, addressed without /types/).
struct BucketId {
    std::string type;
    std::string bucket;
    friend bool operator==(const BucketId&, const BucketId&) = default;
};

struct ObjectId {
    std::string type;
    std::string bucket;
    std::string key;
    BucketId bucket_id() const { return BucketId{type, bucket}; }
    friend bool operator==(const ObjectId&, const ObjectId&) = default;
};

// /buckets/B  or  /types/T/buckets/B  (common prefix; not a resource by itself)
Result<std::string> bucket_path(const BucketId& bucket);
// /buckets/B/keys/K  or  /types/T/buckets/B/keys/K, then `query`
Result<std::string> object_target(const ObjectId& object, const QueryParams& query = {});
// /buckets/B/keys (POST with a server-chosen key), then `query`
Result<std::string> bucket_keys_target(const BucketId& bucket, const QueryParams& query = {});
// /buckets/B/keys?keys=true (stream=false) or ?keys=stream, optional timeout
Result<std::string> key_list_target(const BucketId& bucket, bool stream,
                                    std::optional<std::uint32_t> timeout_ms = std::nullopt);
// /buckets?buckets=true|stream  or  /types/T/buckets?buckets=...
Result<std::string> bucket_list_target(std::string_view type, bool stream);
// /buckets/B/props  or  /types/T/buckets/B/props
Result<std::string> bucket_props_target(const BucketId& bucket);
// /types/T/props
Result<std::string> type_props_target(std::string_view type);
// /types/T/buckets/B/datatypes/K (type required: data types cannot live in the default type)
Result<std::string> datatype_target(const ObjectId& object, const QueryParams& query = {});
inline std::string ping_target() {
    return "/ping";
}
inline std::string stats_target() {
    return "/stats";
}

// A secondary-index query. `field` is "$bucket", "$key", or a name ending in _bin/_int.
struct IndexQuery {
    std::string field;
    std::string value;              // exact match (also the ignored value for $bucket)
    std::optional<std::string> end; // set: range query value..end (inclusive)
    std::optional<std::uint32_t> max_results;
    std::string continuation;
    bool return_terms = false; // honoured by Riak for range queries only
    bool stream = false;
    std::string term_regex;
    std::optional<std::uint32_t> timeout_ms;

    static IndexQuery exact(std::string field, std::string value);
    static IndexQuery range(std::string field, std::string start, std::string end);
    static IndexQuery bucket_keys(); // $bucket: every key of the bucket, paginate with max_results
};
// /buckets/B/index/F/V[/End]?...
Result<std::string> index_target(const BucketId& bucket, const IndexQuery& query);

// ---- Parsing a request target (test server side) --------------------------------------------

struct ParsedTarget {
    std::vector<std::string> segments; // path split on '/', empty segments dropped, riak_unquote()d
    std::vector<std::pair<std::string, std::string>> query; // riak_unquote()d, in order
    // First value of query parameter `name`, if present.
    std::optional<std::string> param(std::string_view name) const;
};
// Splits like Riak's router: query cut at the first '?' (and its own '#' fragment dropped), path
// split on '/', empty segments (from "//" or a trailing '/') vanish, then each segment is
// decoded form-style; the query is split on '&' and ';' (mochiweb_util:parse_qs) and each name
// and value decoded the same way.
ParsedTarget parse_target(std::string_view target);

} // namespace rfs::proto
