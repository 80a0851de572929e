#include "nats_config.hpp"

#include <fraiseql_observer/plugin.hpp>
#include <fraiseql_observer/redact.hpp>
#include <fraiseql_observer/subject_token.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

namespace fraiseql_observer::nats_transport {
namespace {

using sdk::ConfigError;

void check_name(const std::string &name, const std::string &path) {
    if (name.empty()) throw ConfigError(path, "`" + path + "` must not be empty");
    for (unsigned char c : name) {
        if (c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' || std::isspace(c) ||
            c < 0x20 || c == 0x7f)
            throw ConfigError(path, "`" + path + "` = \"" + name +
                                        "\" is not a valid JetStream name (no '.', '*', '>', "
                                        "'/', '\\', whitespace or control characters)");
    }
}

void check_prefix(const std::string &prefix, const std::string &path) {
    if (prefix.empty()) throw ConfigError(path, "`" + path + "` must not be empty");
    size_t start = 0;
    while (true) {
        size_t dot = prefix.find('.', start);
        std::string_view token(prefix.data() + start,
                               (dot == std::string::npos ? prefix.size() : dot) - start);
        if (!valid_subject_token(token))
            throw ConfigError(path, "`" + path + "` = \"" + prefix +
                                        "\" is not a valid subject prefix (dot-separated "
                                        "tokens, each non-empty, without '*', '>' or "
                                        "whitespace)");
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
}

std::vector<std::string> split_urls(const std::string &s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        std::string part = s.substr(start, comma == std::string::npos ? std::string::npos
                                                                      : comma - start);
        auto b = part.find_first_not_of(" \t");
        auto e = part.find_last_not_of(" \t");
        if (b != std::string::npos) out.push_back(part.substr(b, e - b + 1));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

// `u` fit for an error message: credentials hidden even when the scheme is missing (which
// sdk::redact_secrets does not recognise as a URL), and bounded.
std::string shown_url(const std::string &u) {
    std::string out = u;
    auto at = out.rfind('@');
    if (at != std::string::npos) {
        auto sep = out.find("://");
        size_t from = (sep != std::string::npos && sep < at) ? sep + 3 : 0;
        out = out.substr(0, from) + "***" + out.substr(at);
    }
    out = sdk::redact_secrets(out);
    if (out.size() > 200) out = out.substr(0, 200) + "...";
    for (char &c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return out;
}

// "" when `u` is a URL cnats can connect to with one of the schemes NATS speaks, else why not.
// Never echoes the URL's userinfo (it may hold a password).
std::string url_problem(const std::string &u) {
    auto sep = u.find("://");
    if (sep == std::string::npos)
        return "is not a URL (expected nats://host:port, tls://, ws:// or wss://)";
    std::string scheme = u.substr(0, sep);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme != "nats" && scheme != "tls" && scheme != "ws" && scheme != "wss")
        return "has scheme \"" + scheme.substr(0, 16) +
               "\" (expected nats://, tls://, ws:// or wss://)";
    std::string rest = u.substr(sep + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    auto at = rest.rfind('@');
    if (at != std::string::npos) rest = rest.substr(at + 1); // userinfo: never printed
    for (unsigned char c : rest)
        if (c <= 0x20 || c == 0x7f) return "has a space or control character in its host";
    std::string host, port;
    if (!rest.empty() && rest[0] == '[') { // [IPv6]:port
        auto close = rest.find(']');
        if (close == std::string::npos) return "has an unterminated IPv6 address";
        host = rest.substr(1, close - 1);
        std::string after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return "has text after its IPv6 address";
            port = after.substr(1);
            if (port.empty()) return "has an empty port";
        }
    } else {
        auto colon = rest.find(':');
        host = rest.substr(0, colon);
        if (colon != std::string::npos) {
            port = rest.substr(colon + 1);
            if (port.empty()) return "has an empty port";
        }
    }
    if (host.empty()) return "has no host";
    for (unsigned char c : host)
        if (!(std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '%'))
            return "has an invalid host";
    if (!port.empty()) {
        if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
            return "has an invalid port (expected 1-65535)";
        long p = std::stol(port);
        if (p < 1 || p > 65535) return "has port " + port + " (expected 1-65535)";
    }
    return {};
}

bool is_within(const std::string &prefix, const std::string &other) {
    return prefix == other || prefix.rfind(other + ".", 0) == 0;
}

} // namespace

bool valid_subject_token(std::string_view token) { return sdk::is_subject_token(token); }

int64_t NatsConfig::nak_delay_ms(uint64_t delivery_count) const {
    // Long enough to ride out a receiver that restarts, deploys or fails over (tens of seconds
    // to minutes) even with the seed's max_deliver = 3: 15 s then 2 min before the last try
    // (2 min 15 s in all), then 5 and 10 min for larger max_deliver. The price: a transient
    // blip costs 15 s of latency for that event (docs/plugins/nats.md, "Redelivery delays").
    static const int64_t default_schedule_ms[] = {15'000, 120'000, 300'000, 600'000};
    size_t idx = delivery_count == 0 ? 0 : static_cast<size_t>(delivery_count - 1);
    if (!backoff_secs.empty())
        return static_cast<int64_t>(backoff_secs[std::min(idx, backoff_secs.size() - 1)] * 1000);
    constexpr size_t n = sizeof(default_schedule_ms) / sizeof(default_schedule_ms[0]);
    return default_schedule_ms[std::min(idx, n - 1)];
}

int64_t NatsConfig::publish_retry_horizon_ms() const {
    // Each attempt may wait publish_timeout_ms for its PubAck, then a growing pause (100 ms
    // doubling up to 2 s) before the next one; see Publisher.
    int64_t total = 0, pause = 100;
    for (int64_t i = 0; i < publish_max_attempts; ++i) {
        total += publish_timeout_ms;
        if (i + 1 < publish_max_attempts) total += pause;
        pause = std::min<int64_t>(pause * 2, 2000);
    }
    return total;
}

std::string NatsConfig::url_list() const {
    std::string out;
    for (const auto &u : urls) {
        if (!out.empty()) out += ",";
        // Strip "user:pass@" so credentials embedded in URLs never reach a log.
        auto scheme = u.find("://");
        auto at = u.rfind('@');
        if (at != std::string::npos && (scheme == std::string::npos || at > scheme))
            out += (scheme == std::string::npos ? "" : u.substr(0, scheme + 3)) + "***@" +
                   u.substr(at + 1);
        else
            out += u;
    }
    return out;
}

NatsConfig parse_config(std::string_view text, std::vector<std::string> &warnings) {
    // Types, ranges, choices and unknown keys are the table's (checked by the host before
    // create, and again by the reader). An integer key no longer takes `5.0`.
    const sdk::ConfigReader r(text, config_keys);
    NatsConfig c;
    std::vector<std::string> urls;
    for (const auto &u : r.strings("url"))
        for (auto &p : split_urls(u)) urls.push_back(p);
    if (urls.empty()) throw ConfigError("url", "`url` must name at least one server");
    for (size_t i = 0; i < urls.size(); ++i) {
        std::string problem = url_problem(urls[i]);
        if (!problem.empty())
            throw ConfigError("url", "`url`: " +
                                         (urls.size() > 1 ? "entry " + std::to_string(i + 1) + " "
                                                          : std::string()) +
                                         "\"" + shown_url(urls[i]) + "\" " + problem);
    }
    c.urls = std::move(urls);
    c.stream_name = r.string("stream_name");
    check_name(c.stream_name, "stream_name");
    c.subject_prefix = r.string("subject_prefix");
    check_prefix(c.subject_prefix, "subject_prefix");
    c.consumer_name = r.string("consumer_name");
    check_name(c.consumer_name, "consumer_name");
    c.dlq_stream = r.has("dlq_stream") ? r.string("dlq_stream") : c.stream_name + "_dlq";
    check_name(c.dlq_stream, "dlq_stream");
    if (c.dlq_stream == c.stream_name)
        throw ConfigError("dlq_stream", "`dlq_stream` must differ from `stream_name`");
    c.dlq_prefix = r.string("dlq_prefix");
    check_prefix(c.dlq_prefix, "dlq_prefix");
    if (is_within(c.dlq_prefix, c.subject_prefix) || is_within(c.subject_prefix, c.dlq_prefix))
        throw ConfigError("dlq_prefix", "`dlq_prefix` (\"" + c.dlq_prefix +
                                            "\") and `subject_prefix` (\"" + c.subject_prefix +
                                            "\") must not overlap");

    c.user = r.string("user");
    c.password = r.string("password");
    if (!c.password.empty() && c.user.empty())
        throw ConfigError("user", "`password` is set but `user` is not");
    c.token = r.string("token");
    c.creds_file = r.string("creds_file");
    c.nkey_seed_file = r.string("nkey_seed_file");
    if (!c.creds_file.empty() && !c.nkey_seed_file.empty())
        throw ConfigError("nkey_seed_file", "`creds_file` and `nkey_seed_file` are mutually "
                                            "exclusive");
    c.tls_ca_file = r.string("tls_ca_file");
    c.tls_cert_file = r.string("tls_cert_file");
    c.tls_key_file = r.string("tls_key_file");
    if (c.tls_cert_file.empty() != c.tls_key_file.empty())
        throw ConfigError(c.tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file",
                          "`tls_cert_file` and `tls_key_file` go together");
    c.connect_timeout_ms = r.integer("connect_timeout_ms");
    c.reconnect_wait_ms = r.integer("reconnect_wait_ms");
    c.ping_interval_ms = r.integer("ping_interval_ms");
    c.max_pings_out = r.integer("max_pings_out");
    c.publish_window = r.integer("publish_window");
    c.publish_timeout_ms = r.integer("publish_timeout_ms");
    c.publish_max_attempts = r.integer("publish_max_attempts");
    c.fetch_batch = r.integer("fetch_batch");
    c.fetch_timeout_ms = r.integer("fetch_timeout_ms");

    c.max_bytes = r.integer("jetstream.max_bytes");
    if (c.max_bytes == 0)
        throw ConfigError("jetstream.max_bytes", "`jetstream.max_bytes` must be > 0 (or -1 "
                                                 "for unlimited)");
    c.max_age_days = r.number("jetstream.max_age_days");
    c.max_deliver = r.integer("jetstream.max_deliver");
    c.ack_wait_secs = r.integer("jetstream.ack_wait_secs");
    c.dedup_window_minutes = r.number("jetstream.dedup_window_minutes");
    if (c.dedup_window_minutes <= 0)
        throw ConfigError("jetstream.dedup_window_minutes",
                          "`jetstream.dedup_window_minutes` must be > 0 and at most 10080 "
                          "(one week)");
    c.replicas = r.integer("jetstream.replicas");
    c.memory_storage = r.string("jetstream.storage") == "memory";
    c.backoff_secs = r.numbers("jetstream.backoff_secs");
    for (size_t i = 0; i < c.backoff_secs.size(); ++i)
        if (c.backoff_secs[i] <= 0)
            throw ConfigError("jetstream.backoff_secs[" + std::to_string(i) + "]",
                              "`jetstream.backoff_secs` entries must be positive numbers");
    c.max_ack_pending = r.integer("jetstream.max_ack_pending");
    if (c.max_ack_pending == 0)
        throw ConfigError("jetstream.max_ack_pending",
                          "`jetstream.max_ack_pending` must be > 0 (or -1 for unlimited)");
    if (!c.backoff_secs.empty() && c.max_deliver <= static_cast<int64_t>(c.backoff_secs.size()))
        throw ConfigError("jetstream.backoff_secs",
                          "`jetstream.backoff_secs` has " + std::to_string(c.backoff_secs.size()) +
                              " entries, but only deliveries 1 to `jetstream.max_deliver` - 1 (" +
                              std::to_string(c.max_deliver - 1) +
                              ") can be retried: remove entries or raise max_deliver");

    double horizon_min = c.publish_retry_horizon_ms() / 60000.0;
    if (horizon_min > c.dedup_window_minutes)
        warnings.push_back("jetstream.dedup_window_minutes (" +
                           std::to_string(c.dedup_window_minutes) +
                           ") is shorter than the publish retry horizon (" +
                           std::to_string(horizon_min) +
                           " min = publish_max_attempts x publish_timeout_ms + pauses): a "
                           "retried publish may be stored twice");
    return c;
}

} // namespace fraiseql_observer::nats_transport
