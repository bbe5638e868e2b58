// The pipelined HTTP response decoder (proto/pipeline_decoder.hpp) and what the Riak client does
// with each response it yields: the object, sibling, set and ping parsers and the status -> errno
// table. Input: one byte of request methods (bit i set: request i was a HEAD, else a GET), one
// byte of request count (1-8, low three bits), one byte of chunk size (the bytes arrive in
// pieces of 1-256), then the bytes the "server" sent. Properties: no crash, an error poisons the
// decoder for good, and a decoder never yields more responses than requests were sent.
#include "fuzz_input.hpp"

#include "proto/pipeline_decoder.hpp"

using namespace rfs::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    rfs::fuzz::Input in(data, size);
    const std::uint8_t methods = in.byte();
    const std::size_t requests = 1 + (in.byte() & 7);
    const std::size_t chunk = 1 + in.byte();
    std::string_view wire = in.rest();

    // Small limits, so that the limit paths are reached with small inputs.
    PipelineDecoder decoder(PipelineDecoder::Limits{4096, 1 << 16});
    std::vector<bool> head;
    for (std::size_t i = 0; i < requests; ++i) {
        head.push_back(methods & (1u << i));
        decoder.expect(head.back() ? http::verb::head : http::verb::get);
    }

    std::size_t answered = 0;
    auto drain = [&] {
        while (auto response = decoder.next()) {
            RFS_FUZZ_CHECK(answered < requests);
            bool was_head = head[answered++];
            (void)parse_object_response(*response, was_head);
            (void)error_from_response(*response);
            (void)check_ping_response(*response);
            if (!was_head) {
                (void)parse_set_fetch_response(*response);
                (void)parse_set_update_response(*response);
            }
        }
    };
    bool failed = false;
    for (std::size_t at = 0; at < wire.size(); at += chunk) {
        auto fed = decoder.feed(wire.substr(at, chunk));
        drain();
        if (!fed) failed = true;
        if (failed) RFS_FUZZ_CHECK(decoder.failed());
    }
    auto finished = decoder.finish();
    drain();
    if (!finished || failed) RFS_FUZZ_CHECK(decoder.failed());
    RFS_FUZZ_CHECK(answered + decoder.pending() <= requests);
    return 0;
}
