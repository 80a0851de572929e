// ABI test suite (SPEC section 9, issue 2): real plugin libraries, broken on purpose, must each
// be refused by the host loader with their own message naming the file; good ones (C, C++ with
// the SDK wrapper, clang++/libc++) must load and work through raw ABI calls; every real plugin
// exports exactly one symbol. The plugins are built by tests/abi/CMakeLists.txt.
#include "harness.hpp"
#include "plugin_loader.hpp"
#include "process.hpp"

#include <fraiseql_observer/abi.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace host = fraiseql_observer::host;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

fs::path good_plugin(const std::string &name) {
    return fs::path(FOBS_ABI_GOOD_DIR) / (name + ".so");
}
fs::path broken_plugin(const std::string &variant) {
    return fs::path(FOBS_ABI_BROKEN_DIR) / ("broken_" + variant + ".so");
}

// The message of the PluginLoadError that loading `file` must throw ("" and a test failure when
// it loads).
std::string refusal(const fs::path &file) {
    try {
        auto p = host::load_plugin(file);
        ADD_FAILURE() << file << " loaded as plugin '" << p->name << "' but must be refused";
    } catch (const host::PluginLoadError &e) {
        return e.what();
    }
    return {};
}

std::string version(unsigned major, unsigned minor) {
    return std::to_string(major) + "." + std::to_string(minor);
}

// ------------------------------------------------------------------------------------------
// A hand-built fobs_host: the services a plugin sees, recorded for assertions.
// ------------------------------------------------------------------------------------------
struct RecordedMetric {
    fobs_metric_type type;
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct TestHost {
    fobs_host raw{}; // first member: the plugin gets &raw, we cast back
    std::string config;
    std::string component = "abi_component";
    std::mutex mutex;
    std::vector<std::string> logs;
    std::vector<std::unique_ptr<RecordedMetric>> metrics;

    explicit TestHost(std::string config_json = "{}") : config(std::move(config_json)) {
        raw.struct_size = sizeof(raw);
        raw.abi_major = FOBS_ABI_MAJOR;
        raw.abi_minor = FOBS_ABI_MINOR;
        raw.ctx = this;
        raw.host_version = {"0.0.0-test", 10};
        raw.instance_name = {component.data(), component.size()};
        raw.component_name = {component.data(), component.size()};
        raw.config_json = {config.data(), config.size()};
        raw.log = [](const fobs_host *h, fobs_log_level, fobs_str msg, fobs_str event_id) {
            auto *self = static_cast<TestHost *>(h->ctx);
            std::lock_guard<std::mutex> lock(self->mutex);
            self->logs.push_back(std::string(msg.data, msg.size) +
                                 (event_id.size ? " [" + std::string(event_id.data, event_id.size) +
                                                      "]"
                                                : ""));
        };
        raw.log_enabled = [](const fobs_host *, fobs_log_level) -> int32_t { return 1; };
        raw.monotonic_ns = [](const fobs_host *) -> uint64_t {
            return static_cast<uint64_t>(
                std::chrono::steady_clock::now().time_since_epoch().count());
        };
        raw.realtime_ns = [](const fobs_host *) -> uint64_t {
            return static_cast<uint64_t>(
                std::chrono::system_clock::now().time_since_epoch().count());
        };
        raw.metric = [](const fobs_host *h, fobs_metric_type type, fobs_str name, fobs_str,
                        const fobs_label *labels, size_t n, const double *,
                        size_t) -> fobs_metric * {
            auto *self = static_cast<TestHost *>(h->ctx);
            auto m = std::make_unique<RecordedMetric>();
            m->type = type;
            m->name = std::string(name.data, name.size);
            for (size_t i = 0; i < n; ++i)
                m->labels[std::string(labels[i].name.data, labels[i].name.size)] =
                    std::string(labels[i].value.data, labels[i].value.size);
            std::lock_guard<std::mutex> lock(self->mutex);
            self->metrics.push_back(std::move(m));
            return reinterpret_cast<fobs_metric *>(self->metrics.back().get());
        };
        raw.metric_add = [](const fobs_host *h, fobs_metric *m, double v) {
            std::lock_guard<std::mutex> lock(static_cast<TestHost *>(h->ctx)->mutex);
            reinterpret_cast<RecordedMetric *>(m)->value += v;
        };
        raw.metric_set = [](const fobs_host *h, fobs_metric *m, double v) {
            std::lock_guard<std::mutex> lock(static_cast<TestHost *>(h->ctx)->mutex);
            reinterpret_cast<RecordedMetric *>(m)->value = v;
        };
        raw.metric_observe = [](const fobs_host *h, fobs_metric *m, double v) {
            std::lock_guard<std::mutex> lock(static_cast<TestHost *>(h->ctx)->mutex);
            reinterpret_cast<RecordedMetric *>(m)->value += v;
        };
    }
    TestHost(const TestHost &) = delete;
    TestHost &operator=(const TestHost &) = delete;

    bool logged(const std::string &needle) {
        std::lock_guard<std::mutex> lock(mutex);
        for (const auto &l : logs)
            if (l.find(needle) != std::string::npos) return true;
        return false;
    }
};

// An error report with real buffers, as the host passes to create/start.
struct ErrorBuf {
    char message[512] = {};
    char key_path[128] = {};
    fobs_error err{sizeof(fobs_error), message, sizeof(message), key_path, sizeof(key_path), -1};
};

// A completion token that records how often and with what it was completed.
struct Token {
    fobs_completion raw{sizeof(fobs_completion), this, &Token::on_complete};
    std::mutex mutex;
    std::condition_variable cv;
    int calls = 0;
    fobs_outcome_kind kind = -1;
    std::string reason;
    std::thread::id thread;

    static void on_complete(const fobs_completion *self, const fobs_outcome *o) {
        auto *t = static_cast<Token *>(self->ctx);
        std::lock_guard<std::mutex> lock(t->mutex);
        ++t->calls;
        t->kind = o->kind;
        t->reason = std::string(o->reason.data ? o->reason.data : "", o->reason.size);
        t->thread = std::this_thread::get_id();
        t->cv.notify_all();
    }
    bool wait(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::unique_lock<std::mutex> lock(mutex);
        return cv.wait_for(lock, timeout, [&] { return calls > 0; });
    }
};

struct TestEvent {
    std::string entity_type;
    fobs_event raw{};
    explicit TestEvent(std::string type) : entity_type(std::move(type)) {
        raw.struct_size = sizeof(raw);
        raw.id = {"0b7e7c1e-0000-4000-8000-000000000001", 36};
        raw.entity_type = {entity_type.data(), entity_type.size()};
        raw.operation = {"INSERT", 6};
        raw.entity_id = {"42", 2};
        raw.body = {"{}", 2};
    }
};

// Runs one event through an action instance; returns the token after completion.
std::unique_ptr<Token> execute(const fobs_action_desc *a, void *self, const std::string &type) {
    auto token = std::make_unique<Token>();
    TestEvent ev(type);
    a->execute(self, &ev.raw, &token->raw);
    EXPECT_TRUE(token->wait()) << "execute(" << type << ") never completed its token";
    return token;
}

bool mapped_in_process(const fs::path &file) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.find(file.string()) != std::string::npos) return true;
    return false;
}

std::vector<fs::path> so_files(const fs::path &dir) {
    std::vector<fs::path> r;
    std::error_code ec;
    for (const auto &e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".so" && e.is_regular_file()) r.push_back(e.path());
    std::sort(r.begin(), r.end());
    return r;
}

// ------------------------------------------------------------------------------------------
// Refusals: each broken library gets its own message, and the message names the file.
// ------------------------------------------------------------------------------------------

TEST(AbiRefusal, library_without_entry_symbol_is_not_a_plugin) {
    auto file = broken_plugin("no_entry");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("not a fraiseql-observer plugin"));
    EXPECT_THAT(msg, HasSubstr("does not export 'fobs_plugin_get_entry'"));
}

TEST(AbiRefusal, entry_function_returning_null_is_refused) {
    auto file = broken_plugin("entry_null");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("fobs_plugin_get_entry() returned NULL"));
}

TEST(AbiRefusal, other_abi_major_names_both_versions) {
    auto file = broken_plugin("abi_major2");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("built for ABI " + version(2, FOBS_ABI_MINOR) +
                               ", this host speaks " + version(FOBS_ABI_MAJOR, FOBS_ABI_MINOR)));
}

TEST(AbiRefusal, plugin_needing_a_newer_minor_names_both_versions) {
    // Built for 1.(n+1) with min_host_minor n+1: it uses something this host lacks.
    auto file = broken_plugin("abi_minor_newer");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("plugin (built for ABI " + version(FOBS_ABI_MAJOR, FOBS_ABI_MINOR + 1) +
                               ") needs a host of ABI " + version(FOBS_ABI_MAJOR, FOBS_ABI_MINOR + 1) +
                               " or newer, this host provides " + version(FOBS_ABI_MAJOR, FOBS_ABI_MINOR)));
}

TEST(AbiRefusal, failing_init_refuses_the_plugin_with_its_message) {
    auto file = broken_plugin("init_fails");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("failed to initialise: raw plugin: the client library did not start"));
}

// ------------------------------------------------------------------------------------------
// Other minors (ABI 1.1): a 1.0 plugin, and a newer plugin that needs only this minor.
// ------------------------------------------------------------------------------------------

fs::path versions_plugin(const std::string &name) {
    return fs::path(FOBS_ABI_VERSIONS_DIR) / (name + ".so");
}

TEST(AbiVersions, a_plugin_built_from_the_frozen_1_0_header_loads_and_runs) {
    auto p = host::load_plugin(versions_plugin("raw_v1_0"));
    EXPECT_EQ(p->abi_minor, 0);
    // Really the 1.0 layout: the entry ends after `action`, the descriptors after their last
    // 1.0 function, so none of the 1.1 fields is there to read.
    EXPECT_EQ(p->entry->struct_size, offsetof(fobs_plugin_entry, action) + sizeof(void *));
    EXPECT_FALSE(FOBS_HAS_FIELD(p->entry, fobs_plugin_entry, min_host_minor));
    EXPECT_EQ(p->action->struct_size, offsetof(fobs_action_desc, execute) + sizeof(void *));
    EXPECT_FALSE(FOBS_HAS_FIELD(p->action, fobs_action_desc, config_keys));
    EXPECT_EQ(p->deinit, nullptr);

    fobs_test::Harness h(FOBS_ABI_VERSIONS_DIR, "warn");
    auto action = h.action("raw_v1_0", "{}");
    action->start();
    EXPECT_EQ(action->execute_sync(fobs_test::make_event("e1")).kind, FOBS_OUTCOME_OK);
    action->stop();
}

TEST(AbiVersions, a_newer_minor_needing_only_this_host_minor_loads) {
    auto p = host::load_plugin(versions_plugin("raw_minor_next"));
    EXPECT_EQ(p->abi_minor, FOBS_ABI_MINOR + 1);
    EXPECT_EQ(p->entry->min_host_minor, FOBS_ABI_MINOR);
    fobs_test::Harness h(FOBS_ABI_VERSIONS_DIR, "warn");
    auto action = h.action("raw_minor_next", "{}");
    action->start();
    EXPECT_EQ(action->execute_sync(fobs_test::make_event("e1")).kind, FOBS_OUTCOME_OK);
    action->stop();
}

TEST(AbiVersions, init_and_deinit_run_once_each_around_every_component) {
    fobs_test::TempDir d("fobs-abi");
    const fs::path log = d / "lifecycle.log";
    ::setenv("FOBS_ABI_LIFECYCLE_LOG", log.c_str(), 1);
    {
        fobs_test::Harness h(FOBS_ABI_VERSIONS_DIR, "warn"); // loads raw_v1_0 too: no init
        auto a = h.action("raw_minor_next", "{}", "a");
        auto b = h.transport("raw_minor_next", "{}", "b");
        a.reset();
        b.reset();
        auto c = h.action("raw_minor_next", "{}", "c");
        // `c` is destroyed before the harness, whose registry holds the plugin last.
    }
    ::unsetenv("FOBS_ABI_LIFECYCLE_LOG");
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), "init\ncreate\ncreate\ndestroy\ndestroy\ncreate\ndestroy\ndeinit\n");
}

TEST(AbiRefusal, entry_too_small_for_the_version_fields_is_refused) {
    auto file = broken_plugin("entry_tiny");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("entry struct_size 4 is too small to hold even the ABI version"));
}

TEST(AbiRefusal, truncated_entry_struct_is_refused_with_both_sizes) {
    auto file = broken_plugin("entry_truncated");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("entry struct_size " +
                               std::to_string(offsetof(fobs_plugin_entry, description)) +
                               " is smaller than the ABI 1.0 entry (" +
                               std::to_string(offsetof(fobs_plugin_entry, action) + sizeof(void *)) +
                               " bytes)"));
}

TEST(AbiRefusal, truncated_descriptor_is_refused_with_both_sizes) {
    auto file = broken_plugin("desc_truncated");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("action descriptor struct_size " +
                               std::to_string(offsetof(fobs_action_desc, execute)) +
                               " is smaller than the ABI 1.0 action descriptor (" +
                               std::to_string(offsetof(fobs_action_desc, execute) + sizeof(void *)) +
                               " bytes)"));
}

class AbiNullFunction : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(AbiNullFunction, null_required_function_is_named) {
    const auto &[fn, kind] = GetParam();
    auto file = broken_plugin("null_" + fn);
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr(kind + " descriptor has no '" + fn + "' function (NULL)"));
}

INSTANTIATE_TEST_SUITE_P(
    EveryRequiredFunction, AbiNullFunction,
    ::testing::Values(std::pair<std::string, std::string>{"create", "action"},
                      std::pair<std::string, std::string>{"destroy", "action"},
                      std::pair<std::string, std::string>{"start", "action"},
                      std::pair<std::string, std::string>{"stop", "action"},
                      std::pair<std::string, std::string>{"execute", "action"},
                      std::pair<std::string, std::string>{"publish", "transport"},
                      std::pair<std::string, std::string>{"consumer_open", "transport"},
                      std::pair<std::string, std::string>{"consumer_close", "transport"}),
    [](const auto &info) { return info.param.first; });

TEST(AbiRefusal, missing_name_is_refused) {
    auto file = broken_plugin("no_name");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("the plugin has no name"));
}

TEST(AbiRefusal, invalid_name_is_refused_and_quoted) {
    auto file = broken_plugin("bad_name");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("invalid plugin name 'Raw-OK'"));
    EXPECT_THAT(msg, HasSubstr("lower-case letters, digits and '_'"));
}

TEST(AbiRefusal, empty_version_is_refused) {
    auto file = broken_plugin("empty_version");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("plugin 'raw_ok' has no version"));
}

TEST(AbiRefusal, plugin_without_any_component_is_refused) {
    auto file = broken_plugin("no_component");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("offers no component"));
}

TEST(AbiRefusal, unresolvable_symbol_fails_at_load_time_with_dlerror_text) {
    // Immediate binding: with lazy binding this library would load and crash on first call.
    auto file = broken_plugin("undefined_symbol");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("not a loadable shared library"));
    EXPECT_THAT(msg, HasSubstr("undefined symbol: fobs_test_function_that_does_not_exist"));
}

TEST(AbiRefusal, file_that_is_not_elf_reports_dlerror) {
    fobs_test::TempDir dir("fobs-abi");
    auto file = dir / "garbage.so";
    fobs_test::write_file(file, std::string(200, '#') + "\nthis is not a shared library\n");
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(fs::canonical(file).string()));
    EXPECT_THAT(msg, HasSubstr("not a loadable shared library"));
    EXPECT_THAT(msg, HasSubstr("invalid ELF header"));
}

TEST(AbiRefusal, missing_file_is_refused) {
    auto file = fs::path(FOBS_ABI_BROKEN_DIR) / "does_not_exist.so";
    auto msg = refusal(file);
    EXPECT_THAT(msg, HasSubstr(file.string()));
    EXPECT_THAT(msg, HasSubstr("no such file"));
}

TEST(AbiRefusal, every_broken_library_gets_a_distinct_message) {
    auto files = so_files(FOBS_ABI_BROKEN_DIR);
    ASSERT_GE(files.size(), 20u) << "the broken test plugins were not built";
    std::map<std::string, fs::path> by_reason;
    for (const auto &f : files) {
        std::string msg = refusal(f);
        auto at = msg.find(f.string());
        ASSERT_NE(at, std::string::npos) << msg;
        std::string reason = msg.erase(at, f.string().size());
        auto [it, inserted] = by_reason.emplace(reason, f);
        EXPECT_TRUE(inserted) << f << " and " << it->second << " share the message: " << reason;
    }
}

// ------------------------------------------------------------------------------------------
// Discovery over real directories.
// ------------------------------------------------------------------------------------------

TEST(AbiDiscovery, broken_directory_yields_one_problem_per_file_and_no_plugin) {
    host::PluginRegistry reg;
    reg.discover({FOBS_ABI_BROKEN_DIR});
    auto files = so_files(FOBS_ABI_BROKEN_DIR);
    EXPECT_TRUE(reg.plugins().empty());
    ASSERT_EQ(reg.problems().size(), files.size());
    for (size_t i = 0; i < files.size(); ++i) {
        EXPECT_EQ(reg.problems()[i].file, files[i]) << "files are visited sorted by name";
        EXPECT_THAT(reg.problems()[i].message, HasSubstr(files[i].string()));
    }
}

TEST(AbiDiscovery, good_directory_loads_every_plugin) {
    host::PluginRegistry reg;
    reg.discover({FOBS_ABI_GOOD_DIR});
    std::vector<std::string> expected = {"abi_good", "abi_throwing", "raw_create_fails",
                                         "raw_ok"};
    if (FOBS_ABI_HAVE_CLANG) {
        // Both libc++ variants are called abi_libcxx: the first file (by name) wins, the
        // second is refused as a duplicate.
        expected.insert(expected.begin() + 1, "abi_libcxx");
        ASSERT_EQ(reg.problems().size(), 1u);
        EXPECT_EQ(reg.problems()[0].file, good_plugin("abi_libcxx_static"));
        EXPECT_THAT(reg.problems()[0].message,
                    HasSubstr("already taken by '" + good_plugin("abi_libcxx_shared").string()));
    } else {
        for (const auto &p : reg.problems()) ADD_FAILURE() << p.message;
    }
    EXPECT_EQ(reg.names(), expected);
}

TEST(AbiDiscovery, duplicate_name_refuses_the_later_file_naming_both) {
    fobs_test::TempDir d1("fobs-abi"), d2("fobs-abi");
    // Within a directory files are taken sorted by name; across directories, in order.
    fs::copy_file(good_plugin("raw_ok"), d1 / "b_raw.so");
    fs::copy_file(good_plugin("raw_ok"), d1 / "a_raw.so");
    fs::copy_file(good_plugin("raw_ok"), d2 / "0_raw.so");
    host::PluginRegistry reg;
    reg.discover({d1.path(), d2.path()});
    ASSERT_EQ(reg.plugins().size(), 1u);
    auto first = fs::canonical(d1 / "a_raw.so");
    EXPECT_EQ(reg.find("raw_ok")->file, first);
    ASSERT_EQ(reg.problems().size(), 2u);
    for (const auto &later : {fs::canonical(d1 / "b_raw.so"), fs::canonical(d2 / "0_raw.so")}) {
        bool found = false;
        for (const auto &p : reg.problems()) {
            if (p.file != later) continue;
            found = true;
            EXPECT_THAT(p.message, HasSubstr(later.string()));
            EXPECT_THAT(p.message, HasSubstr(first.string()));
            EXPECT_THAT(p.message, HasSubstr("'raw_ok' is already taken"));
        }
        EXPECT_TRUE(found) << later;
    }
}

TEST(AbiDiscovery, add_refuses_a_duplicate_name_naming_both_files) {
    fobs_test::TempDir d("fobs-abi");
    fs::copy_file(good_plugin("raw_ok"), d / "copy.so");
    host::PluginRegistry reg;
    reg.add(host::load_plugin(good_plugin("raw_ok")));
    try {
        reg.add(host::load_plugin(d / "copy.so"));
        FAIL() << "duplicate accepted";
    } catch (const host::PluginLoadError &e) {
        EXPECT_THAT(e.what(), HasSubstr(fs::canonical(d / "copy.so").string()));
        EXPECT_THAT(e.what(), HasSubstr(fs::canonical(good_plugin("raw_ok")).string()));
    }
    EXPECT_EQ(reg.plugins().size(), 1u);
}

TEST(AbiDiscovery, same_file_reached_twice_through_symlinks_is_one_plugin) {
    fobs_test::TempDir d("fobs-abi");
    fs::create_directory(d / "real");
    fs::create_symlink(good_plugin("raw_ok"), d / "real" / "raw.so");
    fs::create_directory_symlink(d / "real", d / "alias");
    host::PluginRegistry reg;
    reg.discover({d / "real", d / "alias"});
    EXPECT_EQ(reg.plugins().size(), 1u);
    EXPECT_TRUE(reg.problems().empty());
    EXPECT_EQ(reg.plugins().at(0)->file, fs::canonical(good_plugin("raw_ok")));
}

// ------------------------------------------------------------------------------------------
// Good plugins work through raw ABI calls.
// ------------------------------------------------------------------------------------------

TEST(AbiGood, cpp_sdk_action_runs_create_start_execute_admin_stop_destroy) {
    auto p = host::load_plugin(good_plugin("abi_good"));
    EXPECT_EQ(p->name, "abi_good");
    EXPECT_EQ(p->version, "1.2.3");
    EXPECT_EQ(p->description, "ABI test: a well-behaved action");
    EXPECT_EQ(p->abi_major, FOBS_ABI_MAJOR);
    EXPECT_EQ(p->abi_minor, FOBS_ABI_MINOR);
    EXPECT_TRUE(p->file.is_absolute());
    EXPECT_EQ(p->kinds(), std::vector<std::string>{"action"});
    EXPECT_TRUE(p->offers(host::ComponentKind::action));
    EXPECT_FALSE(p->offers(host::ComponentKind::transport));
    ASSERT_NE(p->action, nullptr);
    const fobs_action_desc *a = p->action;
    EXPECT_NE(a->ready, nullptr);
    EXPECT_NE(a->admin, nullptr) << "the SDK exposes admin when the class overrides it";

    TestHost th(R"({"greeting":"hi"})");
    ErrorBuf eb;
    void *self = a->create(&th.raw, &eb.err);
    ASSERT_NE(self, nullptr) << eb.message;
    EXPECT_TRUE(th.logged(R"(abi_good created with config {"greeting":"hi"})"));
    ASSERT_EQ(th.metrics.size(), 1u);
    EXPECT_EQ(th.metrics[0]->name, "abi_good_executed_total");
    EXPECT_EQ(th.metrics[0]->type, FOBS_METRIC_COUNTER);
    EXPECT_EQ(th.metrics[0]->labels["component"], "abi_component");

    EXPECT_EQ(a->start(self, &eb.err), FOBS_OK);
    ErrorBuf why;
    EXPECT_EQ(a->ready(self, &why.err), 1);

    auto token = execute(a, self, "Order");
    EXPECT_EQ(token->calls, 1);
    EXPECT_EQ(token->kind, FOBS_OUTCOME_OK);
    EXPECT_EQ(th.metrics[0]->value, 1.0);
    EXPECT_TRUE(th.logged("executed Order INSERT [0b7e7c1e-0000-4000-8000-000000000001]"));

    std::string answer;
    auto write = [](void *closure, fobs_str chunk) {
        static_cast<std::string *>(closure)->append(chunk.data, chunk.size);
    };
    std::string req = R"({"op":"count"})";
    EXPECT_EQ(a->admin(self, {req.data(), req.size()}, write, &answer, &eb.err), FOBS_OK);
    EXPECT_EQ(answer, R"({"executed":1})");
    std::string unknown = R"({"op":"explode"})";
    EXPECT_EQ(a->admin(self, {unknown.data(), unknown.size()}, write, &answer, &eb.err),
              FOBS_ERR_UNSUPPORTED);

    a->stop(self);
    a->destroy(self);
}

TEST(AbiGood, raw_c_plugin_offers_action_and_transport) {
    auto p = host::load_plugin(good_plugin("raw_ok"));
    EXPECT_EQ(p->kinds(), (std::vector<std::string>{"transport", "action"}));
    EXPECT_EQ(p->action->ready, nullptr) << "ready is optional";
    EXPECT_EQ(p->action->admin, nullptr) << "admin is optional";

    TestHost th;
    ErrorBuf eb;
    void *action = p->action->create(&th.raw, &eb.err);
    ASSERT_NE(action, nullptr);
    ASSERT_EQ(p->action->start(action, &eb.err), FOBS_OK);
    auto token = execute(p->action, action, "Order");
    EXPECT_EQ(token->kind, FOBS_OUTCOME_OK);
    p->action->stop(action);
    p->action->destroy(action);

    void *transport = p->transport->create(&th.raw, &eb.err);
    ASSERT_NE(transport, nullptr);
    Token published;
    TestEvent ev("Order");
    p->transport->publish(transport, &ev.raw, &published.raw);
    ASSERT_TRUE(published.wait());
    EXPECT_EQ(published.kind, FOBS_OUTCOME_OK);
    p->transport->destroy(transport);
}

TEST(AbiGood, failing_create_reports_its_own_text_and_key_path) {
    auto p = host::load_plugin(good_plugin("raw_create_fails"));
    TestHost th;
    ErrorBuf eb;
    EXPECT_EQ(p->action->create(&th.raw, &eb.err), nullptr);
    EXPECT_STREQ(eb.message, "raw plugin: 'endpoint' must be an https URL");
    EXPECT_STREQ(eb.key_path, "target.endpoint");
    EXPECT_EQ(eb.err.retriable, 0);
}

TEST(AbiGood, error_buffers_are_truncated_not_overrun) {
    auto p = host::load_plugin(good_plugin("raw_create_fails"));
    TestHost th;
    char message[8];
    char guard[8];
    std::memset(message, 'x', sizeof(message));
    std::memset(guard, 'G', sizeof(guard));
    fobs_error err{sizeof(fobs_error), message, sizeof(message), nullptr, 0, 0};
    EXPECT_EQ(p->action->create(&th.raw, &err), nullptr);
    EXPECT_STREQ(message, "raw plu");
    EXPECT_EQ(std::string(guard, sizeof(guard)), "GGGGGGGG");
}

TEST(AbiGood, library_stays_mapped_while_a_loaded_plugin_is_held) {
    fobs_test::TempDir d("fobs-abi");
    auto copy = d / "lifetime.so"; // a file nobody else in this process has loaded
    fs::copy_file(good_plugin("raw_ok"), copy);
    auto canonical = fs::canonical(copy);
    std::shared_ptr<host::LoadedPlugin> held;
    {
        host::PluginRegistry reg;
        reg.discover({d.path()});
        ASSERT_EQ(reg.plugins().size(), 1u);
        held = reg.plugins()[0];
    }
    EXPECT_TRUE(mapped_in_process(canonical));
    TestHost th;
    ErrorBuf eb;
    void *self = held->action->create(&th.raw, &eb.err); // code still callable
    ASSERT_NE(self, nullptr);
    held->action->destroy(self);
    held.reset();
    EXPECT_FALSE(mapped_in_process(canonical)) << "the last reference unloads the library";
}

// ------------------------------------------------------------------------------------------
// C++ components that throw: the SDK wrapper turns exceptions into errors or RETRY outcomes.
// ------------------------------------------------------------------------------------------

TEST(AbiThrowing, config_error_from_constructor_becomes_create_error_with_key) {
    auto p = host::load_plugin(good_plugin("abi_throwing"));
    TestHost th(R"({"mode":"throw_config"})");
    ErrorBuf eb;
    EXPECT_EQ(p->action->create(&th.raw, &eb.err), nullptr);
    EXPECT_STREQ(eb.message, "max_attempts must be at least 1");
    EXPECT_STREQ(eb.key_path, "retry.max_attempts");
    EXPECT_EQ(eb.err.retriable, 0);
}

TEST(AbiThrowing, runtime_error_from_constructor_becomes_create_error) {
    auto p = host::load_plugin(good_plugin("abi_throwing"));
    TestHost th(R"({"mode":"throw_runtime"})");
    ErrorBuf eb;
    EXPECT_EQ(p->action->create(&th.raw, &eb.err), nullptr);
    EXPECT_STREQ(eb.message, "constructor failed on purpose");
    EXPECT_STREQ(eb.key_path, "");
}

TEST(AbiThrowing, non_std_exception_from_constructor_becomes_create_error) {
    auto p = host::load_plugin(good_plugin("abi_throwing"));
    TestHost th(R"({"mode":"throw_int"})");
    ErrorBuf eb;
    EXPECT_EQ(p->action->create(&th.raw, &eb.err), nullptr);
    EXPECT_STREQ(eb.message, "unknown exception");
}

TEST(AbiThrowing, transient_error_from_start_is_retriable) {
    auto p = host::load_plugin(good_plugin("abi_throwing"));
    TestHost th(R"({"mode":"throw_on_start"})");
    ErrorBuf eb;
    void *self = p->action->create(&th.raw, &eb.err);
    ASSERT_NE(self, nullptr);
    EXPECT_EQ(p->action->start(self, &eb.err), FOBS_ERR);
    EXPECT_STREQ(eb.message, "peer unreachable (on purpose)");
    EXPECT_EQ(eb.err.retriable, 1);
    p->action->destroy(self);
}

TEST(AbiThrowing, exceptions_from_execute_become_retry_exactly_once) {
    auto p = host::load_plugin(good_plugin("abi_throwing"));
    TestHost th;
    ErrorBuf eb;
    void *self = p->action->create(&th.raw, &eb.err);
    ASSERT_NE(self, nullptr);
    ASSERT_EQ(p->action->start(self, &eb.err), FOBS_OK);
    for (const char *type : {"throw", "throw_int", "drop"}) {
        auto token = execute(p->action, self, type);
        EXPECT_EQ(token->kind, FOBS_OUTCOME_RETRY) << type;
        EXPECT_EQ(token->calls, 1) << type << ": a token is completed exactly once";
        EXPECT_FALSE(token->reason.empty()) << type;
    }
    auto failed = execute(p->action, self, "fail");
    EXPECT_EQ(failed->kind, FOBS_OUTCOME_FAILED);
    EXPECT_EQ(failed->reason, "permanent failure on purpose");
    auto ok = execute(p->action, self, "Order");
    EXPECT_EQ(ok->kind, FOBS_OUTCOME_OK) << "the instance survives its own exceptions";
    p->action->stop(self);
    p->action->destroy(self);
}

TEST(AbiThrowing, host_instances_turn_plugin_failures_into_errors_and_retries) {
    // The same plugins through the host's own instance layer (host/instance.cpp).
    fobs_test::Harness h(FOBS_ABI_GOOD_DIR, "warn");
    try {
        h.action("raw_create_fails", "{}");
        FAIL() << "create succeeded";
    } catch (const host::InstanceError &e) {
        EXPECT_THAT(e.what(), HasSubstr("raw plugin: 'endpoint' must be an https URL"));
        EXPECT_EQ(e.key_path(), "target.endpoint");
    }
    try {
        h.action("abi_throwing", R"({"mode":"throw_config"})");
        FAIL() << "create succeeded";
    } catch (const host::InstanceError &e) {
        EXPECT_THAT(e.what(), HasSubstr("max_attempts must be at least 1"));
        EXPECT_EQ(e.key_path(), "retry.max_attempts");
    }
    auto action = h.action("abi_throwing", "{}");
    action->start();
    EXPECT_EQ(action->execute_sync(fobs_test::make_event("e1", "throw")).kind,
              FOBS_OUTCOME_RETRY);
    EXPECT_EQ(action->execute_sync(fobs_test::make_event("e2", "Order")).kind, FOBS_OUTCOME_OK);
    action->stop();
}

// ------------------------------------------------------------------------------------------
// clang++ + libc++ plugins inside the g++/libstdc++ host.
// ------------------------------------------------------------------------------------------

class AbiLibcxx : public ::testing::TestWithParam<std::string> {};

TEST_P(AbiLibcxx, libcxx_plugin_loads_executes_and_its_exception_becomes_retry) {
    if (!FOBS_ABI_HAVE_CLANG) GTEST_SKIP() << "clang++ is not installed";
    auto file = good_plugin("abi_libcxx_" + GetParam());
    auto p = host::load_plugin(file);
    EXPECT_EQ(p->name, "abi_libcxx");
    ASSERT_NE(p->action, nullptr);

    TestHost th;
    ErrorBuf eb;
    void *self = p->action->create(&th.raw, &eb.err);
    ASSERT_NE(self, nullptr) << eb.message;
    EXPECT_TRUE(th.logged("abi_libcxx uses libc++ ")) << "not built against libc++";
    ASSERT_EQ(p->action->start(self, &eb.err), FOBS_OK);

    auto ok = execute(p->action, self, "Order");
    EXPECT_EQ(ok->kind, FOBS_OUTCOME_OK);
    auto thrown = execute(p->action, self, "throw");
    EXPECT_EQ(thrown->kind, FOBS_OUTCOME_RETRY);
    EXPECT_EQ(thrown->calls, 1);
    auto async = execute(p->action, self, "async"); // completed from a libc++ std::thread
    EXPECT_EQ(async->kind, FOBS_OUTCOME_OK);
    EXPECT_NE(async->thread, std::this_thread::get_id());

    p->action->stop(self);
    p->action->destroy(self);

    // The host's own C++ runtime is unaffected.
    try {
        throw std::runtime_error("libstdc++ still unwinds");
    } catch (const std::runtime_error &e) {
        EXPECT_STREQ(e.what(), "libstdc++ still unwinds");
    }
}

INSTANTIATE_TEST_SUITE_P(SharedAndStaticLibcxx, AbiLibcxx, ::testing::Values("shared", "static"));

// ------------------------------------------------------------------------------------------
// Every real plugin exports exactly one symbol.
// ------------------------------------------------------------------------------------------

std::vector<std::string> exported_symbols(const fs::path &file) {
    auto [rc, out] = fobs_test::run_command({FOBS_ABI_NM, "-D", "--defined-only", file.string()});
    EXPECT_EQ(rc, 0) << out;
    std::vector<std::string> symbols;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::vector<std::string> w;
        for (std::string s; words >> s;) w.push_back(s);
        if (w.size() == 3 && w[1].size() == 1) symbols.push_back(w[2]);
    }
    return symbols;
}

void expect_one_exported_symbol(const fs::path &dir, size_t at_least) {
    auto files = so_files(dir);
    ASSERT_GE(files.size(), at_least) << "no plugin built in " << dir;
    for (const auto &f : files)
        EXPECT_EQ(exported_symbols(f), std::vector<std::string>{"fobs_plugin_get_entry"}) << f;
}

TEST(AbiExports, every_real_plugin_exports_only_the_entry_symbol) {
    expect_one_exported_symbol(fobs_test::plugin_dir(), 1);
}

TEST(AbiExports, sdk_built_and_clang_test_plugins_export_only_the_entry_symbol) {
    expect_one_exported_symbol(FOBS_ABI_GOOD_DIR, 4);
}

TEST(AbiExports, symbol_check_detects_an_extra_export) {
    // The check above can fail: this library (built without the SDK's version script)
    // exports a second function.
    auto symbols = exported_symbols(broken_plugin("undefined_symbol"));
    EXPECT_THAT(symbols, ::testing::Contains("fobs_test_calls_missing"));
    EXPECT_GE(symbols.size(), 2u);
}

} // namespace
