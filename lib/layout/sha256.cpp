#include "lib/layout/sha256.hpp"

#include <new>
#include <utility>

#include <openssl/evp.h>

namespace rfs::layout {

// EVP calls on a valid context with SHA-256 only fail on allocation failure inside OpenSSL;
// that is reported like any other allocation failure.
static void check(int ok) {
    if (ok != 1) throw std::bad_alloc();
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr) throw std::bad_alloc();
    reset();
}

Sha256::~Sha256() {
    EVP_MD_CTX_free(ctx_);
}

Sha256::Sha256(Sha256&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}

Sha256& Sha256::operator=(Sha256&& other) noexcept {
    std::swap(ctx_, other.ctx_);
    return *this;
}

void Sha256::reset() {
    check(EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr));
}

void Sha256::update(std::span<const std::byte> data) {
    if (!data.empty()) check(EVP_DigestUpdate(ctx_, data.data(), data.size()));
}

void Sha256::update(std::string_view data) {
    update(std::as_bytes(std::span(data.data(), data.size())));
}

Sha256::Digest Sha256::digest() {
    Digest out{};
    unsigned int length = 0;
    check(EVP_DigestFinal_ex(ctx_, out.data(), &length));
    reset();
    return out;
}

std::string Sha256::hex_digest() {
    return to_hex(digest());
}

std::string sha256_hex(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.hex_digest();
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (std::uint8_t b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0xF]);
    }
    return out;
}

bool is_sha256_hex(std::string_view text) noexcept {
    if (text.size() != kSha256HexLength) return false;
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

} // namespace rfs::layout
