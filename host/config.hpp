// Configuration model and loader (SPEC section 3).
//
// load_config() reads TOML with toml++, applies environment interpolation to every string value
// (after parsing, so a variable can never inject TOML syntax), checks every key strictly (unknown
// keys are errors with a "did you mean" hint), checks types and ranges, applies the defaults,
// and turns each component's table into the JSON text its plugin receives. Every error is a
// ConfigError whose message starts with "file:line:col: key.path: ".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::host {

struct SourceLocation {
    std::string file; // "" for built-in defaults
    uint32_t line = 0;
    uint32_t column = 0;
};

/// "file:line:col: key.path: reason" (the file alone when there is no line; "<defaults>"
/// for the built-in defaults): how every config error and warning starts.
std::string format_error(const SourceLocation &where, const std::string &key_path,
                         const std::string &reason);

/// A configuration error; what() is the full message with location and key.
class ConfigError : public std::runtime_error {
  public:
    ConfigError(SourceLocation where, std::string key_path, const std::string &message);
    const SourceLocation &where() const noexcept { return where_; }
    const std::string &key_path() const noexcept { return key_path_; }
    const std::string &reason() const noexcept { return reason_; }

  private:
    SourceLocation where_;
    std::string key_path_;
    std::string reason_;
};

enum class Role { all, publisher, worker };
std::optional<Role> parse_role(std::string_view s);
const char *to_string(Role r);

/// Looks up an environment variable; returns nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string &)>;
EnvLookup process_env();

/// One configured component instance ([sources.X], [transports.X], [actions.X], or the seed's
/// [transport] form, which becomes the transport named "default").
struct ComponentConfig {
    std::string name;        // "app_db", "default", "order_webhook"
    std::string plugin;      // "pg_listen", "nats", "webhook"
    std::string section;     // key path of its table: "sources.app_db", "transport.nats"
    std::string config_json; // every key of its table except `plugin`, interpolated, as JSON
    SourceLocation where;    // the table's location
    // Location of every key and array element inside the table, by path relative to the
    // table ("jetstream.max_deliver", "channels[1]"), so errors can point at the line.
    std::map<std::string, SourceLocation> key_locations;
    // Keys whose values were read through a ${VAR} from the environment, hence secret; the
    // plugin's key table adds its own (secret_paths() in config_keys.hpp).
    std::vector<std::string> secret_keys;
    bool is_default = false; // created by the built-in defaults, not written in the file
};

struct PipelineConfig {
    std::string name;
    std::optional<std::string> source; // none: worker-only pipeline
    std::string transport;             // resolved transport name
    std::vector<std::string> actions;  // empty: publisher-only pipeline
    std::vector<std::string> entity_types; // empty: all
    std::vector<std::string> operations;   // empty: all (stored upper-case)
    std::string consumer;               // durable consumer name (resolved default)
    uint32_t max_in_flight = 1024;      // events in flight per pipeline stage (back-pressure)
    // Per-key ordering (SPEC section 5): "none" or "entity" (one event per entity_type +
    // entity_id in the actions at a time, in stream order), and what a key does while its
    // oldest event is failing: "park" (wait until it succeeds) or "skip" (move on once it is
    // dead-lettered after its last delivery).
    enum class Ordering { none, entity };
    enum class OnFailure { park, skip };
    Ordering ordering = Ordering::none;
    OnFailure on_failure = OnFailure::park;
    SourceLocation ordering_at, on_failure_at; // where written (the pipeline's table if not)
    SourceLocation where;
    std::string path; // its key path in messages: "pipelines[2]"; "pipelines" when built in
    bool is_default = false;
};

struct ObserverSettings {
    std::vector<std::string> plugin_dirs;
    std::string metrics_listen = "127.0.0.1:9464";
    std::string log_level = "info";   // trace|debug|info|warn|error
    std::string log_format = "text";  // text|json
    uint32_t shutdown_timeout_secs = 30;
};

struct Config {
    std::string file; // the file it came from; "" when built from defaults only
    ObserverSettings observer;
    std::vector<ComponentConfig> sources;
    std::vector<ComponentConfig> transports;
    std::vector<ComponentConfig> actions;
    std::vector<PipelineConfig> pipelines;
    std::vector<std::string> warnings; // non-fatal remarks to log at startup

    const ComponentConfig *find_source(const std::string &name) const;
    const ComponentConfig *find_transport(const std::string &name) const;
    const ComponentConfig *find_action(const std::string &name) const;
    /// The plugins its components name (sources, transports, actions), sorted, each once: the
    /// only plugins `run` and `validate` load.
    std::vector<std::string> plugin_names() const;
};

struct LoadOptions {
    Role role = Role::all;
    EnvLookup env = process_env();
};

/// Loads and checks `file`. Throws ConfigError.
Config load_config(const std::string &file, const LoadOptions &options = {});
/// Parses TOML text as if read from `file_name` (for tests and `init`). Throws ConfigError.
Config load_config_string(const std::string &toml_text, const std::string &file_name,
                          const LoadOptions &options = {});
/// The built-in defaults (no file at all). Throws ConfigError (e.g. DATABASE_URL unset).
Config default_config(const LoadOptions &options = {});

/// Which file to read: `cli_path` (-c), else $FRAISEQL_OBSERVER_CONFIG, else
/// ./fraiseql-observer.toml when present, else nullopt (built-in defaults).
std::optional<std::string> resolve_config_path(const std::optional<std::string> &cli_path,
                                               const EnvLookup &env);

/// Keys named like credentials (secret, password, token, key, creds, seed) hold secrets even
/// when written literally: the rule for the host's own keys, and for the keys of a plugin
/// that publishes no key table (config_keys.hpp).
bool is_secret_name(std::string_view key);

/// The commented starter config written by `fraiseql-observer init`; validate accepts it.
std::string starter_config();

} // namespace fraiseql_observer::host
