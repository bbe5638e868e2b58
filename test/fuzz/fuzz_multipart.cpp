// Sibling responses (proto/riak_messages.hpp): the multipart/mixed body Riak sends for a 300 with
// "Accept: multipart/mixed", the text list of vtags it sends without, and the streamed 2i answer
// (multipart/mixed of JSON parts). Input: the Content-Type line, a newline, then the body.
// Properties: no crash; parts that parsed, formatted again as Riak's sibling body with the same
// boundary, parse to as many parts.
#include "fuzz_input.hpp"

#include "proto/riak_messages.hpp"

using namespace rfs::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    rfs::fuzz::Input in(data, size);
    std::string_view content_type = in.field('\n');
    std::string_view body = in.rest();

    (void)parse_sibling_list(body);
    (void)parse_index_stream(content_type, body);
    auto boundary = multipart_boundary(content_type);
    if (!boundary) return 0;
    auto parts = parse_multipart(body, *boundary);
    if (!parts) return 0;
    std::vector<RiakObject> siblings;
    for (auto& part : *parts)
        siblings.push_back(object_from_headers(part.headers, part.body));
    // A boundary that occurs in a part's body cannot delimit it again: only the others round-trip.
    for (const auto& s : siblings)
        if (s.value.find(*boundary) != std::string::npos) return 0;
    auto again = parse_multipart(format_multipart_siblings(*boundary, siblings), *boundary);
    RFS_FUZZ_CHECK(again.has_value());
    RFS_FUZZ_CHECK(again->size() == siblings.size());
    return 0;
}
