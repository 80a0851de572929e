// The pg_listen source plugin: PostgreSQL changes -> records for the host (SPEC sections 4, 6).
//
// mode = "notify": LISTEN/NOTIFY bridge (notify_reader.hpp); fire-and-forget, like the seed.
// mode = "outbox": transactional outbox with a gap-free, commit-safe reader (outbox_reader.hpp).
// mode = "cdc": logical replication with pgoutput, no trigger (cdc_reader.hpp).
//
// The plugin hands raw payloads to the host, which builds and validates the canonical event.
// Capabilities (abi.h): fobs.sql/1 {["schema":S][,"mode":"outbox"|"cdc"]} -> {"sql": DDL};
// fobs.status/1 -> counters (cdc: slot, lag, wal_status, confirmed LSN, snapshot progress)
// with the generic sections.
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

using json = nlohmann::json;

namespace {
// The generic rendering of fobs.status/1 (abi.h) from a reader's status figures.
void add_status_sections(json &st) {
    auto rows = [&](const json &obj, std::initializer_list<std::pair<const char *, const char *>> keys) {
        json out = json::array();
        for (auto [label, key] : keys)
            if (obj.is_object() && obj.contains(key)) out.push_back(json::array({label, obj[key]}));
        return out;
    };
    const std::string mode = st.value("mode", std::string());
    json sections = json::array();
    json main = {{"title", mode.empty() ? "source" : mode},
                 {"rows", rows(st, {{"connected", "connected"}, {"backlog", "outbox_backlog"},
                                    {"rejected", "rejected"}, {"in_flight", "in_flight"},
                                    {"transactions", "transactions"}})}};
    if (st.contains("channels") && st["channels"].is_array()) {
        std::string channels;
        for (const auto &c : st["channels"]) channels += (channels.empty() ? "" : ",") + c.get<std::string>();
        main["rows"].push_back(json::array({"channels", channels}));
    }
    if (st.contains("checkpoint") && st["checkpoint"].is_object()) {
        main["rows"].push_back(json::array({"checkpoint_txid", st["checkpoint"].value("txid", json())}));
        main["rows"].push_back(json::array({"checkpoint_seq", st["checkpoint"].value("seq", json())}));
    }
    if (st.contains("schema")) main["name"] = st["schema"];
    if (st.contains("publication")) main["name"] = st["publication"];
    sections.push_back(main);
    if (st.contains("slot") && st["slot"].is_string())
        sections.push_back({{"title", "slot"}, {"name", st["slot"]},
                            {"rows", rows(st, {{"lag_bytes", "lag_bytes"}, {"wal_status", "wal_status"},
                                               {"confirmed", "confirmed_lsn"}})}});
    if (st.contains("snapshot") && st["snapshot"].is_object())
        sections.push_back({{"title", "snapshot"}, {"name", st["snapshot"].value("state", json())},
                            {"rows", rows(st["snapshot"], {{"table", "table"}, {"rows", "rows_done"},
                                                           {"of_about", "rows_estimated"},
                                                           {"eta_secs", "eta_secs"}})}});
    st["sections"] = sections;
    if (st.contains("error") && st["error"].is_string() && !st["error"].get<std::string>().empty())
        st["summary"] = st["error"];
    else if (st.contains("connected"))
        st["summary"] = st["connected"] == true ? "connected" : "not connected";
}
} // namespace

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

    // fobs.sql/1 (abi.h): never connects; the instance is created, not started.
    std::string sql_json(std::string_view request_json) override {
        auto req = json::parse(request_json, nullptr, false);
        if (!req.is_object()) throw std::runtime_error("fobs.sql/1 request must be a JSON object");
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

    // fobs.status/1 (abi.h): the reader's figures, plus the generic sections the CLI prints.
    std::string status_json(std::string_view) override {
        json st;
        if (reader_) st = reader_->status();
        else if (config_.mode == Mode::outbox)
            st = OutboxReader(config_, host(), std::string(host().component_name())).status();
        else if (config_.mode == Mode::cdc)
            st = CdcReader(config_, host(), std::string(host().component_name())).status();
        else
            st = json{{"mode", "notify"},     {"connected", false}, {"channels", config_.channels},
                      {"outbox_backlog", nullptr}, {"rejected", 0},      {"checkpoint", nullptr}};
        add_status_sections(st);
        return st.dump();
    }

  private:
    Config config_;
    std::unique_ptr<Reader> reader_;
};

} // namespace fraiseql_observer::pg_listen

FOBS_PLUGIN("pg_listen", "0.1.0",
            "PostgreSQL source: LISTEN/NOTIFY bridge, a gap-free transactional outbox, or logical-replication CDC",
            fraiseql_observer::pg_listen::PgListenSource)
