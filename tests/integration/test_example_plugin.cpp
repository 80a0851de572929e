// The out-of-tree plugin story, as a third party lives it: install fraiseql-observer to a
// prefix, build examples/action_plugin against the installed SDK only with clang++ and libc++,
// install it next to the shipped plugins, and run it from the installed g++-built binary.
#include "installed_sdk.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <set>
#include <sstream>

using namespace fobs_test;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
std::string cmd_output(const std::vector<std::string> &argv) { return run_command(argv).second; }
} // namespace

TEST(ExamplePlugin, builds_against_installed_sdk_with_libcxx_and_runs_in_installed_host) {
    if (run_command({"clang++", "--version"}).first != 0) GTEST_SKIP() << "clang++ not installed";
    TempDir dir("fobs-example");
    fs::path prefix = dir / "prefix";

    // 1. cmake --install gives SPEC section 10's layout.
    {
        auto [code, out] = install_build_tree(prefix);
        ASSERT_EQ(code, 0) << out;
    }
    EXPECT_TRUE(fs::exists(prefix / "bin/fraiseql-observer"));
    EXPECT_TRUE(fs::exists(prefix / "lib/fraiseql-observer/plugins/memory_transport.so"));
    EXPECT_TRUE(fs::exists(prefix / "include/fraiseql_observer/abi.h"));
    EXPECT_TRUE(fs::exists(prefix / "include/fraiseql_observer/plugin.hpp"));
    EXPECT_TRUE(fs::exists(prefix / "lib/cmake/fraiseql-observer-sdk/fraiseql-observer-sdk-config.cmake"));
    EXPECT_FALSE(fs::exists(prefix / "lib/fraiseql-observer/plugins/test_jsonl_source.so"));

    // 2. The example builds against the installed SDK only, with clang++ and libc++.
    fs::path build = dir / "example-build";
    {
        auto [code, out] = build_and_install_plugin(
            std::string(FOBS_TEST_SOURCE_DIR) + "/examples/action_plugin", build, prefix,
            {"-DCMAKE_CXX_COMPILER=clang++", "-DCMAKE_CXX_FLAGS=-stdlib=libc++",
             "-DCMAKE_MODULE_LINKER_FLAGS=-stdlib=libc++"});
        ASSERT_EQ(code, 0) << out;
    }
    fs::path so = prefix / "lib/fraiseql-observer/plugins/jsonl_file_action.so";
    ASSERT_TRUE(fs::exists(so));
    EXPECT_NE(cmd_output({"ldd", so.string()}).find("libc++"), std::string::npos)
        << "the example should be linked against libc++";
    EXPECT_EQ(exported_symbols(so), std::vector<std::string>{"fobs_plugin_get_entry"});

    // 3. The installed binary finds it (relative to itself) beside the shipped plugins.
    std::string bin = (prefix / "bin/fraiseql-observer").string();
    auto listed = json::parse(cmd_output({bin, "plugins", "--json"}), nullptr, false);
    ASSERT_FALSE(listed.is_discarded());
    std::set<std::string> names;
    for (const auto &p : listed["plugins"]) names.insert(p["name"].get<std::string>());
    EXPECT_TRUE(names.count("jsonl_file"));
    EXPECT_TRUE(names.count("memory"));
    EXPECT_TRUE(names.count("log"));

    // 3b. Its key table is what the host documents and checks (README: `plugins --describe`).
    {
        auto [code, out] = run_command({bin, "plugins", "--describe", "jsonl_file"});
        ASSERT_EQ(code, 0) << out;
        EXPECT_NE(out.find("path  (string; required; not empty)"), std::string::npos) << out;
        EXPECT_NE(out.find("keep  (integer; default 5; 1 – 100)"), std::string::npos) << out;
        EXPECT_NE(out.find("fsync  (boolean; default false)"), std::string::npos) << out;
    }
    auto validate = [&](const std::string &action_keys) {
        write_file(dir / "check.toml", "[transports.local]\nplugin = \"memory\"\n\n"
                                       "[actions.archive]\nplugin = \"jsonl_file\"\n" +
                                           action_keys +
                                           "\n[[pipelines]]\nname = \"p\"\nactions = [\"archive\"]\n");
        return run_command({bin, "validate", "-c", (dir / "check.toml").string()});
    };
    const std::string check = (dir / "check.toml").string();
    {
        auto [code, out] = validate("path = \"" + (dir / "x.jsonl").string() + "\"\nkeep = 0\n");
        EXPECT_EQ(code, 2) << out;
        EXPECT_NE(out.find(check + ":7:1: actions.archive.keep: must be between 1 and 100, got 0"),
                  std::string::npos)
            << out;
    }
    {
        auto [code, out] = validate("path = \"" + (dir / "x.jsonl").string() + "\"\nmax_byte = 5\n");
        EXPECT_EQ(code, 2) << out;
        EXPECT_NE(out.find(check + ":7:1: actions.archive.max_byte: unknown key `max_byte` (did you "
                                   "mean `max_bytes`?)"),
                  std::string::npos)
            << out;
    }
    {
        auto [code, out] = validate("fsync = true\n");
        EXPECT_EQ(code, 2) << out;
        EXPECT_NE(out.find("actions.archive.path: missing required key `path`"), std::string::npos) << out;
    }
    {
        // The plugin's own check (ConfigError in its constructor), at the key's position.
        auto [code, out] = validate("path = \"" + dir.path().string() + "/\"\n");
        EXPECT_EQ(code, 2) << out;
        EXPECT_NE(out.find(check + ":6:1: actions.archive.path: names a directory; give a file name "
                                   "(plugin 'jsonl_file')"),
                  std::string::npos)
            << out;
    }
    {
        auto [code, out] = validate("path = \"" + (dir / "x.jsonl").string() + "\"\n");
        EXPECT_EQ(code, 0) << out;
        EXPECT_FALSE(fs::exists(dir / "x.jsonl")) << "validate must not open the file";
    }

    // 4. It runs: test source -> memory -> jsonl_file; the file holds each event once.
    fs::path out = dir / "events.jsonl";
    std::ostringstream cfg;
    cfg << "[observer]\nmetrics_listen = \"\"\n\n"
        << "[sources.feed]\nplugin = \"test_jsonl\"\npath = \"" << (dir / "in.jsonl").string()
        << "\"\nack_path = \"" << (dir / "acks.txt").string() << "\"\n\n"
        << "[transports.local]\nplugin = \"memory\"\n\n"
        << "[actions.archive]\nplugin = \"jsonl_file\"\npath = \"" << out.string() << "\"\n\n"
        << "[[pipelines]]\nname = \"p\"\nsource = \"feed\"\nactions = [\"archive\"]\n";
    write_file(dir / "cfg.toml", cfg.str());
    std::string lines;
    for (int i = 1; i <= 5; ++i)
        lines += "{\"id\":\"e" + std::to_string(i) +
                 "\",\"entity_type\":\"Order\",\"operation\":\"INSERT\",\"entity_id\":\"" +
                 std::to_string(i) + "\"}\n";
    write_file(dir / "in.jsonl", lines);
    ProcessOptions o;
    o.argv = {bin, "run", "-c", (dir / "cfg.toml").string(), "--plugin-dir", FOBS_TEST_EXTRA_PLUGIN_DIR};
    o.output = dir / "observer.log";
    Process p(o);
    auto count_lines = [&] {
        std::string s = read_file(out);
        return std::count(s.begin(), s.end(), '\n');
    };
    ASSERT_TRUE(eventually([&] { return count_lines() == 5; }, std::chrono::seconds(20))) << p.output();
    p.signal(SIGTERM);
    ASSERT_EQ(p.wait(std::chrono::seconds(20)).value_or(-1), 0) << p.output();
    std::istringstream in(read_file(out));
    std::string line;
    std::set<std::string> ids;
    while (std::getline(in, line)) ids.insert(json::parse(line)["id"].get<std::string>());
    EXPECT_EQ(ids, (std::set<std::string>{"e1", "e2", "e3", "e4", "e5"}));
}
