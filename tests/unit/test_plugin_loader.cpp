// The plugin registry over the build tree's real plugins and over directories made up on the
// spot. Deliberately broken plugins are in tests/abi/test_abi_loader.cpp.
#include "plugin_loader.hpp"
#include "process.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>

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

} // namespace
