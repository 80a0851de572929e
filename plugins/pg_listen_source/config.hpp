// Configuration of one pg_listen source instance, parsed from the JSON the host hands over.
#pragma once

#include <fraiseql_observer/config_keys.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::pg_listen {

inline constexpr const char *kModes[] = {"notify", "outbox", "cdc", nullptr};
inline constexpr const char *kSnapshots[] = {"never", "initial", nullptr};

/// The key table (the reference: `fraiseql-observer plugins --describe pg_listen`;
/// docs/configuration.md is generated from it). What a table cannot say (libpq syntax,
/// identifier rules, cross-key rules, cdc-only keys) parse_config checks.
inline constexpr fobs_config_key config_keys[] = {
    sdk::Key("conninfo", FOBS_KEY_STRING,
             "The database connection: a libpq URI or `key=value` string, parsed by libpq when the "
             "config is checked (nothing connects then). Never logged or echoed in errors (logs show "
             "`host=… port=… dbname=…`). The session uses `application_name = fraiseql-observer` and "
             "TCP keepalives unless the conninfo says otherwise.")
        .required()
        .secret()
        .not_empty(),
    sdk::Key("mode", FOBS_KEY_STRING,
             "`notify`: every `pg_notify` payload on `channels` is an event (fire-and-forget). "
             "`outbox`: read committed rows of the outbox table, zero loss. `cdc`: every committed "
             "change of the published tables from the WAL (logical replication, `wal_level = "
             "logical`), zero loss, no trigger.")
        .def("\"notify\"")
        .choices(kModes),
    sdk::Key("channels", FOBS_KEY_STRING_LIST,
             "notify mode: the channels to LISTEN on; each ≤ 63 bytes, no NUL, no duplicates, at "
             "least one in notify mode. Ignored in outbox mode (with a warning when written).")
        .def("[\"fraiseql_events\"]"),
    sdk::Key("schema", FOBS_KEY_STRING,
             "outbox mode: the schema where `fraiseql-observer sql` installed the outbox, "
             "`[a-z_][a-z0-9_]*`, ≤ 56 characters (the wake-up channel is `<schema>_wakeup`).")
        .def("\"fraiseql_observer\""),
    sdk::Key("batch_size", FOBS_KEY_INTEGER, "outbox mode: rows per read.").def("500").range(1, 10000),
    sdk::Key("poll_interval_ms", FOBS_KEY_INTEGER,
             "outbox mode: fallback poll when no wake-up NOTIFY arrives.")
        .def("1000")
        .range(10, 3600000),
    sdk::Key("max_in_flight", FOBS_KEY_INTEGER,
             "outbox and cdc modes: records handed to the host and not yet confirmed; reading pauses "
             "when it is reached (this bounds memory whatever the transaction size).")
        .def("2000")
        .range(1, 1000000),
    sdk::Key("publication", FOBS_KEY_STRING,
             "cdc mode: the publication to stream (`[a-z0-9_]`, ≤ 63 characters). Created when "
             "missing and `create = true` (`FOR TABLE` the `tables`, or `FOR ALL TABLES` when "
             "`tables` is empty, which needs a superuser).")
        .def("\"fraiseql_observer\""),
    sdk::Key("slot", FOBS_KEY_STRING,
             "cdc mode: the logical replication slot (pgoutput; `[a-z0-9_]`, ≤ 63 characters). Its "
             "`confirmed_flush_lsn` is the durable checkpoint. Default: `fraiseql_observer_<source>`, "
             "the source name lower-cased with other characters replaced by `_`."),
    sdk::Key("tables", FOBS_KEY_STRING_LIST,
             "cdc mode: the tables whose changes become events, `\"schema.table\"` or `\"table\"` "
             "(= `public.table`), lower-case identifiers, no duplicates; `[]` = every table of the "
             "publication. With `create = true` missing ones are added to the publication.")
        .def("[]"),
    sdk::Key("create", FOBS_KEY_BOOLEAN,
             "cdc mode: create the publication and the slot when missing. With `false`, a missing one "
             "is a not-ready error that prints the SQL to run (`fraiseql-observer sql --mode cdc`).")
        .def("true"),
    sdk::Key("entity_names", FOBS_KEY_STRING_MAP,
             "cdc mode: the entity type of a table, e.g. `entity_names = { \"public.tb_order\" = "
             "\"Order\" }` (values: subject tokens ≤ 128 bytes). Default rule: drop a leading `tb_` and "
             "PascalCase the rest (`tb_order_item` → `OrderItem`).")
        .def("{}"),
    sdk::Key("snapshot", FOBS_KEY_STRING,
             "cdc mode: `initial` emits every existing row once as operation `READ` when the slot is "
             "created, from the slot's exported snapshot (no gap, no overlap with the stream).")
        .def("\"never\"")
        .choices(kSnapshots),
    sdk::Key("heartbeat_secs", FOBS_KEY_INTEGER,
             "cdc mode: how often `pg_logical_emit_message` writes a tiny WAL record so an idle "
             "database lets the slot advance; `0` = off.")
        .def("30")
        .range(0, 86400),
    sdk::Key("status_interval_ms", FOBS_KEY_INTEGER,
             "cdc mode: standby status is sent at least this often, also while the transport is down; "
             "keep it well below the server's `wal_sender_timeout`.")
        .def("1000")
        .range(10, 60000),
    sdk::Key("slot_check_interval_ms", FOBS_KEY_INTEGER,
             "cdc mode: how often `pg_replication_slots` is read for the lag and `wal_status` metrics.")
        .def("5000")
        .range(100, 3600000),
    sdk::Key("statement_timeout_ms", FOBS_KEY_INTEGER,
             "Server-side `statement_timeout` of the source's session; `0` = none.")
        .def("30000")
        .range(0, 86400000),
    sdk::Key("connect_timeout_ms", FOBS_KEY_INTEGER, "Timeout of one connection attempt.")
        .def("10000")
        .range(100, 600000),
    sdk::Key("reconnect_min_ms", FOBS_KEY_INTEGER, "First reconnect delay (doubling, with jitter).")
        .def("250")
        .range(1, 3600000),
    sdk::Key("reconnect_max_ms", FOBS_KEY_INTEGER, "Largest reconnect delay; ≥ `reconnect_min_ms`.")
        .def("30000")
        .range(1, 3600000),
    sdk::Key("drain_timeout_ms", FOBS_KEY_INTEGER,
             "On stop: how long to wait for records already handed to the host to be confirmed.")
        .def("10000")
        .range(0, 3600000),
};

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

/// Reads the config JSON through the key table and checks what the table cannot. Throws
/// sdk::ConfigError(key, message). Never puts the conninfo value into a message.
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
