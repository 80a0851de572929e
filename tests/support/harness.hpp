// Test harness: the real host loader and host services, for testing one plugin at a time.
//
//   fobs_test::Harness h;                       // plugins from the build tree
//   auto action = h.action("webhook", R"({"url":"http://127.0.0.1:1234/"})");
//   action->start();
//   auto outcome = action->execute_sync(event);
#pragma once

#include "instance.hpp"
#include "plugin_loader.hpp"
#include "services.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <memory>
#include <optional>
#include <string>

namespace fobs_test {

namespace host = fraiseql_observer::host;

class Harness {
  public:
    /// Loads every plugin of `plugin_dir` (default: the build tree's plugin dir). Logs are
    /// captured (see services().captured_logs()) and also written to stderr at `log_level`.
    explicit Harness(const std::string &plugin_dir = {}, const std::string &log_level = "debug");

    host::Services &services() { return *services_; }
    host::PluginRegistry &registry() { return registry_; }
    /// The loaded plugin called `name`; throws std::runtime_error when missing.
    std::shared_ptr<host::LoadedPlugin> plugin(const std::string &name) const;

    /// Created but not started. Throw host::InstanceError when the plugin refuses the config.
    std::unique_ptr<host::ActionInstance> action(const std::string &plugin,
                                                 const std::string &config_json,
                                                 const std::string &name = "test_action");
    std::unique_ptr<host::TransportInstance> transport(const std::string &plugin,
                                                       const std::string &config_json,
                                                       const std::string &name = "test_transport");
    std::unique_ptr<host::SourceInstance> source(const std::string &plugin,
                                                 const std::string &config_json,
                                                 const std::string &name = "test_source");

    /// Value of a metric series (counter/gauge value, histogram count); NaN when absent.
    double metric(const std::string &name, const host::LabelSet &labels = {}) const;
    /// True when any captured log line contains `needle`.
    bool logged(const std::string &needle) const;

  private:
    std::unique_ptr<host::Services> services_;
    host::PluginRegistry registry_;
};

/// A 1.0-style admin request ({"op": "status" | "dlq_list" | "dlq_show" | "dlq_replay" |
/// "dlq_purge" | "sql", ...}) asked through the 1.1 capability that replaced it (fobs.status/1,
/// fobs.dlq/1 with op "list"..., fobs.sql/1). nullopt when the component does not offer it or
/// does not support the request; throws host::InstanceError when it answers with an error.
std::optional<std::string> ask(const host::Instance &instance, const std::string &admin_request_json);

/// A config a plugin must refuse: the key its error must name and a part of its message.
struct BadConfig {
    const char *config;
    const char *key;
    const char *message_part;
};
void PrintTo(const BadConfig &b, std::ostream *os); // readable names in gtest output
std::string bad_config_name(const ::testing::TestParamInfo<BadConfig> &info);
/// Creates a `kind` component of `plugin` with `b.config` and checks (gtest assertions) that it
/// is refused naming `b.key`, with `b.message_part` in the message.
void expect_refused(Harness &h, host::ComponentKind kind, const std::string &plugin,
                    const BadConfig &b);

/// An event for tests with a body built from the fields.
host::EventData make_event(const std::string &id, const std::string &entity_type = "Order",
                           const std::string &operation = "INSERT",
                           const std::string &entity_id = "42");

} // namespace fobs_test
