// Small shared pieces of the end-to-end benchmark tool: argument parsing, clocks, the result
// line every sub-command prints, and /proc readers for CPU and peak RSS.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace fobs_bench {

/// `--key value` pairs after the sub-command; a key given twice keeps the last value.
class Args {
  public:
    Args(int argc, char **argv, int first);
    std::string str(const std::string &key, const std::string &fallback) const;
    std::string required(const std::string &key) const; // throws std::runtime_error
    int64_t num(const std::string &key, int64_t fallback) const;
    double real(const std::string &key, double fallback) const;
    bool has(const std::string &key) const { return values_.count(key) != 0; }

  private:
    std::map<std::string, std::string> values_;
};

/// Wall-clock microseconds since the epoch (the clock PostgreSQL's clock_timestamp() uses, so
/// a timestamp written in a row can be compared with an arrival time).
int64_t wall_us();
/// Monotonic microseconds.
int64_t mono_us();
/// Parses "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (UTC; also a space for the T and a "+HH[:MM]" offset,
/// PostgreSQL's timestamptz text) into epoch microseconds; -1 when malformed.
int64_t parse_iso8601_us(std::string_view s);

/// One row of the final table. Unknown figures stay negative and print as "-".
struct Result {
    std::string label;          // contender / stage
    std::string kind;           // "raw", "observer", "node"
    int64_t events = 0;         // events asked for
    double rate = -1;           // events/s
    double p50_ms = -1, p99_ms = -1, max_ms = -1;
    int64_t lost = -1, duplicates = -1;
    double cpu_s_per_100k = -1; // CPU seconds of the contender's own processes per 100k events
    double rss_mib = -1;        // peak RSS (VmHWM) of the contender's own processes
    double all_cpu_us_per_event = -1; // CPU of the whole machine per event
    double receiver_busy = -1;  // receiver CPU / elapsed (0..1)
    std::string note;
};

/// Serialises a result as one tab-separated line (the format `table` reads back).
std::string to_line(const Result &r);
Result from_line(const std::string &line);

/// Appends the line to `path` (when not empty) and prints it to stdout.
void emit_result(const Result &r, const std::string &path);

/// utime+stime of a process in seconds; -1 when it is gone.
double process_cpu_seconds(pid_t pid);
/// VmHWM of a process in KiB; -1 when it is gone.
int64_t process_peak_rss_kib(pid_t pid);
/// Busy CPU time of the whole machine (all cores) in seconds, from /proc/stat.
double machine_busy_seconds();
/// CPU seconds (utime+stime) of every process on the machine, summed by command name
/// ("postgres", "nats-server", ...). For PostgreSQL the reaped children's time (cutime+cstime)
/// is included too, so backends that exit during a measurement still count.
std::map<std::string, double> cpu_seconds_by_command();
/// Comma-separated PIDs.
std::vector<pid_t> parse_pids(const std::string &csv);

} // namespace fobs_bench
