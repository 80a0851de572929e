#include "observer.hpp"

#include <httplib.h>

#include <csignal>
#include <sstream>

namespace fobs_test {

static void replace_all(std::string &s, const std::string &from, const std::string &to) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
        s.replace(p, from.size(), to);
}

ObserverProcess::ObserverProcess(std::string config, std::vector<std::string> extra_args,
                                 std::map<std::string, std::string> env)
    : metrics_port_(free_port()) {
    replace_all(config, "{metrics_port}", std::to_string(metrics_port_));
    replace_all(config, "{dir}", dir_.path().string());
    write_file(dir_ / "observer.toml", config);
    ProcessOptions o;
    o.argv = {observer_binary(), "run", "-c", (dir_ / "observer.toml").string(), "--plugin-dir",
              FOBS_TEST_EXTRA_PLUGIN_DIR};
    o.argv.insert(o.argv.end(), extra_args.begin(), extra_args.end());
    o.env = std::move(env);
    o.env.emplace("FRAISEQL_OBSERVER_PLUGIN_PATH", "");
    o.output = dir_ / "observer.log";
    proc_ = std::make_unique<Process>(o);
}

ObserverProcess::~ObserverProcess() {
    if (proc_) proc_->stop(std::chrono::seconds(30));
}

bool ObserverProcess::wait_started(std::string &why, std::chrono::seconds timeout) {
    bool up = eventually([&] { return !proc_->running() || wait_for_port(metrics_port_, std::chrono::milliseconds(50)); },
                         timeout);
    if (up && proc_->running()) return true;
    why = "observer did not start:\n" + log();
    return false;
}

std::pair<int, std::string> ObserverProcess::get(const std::string &path) const {
    httplib::Client c("127.0.0.1", metrics_port_);
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(5, 0);
    auto r = c.Get(path.c_str());
    if (!r) return {0, {}};
    return {r->status, r->body};
}

double ObserverProcess::metric(const std::string &series) const {
    return scrape_value(get("/metrics").second, series);
}

int ObserverProcess::stop(std::chrono::seconds timeout) {
    proc_->signal(SIGTERM);
    return proc_->wait(timeout).value_or(-1);
}

double scrape_value(const std::string &text, const std::string &series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
}

} // namespace fobs_test
