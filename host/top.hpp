// `fraiseql-observer top`: a live terminal view of a running instance, built from its
// Prometheus /metrics text only (so it works against any instance it can reach, local or
// remote, of any role). The pure parts — parsing, per-pipeline aggregation, rates and
// quantiles between two scrapes, rendering — are separate from the terminal loop so the tests
// can drive them with literal text.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fraiseql_observer::host {

/// One sample line of a Prometheus text exposition.
struct MetricSample {
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
    /// The label's value, "" when absent.
    std::string label(std::string_view name) const;
};

/// Parses the Prometheus text format 0.0.4: comments and blank lines are skipped, label values
/// are unescaped, values may be NaN / +Inf / -Inf, a trailing timestamp is ignored. A malformed
/// line is skipped (one bad line from a plugin must not blank the whole view).
std::vector<MetricSample> parse_metrics_text(std::string_view text);

/// The q-quantile (0..1) of a histogram given as cumulative (upper bound, count) pairs sorted
/// by bound, the last one +Inf — computed as Prometheus' histogram_quantile() does: linear
/// interpolation inside the bucket holding the rank; the highest finite bound when the rank
/// falls in +Inf. nullopt when there are no observations or no +Inf bucket.
std::optional<double> bucket_quantile(double q, const std::vector<std::pair<double, double>> &cumulative);

/// What one scrape says about one pipeline. Counters are totals since the instance started;
/// gauges are nullopt when the instance exports no such series for the pipeline.
struct PipelineTotals {
    bool has_source = false;
    double source_events = 0;  // source_events_total
    double processed = 0;      // events_processed_total, all actions
    double failed = 0;         // events_failed_total
    double retried = 0;        // events_retried_total
    double dead_lettered = 0;  // events_dead_lettered_total
    std::optional<double> parked;    // events_parked
    std::optional<double> pending;   // consumer_pending
    std::optional<double> backlog;   // outbox_backlog of the pipeline's source (rows)
    std::optional<double> slot_lag;  // cdc_slot_lag_bytes of the pipeline's source
    std::map<double, double> buckets; // processing_duration_seconds, le -> cumulative count
};

struct MetricsSnapshot {
    std::map<std::string, PipelineTotals> pipelines; // by pipeline name
    std::optional<bool> ready;                       // fraiseql_observer_ready
    std::map<std::string, double> dlq_depth;         // dlq_depth, by transport
};

MetricsSnapshot summarize_metrics(const std::vector<MetricSample> &samples);

/// One row of the view: rates over the interval between two scrapes, gauges as scraped.
struct PipelineRow {
    std::string name;
    std::optional<double> in_rate, out_rate, fail_rate, retry_rate; // per second
    std::optional<double> p50, p99;                                 // seconds, this interval
    std::optional<double> parked, pending, dead_lettered;
    std::optional<double> backlog;   // rows
    std::optional<double> slot_lag;  // bytes
};

/// Rows for every pipeline in `current`. Without `previous` (the first scrape) or for a
/// pipeline it lacks, the rates and quantiles are nullopt. A counter that went down (the
/// instance restarted) counts from zero.
std::vector<PipelineRow> pipeline_rows(const MetricsSnapshot *previous, const MetricsSnapshot &current,
                                       double seconds);

struct FrameInfo {
    std::string url;
    std::string clock;                 // "HH:MM:SS"
    std::optional<bool> ready;
    std::string error;                 // last scrape's failure, "" when it worked
    bool interactive = false;          // adds the "q quits" hint
    std::map<std::string, double> dlq_depth; // entries in each transport's DLQ now (a line when any)
};

/// The view as lines of printable ASCII, none longer than `width` (at least 79 columns are
/// used when the terminal is that wide; narrower terminals get truncated lines).
std::vector<std::string> render_frame(const FrameInfo &info, const std::vector<PipelineRow> &rows,
                                      size_t width = 80);

struct TopOptions {
    std::string url = "http://127.0.0.1:9464";
    bool once = false; // one frame (two scrapes a second apart), then exit
};

/// Runs the view until `q`, SIGINT or SIGTERM (exit 0). On a terminal: full-screen, redrawn
/// every second, the terminal restored on exit. Otherwise (or with `once`): a plain frame per
/// second. Returns 1 when `once` cannot scrape, 2 for a URL it cannot use.
int run_top(const TopOptions &options);

} // namespace fraiseql_observer::host
