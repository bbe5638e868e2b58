// InodeTable: lookup counting, forgetting, hard links, id allocation and memory per inode.
#include "lib/fs/inode_table.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <malloc.h>

using namespace rfs;
using namespace rfs::fs;

namespace {
struct stat fake_stat(ino_t ino, mode_t mode = S_IFREG | 0644) {
    struct stat st {};
    st.st_dev = 42;
    st.st_ino = ino;
    st.st_mode = mode;
    return st;
}
InodeTable make_table() { return InodeTable(UniqueFd(), fake_stat(1, S_IFDIR | 0755)); }
} // namespace

TEST_CASE("lookups are counted and forgotten", "[inode]") {
    auto table = make_table();
    auto a = table.add_lookup(UniqueFd(), fake_stat(100));
    CHECK(a->id() != kRootNodeId);
    CHECK(table.lookup_count(a->id()) == 1);
    auto again = table.add_lookup(UniqueFd(), fake_stat(100));
    CHECK(again == a);
    CHECK(table.lookup_count(a->id()) == 2);
    CHECK(table.size() == 2); // root + a

    CHECK(table.forget(a->id(), 1));
    CHECK(table.get(a->id()) == a);
    CHECK(table.forget(a->id(), 1));
    CHECK(table.get(a->id()) == nullptr);
    CHECK(table.size() == 1);
    // The caller's reference keeps the object usable after the table dropped it.
    CHECK(a->src().ino == 100);
}

TEST_CASE("forget of several lookups at once, and underflow", "[inode]") {
    auto table = make_table();
    auto a = table.add_lookup(UniqueFd(), fake_stat(7));
    for (int i = 0; i < 4; ++i) table.add_lookup(UniqueFd(), fake_stat(7));
    CHECK(table.lookup_count(a->id()) == 5);
    CHECK(table.forget(a->id(), 3));
    CHECK(table.lookup_count(a->id()) == 2);
    CHECK_FALSE(table.forget(a->id(), 5)); // underflow is reported, and the inode dropped
    CHECK(table.get(a->id()) == nullptr);
    CHECK_FALSE(table.forget(a->id(), 1)); // unknown id
}

TEST_CASE("root is permanent", "[inode]") {
    auto table = make_table();
    CHECK(table.get(kRootNodeId) == table.root());
    CHECK(table.forget(kRootNodeId, 1000));
    CHECK(table.get(kRootNodeId) == table.root());
}

TEST_CASE("node ids are never reused", "[inode]") {
    auto table = make_table();
    auto a = table.add_lookup(UniqueFd(), fake_stat(5));
    NodeId first = a->id();
    table.forget(first, 1);
    auto b = table.add_lookup(UniqueFd(), fake_stat(5));
    CHECK(b->id() != first);
    CHECK(b->id() > first);
}

TEST_CASE("a second descriptor for a known object is closed", "[inode]") {
    auto table = make_table();
    int fd1 = ::open("/", O_PATH);
    int fd2 = ::open("/", O_PATH);
    REQUIRE(fd1 >= 0);
    REQUIRE(fd2 >= 0);
    auto a = table.add_lookup(UniqueFd(fd1), fake_stat(9));
    table.add_lookup(UniqueFd(fd2), fake_stat(9));
    CHECK(a->fd() == fd1);
    CHECK(::fcntl(fd2, F_GETFD) == -1); // closed
    table.forget(a->id(), 2);
    CHECK(::fcntl(fd1, F_GETFD) != -1); // still ours while an in-flight user holds the inode
    a.reset();
    CHECK(::fcntl(fd1, F_GETFD) == -1); // closed with the last reference
}

TEST_CASE("memory per inode stays under 200 bytes at a million inodes", "[inode][memory]") {
    constexpr size_t kCount = 1'000'000;
    auto table = make_table();
    size_t before = mallinfo2().uordblks;
    {
        for (size_t i = 0; i < kCount; ++i) table.add_lookup(UniqueFd(), fake_stat(1000 + i));
        size_t after = mallinfo2().uordblks;
        double per_inode = double(after - before) / kCount;
        WARN("bytes per inode at 1M inodes: " << per_inode);
        CHECK(per_inode < 200);
    }
    CHECK(table.size() == kCount + 1);
}
