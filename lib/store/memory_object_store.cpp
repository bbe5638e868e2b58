#include "lib/store/memory_object_store.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <string_view>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include "lib/store/object_codec.hpp"
#include "lib/store/sibling_choice.hpp"

namespace rfs::store {

namespace {

constexpr std::string_view kVclockPrefix = "mem1.";

struct Clock {
    std::uint64_t incarnation = 0;
    std::uint64_t counter = 0;
};

// "mem1.<incarnation>.<counter>"; nullopt for anything else (Riak and devnode answer 500).
std::optional<Clock> parse_vclock(std::string_view s) {
    if (s.substr(0, kVclockPrefix.size()) != kVclockPrefix) return std::nullopt;
    s.remove_prefix(kVclockPrefix.size());
    const auto dot = s.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    Clock c;
    const auto a = std::from_chars(s.data(), s.data() + dot, c.incarnation);
    const auto b = std::from_chars(s.data() + dot + 1, s.data() + s.size(), c.counter);
    if (a.ec != std::errc() || a.ptr != s.data() + dot || b.ec != std::errc() ||
        b.ptr != s.data() + s.size() || dot == 0 || dot + 1 == s.size())
        return std::nullopt;
    return c;
}

Error precondition_failed(std::string message, int sys_errno) {
    Error e = riak::make_error(Errc::client_error, std::move(message), sys_errno);
    e.http_status = 412;
    return e;
}

} // namespace

bool MemoryObjectStore::Entry::live() const {
    return std::any_of(versions.begin(), versions.end(),
                       [](const Version& v) { return !v.object.deleted; });
}

MemoryObjectStore::MemoryObjectStore(boost::asio::io_context& context, MemoryStoreOptions options)
    : context_(context), options_(options) {}

// ---- Calls --------------------------------------------------------------------------------

boost::asio::awaitable<void> MemoryObjectStore::hop() {
    auto posted = boost::asio::post(context_, boost::asio::use_awaitable);
    co_await std::move(posted);
}

MemoryObjectStore::Fault MemoryObjectStore::take_fault() {
    if (unreachable_)
        return {true, false,
                riak::make_error(Errc::connection_refused,
                                 "memory store: node unreachable (injected)", ECONNREFUSED)};
    if (fail_count_ == 0) return {};
    --fail_count_;
    Error e = riak::make_error(
        fail_code_, fmt::format("memory store: injected {}", riak::to_string(fail_code_)));
    if (fail_code_ == Errc::server_error) {
        e.http_status = 503;
        e.sys_errno = ETIMEDOUT; // proto's errno for Riak's 503 "request timed out"
    }
    return {true, fail_applied_, std::move(e)};
}

Task<Fetched> MemoryObjectStore::get(proto::ObjectId id) {
    calls_.push_back({Op::get, id});
    auto posted = hop();
    co_await std::move(posted);
    Fault fault = take_fault();
    if (fault.fail) co_return std::move(fault.error); // reads change nothing: `apply` is moot
    co_return do_read(id, false);
}

Task<Fetched> MemoryObjectStore::head(proto::ObjectId id) {
    calls_.push_back({Op::head, id});
    auto posted = hop();
    co_await std::move(posted);
    Fault fault = take_fault();
    if (fault.fail) co_return std::move(fault.error);
    co_return do_read(id, true);
}

Task<std::string> MemoryObjectStore::put(proto::ObjectId id, Object object, PutOptions options) {
    calls_.push_back({Op::put, id});
    auto posted = hop();
    co_await std::move(posted);
    Fault fault = take_fault();
    if (fault.fail && !fault.apply) co_return std::move(fault.error);
    auto result = do_put(id, std::move(object), options);
    if (fault.fail) co_return std::move(fault.error);
    co_return result;
}

Task<bool> MemoryObjectStore::remove(proto::ObjectId id, RemoveOptions options) {
    calls_.push_back({Op::remove, id});
    auto posted = hop();
    co_await std::move(posted);
    Fault fault = take_fault();
    if (fault.fail && !fault.apply) co_return std::move(fault.error);
    auto result = do_remove(id, options);
    if (fault.fail) co_return std::move(fault.error);
    co_return result;
}

Task<std::vector<std::string>> MemoryObjectStore::list_keys(proto::BucketId bucket) {
    calls_.push_back({Op::list_keys, proto::ObjectId{bucket.type, bucket.bucket, ""}});
    auto posted = hop();
    co_await std::move(posted);
    Fault fault = take_fault();
    if (fault.fail) co_return std::move(fault.error);
    co_return do_list(bucket);
}

// ---- The operations -----------------------------------------------------------------------

Result<Fetched> MemoryObjectStore::do_read(const proto::ObjectId& id, bool head) const {
    if (auto rid = riak_object_id(id); !rid) return std::move(rid).error();
    const Entry* entry = find(id);
    Fetched out;
    if (!entry) return out;
    out.vclock = vclock_of(*entry);
    if (!entry->live()) return out; // a tombstone: not found, with its vclock
    std::vector<proto::RiakObject> all;
    all.reserve(entry->versions.size());
    for (const auto& v : entry->versions)
        all.push_back(v.object);
    proto::RiakObject& winner = all[choose_sibling(all)];
    out.found = !winner.deleted;
    out.etag = etag_of(*entry);
    out.siblings = all.size();
    out.object = from_riak_object(std::move(winner), !head);
    return out;
}

Result<std::string> MemoryObjectStore::do_put(const proto::ObjectId& id, Object object,
                                              const PutOptions& options) {
    auto rid = riak_object_id(id);
    if (!rid) return std::move(rid).error();
    auto riak_object = to_riak_object(std::move(object), options.vclock);
    if (!riak_object) return std::move(riak_object).error();
    if (const auto size = object_size(*riak_object); size > options_.max_object_size)
        return riak::make_error(Errc::object_too_large,
                                fmt::format("object of {} bytes is larger than the maximum of {} "
                                            "bytes; not sent",
                                            size, options_.max_object_size));
    // The request the real store would send, for its validation of headers and names.
    proto::StoreOptions store_options;
    if (options.create_only) store_options.conditions.if_none_match = "*";
    if (auto request = proto::make_store_request("memory", *rid, *riak_object, store_options);
        !request)
        return riak::from_proto(request.error());

    const Entry* entry = find(id);
    if (options.create_only && entry && entry->live())
        return precondition_failed("412 Precondition Failed: the key exists (If-None-Match: *)",
                                   EEXIST);
    if (riak_object->content_type.empty()) riak_object->content_type = "application/octet-stream";
    Version version;
    version.object = std::move(*riak_object);
    version.object.vclock.clear();
    if (auto written = write(id, options.vclock, std::move(version)); !written)
        return std::move(written).error();
    return std::string(); // like Riak's 204: no vclock
}

Result<bool> MemoryObjectStore::do_remove(const proto::ObjectId& id, const RemoveOptions& options) {
    if (auto rid = riak_object_id(id); !rid) return std::move(rid).error();
    const Entry* entry = find(id);
    const bool exists = entry && entry->live();
    if (!options.etag.empty()) {
        // If-Match: a missing key fails it (-> false, as RiakObjectStore tells it apart), and so
        // does any other version (-> ESTALE).
        if (!exists) return false;
        if (etag_of(*entry) != options.etag)
            return precondition_failed(
                fmt::format("not deleted: the key holds another version than the one read (ETag "
                            "{} expected, {} now)",
                            options.etag, etag_of(*entry)),
                ESTALE);
    }
    std::string clock = options.vclock;
    if (clock.empty()) {
        // Riak reads the key itself: 404 when absent, else its current clock covers everything.
        if (!exists) return false;
        clock = vclock_of(*entry);
    }
    // With a vclock Riak (>= 3.0.13) writes the tombstone without looking: 204 even if absent.
    Version tombstone;
    tombstone.object.deleted = true;
    if (auto written = write(id, clock, std::move(tombstone)); !written)
        return std::move(written).error();
    return true;
}

Result<std::vector<std::string>> MemoryObjectStore::do_list(const proto::BucketId& bucket) const {
    if (auto rb = riak_bucket_id(bucket); !rb) return std::move(rb).error();
    std::vector<std::string> keys;
    auto it = buckets_.find(BucketKey{bucket.type, bucket.bucket});
    if (it == buckets_.end()) return keys;
    keys.reserve(it->second.size());
    for (const auto& [key, entry] : it->second)
        keys.push_back(key); // tombstones too, while they are kept (as Riak lists them)
    return keys;
}

// ---- Causality ----------------------------------------------------------------------------

Result<void> MemoryObjectStore::write(const proto::ObjectId& id, const std::string& vclock,
                                      Version version) {
    std::optional<Clock> context;
    if (!vclock.empty()) {
        context = parse_vclock(vclock);
        if (!context) {
            Error e = riak::make_error(Errc::server_error, "500 Error: {badarg,bad_vclock}", EIO);
            e.http_status = 500;
            return e;
        }
    }
    auto& keys = buckets_[BucketKey{id.type, id.bucket}];
    auto [it, created] = keys.try_emplace(id.key);
    Entry& entry = it->second;
    if (created) entry.incarnation = next_incarnation_++;
    if (!allow_mult(id)) {
        entry.versions.clear(); // the newest write wins, as Riak's timestamps decide
    } else if (context && context->incarnation == entry.incarnation) {
        std::erase_if(entry.versions, [&](const Version& v) { return v.dot <= context->counter; });
    }
    version.dot = ++entry.counter;
    version.object.etag = fmt::format("e{}x{}", entry.incarnation, entry.counter);
    entry.versions.push_back(std::move(version));
    if (!entry.live() && !options_.keep_tombstones) keys.erase(it);
    return {};
}

bool MemoryObjectStore::allow_mult(const proto::ObjectId& id) const {
    auto it = allow_mult_.find(BucketKey{id.type, id.bucket});
    if (it != allow_mult_.end()) return it->second;
    return !id.type.empty(); // Riak: false in the default type, true in created types
}

std::string MemoryObjectStore::vclock_of(const Entry& e) const {
    return fmt::format("{}{}.{}", kVclockPrefix, e.incarnation, e.counter);
}

std::string MemoryObjectStore::etag_of(const Entry& e) const {
    if (e.versions.size() == 1) return e.versions.front().object.etag;
    return fmt::format("s{}x{}", e.incarnation, e.counter); // a sibling set's: from its clock
}

const MemoryObjectStore::Entry* MemoryObjectStore::find(const proto::ObjectId& id) const {
    auto b = buckets_.find(BucketKey{id.type, id.bucket});
    if (b == buckets_.end()) return nullptr;
    auto k = b->second.find(id.key);
    return k == b->second.end() ? nullptr : &k->second;
}

// ---- Test controls ------------------------------------------------------------------------

void MemoryObjectStore::set_allow_mult(const proto::BucketId& bucket, bool allow_mult) {
    allow_mult_[BucketKey{bucket.type, bucket.bucket}] = allow_mult;
}

std::string MemoryObjectStore::inject_sibling(const proto::ObjectId& id, Object object,
                                              bool tombstone) {
    auto riak_object = to_riak_object(std::move(object), {});
    if (!riak_object) throw std::invalid_argument(riak_object.error().describe());
    auto& keys = buckets_[BucketKey{id.type, id.bucket}];
    auto [it, created] = keys.try_emplace(id.key);
    Entry& entry = it->second;
    if (created) entry.incarnation = next_incarnation_++;
    Version version;
    version.object = std::move(*riak_object);
    if (version.object.content_type.empty())
        version.object.content_type = "application/octet-stream";
    if (tombstone) {
        version.object = proto::RiakObject{};
        version.object.deleted = true;
    }
    version.dot = ++entry.counter;
    version.object.etag = fmt::format("e{}x{}", entry.incarnation, entry.counter);
    std::string etag = version.object.etag;
    entry.versions.push_back(std::move(version));
    return etag;
}

void MemoryObjectStore::fail_next(std::size_t count, Errc code, bool applied) {
    fail_count_ = count;
    fail_code_ = code;
    fail_applied_ = applied;
}

void MemoryObjectStore::reap_tombstones() {
    for (auto& [bucket, keys] : buckets_)
        std::erase_if(keys, [](const auto& kv) { return !kv.second.live(); });
}

std::size_t MemoryObjectStore::versions(const proto::ObjectId& id) const {
    const Entry* entry = find(id);
    return entry ? entry->versions.size() : 0;
}

} // namespace rfs::store
