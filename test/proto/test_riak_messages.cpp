// Unit tests for proto/riak_messages: request building, response parsing, siblings, listings,
// 2i, bucket props, ping/stats and set data type bodies.
#include <catch2/catch.hpp>

#include <random>
#include <sstream>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>

#include "proto/riak_messages.hpp"

using namespace rfs::proto;

namespace {

std::string serialize(const Request& req) {
    std::ostringstream os;
    os << req;
    const std::string wire = os.str();
    REQUIRE(to_wire(req) == wire); // Beast's own writer agrees with ours
    return wire;
}

Response make_response(unsigned status, HeaderList headers, std::string body) {
    Response res;
    res.version(11);
    res.result(status);
    for (auto& [k, v] : headers)
        res.insert(k, v);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

// The request as a server parses it back from the wire.
Request reparse(const Request& req) {
    const std::string wire = serialize(req);
    http::request_parser<http::string_body> parser;
    parser.eager(true);
    boost::system::error_code ec;
    const std::size_t n = parser.put(boost::asio::buffer(wire), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(n == wire.size());
    REQUIRE(parser.is_done());
    return parser.release();
}

std::string random_bytes(std::mt19937_64& rng, std::size_t max_len) {
    std::uniform_int_distribution<int> byte(1, 255);
    std::string s(rng() % (max_len + 1), '\0');
    for (char& c : s)
        c = static_cast<char>(byte(rng));
    return s;
}

RiakObject sample_object() {
    RiakObject obj;
    obj.value = std::string("bin\0ary\r\n--data", 16);
    obj.content_type = "application/octet-stream";
    obj.vclock = "a85hYGBgzGDKBVIcypz/fgaUHjmdwZTImMfK0Ly9hS8LAA==";
    obj.set_meta("mode", "100644");
    obj.set_meta("path", percent_encode("dir/na me\xff"));
    obj.add_index("parent_bin", "dir%2Fsub");
    obj.add_index("parent_bin", "other");
    obj.add_index("Size_INT", "-42");
    return obj;
}

} // namespace

TEST_CASE("fetch requests", "[proto][messages]") {
    FetchOptions opt;
    opt.params.r = Quorum::n(2);
    opt.params.notfound_ok = false;
    opt.conditions.if_none_match = "5rtJ4ZrBjq4GkZAK";
    opt.conditions.if_modified_since = 784111777;
    auto req = make_fetch_request("riak:8098", {"", "b", "dir/file name+1"}, opt);
    REQUIRE(req.has_value());
    CHECK(req->method() == http::verb::get);
    CHECK(req->target() == "/buckets/b/keys/dir%2Ffile%20name%2B1?r=2&notfound_ok=false");
    CHECK((*req)[http::field::host] == "riak:8098");
    CHECK((*req)[http::field::accept] == "multipart/mixed, */*;q=0.5");
    CHECK((*req)[http::field::if_none_match] == "\"5rtJ4ZrBjq4GkZAK\"");
    CHECK((*req)[http::field::if_modified_since] == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(req->find(http::field::accept_encoding) == req->end());
    CHECK(req->find(http::field::content_length) == req->end());
    CHECK(req->version() == 11);

    opt = {};
    opt.head = true;
    opt.multipart_siblings = false;
    opt.conditions.if_match = "*";
    auto head = make_fetch_request("h", {"t", "b", "k"}, opt);
    REQUIRE(head.has_value());
    CHECK(head->method() == http::verb::head);
    CHECK(head->find(http::field::accept) == head->end());
    CHECK((*head)[http::field::if_match] == "*");

    opt = {};
    opt.conditions.if_match = "bad\"tag";
    CHECK(make_fetch_request("h", {"", "b", "k"}, opt).error().code == EINVAL);
    CHECK(make_fetch_request("h", {"", "b", ""}).error().code == EINVAL);
}

TEST_CASE("store requests", "[proto][messages]") {
    StoreOptions opt;
    opt.params.w = Quorum::quorum();
    opt.params.returnbody = true;
    opt.conditions.if_none_match = "*";
    const RiakObject obj = sample_object();
    auto req = make_store_request("h", {"", "b", "k"}, obj, opt);
    REQUIRE(req.has_value());
    CHECK(req->method() == http::verb::put);
    CHECK(req->target() == "/buckets/b/keys/k?w=quorum&returnbody=true");
    CHECK((*req)[http::field::content_type] == "application/octet-stream");
    CHECK((*req)[http::field::content_length] == "16");
    CHECK((*req)["X-Riak-Vclock"] == obj.vclock);
    CHECK((*req)["X-Riak-Meta-mode"] == "100644");
    CHECK((*req)[http::field::if_none_match] == "*");
    CHECK((*req)[http::field::accept] == "multipart/mixed, */*;q=0.5");
    const auto range = req->equal_range("X-Riak-Index-parent_bin");
    CHECK(std::distance(range.first, range.second) == 2);
    CHECK((*req)["X-Riak-Index-size_int"] == "-42");
    CHECK(req->body() == obj.value);

    // Given up by the caller, the value is taken into the body: the same request on the wire.
    RiakObject given = obj;
    auto taken = make_store_request("h", {"", "b", "k"}, std::move(given), opt);
    REQUIRE(taken.has_value());
    CHECK(to_wire(*taken) == to_wire(*req));

    // What a server reads back from the wire is the same object.
    const Request back = reparse(*req);
    const RiakObject seen = object_from_headers(back.base(), back.body());
    CHECK(seen.value == obj.value);
    CHECK(seen.vclock == obj.vclock);
    CHECK(seen.meta == obj.meta);
    CHECK(seen.indexes == obj.indexes);

    SECTION("server-chosen key and POST") {
        auto post = make_store_request("h", {"t", "b", ""}, RiakObject{});
        REQUIRE(post.has_value());
        CHECK(post->method() == http::verb::post);
        CHECK(post->target() == "/types/t/buckets/b/keys");
        CHECK((*post)[http::field::content_length] == "0");
        StoreOptions p;
        p.use_post = true;
        CHECK(make_store_request("h", {"", "b", "k"}, obj, p)->method() == http::verb::post);
    }

    SECTION("unsafe headers are refused") {
        const auto code = [](RiakObject o) {
            auto r = make_store_request("h", {"", "b", "k"}, o);
            return r ? 0 : r.error().code;
        };
        RiakObject o = sample_object();
        o.set_meta("path", "a\r\nX-Evil: 1");
        CHECK(code(o) == EINVAL);
        o = sample_object();
        o.set_meta("bad name", "v");
        CHECK(code(o) == EINVAL);
        o = sample_object();
        o.set_meta("path", "caf\xc3\xa9");
        CHECK(code(o) == EINVAL);
        o = sample_object();
        o.set_meta("path", " padded");
        CHECK(code(o) == EINVAL);
        o = sample_object();
        o.add_index("parent", "x");
        CHECK(code(o) == EINVAL);
        o = sample_object();
        o.add_index("n_int", "12a");
        CHECK(code(o) == EINVAL);
        o = sample_object();
        o.add_index("p_bin", "a, b");
        CHECK(code(o) == EINVAL);
        o = sample_object();
        o.add_index("p_bin", "a,b");
        CHECK(code(o) == 0);
        o = sample_object();
        o.content_type = "text";
        CHECK(code(o) == EINVAL);
        o = sample_object();
        o.vclock = "abc\n";
        CHECK(code(o) == EINVAL);
        o = sample_object();
        o.vclock = std::string(kMaxHeaderLine, 'v');
        CHECK(code(o) == EMSGSIZE);
        o = sample_object();
        o.set_meta("big", std::string(100000, 'x'));
        CHECK(code(o) == EMSGSIZE);
    }
}

TEST_CASE("no name byte reaches the wire unescaped", "[proto][messages]") {
    std::mt19937_64 rng(0x5eed0004);
    for (int i = 0; i < 3000; ++i) {
        const std::string raw_key = random_bytes(rng, 30);
        const std::string raw_bucket = random_bytes(rng, 10);
        const std::string key = escape_name(raw_key);
        const std::string bucket = escape_name(raw_bucket);
        if (key.empty() || bucket.empty()) continue;
        RiakObject obj;
        obj.value = raw_key;
        obj.set_meta("name", percent_encode(raw_key));
        obj.add_index("parent_bin", percent_encode(raw_bucket));
        auto req = make_store_request("h", {"", bucket, key}, obj);
        REQUIRE(req.has_value());
        const std::string wire = serialize(*req);
        const std::string head = wire.substr(0, wire.find("\r\n\r\n") + 4);
        for (const char c : head) {
            const auto b = static_cast<unsigned char>(c);
            REQUIRE(((b >= 0x20 && b < 0x7F) || c == '\r' || c == '\n'));
        }
        const Request back = reparse(*req);
        const ParsedTarget t = parse_target(back.target());
        REQUIRE(t.segments == std::vector<std::string>{"buckets", bucket, "keys", key});
        REQUIRE(unescape_name(t.segments[3]).value() == raw_key);
        const RiakObject seen = object_from_headers(back.base(), back.body());
        REQUIRE(percent_decode(*seen.find_meta("NAME")).value() == raw_key);
        REQUIRE(percent_decode(seen.index_values("parent_bin").at(0)).value() == raw_bucket);
    }
}

TEST_CASE("delete and props requests", "[proto][messages]") {
    DeleteOptions opt;
    opt.vclock = "a85hYGBg";
    opt.params.rw = Quorum::all();
    auto del = make_delete_request("h", {"", "b", "k"}, opt);
    REQUIRE(del.has_value());
    CHECK(del->method() == http::verb::delete_);
    CHECK(del->target() == "/buckets/b/keys/k?rw=all");
    CHECK((*del)["X-Riak-Vclock"] == "a85hYGBg");

    BucketProps props;
    props.allow_mult = false;
    props.n_val = 3;
    props.w = Quorum::n(2);
    props.dw = Quorum::one();
    auto put = make_bucket_props_request("h", {"", "b"}, props);
    REQUIRE(put.has_value());
    CHECK(put->method() == http::verb::put);
    CHECK(put->target() == "/buckets/b/props");
    CHECK((*put)[http::field::content_type] == "application/json");
    const auto j = nlohmann::json::parse(put->body());
    CHECK(j["props"]["allow_mult"] == false);
    CHECK(j["props"]["n_val"] == 3);
    CHECK(j["props"]["w"] == 2);
    CHECK(j["props"]["dw"] == "one");
}

TEST_CASE("object responses", "[proto][messages]") {
    SECTION("200 with metadata and indexes") {
        const auto res = make_response(200,
                                       {{"X-Riak-Vclock", "a85hYGBgzGDK"},
                                        {"Vary", "Accept-Encoding"},
                                        {"Link", "</buckets/b>; rel=\"up\""},
                                        {"Last-Modified", "Wed, 25 Nov 2026 19:00:00 GMT"},
                                        {"ETag", "\"3x4mPl3\""},
                                        {"Content-Type", "text/plain; charset=utf-8"},
                                        {"X-Riak-Meta-Mtime", "1700000000"},
                                        {"x-riak-index-parent_bin", "a, b"},
                                        {"x-riak-index-size_int", "7"}},
                                       "hello");
        auto r = parse_object_response(res);
        REQUIRE(r.has_value());
        CHECK(r->outcome == Outcome::ok);
        CHECK(r->vclock == "a85hYGBgzGDK");
        CHECK(r->object.value == "hello");
        CHECK(r->object.etag == "3x4mPl3");
        CHECK(r->object.content_type == "text/plain; charset=utf-8");
        CHECK(r->object.last_modified == "Wed, 25 Nov 2026 19:00:00 GMT");
        CHECK(*r->object.find_meta("MTime") == "1700000000");
        CHECK(r->object.index_values("parent_bin") == std::vector<std::string>{"a", "b"});
        CHECK(r->object.index_values("size_int") == std::vector<std::string>{"7"});
        CHECK_FALSE(r->object.deleted);
        CHECK(parse_http_date(r->object.last_modified) == std::optional<std::time_t>(1795633200));
        CHECK(res.body() == "hello"); // read from, not taken

        // Given up by the caller, the body is taken (not copied): the same object comes out.
        auto taken = parse_object_response(std::move(res));
        REQUIRE(taken.has_value());
        CHECK(taken->object.value == "hello");
        CHECK(taken->vclock == r->vclock);
        CHECK(taken->object.etag == r->object.etag);
        CHECK(taken->object.meta == r->object.meta);
        CHECK(taken->object.index_values("parent_bin") == r->object.index_values("parent_bin"));
    }
    SECTION("HEAD 200 has no body to read") {
        auto res = make_response(200, {{"Content-Type", "text/plain"}}, "");
        res.content_length(1234);
        auto r = parse_object_response(res, true);
        REQUIRE(r.has_value());
        CHECK(r->object.value.empty());
        CHECK(r->object.content_type == "text/plain");
    }
    SECTION("204, 201, 304") {
        CHECK(parse_object_response(make_response(204, {}, ""))->outcome == Outcome::no_content);
        auto created = parse_object_response(
            make_response(201, {{"Location", "/buckets/b/keys/Ab3dE9xZ"}}, ""));
        REQUIRE(created.has_value());
        CHECK(created->outcome == Outcome::created);
        CHECK(created->key == "Ab3dE9xZ");
        CHECK(parse_object_response(make_response(201, {}, "")).error().code == EPROTO);
        CHECK(parse_object_response(make_response(304, {}, ""))->outcome == Outcome::not_modified);
    }
    SECTION("404 absent and tombstone") {
        auto absent = parse_object_response(
            make_response(404, {{"Content-Type", "text/plain"}}, "not found\n"));
        REQUIRE(absent.has_value());
        CHECK(absent->outcome == Outcome::not_found);
        CHECK_FALSE(absent->object.deleted);
        CHECK(absent->vclock.empty());
        auto tomb = parse_object_response(make_response(
            404, {{"X-Riak-Deleted", "true"}, {"X-Riak-Vclock", "a85tomb"}}, "not found\n"));
        REQUIRE(tomb.has_value());
        CHECK(tomb->object.deleted);
        CHECK(tomb->vclock == "a85tomb");
        CHECK(tomb->object.vclock == "a85tomb");
    }
    SECTION("300 text list") {
        auto r = parse_object_response(
            make_response(300, {{"Content-Type", "text/plain"}, {"X-Riak-Vclock", "a85sib"}},
                          "Siblings:\n4mPDXLmRxfxHYnfhM3mj0L\n6Yp4Kj8Z3mA1cT7rQ2wS5v\n"));
        REQUIRE(r.has_value());
        CHECK(r->outcome == Outcome::siblings);
        CHECK(r->vclock == "a85sib");
        CHECK(r->vtags ==
              std::vector<std::string>{"4mPDXLmRxfxHYnfhM3mj0L", "6Yp4Kj8Z3mA1cT7rQ2wS5v"});
        CHECK(r->siblings.empty());
    }
    SECTION("300 multipart as Riak writes it") {
        const std::string body = "\r\n--Ay4OQp\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "Link: </buckets/b>; rel=\"up\"\r\n"
                                 "Etag: 1nBv7dHWsPxxp6QSf\r\n"
                                 "Last-Modified: Wed, 25 Nov 2026 19:00:00 GMT\r\n"
                                 "X-Riak-Meta-Mode: 100644\r\n"
                                 "\r\n"
                                 "first\r\nvalue\r\n"
                                 "--Ay4OQp\r\n"
                                 "Content-Type: application/octet-stream\r\n"
                                 "Etag: 2xYz\r\n"
                                 "X-Riak-Deleted: true\r\n"
                                 "\r\n"
                                 "\r\n"
                                 "--Ay4OQp--\r\n";
        auto r = parse_object_response(make_response(
            300, {{"Content-Type", "multipart/mixed; boundary=Ay4OQp"}, {"X-Riak-Vclock", "vc"}},
            body));
        REQUIRE(r.has_value());
        REQUIRE(r->siblings.size() == 2);
        CHECK(r->vtags == std::vector<std::string>{"1nBv7dHWsPxxp6QSf", "2xYz"});
        CHECK(r->siblings[0].value == "first\r\nvalue");
        CHECK(r->siblings[0].content_type == "text/plain");
        CHECK(*r->siblings[0].find_meta("mode") == "100644");
        CHECK(r->siblings[0].vclock == "vc");
        CHECK(r->siblings[1].deleted);
        CHECK(r->siblings[1].value.empty());
    }
    SECTION("300 multipart round-trips through the formatter") {
        std::vector<RiakObject> sibs(3, sample_object());
        sibs[0].etag = "v0";
        sibs[1].etag = "v1";
        sibs[1].value = "--boundary-lookalike\r\n";
        sibs[2].etag = "v2";
        sibs[2].value.clear();
        sibs[2].deleted = true;
        for (auto& s : sibs) {
            s.vclock = "vc";
            s.last_modified = "Wed, 25 Nov 2026 19:00:00 GMT";
        }
        auto r = parse_object_response(make_response(
            300,
            {{"Content-Type", "multipart/mixed; boundary=\"XyZ123\""}, {"X-Riak-Vclock", "vc"}},
            format_multipart_siblings("XyZ123", sibs)));
        REQUIRE(r.has_value());
        REQUIRE(r->siblings.size() == 3);
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(r->siblings[i].value == sibs[i].value);
            CHECK(r->siblings[i].etag == sibs[i].etag);
            CHECK(r->siblings[i].meta == sibs[i].meta);
            CHECK(r->siblings[i].indexes == sibs[i].indexes);
            CHECK(r->siblings[i].deleted == sibs[i].deleted);
            CHECK(r->siblings[i].last_modified == sibs[i].last_modified);
        }
    }
    SECTION("malformed sibling bodies") {
        CHECK(parse_object_response(make_response(300, {{"Content-Type", "text/plain"}}, "nope\n"))
                  .error()
                  .code == EPROTO);
        CHECK(parse_object_response(
                  make_response(300, {{"Content-Type", "multipart/mixed"}}, "--x\r\n\r\n--x--"))
                  .error()
                  .code == EPROTO);
        CHECK(parse_object_response(make_response(300,
                                                  {{"Content-Type", "multipart/mixed; boundary=x"}},
                                                  "\r\n--x\r\nContent-Type: a/b\r\n\r\nv\r\n"))
                  .error()
                  .code == EPROTO);
    }
}

TEST_CASE("sibling list and multipart parsing", "[proto][messages]") {
    CHECK(parse_sibling_list("Siblings:\r\nabc\r\ndef\r\n").value() ==
          std::vector<std::string>{"abc", "def"});
    CHECK(parse_sibling_list(format_sibling_list({"a", "b", "c"})).value() ==
          std::vector<std::string>{"a", "b", "c"});
    CHECK(parse_sibling_list("").error().code == EPROTO);
    CHECK(multipart_boundary("multipart/mixed; boundary=abc") == std::optional<std::string>("abc"));
    CHECK(multipart_boundary("multipart/mixed;charset=x; Boundary=\"a b\"") ==
          std::optional<std::string>("a b"));
    CHECK_FALSE(multipart_boundary("multipart/mixed").has_value());
    // Bare LF line ends, a preamble and an epilogue.
    auto parts =
        parse_multipart("preamble\n--b\nA: 1\n\nbody one\n--b\n\nbody two\n--b--\nepilogue", "b");
    REQUIRE(parts.has_value());
    REQUIRE(parts->size() == 2);
    CHECK((*parts)[0].headers == HeaderList{{"A", "1"}});
    CHECK((*parts)[0].body == "body one");
    CHECK((*parts)[1].headers.empty());
    CHECK((*parts)[1].body == "body two");
    CHECK(parse_multipart("no delimiter", "b").error().code == EPROTO);
}

TEST_CASE("status to errno table", "[proto][messages]") {
    const auto code = [](unsigned status, std::string body) {
        return error_from_response(make_response(status, {}, std::move(body))).code;
    };
    CHECK(code(400, "Missing Content-Type request header") == EINVAL);
    CHECK(code(401, "") == EACCES);
    CHECK(code(403, "") == EACCES);
    CHECK(code(404, "not found\n") == ENOENT);
    CHECK(code(406, "") == EPROTO);
    CHECK(code(409, "") == ESTALE);
    CHECK(code(412, "") == EEXIST);
    CHECK(code(431, "") == ENAMETOOLONG);
    CHECK(code(500, "Error:\n{too_large,62914760}\n") == EFBIG);
    CHECK(code(500, "Error:\n{too_many_siblings,101}\n") == EMLINK);
    CHECK(code(500, "Error:\noverload\n") == EAGAIN);
    CHECK(code(500, "Error:\n{insufficient_vnodes,0,need,1}\n") == EAGAIN);
    CHECK(code(500, "Error:\nsomething\n") == EIO);
    CHECK(code(503, "request timed out") == ETIMEDOUT);
    const Error e = error_from_response(make_response(500, {}, "Error:\n{too_large,5}\n"));
    CHECK(e.http_status == 500);
    CHECK(e.message == "HTTP 500: Error: {too_large,5}");
    CHECK(parse_object_response(make_response(412, {}, "")).error().code == EEXIST);
}

TEST_CASE("key lists", "[proto][messages]") {
    CHECK(parse_key_list(R"({"keys":["a","b/c","d e"]})").value() ==
          std::vector<std::string>{"a", "b/c", "d e"});
    CHECK(parse_key_list(R"({"buckets":["x"]})", "buckets").value() ==
          std::vector<std::string>{"x"});
    CHECK(parse_key_list(R"({"error":"timeout"})").error().code == EIO);
    CHECK(parse_key_list(R"({"keys":[1]})").error().code == EPROTO);
    CHECK(parse_key_list(R"({"keys":)").error().code == EPROTO);
    CHECK(parse_key_list(format_key_list({"caf\xc3\xa9", "q\"uote"}).value()).value() ==
          std::vector<std::string>{"caf\xc3\xa9", "q\"uote"});
    CHECK(format_key_list({"\xff"}).error().code == EINVAL);
}

TEST_CASE("streamed key lists at any chunking", "[proto][messages]") {
    std::vector<std::string> expected;
    std::string body;
    for (int obj = 0; obj < 12; ++obj) {
        nlohmann::json j;
        j["keys"] = nlohmann::json::array();
        for (int k = 0; k < obj % 4; ++k) {
            const std::string key = fmt::format("k{}-{}{{\"}}[\\]", obj, k);
            expected.push_back(key);
            j["keys"].push_back(key);
        }
        body += j.dump();
        if (obj % 3 == 0) body += "\r\n";
    }
    body += R"({"keys":[]})";
    CHECK(parse_key_stream(body).value() == expected);

    std::mt19937_64 rng(0x5eed0005);
    for (int round = 0; round < 300; ++round) {
        KeyStreamDecoder dec;
        std::vector<std::string> got;
        std::size_t pos = 0;
        while (pos < body.size()) {
            const std::size_t n = 1 + rng() % 17;
            REQUIRE(dec.feed(std::string_view(body).substr(pos, n)).has_value());
            pos += n;
            for (auto& k : dec.take_keys())
                got.push_back(std::move(k));
        }
        REQUIRE(dec.finish().has_value());
        REQUIRE(got == expected);
    }

    CHECK(parse_key_stream(R"({"keys":["a"]}{"error":"timeout"})").error().code == EIO);
    CHECK(parse_key_stream(R"({"keys":["a"]}{"keys":[)").error().code == EPROTO);
    CHECK(parse_key_stream(R"({"keys":["a"]}x)").error().code == EPROTO);
    CHECK(parse_key_stream("").value().empty());
}

TEST_CASE("2i results", "[proto][messages]") {
    auto keys = parse_index_results(R"({"keys":["k1","k2"],"continuation":"g2gCbQ=="})");
    REQUIRE(keys.has_value());
    CHECK(keys->keys == std::vector<std::string>{"k1", "k2"});
    CHECK(keys->continuation == "g2gCbQ==");
    auto terms = parse_index_results(R"({"results":[{"10":"k1"},{"11":"k2"}]})");
    REQUIRE(terms.has_value());
    CHECK(terms->terms ==
          std::vector<std::pair<std::string, std::string>>{{"10", "k1"}, {"11", "k2"}});
    CHECK(terms->continuation.empty());
    CHECK(parse_index_results(R"({"results":[{"a":"b","c":"d"}]})").error().code == EPROTO);
    CHECK(parse_index_results(R"({"error":"{indexes_not_supported,riak_kv_bitcask_backend}"})")
              .error()
              .code == EIO);
    CHECK(parse_index_results(format_index_results(*terms).value())->terms == terms->terms);
    CHECK(parse_index_results(format_index_results(*keys).value())->continuation == "g2gCbQ==");

    const std::string stream = "\r\n--sTr\r\nContent-Type: application/json\r\n\r\n"
                               R"({"keys":["a","b"]})"
                               "\r\n--sTr\r\nContent-Type: application/json\r\n\r\n"
                               R"({"keys":["c"]})"
                               "\r\n--sTr\r\nContent-Type: application/json\r\n\r\n"
                               R"({"continuation":"abc"})"
                               "\r\n--sTr--\r\n";
    auto streamed = parse_index_stream("multipart/mixed;boundary=sTr", stream);
    REQUIRE(streamed.has_value());
    CHECK(streamed->keys == std::vector<std::string>{"a", "b", "c"});
    CHECK(streamed->continuation == "abc");
}

TEST_CASE("bucket props", "[proto][messages]") {
    const std::string body = R"({"props":{"name":"b","allow_mult":false,"basic_quorum":false,
        "big_vclock":50,"chash_keyfun":{"mod":"riak_core_util","fun":"chash_std_keyfun"},
        "dvv_enabled":false,"dw":"quorum","last_write_wins":false,"n_val":3,"node_confirms":0,
        "notfound_ok":true,"pr":0,"pw":0,"r":"quorum","rw":"quorum","w":2,"precommit":[]}})";
    auto p = parse_bucket_props(body);
    REQUIRE(p.has_value());
    CHECK(p->allow_mult == std::optional<bool>(false));
    CHECK(p->notfound_ok == std::optional<bool>(true));
    CHECK(p->n_val == std::optional<std::uint32_t>(3));
    CHECK(p->r == Quorum::quorum());
    CHECK(p->w == Quorum::n(2));
    CHECK(p->pr == Quorum::n(0));
    CHECK_FALSE(p->datatype.has_value());
    CHECK(p->raw["chash_keyfun"]["mod"] == "riak_core_util");
    CHECK(parse_bucket_props(R"({"nope":{}})").error().code == EPROTO);
    CHECK(parse_bucket_props("garbage").error().code == EPROTO);

    auto typed = parse_bucket_props(R"({"props":{"datatype":"set","allow_mult":true}})");
    REQUIRE(typed.has_value());
    CHECK(typed->datatype == std::optional<std::string>("set"));

    BucketProps small;
    small.last_write_wins = true;
    CHECK(format_bucket_props(small).value() == R"({"props":{"last_write_wins":true}})");
}

TEST_CASE("ping and stats", "[proto][messages]") {
    CHECK(
        check_ping_response(make_response(200, {{"Content-Type", "text/html"}}, "OK")).has_value());
    CHECK(check_ping_response(make_response(200, {}, "nope")).error().code == EPROTO);
    CHECK(check_ping_response(make_response(503, {}, "")).error().code == ETIMEDOUT);
    auto s = parse_stats(R"({"riak_kv_version":"3.0.16","storage_backend":"riak_kv_leveled_backend",
        "ring_members":["riak@a","riak@b"],"connected_nodes":["riak@b"],
        "node_get_fsm_time_95":1234,"node_gets":10})");
    REQUIRE(s.has_value());
    CHECK(s->riak_kv_version == "3.0.16");
    CHECK(s->storage_backend == "riak_kv_leveled_backend");
    CHECK(s->ring_members.size() == 2);
    CHECK(s->connected_nodes == std::vector<std::string>{"riak@b"});
    CHECK(s->number("node_get_fsm_time_95") == std::optional<double>(1234));
    CHECK_FALSE(s->number("riak_kv_version").has_value());
    CHECK_FALSE(s->number("missing").has_value());
    CHECK(parse_stats("[1]").error().code == EPROTO);
}

TEST_CASE("set data type bodies", "[proto][messages]") {
    auto v = parse_set_value(R"({"type":"set","value":["a","b"],"context":"g2wAAAAB"})");
    REQUIRE(v.has_value());
    CHECK(v->members == std::vector<std::string>{"a", "b"});
    CHECK(v->context == "g2wAAAAB");
    CHECK(parse_set_value(R"({"type":"set","error":"notfound"})").error().code == ENOENT);
    CHECK(parse_set_value(R"({"type":"counter","value":7})").error().code == EPROTO);
    CHECK(parse_set_value(format_set_value(*v).value())->members == v->members);

    SetUpdate u;
    u.add = {"c", "d"};
    u.remove = {"a"};
    u.context = "g2wAAAAB";
    const auto body = format_set_update(u);
    REQUIRE(body.has_value());
    CHECK(
        nlohmann::json::parse(*body) ==
        nlohmann::json::parse(R"({"add_all":["c","d"],"remove_all":["a"],"context":"g2wAAAAB"})"));
    auto back = parse_set_update(*body);
    REQUIRE(back.has_value());
    CHECK(back->add == u.add);
    CHECK(back->remove == u.remove);
    CHECK(back->context == u.context);
    CHECK(format_set_update(SetUpdate{{"ok"}, {}, ""}).value() == R"({"add_all":["ok"]})");
    CHECK(format_set_update(SetUpdate{}).error().code == EINVAL);
    CHECK(format_set_update(SetUpdate{{"\xff"}, {}, ""}).error().code == EINVAL);
    auto single = parse_set_update(R"({"add":"x","remove":"y"})");
    REQUIRE(single.has_value());
    CHECK(single->add == std::vector<std::string>{"x"});
    CHECK(single->remove == std::vector<std::string>{"y"});
    CHECK(parse_set_update(R"({"increment":1})").error().code == EINVAL);
    CHECK(parse_set_update("{").error().code == EINVAL);

    auto fetch = make_set_fetch_request("h", {"sets", "d", "k"});
    REQUIRE(fetch.has_value());
    CHECK(fetch->target() == "/types/sets/buckets/d/datatypes/k");
    RequestParams rb;
    rb.returnbody = true;
    auto update = make_set_update_request("h", {"sets", "d", "k"}, u, rb);
    REQUIRE(update.has_value());
    CHECK(update->method() == http::verb::post);
    CHECK(update->target() == "/types/sets/buckets/d/datatypes/k?returnbody=true");
    CHECK((*update)[http::field::content_type] == "application/json");
    CHECK(make_set_fetch_request("h", {"", "d", "k"}).error().code == EINVAL);

    auto found =
        parse_set_fetch_response(make_response(200, {}, R"({"type":"set","value":["a"]})"));
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    CHECK((*found)->members == std::vector<std::string>{"a"});
    auto missing =
        parse_set_fetch_response(make_response(404, {}, R"({"type":"set","error":"notfound"})"));
    REQUIRE(missing.has_value());
    CHECK_FALSE(missing->has_value());
    CHECK_FALSE(parse_set_update_response(make_response(204, {}, ""))->has_value());
    CHECK(parse_set_update_response(make_response(500, {}, "Error:\n{precondition,{not_present}}"))
              .error()
              .code == EIO);
}
