// The pg_listen source plugin: PostgreSQL changes -> records for the host (SPEC sections 4, 6).
//
// mode = "notify": LISTEN/NOTIFY bridge (notify_reader.hpp); fire-and-forget, like the seed.
// mode = "outbox": transactional outbox with a gap-free, commit-safe reader (outbox_reader.hpp).
// mode = "cdc": logical replication with pgoutput, no trigger (cdc_reader.hpp).
//
// The plugin hands raw payloads to the host, which builds and validates the canonical event.
// Admin ops: {"op":"sql"[,"schema":S][,"mode":"outbox"|"cdc"]} -> {"sql": DDL},
// {"op":"status"} -> counters (cdc: slot, lag, wal_status, confirmed LSN, snapshot progress).
#include "cdc_reader.hpp"
#include "cdc_sql.hpp"
#include "config.hpp"
#include "notify_reader.hpp"
#include "outbox_reader.hpp"
#include "outbox_sql.hpp"

#include <fraiseql_observer/plugin.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <stdexcept>

namespace fraiseql_observer::pg_listen {

using nlohmann::json;

class PgListenSource final : public sdk::Source {
  public:
    // Parses and checks the config only: no connection, no thread (validate = create+destroy).
    static constexpr const auto &config_keys = pg_listen::config_keys;

    explicit PgListenSource(sdk::Host host) : Source(host), config_(parse_config(host.config_json())) {}

    ~PgListenSource() override { stop(); }

    void start(sdk::SourceSink sink) override {
        if (config_.mode == Mode::notify) {
            reader_ = std::make_unique<NotifyReader>(config_, host());
        } else if (config_.mode == Mode::cdc) {
            if (config_.channels_set)
                host().warn("`channels` is ignored in cdc mode: changes come from publication \"" + config_.publication + "\"");
            reader_ = std::make_unique<CdcReader>(config_, host(), std::string(host().component_name()));
        } else {
            if (config_.channels_set)
                host().warn("`channels` is ignored in outbox mode: the outbox wakes the reader on channel \"" +
                            wakeup_channel(config_.schema) + "\"");
            reader_ = std::make_unique<OutboxReader>(config_, host(), std::string(host().component_name()));
        }
        reader_->start(sink);
    }

    void stop() noexcept override {
        if (reader_) reader_->stop();
    }

    bool ready(std::string &why) override {
        if (!reader_) {
            why = "not started";
            return false;
        }
        return reader_->ready(why);
    }

    std::string admin(std::string_view request_json) override {
        auto req = json::parse(request_json, nullptr, false);
        if (!req.is_object() || !req.contains("op") || !req["op"].is_string())
            throw std::runtime_error("admin request must be a JSON object with a string \"op\"");
        const auto op = req["op"].get<std::string>();
        if (op == "sql") {
            // Without "mode", a cdc source answers with its own setup SQL, the others with the outbox's.
            std::string mode = config_.mode == Mode::cdc ? "cdc" : "outbox";
            if (auto it = req.find("mode"); it != req.end() && !it->is_null()) {
                if (!it->is_string()) throw std::runtime_error("\"mode\" must be a string");
                mode = it->get<std::string>();
                if (mode != "outbox" && mode != "cdc")
                    throw std::runtime_error("\"mode\" must be \"outbox\" or \"cdc\" (notify mode needs no SQL of ours)");
                if (mode == "cdc" && config_.mode != Mode::cdc)
                    throw sdk::UnsupportedOperation(std::string("this source is in ") + to_string(config_.mode) +
                                                    " mode, not cdc");
            }
            if (mode == "cdc") {
                std::string slot = config_.slot.empty() ? default_slot_name(host().component_name()) : config_.slot;
                return json{{"sql", cdc_sql(config_, slot)}}.dump();
            }
            std::string schema = config_.schema;
            if (auto it = req.find("schema"); it != req.end() && !it->is_null()) {
                if (!it->is_string()) throw std::runtime_error("\"schema\" must be a string");
                schema = it->get<std::string>();
            }
            if (auto why = check_schema_name(schema); !why.empty())
                throw std::runtime_error("schema \"" + schema + "\": " + why);
            return json{{"sql", outbox_sql(schema)}}.dump();
        }
        if (op == "status") {
            if (reader_) return reader_->status().dump();
            if (config_.mode == Mode::outbox)
                return OutboxReader(config_, host(), std::string(host().component_name())).status().dump();
            if (config_.mode == Mode::cdc)
                return CdcReader(config_, host(), std::string(host().component_name())).status().dump();
            return json{{"mode", "notify"},     {"connected", false}, {"channels", config_.channels},
                        {"outbox_backlog", nullptr}, {"rejected", 0},      {"checkpoint", nullptr}}
                .dump();
        }
        throw sdk::UnsupportedOperation("unknown admin op \"" + op + "\" (pg_listen offers: sql, status)");
    }

  private:
    Config config_;
    std::unique_ptr<Reader> reader_;
};

} // namespace fraiseql_observer::pg_listen

FOBS_PLUGIN("pg_listen", "0.1.0",
            "PostgreSQL source: LISTEN/NOTIFY bridge, a gap-free transactional outbox, or logical-replication CDC",
            fraiseql_observer::pg_listen::PgListenSource)
