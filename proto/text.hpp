// Text helpers for HTTP header values, shared by proto/ and the test server (lib/devnode):
// ASCII case-insensitive comparison, lower-casing, trimming, Riak's split of index header
// values, and HTTP dates.
// Pure functions; any thread.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rfs::proto {

// ASCII case-insensitive equality (header names, tokens); other bytes compare exactly.
bool iequals(std::string_view a, std::string_view b) noexcept;
bool istarts_with(std::string_view s, std::string_view prefix) noexcept;
// ASCII lower-casing; other bytes are kept.
std::string to_lower(std::string_view s);
// Without leading spaces and tabs, and trailing spaces, tabs and CRs.
std::string_view trim(std::string_view s) noexcept;

// An X-Riak-Index-* header value split the way Riak splits it (riak_kv_wm_object: re:split on
// ",\s"): at every comma followed by one whitespace byte, which is dropped with the comma. The
// pieces are not trimmed ("a,  b" gives "a" and " b"), as Riak stores them.
std::vector<std::string> split_index_values(std::string_view value);

// HTTP dates (RFC 1123 "Sun, 06 Nov 1994 08:49:37 GMT"; RFC 850 and asctime are also parsed).
std::string format_http_date(std::time_t t);
std::optional<std::time_t> parse_http_date(std::string_view text);

} // namespace rfs::proto
