// The webhook action's configuration: parsed and checked once, in the constructor, so that
// `fraiseql-observer validate` (create + destroy) catches every mistake without a connection.
#pragma once

#include <fraiseql_observer/config_keys.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fraiseql_observer::webhook {

/// The key table (the reference: `fraiseql-observer plugins --describe webhook`;
/// docs/configuration.md is generated from it). What a table cannot say (URL and header syntax,
/// secrets' base64, the CA file, keys that go together) WebhookConfig::parse checks. There is
/// no key to turn TLS verification off.
inline constexpr fobs_config_key config_keys[] = {
    sdk::Key("url", FOBS_KEY_STRING,
             "Where to send events: an `http://` or `https://` URL with a host; no whitespace or "
             "control characters.")
        .required(),
    sdk::Key("method", FOBS_KEY_STRING,
             "The request method: `POST`, `PUT` or `PATCH` (case-insensitive); the body is always the "
             "event JSON.")
        .def("\"POST\""),
    sdk::Key("headers", FOBS_KEY_STRING_MAP,
             "Extra request headers, e.g. `headers = { \"X-Tenant\" = \"acme\" }`. Names: HTTP tokens; "
             "values: no line breaks or NUL; not `Idempotency-Key`, `webhook-id`, `webhook-timestamp`, "
             "`webhook-signature`, `X-FraiseQL-Signature-256`, `Content-Length`, `Host`. A configured "
             "`Content-Type` or `User-Agent` replaces the default.")
        .def("{}"),
    sdk::Key("secret", FOBS_KEY_STRING_OR_LIST,
             "Turns on Standard Webhooks signing. `whsec_<base64>`: the key is the decoded part; any "
             "other string: its own bytes. An array signs with every secret (key rotation). Default: "
             "none (unsigned).")
        .secret()
        .not_empty(),
    sdk::Key("fraiseql_signature", FOBS_KEY_BOOLEAN,
             "Also send FraiseQL's `X-FraiseQL-Signature-256` header (keyed with the secret exactly as "
             "written); needs `secret`.")
        .def("false"),
    sdk::Key("timeout_ms", FOBS_KEY_INTEGER, "Whole-request timeout (connect + send + answer).")
        .def("10000")
        .range(1, 600000),
    sdk::Key("connect_timeout_ms", FOBS_KEY_INTEGER, "TCP + TLS connect timeout.")
        .def("3000")
        .range(1, 600000),
    sdk::Key("max_concurrency", FOBS_KEY_INTEGER,
             "Requests in flight at once (and connections to the host). Up to 4 × as many more events "
             "may wait in the action's queue; beyond that `execute` blocks.")
        .def("32")
        .range(1, 1024),
    sdk::Key("follow_redirects", FOBS_KEY_BOOLEAN,
             "Follow 301/302/303/307/308 (at most 5, http/https only), keeping method, body and "
             "signature headers. Otherwise a 3xx is a permanent failure.")
        .def("false"),
    sdk::Key("tls_ca_file", FOBS_KEY_STRING,
             "CA certificates added to the system trust store (a private CA, a self-signed receiver): "
             "a readable file holding at least one PEM certificate, checked with the config. Default: "
             "none (system CAs)."),
    sdk::Key("batch_max_events", FOBS_KEY_INTEGER,
             "`1`: one request per event, the body the event object. More: one request per batch of up "
             "to this many events of one pipeline, in stream order, the body a JSON array.")
        .def("1")
        .range(1, 1000),
    sdk::Key("batch_max_wait_ms", FOBS_KEY_INTEGER,
             "How long the oldest event of an open batch may wait for the batch to fill.")
        .def("50")
        .range(1, 10000),
};

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
