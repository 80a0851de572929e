#include "nkey.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace fraiseql_observer::nats_transport {
namespace {

constexpr char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr uint8_t prefix_seed = 18 << 3; // 'S'
constexpr uint8_t prefix_user = 20 << 3; // 'U'

uint16_t crc16(const uint8_t *data, size_t n) { // CRC-16/XMODEM, as NATS uses
    uint16_t crc = 0;
    for (size_t i = 0; i < n; ++i) {
        crc ^= static_cast<uint16_t>(data[i]) << 8;
        for (int b = 0; b < 8; ++b) crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
    }
    return crc;
}

std::vector<uint8_t> b32_decode(const std::string &s) {
    std::vector<uint8_t> out;
    uint32_t buffer = 0;
    int bits = 0;
    for (char c : s) {
        const char *p = nullptr;
        for (const char *a = b32_alphabet; *a; ++a)
            if (*a == c) p = a;
        if (!p) throw std::runtime_error("nkey seed file: invalid character in seed");
        buffer = (buffer << 5) | static_cast<uint32_t>(p - b32_alphabet);
        bits += 5;
        if (bits >= 8) {
            out.push_back(static_cast<uint8_t>(buffer >> (bits - 8)));
            bits -= 8;
        }
    }
    return out;
}

std::string b32_encode(const std::vector<uint8_t> &data) {
    std::string out;
    uint32_t buffer = 0;
    int bits = 0;
    for (uint8_t byte : data) {
        buffer = (buffer << 8) | byte;
        bits += 8;
        while (bits >= 5) {
            out.push_back(b32_alphabet[(buffer >> (bits - 5)) & 31]);
            bits -= 5;
        }
    }
    if (bits > 0) out.push_back(b32_alphabet[(buffer << (5 - bits)) & 31]);
    return out;
}

} // namespace

std::string nkey_public_from_seed_file(const std::string &path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read nkey_seed_file " + path);
    std::string line, seed;
    while (std::getline(in, line)) {
        auto b = line.find_first_not_of(" \t\r");
        if (b != std::string::npos && line.compare(b, 2, "SU") == 0) {
            auto e = line.find_first_of(" \t\r", b);
            seed = line.substr(b, e == std::string::npos ? std::string::npos : e - b);
            break;
        }
    }
    if (seed.empty()) throw std::runtime_error("nkey_seed_file " + path + " holds no user seed (SU…)");
    std::vector<uint8_t> raw = b32_decode(seed);
    OPENSSL_cleanse(seed.data(), seed.size());
    if (raw.size() != 36) throw std::runtime_error("nkey_seed_file " + path + ": malformed seed");
    uint16_t want = static_cast<uint16_t>(raw[34] | (raw[35] << 8));
    bool ok = crc16(raw.data(), 34) == want &&
              (raw[0] & 0xF8) == prefix_seed &&
              static_cast<uint8_t>(((raw[0] & 7) << 5) | ((raw[1] & 0xF8) >> 3)) == prefix_user;
    if (!ok) {
        OPENSSL_cleanse(raw.data(), raw.size());
        throw std::runtime_error("nkey_seed_file " + path + ": not a valid user seed");
    }
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data() + 2, 32);
    OPENSSL_cleanse(raw.data(), raw.size());
    if (!key) throw std::runtime_error("nkey_seed_file " + path + ": cannot load the key");
    std::vector<uint8_t> pub(1 + 32 + 2);
    size_t len = 32;
    int rc = EVP_PKEY_get_raw_public_key(key, pub.data() + 1, &len);
    EVP_PKEY_free(key);
    if (rc != 1 || len != 32) throw std::runtime_error("nkey_seed_file: cannot derive the public key");
    pub[0] = prefix_user;
    uint16_t crc = crc16(pub.data(), 33);
    pub[33] = static_cast<uint8_t>(crc & 0xFF);
    pub[34] = static_cast<uint8_t>(crc >> 8);
    return b32_encode(pub);
}

} // namespace fraiseql_observer::nats_transport
