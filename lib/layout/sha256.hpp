// SHA-256 over OpenSSL's EVP interface, fed incrementally (a file is hashed chunk by chunk as it
// is read) or in one call. Digests are written as 64 lowercase hex digits everywhere in the
// layout (metadata, manifests). One Sha256 belongs to one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace rfs::layout {

inline constexpr std::size_t kSha256HexLength = 64;

class Sha256 {
public:
    using Digest = std::array<std::uint8_t, 32>;

    Sha256(); // throws std::bad_alloc if OpenSSL cannot allocate its context
    ~Sha256();
    Sha256(Sha256&& other) noexcept; // a moved-from hasher may only be destroyed or assigned
    Sha256& operator=(Sha256&& other) noexcept;
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(std::span<const std::byte> data);
    void update(std::string_view data);

    // The digest of everything fed since construction or the last digest; the hasher then
    // starts over, ready for the next input.
    Digest digest();
    std::string hex_digest();

private:
    void reset();
    EVP_MD_CTX* ctx_;
};

std::string sha256_hex(std::string_view data);
std::string to_hex(std::span<const std::uint8_t> bytes); // lowercase
// Exactly 64 lowercase hex digits: the only form the layout writes and accepts.
bool is_sha256_hex(std::string_view text) noexcept;

} // namespace rfs::layout
