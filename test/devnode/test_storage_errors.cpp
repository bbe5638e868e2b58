// A storage failure is never "not found": riak-devnode answers 500 when a stored object cannot
// be read back, as riakfs itself never takes a failure for absence (a 404 would tell a client
// that the object is gone).
#include <catch2/catch.hpp>
#include <leveldb/db.h>

#include <memory>
#include <string>

#include "devnode_fixture.hpp"

using namespace rfs::devnode::test;

TEST_CASE("a stored object that cannot be decoded is a 500, never a 404", "[devnode][storage]") {
    TempDir data;
    {
        Devnode node({}, data.path(), AdminRoutes::off);
        Client c(node.port());
        REQUIRE(c.put("/buckets/b/keys/k", "value").status == 204);
        REQUIRE(c.get("/buckets/b/keys/k").status == 200);
        REQUIRE(node.terminate() == 0);
    }
    // Overwrite every stored object ('o' keys) with bytes that are no object encoding.
    {
        leveldb::DB* raw = nullptr;
        leveldb::Options options;
        REQUIRE(leveldb::DB::Open(options, data.path() + "/leveldb", &raw).ok());
        std::unique_ptr<leveldb::DB> db(raw);
        std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
        int objects = 0;
        for (it->Seek("o"); it->Valid() && it->key().starts_with("o"); it->Next()) {
            REQUIRE(db->Put(leveldb::WriteOptions(), it->key(), "\xff garbage").ok());
            ++objects;
        }
        REQUIRE(objects == 1);
    }
    Devnode node({}, data.path(), AdminRoutes::off);
    Client c(node.port());
    auto r = c.get("/buckets/b/keys/k");
    INFO("body: " << r.body);
    CHECK(r.status == 500);
    CHECK(c.get("/buckets/b/keys/absent").status == 404);
}

TEST_CASE("a size option too large for 64 bits is refused at start", "[devnode][storage]") {
    auto [status, err] =
        Devnode::run_to_exit({"--listen", "127.0.0.1:0", "--data", "/dev/null/none",
                              "--object-size-maximum", "18446744073709551615GB"});
    CHECK(status == 1);
    CHECK(err.find("too large") != std::string::npos);
}
