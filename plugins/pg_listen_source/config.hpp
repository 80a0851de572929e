// Configuration of one pg_listen source instance, parsed from the JSON the host hands over.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::pg_listen {

enum class Mode { notify, outbox };

struct Config {
    /// libpq URI or key=value string. A secret: never logged (see describe_conninfo()).
    std::string conninfo;
    /// notify mode: the channels to LISTEN on.
    std::vector<std::string> channels{"fraiseql_events"};
    bool channels_set = false; // written in the config (outbox mode ignores channels)
    Mode mode = Mode::notify;

    // outbox mode
    std::string schema = "fraiseql_observer"; // [a-z_][a-z0-9_]*, at most 56 bytes
    uint32_t batch_size = 500;                // rows per SELECT
    std::chrono::milliseconds poll_interval{1000}; // fallback poll when no wake-up arrives
    uint32_t max_in_flight = 2000;            // rows handed to the host and not yet settled

    // both modes
    std::chrono::milliseconds statement_timeout{30000}; // 0 = none
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds reconnect_min{250};
    std::chrono::milliseconds reconnect_max{30000};
    /// How long stop() waits for records already handed to the host to be settled.
    std::chrono::milliseconds drain_timeout{10000};
};

/// Parses and checks the config JSON. Throws sdk::ConfigError(key, message); unknown keys get a
/// "did you mean" hint. Never puts the conninfo value into a message.
Config parse_config(std::string_view json_text);

/// Checks an outbox schema name (also used by the `sql` admin op); "" when valid, else why not.
std::string check_schema_name(std::string_view schema);

const char *to_string(Mode m);

} // namespace fraiseql_observer::pg_listen
