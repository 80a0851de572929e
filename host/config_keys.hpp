// A component's config against its plugin's key table (ABI 1.1), and the one way the host
// reports a problem with a component's config.
//
// Key paths are spelled one way everywhere: relative to the component's table, nested keys
// with dots and array elements with brackets ("jetstream.max_deliver", "channels[1]",
// "routes[0].target"); displayed after the component's section ("sources.app.channels[1]").
// A 1.0 plugin may report "channels.1"; it is read as "channels[1]".
//
// Secrets: a key's value is secret when it was read through ${VAR} (config.cpp records those
// in ComponentConfig::secret_keys) or when the plugin's table marks it FOBS_KEY_SECRET. A plugin
// without a table gets the 1.0 rule instead: keys named like credentials (secret, password,
// token, key, creds, seed) are secret.
#pragma once

#include "config.hpp"
#include "plugin_loader.hpp"

#include <fraiseql_observer/config_keys.hpp>

#include <string>
#include <vector>

namespace fraiseql_observer::host {

/// The key table `plugin` publishes for `kind`; empty when it has none (a 1.0 plugin, or one
/// that checks its JSON config itself).
sdk::KeyTable key_table(const LoadedPlugin &plugin, ComponentKind kind);

/// Checks `cfg` against `table` (nothing to do for an empty table). Throws ConfigError with
/// the file:line:col of the key, array element or (for a missing key) the nearest table.
void check_component_keys(const ComponentConfig &cfg, const sdk::KeyTable &table);

/// Every secret key path of `cfg` (see above).
std::vector<std::string> secret_paths(const ComponentConfig &cfg, const sdk::KeyTable &table);

/// The values of `cfg`'s secrets (every string under a secret path, at least 3 bytes long),
/// to scrub from messages that might quote them.
std::vector<std::string> secret_values(const ComponentConfig &cfg, const sdk::KeyTable &table);

/// `cfg.config_json` with every secret replaced by "***", for output and logs.
std::string redacted_config_json(const ComponentConfig &cfg, const sdk::KeyTable &table = {});

/// "channels.1" -> "channels[1]": the one spelling of a key path.
std::string normalize_key_path(const std::string &key_path);

/// The error about `key_path` (relative to the component's table, "" for the table itself) of
/// component `cfg`: at the key's file:line:col, else its nearest written parent's, else the
/// table's; secret values in `message` replaced by "***"; `plugin` (when not empty) named at
/// the end, for errors the plugin reported itself. Used for the host's key-table checks, the
/// plugin's create errors and its start errors alike.
ConfigError component_config_error(const ComponentConfig &cfg, const sdk::KeyTable &table,
                                   const std::string &key_path, const std::string &message,
                                   const std::string &plugin = {});

} // namespace fraiseql_observer::host
