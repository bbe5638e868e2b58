// The object store the daemon uses: a riak::Client (pipelined, several nodes, health checks) and
// the RiakObjectStore over it, made together on the loop that will use them and stopped together.
#pragma once

#include <memory>

#include "lib/riak/client.hpp"
#include "lib/store/riak_object_store.hpp"

namespace rfs::migrate {

class RiakBackedStore final : public store::ObjectStore {
public:
    RiakBackedStore(boost::asio::io_context& context, riak::ClientConfig config,
                    store::RiakStoreConfig store_config = {})
        : client_(context, std::move(config)), store_(client_, store_config) {
        client_.start();
    }
    ~RiakBackedStore() override { client_.stop(); }

    riak::Task<store::Fetched> get(proto::ObjectId id) override { return store_.get(id); }
    riak::Task<store::Fetched> head(proto::ObjectId id) override { return store_.head(id); }
    riak::Task<std::string> put(proto::ObjectId id, store::Object object,
                                store::PutOptions options) override {
        return store_.put(std::move(id), std::move(object), std::move(options));
    }
    riak::Task<store::Fetched> put_and_read(proto::ObjectId id, store::Object object,
                                            store::PutOptions options) override {
        return store_.put_and_read(std::move(id), std::move(object), std::move(options));
    }
    riak::Task<bool> remove(proto::ObjectId id, store::RemoveOptions options) override {
        return store_.remove(std::move(id), std::move(options));
    }
    riak::Task<std::vector<std::string>> list_keys(proto::BucketId bucket) override {
        return store_.list_keys(std::move(bucket));
    }
    riak::Client& client() { return client_; }

private:
    riak::Client client_;
    store::RiakObjectStore store_;
};

} // namespace rfs::migrate
