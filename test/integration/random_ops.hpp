// Seeded random sequences of file-system operations, applied to any root (a plain directory or a
// mount), and a canonical description of a tree to compare the results: what the differential
// tests share (test_differential: passthrough against native Linux; test_namespace_riak: the Riak
// modes, then a restore from Riak, against the same).
#pragma once

#include "mount_fixture.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace riakfs::it::random_ops {

inline const std::vector<std::string> kDirs = {"", "a", "b", "a/c"};
inline const std::vector<std::string> kNames = {"x", "y", "z", "a", "b", "c", "long name %?"};

inline std::string pick_path(std::mt19937_64& rng) {
    std::string d = kDirs[rng() % kDirs.size()];
    std::string n = kNames[rng() % kNames.size()];
    return d.empty() ? n : d + "/" + n;
}

// One operation, applied to a root directory; returns 0 or errno.
struct Op {
    int kind = 0;
    std::string p1, p2;
    long a = 0, b = 0;
    std::string describe() const {
        std::ostringstream ss;
        ss << "op" << kind << "(" << p1 << (p2.empty() ? "" : ", " + p2) << ", " << a << ", " << b
           << ")";
        return ss.str();
    }
};

constexpr int kKinds = 15;
constexpr int kExchange = 8; // renameat2(RENAME_EXCHANGE)

inline Op random_op(std::mt19937_64& rng) {
    Op op;
    op.kind = static_cast<int>(rng() % kKinds);
    op.p1 = pick_path(rng);
    op.p2 = pick_path(rng);
    op.a = static_cast<long>(rng() % 20000);
    op.b = static_cast<long>(rng() % 3000);
    return op;
}

inline int apply_op(const std::string& root, const Op& op) {
    const std::string p = root + "/" + op.p1, q = root + "/" + op.p2;
    auto r = [](int rc) { return rc == 0 ? 0 : errno; };
    switch (op.kind) {
    case 0: { // create + write
        int fd = ::open(p.c_str(), O_CREAT | O_WRONLY, 0644);
        if (fd < 0) return errno;
        std::string data = random_bytes(size_t(op.b), uint64_t(op.a));
        int e = ::pwrite(fd, data.data(), data.size(), op.a) == ssize_t(data.size()) ? 0 : errno;
        ::close(fd);
        return e;
    }
    case 1: { // append
        int fd = ::open(p.c_str(), O_WRONLY | O_APPEND);
        if (fd < 0) return errno;
        std::string data = random_bytes(size_t(op.b), uint64_t(op.a) + 1);
        int e = ::write(fd, data.data(), data.size()) == ssize_t(data.size()) ? 0 : errno;
        ::close(fd);
        return e;
    }
    case 2:
        return r(::truncate(p.c_str(), op.a));
    case 3:
        return r(::mkdir(p.c_str(), 0755));
    case 4:
        return r(::rmdir(p.c_str()));
    case 5:
        return r(::unlink(p.c_str()));
    case 6:
        return r(::rename(p.c_str(), q.c_str()));
    case 7:
        return r(::renameat2(AT_FDCWD, p.c_str(), AT_FDCWD, q.c_str(), RENAME_NOREPLACE));
    case 8:
        return r(::renameat2(AT_FDCWD, p.c_str(), AT_FDCWD, q.c_str(), RENAME_EXCHANGE));
    case 9:
        return r(::link(p.c_str(), q.c_str()));
    case 10:
        return r(::symlink(op.p2.c_str(), p.c_str()));
    case 11:
        return r(::chmod(p.c_str(), mode_t(op.a % 01000)));
    case 12: {
        std::string v = std::to_string(op.b);
        return r(::lsetxattr(p.c_str(), "user.k", v.data(), v.size(),
                             op.a % 3 == 0   ? XATTR_CREATE
                             : op.a % 3 == 1 ? XATTR_REPLACE
                                             : 0));
    }
    case 13:
        return r(::lremovexattr(p.c_str(), "user.k"));
    case 14: { // O_TRUNC open + small write
        int fd = ::open(p.c_str(), O_WRONLY | O_TRUNC);
        if (fd < 0) return errno;
        int e = ::write(fd, "t", 1) == 1 ? 0 : errno;
        ::close(fd);
        return e;
    }
    }
    return 0;
}

// Canonical description of a tree, without inode numbers and times.
inline void describe_tree(const std::string& root, const std::string& rel,
                          std::map<std::string, std::string>& out) {
    std::string dir = rel.empty() ? root : root + "/" + rel;
    auto names = list_dir(dir);
    for (const auto& n : names) {
        std::string r = rel.empty() ? n : rel + "/" + n;
        std::string p = root + "/" + r;
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0) {
            out[r] = "lstat failed: " + errname(errno);
            continue;
        }
        std::ostringstream ss;
        ss << "mode=" << std::oct << st.st_mode << std::dec << " nlink=" << st.st_nlink;
        if (S_ISREG(st.st_mode)) {
            auto data = try_read_file(p);
            ss << " " << (data ? digest(*data) : "unreadable");
        } else if (S_ISLNK(st.st_mode)) {
            char buf[PATH_MAX];
            ssize_t k = ::readlink(p.c_str(), buf, sizeof buf);
            ss << " -> " << (k >= 0 ? std::string(buf, size_t(k)) : "?");
        }
        char v[64];
        ssize_t k = ::lgetxattr(p.c_str(), "user.k", v, sizeof v);
        if (k >= 0) ss << " user.k=" << std::string(v, size_t(k));
        out[r] = ss.str();
        if (S_ISDIR(st.st_mode)) describe_tree(root, r, out);
    }
}

inline std::string tree_diff(const std::map<std::string, std::string>& native,
                             const std::map<std::string, std::string>& mounted) {
    std::ostringstream ss;
    for (const auto& [k, v] : native) {
        auto it = mounted.find(k);
        if (it == mounted.end())
            ss << "  only native: " << k << " " << v << "\n";
        else if (it->second != v)
            ss << "  " << k << ": native " << v << " | mount " << it->second << "\n";
    }
    for (const auto& [k, v] : mounted)
        if (!native.count(k)) ss << "  only in mount: " << k << " " << v << "\n";
    return ss.str();
}

// The last operations of `log` (each "op -> native result"), a line each, for a failure's message.
inline std::string log_tail(const std::vector<std::string>& log, std::size_t n = 15) {
    std::string tail;
    for (std::size_t i = log.size() > n ? log.size() - n : 0; i < log.size(); ++i)
        tail += "  " + log[i] + "\n";
    return tail;
}

} // namespace riakfs::it::random_ops
