// plugin_search_path (SPEC section 2): --plugin-dir values, then $FRAISEQL_OBSERVER_PLUGIN_PATH,
// then [observer] plugin_dirs, then <exe dir>/../lib/fraiseql-observer/plugins; absolute and
// without duplicates.
#include "plugin_loader.hpp"
#include "process.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

namespace host = fraiseql_observer::host;
namespace fs = std::filesystem;
using Paths = std::vector<fs::path>;

namespace {

TEST(PluginSearchPath, order_is_cli_then_env_then_config_then_install_dir) {
    auto r = host::plugin_search_path({"/cli/a", "/cli/b"}, "/env/a:/env/b", {"/cfg/a"},
                                      "/opt/fobs/bin/fraiseql-observer");
    EXPECT_EQ(r, (Paths{"/cli/a", "/cli/b", "/env/a", "/env/b", "/cfg/a",
                        "/opt/fobs/lib/fraiseql-observer/plugins"}));
}

TEST(PluginSearchPath, empty_env_entries_are_skipped) {
    auto r = host::plugin_search_path({}, ":/env/a::/env/b:", {}, "");
    EXPECT_EQ(r, (Paths{"/env/a", "/env/b"}));
    EXPECT_TRUE(host::plugin_search_path({}, "", {}, "").empty());
    EXPECT_TRUE(host::plugin_search_path({}, ":::", {}, "").empty());
}

TEST(PluginSearchPath, duplicates_keep_their_first_position) {
    auto r = host::plugin_search_path({"/x/one", "/x/two"}, "/x/two/:/x/three:/x/./one",
                                      {"/x/three", "/x/four"}, "");
    EXPECT_EQ(r, (Paths{"/x/one", "/x/two", "/x/three", "/x/four"}));
}

TEST(PluginSearchPath, symlinked_directory_is_the_same_directory) {
    fobs_test::TempDir d("fobs-path");
    fs::create_directory(d / "real");
    fs::create_directory_symlink(d / "real", d / "alias");
    auto real = fs::canonical(d / "real");
    auto r = host::plugin_search_path({(d / "alias").string()}, (d / "real").string(), {}, "");
    EXPECT_EQ(r, (Paths{real}));
}

TEST(PluginSearchPath, relative_dirs_are_made_absolute_against_the_current_directory) {
    fobs_test::TempDir d("fobs-path");
    auto cwd = fs::current_path();
    fs::current_path(d.path());
    auto r = host::plugin_search_path({"plugins"}, "more/../other", {"./cfg"}, "bin/observer");
    fs::current_path(cwd);
    auto base = fs::canonical(d.path());
    EXPECT_EQ(r, (Paths{base / "plugins", base / "other", base / "cfg",
                        base / "lib" / "fraiseql-observer" / "plugins"}));
    for (const auto &p : r) EXPECT_TRUE(p.is_absolute()) << p;
}

TEST(PluginSearchPath, install_dir_follows_a_symlinked_executable) {
    // /usr/local/bin/fraiseql-observer -> /opt/fobs/bin/fraiseql-observer finds /opt/fobs/lib/...
    fobs_test::TempDir d("fobs-path");
    fs::create_directories(d / "opt" / "bin");
    fs::create_directories(d / "usr" / "bin");
    fobs_test::write_file(d / "opt" / "bin" / "fraiseql-observer", "");
    fs::create_symlink(d / "opt" / "bin" / "fraiseql-observer", d / "usr" / "bin" / "fobs");
    auto r = host::plugin_search_path({}, "", {}, d / "usr" / "bin" / "fobs");
    EXPECT_EQ(r, (Paths{fs::canonical(d / "opt") / "lib" / "fraiseql-observer" / "plugins"}));
}

TEST(PluginSearchPath, executable_path_is_this_process) {
    auto exe = host::executable_path();
    EXPECT_TRUE(exe.is_absolute());
    EXPECT_EQ(exe, fs::canonical("/proc/self/exe"));
}

TEST(PluginSearchPath, build_tree_binary_finds_the_build_tree_plugin_dir) {
    // The build tree mirrors the install layout: <build>/bin and <build>/lib/.../plugins.
    auto r = host::plugin_search_path({}, "", {}, fobs_test::observer_binary());
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0], fs::weakly_canonical(fobs_test::plugin_dir()));
}

} // namespace
