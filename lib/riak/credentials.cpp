// The credentials file (see credentials.hpp).
#include "lib/riak/credentials.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include <fmt/core.h>
#include <openssl/evp.h>

#include "lib/common/unique_fd.hpp"

namespace rfs::riak {

namespace {

constexpr std::size_t kMaxFileSize = 4096;

} // namespace

Result<Credentials> read_credentials_file(const std::string& path) {
    const auto bad = [&](const std::string& why) {
        return make_error(Errc::invalid_argument,
                          fmt::format("credentials file '{}': {}", path, why));
    };
    // The checks are made on the file that was opened, not on the path (which could be
    // replaced in between).
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) return bad(std::strerror(errno));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return bad(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return bad("not a regular file");
    if (st.st_uid != ::geteuid())
        return bad(fmt::format("owned by uid {}, not by uid {} that reads it: chown it", st.st_uid,
                               ::geteuid()));
    if ((st.st_mode & 077) != 0)
        return bad(fmt::format("mode {:04o} lets group or others at the password: chmod 600 it",
                               st.st_mode & 07777));
    if (static_cast<std::size_t>(st.st_size) > kMaxFileSize)
        return bad("larger than 4 KiB: it holds one line, USER:PASSWORD");
    std::string text(kMaxFileSize + 1, '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return bad(std::strerror(errno));
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    text.resize(got);
    if (text.size() > kMaxFileSize) return bad("larger than 4 KiB: it holds one line");
    if (text.ends_with('\n')) text.pop_back();
    if (text.ends_with('\r')) text.pop_back();
    if (text.find('\n') != std::string::npos)
        return bad("more than one line: it holds one line, USER:PASSWORD");
    const auto colon = text.find(':');
    if (colon == std::string::npos) return bad("no ':' between user and password (USER:PASSWORD)");
    Credentials out;
    out.user = text.substr(0, colon);
    out.password = text.substr(colon + 1);
    if (out.user.empty()) return bad("the user (before the ':') is empty");
    if (out.password.empty()) return bad("the password (after the ':') is empty");
    if (out.password.find(':') != std::string::npos)
        return bad("the password contains ':', which Riak cannot take over HTTP (it splits "
                   "user:password at every ':')");
    // A NUL or a carriage return inside the line is a broken file, not a password.
    if (text.find('\0') != std::string::npos || text.find('\r') != std::string::npos)
        return bad("a NUL or carriage return inside the line");
    return out;
}

std::string basic_authorization(const Credentials& credentials) {
    const std::string plain = credentials.user + ":" + credentials.password;
    std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                  reinterpret_cast<const unsigned char*>(plain.data()),
                                  static_cast<int>(plain.size()));
    encoded.resize(static_cast<std::size_t>(n));
    return "Basic " + encoded;
}

} // namespace rfs::riak
