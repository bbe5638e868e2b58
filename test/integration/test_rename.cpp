// Passthrough mode: rename and its flags (RENAME_NOREPLACE, RENAME_EXCHANGE), rename over open
// and looked-up targets, directories, and the error cases.
#include "mount_fixture.hpp"
#include "nested_mount.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using namespace riakfs::it;

namespace {

int rename2(const std::string& a, const std::string& b, unsigned flags) {
    return ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), flags);
}

bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

} // namespace

TEST_CASE("rename a file within a directory and across directories", "[rename]") {
    MountFixture fx;
    write_file(fx.mnt("a"), "content-a");
    ino_t ino = 0;
    {
        struct stat st {};
        REQUIRE_OK(::lstat(fx.mnt("a").c_str(), &st));
        ino = st.st_ino;
    }
    REQUIRE_OK(::rename(fx.mnt("a").c_str(), fx.mnt("b").c_str()));
    CHECK_FALSE(exists(fx.mnt("a")));
    CHECK_FALSE(exists(fx.src("a")));
    CHECK(read_file(fx.mnt("b")) == "content-a");
    CHECK(read_file(fx.src("b")) == "content-a");
    struct stat st {};
    REQUIRE_OK(::lstat(fx.mnt("b").c_str(), &st));
    CHECK(st.st_ino == ino);

    REQUIRE_OK(::mkdir(fx.mnt("d1").c_str(), 0755));
    REQUIRE_OK(::mkdir(fx.mnt("d2").c_str(), 0755));
    REQUIRE_OK(::mkdir(fx.mnt("d2/deep").c_str(), 0755));
    REQUIRE_OK(::rename(fx.mnt("b").c_str(), fx.mnt("d1/c").c_str()));
    REQUIRE_OK(::rename(fx.mnt("d1/c").c_str(), fx.mnt("d2/deep/e").c_str()));
    CHECK(read_file(fx.src("d2/deep/e")) == "content-a");
    CHECK(list_dir(fx.mnt("d1")).empty());
    CHECK(list_dir(fx.mnt("")).size() == 2);

    // Renaming a file to itself is a no-op.
    REQUIRE_OK(::rename(fx.mnt("d2/deep/e").c_str(), fx.mnt("d2/deep/e").c_str()));
    CHECK(read_file(fx.mnt("d2/deep/e")) == "content-a");

    // An open descriptor follows the file across renames.
    Fd fd(::open(fx.mnt("d2/deep/e").c_str(), O_RDWR));
    REQUIRE(fd);
    REQUIRE_OK(::rename(fx.mnt("d2/deep/e").c_str(), fx.mnt("moved").c_str()));
    CHECK(::pwrite(fd.get(), "C", 1, 0) == 1);
    fd.reset();
    CHECK(read_file(fx.src("moved")) == "Content-a");
}

TEST_CASE("rename over an existing file replaces it", "[rename]") {
    MountFixture fx;
    write_file(fx.mnt("src"), "new");
    write_file(fx.mnt("dst"), "old");
    Fd old(::open(fx.mnt("dst").c_str(), O_RDONLY)); // replaced target stays readable
    REQUIRE(old);
    REQUIRE_OK(::rename(fx.mnt("src").c_str(), fx.mnt("dst").c_str()));
    CHECK(read_file(fx.mnt("dst")) == "new");
    CHECK(read_file(fx.src("dst")) == "new");
    CHECK_FALSE(exists(fx.mnt("src")));
    CHECK_FALSE(exists(fx.src("src")));
    char buf[8] = {};
    CHECK(::pread(old.get(), buf, sizeof buf, 0) == 3);
    CHECK(std::string(buf, 3) == "old");
    CHECK(list_dir(fx.mnt("")) == std::vector<std::string>{"dst"});

    // A directory may replace an empty directory, but not a non-empty one or a file.
    REQUIRE_OK(::mkdir(fx.mnt("d1").c_str(), 0755));
    REQUIRE_OK(::mkdir(fx.mnt("d2").c_str(), 0755));
    write_file(fx.mnt("d1/in"), "i");
    REQUIRE_OK(::rename(fx.mnt("d1").c_str(), fx.mnt("d2").c_str()));
    CHECK(read_file(fx.src("d2/in")) == "i");
    REQUIRE_OK(::mkdir(fx.mnt("d3").c_str(), 0755));
    CHECK_ERRNO(::rename(fx.mnt("d3").c_str(), fx.mnt("d2").c_str()), ENOTEMPTY);
    CHECK_ERRNO(::rename(fx.mnt("d3").c_str(), fx.mnt("dst").c_str()), ENOTDIR);
    CHECK_ERRNO(::rename(fx.mnt("dst").c_str(), fx.mnt("d3").c_str()), EISDIR);
    // Hard links to the same inode: rename is a no-op, both names stay.
    REQUIRE_OK(::link(fx.mnt("dst").c_str(), fx.mnt("dst2").c_str()));
    REQUIRE_OK(::rename(fx.mnt("dst").c_str(), fx.mnt("dst2").c_str()));
    CHECK(exists(fx.src("dst")));
    CHECK(exists(fx.src("dst2")));
}

TEST_CASE("RENAME_NOREPLACE fails with EEXIST when the target exists", "[rename]") {
    MountFixture fx;
    write_file(fx.mnt("a"), "A");
    write_file(fx.mnt("b"), "B");
    CHECK_ERRNO(rename2(fx.mnt("a"), fx.mnt("b"), RENAME_NOREPLACE), EEXIST);
    CHECK(read_file(fx.mnt("a")) == "A");
    CHECK(read_file(fx.src("b")) == "B");
    REQUIRE_OK(rename2(fx.mnt("a"), fx.mnt("c"), RENAME_NOREPLACE));
    CHECK(read_file(fx.src("c")) == "A");
    CHECK_FALSE(exists(fx.src("a")));
    CHECK_ERRNO(rename2(fx.mnt("missing"), fx.mnt("x"), RENAME_NOREPLACE), ENOENT);
}

TEST_CASE("RENAME_EXCHANGE swaps two entries atomically", "[rename]") {
    MountFixture fx;
    write_file(fx.mnt("a"), "A");
    REQUIRE_OK(::mkdir(fx.mnt("d").c_str(), 0755));
    write_file(fx.mnt("d/b"), "B");
    REQUIRE_OK(rename2(fx.mnt("a"), fx.mnt("d/b"), RENAME_EXCHANGE));
    CHECK(read_file(fx.mnt("a")) == "B");
    CHECK(read_file(fx.mnt("d/b")) == "A");
    CHECK(read_file(fx.src("a")) == "B");
    CHECK(read_file(fx.src("d/b")) == "A");

    // A file and a directory can be exchanged too.
    write_file(fx.mnt("d/inside"), "I");
    REQUIRE_OK(rename2(fx.mnt("a"), fx.mnt("d"), RENAME_EXCHANGE));
    struct stat st {};
    REQUIRE_OK(::lstat(fx.mnt("a").c_str(), &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK(read_file(fx.mnt("a/inside")) == "I");
    CHECK(read_file(fx.mnt("d")) == "B");
    CHECK(read_file(fx.src("a/inside")) == "I");

    CHECK_ERRNO(rename2(fx.mnt("d"), fx.mnt("nonexistent"), RENAME_EXCHANGE), ENOENT);
    CHECK_ERRNO(rename2(fx.mnt("d"), fx.mnt("a"), RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
}

TEST_CASE("renaming a directory into its own subdirectory fails with EINVAL", "[rename]") {
    MountFixture fx;
    REQUIRE_OK(::mkdir(fx.mnt("top").c_str(), 0755));
    REQUIRE_OK(::mkdir(fx.mnt("top/sub").c_str(), 0755));
    CHECK_ERRNO(::rename(fx.mnt("top").c_str(), fx.mnt("top/sub/x").c_str()), EINVAL);
    CHECK_ERRNO(::rename(fx.mnt("top").c_str(), fx.mnt("top/x").c_str()), EINVAL);
    CHECK(exists(fx.src("top/sub")));

    // Moving a directory with contents to another parent keeps its subtree.
    REQUIRE_OK(::mkdir(fx.mnt("other").c_str(), 0755));
    write_file(fx.mnt("top/sub/f"), "deep");
    REQUIRE_OK(::rename(fx.mnt("top").c_str(), fx.mnt("other/top2").c_str()));
    CHECK(read_file(fx.mnt("other/top2/sub/f")) == "deep");
    CHECK(read_file(fx.src("other/top2/sub/f")) == "deep");
    struct stat st {};
    REQUIRE_OK(::lstat(fx.mnt("other").c_str(), &st));
    CHECK(st.st_nlink == 3);
    CHECK_FALSE(exists(fx.mnt("top")));
}

TEST_CASE("rename and link never return EXDEV within the mount", "[rename]") {
    MountFixture fx;
    REQUIRE_OK(::mkdir(fx.mnt("x").c_str(), 0755));
    REQUIRE_OK(::mkdir(fx.mnt("x/y").c_str(), 0755));
    REQUIRE_OK(::mkdir(fx.mnt("z").c_str(), 0755));
    write_file(fx.mnt("x/y/f"), "f");
    CHECK_OK(::rename(fx.mnt("x/y/f").c_str(), fx.mnt("z/f").c_str()));
    CHECK_OK(::link(fx.mnt("z/f").c_str(), fx.mnt("x/y/f2").c_str()));
    CHECK_OK(::rename(fx.mnt("x/y").c_str(), fx.mnt("z/y").c_str()));
    CHECK_OK(::symlink("f", fx.mnt("z/s").c_str()));
    CHECK_OK(::rename(fx.mnt("z/s").c_str(), fx.mnt("x/s").c_str()));
    CHECK_OK(rename2(fx.mnt("z/f"), fx.mnt("x/f"), RENAME_NOREPLACE));
    CHECK(read_file(fx.src("x/f")) == "f");
    CHECK(read_file(fx.src("z/y/f2")) == "f");
}

TEST_CASE("rename error cases", "[rename]") {
    MountFixture fx;
    write_file(fx.mnt("f"), "x");
    REQUIRE_OK(::mkdir(fx.mnt("d").c_str(), 0755));
    CHECK_ERRNO(::rename(fx.mnt("missing").c_str(), fx.mnt("g").c_str()), ENOENT);
    CHECK_ERRNO(::rename(fx.mnt("f").c_str(), fx.mnt("nodir/g").c_str()), ENOENT);
    CHECK_ERRNO(::rename(fx.mnt("f").c_str(), fx.mnt("f/g").c_str()), ENOTDIR);
    CHECK(read_file(fx.src("f")) == "x");
}

// Issue 12: an object on a file system without file handles (ramfs) is reached by its parent and
// name once the daemon keeps no descriptor for it. Renamed directly in SOURCE (beside the mount),
// such an inode answered ESTALE to calls that reach it without a lookup (here fstat and openat
// through O_PATH descriptors opened before the rename, once the 1 s attribute timeout has passed)
// until the kernel looked the new name up. The daemon now finds the object again in its parent.
TEST_CASE("an inode reached by name follows a rename made beside the mount", "[rename][names]") {
    constexpr int kFiles = 200; // far past what the daemon keeps descriptors for at this limit
    std::string ramfs;
    MountOptions o = MountOptions::prepared([&](const std::string& src) {
        ramfs = src + "/r";
        REQUIRE_OK(::mkdir(ramfs.c_str(), 0755));
        REQUIRE_OK(::mount("none", ramfs.c_str(), "ramfs", 0, nullptr));
        REQUIRE_OK(::mkdir((ramfs + "/dir").c_str(), 0755));
        write_file(ramfs + "/dir/inside", "inside");
        for (int i = 0; i < kFiles; ++i)
            write_file(ramfs + "/f" + std::to_string(i), std::to_string(i));
    });
    o.nofile_limit = 128; // 64 kept descriptors, 16 cached: the rest are reopened by name
    MountFixture m(o);
    Unmounter unmount_ramfs{m, {ramfs}};

    std::vector<Fd> files;
    std::vector<ino_t> inos;
    for (int i = 0; i < kFiles; ++i) {
        files.emplace_back(::open(m.mnt("r/f" + std::to_string(i)).c_str(), O_PATH));
        REQUIRE(files.back());
        struct stat st {};
        REQUIRE_OK(::fstat(files.back().get(), &st));
        inos.push_back(st.st_ino);
    }
    Fd dir(::open(m.mnt("r/dir").c_str(), O_PATH | O_DIRECTORY));
    REQUIRE(dir);
    // Every other file and the directory are renamed within their directory beside the mount.
    for (int i = 0; i < kFiles; i += 2)
        REQUIRE_OK(::rename((ramfs + "/f" + std::to_string(i)).c_str(),
                            (ramfs + "/g" + std::to_string(i)).c_str()));
    REQUIRE_OK(::rename((ramfs + "/dir").c_str(), (ramfs + "/moved-dir").c_str()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1200)); // attributes time out

    int stale = 0;
    for (int i = 0; i < kFiles; ++i) {
        struct stat st {};
        if (::fstat(files[i].get(), &st) != 0) {
            INFO("f" << i << ": " << errname(errno));
            CHECK(errno != ESTALE);
            ++stale;
            continue;
        }
        CHECK(st.st_ino == inos[i]);
    }
    CHECK(stale == 0);
    // A lookup in the renamed directory through the descriptor held on it.
    Fd inside(::openat(dir.get(), "inside", O_RDONLY));
    INFO("openat: " << errname(errno));
    REQUIRE(inside);
    char buf[16] = {};
    CHECK(::read(inside.get(), buf, sizeof buf) == 6);
    CHECK(std::string(buf) == "inside");
}
