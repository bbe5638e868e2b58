// The JSON Riak sends back (proto/riak_messages.hpp): key and bucket listings, whole and streamed
// (keys=stream: concatenated objects cut at arbitrary chunk boundaries), 2i results, bucket
// properties, /stats and set values, and the set updates riak-devnode accepts. Input: a selector
// byte, a chunk-size byte for the streamed decoders, then the body.
// Properties: no crash; the streamed key decoder gives the same keys whatever the chunking, and
// lists that parsed format and parse back to the same keys.
#include "fuzz_input.hpp"

#include "proto/riak_messages.hpp"

using namespace rfs::proto;

namespace {

void key_stream(std::string_view body, std::size_t chunk) {
    KeyStreamDecoder decoder;
    std::vector<std::string> keys;
    bool ok = true;
    for (std::size_t at = 0; ok && at < body.size(); at += chunk) {
        ok = decoder.feed(body.substr(at, chunk)).has_value();
        for (auto& k : decoder.take_keys())
            keys.push_back(std::move(k));
    }
    ok = ok && decoder.finish().has_value();
    auto whole = parse_key_stream(body);
    RFS_FUZZ_CHECK(ok == whole.has_value());
    if (ok) RFS_FUZZ_CHECK(keys == *whole);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    rfs::fuzz::Input in(data, size);
    const std::uint8_t which = in.byte();
    const std::size_t chunk = 1 + in.byte();
    std::string_view body = in.rest();

    switch (which % 8) {
    case 0:
        if (auto keys = parse_key_list(body)) {
            auto text = format_key_list(*keys);
            if (text) {
                auto again = parse_key_list(*text);
                RFS_FUZZ_CHECK(again && *again == *keys);
            }
        }
        (void)parse_key_list(body, "buckets");
        break;
    case 1:
        key_stream(body, chunk);
        break;
    case 2:
        if (auto results = parse_index_results(body)) (void)format_index_results(*results);
        break;
    case 3:
        if (auto props = parse_bucket_props(body)) (void)format_bucket_props(*props);
        break;
    case 4:
        if (auto stats = parse_stats(body)) (void)stats->number("node_get_fsm_time_95");
        break;
    case 5:
        if (auto value = parse_set_value(body)) (void)format_set_value(*value);
        break;
    case 6:
        if (auto update = parse_set_update(body)) (void)format_set_update(*update);
        break;
    case 7: {
        JsonObjectStream stream;
        std::vector<nlohmann::json> objects;
        bool ok = true;
        for (std::size_t at = 0; ok && at < body.size(); at += chunk)
            ok = stream.feed(body.substr(at, chunk), objects).has_value();
        if (ok) (void)stream.finish();
        break;
    }
    }
    return 0;
}
