#include "lib/state/placeholder.hpp"

#include <fcntl.h>
#include <linux/limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "lib/common/unique_fd.hpp"
#include "lib/state/codec.hpp"

namespace rfs::state {

namespace {

constexpr uint8_t marker_format = 1;
constexpr std::string_view hidden_prefix = "trusted.riakfs.";
const std::string marker_name(marker_xattr);
const std::string fetching_name(fetching_xattr);
constexpr const char* capability_name = "security.capability";

Error sys_error(std::string_view what) {
    int err = errno;
    return make_error(err, "{}: {}", what, std::strerror(err));
}

int64_t mtime_ns_of(const struct stat& st) {
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

Result<struct stat> stat_regular(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return sys_error("fstat");
    if (!S_ISREG(st.st_mode)) return make_error(EINVAL, "not a regular file");
    return st;
}

// Punches [0, size) of a file whose marker is already durable, puts back the capabilities the
// punch removes, sets atime/mtime, fsyncs.
Result<ReleaseReport> punch_all(int fd, const struct stat& before, struct timespec atime,
                                struct timespec mtime) {
    auto caps = read_capabilities(fd);
    if (!caps) return std::move(caps).error();
    auto size = static_cast<uint64_t>(before.st_size);
    if (size > 0) {
        // Punch to the end of the last block: a partial tail block would otherwise stay
        // allocated (zeroed but not freed). KEEP_SIZE keeps st_size, so this cannot grow it.
        uint64_t block = before.st_blksize > 0 ? static_cast<uint64_t>(before.st_blksize) : 4096;
        uint64_t length = (size + block - 1) / block * block;
        if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                        static_cast<off_t>(length)) != 0)
            return sys_error("punching holes");
    }
    if (auto restored = restore_capabilities(fd, *caps); !restored)
        return std::move(restored).error();
    const struct timespec times[2] = {atime, mtime};
    if (::futimens(fd, times) != 0) return sys_error("restoring times");
    if (::fsync(fd) != 0) return sys_error("fsync after release");

    struct stat after;
    if (::fstat(fd, &after) != 0) return sys_error("fstat");
    ReleaseReport report;
    if (after.st_blocks < before.st_blocks)
        report.bytes_freed = static_cast<uint64_t>(before.st_blocks - after.st_blocks) * 512;
    return report;
}

} // namespace

Marker marker_of(const FileState& rec) {
    return Marker{rec.version, rec.sha256, rec.type, rec.bucket, rec.key, rec.size, rec.mtime_ns};
}

FileState released_record(const Marker& m) {
    FileState rec;
    rec.phase = Phase::released;
    rec.version = m.version;
    rec.sha256 = m.sha256;
    rec.type = m.type;
    rec.bucket = m.bucket;
    rec.key = m.key;
    rec.size = m.size;
    rec.mtime_ns = m.mtime_ns;
    return rec;
}

std::string encode(const Marker& m) {
    codec::Writer w;
    w.byte(marker_format);
    w.bytes(m.version);
    w.bytes(m.sha256);
    w.bytes(m.type);
    w.bytes(m.bucket);
    w.bytes(m.key);
    w.varint(m.size);
    w.zigzag(m.mtime_ns);
    return std::move(w).data();
}

Result<Marker> decode_marker(std::string_view bytes) {
    codec::Reader r(bytes);
    uint8_t format = 0;
    if (!r.byte(format)) return make_error(EBADMSG, "empty {}", marker_xattr);
    if (format != marker_format)
        return make_error(EBADMSG, "{} has format version {}, this riakfs reads {}", marker_xattr,
                          format, marker_format);
    Marker m;
    r.bytes(m.version);
    r.bytes(m.sha256);
    r.bytes(m.type);
    r.bytes(m.bucket);
    r.bytes(m.key);
    r.varint(m.size);
    r.zigzag(m.mtime_ns);
    if (!r.at_end())
        return make_error(EBADMSG, "{} is malformed ({} bytes)", marker_xattr, bytes.size());
    return m;
}

bool may_hold_released_data(int dir_fd, const char* name, mode_t mode) {
    if (S_ISDIR(mode)) return true;
    if (!S_ISREG(mode)) return false;
    // By name through the directory's descriptor (an O_PATH one has no xattr calls of its own);
    // lgetxattr: a name is never followed.
    const std::string path = fmt::format("/proc/self/fd/{}/{}", dir_fd, name);
    if (::lgetxattr(path.c_str(), marker_name.c_str(), nullptr, 0) >= 0) return true;
    return errno != ENODATA && errno != ENOTSUP;
}

Result<std::optional<Marker>> read_marker(int fd) {
    std::string value(256, '\0');
    while (true) {
        ssize_t n = ::fgetxattr(fd, marker_name.c_str(), value.data(), value.size());
        if (n >= 0) {
            value.resize(static_cast<size_t>(n));
            break;
        }
        if (errno == ENODATA) return std::optional<Marker>();
        if (errno != ERANGE) return sys_error("reading " + marker_name);
        // Larger than the buffer: ask for its size (it may change again before the next read).
        ssize_t size = ::fgetxattr(fd, marker_name.c_str(), nullptr, 0);
        if (size < 0) {
            if (errno == ENODATA) return std::optional<Marker>();
            return sys_error("reading " + marker_name);
        }
        value.assign(static_cast<size_t>(size) + 1, '\0');
    }
    auto marker = decode_marker(value);
    if (!marker) return std::move(marker).error();
    return std::optional<Marker>(std::move(*marker));
}

Result<void> write_marker(int fd, const Marker& marker) {
    std::string value = encode(marker);
    if (::fsetxattr(fd, marker_name.c_str(), value.data(), value.size(), 0) != 0)
        return sys_error("writing " + marker_name);
    return {};
}

Result<void> clear_marker(int fd) {
    if (::fremovexattr(fd, marker_name.c_str()) != 0 && errno != ENODATA)
        return sys_error("removing " + marker_name);
    return {};
}

Result<void> note_fetching(int fd) {
    if (::fsetxattr(fd, fetching_name.c_str(), "", 0, 0) != 0)
        return sys_error("writing " + fetching_name);
    return {};
}

Result<bool> is_fetching(int fd) {
    if (::fgetxattr(fd, fetching_name.c_str(), nullptr, 0) >= 0) return true;
    if (errno == ENODATA) return false;
    return sys_error("reading " + fetching_name);
}

Result<void> clear_fetching(int fd) {
    if (::fremovexattr(fd, fetching_name.c_str()) != 0 && errno != ENODATA)
        return sys_error("removing " + fetching_name);
    return {};
}

Result<std::optional<std::string>> read_capabilities(int fd) {
    std::string value(XATTR_SIZE_MAX, '\0'); // any value fits (a v3 capability set is 24 bytes)
    ssize_t n = ::fgetxattr(fd, capability_name, value.data(), value.size());
    if (n < 0) {
        if (errno == ENODATA || errno == ENOTSUP) return std::optional<std::string>();
        return sys_error("reading security.capability");
    }
    value.resize(static_cast<size_t>(n));
    return std::optional<std::string>(std::move(value));
}

Result<void> restore_capabilities(int fd, const std::optional<std::string>& caps) {
    if (caps && ::fsetxattr(fd, capability_name, caps->data(), caps->size(), 0) != 0)
        return sys_error("restoring security.capability");
    return {};
}

Result<ReleaseReport> release_data(int fd, const Marker& marker) {
    auto before = stat_regular(fd);
    if (!before) return std::move(before).error();
    if (static_cast<uint64_t>(before->st_size) != marker.size ||
        mtime_ns_of(*before) != marker.mtime_ns)
        return make_error(ESTALE,
                          "file changed since it was copied (size {} mtime {}ns, copy had size {} "
                          "mtime {}ns)",
                          before->st_size, mtime_ns_of(*before), marker.size, marker.mtime_ns);

    // A fetch back's note left by a crash after it was done (the file whole again) is stale.
    if (auto cleared = clear_fetching(fd); !cleared) return std::move(cleared).error();
    // The marker must be durable before any byte goes: after a crash, data may be missing only
    // from a file that says where its content is.
    if (auto written = write_marker(fd, marker); !written) return std::move(written).error();
    if (::fsync(fd) != 0) return sys_error("fsync before release");
    // The punch moves mtime and ctime; mtime (and atime) must stay what the user had. ctime
    // cannot be set back, and rightly says the inode changed.
    return punch_all(fd, *before, before->st_atim, before->st_mtim);
}

Result<ReleaseReport> finish_release(int fd, const Marker& marker) {
    auto before = stat_regular(fd);
    if (!before) return std::move(before).error();
    auto current = read_marker(fd);
    if (!current) return std::move(current).error();
    if (!*current || **current != marker)
        return make_error(EINVAL, "cannot finish a release: the file does not carry this {}",
                          marker_xattr);
    if (static_cast<uint64_t>(before->st_size) != marker.size)
        return make_error(ESTALE, "cannot finish a release: size is {}, the marker says {}",
                          before->st_size, marker.size);
    struct timespec mtime;
    mtime.tv_sec = marker.mtime_ns / 1'000'000'000;
    mtime.tv_nsec = marker.mtime_ns % 1'000'000'000;
    if (mtime.tv_nsec < 0) {
        mtime.tv_nsec += 1'000'000'000;
        --mtime.tv_sec;
    }
    return punch_all(fd, *before, timespec{0, UTIME_OMIT}, mtime);
}

bool is_name_hidden(std::string_view xattr_name) {
    return xattr_name.starts_with(hidden_prefix);
}

Result<void> probe_support(int dir_fd) {
    UniqueFd fd(::openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd) return sys_error("cannot create a temporary file to probe the file system");
    Marker probe{"probe", "", "", "", "", 0, 0};
    std::string value = encode(probe);
    if (::fsetxattr(fd.get(), marker_name.c_str(), value.data(), value.size(), 0) != 0)
        return sys_error("the file system cannot hold " + marker_name +
                         " (trusted xattrs need root and file system support)");
    auto back = read_marker(fd.get());
    if (!back || !*back || **back != probe)
        return make_error(ENOTSUP, "{} does not read back as written (trusted xattrs need root)",
                          marker_xattr);
    std::string block(8192, 'x');
    if (::pwrite(fd.get(), block.data(), block.size(), 0) != static_cast<ssize_t>(block.size()))
        return sys_error("writing the probe file");
    if (::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                    static_cast<off_t>(block.size())) != 0)
        return sys_error("the file system cannot punch holes");
    return {};
}

} // namespace rfs::state
