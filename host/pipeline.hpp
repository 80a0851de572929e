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
#include <functional>
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
    /// Waits up to the given time before a start is tried again; false when the run is to
    /// stop instead (e.g. a signal arrived).
    using RetryWait = std::function<bool(std::chrono::milliseconds)>;
    /// Starts transports, actions, consumers, then sources. A start (or consumer open) that
    /// fails with `retriable` is tried again after `wait` (0.5 s doubling to 30 s; not ready
    /// meanwhile); without `wait`, or for a permanent failure, throws InstanceError /
    /// ConfigError. Returns false when `wait` said to stop before everything started.
    bool start(const RetryWait &wait = {});
    /// Graceful stop (SPEC section 8): sources first, then waits for outstanding publishes,
    /// closes consumers (settling delivered events), stops actions and transports.
    void stop(std::chrono::milliseconds timeout);

    /// Warning lines about the components' limits (fobs.limits/1), after build(): pipelines
    /// whose transport redelivers an unsettled event sooner than twice their longest action
    /// attempt; with ordering = "entity", a window under 4 x the actions' concurrency, a
    /// transport's max_ack_pending above max_in_flight, and on_failure = "skip" with a
    /// transport that cannot say its max_deliver (these three start "file:line:col: key:").
    std::vector<std::string> limit_warnings() const;

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
