// The webhook action's configuration: parsed and checked once, in the constructor, so that
// `fraiseql-observer validate` (create + destroy) catches every mistake without a connection.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fraiseql_observer::webhook {

/// One signing secret. `key` is what Standard Webhooks signs with (the base64-decoded bytes of
/// a `whsec_<base64>` secret, else the string's own bytes); `raw` is the secret exactly as
/// configured, the key of FraiseQL's `X-FraiseQL-Signature-256`.
struct Secret {
    std::string key;
    std::string raw;
};

struct WebhookConfig {
    std::string url;
    std::string method = "POST";
    std::vector<std::pair<std::string, std::string>> headers; // in configured order
    std::vector<Secret> secrets;                              // empty = no signing
    bool fraiseql_signature = false;
    int64_t timeout_ms = 10000;
    int64_t connect_timeout_ms = 3000;
    int64_t max_concurrency = 32;
    bool follow_redirects = false;
    std::string tls_ca_file; // "" = system CAs only
    // Batches (SPEC section 7): 1 = one request per event, the body the event object itself;
    // more = one request per batch of up to this many events, the body a JSON array.
    int64_t batch_max_events = 1;
    // How long the oldest event of an open batch may wait for the batch to fill.
    int64_t batch_max_wait_ms = 50;

    /// Parses the plugin's config JSON; throws sdk::ConfigError(key, message).
    static WebhookConfig parse(std::string_view json);
};

} // namespace fraiseql_observer::webhook
