// The plain-C plugin story: install fraiseql-observer to a prefix, build
// examples/c_action_plugin (C99 only, `project(... LANGUAGES C)`) with `cc` against the installed
// SDK only, install it next to the shipped plugins and run it from the installed binary. Its key
// table is what `plugins --describe` prints and `validate` checks; events arrive as datagrams on
// a real UDP socket bound here, and an event too large for one datagram is dead-lettered with
// the plugin's reason.
#include "installed_sdk.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace fobs_test;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A UDP socket bound to 127.0.0.1 on a free port, collecting whole datagrams.
class UdpReceiver {
  public:
    UdpReceiver() {
        fd_ = socket(AF_INET, SOCK_DGRAM, 0);
        if (fd_ < 0) throw std::runtime_error("socket failed");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
            getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) != 0)
            throw std::runtime_error("bind failed");
        port_ = ntohs(a.sin_port);
        timeval tv{0, 100 * 1000}; // so that receive() returns to check its deadline
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~UdpReceiver() { close(fd_); }
    UdpReceiver(const UdpReceiver &) = delete;
    UdpReceiver &operator=(const UdpReceiver &) = delete;

    int port() const { return port_; }
    // Appends the datagrams that arrive until `count` are held in all or `timeout` passes.
    void receive(size_t count, std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        std::vector<char> buf(65536);
        while (datagrams.size() < count && std::chrono::steady_clock::now() < deadline) {
            ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
            if (n >= 0) datagrams.emplace_back(buf.data(), size_t(n));
        }
    }
    std::vector<std::string> datagrams;

  private:
    int fd_ = -1;
    int port_ = 0;
};

std::string event_line(const std::string &id, const std::string &payload = "x") {
    return json{{"id", id},
                {"entity_type", "Order"},
                {"operation", "INSERT"},
                {"entity_id", id},
                {"entity", {{"note", payload}}}}
               .dump() +
           "\n";
}

} // namespace

TEST(CExamplePlugin, builds_with_cc_against_installed_sdk_and_sends_datagrams) {
    if (run_command({"cc", "--version"}).first != 0) GTEST_SKIP() << "cc not installed";
    TempDir dir("fobs-c-example");
    const fs::path prefix = dir / "prefix";

    // 1. Install, then build the example with cc: a C-only CMake project, -std=c99 -pedantic
    //    -Werror (its CMakeLists.txt), against the installed SDK only.
    {
        auto [code, out] = install_build_tree(prefix);
        ASSERT_EQ(code, 0) << out;
    }
    const fs::path build = dir / "example-build";
    {
        auto [code, out] = build_and_install_plugin(
            std::string(FOBS_TEST_SOURCE_DIR) + "/examples/c_action_plugin", build, prefix,
            {"-DCMAKE_C_COMPILER=cc"});
        ASSERT_EQ(code, 0) << out;
    }
    const std::string cache = read_file(build / "CMakeCache.txt");
    EXPECT_EQ(cache.find("CMAKE_CXX_COMPILER:"), std::string::npos) << "C++ was enabled";
    const std::string ninja = read_file(build / "build.ninja");
    for (const char *flag : {"-std=c99", "-pedantic", "-Werror", "-Wextra"})
        EXPECT_NE(ninja.find(flag), std::string::npos) << flag << " missing from the build";
    const fs::path so = prefix / "lib/fraiseql-observer/plugins/udp_datagram_action.so";
    ASSERT_TRUE(fs::exists(so));
    EXPECT_EQ(exported_symbols(so), std::vector<std::string>{"fobs_plugin_get_entry"});
    const std::string libs = run_command({"ldd", so.string()}).second;
    EXPECT_EQ(libs.find("libstdc++"), std::string::npos) << libs;
    EXPECT_EQ(libs.find("libc++"), std::string::npos) << libs;

    // 2. The key table, as the installed binary describes it.
    const std::string bin = (prefix / "bin/fraiseql-observer").string();
    {
        auto [code, out] = run_command({bin, "plugins", "--describe", "udp_datagram"});
        ASSERT_EQ(code, 0) << out;
        EXPECT_NE(out.find("udp_datagram 1.0.0 (abi 1.1, " + so.string() + ")"), std::string::npos) << out;
        EXPECT_NE(out.find("host  (string; default \"127.0.0.1\"; not empty)"), std::string::npos) << out;
        EXPECT_NE(out.find("port  (integer; required; 1 – 65535)"), std::string::npos) << out;
        EXPECT_NE(out.find("max_datagram_bytes  (integer; default 65507; 1 – 65507)"), std::string::npos)
            << out;
    }

    // 3. `validate` checks a config against that table, at file:line:col.
    const std::string check = (dir / "check.toml").string();
    auto validate = [&](const std::string &action_keys) {
        write_file(check, "[transports.local]\nplugin = \"memory\"\n\n"
                          "[actions.udp]\nplugin = \"udp_datagram\"\n" +
                              action_keys + "\n[[pipelines]]\nname = \"p\"\nactions = [\"udp\"]\n");
        return run_command({bin, "validate", "-c", check});
    };
    {
        auto [code, out] = validate("port = 0\n");
        EXPECT_EQ(code, 2) << out;
        EXPECT_NE(out.find(check + ":6:1: actions.udp.port: must be between 1 and 65535, got 0"),
                  std::string::npos)
            << out;
    }
    {
        auto [code, out] = validate("port = 9\nmax_datagram_bytes = 65508\n");
        EXPECT_EQ(code, 2) << out;
        EXPECT_NE(out.find(check + ":7:1: actions.udp.max_datagram_bytes: must be between 1 and 65507"),
                  std::string::npos)
            << out;
    }
    {
        auto [code, out] = validate("host = \"127.0.0.1\"\n");
        EXPECT_EQ(code, 2) << out;
        EXPECT_NE(out.find("actions.udp.port: missing required key `port`"), std::string::npos) << out;
    }
    {
        // `create` reads the config only: a name nobody can resolve passes `validate`.
        auto [code, out] = validate("host = \"no-such-host.invalid\"\nport = 9\n");
        EXPECT_EQ(code, 0) << out;
    }

    // 4. It runs: test source -> memory -> udp_datagram -> the socket bound here.
    UdpReceiver receiver;
    std::ostringstream cfg;
    cfg << "[observer]\nmetrics_listen = \"\"\n\n"
        << "[sources.feed]\nplugin = \"test_jsonl\"\npath = \"" << (dir / "in.jsonl").string()
        << "\"\nack_path = \"" << (dir / "acks.txt").string() << "\"\n\n"
        << "[transports.local]\nplugin = \"memory\"\n\n"
        << "[actions.udp]\nplugin = \"udp_datagram\"\nport = " << receiver.port()
        << "\nmax_datagram_bytes = 1024\n\n"
        << "[[pipelines]]\nname = \"p\"\nsource = \"feed\"\nactions = [\"udp\"]\n";
    write_file(dir / "cfg.toml", cfg.str());
    std::string lines;
    for (int i = 1; i <= 5; ++i) lines += event_line("e" + std::to_string(i));
    lines += event_line("big", std::string(2000, 'x')); // its body alone is over 1024 bytes
    write_file(dir / "in.jsonl", lines);
    ProcessOptions o;
    o.argv = {bin, "run", "-c", (dir / "cfg.toml").string(), "--plugin-dir", FOBS_TEST_EXTRA_PLUGIN_DIR};
    o.output = dir / "observer.log";
    Process p(o);

    receiver.receive(5, std::chrono::seconds(20));
    ASSERT_EQ(receiver.datagrams.size(), 5u) << p.output();
    // The oversize event is dead-lettered at once (FAILED), with the plugin's reason.
    auto dead_lettered = [&] {
        std::istringstream log(p.output());
        std::string line;
        while (std::getline(log, line))
            if (line.find("event big dead-lettered") != std::string::npos) return line;
        return std::string();
    };
    ASSERT_TRUE(eventually([&] { return !dead_lettered().empty(); }, std::chrono::seconds(20)))
        << p.output();
    EXPECT_NE(dead_lettered().find("after 1 deliveries"), std::string::npos) << dead_lettered();
    EXPECT_NE(dead_lettered().find("more than max_datagram_bytes (1024): not sent"), std::string::npos)
        << dead_lettered();
    receiver.receive(6, std::chrono::milliseconds(500)); // nothing more may arrive
    p.signal(SIGTERM);
    ASSERT_EQ(p.wait(std::chrono::seconds(20)).value_or(-1), 0) << p.output();

    // Each datagram is one whole canonical event body; each small event arrived once.
    std::multiset<std::string> ids;
    for (const auto &d : receiver.datagrams) {
        auto body = json::parse(d, nullptr, false);
        ASSERT_TRUE(body.is_object()) << d;
        EXPECT_EQ(body.value("entity_type", ""), "Order") << d;
        EXPECT_EQ(body.value("operation", ""), "INSERT") << d;
        ids.insert(body.value("id", ""));
    }
    EXPECT_EQ(ids, (std::multiset<std::string>{"e1", "e2", "e3", "e4", "e5"}));
}
