// MemoryObjectStore: an in-memory ObjectStore for unit tests of the layers above, with the
// semantics of RiakObjectStore over Riak KV >= 3.0.13 / riak-devnode:
//   * the same name escaping and validation (object_codec.hpp, proto's request builders), the
//     same size limit, EEXIST for create_only on an existing key;
//   * causality: each key has a counter; a vclock "mem1.<incarnation>.<counter>" covers the
//     versions that existed when it was read. In a bucket with allow_mult (default: false in
//     the default type "", true in any other type, like Riak) a write or delete whose vclock
//     does not cover a version keeps it as a sibling; otherwise the write replaces everything;
//   * deletes write tombstones (reaped at once unless keep_tombstones; then list_keys() lists
//     them until reap_tombstones(), as Riak does for delete_mode ms), and the If-Match ETag
//     check of RemoveOptions::etag with the same false / ESTALE answers;
//   * put() returns "" (Riak sends no vclock on a plain 204).
// For tests: inject_sibling() adds a concurrent version; fail_next() and set_unreachable()
// make calls fail (optionally after applying the operation: an answer lost on the way);
// calls() logs every call in order.
// Every call completes through the io_context given: it posts to it and resumes from there
// before doing its work, so a caller sees the same interleavings as with a real node.
// Threading: that io_context's thread only (test controls too, or while it is not running).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "lib/store/object_store.hpp"
#include "proto/riak_messages.hpp"

namespace rfs::store {

struct MemoryStoreOptions {
    bool keep_tombstones = false;                        // false: like delete_mode=immediate
    std::size_t max_object_size = std::size_t{50} << 20; // as riak::ClientConfig
};

class MemoryObjectStore final : public ObjectStore {
public:
    enum class Op { get, head, put, remove, list_keys };
    struct LoggedCall {
        Op op;
        proto::ObjectId id; // list_keys: the bucket, key ""
    };

    explicit MemoryObjectStore(boost::asio::io_context& context, MemoryStoreOptions options = {});

    Task<Fetched> get(proto::ObjectId id) override;
    Task<Fetched> head(proto::ObjectId id) override;
    Task<std::string> put(proto::ObjectId id, Object object, PutOptions options) override;
    Task<bool> remove(proto::ObjectId id, RemoveOptions options) override;
    Task<std::vector<std::string>> list_keys(proto::BucketId bucket) override;

    // ---- Test controls ----
    void set_allow_mult(const proto::BucketId& bucket, bool allow_mult);
    // Adds `object` as a version concurrent with all others (whatever allow_mult says), as two
    // writers without each other's vclock make. Returns its ETag.
    std::string inject_sibling(const proto::ObjectId& id, Object object, bool tombstone = false);
    // The next `count` calls fail with `code` (its default errno; http_status 503 for
    // server_error). With `applied`, the operation is carried out first and its answer lost.
    void fail_next(std::size_t count, Errc code, bool applied = false);
    // While set, every call fails with connection_refused and changes nothing.
    void set_unreachable(bool unreachable) { unreachable_ = unreachable; }
    void reap_tombstones();
    const std::vector<LoggedCall>& calls() const noexcept { return calls_; }
    void clear_calls() { calls_.clear(); }
    // Live and tombstone versions currently held for `id` (0: no entry).
    std::size_t versions(const proto::ObjectId& id) const;

private:
    struct Version {
        proto::RiakObject object; // value, content type, meta, etag, deleted
        std::uint64_t dot = 0;    // the key's counter when it was written
    };
    struct Entry {
        std::uint64_t incarnation = 0;
        std::uint64_t counter = 0;
        std::vector<Version> versions;
        bool live() const;
    };
    using BucketKey = std::pair<std::string, std::string>; // type, bucket (raw)

    // Posts to the context and resumes from there.
    boost::asio::awaitable<void> hop();
    // The injected failure for the call now running, if any: its error is answered instead of
    // the operation's result, and the operation is carried out first only if `apply`.
    struct Fault {
        bool fail = false;
        bool apply = false;
        Error error;
    };
    Fault take_fault();

    Result<Fetched> do_read(const proto::ObjectId& id, bool head) const;
    Result<std::string> do_put(const proto::ObjectId& id, Object object, const PutOptions& o);
    Result<bool> do_remove(const proto::ObjectId& id, const RemoveOptions& o);
    Result<std::vector<std::string>> do_list(const proto::BucketId& bucket) const;

    bool allow_mult(const proto::ObjectId& id) const;
    std::string vclock_of(const Entry& e) const;
    std::string etag_of(const Entry& e) const;
    // Replaces the versions `vclock` covers (all of them without allow_mult) by `version`.
    Result<void> write(const proto::ObjectId& id, const std::string& vclock, Version version);
    const Entry* find(const proto::ObjectId& id) const;

    boost::asio::io_context& context_;
    MemoryStoreOptions options_;
    std::map<BucketKey, std::map<std::string, Entry>> buckets_;
    std::map<BucketKey, bool> allow_mult_;
    std::uint64_t next_incarnation_ = 1;
    std::size_t fail_count_ = 0;
    Errc fail_code_ = Errc::ok;
    bool fail_applied_ = false;
    bool unreachable_ = false;
    std::vector<LoggedCall> calls_;
};

} // namespace rfs::store
