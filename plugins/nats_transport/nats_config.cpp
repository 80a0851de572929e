#include "nats_config.hpp"

#include <fraiseql_observer/plugin.hpp>
#include <fraiseql_observer/redact.hpp>
#include <fraiseql_observer/subject_token.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

namespace fraiseql_observer::nats_transport {
namespace {

using nlohmann::json;
using sdk::ConfigError;

const std::vector<std::string> top_keys = {
    "url", "stream_name", "subject_prefix", "consumer_name", "jetstream", "publish_window",
    "publish_timeout_ms", "publish_max_attempts", "fetch_batch", "fetch_timeout_ms",
    "dlq_stream", "dlq_prefix", "user", "password", "token", "creds_file", "nkey_seed_file",
    "tls_ca_file", "tls_cert_file", "tls_key_file", "connect_timeout_ms", "reconnect_wait_ms"};
const std::vector<std::string> jetstream_keys = {
    "max_bytes", "max_age_days", "max_deliver", "ack_wait_secs", "dedup_window_minutes",
    "replicas", "storage", "backoff_secs", "max_ack_pending"};

std::string did_you_mean(std::string_view word, const std::vector<std::string> &candidates) {
    std::string best = sdk::closest_match(word, candidates);
    return best.empty() ? std::string() : " (did you mean `" + best + "`?)";
}

void reject_unknown(const json &obj, const std::vector<std::string> &known,
                    const std::string &prefix) {
    for (const auto &[key, _] : obj.items()) {
        if (std::find(known.begin(), known.end(), key) == known.end())
            throw ConfigError(prefix + key, "unknown key `" + prefix + key + "`" +
                                                did_you_mean(key, known));
    }
}

std::string get_string(const json &obj, const char *key, const std::string &path,
                       const std::string &fallback) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_string()) throw ConfigError(path, "`" + path + "` must be a string");
    return it->get<std::string>();
}

int64_t get_int(const json &obj, const char *key, const std::string &path, int64_t fallback,
                int64_t min, int64_t max) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    int64_t v;
    if (it->is_number_integer()) {
        v = it->get<int64_t>();
    } else if (it->is_number_float() && std::floor(it->get<double>()) == it->get<double>()) {
        v = static_cast<int64_t>(it->get<double>());
    } else {
        throw ConfigError(path, "`" + path + "` must be an integer");
    }
    if (v < min || v > max)
        throw ConfigError(path, "`" + path + "` must be between " + std::to_string(min) +
                                    " and " + std::to_string(max) + " (got " +
                                    std::to_string(v) + ")");
    return v;
}

double get_number(const json &obj, const char *key, const std::string &path, double fallback,
                  double min) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_number()) throw ConfigError(path, "`" + path + "` must be a number");
    double v = it->get<double>();
    if (!(v >= min))
        throw ConfigError(path, "`" + path + "` must be >= " + std::to_string(min));
    return v;
}

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
    json root;
    try {
        root = text.empty() ? json::object() : json::parse(text);
    } catch (const std::exception &e) {
        throw ConfigError("", std::string("config is not valid JSON: ") + e.what());
    }
    if (!root.is_object()) throw ConfigError("", "config must be a table");
    reject_unknown(root, top_keys, "");

    NatsConfig c;
    auto url = root.find("url");
    if (url != root.end() && !url->is_null()) {
        std::vector<std::string> urls;
        if (url->is_string()) {
            urls = split_urls(url->get<std::string>());
        } else if (url->is_array()) {
            for (const auto &u : *url) {
                if (!u.is_string()) throw ConfigError("url", "`url` entries must be strings");
                for (auto &p : split_urls(u.get<std::string>())) urls.push_back(p);
            }
        } else {
            throw ConfigError("url", "`url` must be a string (comma-separated for a cluster)");
        }
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
    }
    c.stream_name = get_string(root, "stream_name", "stream_name", c.stream_name);
    check_name(c.stream_name, "stream_name");
    c.subject_prefix = get_string(root, "subject_prefix", "subject_prefix", c.subject_prefix);
    check_prefix(c.subject_prefix, "subject_prefix");
    c.consumer_name = get_string(root, "consumer_name", "consumer_name", c.consumer_name);
    check_name(c.consumer_name, "consumer_name");
    c.dlq_stream = get_string(root, "dlq_stream", "dlq_stream", c.stream_name + "_dlq");
    check_name(c.dlq_stream, "dlq_stream");
    if (c.dlq_stream == c.stream_name)
        throw ConfigError("dlq_stream", "`dlq_stream` must differ from `stream_name`");
    c.dlq_prefix = get_string(root, "dlq_prefix", "dlq_prefix", c.dlq_prefix);
    check_prefix(c.dlq_prefix, "dlq_prefix");
    if (is_within(c.dlq_prefix, c.subject_prefix) || is_within(c.subject_prefix, c.dlq_prefix))
        throw ConfigError("dlq_prefix", "`dlq_prefix` (\"" + c.dlq_prefix +
                                            "\") and `subject_prefix` (\"" + c.subject_prefix +
                                            "\") must not overlap");

    c.user = get_string(root, "user", "user", "");
    c.password = get_string(root, "password", "password", "");
    if (!c.password.empty() && c.user.empty())
        throw ConfigError("user", "`password` is set but `user` is not");
    c.token = get_string(root, "token", "token", "");
    c.creds_file = get_string(root, "creds_file", "creds_file", "");
    c.nkey_seed_file = get_string(root, "nkey_seed_file", "nkey_seed_file", "");
    if (!c.creds_file.empty() && !c.nkey_seed_file.empty())
        throw ConfigError("nkey_seed_file", "`creds_file` and `nkey_seed_file` are mutually "
                                            "exclusive");
    c.tls_ca_file = get_string(root, "tls_ca_file", "tls_ca_file", "");
    c.tls_cert_file = get_string(root, "tls_cert_file", "tls_cert_file", "");
    c.tls_key_file = get_string(root, "tls_key_file", "tls_key_file", "");
    if (c.tls_cert_file.empty() != c.tls_key_file.empty())
        throw ConfigError(c.tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file",
                          "`tls_cert_file` and `tls_key_file` go together");
    c.connect_timeout_ms =
        get_int(root, "connect_timeout_ms", "connect_timeout_ms", c.connect_timeout_ms, 1, 600'000);
    c.reconnect_wait_ms =
        get_int(root, "reconnect_wait_ms", "reconnect_wait_ms", c.reconnect_wait_ms, 1, 600'000);

    c.publish_window =
        get_int(root, "publish_window", "publish_window", c.publish_window, 1, 1'000'000);
    c.publish_timeout_ms = get_int(root, "publish_timeout_ms", "publish_timeout_ms",
                                   c.publish_timeout_ms, 10, 600'000);
    c.publish_max_attempts = get_int(root, "publish_max_attempts", "publish_max_attempts",
                                     c.publish_max_attempts, 1, 1000);
    c.fetch_batch = get_int(root, "fetch_batch", "fetch_batch", c.fetch_batch, 1, 10'000);
    c.fetch_timeout_ms =
        get_int(root, "fetch_timeout_ms", "fetch_timeout_ms", c.fetch_timeout_ms, 10, 60'000);

    auto jsit = root.find("jetstream");
    if (jsit != root.end() && !jsit->is_null()) {
        if (!jsit->is_object()) throw ConfigError("jetstream", "`jetstream` must be a table");
        const json &js = *jsit;
        reject_unknown(js, jetstream_keys, "jetstream.");
        c.max_bytes = get_int(js, "max_bytes", "jetstream.max_bytes", c.max_bytes, -1, INT64_MAX);
        if (c.max_bytes == 0)
            throw ConfigError("jetstream.max_bytes", "`jetstream.max_bytes` must be > 0 (or -1 "
                                                     "for unlimited)");
        c.max_age_days =
            get_number(js, "max_age_days", "jetstream.max_age_days", c.max_age_days, 0);
        if (c.max_age_days > 36500)
            throw ConfigError("jetstream.max_age_days",
                              "`jetstream.max_age_days` must be at most 36500");
        c.max_deliver =
            get_int(js, "max_deliver", "jetstream.max_deliver", c.max_deliver, 1, 1'000'000);
        c.ack_wait_secs =
            get_int(js, "ack_wait_secs", "jetstream.ack_wait_secs", c.ack_wait_secs, 1, 86400);
        c.dedup_window_minutes = get_number(js, "dedup_window_minutes",
                                            "jetstream.dedup_window_minutes",
                                            c.dedup_window_minutes, 0);
        if (c.dedup_window_minutes <= 0 || c.dedup_window_minutes > 7 * 24 * 60)
            throw ConfigError("jetstream.dedup_window_minutes",
                              "`jetstream.dedup_window_minutes` must be > 0 and at most 10080 "
                              "(one week)");
        c.replicas = get_int(js, "replicas", "jetstream.replicas", c.replicas, 1, 5);
        std::string storage = get_string(js, "storage", "jetstream.storage", "file");
        if (storage != "file" && storage != "memory")
            throw ConfigError("jetstream.storage", "`jetstream.storage` must be \"file\" or "
                                                   "\"memory\" (got \"" + storage + "\")");
        c.memory_storage = storage == "memory";
        auto bo = js.find("backoff_secs");
        if (bo != js.end() && !bo->is_null()) {
            if (!bo->is_array())
                throw ConfigError("jetstream.backoff_secs",
                                  "`jetstream.backoff_secs` must be an array of seconds");
            for (const auto &v : *bo) {
                if (!v.is_number() || v.get<double>() <= 0)
                    throw ConfigError("jetstream.backoff_secs",
                                      "`jetstream.backoff_secs` entries must be positive numbers");
                c.backoff_secs.push_back(v.get<double>());
            }
        }
        c.max_ack_pending = get_int(js, "max_ack_pending", "jetstream.max_ack_pending",
                                    c.max_ack_pending, -1, 10'000'000);
        if (c.max_ack_pending == 0)
            throw ConfigError("jetstream.max_ack_pending",
                              "`jetstream.max_ack_pending` must be > 0 (or -1 for unlimited)");
    }
    if (!c.backoff_secs.empty() && c.max_deliver <= static_cast<int64_t>(c.backoff_secs.size()))
        throw ConfigError("jetstream.backoff_secs",
                          "`jetstream.backoff_secs` has " + std::to_string(c.backoff_secs.size()) +
                              " entries; JetStream requires `jetstream.max_deliver` (" +
                              std::to_string(c.max_deliver) + ") to be greater than that");

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
