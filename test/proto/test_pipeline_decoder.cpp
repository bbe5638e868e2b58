// Parsegrind for proto/PipelineDecoder: every response at every split point, 2-5 pipelined
// responses back to back (HEAD, 204, 304, chunked, large headers, interim 100), leftovers, and
// the error cases (malformed, truncated at EOF, Content-Length conflicts, limits).
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "proto/pipeline_decoder.hpp"

using namespace rfs::proto;

namespace {

// One response on the wire and what decoding it must give.
struct WireCase {
    std::string name;
    http::verb method;
    std::string wire;
    unsigned status;
    std::string body;
};

std::string head_block(std::string_view status_line, std::string_view name,
                       std::string_view headers) {
    return fmt::format(
        "HTTP/1.1 {}\r\nX-Case: {}\r\nServer: MochiWeb/1.1 WebMachine/1.11.1\r\n{}\r\n",
        status_line, name, headers);
}

WireCase length_framed(std::string name, http::verb method, unsigned status,
                       std::string_view reason, std::string_view headers, std::string body) {
    WireCase c{name, method, "", status, body};
    c.wire = head_block(fmt::format("{} {}", status, reason), name,
                        fmt::format("{}Content-Length: {}\r\n", headers, body.size())) +
             body;
    return c;
}

std::vector<WireCase> catalog() {
    std::vector<WireCase> cases;
    const auto get = http::verb::get;
    cases.push_back(
        length_framed("get200", get, 200, "OK",
                      "X-Riak-Vclock: a85hYGBgzGDKBVIcypz/fgaUHjmdwZTImMfK0Ly9hS8LAA==\r\n"
                      "Vary: Accept-Encoding\r\nLink: </buckets/b>; rel=\"up\"\r\n"
                      "Last-Modified: Wed, 25 Nov 2026 19:00:00 GMT\r\nETag: \"6bYxZ\"\r\n"
                      "Content-Type: application/octet-stream\r\n",
                      "hello world"));
    cases.push_back(length_framed("put204", http::verb::put, 204, "No Content",
                                  "Vary: Accept-Encoding\r\n", ""));
    {
        WireCase c{"del204", http::verb::delete_, "", 204, ""};
        c.wire = head_block("204 No Content", c.name, ""); // no Content-Length at all
        cases.push_back(c);
    }
    cases.push_back(length_framed("get404", get, 404, "Object Not Found",
                                  "Content-Type: text/plain\r\n", "not found\n"));
    {
        // HEAD: Content-Length describes the GET body that is not sent.
        WireCase c{"head200", http::verb::head, "", 200, ""};
        c.wire = head_block("200 OK", c.name,
                            "Content-Type: text/plain\r\nX-Riak-Vclock: a85h\r\n"
                            "Content-Length: 1234\r\n");
        cases.push_back(c);
        WireCase d{"head404", http::verb::head, "", 404, ""};
        d.wire = head_block("404 Object Not Found", d.name,
                            "X-Riak-Deleted: true\r\nContent-Length: 10\r\n");
        cases.push_back(d);
        WireCase e{"headchunked", http::verb::head, "", 200, ""};
        e.wire = head_block("200 OK", e.name, "Transfer-Encoding: chunked\r\n");
        cases.push_back(e);
    }
    {
        WireCase c{"keystream", get, "", 200, ""};
        c.wire = head_block("200 OK", c.name,
                            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n");
        for (const std::string part : {R"({"keys":["a","b"]})", R"({"keys":[]})",
                                       R"({"keys":["c\r\n0\r\n\r\n"]})", R"({"keys":[]})"}) {
            c.wire += fmt::format("{:x}\r\n{}\r\n", part.size(), part);
            c.body += part;
        }
        c.wire += "0\r\n\r\n";
        cases.push_back(c);
    }
    {
        // No data chunk at all (an empty streamed listing): split two bytes after its "0\r\n",
        // Boost 1.81's parser asserted (the fuzz target found it; PipelineDecoder::decode).
        WireCase c{"chunkedempty", get, "", 200, ""};
        c.wire = head_block("200 OK", c.name,
                            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n") +
                 "0\r\n\r\n";
        cases.push_back(c);
    }
    {
        WireCase c{"chunkext", get, "", 200, "0123456789abcdef-tail"};
        c.wire = head_block("200 OK", c.name, "Transfer-Encoding: chunked\r\n") +
                 "10;name=value\r\n0123456789abcdef\r\n5\r\n-tail\r\n0\r\nX-Trailer: t\r\n\r\n";
        cases.push_back(c);
    }
    cases.push_back(length_framed(
        "siblings300", get, 300, "Multiple Choices",
        "X-Riak-Vclock: a85sib\r\nContent-Type: multipart/mixed; boundary=Ay4OQp\r\n",
        "\r\n--Ay4OQp\r\nContent-Type: text/plain\r\nEtag: 1nBv\r\n\r\none\r\n"
        "--Ay4OQp\r\nContent-Type: text/plain\r\nEtag: 2xYz\r\n\r\ntwo\r\n--Ay4OQp--\r\n"));
    {
        std::string big;
        for (int i = 0; i < 300; ++i)
            big += fmt::format("X-Riak-Meta-Field{:03}: {}\r\n", i, std::string(60, 'v'));
        big += "X-Riak-Vclock: " + std::string(3000, 'Q') + "\r\n";
        cases.push_back(length_framed("bigheaders", get, 200, "OK", big, "small"));
    }
    {
        WireCase c{"notmod304", get, "", 304, ""};
        c.wire = head_block("304 Not Modified", c.name, "ETag: \"6bYxZ\"\r\n");
        cases.push_back(c);
    }
    cases.push_back(length_framed("ping", get, 200, "OK", "Content-Type: text/html\r\n", "OK"));
    {
        // An interim 100 Continue belongs to the same request as the final response.
        WireCase c{"continue204", http::verb::put, "", 204, ""};
        c.wire = "HTTP/1.1 100 Continue\r\n\r\n" +
                 head_block("204 No Content", c.name, "Content-Length: 0\r\n");
        cases.push_back(c);
    }
    cases.push_back(length_framed("lookalike", get, 200, "OK", "Content-Type: text/plain\r\n",
                                  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"));
    cases.push_back(length_framed("empty200", get, 200, "OK", "", ""));
    {
        std::string body(100000, '\0');
        for (std::size_t i = 0; i < body.size(); ++i)
            body[i] = static_cast<char>(i * 7 + 3);
        cases.push_back(length_framed("bigbody", get, 200, "OK", "", body));
    }
    cases.push_back(length_framed("error500", http::verb::put, 500, "Internal Server Error",
                                  "Content-Type: text/plain\r\n",
                                  "Error:\n{too_large,62914760}\n"));
    return cases;
}

void check_response(const Response& r, const WireCase& c) {
    INFO("case " << c.name);
    CHECK(r[http::field::server] == "MochiWeb/1.1 WebMachine/1.11.1");
    REQUIRE(r["X-Case"] == c.name);
    REQUIRE(r.result_int() == c.status);
    REQUIRE(r.body() == c.body);
}

// Feeds `wire` in pieces ending at the given cut offsets; returns the decoded responses.
std::vector<Response> decode_with_cuts(const std::vector<const WireCase*>& seq,
                                       const std::string& wire, std::vector<std::size_t> cuts) {
    PipelineDecoder dec;
    for (const auto* c : seq)
        dec.expect(c->method);
    std::vector<Response> out;
    std::size_t pos = 0;
    cuts.push_back(wire.size());
    for (const std::size_t cut : cuts) {
        if (cut < pos) continue;
        auto r = dec.feed(std::string_view(wire).substr(pos, cut - pos));
        REQUIRE(r.has_value());
        pos = cut;
        while (auto res = dec.next())
            out.push_back(std::move(*res));
    }
    REQUIRE(dec.finish().has_value());
    CHECK(dec.pending() == 0);
    CHECK(dec.buffered() == 0);
    CHECK_FALSE(dec.in_progress());
    return out;
}

std::vector<std::size_t> random_cuts(std::mt19937_64& rng, std::size_t size,
                                     std::size_t max_piece) {
    std::vector<std::size_t> cuts;
    std::size_t pos = 0;
    while (pos < size) {
        pos += 1 + rng() % max_piece;
        cuts.push_back(std::min(pos, size));
    }
    return cuts;
}

Error feed_error(PipelineDecoder& dec, std::string_view bytes) {
    auto r = dec.feed(bytes);
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

} // namespace

TEST_CASE("every response at every split point", "[proto][pipeline]") {
    std::mt19937_64 rng(0x5eed0006);
    for (const auto& c : catalog()) {
        INFO("case " << c.name << " (" << c.wire.size() << " bytes)");
        std::vector<std::size_t> splits;
        if (c.wire.size() <= 8192) {
            for (std::size_t k = 0; k <= c.wire.size(); ++k)
                splits.push_back(k);
        } else {
            for (std::size_t k = 0; k < 64; ++k) {
                splits.push_back(k);
                splits.push_back(c.wire.size() - k);
            }
            for (int i = 0; i < 400; ++i)
                splits.push_back(rng() % c.wire.size());
            const auto body_start = c.wire.find("\r\n\r\n") + 4;
            for (std::size_t k = body_start - 8; k < body_start + 8; ++k)
                splits.push_back(k);
        }
        for (const std::size_t k : splits) {
            INFO("split at " << k);
            const auto out = decode_with_cuts({&c}, c.wire, {k});
            REQUIRE(out.size() == 1);
            check_response(out[0], c);
        }
        // Byte by byte, and in random small pieces.
        if (c.wire.size() <= 8192) {
            std::vector<std::size_t> each(c.wire.size());
            for (std::size_t k = 0; k < each.size(); ++k)
                each[k] = k + 1;
            const auto out = decode_with_cuts({&c}, c.wire, each);
            REQUIRE(out.size() == 1);
            check_response(out[0], c);
        }
        for (int round = 0; round < 20; ++round) {
            const auto out = decode_with_cuts({&c}, c.wire, random_cuts(rng, c.wire.size(), 700));
            REQUIRE(out.size() == 1);
            check_response(out[0], c);
        }
    }
}

TEST_CASE("2-5 pipelined responses come back in order", "[proto][pipeline]") {
    const auto cases = catalog();
    std::mt19937_64 rng(0x5eed0007);
    int sequences = 0;
    for (int round = 0; round < 400; ++round) {
        const std::size_t n = 2 + rng() % 4;
        std::vector<const WireCase*> seq;
        std::string wire;
        for (std::size_t i = 0; i < n; ++i) {
            seq.push_back(&cases[rng() % cases.size()]);
            wire += seq.back()->wire;
        }
        std::string names;
        for (const auto* c : seq)
            names += c->name + " ";
        INFO("sequence: " << names);

        std::vector<std::vector<std::size_t>> plans;
        plans.push_back({});                                            // all at once
        plans.push_back(random_cuts(rng, wire.size(), 1 + rng() % 64)); // small pieces
        plans.push_back(random_cuts(rng, wire.size(), 4096));
        if (wire.size() <= 6000 && round % 4 == 0) {
            for (std::size_t k = 0; k <= wire.size(); ++k)
                plans.push_back({k}); // every split
        }
        for (const auto& cuts : plans) {
            const auto out = decode_with_cuts(seq, wire, cuts);
            REQUIRE(out.size() == seq.size());
            for (std::size_t i = 0; i < seq.size(); ++i)
                check_response(out[i], *seq[i]);
        }
        ++sequences;
    }
    CHECK(sequences == 400);
}

TEST_CASE("leftover bytes are kept for the next response", "[proto][pipeline]") {
    const auto cases = catalog();
    const WireCase& a = cases[0]; // get200
    const WireCase& b = cases[7]; // keystream
    REQUIRE(b.name == "keystream");
    PipelineDecoder dec;
    dec.expect(a.method);
    dec.expect(b.method);
    const std::string wire = a.wire + b.wire;
    const std::size_t cut = a.wire.size() + 40;
    REQUIRE(dec.feed(std::string_view(wire).substr(0, cut)).has_value());
    CHECK(dec.ready() == 1);
    CHECK(dec.pending() == 1);
    CHECK((dec.in_progress() || dec.buffered() > 0));
    check_response(*dec.next(), a);
    CHECK_FALSE(dec.next().has_value());
    REQUIRE(dec.feed(std::string_view(wire).substr(cut)).has_value());
    check_response(*dec.next(), b);
    CHECK(dec.pending() == 0);
    CHECK(dec.buffered() == 0);

    SECTION("a moved decoder keeps its state") {
        dec.expect(http::verb::get);
        REQUIRE(dec.feed(std::string_view(a.wire).substr(0, 30)).has_value());
        PipelineDecoder moved = std::move(dec);
        REQUIRE(moved.feed(std::string_view(a.wire).substr(30)).has_value());
        check_response(*moved.next(), a);
        dec = PipelineDecoder(); // reset for a new connection
        CHECK(dec.pending() == 0);
    }
    SECTION("unanswered requests at EOF are not an error") {
        dec.expect(http::verb::get);
        dec.expect(http::verb::get);
        CHECK(dec.finish().has_value());
        CHECK(dec.pending() == 2);
    }
}

TEST_CASE("Connection: close and EOF-delimited bodies", "[proto][pipeline]") {
    SECTION("body until EOF completes on finish()") {
        PipelineDecoder dec;
        dec.expect(http::verb::get);
        REQUIRE(dec.feed("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ").has_value());
        REQUIRE(dec.feed("the end").has_value());
        CHECK_FALSE(dec.has_response());
        REQUIRE(dec.finish().has_value());
        const auto r = dec.next();
        REQUIRE(r.has_value());
        CHECK(r->body() == "until the end");
        CHECK(dec.closing());
    }
    SECTION("bytes after a close response are an error") {
        PipelineDecoder dec;
        dec.expect(http::verb::get);
        dec.expect(http::verb::get);
        const auto e =
            feed_error(dec, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n"
                            "\r\nokHTTP/1.1 200 OK\r\n");
        CHECK(e.code == EPROTO);
        CHECK(dec.ready() == 1);
        CHECK(dec.closing());
    }
}

TEST_CASE("decoder errors", "[proto][pipeline]") {
    SECTION("truncated body at EOF") {
        PipelineDecoder dec;
        dec.expect(http::verb::get);
        REQUIRE(dec.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").has_value());
        const auto r = dec.finish();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ECONNRESET);
        CHECK(dec.failed());
        CHECK(dec.pending() == 1);
        CHECK(dec.feed("more").error().code == ECONNRESET); // poisoned
    }
    SECTION("truncated headers and chunked body at EOF") {
        for (const char* wire : {"HTTP/1.1 200 OK\r\nContent-Le",
                                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"}) {
            PipelineDecoder dec;
            dec.expect(http::verb::get);
            REQUIRE(dec.feed(wire).has_value());
            CHECK(dec.finish().error().code == ECONNRESET);
        }
    }
    SECTION("malformed input") {
        for (const char* wire :
             {"HTTX/1.1 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "garbage\r\n\r\n",
              "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"}) {
            INFO(wire);
            PipelineDecoder dec;
            dec.expect(http::verb::get);
            CHECK(feed_error(dec, wire).code == EPROTO);
        }
    }
    SECTION("Content-Length mismatches") {
        for (const char* wire :
             {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
              "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nabcdef",
              "HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nabcde",
              "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: "
              "5\r\n\r\n0\r\n\r\n"}) {
            INFO(wire);
            PipelineDecoder dec;
            dec.expect(http::verb::get);
            CHECK(feed_error(dec, wire).code == EPROTO);
        }
        // A body longer than its Content-Length leaves bytes no request is waiting for.
        PipelineDecoder dec;
        dec.expect(http::verb::get);
        const auto e = feed_error(dec, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabcd");
        CHECK(e.code == EPROTO);
        CHECK(dec.ready() == 1);
        CHECK(dec.next()->body() == "ab");
    }
    SECTION("unsolicited bytes") {
        PipelineDecoder dec;
        CHECK(feed_error(dec, "HTTP/1.1 204 No Content\r\n\r\n").code == EPROTO);
    }
    SECTION("limits") {
        PipelineDecoder small_body(PipelineDecoder::Limits{1u << 20, 10});
        small_body.expect(http::verb::get);
        CHECK(feed_error(small_body, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n").code ==
              EFBIG);
        PipelineDecoder small_header(PipelineDecoder::Limits{64, 1000});
        small_header.expect(http::verb::get);
        CHECK(feed_error(small_header,
                         "HTTP/1.1 200 OK\r\nX-Long: " + std::string(100, 'x') + "\r\n\r\n")
                  .code == EMSGSIZE);
        // The default limits take Riak's big headers.
        PipelineDecoder dec;
        dec.expect(http::verb::get);
        std::string many;
        for (int i = 0; i < 20; ++i)
            many += fmt::format("X-Riak-Meta-M{}: {}\r\n", i, std::string(30000, 'm'));
        REQUIRE(dec.feed("HTTP/1.1 200 OK\r\nX-Riak-Vclock: " + std::string(60000, 'v') + "\r\n" +
                         many + "Content-Length: 0\r\n\r\n")
                    .has_value());
        CHECK(dec.ready() == 1);
        // One field longer than Beast can hold is an error, not an exception.
        PipelineDecoder huge;
        huge.expect(http::verb::get);
        CHECK(feed_error(huge, "HTTP/1.1 200 OK\r\nX-Riak-Vclock: " + std::string(70000, 'v') +
                                   "\r\nContent-Length: 0\r\n\r\n")
                  .code == EMSGSIZE);
    }
}

TEST_CASE("random responses written by to_wire decode back unchanged", "[proto][pipeline]") {
    std::mt19937_64 rng(0x5eed0008);
    const unsigned statuses[] = {200, 201, 204, 300, 304, 400, 404, 412, 500, 503};
    for (int round = 0; round < 500; ++round) {
        const std::size_t n = 2 + rng() % 4;
        std::vector<Response> sent;
        std::vector<http::verb> methods;
        std::string wire;
        for (std::size_t i = 0; i < n; ++i) {
            Response res;
            res.version(11);
            res.result(statuses[rng() % std::size(statuses)]);
            res.set("X-Seq", std::to_string(i));
            for (std::size_t h = rng() % 6; h > 0; --h)
                res.insert(fmt::format("X-Riak-Meta-H{}", h), std::string(rng() % 200, 'h'));
            const bool bodiless = res.result_int() == 204 || res.result_int() == 304;
            const bool head = !bodiless && rng() % 5 == 0;
            if (!bodiless) {
                res.body().resize(rng() % 3000);
                for (char& c : res.body())
                    c = static_cast<char>(rng());
                res.chunked(rng() % 3 == 0);
            }
            res.prepare_payload();
            const std::string full = to_wire(res);
            // A HEAD answer carries the header block only.
            wire += head ? full.substr(0, full.find("\r\n\r\n") + 4) : full;
            if (head) res.body().clear();
            methods.push_back(head ? http::verb::head : http::verb::get);
            sent.push_back(std::move(res));
        }
        PipelineDecoder dec;
        for (const auto m : methods)
            dec.expect(m);
        std::size_t pos = 0;
        while (pos < wire.size()) {
            const std::size_t piece = 1 + rng() % 1500;
            REQUIRE(dec.feed(std::string_view(wire).substr(pos, piece)).has_value());
            pos += piece;
        }
        REQUIRE(dec.ready() == sent.size());
        for (const auto& expected : sent) {
            const auto got = dec.next();
            REQUIRE(got.has_value());
            REQUIRE(got->result_int() == expected.result_int());
            REQUIRE((*got)["X-Seq"] == expected["X-Seq"]);
            REQUIRE(got->body() == expected.body());
            for (const auto& f : expected)
                REQUIRE((*got)[f.name_string()] == f.value());
        }
        CHECK(dec.buffered() == 0);
    }
}
