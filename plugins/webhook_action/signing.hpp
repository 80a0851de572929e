// Standard Webhooks signing (https://www.standardwebhooks.com) and FraiseQL's own
// X-FraiseQL-Signature-256, over OpenSSL's HMAC-SHA256 and base64 codec.
#pragma once

#include "webhook_config.hpp"

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::webhook {

/// Standard base64 (RFC 4648, with padding).
std::string base64_encode(std::string_view bytes);
/// Decodes canonical padded base64; nullopt when `text` is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);

/// The 32-byte SHA-256 digest of `bytes`.
std::string sha256(std::string_view bytes);

/// The 32-byte HMAC-SHA256 of `message` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view message);
std::string to_hex(std::string_view bytes);

/// HMAC-SHA256 signer for a fixed set of secrets, each keyed once. OpenSSL 3's one-shot HMAC()
/// fetches the algorithm and sets the key up on every call: 4.4 us for a ~300-byte message,
/// against 1.1 us re-using a keyed context. The message is fed in pieces (no copy of the body).
/// Thread-safe: one lock (execute() and the batcher's timer rarely sign at the same time).
class Signer {
  public:
    explicit Signer(const std::vector<Secret> &secrets); // throws std::runtime_error
    ~Signer();
    Signer(const Signer &) = delete;
    Signer &operator=(const Signer &) = delete;

    /// See standard_webhooks_signature().
    std::string standard_webhooks(std::string_view id, int64_t timestamp, std::string_view body);
    /// See fraiseql_signature().
    std::string fraiseql(int64_t timestamp, std::string_view body);

  private:
    struct Keyed; // one secret's two keyed contexts (decoded key, raw bytes)
    std::mutex mu_;
    std::vector<Keyed *> keys_;
};

/// `webhook-signature` value: "v1,<base64 HMAC(key, id.timestamp.body)>" for each secret,
/// separated by single spaces (several secrets during a rotation).
std::string standard_webhooks_signature(const std::vector<Secret> &secrets, std::string_view id,
                                        int64_t timestamp, std::string_view body);

/// `X-FraiseQL-Signature-256` value: "t=<ts>,v1=<hex HMAC(raw secret, ts.body)>", one v1 per
/// secret.
std::string fraiseql_signature(const std::vector<Secret> &secrets, int64_t timestamp,
                               std::string_view body);

} // namespace fraiseql_observer::webhook
