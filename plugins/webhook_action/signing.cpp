#include "signing.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <memory>
#include <new>
#include <stdexcept>

namespace fraiseql_observer::webhook {

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(bytes.data()),
                            static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    // EVP_DecodeBlock skips whitespace and does not report padding, so check the shape here.
    if (text.empty() || text.size() % 4 != 0) return std::nullopt;
    size_t pad = 0;
    while (pad < 2 && text[text.size() - 1 - pad] == '=') ++pad;
    for (size_t i = 0; i < text.size() - pad; ++i) {
        char c = text[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/';
        if (!ok) return std::nullopt;
    }
    std::string out(3 * text.size() / 4, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(text.data()),
                            static_cast<int>(text.size()));
    if (n < 0 || static_cast<size_t>(n) < pad) return std::nullopt;
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

std::string sha256(std::string_view bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1)
        throw std::bad_alloc(); // EVP_Digest fails only when it cannot allocate its context
    return std::string(reinterpret_cast<const char *>(md), len);
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char *>(message.data()), message.size(), mac, &len);
    return std::string(reinterpret_cast<const char *>(mac), len);
}

std::string to_hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 0xf]);
    }
    return out;
}

namespace {

EVP_MAC_CTX *keyed_context(EVP_MAC *mac, std::string_view key) {
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    if (!ctx) throw std::bad_alloc();
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char *>("SHA256"), 0),
        OSSL_PARAM_construct_end()};
    // An empty key still needs a non-null pointer, or init would keep the context's old key.
    static const unsigned char empty = 0;
    const auto *k = key.empty() ? &empty : reinterpret_cast<const unsigned char *>(key.data());
    if (EVP_MAC_init(ctx, k, key.size(), params) != 1) {
        EVP_MAC_CTX_free(ctx);
        throw std::runtime_error("HMAC-SHA256 key setup failed");
    }
    return ctx;
}

// The MAC of the pieces' concatenation under `ctx`'s key; `ctx` is left ready for reuse.
template <size_t N>
void mac_pieces(EVP_MAC_CTX *ctx, const std::string_view (&pieces)[N], unsigned char *out,
                size_t &len) {
    bool ok = EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1; // same key, fresh state
    for (std::string_view p : pieces)
        ok = ok && EVP_MAC_update(ctx, reinterpret_cast<const unsigned char *>(p.data()), p.size()) == 1;
    ok = ok && EVP_MAC_final(ctx, out, &len, EVP_MAX_MD_SIZE) == 1;
    if (!ok) throw std::bad_alloc(); // fails only when OpenSSL cannot allocate
}

} // namespace

struct Signer::Keyed {
    EVP_MAC_CTX *decoded = nullptr; // Standard Webhooks: the secret's base64-decoded key
    EVP_MAC_CTX *raw = nullptr;     // X-FraiseQL-Signature-256: the secret's raw bytes
    ~Keyed() {
        EVP_MAC_CTX_free(decoded);
        EVP_MAC_CTX_free(raw);
    }
};

Signer::Signer(const std::vector<Secret> &secrets) {
    EVP_MAC *mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (!mac) throw std::runtime_error("HMAC is not available in OpenSSL");
    try {
        for (const auto &s : secrets) {
            auto k = std::make_unique<Keyed>();
            k->decoded = keyed_context(mac, s.key);
            k->raw = keyed_context(mac, s.raw);
            keys_.push_back(k.release());
        }
    } catch (...) {
        EVP_MAC_free(mac);
        for (Keyed *k : keys_) delete k;
        throw;
    }
    EVP_MAC_free(mac); // each context holds its own reference
}

Signer::~Signer() {
    for (Keyed *k : keys_) delete k;
}

namespace {
std::string_view decimal(int64_t v, char (&buf)[24]) {
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return {buf, static_cast<size_t>(r.ptr - buf)};
}
} // namespace

std::string Signer::standard_webhooks(std::string_view id, int64_t timestamp,
                                      std::string_view body) {
    char buf[24];
    std::string_view ts = decimal(timestamp, buf);
    const std::string_view pieces[] = {id, ".", ts, ".", body};
    std::string out;
    out.reserve(keys_.size() * 48);
    unsigned char mac[EVP_MAX_MD_SIZE];
    char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    std::lock_guard lk(mu_);
    for (Keyed *k : keys_) {
        size_t len = 0;
        mac_pieces(k->decoded, pieces, mac, len);
        int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(b64), mac, static_cast<int>(len));
        if (!out.empty()) out.push_back(' ');
        out.append("v1,").append(b64, static_cast<size_t>(n));
    }
    return out;
}

std::string Signer::fraiseql(int64_t timestamp, std::string_view body) {
    static constexpr char digits[] = "0123456789abcdef";
    char buf[24];
    std::string_view ts = decimal(timestamp, buf);
    const std::string_view pieces[] = {ts, ".", body};
    std::string out;
    out.reserve(2 + ts.size() + keys_.size() * 68);
    out.append("t=").append(ts);
    unsigned char mac[EVP_MAX_MD_SIZE];
    std::lock_guard lk(mu_);
    for (Keyed *k : keys_) {
        size_t len = 0;
        mac_pieces(k->raw, pieces, mac, len);
        out.append(",v1=");
        for (size_t i = 0; i < len; ++i) {
            out.push_back(digits[mac[i] >> 4]);
            out.push_back(digits[mac[i] & 0xf]);
        }
    }
    return out;
}

std::string standard_webhooks_signature(const std::vector<Secret> &secrets, std::string_view id,
                                        int64_t timestamp, std::string_view body) {
    return Signer(secrets).standard_webhooks(id, timestamp, body);
}

std::string fraiseql_signature(const std::vector<Secret> &secrets, int64_t timestamp,
                               std::string_view body) {
    return Signer(secrets).fraiseql(timestamp, body);
}

} // namespace fraiseql_observer::webhook
