#include "cli.hpp"

#include "cli_reference.hpp"
#include "config.hpp"
#include "config_suggest.hpp"
#include "http_endpoint.hpp"
#include "log_text.hpp"
#include "pipeline.hpp"
#include "plugin_describe.hpp"
#include "plugin_loader.hpp"
#include "services.hpp"
#include "top.hpp"

#include <fraiseql_observer/redact.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fraiseql_observer::host {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Args {
    std::string command;
    std::vector<std::string> positional;
    std::optional<std::string> config;
    std::optional<std::string> role;
    std::vector<std::string> plugin_dirs;
    bool json = false;
    bool describe = false;
    std::optional<std::string> format; // plugins --describe: text | json | markdown
    bool force = false;
    bool all = false;
    std::optional<std::string> pipeline;
    std::optional<uint64_t> seq;
    std::optional<uint64_t> limit;
    std::optional<std::string> schema;
    std::optional<std::string> mode; // sql --mode
    std::optional<std::string> url;  // top --url
    bool once = false;               // top --once
};

uint64_t parse_number(const std::string &opt, const std::string &v) {
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 18)
        throw UsageError(opt + " expects a non-negative integer, got \"" + v + "\"");
    return std::stoull(v);
}

Args parse_args(int argc, char **argv) {
    Args a;
    std::vector<std::string> in(argv + 1, argv + argc);
    for (size_t i = 0; i < in.size(); ++i) {
        const std::string &s = in[i];
        auto value = [&](const std::string &opt) -> std::string {
            auto eq = s.find('=');
            if (s.rfind("--", 0) == 0 && eq != std::string::npos) return s.substr(eq + 1);
            if (i + 1 >= in.size()) throw UsageError(opt + " needs a value");
            return in[++i];
        };
        auto is = [&](const char *opt) {
            return s == opt || s.rfind(std::string(opt) + "=", 0) == 0;
        };
        if (s == "-h" || s == "--help") a.command = "help";
        else if (s == "--help-man" || s == "--help-completion") a.command = s.substr(2); // for the build
        else if (s == "--version" || s == "-V") a.command = "version";
        else if (s == "-c" || is("--config")) a.config = value("--config");
        else if (is("--role")) a.role = value("--role");
        else if (is("--plugin-dir")) a.plugin_dirs.push_back(value("--plugin-dir"));
        else if (s == "--json") a.json = true;
        else if (s == "--describe") a.describe = true;
        else if (is("--format")) a.format = value("--format");
        else if (s == "--force") a.force = true;
        else if (s == "--all") a.all = true;
        else if (is("--pipeline")) a.pipeline = value("--pipeline");
        else if (is("--seq")) a.seq = parse_number("--seq", value("--seq"));
        else if (is("--limit")) a.limit = parse_number("--limit", value("--limit"));
        else if (is("--schema")) a.schema = value("--schema");
        else if (is("--mode")) a.mode = value("--mode");
        else if (is("--url")) a.url = value("--url");
        else if (s == "--once") a.once = true;
        else if (!s.empty() && s[0] == '-') throw UsageError("unknown option " + s);
        else if (a.command.empty()) a.command = s;
        else a.positional.push_back(s);
    }
    return a;
}

LoadOptions load_options(const Args &a) {
    LoadOptions o;
    if (a.role) {
        auto r = parse_role(*a.role);
        if (!r) throw UsageError("--role must be all, publisher or worker, not \"" + *a.role + "\"");
        o.role = *r;
    }
    return o;
}

Config load(const Args &a, const LoadOptions &o) {
    auto path = resolve_config_path(a.config, o.env);
    return path ? load_config(*path, o) : default_config(o);
}

std::vector<fs::path> search_path(const Args &a, const Config *cfg) {
    const char *env = std::getenv("FRAISEQL_OBSERVER_PLUGIN_PATH");
    std::vector<std::string> cfg_dirs;
    if (cfg) {
        // [observer] plugin_dirs are relative to the config file's directory.
        fs::path base = cfg->file.empty() ? fs::current_path() : fs::path(cfg->file).parent_path();
        for (const auto &d : cfg->observer.plugin_dirs) {
            fs::path p(d);
            cfg_dirs.push_back((p.is_absolute() ? p : base / p).string());
        }
    }
    return plugin_search_path(a.plugin_dirs, env ? env : "", cfg_dirs, executable_path());
}

void report_problems(const PluginRegistry &reg, spdlog::logger *log) {
    for (const auto &p : reg.problems()) {
        if (log) log->warn("{}", p.message);
        else std::cerr << "warning: " << p.message << "\n";
    }
}

// -------------------------------------------------------------------------------------------

int cmd_run(const Args &a) {
    // Block the stop signals in every thread; the main thread waits for them with sigwait.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    LoadOptions lo = load_options(a);
    Config cfg = load(a, lo);
    Services services(LogSettings{cfg.observer.log_level, cfg.observer.log_format});
    auto log = services.logger("observer");
    for (const auto &w : cfg.warnings) log->warn("{}", w);

    PluginRegistry reg;
    reg.load_named(search_path(a, &cfg), cfg.plugin_names());
    report_problems(reg, log.get());
    for (const auto &p : reg.plugins()) {
        for (const auto &k : p->kinds()) {
            services.metrics()
                .series(MetricType::gauge, "plugin_info", "Loaded plugins",
                        {{"plugin", p->name},
                         {"kind", k},
                         {"version", p->version},
                         {"abi", std::to_string(p->abi_major) + "." + std::to_string(p->abi_minor)}})
                ->set(1);
        }
    }

    Runtime runtime(cfg, reg, services, lo.role);
    runtime.build();

    std::unique_ptr<HttpEndpoint> http;
    if (!cfg.observer.metrics_listen.empty()) {
        http = std::make_unique<HttpEndpoint>(cfg.observer.metrics_listen, services.metrics(),
                                              [&runtime] {
                                                  Readiness r;
                                                  json comps = json::array();
                                                  bool all = true;
                                                  for (const auto &s : runtime.readiness()) {
                                                      all = all && s.ready;
                                                      json c = {{"pipeline", s.pipeline},
                                                                {"component", s.component},
                                                                {"ready", s.ready}};
                                                      if (!s.ready) c["why"] = s.why;
                                                      comps.push_back(c);
                                                  }
                                                  r.ready = all && runtime.ready();
                                                  r.json = json{{"ready", r.ready},
                                                                {"components", comps}}
                                                               .dump();
                                                  return r;
                                              });
        http->start();
        log->info("metrics on http://{}:{}/metrics (also /healthz, /readyz)", http->host(),
                  http->port());
    }

    try {
        runtime.start();
    } catch (const std::exception &e) {
        log->error("startup failed: {}", e.what());
        runtime.stop(std::chrono::seconds(cfg.observer.shutdown_timeout_secs));
        return 1;
    }
    log->info("running {} pipeline(s) as role {}", cfg.pipelines.size(), to_string(lo.role));

    int sig = 0;
    sigwait(&stop_signals, &sig);
    log->info("received {}, draining (up to {} s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
              cfg.observer.shutdown_timeout_secs);
    runtime.stop(std::chrono::seconds(cfg.observer.shutdown_timeout_secs));
    if (http) http->stop();
    log->info("stopped");
    return 0;
}

int cmd_validate(const Args &a) {
    LoadOptions lo = load_options(a);
    Config cfg = load(a, lo);
    Services services(LogSettings{"warn", "text"});
    PluginRegistry reg;
    reg.load_named(search_path(a, &cfg), cfg.plugin_names());
    report_problems(reg, nullptr);
    {
        Runtime runtime(cfg, reg, services, lo.role); // create + destroy every instance
        runtime.build();
    }
    // Components no pipeline (of this role) uses are checked too, and pointed out.
    std::vector<std::string> unused;
    auto check_all = [&](const std::vector<ComponentConfig> &list, ComponentKind kind,
                         const char *table) {
        for (const auto &c : list) {
            bool used = false;
            for (const auto &p : cfg.pipelines) {
                if (kind == ComponentKind::source) used |= p.source == c.name;
                if (kind == ComponentKind::transport) used |= p.transport == c.name;
                if (kind == ComponentKind::action)
                    used |= std::find(p.actions.begin(), p.actions.end(), c.name) != p.actions.end();
            }
            if (used) continue;
            make_instance(c, kind, reg, services, c.name); // created and destroyed: no I/O
            unused.push_back(std::string(table) + "." + c.name);
        }
    };
    check_all(cfg.sources, ComponentKind::source, "sources");
    check_all(cfg.transports, ComponentKind::transport, "transports");
    check_all(cfg.actions, ComponentKind::action, "actions");
    std::cout << (cfg.file.empty() ? std::string("built-in defaults") : cfg.file) << ": OK\n";
    for (const auto &w : cfg.warnings) std::cout << "  warning: " << w << "\n";
    for (const auto &u : unused) std::cout << "  warning: [" << u << "] is declared but no pipeline uses it\n";
    for (const auto &p : cfg.pipelines) {
        std::cout << "  pipeline " << p.name << ": "
                  << (p.source ? "source " + *p.source : std::string("(no source)")) << " -> "
                  << "transport " << p.transport << " -> ";
        if (p.actions.empty()) std::cout << "(publish only)";
        for (size_t i = 0; i < p.actions.size(); ++i) std::cout << (i ? ", " : "") << p.actions[i];
        if (!p.actions.empty()) std::cout << " [consumer " << p.consumer << "]";
        std::cout << "\n";
    }
    return 0;
}

// plugins --describe NAME... | --all: the key tables, in the order named (--all: by name).
int describe(const Args &a, const PluginRegistry &reg) {
    DescribeFormat format = a.json ? DescribeFormat::json : DescribeFormat::text;
    if (a.format) {
        if (*a.format == "text") format = DescribeFormat::text;
        else if (*a.format == "json") format = DescribeFormat::json;
        else if (*a.format == "markdown") format = DescribeFormat::markdown;
        else throw UsageError("--format must be text, json or markdown, not \"" + *a.format + "\"");
    }
    if (a.all == !a.positional.empty())
        throw UsageError("plugins --describe needs plugin names or --all (not both)");
    std::vector<const LoadedPlugin *> chosen;
    if (a.all) {
        for (const auto &name : reg.names()) chosen.push_back(reg.find(name).get());
    }
    for (const auto &name : a.positional) {
        auto p = reg.find(name);
        if (!p) {
            std::string hint = closest_match(name, reg.names());
            throw UsageError("no plugin named '" + name + "' on the plugin search path" +
                             (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"));
        }
        chosen.push_back(p.get());
    }
    std::cout << describe_plugins(chosen, format);
    report_problems(reg, nullptr);
    return 0;
}

int cmd_plugins(const Args &a) {
    const Config *cfgp = nullptr;
    std::optional<Config> cfg;
    // The same search path as `run`, including a config's plugin_dirs.
    if (resolve_config_path(a.config, process_env())) {
        cfg = load(a, load_options(a));
        cfgp = &*cfg;
    }
    PluginRegistry reg;
    reg.discover(search_path(a, cfgp));
    if (a.describe) return describe(a, reg);
    if (a.json) {
        json out = {{"plugins", json::array()}, {"problems", json::array()}};
        for (const auto &p : reg.plugins())
            out["plugins"].push_back(
                {{"name", p->name},
                 {"kind", p->kinds()},
                 {"version", p->version},
                 {"abi", std::to_string(p->abi_major) + "." + std::to_string(p->abi_minor)},
                 {"description", p->description},
                 {"file", p->file.string()}});
        for (const auto &pr : reg.problems())
            out["problems"].push_back({{"file", pr.file.string()}, {"message", pr.message}});
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    if (reg.plugins().empty()) std::cout << "no plugins found\n";
    for (const auto &p : reg.plugins()) {
        std::string kinds;
        for (const auto &k : p->kinds()) kinds += (kinds.empty() ? "" : ",") + k;
        std::printf("%-12s %-18s %-9s abi %u.%u  %s\n", p->name.c_str(), kinds.c_str(),
                    p->version.c_str(), p->abi_major, p->abi_minor, p->file.c_str());
    }
    report_problems(reg, nullptr);
    return 0;
}

// Creates and starts the transport a pipeline uses, for admin operations.
struct AdminContext {
    Config cfg;
    std::unique_ptr<Services> services;
    PluginRegistry reg;
    std::map<std::string, std::unique_ptr<Instance>> instances; // by "kind:name"

    Instance *get(ComponentKind kind, const std::string &name, bool start) {
        std::string key = std::string(to_string(kind)) + ":" + name;
        auto &slot = instances[key];
        if (!slot) {
            const ComponentConfig *c = kind == ComponentKind::transport ? cfg.find_transport(name)
                                       : kind == ComponentKind::source  ? cfg.find_source(name)
                                                                        : cfg.find_action(name);
            if (!c) throw UsageError(std::string("no ") + to_string(kind) + " named " + name);
            slot = make_instance(*c, kind, reg, *services, name);
            if (start && kind == ComponentKind::transport)
                static_cast<TransportInstance *>(slot.get())->start();
        }
        return slot.get();
    }
};

std::unique_ptr<AdminContext> admin_context(const Args &a) {
    auto ctx = std::make_unique<AdminContext>();
    LoadOptions lo = load_options(a);
    lo.role = Role::worker; // admin commands need transports, not a source connection
    ctx->cfg = load(a, lo);
    ctx->services = std::make_unique<Services>(LogSettings{"warn", "text"});
    ctx->reg.load_named(search_path(a, &ctx->cfg), ctx->cfg.plugin_names());
    return ctx;
}

const PipelineConfig &pick_pipeline(const Config &cfg, const std::optional<std::string> &name) {
    if (name) {
        for (const auto &p : cfg.pipelines)
            if (p.name == *name) return p;
        throw UsageError("no pipeline named " + *name);
    }
    if (cfg.pipelines.empty()) throw UsageError("the config has no pipeline");
    if (cfg.pipelines.size() > 1) {
        std::string names;
        for (const auto &p : cfg.pipelines) names += (names.empty() ? "" : ", ") + p.name;
        throw UsageError("several pipelines (" + names + "): choose one with --pipeline");
    }
    return cfg.pipelines.front();
}

json admin_call(Instance *inst, const json &request) {
    auto answer = inst->admin(request.dump());
    if (!answer)
        throw std::runtime_error(std::string(to_string(inst->kind())) + " '" + inst->name() +
                                 "' (plugin " + inst->plugin().name + ") does not support '" +
                                 request.value("op", std::string()) + "'");
    json j = json::parse(*answer, nullptr, false);
    if (j.is_discarded()) throw std::runtime_error("plugin answered with invalid JSON");
    return j;
}

// Components answer with their own text (a transport's "connected to nats://user:pw@…", a
// source's last error): every string in it is redacted before it is printed, in both formats.
// `only_keys` limits that to members with those names (DLQ entries: the reasons, not the events).
void redact_strings(json &j, std::initializer_list<const char *> only_keys = {}) {
    if (j.is_string() && only_keys.size() == 0) {
        j = sdk::redact_secrets(j.get_ref<const std::string &>());
    } else if (j.is_object()) {
        for (auto &[k, v] : j.items()) {
            bool named = std::any_of(only_keys.begin(), only_keys.end(), [&](const char *n) { return k == n; });
            if (named && v.is_string()) v = sdk::redact_secrets(v.get_ref<const std::string &>());
            else redact_strings(v, only_keys);
        }
    } else if (j.is_array()) {
        for (auto &v : j) redact_strings(v, only_keys);
    }
}

// For the text table: every string one line of printable text (a component's message cannot
// add lines or terminal escapes to what the user reads).
void escape_strings(json &j) {
    if (j.is_string()) j = escape_log_text(j.get_ref<const std::string &>());
    else if (j.is_structured())
        for (auto &v : j) escape_strings(v);
}

std::string num(const json &j, const char *key) {
    if (!j.contains(key) || j[key].is_null()) return "-";
    return j[key].dump();
}

int cmd_status(const Args &a) {
    auto ctx = admin_context(a);
    json out = {{"pipelines", json::array()}};
    for (const auto &p : ctx->cfg.pipelines) {
        json entry = {{"name", p.name}, {"transport", p.transport}, {"consumer", p.consumer}};
        try {
            auto *t = ctx->get(ComponentKind::transport, p.transport, true);
            entry["transport_status"] =
                admin_call(t, {{"op", "status"}, {"consumer", p.actions.empty() ? "" : p.consumer}});
        } catch (const std::exception &e) {
            entry["transport_error"] = e.what();
        }
        if (p.source) {
            entry["source"] = *p.source;
            try {
                auto *s = ctx->get(ComponentKind::source, *p.source, false);
                if (s->has_admin()) entry["source_status"] = admin_call(s, {{"op", "status"}});
            } catch (const std::exception &e) {
                entry["source_error"] = e.what();
            }
        }
        out["pipelines"].push_back(entry);
    }
    redact_strings(out);
    if (a.json) {
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    escape_strings(out);
    // A readable table. Transports answer in their own shapes; the common fields are read
    // with fallbacks (nats: nested stream/consumer/dlq objects; memory: flat counts).
    auto field = [](const json &obj, std::initializer_list<const char *> keys) -> std::string {
        if (!obj.is_object()) return "-";
        for (const char *k : keys)
            if (obj.contains(k) && !obj[k].is_null())
                return obj[k].is_string() ? obj[k].get<std::string>() : obj[k].dump();
        return "-";
    };
    // A clustered stream's or consumer's Raft group (nats: "cluster" beside the figures): its
    // leader and each other replica's state, one line under the figures it belongs to.
    auto replicas_line = [&](const json &obj) {
        if (!obj.is_object() || !obj.contains("cluster") || !obj["cluster"].is_object()) return;
        const json &c = obj["cluster"];
        if (field(c, {"name"}) == "-" || field(c, {"name"}).empty()) return; // not clustered
        std::string line = "leader=" + (field(c, {"leader"}).empty() ? std::string("none")
                                                                       : field(c, {"leader"}));
        for (const auto &r : c.value("replicas", json::array())) {
            line += " " + field(r, {"name"}) + "=" + field(r, {"state"});
            if (field(r, {"lag_ops"}) != "0" && field(r, {"lag_ops"}) != "-")
                line += "(lag " + field(r, {"lag_ops"}) + ")";
        }
        std::printf("  %-10s %-26s %s\n", "", "replicas", line.c_str());
    };
    for (const auto &e : out["pipelines"]) {
        std::printf("pipeline %s\n", e["name"].get<std::string>().c_str());
        if (e.contains("source")) {
            const json s = e.value("source_status", json::object());
            std::printf("  %-10s %-26s connected=%s backlog=%s rejected=%s%s\n", "source",
                        e["source"].get<std::string>().c_str(), field(s, {"connected"}).c_str(),
                        field(s, {"outbox_backlog", "backlog"}).c_str(),
                        field(s, {"rejected"}).c_str(),
                        e.contains("source_error")
                            ? ("  (" + e["source_error"].get<std::string>() + ")").c_str()
                            : "");
            // Sources with a replication slot (cdc) add its state: the fields are the source's
            // own status answer, shown when present.
            if (s.contains("slot") && s["slot"].is_string())
                std::printf("  %-10s %-26s lag_bytes=%s wal_status=%s confirmed=%s\n", "slot",
                            s["slot"].get<std::string>().c_str(), field(s, {"lag_bytes"}).c_str(),
                            field(s, {"wal_status"}).c_str(), field(s, {"confirmed_lsn"}).c_str());
            if (s.contains("snapshot") && s["snapshot"].is_object())
                std::printf("  %-10s %-26s rows=%s of ~%s eta_secs=%s\n", "snapshot",
                            field(s["snapshot"], {"state"}).c_str(), field(s["snapshot"], {"rows_done"}).c_str(),
                            field(s["snapshot"], {"rows_estimated"}).c_str(), field(s["snapshot"], {"eta_secs"}).c_str());
        }
        if (e.contains("transport_error")) {
            std::printf("  %-10s %-26s %s\n", "transport", e["transport"].get<std::string>().c_str(),
                        e["transport_error"].get<std::string>().c_str());
            continue;
        }
        const json &t = e["transport_status"];
        std::printf("  %-10s %-26s %s\n", "transport", e["transport"].get<std::string>().c_str(),
                    field(t, {"connection", "transport"}).c_str());
        const json stream = t.contains("stream") ? t["stream"] : t;
        std::printf("  %-10s %-26s messages=%s bytes=%s\n", "stream",
                    field(stream, {"name"}) == "-" ? "" : field(stream, {"name"}).c_str(),
                    field(stream, {"messages"}).c_str(), field(stream, {"bytes"}).c_str());
        replicas_line(stream);
        if (!e["consumer"].get<std::string>().empty() && e.contains("transport_status")) {
            const json c = t.value("consumer", json());
            if (c.is_object()) {
                std::printf("  %-10s %-26s pending=%s ack_pending=%s redelivered=%s\n", "consumer",
                            e["consumer"].get<std::string>().c_str(),
                            field(c, {"num_pending", "pending"}).c_str(),
                            field(c, {"num_ack_pending", "ack_pending"}).c_str(),
                            field(c, {"num_redelivered", "redelivered"}).c_str());
                replicas_line(c);
            } else
                std::printf("  %-10s %-26s (not created yet)\n", "consumer",
                            e["consumer"].get<std::string>().c_str());
        }
        const json d = t.value("dlq", json::object());
        std::printf("  %-10s %-26s depth=%s\n", "dlq",
                    field(d, {"name"}) == "-" ? "" : field(d, {"name"}).c_str(),
                    field(d, {"depth"}) != "-" ? field(d, {"depth"}).c_str()
                                               : field(t, {"dlq_depth"}).c_str());
        replicas_line(d);
    }
    return 0;
}

int cmd_dlq(const Args &a) {
    if (a.positional.empty()) throw UsageError("dlq needs a subcommand: list, show, replay or purge");
    const std::string &sub = a.positional[0];
    auto ctx = admin_context(a);
    const PipelineConfig &p = pick_pipeline(ctx->cfg, a.pipeline);
    auto *t = ctx->get(ComponentKind::transport, p.transport, true);
    json req;
    if (sub == "list") {
        req = {{"op", "dlq_list"}, {"limit", a.limit.value_or(100)}};
    } else if (sub == "show") {
        if (!a.seq) throw UsageError("dlq show needs --seq N");
        req = {{"op", "dlq_show"}, {"seq", *a.seq}};
    } else if (sub == "replay") {
        if (!a.seq && !a.all) throw UsageError("dlq replay needs --seq N or --all");
        req = {{"op", "dlq_replay"}};
        if (a.seq) req["seq"] = *a.seq;
        else req["all"] = true;
    } else if (sub == "purge") {
        if (!a.seq && !a.all) throw UsageError("dlq purge needs --seq N or --all");
        req = {{"op", "dlq_purge"}};
        if (a.seq) req["seq"] = *a.seq;
        else req["all"] = true;
    } else {
        throw UsageError("unknown dlq subcommand \"" + sub + "\" (list, show, replay, purge)");
    }
    json ans = admin_call(t, req);
    redact_strings(ans, {"reason", "error", "last_error"});
    if (a.json || sub != "list" || !ans.contains("entries")) {
        std::cout << ans.dump(2) << "\n";
        return 0;
    }
    if (ans["entries"].empty()) std::cout << "DLQ is empty\n";
    for (const auto &e : ans["entries"]) {
        auto text = [&](const char *key, const char *absent) {
            return escape_log_text(e.contains(key) && e[key].is_string() ? e[key].get<std::string>() : absent);
        };
        std::cout << "seq " << num(e, "seq") << "  id " << text("id", "-") << "  " << text("subject", "")
                  << "  deliveries " << num(e, "delivery_count") << "  action " << text("action", "-")
                  << "\n    reason: " << text("reason", "") << "\n";
    }
    return 0;
}

int cmd_sql(const Args &a) {
    // The SQL belongs to the source plugin that implements the outbox (the host knows no plugin
    // by name): ask every source plugin that offers admin operations for op "sql".
    std::optional<Config> cfg;
    if (resolve_config_path(a.config, process_env())) cfg = load(a, load_options(a));
    Services services(LogSettings{"error", "text"});
    PluginRegistry reg;
    reg.discover(search_path(a, cfg ? &*cfg : nullptr));
    if (a.mode && *a.mode != "outbox" && *a.mode != "cdc")
        throw UsageError("--mode must be outbox or cdc (got \"" + *a.mode + "\")");
    json req = {{"op", "sql"}, {"schema", a.schema.value_or("fraiseql_observer")}};
    if (a.mode) req["mode"] = *a.mode;
    std::vector<std::string> tried;
    auto try_instance = [&](std::unique_ptr<Instance> inst) -> bool {
        if (!inst || !inst->has_admin()) return false;
        auto ans = admin_call(inst.get(), req);
        if (!ans.contains("sql")) return false;
        std::cout << ans["sql"].get<std::string>();
        return true;
    };
    if (cfg) {
        for (const auto &s : cfg->sources) {
            try {
                if (try_instance(make_instance(s, ComponentKind::source, reg, services, s.name)))
                    return 0;
            } catch (const std::exception &e) {
                tried.push_back(s.name + ": " + e.what());
            }
        }
    }
    for (const auto &p : reg.plugins()) {
        if (!p->source || !p->source->admin) continue;
        // A throw-away instance that never starts, so it never connects.
        InstanceSpec spec{"sql", "sql", json{{"conninfo", "postgresql:///unused"}, {"mode", a.mode.value_or("outbox")}}.dump()};
        try {
            if (try_instance(std::make_unique<SourceInstance>(p, spec, services))) return 0;
        } catch (const std::exception &e) {
            tried.push_back(p->name + ": " + e.what());
        }
    }
    std::string msg = std::string("no source plugin offers the ") + (a.mode == std::string("cdc") ? "cdc" : "outbox") + " SQL";
    for (const auto &t : tried) msg += "\n  " + t;
    throw std::runtime_error(msg);
}

int cmd_init(const Args &a) {
    fs::path target = a.config ? fs::path(*a.config) : fs::path("fraiseql-observer.toml");
    if (fs::exists(target) && !a.force)
        throw UsageError(target.string() + " already exists (use --force to overwrite)");
    std::ofstream out(target, std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + target.string());
    out << starter_config();
    out.close();
    std::cout << "wrote " << target.string() << "; check it with: fraiseql-observer validate -c "
              << target.string() << "\n";
    return 0;
}

} // namespace

int cli_main(int argc, char **argv) {
    try {
        Args a = parse_args(argc, argv);
        if (a.command.empty() || a.command == "help") {
            std::cout << cli_help_text();
            return a.command.empty() ? 2 : 0;
        }
        if (a.command == "help-man") return std::cout << cli_man_page(), 0;
        if (a.command == "help-completion") return std::cout << cli_bash_completion(), 0;
        if (a.command == "version") {
            std::cout << "fraiseql-observer " << FOBS_VERSION << " (plugin ABI " << FOBS_ABI_MAJOR
                      << "." << FOBS_ABI_MINOR << ")\n";
            return 0;
        }
        if (a.command == "run") return cmd_run(a);
        if (a.command == "validate") return cmd_validate(a);
        if (a.command == "plugins") return cmd_plugins(a);
        if (a.command == "status") return cmd_status(a);
        if (a.command == "dlq") return cmd_dlq(a);
        if (a.command == "sql") return cmd_sql(a);
        if (a.command == "init") return cmd_init(a);
        if (a.command == "top") return run_top(TopOptions{a.url.value_or("http://127.0.0.1:9464"), a.once});
        throw UsageError("unknown command \"" + a.command + "\" (see --help)");
    } catch (const UsageError &e) {
        std::cerr << "fraiseql-observer: " << sdk::redact_secrets(e.what()) << "\n";
        return 2;
    } catch (const ConfigError &e) {
        std::cerr << "fraiseql-observer: configuration error: " << sdk::redact_secrets(e.what()) << "\n";
        return 2;
    } catch (const std::exception &e) {
        std::cerr << "fraiseql-observer: " << sdk::redact_secrets(e.what()) << "\n";
        return 1;
    }
}

} // namespace fraiseql_observer::host
