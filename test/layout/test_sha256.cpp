#include <string>

#include <catch2/catch.hpp>

#include "lib/layout/sha256.hpp"

using namespace rfs::layout;

// FIPS 180-2 / NIST test vectors.
TEST_CASE("sha256 one-shot matches the standard vectors", "[sha256]") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("sha256 incremental equals one-shot, and the hasher restarts after a digest",
          "[sha256]") {
    const std::string million_a(1'000'000, 'a');
    Sha256 h;
    for (std::size_t i = 0; i < million_a.size(); i += 4093)
        h.update(std::string_view(million_a).substr(i, 4093));
    CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    h.update("ab");
    h.update(std::string_view("c"));
    CHECK(h.hex_digest() == sha256_hex("abc"));
    CHECK(h.hex_digest() == sha256_hex("")); // nothing fed since the last digest
}

TEST_CASE("sha256 over byte spans and moved hashers", "[sha256]") {
    const std::byte bytes[] = {std::byte{'a'}, std::byte{'b'}, std::byte{'c'}};
    Sha256 a;
    a.update(std::span<const std::byte>(bytes));
    Sha256 b = std::move(a);
    auto digest = b.digest();
    CHECK(digest[0] == 0xba);
    CHECK(digest[31] == 0xad);
    CHECK(to_hex(digest) == sha256_hex("abc"));
}

TEST_CASE("is_sha256_hex accepts only 64 lowercase hex digits", "[sha256]") {
    CHECK(is_sha256_hex(sha256_hex("x")));
    CHECK_FALSE(is_sha256_hex(""));
    CHECK_FALSE(is_sha256_hex(std::string(63, 'a')));
    CHECK_FALSE(is_sha256_hex(std::string(65, 'a')));
    CHECK_FALSE(is_sha256_hex(std::string(64, 'A')));
    CHECK_FALSE(is_sha256_hex(std::string(63, 'a') + "g"));
}
