// LevelDB-backed storage of riak-devnode: objects, their secondary-index entries, bucket
// properties and bucket types, all in one database so an object and its index entries change in
// one atomic WriteBatch.
//
// Key layout (lp(x) = 4-byte big-endian length + bytes):
//   'o' lp(type) lp(bucket) key                     -> encode_object()
//   'i' lp(type) lp(bucket) lp(field) term key      -> "" (term: _int = 8 sortable bytes,
//                                                       _bin = bytes with 0x00 -> 0x00 0xff, then
//                                                       0x00 0x00)
//   'p' lp(type) bucket                             -> JSON object of the bucket's own properties
//   't' type                                        -> JSON object of a bucket type's properties
//
// Thread safety: every method may be called from any thread (LevelDB is thread safe). Callers that
// read-modify-write an object hold key_mutex(type, bucket, key) around the read and the write.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lib/devnode/object.hpp"

namespace leveldb {
class DB;
class FilterPolicy;
} // namespace leveldb

namespace rfs::devnode {

// A read that failed for a reason other than absence (I/O error, corruption): the request that
// made it answers 500, never 404.
struct StoreError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Store {
public:
    // Opens (creating if needed) the database under `dir`. On failure returns nullptr and sets
    // `error` to a one-line reason.
    static std::unique_ptr<Store> open(const std::string& dir, std::string& error);
    ~Store();

    std::mutex& key_mutex(std::string_view type, std::string_view bucket, std::string_view key);

    // nullopt: absent. Throws StoreError when the read fails or the stored bytes are corrupt.
    std::optional<Object> get(std::string_view type, std::string_view bucket, std::string_view key);
    // Writes `obj` (replacing `old`'s index entries). `sync` makes it a LevelDB sync write (fsync
    // of the log before returning). Returns false and sets `error` on failure.
    // `encoded` is encode_object(obj) when the caller already has it.
    bool put(std::string_view type, std::string_view bucket, std::string_view key,
             const std::optional<Object>& old, const Object& obj, bool sync, std::string& error,
             const std::string* encoded = nullptr);
    bool remove(std::string_view type, std::string_view bucket, std::string_view key,
                const std::optional<Object>& old, bool sync, std::string& error);

    // Objects of a bucket in key order starting at `from` (inclusive); `fn` returns false to stop.
    void scan_objects(std::string_view type, std::string_view bucket, std::string_view from,
                      const std::function<bool(std::string_view key, std::string_view value)>& fn);
    std::vector<std::string> buckets(std::string_view type);

    // Index entries of `field` in (term, key) order starting at term `from_term` (inclusive), or
    // just after (from_term, after_key) when `after_key` is set. For _int fields terms are decimal
    // strings. `fn` returns false to stop.
    void scan_index(std::string_view type, std::string_view bucket, std::string_view field,
                    bool is_int, std::string_view from_term,
                    const std::optional<std::string>& after_key,
                    const std::function<bool(const std::string& term, std::string_view key)>& fn);

    std::optional<std::string> get_bucket_props(std::string_view type, std::string_view bucket);
    bool put_bucket_props(std::string_view type, std::string_view bucket, const std::string& json);
    bool delete_bucket_props(std::string_view type, std::string_view bucket);
    std::optional<std::string> get_type(std::string_view type);
    bool put_type(std::string_view type, const std::string& json);

private:
    Store(leveldb::DB* db, const leveldb::FilterPolicy* filter);
    leveldb::DB* db_;
    const leveldb::FilterPolicy* filter_;
    std::array<std::mutex, 256> key_mutexes_;
};

// Index term encodings, exposed for tests. `_int` terms must already be validated integers.
std::string encode_index_term(std::string_view term, bool is_int);

} // namespace rfs::devnode
