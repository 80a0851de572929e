#include "top.hpp"

#include <httplib.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <set>
#include <thread>

namespace fraiseql_observer::host {

std::string MetricSample::label(std::string_view n) const {
    for (const auto &[k, v] : labels)
        if (k == n) return v;
    return {};
}

// ---- Parsing -----------------------------------------------------------------------------------

namespace {

bool name_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

std::optional<double> parse_value(std::string_view v) {
    if (v == "NaN") return std::nan("");
    if (v == "+Inf" || v == "Inf") return HUGE_VAL;
    if (v == "-Inf") return -HUGE_VAL;
    std::string s(v);
    char *end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) return std::nullopt;
    return d;
}

std::optional<MetricSample> parse_line(std::string_view line) {
    MetricSample m;
    size_t i = 0;
    while (i < line.size() && name_char(line[i], i == 0)) ++i;
    if (i == 0) return std::nullopt;
    m.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
        ++i;
        for (;;) {
            while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
            if (i < line.size() && line[i] == '}') {
                ++i;
                break;
            }
            size_t start = i;
            while (i < line.size() && name_char(line[i], i == start)) ++i;
            if (i == start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"')
                return std::nullopt;
            std::string key(line.substr(start, i - start));
            i += 2;
            std::string value;
            for (;; ++i) {
                if (i >= line.size()) return std::nullopt;
                char c = line[i];
                if (c == '"') break;
                if (c == '\\' && i + 1 < line.size()) {
                    char e = line[++i];
                    value += e == 'n' ? '\n' : e;
                } else {
                    value += c;
                }
            }
            ++i; // the closing quote
            m.labels.emplace_back(std::move(key), std::move(value));
        }
    }
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t end = line.find_first_of(" \t", i);
    auto v = parse_value(line.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
    if (!v) return std::nullopt;
    m.value = *v;
    return m;
}

} // namespace

std::vector<MetricSample> parse_metrics_text(std::string_view text) {
    std::vector<MetricSample> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        size_t first = line.find_first_not_of(" \t");
        if (first == std::string_view::npos || line[first] == '#') continue;
        if (auto m = parse_line(line.substr(first))) out.push_back(std::move(*m));
    }
    return out;
}

std::optional<double> bucket_quantile(double q, const std::vector<std::pair<double, double>> &b) {
    if (b.size() < 2 || !std::isinf(b.back().first) || !(b.back().second > 0)) return std::nullopt;
    q = std::clamp(q, 0.0, 1.0);
    double rank = q * b.back().second;
    size_t i = 0;
    while (i < b.size() && b[i].second < rank) ++i;
    if (i >= b.size() - 1) return b[b.size() - 2].first; // in +Inf: the highest finite bound
    double lower = i == 0 ? 0.0 : b[i - 1].first;
    double below = i == 0 ? 0.0 : b[i - 1].second;
    double upper = b[i].first;
    if (i == 0 && upper <= 0) return upper;
    double in_bucket = b[i].second - below;
    if (in_bucket <= 0) return upper;
    return lower + (upper - lower) * ((rank - below) / in_bucket);
}

// ---- Aggregation -------------------------------------------------------------------------------

MetricsSnapshot summarize_metrics(const std::vector<MetricSample> &samples) {
    constexpr std::string_view prefix = "fraiseql_observer_";
    MetricsSnapshot snap;
    std::map<std::string, std::set<std::string>> pipelines_of_source;
    auto add = [](std::optional<double> &slot, double v) { slot = slot.value_or(0) + v; };
    for (const auto &s : samples) {
        if (s.name.rfind(prefix, 0) != 0) continue;
        std::string_view n = std::string_view(s.name).substr(prefix.size());
        if (n == "ready") {
            snap.ready = s.value == 1;
            continue;
        }
        if (n == "dlq_depth") { // the transport's, not a pipeline's
            snap.dlq_depth[s.label("transport")] = s.value;
            continue;
        }
        std::string pipeline = s.label("pipeline");
        if (pipeline.empty()) continue;
        PipelineTotals &p = snap.pipelines[pipeline];
        if (n == "source_events_total") {
            p.has_source = true;
            p.source_events += s.value;
            pipelines_of_source[s.label("source")].insert(pipeline);
        } else if (n == "events_processed_total") {
            p.processed += s.value;
        } else if (n == "events_failed_total") {
            p.failed += s.value;
        } else if (n == "events_retried_total") {
            p.retried += s.value;
        } else if (n == "events_dead_lettered_total") {
            p.dead_lettered += s.value;
        } else if (n == "events_parked") {
            add(p.parked, s.value);
        } else if (n == "consumer_pending") {
            add(p.pending, s.value);
        } else if (n == "processing_duration_seconds_bucket") {
            if (auto le = parse_value(s.label("le"))) p.buckets[*le] += s.value;
        }
    }
    // Sources label their own series by source: shown on the pipelines that read them.
    for (const auto &s : samples) {
        std::string_view n = s.name;
        bool backlog = n == "fraiseql_observer_outbox_backlog";
        bool lag = n == "fraiseql_observer_cdc_slot_lag_bytes";
        if (!backlog && !lag) continue;
        auto it = pipelines_of_source.find(s.label("source"));
        if (it == pipelines_of_source.end()) continue;
        for (const auto &pipeline : it->second) add(backlog ? snap.pipelines[pipeline].backlog
                                                            : snap.pipelines[pipeline].slot_lag, s.value);
    }
    return snap;
}

std::vector<PipelineRow> pipeline_rows(const MetricsSnapshot *previous, const MetricsSnapshot &current,
                                       double seconds) {
    std::vector<PipelineRow> rows;
    for (const auto &[name, cur] : current.pipelines) {
        PipelineRow r;
        r.name = name;
        r.parked = cur.parked;
        r.pending = cur.pending;
        r.dead_lettered = cur.dead_lettered;
        r.backlog = cur.backlog;
        r.slot_lag = cur.slot_lag;
        const PipelineTotals *prev = nullptr;
        if (previous) {
            auto it = previous->pipelines.find(name);
            if (it != previous->pipelines.end()) prev = &it->second;
        }
        if (prev && seconds > 0) {
            // A counter below its previous value: the instance restarted, it counts from zero.
            auto delta = [](double now, double before) { return now >= before ? now - before : now; };
            if (cur.has_source) r.in_rate = delta(cur.source_events, prev->source_events) / seconds;
            r.out_rate = delta(cur.processed, prev->processed) / seconds;
            r.fail_rate = delta(cur.failed, prev->failed) / seconds;
            r.retry_rate = delta(cur.retried, prev->retried) / seconds;
            bool reset = false;
            for (const auto &[le, count] : cur.buckets) {
                auto p = prev->buckets.find(le);
                if (p != prev->buckets.end() && count < p->second) reset = true;
            }
            std::vector<std::pair<double, double>> interval;
            for (const auto &[le, count] : cur.buckets) {
                auto p = prev->buckets.find(le);
                interval.emplace_back(le, reset || p == prev->buckets.end() ? count : count - p->second);
            }
            r.p50 = bucket_quantile(0.5, interval);
            r.p99 = bucket_quantile(0.99, interval);
        }
        rows.push_back(std::move(r));
    }
    return rows;
}

// ---- Rendering ---------------------------------------------------------------------------------

namespace {

std::string fmt(const char *f, double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// At most 5 characters: 0.4 12 999 9.9k 120k 1.2M.
std::string rate_text(const std::optional<double> &v) {
    if (!v) return "-";
    double x = *v;
    if (x < 9.95) return fmt("%.1f", x);
    if (x < 999.5) return fmt("%.0f", x);
    if (x < 9950) return fmt("%.1fk", x / 1e3);
    if (x < 999500) return fmt("%.0fk", x / 1e3);
    return fmt("%.1fM", x / 1e6);
}

// At most 5 characters: 850us 9.8ms 120ms 1.50s 30s.
std::string duration_text(const std::optional<double> &v) {
    if (!v) return "-";
    double s = *v;
    if (s < 0.0009995) return fmt("%.0fus", s * 1e6);
    if (s < 0.00995) return fmt("%.1fms", s * 1e3);
    if (s < 0.9995) return fmt("%.0fms", s * 1e3);
    if (s < 9.995) return fmt("%.2fs", s);
    return fmt("%.0fs", s);
}

// At most 7 characters.
std::string count_text(const std::optional<double> &v) {
    if (!v) return "-";
    double x = *v;
    if (x < 9999999.5) return fmt("%.0f", x);
    if (x < 9.995e9) return fmt("%.1fM", x / 1e6);
    return fmt("%.1fG", x / 1e9);
}

std::string bytes_text(double b) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    return u == 0 ? fmt("%.0fB", b) : fmt(b < 99.95 ? "%.1f" : "%.0f", b) + units[u];
}

// Names come from a remote endpoint: only printable ASCII reaches the terminal.
std::string printable(std::string_view s) {
    std::string out;
    for (char c : s) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
}

std::string row_text(const std::string &name, const std::string &in, const std::string &out,
                     const std::string &p50, const std::string &p99, const std::string &fail,
                     const std::string &retry, const std::string &parked, const std::string &pending,
                     const std::string &dead, const std::string &backlog) {
    char buf[256];
    std::string n = name.size() > 11 ? name.substr(0, 10) + "~" : name;
    std::snprintf(buf, sizeof buf, "%-11s %5s %5s %5s %5s %6s %7s %6s %7s %5s %7s", n.c_str(),
                  in.c_str(), out.c_str(), p50.c_str(), p99.c_str(), fail.c_str(), retry.c_str(),
                  parked.c_str(), pending.c_str(), dead.c_str(), backlog.c_str());
    return buf;
}

} // namespace

std::vector<std::string> render_frame(const FrameInfo &info, const std::vector<PipelineRow> &rows,
                                      size_t width) {
    std::vector<std::string> lines;
    std::string head = "fraiseql-observer top  " + printable(info.url) + "  " +
                       (!info.ready ? "ready ?" : *info.ready ? "READY" : "NOT READY") + "  " +
                       info.clock;
    if (info.interactive) head += "  (q quits)";
    lines.push_back(head);
    lines.push_back(info.error.empty() ? "" : "scrape failed: " + printable(info.error) + " (retrying)");
    lines.push_back(row_text("PIPELINE", "IN/s", "OUT/s", "p50", "p99", "FAIL/s", "RETRY/s", "PARKED",
                             "PENDING", "DEAD", "BACKLOG"));
    for (const auto &r : rows) {
        std::string backlog = r.backlog ? count_text(r.backlog) : r.slot_lag ? bytes_text(*r.slot_lag) : "-";
        lines.push_back(row_text(printable(r.name), rate_text(r.in_rate), rate_text(r.out_rate),
                                 duration_text(r.p50), duration_text(r.p99), rate_text(r.fail_rate),
                                 rate_text(r.retry_rate), count_text(r.parked), count_text(r.pending),
                                 count_text(r.dead_lettered), backlog));
    }
    if (rows.empty()) lines.push_back("(no pipeline reports metrics yet)");
    if (!info.dlq_depth.empty()) {
        std::string dlq = "DLQ now:";
        for (const auto &[transport, depth] : info.dlq_depth)
            dlq += "  " + printable(transport.empty() ? "?" : transport) + " " + count_text(depth);
        lines.push_back(dlq);
    }
    lines.push_back("");
    lines.push_back("IN source records, OUT successful action runs; p50/p99 action time over the");
    lines.push_back("last interval; DEAD dead-lettered since start; BACKLOG outbox rows or slot lag;");
    lines.push_back("DLQ now: entries waiting in each transport's dead-letter queue.");
    for (auto &l : lines)
        if (l.size() > width) l.resize(width);
    return lines;
}

// ---- The terminal loop -------------------------------------------------------------------------

namespace {

std::atomic<int> g_stop_signal{0};
std::atomic<bool> g_resized{false};

extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }
extern "C" void on_winch(int) { g_resized = true; }

struct Endpoint {
    std::string scheme_host_port;
    std::string path;
};

std::optional<Endpoint> parse_url(std::string url, std::string &why) {
    if (url.find("://") == std::string::npos) url = "http://" + url;
    if (url.rfind("http://", 0) != 0) {
        why = "only http:// URLs are supported (got " + url + ")";
        return std::nullopt;
    }
    size_t slash = url.find('/', 7);
    Endpoint e{url.substr(0, slash), slash == std::string::npos ? "/metrics" : url.substr(slash)};
    if (e.path == "/") e.path = "/metrics";
    if (e.scheme_host_port.size() <= 7) {
        why = "no host in " + url;
        return std::nullopt;
    }
    return e;
}

// Puts the terminal in cbreak mode (keys arrive one by one, unechoed; Ctrl-C still signals)
// and, when stdout is a terminal, on the alternate screen without a cursor. The destructor
// restores both, and the signal handlers only set a flag, so every way out passes here.
class TerminalSession {
  public:
    TerminalSession(bool keys, bool screen) : screen_(screen) {
        if (keys && tcgetattr(STDIN_FILENO, &saved_) == 0) {
            termios raw = saved_;
            raw.c_lflag &= ~(ICANON | ECHO);
            raw.c_cc[VMIN] = 0;
            raw.c_cc[VTIME] = 0;
            keys_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
        }
        if (screen_) write_all("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");
    }
    ~TerminalSession() {
        if (screen_) write_all("\x1b[?25h\x1b[?1049l");
        if (keys_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    }
    TerminalSession(const TerminalSession &) = delete;
    TerminalSession &operator=(const TerminalSession &) = delete;
    bool keys() const { return keys_; }

    static bool write_all(std::string_view s) {
        while (!s.empty()) {
            ssize_t n = ::write(STDOUT_FILENO, s.data(), s.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            s.remove_prefix(size_t(n));
        }
        return true;
    }

  private:
    termios saved_{};
    bool keys_ = false;
    bool screen_;
};

std::pair<size_t, size_t> terminal_size() {
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0)
        return {ws.ws_col, ws.ws_row};
    return {80, 24};
}

std::string clock_text() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

struct Scraper {
    explicit Scraper(const Endpoint &e) : endpoint(e), client(e.scheme_host_port) {
        client.set_connection_timeout(1, 0);
        client.set_read_timeout(2, 0);
        client.set_keep_alive(false);
    }
    std::optional<MetricsSnapshot> scrape(std::string &why) {
        auto res = client.Get(endpoint.path);
        if (!res) {
            why = "GET " + endpoint.scheme_host_port + endpoint.path + ": " + httplib::to_string(res.error());
            return std::nullopt;
        }
        if (res->status != 200) {
            why = "GET " + endpoint.scheme_host_port + endpoint.path + ": HTTP " + std::to_string(res->status);
            return std::nullopt;
        }
        return summarize_metrics(parse_metrics_text(res->body));
    }
    Endpoint endpoint;
    httplib::Client client;
};

void install_handlers() {
    struct sigaction sa{};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: poll() returns EINTR and the loop sees the flag
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    struct sigaction wa{};
    wa.sa_handler = on_winch;
    sigemptyset(&wa.sa_mask);
    sigaction(SIGWINCH, &wa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

// Waits until `deadline` for a key; true when `q` was pressed or a stop signal arrived.
bool wait_for_quit(bool keys, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        if (g_stop_signal) return true;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || g_resized) return false;
        pollfd pfd{STDIN_FILENO, POLLIN, 0};
        int n = poll(&pfd, keys ? 1 : 0, int(left.count()));
        if (n > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))) return true; // the terminal is gone
        if (n > 0 && (pfd.revents & POLLIN)) {
            char buf[64];
            ssize_t got = ::read(STDIN_FILENO, buf, sizeof buf);
            for (ssize_t i = 0; i < got; ++i)
                if (buf[i] == 'q' || buf[i] == 'Q') return true;
        }
    }
}

} // namespace

int run_top(const TopOptions &options) {
    std::string why;
    auto endpoint = parse_url(options.url, why);
    if (!endpoint) {
        std::cerr << "fraiseql-observer: top: " << why << "\n";
        return 2;
    }
    Scraper scraper(*endpoint);
    const std::string shown_url =
        endpoint->scheme_host_port + (endpoint->path == "/metrics" ? "" : endpoint->path);

    if (options.once) {
        auto first = scraper.scrape(why);
        auto t0 = std::chrono::steady_clock::now();
        if (first) std::this_thread::sleep_for(std::chrono::seconds(1));
        auto second = first ? scraper.scrape(why) : std::nullopt;
        if (!second) {
            std::cerr << "fraiseql-observer: top: " << why << "\n";
            return 1;
        }
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        FrameInfo info{shown_url, clock_text(), second->ready, "", false, second->dlq_depth};
        for (const auto &l : render_frame(info, pipeline_rows(&*first, *second, secs), 1000))
            std::cout << l << "\n";
        return 0;
    }

    g_stop_signal = 0;
    install_handlers();
    const bool screen = isatty(STDOUT_FILENO);
    TerminalSession term(isatty(STDIN_FILENO), screen);
    std::optional<MetricsSnapshot> previous;
    auto previous_at = std::chrono::steady_clock::now();
    std::vector<PipelineRow> rows;
    std::optional<bool> ready;
    std::string error; // the last scrape's failure
    auto next = std::chrono::steady_clock::now();
    for (;;) {
        auto now = std::chrono::steady_clock::now();
        if (now >= next) { // a resize redraws without scraping
            next = now + std::chrono::seconds(1);
            error.clear();
            if (auto snap = scraper.scrape(error)) {
                double secs = std::chrono::duration<double>(now - previous_at).count();
                rows = pipeline_rows(previous ? &*previous : nullptr, *snap, secs);
                ready = snap->ready;
                previous = std::move(snap);
                previous_at = now;
            }
        }
        g_resized = false;
        FrameInfo info{shown_url, clock_text(), ready, error, term.keys(),
                       previous ? previous->dlq_depth : std::map<std::string, double>{}};
        std::string frame;
        if (screen) {
            auto [cols, lines_max] = terminal_size();
            auto lines = render_frame(info, rows, cols);
            if (lines.size() > lines_max) lines.resize(lines_max);
            frame = "\x1b[H";
            for (const auto &l : lines) frame += l + "\x1b[K\r\n";
            frame += "\x1b[J";
        } else {
            for (const auto &l : render_frame(info, rows, 1000)) frame += l + "\n";
            frame += "\n";
        }
        if (!TerminalSession::write_all(frame)) return 0; // the reader went away (a closed pipe)
        if (wait_for_quit(term.keys(), next)) return 0;
    }
}

} // namespace fraiseql_observer::host
