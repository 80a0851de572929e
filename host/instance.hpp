// Running component instances: the host side of the ABI for one configured source, transport
// or action. Builds the fobs_host services struct for the instance, calls create/start/stop/
// destroy through the plugin's descriptor, and turns host-side callbacks into completion tokens.
#pragma once

#include "plugin_loader.hpp"

#include <fraiseql_observer/abi.h>
#include <fraiseql_observer/plugin.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::host {

class Services;

/// An outcome as the host keeps it (owning strings).
struct Outcome {
    fobs_outcome_kind kind = FOBS_OUTCOME_OK;
    int64_t retry_after_ms = -1;
    std::string reason;
    std::string component;

    static Outcome ok() { return {}; }
    static Outcome retry(std::string reason, int64_t after_ms = -1) {
        return {FOBS_OUTCOME_RETRY, after_ms, std::move(reason), {}};
    }
    static Outcome failed(std::string reason) {
        return {FOBS_OUTCOME_FAILED, -1, std::move(reason), {}};
    }
    static Outcome from(const fobs_outcome *o);
};
const char *to_string(fobs_outcome_kind k);

using CompletionFn = std::function<void(const Outcome &)>;

/// A host-issued completion token that calls `fn` once and then frees itself. Give it to
/// exactly one plugin call.
const fobs_completion *make_completion(CompletionFn fn);

/// An event with owning storage; `view()` is the ABI struct pointing into it.
struct EventData {
    std::string id, entity_type, operation, entity_id, source, body;
    uint32_t delivery_count = 0;
    uint64_t sequence = 0;

    fobs_event view() const;
    static EventData from(const fobs_event &e);
};

/// Error from create/start/admin: the plugin's message, and the config key it names if any.
class InstanceError : public std::runtime_error {
  public:
    InstanceError(const std::string &message, std::string key_path, bool retriable)
        : std::runtime_error(message), key_path_(std::move(key_path)), retriable_(retriable) {}
    const std::string &key_path() const noexcept { return key_path_; }
    bool retriable() const noexcept { return retriable_; }

  private:
    std::string key_path_;
    bool retriable_;
};

struct InstanceSpec {
    std::string component_name; // "order_webhook"
    std::string instance_name;  // logger name, "pipeline/component" or "component"
    std::string config_json = "{}";
};

/// Common part of every instance. Not thread-safe for lifecycle calls ([main-thread]).
class Instance {
  public:
    virtual ~Instance();
    Instance(const Instance &) = delete;
    Instance &operator=(const Instance &) = delete;

    const LoadedPlugin &plugin() const { return *plugin_; }
    ComponentKind kind() const { return kind_; }
    const std::string &name() const;
    const fobs_host *host() const;

    /// 1 when ready; else false and `why`.
    bool ready(std::string &why) const;
    /// Whether the plugin offers admin operations.
    bool has_admin() const;
    /// Runs an admin request. Throws InstanceError; nullopt when the op is unsupported.
    std::optional<std::string> admin(const std::string &request_json) const;
    /// The component's struct for capability `id` (abi.h, e.g. FOBS_CAP_STATUS), or nullptr
    /// when it offers none (always for a 1.0 plugin).
    const void *capability(const char *id) const;
    /// Calls the JSON capability `id` (fobs_json_capability) with `request_json`; `on_chunk`
    /// sees each chunk of the answer as it is written (progress lines). Returns the whole
    /// answer; nullopt when the capability is not offered or the request not supported.
    /// Throws InstanceError when the component answers with an error.
    std::optional<std::string>
    call_json(const char *id, const std::string &request_json,
              const std::function<void(std::string_view)> &on_chunk = {}) const;
    /// fobs.limits/1: the longest single attempt in ms, 0 when unknown or not offered.
    uint64_t max_attempt_ms() const;
    /// fobs.limits/1 of a transport: ms before an unsettled delivery comes again, 0 = unknown.
    uint64_t redelivery_after_ms() const;
    /// fobs.limits/1 of a transport: deliveries of one event before it gives up on it;
    /// 0 = unknown, UINT64_MAX = unlimited.
    uint64_t max_deliveries() const;
    /// fobs.limits/1 of a transport: events one consumer may hold unsettled at once;
    /// 0 = unknown, UINT64_MAX = unlimited.
    uint64_t max_unacked() const;
    /// fobs.limits/1 of an action: attempts it runs at once; 0 = unknown.
    uint64_t max_concurrency() const;
    /// Stops the instance (idempotent).
    void stop();

  protected:
    Instance(std::shared_ptr<LoadedPlugin> plugin, ComponentKind kind, const InstanceSpec &spec,
             Services &services);
    void create_instance();
    void *self_ = nullptr;
    bool started_ = false;
    bool stopped_ = false;

  public:
    struct HostBlock; // the fobs_host services of this instance (instance.cpp)

  private:
    std::shared_ptr<LoadedPlugin> plugin_;
    ComponentKind kind_;
    std::unique_ptr<HostBlock> host_;
};

class ActionInstance final : public Instance {
  public:
    /// create(); throws InstanceError.
    ActionInstance(std::shared_ptr<LoadedPlugin> plugin, const InstanceSpec &spec,
                   Services &services);
    void start();
    /// [any-thread] Runs the action; `fn` is called exactly once with the outcome.
    void execute(const fobs_event &event, CompletionFn fn);
    /// Convenience for tests: runs and waits (RETRY "timed out" after `timeout_ms`).
    Outcome execute_sync(const EventData &event, int64_t timeout_ms = 30000);
};

/// What a transport's consumer hands to the host.
using DeliverFn = std::function<void(const fobs_event &event, sdk::Completion done)>;

struct ConsumerSpec {
    std::string pipeline;
    std::string consumer_name;
    std::vector<std::string> entity_types;
    std::vector<std::string> operations;
    uint32_t max_in_flight = 1024;
    uint64_t max_attempt_ms = 0; // the pipeline's longest action attempt (fobs.limits/1)
};

class TransportInstance final : public Instance {
  public:
    TransportInstance(std::shared_ptr<LoadedPlugin> plugin, const InstanceSpec &spec,
                      Services &services);
    void start();
    /// [any-thread] Publishes; `fn` is called exactly once (OK once stored durably).
    void publish(const fobs_event &event, CompletionFn fn);
    Outcome publish_sync(const EventData &event, int64_t timeout_ms = 30000);

    class Consumer {
      public:
        ~Consumer(); // closes
        void close();
        /// True when the transport applies the filter hints itself (abi.h filters_applied).
        bool filters_applied() const;

      private:
        friend class TransportInstance;
        struct State;
        std::unique_ptr<State> state_;
    };
    /// Opens a durable consumer; `deliver` runs on transport threads until close().
    std::unique_ptr<Consumer> open_consumer(const ConsumerSpec &spec, DeliverFn deliver);
};

/// What a source hands to the host: the record and its completion token.
using EmitFn = std::function<void(const fobs_source_record &record, sdk::Completion done)>;

class SourceInstance final : public Instance {
  public:
    SourceInstance(std::shared_ptr<LoadedPlugin> plugin, const InstanceSpec &spec,
                   Services &services);
    /// Starts the source; `emit` is called from source threads until stop() returns.
    void start(EmitFn emit);
    ~SourceInstance() override;

  private:
    struct SinkBlock;
    std::unique_ptr<SinkBlock> sink_;
};

} // namespace fraiseql_observer::host
