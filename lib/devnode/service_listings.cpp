// Riak KV HTTP resources of riak-devnode (see service.hpp): key and bucket listings and secondary
// index queries. Any thread.
//
// Section numbers in comments (§N) name the topics listed in lib/devnode/README.md.
#include "lib/devnode/service_internal.hpp"

#include <algorithm>
#include <regex>

#include <fmt/format.h>

#include "lib/devnode/encoding.hpp"

namespace rfs::devnode {

using namespace service_support;

Response Service::list_keys(Request& req, Target& t) {
    auto keys = req.param("keys");
    if (auto tm = req.param("timeout"); tm && !parse_int(*tm))
        return text(400, fmt::format("Bad timeout value \"{}\"\n", *tm));
    if (!keys || (*keys != "true" && *keys != "stream"))
        return text(400, "Bad value for keys parameter: use keys=true or keys=stream\n");
    stats_.list_keys++;
    std::vector<std::string> all;
    store_.scan_objects(t.type, t.bucket, "", [&](std::string_view k, std::string_view v) {
        auto obj = decode_object(v);
        if (obj && tombstone_expired(*obj)) return true;
        all.emplace_back(k);
        return true;
    });
    return listing("keys", all, *keys == "stream");
}

Response Service::list_buckets(Request& req, Target& t) {
    auto b = req.param("buckets");
    if (!b || (*b != "true" && *b != "stream"))
        return text(400, "Bad value for buckets parameter: use buckets=true or buckets=stream\n");
    std::vector<std::string> all;
    for (auto& bucket : store_.buckets(t.type)) {
        bool any = false;
        store_.scan_objects(t.type, bucket, "", [&](std::string_view, std::string_view v) {
            auto obj = decode_object(v);
            any = obj && !tombstone_expired(*obj);
            return !any;
        });
        if (any) all.push_back(bucket);
    }
    return listing("buckets", all, *b == "stream");
}

Response Service::index_query(Request& req, Target& t) {
    stats_.index_queries++;
    std::string field = t.rest[0];
    bool range = t.rest.size() == 3;
    bool is_bucket = field == "$bucket";
    bool is_key = field == "$key";
    bool is_int = false;
    if (!is_bucket && !is_key) {
        field = to_lower(field);
        is_int = field.size() > 4 && field.substr(field.size() - 4) == "_int";
        bool is_bin = field.size() > 4 && field.substr(field.size() - 4) == "_bin";
        if (!is_int && !is_bin)
            return text(400, fmt::format("Unknown field type for field: '{}'.\n", field));
    }
    std::string start = t.rest[1];
    std::string end = range ? t.rest[2] : t.rest[1];
    if (is_int) {
        auto a = parse_int(start), b = parse_int(end);
        if (!a || !b)
            return text(400, fmt::format("Could not parse index value '{}'.\n", !a ? start : end));
        start = std::to_string(*a);
        end = std::to_string(*b);
    }
    if (is_key && !range) end = start;

    std::optional<uint64_t> max_results;
    if (auto m = req.param("max_results")) {
        auto v = parse_int(*m);
        if (!v || *v <= 0)
            return text(400, fmt::format("Invalid \"max_results\" parameter: {}\n", *m));
        max_results = static_cast<uint64_t>(*v);
    }
    std::optional<std::pair<std::string, std::string>> cont;
    if (auto c = req.param("continuation")) {
        auto raw = base64_decode(*c);
        bool ok = raw.has_value();
        if (ok) {
            RecordReader rr(*raw);
            std::string term = rr.str();
            std::string key = rr.str();
            ok = rr.ok() && rr.at_end();
            if (ok) cont.emplace(term, key);
        }
        if (!ok) return text(400, fmt::format("Invalid continuation: {}\n", *c));
    }
    bool return_terms = false;
    if (auto rt = req.param("return_terms")) {
        auto l = to_lower(*rt);
        if (l != "true" && l != "false")
            return text(400, fmt::format("Invalid \"return_terms\" parameter: {}\n", *rt));
        return_terms = l == "true" && range && !is_bucket;
    }
    bool stream = false;
    if (auto st = req.param("stream")) {
        auto l = to_lower(*st);
        if (l != "true" && l != "false")
            return text(400, fmt::format("Invalid \"stream\" parameter: {}\n", *st));
        stream = l == "true";
    }
    if (auto tm = req.param("timeout"); tm) {
        auto v = parse_int(*tm);
        if (!v || *v < 0) return text(400, fmt::format("Invalid \"timeout\" parameter: {}\n", *tm));
    }
    std::optional<std::regex> regex;
    if (auto re = req.param("term_regex")) {
        if (!range || is_int || is_bucket)
            return text(400, "Can not use term regular expressions on integer queries\n");
        try {
            regex.emplace(*re);
        } catch (const std::regex_error&) {
            return text(400, fmt::format("Invalid term regular expression {}\n", *re));
        }
    }

    std::vector<std::pair<std::string, std::string>> results; // term, key
    auto within = [&](const std::string& term) {
        if (is_int) return *parse_int(term) <= *parse_int(end);
        return term <= end;
    };
    auto accept_more = [&] { return !max_results || results.size() < *max_results; };
    if (is_bucket || is_key) {
        std::string from = is_bucket ? "" : start;
        if (cont) from = cont->second;
        store_.scan_objects(t.type, t.bucket, from, [&](std::string_view k, std::string_view v) {
            std::string key(k);
            if (cont && key == cont->second) return true;
            if (is_key && key > end) return false;
            auto obj = decode_object(v);
            if (obj && tombstone_expired(*obj)) return true;
            results.emplace_back(key, key);
            return accept_more();
        });
    } else {
        std::string from = cont ? cont->first : start;
        std::optional<std::string> after;
        if (cont) after = cont->second;
        store_.scan_index(t.type, t.bucket, field, is_int, from, after,
                          [&](const std::string& term, std::string_view key) {
                              if (!within(term)) return false;
                              if (regex && !std::regex_search(term, *regex)) return true;
                              results.emplace_back(term, std::string(key));
                              return accept_more();
                          });
    }

    auto body_of = [&](size_t from, size_t to) {
        json j;
        if (return_terms) {
            json arr = json::array();
            for (size_t i = from; i < to; ++i)
                arr.push_back(json{{results[i].first, results[i].second}});
            j["results"] = arr;
        } else {
            json arr = json::array();
            for (size_t i = from; i < to; ++i)
                arr.push_back(results[i].second);
            j["keys"] = arr;
        }
        return j;
    };
    std::optional<std::string> continuation;
    if (max_results && results.size() == *max_results && !results.empty()) {
        RecordWriter w;
        w.str(results.back().first);
        w.str(results.back().second);
        continuation = base64_encode(w.data());
    }
    Response r;
    r.status = 200;
    if (!stream) {
        r.set("Content-Type", "application/json");
        json j = body_of(0, results.size());
        if (continuation) j["continuation"] = *continuation;
        r.body = json_dump(j);
        return r;
    }
    std::string boundary = random_base62(96);
    r.set("Content-Type", "multipart/mixed;boundary=" + boundary);
    r.chunked = true;
    auto part = [&](const json& j) {
        return "\r\n--" + boundary + "\r\nContent-Type: application/json\r\n\r\n" + json_dump(j);
    };
    constexpr size_t kBatch = 1000;
    for (size_t i = 0; i < results.size(); i += kBatch)
        r.chunks.push_back(part(body_of(i, std::min(i + kBatch, results.size()))));
    if (continuation) r.chunks.push_back(part(json{{"continuation", *continuation}}));
    r.chunks.push_back("\r\n--" + boundary + "--\r\n");
    return r;
}

} // namespace rfs::devnode
