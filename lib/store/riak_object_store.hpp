// RiakObjectStore: the ObjectStore over one rfs::riak::Client (Riak KV or riak-devnode over
// HTTP). Reads ask for siblings as multipart/mixed and choose with choose_sibling(); writes
// send the configured quorums; deletes are conditional on the ETag read (README.md).
// Threading: the Client's loop thread only (one store per Client, one Client per loop). The
// Client must outlive the store, and the store the calls made on it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lib/riak/client.hpp"
#include "lib/store/object_store.hpp"

namespace rfs::store {

struct RiakStoreConfig {
    proto::Quorum r = proto::Quorum::quorum();  // reads (GET, HEAD, the read before a delete)
    proto::Quorum w = proto::Quorum::quorum();  // writes and deletes
    proto::Quorum dw = proto::Quorum::quorum(); // durable writes (PutOptions::durable)
    // Per attempt; unset: the Client's request_timeout.
    std::optional<riak::Duration> timeout;
    // Key listings (coverage queries over every partition: slower); unset: `timeout`.
    std::optional<riak::Duration> list_timeout;
};

class RiakObjectStore final : public ObjectStore {
public:
    RiakObjectStore(riak::Client& client, RiakStoreConfig config = {});

    Task<Fetched> get(proto::ObjectId id) override;
    Task<Fetched> head(proto::ObjectId id) override;
    Task<std::string> put(proto::ObjectId id, Object object, PutOptions options) override;
    // returnbody=true: the stored value comes back with the write's answer.
    Task<Fetched> put_and_read(proto::ObjectId id, Object object, PutOptions options) override;
    Task<bool> remove(proto::ObjectId id, RemoveOptions options) override;
    Task<std::vector<std::string>> list_keys(proto::BucketId bucket) override;

    const RiakStoreConfig& config() const noexcept { return config_; }

private:
    // GET or HEAD of a Riak-named id; a HEAD that meets siblings reads them with a GET.
    Task<Fetched> read(proto::ObjectId raw, bool head);
    // The PUT both put() and put_and_read() send.
    Task<proto::ObjectResponse> store(proto::ObjectId raw, Object object, PutOptions options,
                                      bool return_body);
    // The siblings of a 300 that listed vtags only, one GET ?vtag= each; nullopt if the key
    // changed meanwhile (a vtag gone, or another vclock).
    Task<std::optional<std::vector<proto::RiakObject>>>
    read_vtags(proto::ObjectId id, std::vector<std::string> vtags, std::string vclock);
    riak::CallOptions call_options(bool listing = false) const;

    riak::Client& client_;
    RiakStoreConfig config_;
};

} // namespace rfs::store
