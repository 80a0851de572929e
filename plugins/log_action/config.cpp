#include "config.hpp"

#include <fraiseql_observer/plugin.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace fraiseql_observer::log_action {
namespace {

using nlohmann::json;
using sdk::ConfigError;

constexpr std::array<std::string_view, 8> known_keys = {
    "level",     "format",        "fail_every", "fail_mode", "fail_first_deliveries",
    "fail_entity_types", "delay_ms", "retry_after_ms"};

std::string unknown_key_message(const std::string &key) {
    const std::string best = sdk::closest_match(key, known_keys);
    std::string msg = "unknown key '" + key + "' for the log action";
    if (!best.empty()) msg += ", did you mean '" + best + "'?";
    else {
        msg += " (known keys:";
        for (auto k : known_keys) msg += " " + std::string(k);
        msg += ")";
    }
    return msg;
}

int64_t integer(const json &v, const std::string &key, int64_t min, int64_t max) {
    if (!v.is_number_integer())
        throw ConfigError(key, "'" + key + "' must be an integer, got " + std::string(v.type_name()));
    int64_t n = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)
                    ? INT64_MAX
                    : v.get<int64_t>();
    if (n < min || n > max)
        throw ConfigError(key, "'" + key + "' must be between " + std::to_string(min) + " and " +
                                   std::to_string(max) + ", got " + std::to_string(n));
    return n;
}

std::string string(const json &v, const std::string &key) {
    if (!v.is_string())
        throw ConfigError(key, "'" + key + "' must be a string, got " + std::string(v.type_name()));
    return v.get<std::string>();
}

constexpr int64_t one_hour_ms = 3600LL * 1000;

} // namespace

Config parse_config(std::string_view json_text) {
    json root;
    try {
        root = json_text.empty() ? json::object() : json::parse(json_text);
    } catch (const json::exception &e) {
        throw ConfigError("", std::string("config is not valid JSON: ") + e.what());
    }
    if (root.is_null()) root = json::object();
    if (!root.is_object()) throw ConfigError("", "the log action's config must be a table");

    Config c;
    for (const auto &[key, v] : root.items()) {
        if (key == "level") {
            const std::string s = string(v, key);
            if (s == "trace") c.level = FOBS_LOG_TRACE;
            else if (s == "debug") c.level = FOBS_LOG_DEBUG;
            else if (s == "info") c.level = FOBS_LOG_INFO;
            else if (s == "warn") c.level = FOBS_LOG_WARN;
            else if (s == "error") c.level = FOBS_LOG_ERROR;
            else
                throw ConfigError(key, "'level' must be one of trace, debug, info, warn, error; "
                                       "got '" + s + "'");
        } else if (key == "format") {
            const std::string s = string(v, key);
            if (s == "summary") c.format = Format::summary;
            else if (s == "body") c.format = Format::body;
            else throw ConfigError(key, "'format' must be \"summary\" or \"body\"; got '" + s + "'");
        } else if (key == "fail_every") {
            c.fail_every = uint64_t(integer(v, key, 0, INT64_MAX));
        } else if (key == "fail_mode") {
            const std::string s = string(v, key);
            if (s == "retry") c.fail_mode = FailMode::retry;
            else if (s == "failed") c.fail_mode = FailMode::failed;
            else
                throw ConfigError(key, "'fail_mode' must be \"retry\" or \"failed\"; got '" + s + "'");
        } else if (key == "fail_first_deliveries") {
            c.fail_first_deliveries = uint32_t(integer(v, key, 0, UINT32_MAX));
        } else if (key == "fail_entity_types") {
            if (!v.is_array())
                throw ConfigError(key, "'fail_entity_types' must be an array of strings");
            for (size_t i = 0; i < v.size(); ++i) {
                if (!v[i].is_string())
                    throw ConfigError(key, "'fail_entity_types[" + std::to_string(i) +
                                               "]' must be a string");
                c.fail_entity_types.push_back(v[i].get<std::string>());
            }
        } else if (key == "delay_ms") {
            c.delay_ms = integer(v, key, 0, one_hour_ms);
        } else if (key == "retry_after_ms") {
            c.retry_after_ms = integer(v, key, -1, 24 * one_hour_ms);
        } else {
            throw ConfigError(key, unknown_key_message(key));
        }
    }
    return c;
}

} // namespace fraiseql_observer::log_action
