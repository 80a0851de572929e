// Configuration of one pg_listen source instance, parsed from the JSON the host hands over.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::pg_listen {

enum class Mode { notify, outbox, cdc };
enum class Snapshot { never, initial };

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
    uint32_t max_in_flight = 2000;            // records handed to the host and not yet settled (outbox, cdc)

    // cdc mode (logical replication with pgoutput)
    std::string publication = "fraiseql_observer";
    std::string slot;                         // "" = fraiseql_observer_<source name> (see default_slot_name)
    std::vector<std::string> tables;          // "schema.table"; empty = every table of the publication
    bool create = true;                       // create the publication and the slot when missing
    std::map<std::string, std::string> entity_names; // "schema.table" (or "table") -> entity type
    Snapshot snapshot = Snapshot::never;
    std::chrono::milliseconds heartbeat{30000};      // pg_logical_emit_message period; 0 = off
    std::chrono::milliseconds status_interval{1000}; // standby status at least this often
    std::chrono::milliseconds slot_check_interval{5000}; // pg_replication_slots refresh

    // every mode
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

/// A replication slot / publication name check: "" when valid, else why not.
std::string check_slot_name(std::string_view name);
/// The default slot of a source: fraiseql_observer_<source>, lower-cased, every character outside
/// [a-z0-9_] replaced by '_', cut to PostgreSQL's 63 bytes.
std::string default_slot_name(std::string_view source_name);

} // namespace fraiseql_observer::pg_listen
