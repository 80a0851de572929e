#include "config.hpp"

#include <fraiseql_observer/plugin.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <string>

namespace fraiseql_observer::memory {
namespace {

using nlohmann::json;
using sdk::ConfigError;

constexpr std::array<std::string_view, 8> known_keys = {
    "capacity",        "max_deliver",          "ack_wait_ms",       "backoff_ms",
    "dedup_window_ms", "dead_letter_capacity", "publish_timeout_ms",
    "drain_timeout_ms"};

std::string unknown_key_message(const std::string &key) {
    const std::string best = sdk::closest_match(key, known_keys);
    std::string msg = "unknown key '" + key + "' for the memory transport";
    if (!best.empty()) msg += ", did you mean '" + best + "'?";
    else {
        msg += " (known keys:";
        for (auto k : known_keys) msg += " " + std::string(k);
        msg += ")";
    }
    return msg;
}

// `what` names the value in messages (an array element's index); `key` is the key path.
int64_t integer(const json &v, const std::string &key, int64_t min, int64_t max,
                const std::string &what = {}) {
    const std::string name = what.empty() ? key : what;
    if (!v.is_number_integer())
        throw ConfigError(key, "'" + name + "' must be an integer, got " + std::string(v.type_name()));
    int64_t n = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)
                    ? INT64_MAX
                    : v.get<int64_t>();
    if (n < min || n > max)
        throw ConfigError(key, "'" + name + "' must be between " + std::to_string(min) + " and " +
                                   std::to_string(max) + ", got " + std::to_string(n));
    return n;
}

constexpr int64_t one_day_ms = 24LL * 3600 * 1000;

} // namespace

Config parse_config(std::string_view json_text) {
    json root;
    try {
        root = json_text.empty() ? json::object() : json::parse(json_text);
    } catch (const json::exception &e) {
        throw ConfigError("", std::string("config is not valid JSON: ") + e.what());
    }
    if (root.is_null()) root = json::object();
    if (!root.is_object()) throw ConfigError("", "the memory transport's config must be a table");

    Config c;
    for (const auto &[key, v] : root.items()) {
        if (key == "capacity") c.capacity = uint64_t(integer(v, key, 1, 100'000'000));
        else if (key == "max_deliver") c.max_deliver = uint32_t(integer(v, key, 1, 1'000'000));
        else if (key == "ack_wait_ms") c.ack_wait_ms = integer(v, key, 1, one_day_ms);
        else if (key == "dedup_window_ms") c.dedup_window_ms = integer(v, key, 0, 7 * one_day_ms);
        else if (key == "dead_letter_capacity")
            c.dead_letter_capacity = uint64_t(integer(v, key, 0, 100'000'000));
        else if (key == "publish_timeout_ms") c.publish_timeout_ms = integer(v, key, 0, one_day_ms);
        else if (key == "drain_timeout_ms") c.drain_timeout_ms = integer(v, key, 0, one_day_ms);
        else if (key == "backoff_ms") {
            if (!v.is_array())
                throw ConfigError(key, "'backoff_ms' must be an array of integers (milliseconds)");
            if (v.empty()) throw ConfigError(key, "'backoff_ms' must not be empty");
            c.backoff_ms.clear();
            for (size_t i = 0; i < v.size(); ++i)
                c.backoff_ms.push_back(
                    integer(v[i], key, 0, one_day_ms, "backoff_ms[" + std::to_string(i) + "]"));
        } else {
            throw ConfigError(key, unknown_key_message(key));
        }
    }
    return c;
}

} // namespace fraiseql_observer::memory
