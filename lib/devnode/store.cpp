// LevelDB storage of riak-devnode (see store.hpp). Any thread.
#include "lib/devnode/store.hpp"

#include <charconv>
#include <filesystem>

#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include "lib/devnode/encoding.hpp"

namespace rfs::devnode {

namespace {

void append_lp(std::string& out, std::string_view s) {
    auto n = static_cast<uint32_t>(s.size());
    out += static_cast<char>(n >> 24);
    out += static_cast<char>(n >> 16);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n);
    out.append(s);
}

std::string bucket_prefix(char tag, std::string_view type, std::string_view bucket) {
    std::string k(1, tag);
    append_lp(k, type);
    append_lp(k, bucket);
    return k;
}

std::string object_key(std::string_view type, std::string_view bucket, std::string_view key) {
    std::string k = bucket_prefix('o', type, bucket);
    k.append(key);
    return k;
}

std::string field_prefix(std::string_view type, std::string_view bucket, std::string_view field) {
    std::string k = bucket_prefix('i', type, bucket);
    append_lp(k, field);
    return k;
}

bool field_is_int(std::string_view field) {
    return field.size() >= 4 && field.substr(field.size() - 4) == "_int";
}

// The 2i entry of `key` for one (field, term) pair.
std::string index_entry_key(std::string_view type, std::string_view bucket, std::string_view key,
                            const std::pair<std::string, std::string>& entry) {
    std::string k = field_prefix(type, bucket, entry.first);
    k += encode_index_term(entry.second, field_is_int(entry.first));
    k.append(key);
    return k;
}

std::string props_key(std::string_view type, std::string_view bucket) {
    std::string k(1, 'p');
    append_lp(k, type);
    k.append(bucket);
    return k;
}

leveldb::WriteOptions write_options(bool sync) {
    leveldb::WriteOptions wo;
    wo.sync = sync;
    return wo;
}

// Applies `batch` atomically; on failure leaves LevelDB's reason in `error`.
bool commit(leveldb::DB* db, leveldb::WriteBatch& batch, bool sync, std::string& error) {
    leveldb::Status st = db->Write(write_options(sync), &batch);
    if (!st.ok()) {
        error = st.ToString();
        return false;
    }
    return true;
}

// Smallest string greater than every string with this prefix ("" if none).
std::string prefix_successor(std::string p) {
    while (!p.empty()) {
        auto c = static_cast<uint8_t>(p.back());
        if (c != 0xff) {
            p.back() = static_cast<char>(c + 1);
            return p;
        }
        p.pop_back();
    }
    return p;
}

bool starts_with(const leveldb::Slice& s, std::string_view p) {
    return s.size() >= p.size() && std::string_view(s.data(), p.size()) == p;
}

// Decodes an index term at the start of `rest`; advances `rest` to the key.
std::string decode_index_term(std::string_view& rest, bool is_int) {
    if (is_int) {
        if (rest.size() < 8) return {};
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i)
            u = (u << 8) | static_cast<uint8_t>(rest[i]);
        rest.remove_prefix(8);
        return std::to_string(static_cast<int64_t>(u ^ (1ULL << 63)));
    }
    std::string term;
    size_t i = 0;
    while (i + 1 < rest.size()) {
        if (rest[i] == '\0') {
            if (rest[i + 1] == '\0') {
                rest.remove_prefix(i + 2);
                return term;
            }
            term += '\0';
            i += 2;
        } else {
            term += rest[i++];
        }
    }
    rest = {};
    return term;
}

} // namespace

std::string encode_index_term(std::string_view term, bool is_int) {
    std::string out;
    if (is_int) {
        int64_t v = 0;
        std::from_chars(term.data(), term.data() + term.size(), v);
        uint64_t u = static_cast<uint64_t>(v) ^ (1ULL << 63);
        for (int i = 7; i >= 0; --i)
            out += static_cast<char>((u >> (8 * i)) & 0xff);
        return out;
    }
    for (char c : term) {
        out += c;
        if (c == '\0') out += '\xff';
    }
    out += '\0';
    out += '\0';
    return out;
}

std::unique_ptr<Store> Store::open(const std::string& dir, std::string& error) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        error = "cannot create data directory " + dir + ": " + ec.message();
        return nullptr;
    }
    if (!std::filesystem::is_directory(dir, ec)) {
        error = "data directory " + dir + " is not a directory";
        return nullptr;
    }
    leveldb::Options options;
    options.create_if_missing = true;
    options.write_buffer_size = 64 << 20;
    options.max_file_size = 64 << 20;
    options.filter_policy = leveldb::NewBloomFilterPolicy(10);
    leveldb::DB* db = nullptr;
    leveldb::Status st = leveldb::DB::Open(options, dir + "/leveldb", &db);
    if (!st.ok()) {
        delete options.filter_policy;
        error = "cannot open data directory " + dir + ": " + st.ToString();
        return nullptr;
    }
    return std::unique_ptr<Store>(new Store(db, options.filter_policy));
}

Store::Store(leveldb::DB* db, const leveldb::FilterPolicy* filter) : db_(db), filter_(filter) {}

Store::~Store() {
    delete db_;
    delete filter_;
}

std::mutex& Store::key_mutex(std::string_view type, std::string_view bucket, std::string_view key) {
    uint64_t h = fnv1a64(key, fnv1a64(bucket, fnv1a64(type)));
    return key_mutexes_[h % key_mutexes_.size()];
}

std::optional<Object> Store::get(std::string_view type, std::string_view bucket,
                                 std::string_view key) {
    std::string value;
    leveldb::Status st = db_->Get(leveldb::ReadOptions(), object_key(type, bucket, key), &value);
    if (st.IsNotFound()) return std::nullopt;
    // A storage failure is never "not found" (the rule riakfs itself lives by): the exception
    // becomes a 500 (Server::call_service).
    if (!st.ok()) throw StoreError("storage read failed: " + st.ToString());
    auto obj = decode_object(value);
    if (!obj) throw StoreError("stored object is corrupt");
    return obj;
}

bool Store::put(std::string_view type, std::string_view bucket, std::string_view key,
                const std::optional<Object>& old, const Object& obj, bool sync, std::string& error,
                const std::string* encoded) {
    leveldb::WriteBatch batch;
    auto index_key = [&](const std::pair<std::string, std::string>& e) {
        return index_entry_key(type, bucket, key, e);
    };
    auto new_entries = obj.index_entries();
    if (old) {
        for (const auto& e : old->index_entries()) {
            if (!std::binary_search(new_entries.begin(), new_entries.end(), e))
                batch.Delete(index_key(e));
        }
    }
    for (const auto& e : new_entries)
        batch.Put(index_key(e), "");
    if (encoded != nullptr) {
        batch.Put(object_key(type, bucket, key), *encoded);
    } else {
        batch.Put(object_key(type, bucket, key), encode_object(obj));
    }
    return commit(db_, batch, sync, error);
}

bool Store::remove(std::string_view type, std::string_view bucket, std::string_view key,
                   const std::optional<Object>& old, bool sync, std::string& error) {
    leveldb::WriteBatch batch;
    if (old) {
        for (const auto& e : old->index_entries())
            batch.Delete(index_entry_key(type, bucket, key, e));
    }
    batch.Delete(object_key(type, bucket, key));
    return commit(db_, batch, sync, error);
}

void Store::scan_objects(
    std::string_view type, std::string_view bucket, std::string_view from,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) {
    std::string prefix = bucket_prefix('o', type, bucket);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    for (it->Seek(prefix + std::string(from)); it->Valid() && starts_with(it->key(), prefix);
         it->Next()) {
        std::string_view k(it->key().data() + prefix.size(), it->key().size() - prefix.size());
        if (!fn(k, std::string_view(it->value().data(), it->value().size()))) break;
    }
}

std::vector<std::string> Store::buckets(std::string_view type) {
    std::vector<std::string> out;
    std::string prefix(1, 'o');
    append_lp(prefix, type);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    it->Seek(prefix);
    while (it->Valid() && starts_with(it->key(), prefix)) {
        std::string_view rest(it->key().data() + prefix.size(), it->key().size() - prefix.size());
        if (rest.size() < 4) break;
        uint32_t n = (uint32_t(uint8_t(rest[0])) << 24) | (uint32_t(uint8_t(rest[1])) << 16) |
                     (uint32_t(uint8_t(rest[2])) << 8) | uint32_t(uint8_t(rest[3]));
        if (rest.size() < 4 + n) break;
        std::string bucket(rest.substr(4, n));
        out.push_back(bucket);
        std::string next = prefix_successor(bucket_prefix('o', type, bucket));
        if (next.empty()) break;
        it->Seek(next);
    }
    return out;
}

void Store::scan_index(
    std::string_view type, std::string_view bucket, std::string_view field, bool is_int,
    std::string_view from_term, const std::optional<std::string>& after_key,
    const std::function<bool(const std::string& term, std::string_view key)>& fn) {
    std::string prefix = field_prefix(type, bucket, field);
    std::string start = prefix + encode_index_term(from_term, is_int);
    if (after_key) start += *after_key;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    it->Seek(start);
    if (after_key && it->Valid() && it->key() == leveldb::Slice(start)) it->Next();
    for (; it->Valid() && starts_with(it->key(), prefix); it->Next()) {
        std::string_view rest(it->key().data() + prefix.size(), it->key().size() - prefix.size());
        std::string term = decode_index_term(rest, is_int);
        if (!fn(term, rest)) break;
    }
}

std::optional<std::string> Store::get_bucket_props(std::string_view type, std::string_view bucket) {
    std::string v;
    leveldb::Status st = db_->Get(leveldb::ReadOptions(), props_key(type, bucket), &v);
    if (st.IsNotFound()) return std::nullopt;
    if (!st.ok()) throw StoreError("storage read failed: " + st.ToString());
    return v;
}

bool Store::put_bucket_props(std::string_view type, std::string_view bucket,
                             const std::string& json) {
    return db_->Put(write_options(true), props_key(type, bucket), json).ok();
}

bool Store::delete_bucket_props(std::string_view type, std::string_view bucket) {
    return db_->Delete(write_options(true), props_key(type, bucket)).ok();
}

std::optional<std::string> Store::get_type(std::string_view type) {
    std::string v;
    leveldb::Status st = db_->Get(leveldb::ReadOptions(), "t" + std::string(type), &v);
    if (st.IsNotFound()) return std::nullopt;
    if (!st.ok()) throw StoreError("storage read failed: " + st.ToString());
    return v;
}

bool Store::put_type(std::string_view type, const std::string& json) {
    return db_->Put(write_options(true), "t" + std::string(type), json).ok();
}

} // namespace rfs::devnode
