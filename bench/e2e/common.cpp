#include "common.hpp"

#include <chrono>
#include <dirent.h>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace fobs_bench {

Args::Args(int argc, char **argv, int first) {
    for (int i = first; i < argc; ++i) {
        std::string key = argv[i];
        if (key.rfind("--", 0) != 0) throw std::runtime_error("unexpected argument: " + key);
        key = key.substr(2);
        if (i + 1 < argc && std::string_view(argv[i + 1]).rfind("--", 0) != 0) values_[key] = argv[++i];
        else values_[key] = "1";
    }
}

std::string Args::str(const std::string &key, const std::string &fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
}

std::string Args::required(const std::string &key) const {
    auto it = values_.find(key);
    if (it == values_.end()) throw std::runtime_error("missing --" + key);
    return it->second;
}

int64_t Args::num(const std::string &key, int64_t fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : std::stoll(it->second);
}

double Args::real(const std::string &key, double fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : std::stod(it->second);
}

int64_t wall_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int64_t mono_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int64_t parse_iso8601_us(std::string_view s) {
    // Fixed layout: 2026-11-27T04:23:51.123456Z (fraction optional, 1..9 digits; 'T' or ' ';
    // 'Z', nothing or a numeric offset at the end).
    if (s.size() < 20) return -1;
    auto digits = [&](size_t pos, size_t n, int &out) {
        out = 0;
        for (size_t i = pos; i < pos + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    std::tm tm{};
    int v = 0;
    if (!digits(0, 4, v)) return -1;
    tm.tm_year = v - 1900;
    if (!digits(5, 2, v)) return -1;
    tm.tm_mon = v - 1;
    if (!digits(8, 2, tm.tm_mday) || !digits(11, 2, tm.tm_hour) || !digits(14, 2, tm.tm_min) ||
        !digits(17, 2, tm.tm_sec))
        return -1;
    int64_t us = 0;
    size_t pos = 19;
    if (pos < s.size() && s[pos] == '.') {
        int64_t scale = 100000;
        for (++pos; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos) {
            us += (s[pos] - '0') * scale;
            scale /= 10;
        }
    }
    // A UTC offset ("+00", "-05:30": timestamptz text as PostgreSQL prints it) or "Z".
    int64_t offset_s = 0;
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int hh = 0, mm = 0;
        if (pos + 3 > s.size() || !digits(pos + 1, 2, hh)) return -1;
        if (pos + 6 <= s.size() && s[pos + 3] == ':' && !digits(pos + 4, 2, mm)) return -1;
        offset_s = (s[pos] == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
    }
    return (static_cast<int64_t>(timegm(&tm)) - offset_s) * 1000000 + us;
}

namespace {

std::string fmt(double v) {
    if (v < 0) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

double parse_num(const std::string &s) { return s == "-" || s.empty() ? -1 : std::stod(s); }

} // namespace

std::string to_line(const Result &r) {
    std::ostringstream out;
    out << r.label << '\t' << r.kind << '\t' << r.events << '\t' << fmt(r.rate) << '\t'
        << fmt(r.p50_ms) << '\t' << fmt(r.p99_ms) << '\t' << fmt(r.max_ms) << '\t'
        << (r.lost < 0 ? std::string("-") : std::to_string(r.lost)) << '\t'
        << (r.duplicates < 0 ? std::string("-") : std::to_string(r.duplicates)) << '\t'
        << fmt(r.cpu_s_per_100k) << '\t' << fmt(r.rss_mib) << '\t' << fmt(r.all_cpu_us_per_event)
        << '\t' << fmt(r.receiver_busy) << '\t' << r.note;
    return out.str();
}

Result from_line(const std::string &line) {
    std::vector<std::string> f;
    std::string cur;
    for (char c : line) {
        if (c == '\t') {
            f.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    f.push_back(cur);
    if (f.size() < 14) throw std::runtime_error("malformed result line: " + line);
    Result r;
    r.label = f[0];
    r.kind = f[1];
    r.events = std::stoll(f[2]);
    r.rate = parse_num(f[3]);
    r.p50_ms = parse_num(f[4]);
    r.p99_ms = parse_num(f[5]);
    r.max_ms = parse_num(f[6]);
    r.lost = static_cast<int64_t>(parse_num(f[7]));
    r.duplicates = static_cast<int64_t>(parse_num(f[8]));
    r.cpu_s_per_100k = parse_num(f[9]);
    r.rss_mib = parse_num(f[10]);
    r.all_cpu_us_per_event = parse_num(f[11]);
    r.receiver_busy = parse_num(f[12]);
    r.note = f[13];
    return r;
}

void emit_result(const Result &r, const std::string &path) {
    std::string line = to_line(r);
    std::cout << line << std::endl;
    if (!path.empty()) {
        std::ofstream out(path, std::ios::app);
        out << line << '\n';
    }
}

double process_cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the parenthesised command name (which may contain spaces).
    auto close = text.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int64_t process_peak_rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
    }
    return -1;
}

double machine_busy_seconds() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    unsigned long long v[10] = {};
    in >> cpu;
    for (auto &x : v) in >> x;
    // user nice system idle iowait irq softirq steal (guest is already in user)
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return static_cast<double>(busy) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::map<std::string, double> cpu_seconds_by_command() {
    std::map<std::string, double> out;
    const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
    DIR *dir = opendir("/proc");
    if (dir == nullptr) return out;
    while (dirent *d = readdir(dir)) {
        if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
        std::ifstream in(std::string("/proc/") + d->d_name + "/stat");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto open = text.find('('), close = text.rfind(')');
        if (open == std::string::npos || close == std::string::npos || close < open) continue;
        std::string comm = text.substr(open + 1, close - open - 1);
        std::istringstream rest(text.substr(close + 2));
        std::string field;
        unsigned long long t[4] = {};
        for (int i = 3; i <= 17 && rest >> field; ++i)
            if (i >= 14) t[i - 14] = std::stoull(field);
        unsigned long long ticks = t[0] + t[1];
        if (comm == "postgres") ticks += t[2] + t[3];
        if (comm.rfind("kworker", 0) == 0) comm = "kworkers"; // kworker/u8:1-ext4-rsv-conversion, ...
        out[comm] += static_cast<double>(ticks) / tck;
    }
    closedir(dir);
    return out;
}

std::vector<pid_t> parse_pids(const std::string &csv) {
    std::vector<pid_t> out;
    std::stringstream in(csv);
    std::string item;
    while (std::getline(in, item, ','))
        if (!item.empty()) out.push_back(static_cast<pid_t>(std::stol(item)));
    return out;
}

} // namespace fobs_bench
