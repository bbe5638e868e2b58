// Client calls awaited from nested coroutines (a lambda coroutine, a free-function coroutine, in
// a loop, inside try/catch), not only from the co_spawn'ed top-level one, against the real
// riak-devnode. Run it in an ASan build too (-Db_sanitize=address,undefined): GCC 12 has
// coroutine bugs with temporaries in a co_await expression (see lib/riak/README.md, "Calling
// from coroutines (GCC 12)"); these tests use the safe pattern the README prescribes.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <utility>

#include "test/riak/riak_test_support.hpp"

using namespace rfs::riak;
using namespace rfs::riak::test;
namespace proto = rfs::proto;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_nested_calls {

namespace {

struct Fixture : ClientFixture {
    Fixture() { client.start(); }
};

// Safe pattern: every argument a named local, moved in; the awaitable made first, then
// awaited as a named object.
asio::awaitable<std::string> store_then_fetch(Client& client, std::string key, std::string value) {
    proto::ObjectId id{"", "nested", key};
    proto::RiakObject obj;
    obj.value = value;
    obj.content_type = "text/plain";
    proto::StoreOptions so;
    auto put_task = client.store(std::move(id), std::move(obj), std::move(so));
    auto put = co_await std::move(put_task);
    if (!put) throw std::runtime_error("store: " + put.error().message);

    proto::ObjectId fid{"", "nested", key};
    proto::FetchOptions fo;
    fo.params.r = proto::Quorum::one();
    auto get_task = client.fetch(std::move(fid), std::move(fo));
    auto got = co_await std::move(get_task);
    if (!got) throw std::runtime_error("fetch: " + got.error().message);
    if (got->outcome != proto::Outcome::ok) co_return std::string("<not ok>");
    co_return got->object.value;
}

} // namespace

TEST_CASE("store/fetch round trip from a free-function coroutine", "[riak][nested]") {
    Fixture f;
    auto outer = [&]() -> asio::awaitable<std::string> {
        co_return co_await store_then_fetch(f.client, "free", "free-function value");
    };
    CHECK(f(outer()) == "free-function value");
}

TEST_CASE("store/fetch round trip from a lambda coroutine", "[riak][nested]") {
    Fixture f;
    Client& client = f.client;
    auto inner = [&client](std::string key) -> asio::awaitable<std::string> {
        proto::ObjectId id{"", "nested", key};
        proto::RiakObject obj;
        obj.value = "lambda " + key;
        obj.content_type = "text/plain";
        proto::StoreOptions so;
        auto put_task = client.store(std::move(id), std::move(obj), std::move(so));
        auto put = co_await std::move(put_task);
        if (!put) throw std::runtime_error(put.error().message);
        proto::ObjectId fid{"", "nested", key};
        proto::FetchOptions fo;
        auto get_task = client.fetch(std::move(fid), std::move(fo));
        auto got = co_await std::move(get_task);
        if (!got || got->outcome != proto::Outcome::ok) co_return std::string("<failed>");
        co_return got->object.value;
    };
    auto outer = [&]() -> asio::awaitable<std::string> { co_return co_await inner("k1"); };
    CHECK(f(outer()) == "lambda k1");
}

TEST_CASE("nested calls awaited in a loop", "[riak][nested]") {
    Fixture f;
    auto outer = [&]() -> asio::awaitable<int> {
        int matched = 0;
        for (int i = 0; i < 20; ++i) {
            const std::string key = "loop" + std::to_string(i);
            std::string v = co_await store_then_fetch(f.client, key, "value " + key);
            if (v == "value " + key) ++matched;
        }
        co_return matched;
    };
    CHECK(f(outer()) == 20);
}

TEST_CASE("nested calls inside try/catch, including a failing one", "[riak][nested]") {
    Fixture f;
    auto outer = [&]() -> asio::awaitable<std::string> {
        std::string out;
        try {
            out = co_await store_then_fetch(f.client, "tc", "in try");
        } catch (const std::exception& e) {
            out = std::string("threw: ") + e.what();
        }
        try {
            // An invalid id (empty bucket): the call fails and the coroutine throws.
            proto::ObjectId id{"", "", "k"};
            proto::FetchOptions fo;
            auto task = f.client.fetch(std::move(id), std::move(fo));
            auto got = co_await std::move(task);
            if (!got) throw std::runtime_error("expected failure");
            out += " / unexpectedly ok";
        } catch (const std::runtime_error& e) {
            out += std::string(" / ") + e.what();
        }
        co_return out;
    };
    CHECK(f(outer()) == "in try / expected failure");
}

TEST_CASE("awaitable made first from braced temporaries and default arguments", "[riak][nested]") {
    Fixture f;
    auto inner = [&](std::string key, std::string value) -> asio::awaitable<std::string> {
        // Temporaries are fine in a statement that only creates the awaitable: the call copies
        // them into its frame before they are destroyed at the end of that statement.
        auto put_task =
            f.client.store(proto::ObjectId{"", "nested", key}, text(value), proto::StoreOptions{});
        auto put = co_await std::move(put_task);
        if (!put) co_return put.error().message;
        auto get_task = f.client.fetch({"", "nested", key});
        auto got = co_await std::move(get_task);
        if (!got) co_return got.error().message;
        co_return got->object.value;
    };
    auto outer = [&]() -> asio::awaitable<std::string> {
        std::string out;
        for (int i = 0; i < 5; ++i)
            out += co_await inner("tmp" + std::to_string(i), std::to_string(i));
        co_return out;
    };
    CHECK(f(outer()) == "01234");
}

} // namespace test_nested_calls
