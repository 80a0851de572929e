#include "harness.hpp"

#include "process.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <limits>
#include <stdexcept>

namespace fobs_test {

Harness::Harness(const std::string &dir, const std::string &log_level)
    : services_(std::make_unique<host::Services>(host::LogSettings{log_level, "text"})) {
    services_->capture_logs(true);
    registry_.discover({dir.empty() ? plugin_dir() : dir});
}

std::shared_ptr<host::LoadedPlugin> Harness::plugin(const std::string &name) const {
    auto p = registry_.find(name);
    if (!p) {
        std::string msg = "plugin '" + name + "' not found in the build tree";
        for (const auto &pr : registry_.problems()) msg += "\n  " + pr.message;
        throw std::runtime_error(msg);
    }
    return p;
}

static host::InstanceSpec spec(const std::string &name, const std::string &config) {
    host::InstanceSpec s;
    s.component_name = name;
    s.instance_name = "test/" + name;
    s.config_json = config;
    return s;
}

std::unique_ptr<host::ActionInstance> Harness::action(const std::string &p, const std::string &c,
                                                      const std::string &n) {
    return std::make_unique<host::ActionInstance>(plugin(p), spec(n, c), *services_);
}

std::unique_ptr<host::TransportInstance>
Harness::transport(const std::string &p, const std::string &c, const std::string &n) {
    return std::make_unique<host::TransportInstance>(plugin(p), spec(n, c), *services_);
}

std::unique_ptr<host::SourceInstance> Harness::source(const std::string &p, const std::string &c,
                                                      const std::string &n) {
    return std::make_unique<host::SourceInstance>(plugin(p), spec(n, c), *services_);
}

double Harness::metric(const std::string &name, const host::LabelSet &labels) const {
    const host::Series *s = services_->metrics().find(name, labels);
    return s ? s->value() : std::numeric_limits<double>::quiet_NaN();
}

bool Harness::logged(const std::string &needle) const {
    for (const auto &l : services_->captured_logs())
        if (l.find(needle) != std::string::npos) return true;
    return false;
}

void PrintTo(const BadConfig &b, std::ostream *os) { *os << b.config; }

std::string bad_config_name(const ::testing::TestParamInfo<BadConfig> &info) {
    std::string name = std::string(info.param.key) + "_" + std::to_string(info.index);
    for (char &c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return name;
}

void expect_refused(Harness &h, host::ComponentKind kind, const std::string &plugin,
                    const BadConfig &b) {
    try {
        switch (kind) {
        case host::ComponentKind::source: h.source(plugin, b.config); break;
        case host::ComponentKind::transport: h.transport(plugin, b.config); break;
        case host::ComponentKind::action: h.action(plugin, b.config); break;
        }
        ADD_FAILURE() << plugin << " accepted " << b.config;
    } catch (const host::InstanceError &e) {
        EXPECT_EQ(e.key_path(), b.key) << e.what();
        EXPECT_NE(std::string(e.what()).find(b.message_part), std::string::npos) << e.what();
    }
}

host::EventData make_event(const std::string &id, const std::string &entity_type,
                           const std::string &operation, const std::string &entity_id) {
    host::EventData e;
    e.id = id;
    e.entity_type = entity_type;
    e.operation = operation;
    e.entity_id = entity_id;
    e.source = "test";
    nlohmann::json j = {{"id", id},
                        {"entity_type", entity_type},
                        {"operation", operation},
                        {"entity_id", entity_id},
                        {"timestamp", "2026-11-27T04:23:51.123456Z"},
                        {"txid", nullptr},
                        {"entity", {{"id", entity_id}}},
                        {"changes", nullptr},
                        {"source", "test"}};
    e.body = j.dump();
    return e;
}

std::optional<std::string> ask(const host::Instance &instance, const std::string &admin_request_json) {
    auto req = nlohmann::json::parse(admin_request_json);
    std::string op = req.value("op", std::string());
    if (op == "status") {
        req.erase("op");
        return instance.call_json(FOBS_CAP_STATUS, req.dump());
    }
    if (op == "sql") {
        req.erase("op");
        return instance.call_json(FOBS_CAP_SQL, req.dump());
    }
    if (op.rfind("dlq_", 0) == 0) {
        req["op"] = op.substr(4);
        auto answer = instance.call_json(FOBS_CAP_DLQ, req.dump());
        // A line-oriented answer (replay progress) ends with its result.
        if (answer) {
            while (!answer->empty() && answer->back() == '\n') answer->pop_back();
            if (auto nl = answer->rfind('\n'); nl != std::string::npos) answer->erase(0, nl + 1);
        }
        return answer;
    }
    return instance.call_json(FOBS_CAP_DLQ, req.dump()); // unknown op: the component says no
}

} // namespace fobs_test
