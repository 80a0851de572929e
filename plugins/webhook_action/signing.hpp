// Standard Webhooks signing (https://www.standardwebhooks.com) and FraiseQL's own
// X-FraiseQL-Signature-256, over OpenSSL's HMAC-SHA256 and base64 codec.
#pragma once

#include "webhook_config.hpp"

#include <cstdint>
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

/// `webhook-signature` value: "v1,<base64 HMAC(key, id.timestamp.body)>" for each secret,
/// separated by single spaces (several secrets during a rotation).
std::string standard_webhooks_signature(const std::vector<Secret> &secrets, std::string_view id,
                                        int64_t timestamp, std::string_view body);

/// `X-FraiseQL-Signature-256` value: "t=<ts>,v1=<hex HMAC(raw secret, ts.body)>", one v1 per
/// secret.
std::string fraiseql_signature(const std::vector<Secret> &secrets, int64_t timestamp,
                               std::string_view body);

} // namespace fraiseql_observer::webhook
