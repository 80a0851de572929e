// Pipeline wiring: builds the configured component instances and connects them
//
//   source --emit--> [normalise, filter] --publish--> transport --deliver--> [filter] --> actions
//
// with bounded in-flight work at every stage (a slow action slows consumption; a slow transport
// slows the source), per-role selection (all / publisher / worker), metrics, readiness and
// graceful shutdown.
#pragma once

#include "config.hpp"
#include "instance.hpp"
#include "plugin_loader.hpp"
#include "services.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fraiseql_observer::host {

/// Readiness of one component as seen from one pipeline.
struct ComponentState {
    std::string pipeline;
    std::string component; // "source app_db", "transport default", "action hook"
    bool ready = false;
    std::string why;
};

class Runtime {
  public:
    Runtime(const Config &config, const PluginRegistry &plugins, Services &services, Role role);
    ~Runtime();
    Runtime(const Runtime &) = delete;
    Runtime &operator=(const Runtime &) = delete;

    /// Creates every instance the role needs (what `validate` does). Throws ConfigError for
    /// unknown plugins or plugin-reported config errors (with file:line:col of the key).
    void build();
    /// Starts transports, actions, consumers, then sources. Throws InstanceError.
    void start();
    /// Graceful stop (SPEC section 8): sources first, then waits for outstanding publishes,
    /// closes consumers (settling delivered events), stops actions and transports.
    void stop(std::chrono::milliseconds timeout);

    std::vector<ComponentState> readiness() const;
    bool ready() const;

    /// Instances by config name (nullptr when not built for this role).
    TransportInstance *transport(const std::string &name) const;
    const Config &config() const { return config_; }

  private:
    struct Impl;
    const Config &config_;
    std::unique_ptr<Impl> impl_;
};

/// Creates one component instance for `kind` from its config (used by Runtime and the CLI's
/// admin commands). Throws ConfigError naming the file/line/key for config problems.
std::unique_ptr<Instance> make_instance(const ComponentConfig &cfg, ComponentKind kind,
                                        const PluginRegistry &plugins, Services &services,
                                        const std::string &instance_name);

} // namespace fraiseql_observer::host
