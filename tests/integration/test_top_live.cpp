// `fraiseql-observer top` against a real running observer with traffic (test_jsonl source,
// memory transport, log action): on a terminal (tmux, 80x24) the pane shows the pipeline with a
// non-zero events/s and `q` exits 0 with the terminal restored; without a terminal `--once`
// prints one plain frame; an unreachable endpoint is exit 1.
#include "observer.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace fobs_test;
using json = nlohmann::json;

namespace {

const char *k_config = "[observer]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\nshutdown_timeout_secs = 10\n"
                       "log_level = \"warn\"\n\n"
                       "[sources.feed]\nplugin = \"test_jsonl\"\npath = \"{dir}/in.jsonl\"\n"
                       "ack_path = \"{dir}/acks.txt\"\n\n"
                       "[transports.local]\nplugin = \"memory\"\n\n"
                       "[actions.sink]\nplugin = \"log\"\n\n"
                       "[[pipelines]]\nname = \"orders\"\nsource = \"feed\"\nactions = [\"sink\"]\n";

// Appends events to the source's file, 20 every 50 ms, until destroyed.
class Traffic {
  public:
    explicit Traffic(std::filesystem::path file)
        : thread_([this, file] {
              int n = 0;
              while (!stop_) {
                  {
                      std::ofstream out(file, std::ios::app);
                      for (int i = 0; i < 20; ++i, ++n)
                          out << json{{"id", "o-" + std::to_string(n)}, {"entity_type", "Order"},
                                      {"operation", "INSERT"}, {"entity_id", std::to_string(n)}}
                                     .dump()
                              << '\n';
                  }
                  std::this_thread::sleep_for(std::chrono::milliseconds(50));
              }
          }) {}
    ~Traffic() {
        stop_ = true;
        thread_.join();
    }

  private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// The row of `pipeline` in a frame: its whitespace-separated fields.
std::vector<std::string> row_of(const std::string &frame, const std::string &pipeline) {
    std::istringstream in(frame);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::vector<std::string> fields;
        std::string w;
        while (f >> w) fields.push_back(w);
        if (!fields.empty() && fields[0] == pipeline) return fields;
    }
    return {};
}

bool moving(const std::vector<std::string> &row) {
    // PIPELINE IN/s OUT/s …: events/s in and out both non-zero.
    auto nonzero = [](const std::string &v) { return v != "-" && v != "0.0" && v != "0"; };
    return row.size() >= 3 && nonzero(row[1]) && nonzero(row[2]);
}

class Tmux {
  public:
    Tmux() : socket_("fobs-top-" + std::to_string(getpid())) {}
    ~Tmux() { run({"kill-server"}); }
    std::pair<int, std::string> run(std::vector<std::string> args) {
        args.insert(args.begin(), {"tmux", "-L", socket_, "-f", "/dev/null"});
        return run_command(args, {{"TERM", "xterm"}}, std::chrono::seconds(10));
    }
    std::string capture() { return run({"capture-pane", "-p", "-t", "top"}).second; }

  private:
    std::string socket_;
};

} // namespace

TEST(TopLive, on_a_terminal_shows_the_pipeline_moving_and_q_exits_0) {
    if (run_command({"sh", "-c", "command -v tmux"}).first != 0) GTEST_SKIP() << "tmux not installed";
    ObserverProcess obs(k_config);
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    Traffic traffic(obs.dir() / "in.jsonl");

    Tmux tmux;
    std::string url = "http://127.0.0.1:" + std::to_string(obs.metrics_port());
    // The shell reports top's exit code on the normal screen once top has left its own, and
    // stays for the capture (the server is killed at the end).
    std::string command = "'" + observer_binary() + "' top --url " + url + "; echo \"top exited $?\"; sleep 60";
    auto [rc, out] = tmux.run({"new-session", "-d", "-s", "top", "-x", "80", "-y", "24", "sh", "-c", command});
    ASSERT_EQ(rc, 0) << out;

    std::string pane;
    ASSERT_TRUE(eventually(
        [&] {
            pane = tmux.capture();
            return moving(row_of(pane, "orders"));
        },
        std::chrono::seconds(20)))
        << pane;
    EXPECT_NE(pane.find("PIPELINE"), std::string::npos) << pane;
    EXPECT_NE(pane.find("READY"), std::string::npos) << pane;
    std::istringstream lines(pane);
    for (std::string l; std::getline(lines, l);) EXPECT_LE(l.size(), 80u) << l;

    tmux.run({"send-keys", "-t", "top", "q"});
    ASSERT_TRUE(eventually(
        [&] {
            pane = tmux.capture();
            return pane.find("top exited") != std::string::npos;
        },
        std::chrono::seconds(10)))
        << pane;
    EXPECT_NE(pane.find("top exited 0"), std::string::npos) << pane;
    // The alternate screen is gone: the frame is no longer on the pane.
    EXPECT_EQ(pane.find("PIPELINE"), std::string::npos) << pane;
    EXPECT_EQ(obs.stop(), 0) << obs.log();
}

TEST(TopLive, sigterm_restores_the_terminal_and_exits_0) {
    if (run_command({"sh", "-c", "command -v tmux"}).first != 0) GTEST_SKIP() << "tmux not installed";
    ObserverProcess obs(k_config);
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    Tmux tmux;
    TempDir dir;
    std::string url = "http://127.0.0.1:" + std::to_string(obs.metrics_port());
    std::string command = "'" + observer_binary() + "' top --url " + url + " </dev/tty & echo $! > '" +
                          (dir / "pid").string() + "'; wait $!; echo \"top exited $?\"; stty -a | tr ' ' '\\n' | grep -x icanon; echo checked; sleep 60";
    // In the background (so the shell learns its pid) but reading the terminal: `sh` would
    // give a background job /dev/null as stdin.
    ASSERT_EQ(tmux.run({"new-session", "-d", "-s", "top", "-x", "80", "-y", "24", "sh", "-c", command}).first, 0);
    std::string pane;
    ASSERT_TRUE(eventually([&] { return tmux.capture().find("PIPELINE") != std::string::npos; },
                           std::chrono::seconds(20)))
        << tmux.capture();
    pid_t pid = std::stoi(read_file(dir / "pid"));
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    ASSERT_TRUE(eventually(
        [&] {
            pane = tmux.capture();
            return pane.find("\nchecked") != std::string::npos;
        },
        std::chrono::seconds(10)))
        << pane;
    EXPECT_NE(pane.find("top exited 0"), std::string::npos) << pane;
    // Canonical mode is back (stty prints "icanon", not "-icanon").
    EXPECT_NE(pane.find("\nicanon"), std::string::npos) << pane;
}

TEST(TopLive, without_a_terminal_once_prints_one_plain_frame) {
    ObserverProcess obs(k_config);
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    Traffic traffic(obs.dir() / "in.jsonl");
    std::string url = "127.0.0.1:" + std::to_string(obs.metrics_port()); // no scheme: http
    std::pair<int, std::string> res;
    ASSERT_TRUE(eventually(
        [&] {
            res = run_command({observer_binary(), "top", "--once", "--url", url});
            return res.first == 0 && moving(row_of(res.second, "orders"));
        },
        std::chrono::seconds(20)))
        << res.first << "\n" << res.second;
    EXPECT_EQ(res.second.find('\x1b'), std::string::npos) << "ANSI escapes in plain output";
    EXPECT_EQ(res.second.find("(q quits)"), std::string::npos);
}

TEST(TopLive, an_unreachable_endpoint_is_exit_1_and_a_bad_url_exit_2) {
    int port = free_port();
    auto [rc, out] = run_command({observer_binary(), "top", "--once", "--url", "http://127.0.0.1:" + std::to_string(port)});
    EXPECT_EQ(rc, 1) << out;
    EXPECT_NE(out.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << out;
    auto [rc2, out2] = run_command({observer_binary(), "top", "--once", "--url", "https://example.invalid"});
    EXPECT_EQ(rc2, 2) << out2;
}
