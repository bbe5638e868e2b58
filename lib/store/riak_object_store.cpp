#include "lib/store/riak_object_store.hpp"

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include "lib/store/object_codec.hpp"
#include "lib/store/sibling_choice.hpp"

namespace rfs::store {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() &&
           (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

// A 404 means "absent" only when it is Riak's answer for an object: the body `not found`, or a
// tombstone's X-Riak-Deleted. Anything else (webmachine's page for an unknown bucket type, a
// proxy's page) must not make a file look absent. A HEAD carries no body to tell, so any 404
// to a HEAD is taken as absent.
std::optional<Error> check_not_found(const proto::Response& response, bool head) {
    if (response.result_int() != 404 || head) return std::nullopt;
    if (!trim(response["X-Riak-Deleted"]).empty()) return std::nullopt;
    const std::string_view body = trim(response.body());
    if (body == "not found") return std::nullopt;
    const std::string_view first = body.substr(0, std::min<std::size_t>(body.find('\n'), 200));
    Error e =
        riak::make_error(Errc::unexpected_response,
                         fmt::format("404 that is not Riak's not-found answer: {}", first), EPROTO);
    e.http_status = 404;
    return e;
}

Error unexpected(std::string_view what, unsigned status) {
    Error e = riak::make_error(Errc::unexpected_response,
                               fmt::format("{} answered {}", what, status), EPROTO);
    e.http_status = status;
    return e;
}

// What one GET or HEAD answer says: a final answer, or the siblings (or only their vtags) of
// a 300 to choose from.
struct ReadStep {
    std::optional<Result<Fetched>> answer;
    std::vector<proto::RiakObject> siblings;
    std::vector<std::string> vtags;
    std::string vclock; // of the 300: covers every sibling
    std::string etag;   // of the 300: the sibling set's own tag
};

// Takes the response's body (a value is moved into the answer, not copied); its headers stay.
ReadStep interpret(proto::Response& response, bool sent_head, bool with_value) {
    ReadStep step;
    if (auto bad = check_not_found(response, sent_head)) {
        step.answer = std::move(*bad);
        return step;
    }
    auto parsed = proto::parse_object_response(std::move(response), sent_head);
    if (!parsed) {
        step.answer = riak::from_proto(parsed.error());
        return step;
    }
    Fetched out;
    switch (parsed->outcome) {
    case proto::Outcome::ok:
        out.found = !parsed->object.deleted;
        out.vclock = std::move(parsed->vclock);
        out.etag = parsed->object.etag;
        if (out.found) out.object = from_riak_object(std::move(parsed->object), with_value);
        step.answer = std::move(out);
        return step;
    case proto::Outcome::not_found:
        out.vclock = std::move(parsed->vclock); // a tombstone's, for a re-create
        step.answer = std::move(out);
        return step;
    case proto::Outcome::siblings:
        step.siblings = std::move(parsed->siblings);
        step.vtags = std::move(parsed->vtags);
        step.vclock = std::move(parsed->vclock);
        step.etag = proto::object_from_headers(response.base(), {}).etag;
        if (!sent_head && step.siblings.empty() && step.vtags.empty())
            step.answer =
                riak::make_error(Errc::unexpected_response, "300 without any sibling", EPROTO);
        return step;
    default:
        step.answer = unexpected(sent_head ? "HEAD" : "GET", parsed->status);
        return step;
    }
}

Fetched choose(ReadStep step, bool with_value) {
    proto::RiakObject& winner = step.siblings[choose_sibling(step.siblings)];
    Fetched out;
    out.found = !winner.deleted;
    out.vclock = std::move(step.vclock); // covers every sibling: a put with it collapses them
    out.etag = std::move(step.etag);
    out.siblings = step.siblings.size();
    if (out.found) out.object = from_riak_object(std::move(winner), with_value);
    return out;
}

} // namespace

RiakObjectStore::RiakObjectStore(riak::Client& client, RiakStoreConfig config)
    : client_(client), config_(std::move(config)) {}

riak::CallOptions RiakObjectStore::call_options(bool listing) const {
    riak::CallOptions options;
    options.timeout = listing && config_.list_timeout ? config_.list_timeout : config_.timeout;
    return options;
}

Task<Fetched> RiakObjectStore::get(proto::ObjectId id) {
    return read(std::move(id), false);
}

Task<Fetched> RiakObjectStore::head(proto::ObjectId id) {
    return read(std::move(id), true);
}

Task<Fetched> RiakObjectStore::read(proto::ObjectId raw, bool head) {
    auto id = riak_object_id(raw);
    if (!id) co_return std::move(id).error();
    bool send_head = head;
    // A node that lists sibling vtags as text is read sibling by sibling; if a writer changes
    // the key in between, read again. Concurrent writers can keep that up: give up after a few.
    constexpr int kRounds = 4;
    for (int round = 0; round < kRounds; ++round) {
        proto::FetchOptions options;
        options.head = send_head;
        options.params.r = config_.r;
        options.multipart_siblings = true;
        auto request = proto::make_fetch_request("", *id, options);
        if (!request) co_return riak::from_proto(request.error());
        // execute() rather than fetch(): the 300's own ETag (for a conditional delete of a
        // sibling set) and the body of a 404 are not in ObjectResponse.
        auto call = client_.execute(std::move(*request), call_options());
        auto response = co_await std::move(call);
        if (!response) co_return std::move(response).error();
        ReadStep step = interpret(*response, send_head, !head);
        if (step.answer) co_return std::move(*step.answer);
        if (send_head) {
            // The 300 of a HEAD says only that there are siblings; choosing needs their meta.
            send_head = false;
            continue;
        }
        if (step.siblings.empty()) {
            auto parts_call = read_vtags(*id, std::move(step.vtags), step.vclock);
            auto parts = co_await std::move(parts_call);
            if (!parts) co_return std::move(parts).error();
            if (!*parts) continue; // changed meanwhile: read again
            step.siblings = std::move(**parts);
            if (step.siblings.empty())
                co_return riak::make_error(Errc::unexpected_response, "300 without any sibling",
                                           EPROTO);
        }
        co_return choose(std::move(step), !head);
    }
    co_return riak::make_error(Errc::server_error,
                               "the siblings kept changing while they were read", EAGAIN);
}

Task<std::optional<std::vector<proto::RiakObject>>>
RiakObjectStore::read_vtags(proto::ObjectId id, std::vector<std::string> vtags,
                            std::string vclock) {
    std::vector<proto::RiakObject> versions;
    for (const auto& vtag : vtags) {
        proto::FetchOptions one;
        one.params.r = config_.r;
        one.params.vtag = vtag;
        auto part_call = client_.fetch(id, std::move(one), call_options());
        auto part = co_await std::move(part_call);
        if (!part) co_return std::move(part).error();
        if (part->outcome == proto::Outcome::not_found || part->vclock != vclock)
            co_return std::nullopt;
        if (part->outcome != proto::Outcome::ok) co_return unexpected("GET ?vtag=", part->status);
        versions.push_back(std::move(part->object));
    }
    co_return versions;
}

Task<proto::ObjectResponse> RiakObjectStore::store(proto::ObjectId raw, Object object,
                                                   PutOptions options, bool return_body) {
    auto id = riak_object_id(raw);
    if (!id) co_return std::move(id).error();
    auto riak_object = to_riak_object(std::move(object), std::move(options.vclock));
    if (!riak_object) co_return std::move(riak_object).error();
    proto::StoreOptions store_options;
    store_options.params.w = config_.w;
    store_options.params.dw = options.durable ? config_.dw : proto::Quorum::n(0);
    if (return_body) store_options.params.returnbody = true;
    if (options.create_only) store_options.conditions.if_none_match = "*";
    auto call = client_.store(std::move(*id), std::move(*riak_object), std::move(store_options),
                              call_options());
    co_return co_await std::move(call);
}

Task<std::string> RiakObjectStore::put(proto::ObjectId raw, Object object, PutOptions options) {
    auto call = store(std::move(raw), std::move(object), std::move(options), false);
    auto stored = co_await std::move(call);
    if (!stored) co_return std::move(stored).error();
    switch (stored->outcome) {
    case proto::Outcome::no_content:
    case proto::Outcome::ok:
    case proto::Outcome::siblings:
        co_return std::move(stored->vclock); // Riak sends none with a plain 204
    default:
        co_return unexpected("PUT", stored->status);
    }
}

Task<Fetched> RiakObjectStore::put_and_read(proto::ObjectId raw, Object object,
                                            PutOptions options) {
    auto call = store(raw, std::move(object), std::move(options), true);
    auto stored = co_await std::move(call);
    if (!stored) co_return std::move(stored).error();
    switch (stored->outcome) {
    case proto::Outcome::ok: {
        Fetched out;
        out.found = !stored->object.deleted;
        out.vclock = std::move(stored->vclock);
        out.etag = stored->object.etag;
        if (out.found) out.object = from_riak_object(std::move(stored->object), true);
        co_return out;
    }
    case proto::Outcome::siblings:
        if (!stored->siblings.empty()) {
            ReadStep step;
            step.siblings = std::move(stored->siblings);
            step.vclock = std::move(stored->vclock);
            co_return choose(std::move(step), true);
        }
        break; // siblings as a list of vtags: read them as get() does
    case proto::Outcome::no_content:
        break; // a node that ignores returnbody: read it back
    default:
        co_return unexpected("PUT", stored->status);
    }
    auto read_call = read(std::move(raw), false);
    co_return co_await std::move(read_call);
}

// Deletes are made safe to retry by two headers together:
//   * If-Match with the ETag read: a webmachine precondition (Riak 2.x and 3.x, riak-devnode).
//     The ETag is the version's vtag (a sibling set's: a hash of its vclock), new for every
//     write, so a key re-created or changed since the read, or already deleted (a missing key
//     fails any If-Match), answers 412 and nothing is deleted. On Riak >= 3.0.13 the header
//     makes the node read the key before deleting (a DELETE without it is not checked).
//   * X-Riak-Vclock with the vclock read: the tombstone then descends only from that version.
//     Riak's check and write are not atomic; a write landing between them is concurrent with
//     the tombstone and survives as a sibling (allow_mult=true, where choose_sibling() prefers
//     live values). Without the vclock the delete would use the clock it reads itself and
//     cover that write.
// The alternatives fall short: X-Riak-Vclock alone is written blindly on >= 3.0.13 (204 even
// for a key already gone, and with allow_mult=false the newer tombstone wins over a concurrent
// re-create), and X-Riak-If-Not-Modified (3.0.13+) applies to PUT only.
// A 412 is then told apart with a HEAD: absent -> false (the retry of a delete that worked),
// present -> ESTALE (another version is there; the caller must read again).
Task<bool> RiakObjectStore::remove(proto::ObjectId raw, RemoveOptions options) {
    auto id = riak_object_id(raw);
    if (!id) co_return std::move(id).error();
    proto::DeleteOptions delete_options;
    delete_options.params.r = config_.r;
    delete_options.params.w = config_.w;
    delete_options.params.dw = options.durable ? config_.dw : proto::Quorum::n(0);
    delete_options.vclock = options.vclock;
    if (!options.etag.empty()) delete_options.conditions.if_match = options.etag;
    auto call = client_.remove(std::move(*id), std::move(delete_options), call_options());
    auto removed = co_await std::move(call);
    if (removed) {
        if (removed->outcome == proto::Outcome::no_content) co_return true;
        if (removed->outcome == proto::Outcome::not_found) co_return false;
        co_return unexpected("DELETE", removed->status);
    }
    if (options.etag.empty() || removed.error().http_status != 412)
        co_return std::move(removed).error();

    auto check = read(raw, true);
    auto now = co_await std::move(check);
    if (!now) co_return std::move(now).error();
    if (!now->found) co_return false;
    Error stale = riak::make_error(
        Errc::client_error,
        fmt::format("not deleted: the key holds another version than the one read (ETag {} "
                    "expected, {} now)",
                    options.etag, now->etag),
        ESTALE);
    stale.http_status = 412;
    co_return stale;
}

Task<std::vector<std::string>> RiakObjectStore::list_keys(proto::BucketId raw) {
    auto bucket = riak_bucket_id(raw);
    if (!bucket) co_return std::move(bucket).error();
    // keys=stream: Riak sends each partition's keys as they come instead of building the whole
    // list on the coordinating node; an error mid-stream arrives in-band and is an error here.
    auto call = client_.list_keys(std::move(*bucket), true, call_options(true));
    auto keys = co_await std::move(call);
    if (!keys) co_return std::move(keys).error();
    co_return decode_keys(*keys);
}

} // namespace rfs::store
