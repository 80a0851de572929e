// Configuration of the `log` action: its key table (the reference: `fraiseql-observer plugins
// --describe log`, docs/configuration.md is generated from it) and the values read from it.
#pragma once

#include <fraiseql_observer/config_keys.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::log_action {

enum class Format { summary, body };
enum class FailMode { retry, failed };

inline constexpr const char *kLevels[] = {"trace", "debug", "info", "warn", "error", nullptr};
inline constexpr const char *kFormats[] = {"summary", "body", nullptr};
inline constexpr const char *kFailModes[] = {"retry", "failed", nullptr};

inline constexpr fobs_config_key config_keys[] = {
    sdk::Key("level", FOBS_KEY_STRING,
             "Level of the line written per event (lines below `[observer] log_level` are skipped).")
        .def("\"info\"")
        .choices(kLevels),
    sdk::Key("format", FOBS_KEY_STRING,
             "`summary`: `event <entity_type>.<operation> entity_id=… id=… delivery=<n>`; `body`: the "
             "whole event JSON.")
        .def("\"summary\"")
        .choices(kFormats),
    sdk::Key("fail_every", FOBS_KEY_INTEGER,
             "Every Nth execution of this action instance fails; `0` = never. (Test and demo knob, "
             "like every `fail_*` key, `delay_ms` and `retry_after_ms`.)")
        .def("0")
        .range(0, 9e18),
    sdk::Key("fail_mode", FOBS_KEY_STRING,
             "Whether a `fail_every` failure is transient (RETRY) or permanent (FAILED).")
        .def("\"retry\"")
        .choices(kFailModes),
    sdk::Key("fail_first_deliveries", FOBS_KEY_INTEGER,
             "RETRY while the event's `delivery_count` ≤ N (only when the transport reports delivery "
             "counts): `2` fails twice, then succeeds.")
        .def("0")
        .range(0, 4294967295.0),
    sdk::Key("fail_entity_types", FOBS_KEY_STRING_LIST,
             "Events of these entity types fail permanently (FAILED → dead letter). When several "
             "knobs apply, the first of `fail_entity_types`, `fail_first_deliveries`, `fail_every` "
             "wins.")
        .def("[]"),
    sdk::Key("delay_ms", FOBS_KEY_INTEGER,
             "Wait this long before completing (blocks the calling thread), to simulate a slow action.")
        .def("0")
        .range(0, 3600000),
    sdk::Key("retry_after_ms", FOBS_KEY_INTEGER,
             "The delay asked for with every RETRY this action produces; `-1` = the transport's backoff.")
        .def("-1")
        .range(-1, 86400000),
};

struct Config {
    fobs_log_level level = FOBS_LOG_INFO;
    Format format = Format::summary;
    uint64_t fail_every = 0;            // every Nth execution fails (0 = never)
    FailMode fail_mode = FailMode::retry;
    uint32_t fail_first_deliveries = 0; // RETRY while delivery_count <= N
    std::vector<std::string> fail_entity_types; // permanent failure for these types
    int64_t delay_ms = 0;               // sleep before completing
    int64_t retry_after_ms = -1;        // delay requested with RETRY (-1 = transport's backoff)
};

/// Reads the component's JSON config through its key table; throws sdk::ConfigError naming
/// the key.
Config parse_config(std::string_view json_text);

} // namespace fraiseql_observer::log_action
