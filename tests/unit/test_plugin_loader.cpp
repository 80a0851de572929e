// The plugin registry over the build tree's real plugins and over directories made up on the
// spot. Deliberately broken plugins are in tests/abi/test_abi_loader.cpp.
#include "config.hpp"
#include "harness.hpp"
#include "pipeline.hpp"
#include "plugin_loader.hpp"
#include "process.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <sys/stat.h>
#include <unistd.h>

namespace host = fraiseql_observer::host;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

TEST(PluginLoader, component_kinds_have_their_config_names) {
    EXPECT_STREQ(host::to_string(host::ComponentKind::source), "source");
    EXPECT_STREQ(host::to_string(host::ComponentKind::transport), "transport");
    EXPECT_STREQ(host::to_string(host::ComponentKind::action), "action");
}

TEST(PluginLoader, build_tree_plugins_all_load_and_pass_the_checks) {
    host::PluginRegistry reg;
    reg.discover({fobs_test::plugin_dir()}, true);
    for (const auto &p : reg.problems()) ADD_FAILURE() << p.message;
    ASSERT_FALSE(reg.plugins().empty());
    const auto dir = fs::canonical(fobs_test::plugin_dir());
    std::vector<std::string> names;
    for (const auto &p : reg.plugins()) {
        EXPECT_TRUE(std::regex_match(p->name, std::regex("[a-z0-9_]+"))) << p->name;
        EXPECT_FALSE(p->version.empty()) << p->name;
        EXPECT_EQ(p->abi_major, FOBS_ABI_MAJOR);
        EXPECT_LE(p->abi_minor, FOBS_ABI_MINOR);
        EXPECT_EQ(p->file.parent_path(), dir);
        EXPECT_EQ(p->file.extension(), ".so");
        EXPECT_FALSE(p->kinds().empty()) << p->name;
        EXPECT_EQ(p->offers(host::ComponentKind::action), p->action != nullptr);
        EXPECT_EQ(p->offers(host::ComponentKind::transport), p->transport != nullptr);
        EXPECT_EQ(p->offers(host::ComponentKind::source), p->source != nullptr);
        EXPECT_EQ(p->entry->name, p->name);
        EXPECT_TRUE(p->library) << "the library handle keeps the code mapped";
        EXPECT_EQ(reg.find(p->name), p);
        names.push_back(p->name);
    }
    std::sort(names.begin(), names.end());
    EXPECT_EQ(reg.names(), names) << "names() is sorted";
    EXPECT_EQ(reg.find("no_such_plugin"), nullptr);
}

TEST(PluginLoader, shipped_plugins_offer_the_kinds_the_spec_names) {
    host::PluginRegistry reg;
    reg.discover({fobs_test::plugin_dir()});
    const std::map<std::string, std::vector<std::string>> expected = {
        {"nats", {"transport"}},  {"memory", {"transport"}}, {"pg_listen", {"source"}},
        {"webhook", {"action"}}, {"log", {"action"}}};
    for (const auto &[name, kinds] : expected) {
        auto p = reg.find(name);
        ASSERT_NE(p, nullptr) << "plugin '" << name << "' is not built";
        EXPECT_EQ(p->kinds(), kinds) << name;
    }
}

TEST(PluginLoader, only_regular_so_files_are_candidates) {
    fobs_test::TempDir d("fobs-loader");
    fobs_test::write_file(d / "README", "not a plugin");
    fobs_test::write_file(d / "libfoo.so.1", "versioned names are not candidates");
    fobs_test::write_file(d / "plugin.so.disabled", "neither are disabled ones");
    fs::create_directory(d / "dir.so");
    host::PluginRegistry reg;
    reg.discover({d.path()}, true);
    EXPECT_TRUE(reg.plugins().empty());
    EXPECT_TRUE(reg.problems().empty()) << reg.problems().at(0).message;
}

TEST(PluginLoader, missing_directories_are_ignored_unless_strict) {
    fobs_test::TempDir d("fobs-loader");
    auto missing = d / "nope";
    host::PluginRegistry lenient;
    lenient.discover({missing, fobs_test::plugin_dir()});
    EXPECT_TRUE(lenient.problems().empty());
    EXPECT_FALSE(lenient.plugins().empty()) << "later directories are still scanned";

    host::PluginRegistry strict;
    strict.discover({missing}, true);
    ASSERT_EQ(strict.problems().size(), 1u);
    EXPECT_EQ(strict.problems()[0].file, missing);
    EXPECT_THAT(strict.problems()[0].message, HasSubstr(missing.string()));
    EXPECT_THAT(strict.problems()[0].message, HasSubstr("does not exist"));
}

TEST(PluginLoader, a_file_given_as_directory_is_ignored_unless_strict) {
    fobs_test::TempDir d("fobs-loader");
    fobs_test::write_file(d / "file", "x");
    host::PluginRegistry strict;
    strict.discover({d / "file"}, true);
    ASSERT_EQ(strict.problems().size(), 1u);
    EXPECT_THAT(strict.problems()[0].message, HasSubstr("not a directory"));
}

TEST(PluginLoader, a_broken_file_is_a_problem_and_discovery_goes_on) {
    fobs_test::TempDir d("fobs-loader");
    fobs_test::write_file(d / "aaa_garbage.so", std::string(100, 'x'));
    host::PluginRegistry reg;
    reg.discover({d.path(), fobs_test::plugin_dir()});
    ASSERT_EQ(reg.problems().size(), 1u);
    auto file = fs::canonical(d / "aaa_garbage.so");
    EXPECT_EQ(reg.problems()[0].file, file);
    EXPECT_THAT(reg.problems()[0].message, HasSubstr(file.string()));
    EXPECT_THAT(reg.problems()[0].message, HasSubstr("invalid ELF header"));
    EXPECT_FALSE(reg.plugins().empty());
}

TEST(PluginLoader, plugin_dir_searched_twice_loads_each_plugin_once) {
    fobs_test::TempDir d("fobs-loader");
    fs::create_directory_symlink(fobs_test::plugin_dir(), d / "alias");
    host::PluginRegistry once, twice;
    once.discover({fobs_test::plugin_dir()});
    twice.discover({fobs_test::plugin_dir(), d / "alias", fobs_test::plugin_dir()});
    EXPECT_EQ(twice.names(), once.names());
    EXPECT_TRUE(twice.problems().empty()) << twice.problems().at(0).message;
}

TEST(PluginLoader, load_plugin_accepts_a_relative_path_and_reports_it_absolute) {
    host::PluginRegistry reg;
    reg.discover({fobs_test::plugin_dir()});
    ASSERT_FALSE(reg.plugins().empty());
    auto file = reg.plugins()[0]->file;
    auto rel = fs::relative(file, fs::current_path());
    ASSERT_FALSE(rel.is_absolute());
    auto p = host::load_plugin(rel);
    EXPECT_EQ(p->file, file);
    EXPECT_EQ(p->name, reg.plugins()[0]->name);
}

// ----- which files run/validate open: only the plugins the config names ------------------

std::vector<std::string> problem_texts(const host::PluginRegistry &reg) {
    std::vector<std::string> r;
    for (const auto &p : reg.problems()) r.push_back(p.message);
    return r;
}

std::string joined(const std::vector<std::string> &v) {
    std::string r;
    for (const auto &s : v) r += s + "\n";
    return r;
}

fs::path built_plugin(const std::string &file_name) {
    return fs::canonical(fs::path(fobs_test::plugin_dir()) / file_name);
}

TEST(PluginLoader, file_names_looked_for_follow_the_sdk_naming) {
    EXPECT_EQ(host::plugin_file_names("pg_listen"),
              (std::vector<std::string>{"pg_listen.so", "libpg_listen.so", "pg_listen_source.so",
                                        "pg_listen_transport.so", "pg_listen_action.so"}));
    // Every shipped plugin is found by one of them, so run never needs the fallback.
    host::PluginRegistry all;
    all.discover({fobs_test::plugin_dir()});
    for (const auto &p : all.plugins()) {
        auto names = host::plugin_file_names(p->name);
        EXPECT_NE(std::find(names.begin(), names.end(), p->file.filename().string()), names.end())
            << p->file;
    }
}

TEST(PluginLoader, load_named_opens_only_the_files_named_for_those_plugins) {
    // A file that is not a plugin at all: opening it would be reported as a problem.
    fobs_test::TempDir d("fobs-loader");
    fs::permissions(d.path(), fs::perms(0755));
    fobs_test::write_file(d / "aaa_garbage.so", std::string(100, 'x'));
    fobs_test::write_file(d / "zzz_garbage.so", std::string(100, 'x'));
    host::PluginRegistry reg;
    reg.load_named({d.path(), fobs_test::plugin_dir()}, {"log", "memory", "log"});
    EXPECT_TRUE(reg.problems().empty()) << joined(problem_texts(reg));
    EXPECT_EQ(reg.names(), (std::vector<std::string>{"log", "memory"}));
    ASSERT_NE(reg.find("log"), nullptr);
    EXPECT_EQ(reg.find("log")->file, built_plugin("log_action.so"));
    EXPECT_EQ(reg.find("memory")->file, built_plugin("memory_transport.so"));
}

TEST(PluginLoader, load_named_takes_the_first_directory_with_a_file_named_for_the_plugin) {
    fobs_test::TempDir d("fobs-loader");
    fs::permissions(d.path(), fs::perms(0755));
    fs::copy_file(built_plugin("log_action.so"), d / "log.so");
    host::PluginRegistry reg;
    reg.load_named({d.path(), fobs_test::plugin_dir()}, {"log"});
    ASSERT_NE(reg.find("log"), nullptr);
    EXPECT_EQ(reg.find("log")->file, fs::canonical(d / "log.so"));
    EXPECT_EQ(reg.names(), (std::vector<std::string>{"log"})) << "log_action.so stays closed";
}

TEST(PluginLoader, a_file_named_for_a_plugin_that_declares_another_is_a_problem) {
    fobs_test::TempDir d("fobs-loader");
    fs::permissions(d.path(), fs::perms(0755));
    fs::copy_file(built_plugin("memory_transport.so"), d / "log.so");
    host::PluginRegistry reg;
    reg.load_named({d.path(), fobs_test::plugin_dir()}, {"log"});
    ASSERT_NE(reg.find("log"), nullptr);
    EXPECT_EQ(reg.find("log")->file, built_plugin("log_action.so")) << "the search went on";
    ASSERT_EQ(reg.problems().size(), 1u) << joined(problem_texts(reg));
    EXPECT_THAT(reg.problems()[0].message, HasSubstr(fs::canonical(d / "log.so").string()));
    EXPECT_THAT(reg.problems()[0].message, HasSubstr("is named for plugin 'log' but declares 'memory'"));
}

TEST(PluginLoader, a_plugin_no_file_is_named_for_is_searched_in_the_others_and_that_is_said) {
    fobs_test::TempDir d("fobs-loader");
    fs::permissions(d.path(), fs::perms(0755));
    fs::copy_file(built_plugin("log_action.so"), d / "my_logger.so");
    fs::copy_file(built_plugin("memory_transport.so"), d / "zzz_other.so");
    host::PluginRegistry reg;
    reg.load_named({d.path()}, {"log"});
    ASSERT_NE(reg.find("log"), nullptr);
    EXPECT_EQ(reg.find("log")->file, fs::canonical(d / "my_logger.so"));
    EXPECT_EQ(reg.find("memory"), nullptr) << "the search stops once the plugin is found";
    ASSERT_EQ(reg.problems().size(), 1u) << joined(problem_texts(reg));
    const std::string &m = reg.problems()[0].message;
    EXPECT_THAT(m, HasSubstr("no file named for plugin 'log' (log.so, liblog.so, log_source.so"));
    EXPECT_THAT(m, HasSubstr("other plugin files were opened"));
    EXPECT_THAT(m, HasSubstr(fs::canonical(d / "my_logger.so").string()));
    EXPECT_THAT(m, HasSubstr("rename it to log.so"));

    // A name nothing declares (a typo): every file is opened, so the names for a hint are known.
    host::PluginRegistry typo;
    typo.load_named({d.path()}, {"lgo"});
    EXPECT_EQ(typo.names(), (std::vector<std::string>{"log", "memory"}));
    EXPECT_THAT(joined(problem_texts(typo)), HasSubstr("no plugin file declares it"));
}

TEST(PluginLoader, writable_plugin_directories_and_files_are_warned_about_by_path) {
    fobs_test::TempDir d("fobs-loader");
    fs::permissions(d.path(), fs::perms(0755));
    fs::copy_file(built_plugin("log_action.so"), d / "log.so");
    fs::permissions(d / "log.so", fs::perms(0644));
    const std::string dir = fs::canonical(d.path()).string();
    const std::string file = fs::canonical(d / "log.so").string();
    EXPECT_EQ(host::writable_by_others(d.path()), "");
    EXPECT_EQ(host::writable_by_others(d / "log.so"), "");

    fs::permissions(d.path(), fs::perms(0777));
    fs::permissions(d / "log.so", fs::perms(0666));
    for (bool listing : {false, true}) {
        host::PluginRegistry reg;
        if (listing) reg.discover({d.path()});
        else reg.load_named({d.path()}, {"log"});
        ASSERT_NE(reg.find("log"), nullptr) << "a warning, loading goes on";
        const std::string all = joined(problem_texts(reg));
        EXPECT_THAT(all, HasSubstr("plugin directory '" + dir + "' is world-writable"));
        EXPECT_THAT(all, HasSubstr("plugin file '" + file + "' is world-writable"));
        EXPECT_THAT(all, HasSubstr("chmod o-w '" + dir + "'"));
        EXPECT_EQ(reg.problems().size(), 2u) << all;
    }
    // A search directory no plugin came from is still one a plugin could be put into.
    host::PluginRegistry other;
    other.load_named({d.path(), fobs_test::plugin_dir()}, {"memory"});
    EXPECT_THAT(joined(problem_texts(other)), HasSubstr("plugin directory '" + dir + "' is world-writable"));

    // Group-writable: fine for root's group, a warning for any other.
    fs::permissions(d.path(), fs::perms(0775));
    fs::permissions(d / "log.so", fs::perms(0664));
    struct stat st {};
    ASSERT_EQ(::stat(d.path().c_str(), &st), 0);
    if (st.st_gid == 0) EXPECT_EQ(host::writable_by_others(d.path()), "");
    if (::geteuid() == 0) {
        ASSERT_EQ(::chown(d.path().c_str(), 0, 100), 0);
        EXPECT_THAT(host::writable_by_others(d.path()),
                    HasSubstr("plugin directory '" + d.path().string() + "' is writable by group"));
        EXPECT_THAT(host::writable_by_others(d.path()), HasSubstr("gid 100"));
        ASSERT_EQ(::chown(d.path().c_str(), 0, 0), 0);
        EXPECT_EQ(host::writable_by_others(d.path()), "");
    } else if (st.st_gid != 0) {
        EXPECT_THAT(host::writable_by_others(d.path()), HasSubstr("is writable by group"));
    }
}

// ----- what validate opens, as a user sees it ----------------------------------------------

std::pair<int, std::string> cli(std::vector<std::string> args) {
    args.insert(args.begin(), fobs_test::observer_binary());
    return fobs_test::run_command(args, {{"FRAISEQL_OBSERVER_CONFIG", ""},
                                         {"FRAISEQL_OBSERVER_PLUGIN_PATH", ""}});
}

const std::string k_log_and_memory =
    "[transports.t]\nplugin = \"memory\"\n[actions.a]\nplugin = \"log\"\n"
    "[[pipelines]]\nname = \"p\"\nactions = [\"a\"]\n";

TEST(PluginLoader, validate_opens_only_the_plugins_the_config_names_and_warns_on_writable_dirs) {
    fobs_test::TempDir d("fobs-loader");
    fs::permissions(d.path(), fs::perms(0755));
    fs::create_directory(d / "extra");
    fobs_test::write_file(d / "extra" / "aaa_garbage.so", std::string(100, 'x'));
    fobs_test::write_file(d / "cfg.toml", k_log_and_memory);
    auto [code, out] = cli({"validate", "-c", (d / "cfg.toml").string(), "--plugin-dir",
                            (d / "extra").string()});
    EXPECT_EQ(code, 0) << out;
    EXPECT_EQ(out.find("aaa_garbage.so"), std::string::npos) << "opened a file no config names:\n" << out;

    // The listing command still opens every file: listing is its job.
    auto [lcode, listing] = cli({"plugins", "--plugin-dir", (d / "extra").string()});
    EXPECT_EQ(lcode, 0) << listing;
    EXPECT_THAT(listing, HasSubstr("aaa_garbage.so"));

    fs::permissions(d / "extra", fs::perms(0777));
    auto [wcode, wout] = cli({"validate", "-c", (d / "cfg.toml").string(), "--plugin-dir",
                              (d / "extra").string()});
    EXPECT_EQ(wcode, 0) << wout;
    EXPECT_THAT(wout, HasSubstr("warning: plugin directory '" + fs::canonical(d / "extra").string() +
                                "' is world-writable"));
}

// ----- messages name the kind with its article ---------------------------------------------

TEST(PluginLoader, kinds_with_their_article) {
    EXPECT_STREQ(host::with_article(host::ComponentKind::source), "a source");
    EXPECT_STREQ(host::with_article(host::ComponentKind::transport), "a transport");
    EXPECT_STREQ(host::with_article(host::ComponentKind::action), "an action");
}

TEST(PluginLoader, a_plugin_of_the_wrong_kind_is_refused_with_an_action_not_a_action) {
    fobs_test::Harness h;
    try {
        h.action("memory", "{}");
        ADD_FAILURE() << "a transport plugin made an action";
    } catch (const host::InstanceError &e) {
        EXPECT_THAT(e.what(), HasSubstr("is not an action plugin")) << e.what();
    }
    host::ComponentConfig c;
    c.name = "a";
    c.plugin = "memory";
    c.section = "actions.a";
    c.where = {"cfg.toml", 3, 1};
    try {
        host::make_instance(c, host::ComponentKind::action, h.registry(), h.services(), "a");
        ADD_FAILURE() << "a transport plugin made an action";
    } catch (const host::ConfigError &e) {
        EXPECT_THAT(e.what(), HasSubstr("plugin 'memory' is not an action plugin (it offers: transport)"));
    }
    // As a user meets it.
    fobs_test::TempDir d("fobs-loader");
    fobs_test::write_file(d / "cfg.toml", "[transports.t]\nplugin = \"memory\"\n[actions.a]\nplugin = \"memory\"\n"
                                          "[[pipelines]]\nname = \"p\"\nactions = [\"a\"]\n");
    auto [code, out] = cli({"validate", "-c", (d / "cfg.toml").string()});
    EXPECT_EQ(code, 2) << out;
    EXPECT_THAT(out, HasSubstr("is not an action plugin")) << out;
    EXPECT_EQ(out.find(" a action"), std::string::npos) << out;
}

} // namespace
