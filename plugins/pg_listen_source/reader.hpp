// What the source delegates to: one reader per mode (notify_reader.hpp, outbox_reader.hpp).
// A reader owns its thread and its libpq connection; the source class only routes the SDK calls.
#pragma once

#include <fraiseql_observer/plugin.hpp>
#include <nlohmann/json.hpp>

#include <string>

namespace fraiseql_observer::pg_listen {

class Reader {
  public:
    virtual ~Reader() = default;
    /// [main-thread] Spawns the reader thread; never blocks on the database.
    virtual void start(sdk::SourceSink sink) = 0;
    /// [main-thread] Stops reading, waits (bounded by drain_timeout) for records in flight,
    /// closes the connection. Idempotent.
    virtual void stop() noexcept = 0;
    /// [any-thread]
    virtual bool ready(std::string &why) = 0;
    /// [main-thread] The `status` admin op's answer.
    virtual nlohmann::json status() = 0;
};

} // namespace fraiseql_observer::pg_listen
