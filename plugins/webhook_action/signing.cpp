#include "signing.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <new>

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

std::string standard_webhooks_signature(const std::vector<Secret> &secrets, std::string_view id,
                                        int64_t timestamp, std::string_view body) {
    std::string ts = std::to_string(timestamp);
    std::string message;
    message.reserve(id.size() + ts.size() + body.size() + 2);
    message.append(id).append(".").append(ts).append(".").append(body);
    std::string out;
    for (const auto &s : secrets) {
        if (!out.empty()) out.push_back(' ');
        out.append("v1,").append(base64_encode(hmac_sha256(s.key, message)));
    }
    return out;
}

std::string fraiseql_signature(const std::vector<Secret> &secrets, int64_t timestamp,
                               std::string_view body) {
    std::string ts = std::to_string(timestamp);
    std::string message;
    message.reserve(ts.size() + body.size() + 1);
    message.append(ts).append(".").append(body);
    std::string out = "t=" + ts;
    for (const auto &s : secrets) out.append(",v1=").append(to_hex(hmac_sha256(s.raw, message)));
    return out;
}

} // namespace fraiseql_observer::webhook
