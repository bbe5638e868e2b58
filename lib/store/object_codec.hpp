// Translation between the store's raw-byte names and objects and what goes over Riak's HTTP
// API: name escaping (proto::escape_name) with the same validation the request builders apply,
// store::Object <-> proto::RiakObject, and decoding of listed keys. Shared by RiakObjectStore
// and MemoryObjectStore so both refuse and return exactly the same things.
// Pure functions over values: any thread.
#pragma once

#include <string>
#include <vector>

#include "lib/riak/errors.hpp"
#include "lib/store/object_store.hpp"
#include "proto/riak_messages.hpp"
#include "proto/riak_paths.hpp"

namespace rfs::store {

// Raw bucket and key -> Riak names (the type is kept). EINVAL for an empty bucket or key,
// ENAMETOOLONG when the key or the request target is too long for Riak.
Result<proto::ObjectId> riak_object_id(const proto::ObjectId& raw);
Result<proto::BucketId> riak_bucket_id(const proto::BucketId& raw);

// The RiakObject a put sends: meta names lower-cased; EINVAL for a name that is not a token,
// a name given twice, or a value or content type that cannot travel as a header unchanged.
Result<proto::RiakObject> to_riak_object(Object object, std::string vclock);

// A version as read: meta names lower-cased; the value dropped unless `with_value`.
Object from_riak_object(proto::RiakObject object, bool with_value);

// Listed Riak keys -> raw keys; keys that are not escape_name() output are left out.
std::vector<std::string> decode_keys(const std::vector<std::string>& riak_keys);

// Value and metadata bytes, as the client counts them against max_object_size.
std::size_t object_size(const proto::RiakObject& object);

} // namespace rfs::store
