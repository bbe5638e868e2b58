// The released-file placeholder on real files: the marker xattr, and releasing a file's data.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "lib/common/unique_fd.hpp"
#include "lib/state/placeholder.hpp"
#include "test/state/temp_dir.hpp"

using namespace rfs::state;
using rfs::UniqueFd;
using rfs::state::test::TempDir;

namespace {

constexpr int64_t second = 1'000'000'000;
// Times a file is given before the tests release it: nanoseconds included, in the past.
constexpr int64_t test_mtime_ns = 1'600'000'000 * second + 123'456'789;
constexpr int64_t test_atime_ns = 1'500'000'000 * second + 987'654'321;

timespec to_timespec(int64_t ns) {
    return timespec{ns / second, ns % second};
}
int64_t ns_of(const timespec& t) {
    return t.tv_sec * second + t.tv_nsec;
}

struct stat stat_of(int fd) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return st;
}

// A file of `size` random bytes, fsynced, with the test's atime and mtime.
UniqueFd make_file(const std::string& path, size_t size) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(fd);
    std::mt19937 rng(7);
    std::string data(size, '\0');
    for (char& c : data)
        c = static_cast<char>(rng() | 1); // never zero: a punched byte shows
    REQUIRE(::pwrite(fd.get(), data.data(), data.size(), 0) == static_cast<ssize_t>(size));
    REQUIRE(::fsync(fd.get()) == 0);
    const timespec times[2] = {to_timespec(test_atime_ns), to_timespec(test_mtime_ns)};
    REQUIRE(::futimens(fd.get(), times) == 0);
    return fd;
}

Marker marker_for(int fd) {
    struct stat st = stat_of(fd);
    Marker m;
    m.version = "v1";
    m.sha256 = std::string(64, 'e');
    m.type = "default";
    m.bucket = "riakfs";
    m.key = "files/\xff\x01name";
    m.size = static_cast<uint64_t>(st.st_size);
    m.mtime_ns = ns_of(st.st_mtim);
    return m;
}

std::string read_all(int fd, size_t size) {
    std::string data(size, 'x');
    REQUIRE(::pread(fd, data.data(), size, 0) == static_cast<ssize_t>(size));
    return data;
}

} // namespace

TEST_CASE("the marker encoding round-trips and refuses garbage", "[state][placeholder]") {
    Marker m{"version", "sha", "type", std::string("b\0ucket", 7), "k\xfe", 1ull << 40, -3};
    auto back = decode_marker(encode(m));
    REQUIRE(back.has_value());
    CHECK(*back == m);

    std::string bytes = encode(m);
    for (size_t n = 0; n < bytes.size(); ++n)
        CHECK_FALSE(decode_marker(std::string_view(bytes).substr(0, n)).has_value());
    CHECK_FALSE(decode_marker(bytes + "x").has_value());
    auto garbage = decode_marker("not a marker at all");
    REQUIRE_FALSE(garbage.has_value());
    CHECK(garbage.error().code == EBADMSG);
}

TEST_CASE("marker on a file: write, read, clear", "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    UniqueFd fd = make_file(dir / "f", 1000);

    auto none = read_marker(fd.get());
    REQUIRE(none.has_value());
    CHECK_FALSE(none->has_value());
    REQUIRE(clear_marker(fd.get()).has_value()); // nothing to clear: fine

    Marker m = marker_for(fd.get());
    m.key = std::string(3000, 'k'); // larger than the first read buffer
    REQUIRE(write_marker(fd.get(), m).has_value());
    auto got = read_marker(fd.get());
    REQUIRE(got.has_value());
    REQUIRE(got->has_value());
    CHECK(**got == m);

    // Written through the descriptor, visible by name: it is a real xattr of the file.
    std::string path = dir / "f";
    CHECK(::getxattr(path.c_str(), "trusted.riakfs.released", nullptr, 0) > 0);

    REQUIRE(clear_marker(fd.get()).has_value());
    auto cleared = read_marker(fd.get());
    REQUIRE(cleared.has_value());
    CHECK_FALSE(cleared->has_value());
}

TEST_CASE("what may hold a released file's data: directories and marked files",
          "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    UniqueFd dir_fd(::open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(dir_fd);
    UniqueFd plain = make_file(dir / "plain", 10);
    UniqueFd marked = make_file(dir / "marked", 10);
    REQUIRE(write_marker(marked.get(), marker_for(marked.get())).has_value());
    REQUIRE(::mkdir((dir / "sub").c_str(), 0755) == 0);
    REQUIRE(::symlink("marked", (dir / "link").c_str()) == 0);
    auto mode_of = [&](const char* name) {
        struct stat st {};
        REQUIRE(::fstatat(dir_fd.get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0);
        return st.st_mode;
    };
    CHECK(may_hold_released_data(dir_fd.get(), "sub", mode_of("sub")));
    CHECK(may_hold_released_data(dir_fd.get(), "marked", mode_of("marked")));
    CHECK_FALSE(may_hold_released_data(dir_fd.get(), "plain", mode_of("plain")));
    // A symlink to a placeholder moves no data (and the name is never followed).
    CHECK_FALSE(may_hold_released_data(dir_fd.get(), "link", mode_of("link")));
    // Gone since its lstat: its marker cannot be read, so it counts (a needless sync at worst).
    REQUIRE(::unlink((dir / "plain").c_str()) == 0);
    CHECK(may_hold_released_data(dir_fd.get(), "plain", S_IFREG | 0644));
}

TEST_CASE("a garbage marker value is an error, not a marker", "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    UniqueFd fd = make_file(dir / "f", 10);
    const char junk[] = "\x07garbage";
    REQUIRE(::fsetxattr(fd.get(), "trusted.riakfs.released", junk, sizeof junk - 1, 0) == 0);
    auto got = read_marker(fd.get());
    REQUIRE_FALSE(got.has_value());
    CHECK(got.error().code == EBADMSG);

    REQUIRE(::fsetxattr(fd.get(), "trusted.riakfs.released", "", 0, 0) == 0);
    CHECK_FALSE(read_marker(fd.get()).has_value());
}

TEST_CASE("release drops the data and keeps name, size, times and the marker",
          "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    const size_t size = 1024 * 1024 + 123; // a partial last block too
    UniqueFd fd = make_file(dir / "big", size);
    struct stat before = stat_of(fd.get());
    REQUIRE(before.st_blocks * 512 >= static_cast<blkcnt_t>(size));
    Marker m = marker_for(fd.get());

    auto report = release_data(fd.get(), m);
    REQUIRE(report.has_value());
    struct stat after = stat_of(fd.get());
    // Nothing of the data is left; at most one block for an out-of-inode xattr.
    CHECK(after.st_blocks <= 8);
    CHECK(report->bytes_freed == static_cast<uint64_t>(before.st_blocks - after.st_blocks) * 512);
    CHECK(report->bytes_freed >= size - 4096);
    CHECK(after.st_size == static_cast<off_t>(size));
    CHECK(ns_of(after.st_mtim) == test_mtime_ns);
    CHECK(ns_of(after.st_atim) == test_atime_ns);
    CHECK(read_all(fd.get(), size) == std::string(size, '\0'));

    auto marker = read_marker(fd.get());
    REQUIRE(marker.has_value());
    REQUIRE(marker->has_value());
    CHECK(**marker == m);

    // Reading the zeros above may have moved atime; a second release of the now-sparse file
    // (same size and mtime) is harmless and frees nothing more.
    auto again = release_data(fd.get(), m);
    REQUIRE(again.has_value());
    CHECK(again->bytes_freed == 0);
}

TEST_CASE("release of an empty file keeps it empty with its marker", "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    UniqueFd fd = make_file(dir / "empty", 0);
    Marker m = marker_for(fd.get());
    REQUIRE(release_data(fd.get(), m).has_value());
    CHECK(stat_of(fd.get()).st_size == 0);
    auto marker = read_marker(fd.get());
    REQUIRE(marker.has_value());
    CHECK(marker->has_value());
}

TEST_CASE("release is refused when the file changed since the copy", "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    UniqueFd fd = make_file(dir / "f", 64 * 1024);
    struct stat before = stat_of(fd.get());
    Marker m = marker_for(fd.get());

    SECTION("mtime differs") {
        m.mtime_ns += 1;
    }
    SECTION("size differs") {
        m.size -= 1;
    }

    auto refused = release_data(fd.get(), m);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ESTALE);
    // Nothing happened: no marker, every block still there, data intact.
    auto marker = read_marker(fd.get());
    REQUIRE(marker.has_value());
    CHECK_FALSE(marker->has_value());
    struct stat after = stat_of(fd.get());
    CHECK(after.st_blocks == before.st_blocks);
    CHECK(read_all(fd.get(), 64 * 1024).find('\0') == std::string::npos);
}

TEST_CASE("finish_release completes a release cut short after the punch", "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    UniqueFd fd = make_file(dir / "f", 256 * 1024);
    Marker m = marker_for(fd.get());
    REQUIRE(release_data(fd.get(), m).has_value());
    // As if the daemon died between the punch and restoring the times.
    const timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    REQUIRE(::futimens(fd.get(), now) == 0);
    REQUIRE(release_data(fd.get(), m).error().code == ESTALE);

    auto finished = finish_release(fd.get(), m);
    REQUIRE(finished.has_value());
    CHECK(ns_of(stat_of(fd.get()).st_mtim) == test_mtime_ns);
    CHECK(stat_of(fd.get()).st_size == 256 * 1024);

    Marker other = m;
    other.version = "v2";
    auto wrong = finish_release(fd.get(), other);
    REQUIRE_FALSE(wrong.has_value());
    CHECK(wrong.error().code == EINVAL);

    UniqueFd plain = make_file(dir / "plain", 100);
    auto unmarked = finish_release(plain.get(), marker_for(plain.get()));
    REQUIRE_FALSE(unmarked.has_value());
    CHECK(unmarked.error().code == EINVAL);
    CHECK(read_all(plain.get(), 100).find('\0') == std::string::npos);
}

TEST_CASE("release and finish_release keep the file's capabilities and set-ID bits",
          "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    UniqueFd fd = make_file(dir / "tool", 64 * 1024);
    REQUIRE(::fchmod(fd.get(), 06755) == 0);
    // cap_net_raw+ep, as setcap writes it (VFS_CAP_REVISION_2).
    const std::string caps("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00"
                           "\x00\x00\x00\x00\x00\x00\x00\x00",
                           20);
    REQUIRE(::fsetxattr(fd.get(), "security.capability", caps.data(), caps.size(), 0) == 0);
    auto read = read_capabilities(fd.get());
    REQUIRE(read.has_value());
    REQUIRE(*read == caps);
    // What the kernel does to them at a punch, which release_data makes.
    {
        UniqueFd other = make_file(dir / "other", 8192);
        REQUIRE(::fsetxattr(other.get(), "security.capability", caps.data(), caps.size(), 0) == 0);
        REQUIRE(::fallocate(other.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8192) == 0);
        auto gone = read_capabilities(other.get());
        REQUIRE(gone.has_value());
        CHECK_FALSE(gone->has_value());
    }

    Marker m = marker_for(fd.get());
    REQUIRE(release_data(fd.get(), m).has_value());
    CHECK(stat_of(fd.get()).st_blocks <= 8);
    read = read_capabilities(fd.get());
    REQUIRE(read.has_value());
    CHECK(*read == caps);
    CHECK((stat_of(fd.get()).st_mode & 07777) == 06755);

    // The punch of a release finished after a stop keeps them too.
    REQUIRE(finish_release(fd.get(), m).has_value());
    read = read_capabilities(fd.get());
    REQUIRE(read.has_value());
    CHECK(*read == caps);
    CHECK((stat_of(fd.get()).st_mode & 07777) == 06755);
    CHECK(ns_of(stat_of(fd.get()).st_mtim) == test_mtime_ns);

    // None to keep: none read, nothing put back.
    UniqueFd plain = make_file(dir / "plain", 100);
    auto none = read_capabilities(plain.get());
    REQUIRE(none.has_value());
    CHECK_FALSE(none->has_value());
    REQUIRE(restore_capabilities(plain.get(), *none).has_value());
    CHECK(::fgetxattr(plain.get(), "security.capability", nullptr, 0) < 0);
}

TEST_CASE("placeholder functions refuse what is not a regular file", "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    UniqueFd d(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(d);
    Marker m;
    auto refused = release_data(d.get(), m);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == EINVAL);
    CHECK_FALSE(read_marker(-1).has_value());
}

TEST_CASE("riakfs's own xattr names are hidden, users' are not", "[state][placeholder]") {
    CHECK(is_name_hidden("trusted.riakfs.released"));
    CHECK(is_name_hidden("trusted.riakfs.anything"));
    CHECK_FALSE(is_name_hidden("trusted.riakfs"));
    CHECK_FALSE(is_name_hidden("user.riakfs.released"));
    CHECK_FALSE(is_name_hidden("trusted.other"));
    CHECK_FALSE(is_name_hidden("security.selinux"));
    CHECK_FALSE(is_name_hidden(""));
}

TEST_CASE("probe_support accepts the test directory's file system", "[state][placeholder]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    UniqueFd d(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(d);
    CHECK(probe_support(d.get()).has_value());
    CHECK_FALSE(probe_support(-1).has_value());
}
