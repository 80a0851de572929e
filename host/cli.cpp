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
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

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
    // What `validate` says about the components' limits, once the instances exist.
    for (const auto &w : runtime.limit_warnings()) log->warn("{}", w);

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

    // Between retries of a component whose start failed transiently, the stop signals are
    // still heard: SIGTERM during a long wait for the database ends the run at once.
    auto retry_wait = [&stop_signals](std::chrono::milliseconds pause) {
        timespec ts{static_cast<time_t>(pause.count() / 1000),
                    static_cast<long>(pause.count() % 1000) * 1000000L};
        return sigtimedwait(&stop_signals, nullptr, &ts) < 0;
    };
    try {
        if (!runtime.start(retry_wait)) {
            log->info("stop signal received while starting; stopping");
            runtime.stop(std::chrono::seconds(cfg.observer.shutdown_timeout_secs));
            if (http) http->stop();
            return 0;
        }
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
    std::vector<std::string> limit_warnings;
    {
        Runtime runtime(cfg, reg, services, lo.role); // create + destroy every instance
        runtime.build();
        limit_warnings = runtime.limit_warnings();
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
    for (const auto &w : limit_warnings) std::cout << "  warning: " << w << "\n";
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

// Asks `inst` through capability `cap` (abi.h); a component that offers none of the 1.1
// capabilities (a 1.0 plugin) is asked through its `admin` function with the 1.0 op name
// instead. `on_chunk` sees the answer as it comes (progress lines). Throws when the component
// offers neither, or answers with an error.
std::string ask(Instance *inst, const char *cap, json request, const std::string &admin_op,
                const std::function<void(std::string_view)> &on_chunk = {}) {
    auto describe = [&] {
        return std::string(to_string(inst->kind())) + " '" + inst->name() + "' (plugin " +
               inst->plugin().name + ")";
    };
    if (inst->capability(cap)) {
        auto answer = inst->call_json(cap, request.dump(), on_chunk);
        if (!answer)
            throw std::runtime_error(describe() + " does not support this " + cap + " request");
        return *answer;
    }
    if (inst->has_admin()) {
        request["op"] = admin_op;
        if (auto answer = inst->admin(request.dump())) {
            if (on_chunk) on_chunk(*answer);
            return *answer;
        }
    }
    throw std::runtime_error(describe() + " does not offer " + cap);
}

json parse_answer(const std::string &text) {
    json j = json::parse(text, nullptr, false);
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
            const std::string &key = k; // (a lambda may not capture a structured binding before clang 16)
            bool named = std::any_of(only_keys.begin(), only_keys.end(), [&](const char *n) { return key == n; });
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

std::string scalar_text(const json &v) {
    if (v.is_null()) return "-";
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
}

// A 1.0 component's status answer has no `sections`: its members are shown as they are —
// scalars in one section, each object member as a section of its own (nested members with
// dotted keys), each array of objects as a table.
json sections_of_plain_answer(const json &answer) {
    json sections = json::array();
    if (!answer.is_object()) return sections;
    json top = {{"title", "status"}, {"rows", json::array()}};
    std::function<void(json &, const std::string &, const json &)> flatten =
        [&](json &rows, const std::string &prefix, const json &obj) {
            for (const auto &[k, v] : obj.items()) {
                if (v.is_object()) flatten(rows, prefix + k + ".", v);
                else if (!v.is_array()) rows.push_back(json::array({prefix + k, v}));
                else if (std::all_of(v.begin(), v.end(), [](const json &e) { return !e.is_structured(); }))
                    rows.push_back(json::array({prefix + k, v.dump()}));
            }
        };
    for (const auto &[k, v] : answer.items()) {
        if (v.is_object()) {
            json sec = {{"title", k}, {"rows", json::array()}};
            flatten(sec["rows"], "", v);
            sections.push_back(sec);
        } else if (v.is_array() && !v.empty() && v.front().is_object()) {
            json table = {{"title", k}, {"columns", json::array()}, {"rows", json::array()}};
            for (const auto &e : v)
                for (const auto &[ck, cv] : e.items())
                    if (!cv.is_structured() && std::find(table["columns"].begin(), table["columns"].end(), ck) == table["columns"].end())
                        table["columns"].push_back(ck);
            for (const auto &e : v) {
                json row = json::array();
                for (const auto &c : table["columns"]) row.push_back(e.value(c.get<std::string>(), json()));
                table["rows"].push_back(row);
            }
            sections.push_back({{"title", k}, {"rows", json::array()}, {"tables", json::array({table})}});
        } else if (!v.is_structured() || v.is_array()) {
            flatten(top["rows"], "", json{{k, v}});
        }
    }
    if (!top["rows"].empty()) sections.insert(sections.begin(), top);
    return sections;
}

// Prints one component's fobs.status/1 answer (abi.h): the component line with its summary,
// then per section "title name key=value ...", then its tables. Knows no plugin.
void print_status(const char *kind, const std::string &name, const json &answer, const std::string &error) {
    if (!error.empty()) {
        std::printf("  %-10s %-26s %s\n", kind, name.c_str(), error.c_str());
        return;
    }
    std::printf("  %-10s %-26s %s\n", kind, name.c_str(),
                answer.is_object() && answer.contains("summary") ? scalar_text(answer["summary"]).c_str() : "");
    const json sections = answer.is_object() && answer.contains("sections") && answer["sections"].is_array()
                              ? answer["sections"]
                              : sections_of_plain_answer(answer);
    for (const auto &sec : sections) {
        if (!sec.is_object()) continue;
        std::string line;
        for (const auto &row : sec.value("rows", json::array()))
            if (row.is_array() && row.size() == 2)
                line += (line.empty() ? "" : " ") + scalar_text(row[0]) + "=" + scalar_text(row[1]);
        std::printf("  %-10s %-26s %s\n", scalar_text(sec.value("title", json("-"))).c_str(),
                    sec.contains("name") ? scalar_text(sec["name"]).c_str() : "", line.c_str());
        for (const auto &table : sec.value("tables", json::array())) {
            if (!table.is_object()) continue;
            const json cols = table.value("columns", json::array());
            std::vector<std::vector<std::string>> cells;
            std::vector<size_t> width(cols.size(), 0);
            cells.emplace_back();
            for (size_t i = 0; i < cols.size(); ++i) cells.back().push_back(scalar_text(cols[i]));
            for (const auto &r : table.value("rows", json::array())) {
                cells.emplace_back();
                for (size_t i = 0; i < cols.size(); ++i)
                    cells.back().push_back(r.is_array() && i < r.size() ? scalar_text(r[i]) : "-");
            }
            for (const auto &r : cells)
                for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
            std::printf("    %s:\n", scalar_text(table.value("title", json(""))).c_str());
            for (const auto &r : cells) {
                std::string text = "      ";
                for (size_t i = 0; i < r.size(); ++i)
                    text += r[i] + std::string(width[i] - r[i].size() + 2, ' ');
                while (!text.empty() && text.back() == ' ') text.pop_back();
                std::printf("%s\n", text.c_str());
            }
        }
    }
}

int cmd_status(const Args &a) {
    auto ctx = admin_context(a);
    json out = {{"pipelines", json::array()}};
    for (const auto &p : ctx->cfg.pipelines) {
        json entry = {{"name", p.name}, {"transport", p.transport}, {"consumer", p.consumer}};
        try {
            auto *t = ctx->get(ComponentKind::transport, p.transport, true);
            entry["transport_status"] = parse_answer(
                ask(t, FOBS_CAP_STATUS, {{"consumer", p.actions.empty() ? "" : p.consumer}}, "status"));
        } catch (const std::exception &e) {
            entry["transport_error"] = e.what();
        }
        if (p.source) {
            entry["source"] = *p.source;
            try {
                auto *s = ctx->get(ComponentKind::source, *p.source, false);
                if (s->capability(FOBS_CAP_STATUS) || s->has_admin())
                    entry["source_status"] = parse_answer(ask(s, FOBS_CAP_STATUS, json::object(), "status"));
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
    for (const auto &e : out["pipelines"]) {
        std::printf("pipeline %s\n", e["name"].get<std::string>().c_str());
        if (e.contains("source"))
            print_status("source", e["source"].get<std::string>(), e.value("source_status", json()),
                         e.value("source_error", std::string()));
        print_status("transport", e["transport"].get<std::string>(), e.value("transport_status", json()),
                     e.value("transport_error", std::string()));
    }
    std::fflush(stdout);
    return 0;
}

// `dlq replay --all` may take long: on a terminal a line that counts up (done/total, rate),
// otherwise one plain line per progress report, for logs and scripts.
class ReplayProgress {
  public:
    explicit ReplayProgress(bool json_lines)
        : tty_(!json_lines && isatty(STDOUT_FILENO)), json_(json_lines), started_(std::chrono::steady_clock::now()) {}
    void chunk(std::string_view c) {
        buffer_.append(c);
        for (size_t nl; (nl = buffer_.find('\n')) != std::string::npos; buffer_.erase(0, nl + 1)) {
            json line = json::parse(buffer_.substr(0, nl), nullptr, false);
            if (line.is_object() && line.contains("progress")) show(line);
        }
    }
    void finish() {
        if (tty_ && shown_) std::printf("\n");
        std::fflush(stdout);
    }

  private:
    void show(const json &line) {
        if (json_) {
            std::printf("%s\n", line.dump().c_str());
            std::fflush(stdout);
            return;
        }
        const json &pr = line["progress"];
        uint64_t done = pr.value("done", uint64_t{0}), total = pr.value("total", uint64_t{0});
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
        if (tty_) std::printf("\rreplayed %llu/%llu (%.0f/s)   ", static_cast<unsigned long long>(done),
                              static_cast<unsigned long long>(total), rate);
        else std::printf("progress %llu/%llu %.0f/s\n", static_cast<unsigned long long>(done),
                         static_cast<unsigned long long>(total), rate);
        std::fflush(stdout);
        shown_ = true;
    }
    bool tty_, json_, shown_ = false;
    std::chrono::steady_clock::time_point started_;
    std::string buffer_;
};

int cmd_dlq(const Args &a) {
    if (a.positional.empty()) throw UsageError("dlq needs a subcommand: list, show, replay or purge");
    const std::string &sub = a.positional[0];
    json req = {{"op", sub}};
    if (sub == "list") {
        req["limit"] = a.limit.value_or(100);
    } else if (sub == "show") {
        if (!a.seq) throw UsageError("dlq show needs --seq N");
        req["seq"] = *a.seq;
    } else if (sub == "replay" || sub == "purge") {
        if (!a.seq && !a.all) throw UsageError("dlq " + sub + " needs --seq N or --all");
        if (a.seq) req["seq"] = *a.seq;
        else req["all"] = true;
    } else {
        throw UsageError("unknown dlq subcommand \"" + sub + "\" (list, show, replay, purge)");
    }
    auto ctx = admin_context(a);
    const PipelineConfig &p = pick_pipeline(ctx->cfg, a.pipeline);
    auto *t = ctx->get(ComponentKind::transport, p.transport, true);
    ReplayProgress progress(a.json);
    std::string text = ask(t, FOBS_CAP_DLQ, req, "dlq_" + sub, [&](std::string_view c) {
        if (sub == "replay") progress.chunk(c);
    });
    progress.finish();
    // A line-oriented answer ends with its result.
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (auto nl = text.rfind('\n'); nl != std::string::npos) text.erase(0, nl + 1);
    json ans = parse_answer(text);
    redact_strings(ans, {"reason", "error", "last_error"});
    if (a.json || sub != "list" || !ans.contains("entries")) {
        std::cout << ans.dump(2) << "\n";
        return 0;
    }
    if (ans["entries"].empty()) std::cout << "DLQ is empty\n";
    for (const auto &e : ans["entries"]) {
        auto text_of = [&](const char *key, const char *absent) {
            return escape_log_text(e.contains(key) && e[key].is_string() ? e[key].get<std::string>() : absent);
        };
        std::cout << "seq " << num(e, "seq") << "  id " << text_of("id", "-") << "  " << text_of("subject", "")
                  << "  deliveries " << num(e, "delivery_count") << "  action " << text_of("action", "-")
                  << "\n    reason: " << text_of("reason", "") << "\n";
    }
    return 0;
}

int cmd_sql(const Args &a) {
    // The SQL belongs to the configured source that serves the mode (fobs.sql/1); only the
    // source plugins the config names are loaded, and their instances are created, never
    // started, so nothing connects.
    if (a.mode && *a.mode != "outbox" && *a.mode != "cdc")
        throw UsageError("--mode must be outbox or cdc (got \"" + *a.mode + "\")");
    LoadOptions lo = load_options(a);
    // Without a config file the built-in source is used; printing SQL needs no database, so
    // an unset $DATABASE_URL is not an error here.
    EnvLookup env = lo.env;
    lo.env = [env](const std::string &name) -> std::optional<std::string> {
        auto v = env(name);
        if (!v && name == "DATABASE_URL") return std::string("postgresql:///sql-only-never-connected");
        return v;
    };
    Config cfg = load(a, lo);
    Services services(LogSettings{"error", "text"});
    PluginRegistry reg;
    std::vector<std::string> names;
    for (const auto &s : cfg.sources) names.push_back(s.plugin);
    reg.load_named(search_path(a, &cfg), names);
    json req = json::object(); // without mode/schema: the source's configured ones
    if (a.schema) req["schema"] = *a.schema;
    if (a.mode) req["mode"] = *a.mode;
    std::vector<std::string> tried;
    for (const auto &s : cfg.sources) {
        try {
            auto inst = make_instance(s, ComponentKind::source, reg, services, s.name);
            if (!inst->capability(FOBS_CAP_SQL) && !inst->has_admin()) {
                tried.push_back(s.name + ": offers no " FOBS_CAP_SQL);
                continue;
            }
            json ans = parse_answer(ask(inst.get(), FOBS_CAP_SQL, req, "sql"));
            if (!ans.contains("sql") || !ans["sql"].is_string()) {
                tried.push_back(s.name + ": answered without \"sql\"");
                continue;
            }
            std::cout << ans["sql"].get<std::string>();
            return 0;
        } catch (const std::exception &e) {
            tried.push_back(s.name + ": " + e.what());
        }
    }
    std::string msg = std::string("no configured source offers the ") + a.mode.value_or("setup") + " SQL";
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
