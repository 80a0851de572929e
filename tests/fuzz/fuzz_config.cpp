// The configuration loader (host/config.cpp: TOML text -> Config, with ${VAR} interpolation of
// every string value, host/config_interpolate.cpp) on arbitrary text. The environment is fixed:
// DATABASE_URL and NATS_URL are set, SECRET holds a password, EMPTY is set but empty.
// Properties:
//  - interpolation: text without `${` comes back unchanged (`$$` aside), and any text with
//    every `$` doubled comes back as the text itself (the documented escape round-trips); its
//    errors are InterpolationError only and never contain a variable's value;
//  - loading throws nothing but ConfigError; an error message starts with the file name and never
//    contains the secret (unless the file itself holds that text);
//  - a loaded config: every component's config is a JSON object, redacted_config_json is JSON
//    without the secret, every pipeline names a configured transport and, when it has one, a
//    configured source, and the actions it lists exist.
#include "config.hpp"
#include "config_interpolate.hpp"
#include "config_keys.hpp"
#include "fuzz_check.hpp"
#include "json_text.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace host = fraiseql_observer::host;
using fobs_fuzz::shown;

namespace {

const std::string k_secret = "Zx9-s3cr3t-pw";

std::optional<std::string> fake_env(const std::string &name) {
    if (name == "SECRET") return k_secret;
    if (name == "DATABASE_URL") return "postgresql://app:" + k_secret + "@127.0.0.1:5432/app";
    if (name == "NATS_URL") return "nats://127.0.0.1:4222";
    if (name == "EMPTY") return std::string();
    return std::nullopt;
}

bool contains(const std::string &hay, const std::string &needle) {
    return hay.find(needle) != std::string::npos;
}

void check_interpolation(const std::string &text, const host::EnvLookup &env) {
    try {
        auto r = host::interpolate_env(text, env);
        if (!contains(text, "${")) {
            std::string unescaped;
            for (size_t i = 0; i < text.size(); ++i) {
                unescaped += text[i];
                if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '$') ++i;
            }
            FUZZ_CHECK(r.value == unescaped && !r.used_env, shown(text) + " -> " + shown(r.value));
        }
    } catch (const host::InterpolationError &e) {
        FUZZ_CHECK(contains(text, "${"), shown(text) + ": " + e.what());
        FUZZ_CHECK(!contains(e.what(), k_secret), e.what());
    }
    std::string escaped;
    for (char c : text) escaped += c == '$' ? std::string("$$") : std::string(1, c);
    auto back = host::interpolate_env(escaped, env);
    FUZZ_CHECK(back.value == text && !back.used_env, shown(text) + " -> " + shown(back.value));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const host::Role role = data[0] % 3 == 0 ? host::Role::all
                            : data[0] % 3 == 1 ? host::Role::publisher
                                               : host::Role::worker;
    const std::string text(reinterpret_cast<const char *>(data) + 1, size - 1);
    host::LoadOptions options;
    options.role = role;
    options.env = fake_env;

    check_interpolation(text, options.env);

    const bool text_has_secret = contains(text, k_secret);
    host::Config cfg;
    try {
        cfg = host::load_config_string(text, "fuzz.toml", options);
    } catch (const host::ConfigError &e) {
        const std::string what = e.what();
        FUZZ_CHECK(what.rfind("fuzz.toml:", 0) == 0 || what.rfind("<defaults>", 0) == 0 ||
                       what.rfind("(built-in defaults)", 0) == 0,
                   what);
        if (!text_has_secret) FUZZ_CHECK(!contains(what, k_secret), what);
        return 0;
    }

    for (const auto *list : {&cfg.sources, &cfg.transports, &cfg.actions}) {
        for (const host::ComponentConfig &c : *list) {
            FUZZ_CHECK(host::json_valid(c.config_json), shown(c.config_json));
            const auto j = nlohmann::json::parse(c.config_json);
            FUZZ_CHECK(j.is_object(), shown(c.config_json));
            const std::string redacted = host::redacted_config_json(c);
            FUZZ_CHECK(host::json_valid(redacted), shown(redacted));
            if (!text_has_secret)
                FUZZ_CHECK(!contains(redacted, k_secret), c.section + ": " + shown(redacted));
        }
    }
    for (const std::string &w : cfg.warnings)
        if (!text_has_secret) FUZZ_CHECK(!contains(w, k_secret), w);
    for (const host::PipelineConfig &p : cfg.pipelines) {
        FUZZ_CHECK(cfg.find_transport(p.transport) != nullptr, p.name + " -> " + p.transport);
        if (p.source) FUZZ_CHECK(cfg.find_source(*p.source) != nullptr, p.name + " <- " + *p.source);
        for (const std::string &a : p.actions)
            FUZZ_CHECK(cfg.find_action(a) != nullptr, p.name + " => " + a);
    }
    return 0;
}
