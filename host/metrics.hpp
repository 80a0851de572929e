// Metrics registry and Prometheus text exposition. The host owns every family; plugins get
// series handles through the fobs_host metric functions. All names get the
// "fraiseql_observer_" prefix.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fraiseql_observer::host {

inline constexpr std::string_view metric_prefix = "fraiseql_observer_";

enum class MetricType { counter, gauge, histogram };

/// Default latency buckets, seconds: 0.5 ms ... 60 s.
const std::vector<double> &default_latency_buckets();

using LabelSet = std::vector<std::pair<std::string, std::string>>;

/// One series. Lock-free updates for counters and gauges; histograms use atomics per bucket.
class Series {
  public:
    Series(MetricType type, std::vector<double> buckets);
    void add(double v);
    void set(double v);
    void observe(double v);
    double value() const;            // counter/gauge value; histogram: count
    double sum() const;              // histogram sum
    uint64_t count() const;          // histogram count
    std::vector<uint64_t> bucket_counts() const; // cumulative, one per bucket (+Inf last)
    MetricType type() const { return type_; }

  private:
    MetricType type_;
    std::vector<double> buckets_;
    std::atomic<double> value_{0};
    std::unique_ptr<std::atomic<uint64_t>[]> counts_; // per bucket, non-cumulative, + overflow
    std::atomic<uint64_t> count_{0};
};

class MetricsRegistry {
  public:
    /// Returns the series for name+labels, creating family and series as needed. `name` may
    /// carry the prefix or not. Returns nullptr (and sets `error`) when the family exists with
    /// another type, other label names, or other buckets, or when a name is invalid.
    Series *series(MetricType type, std::string_view name, std::string_view help,
                   const LabelSet &labels, const std::vector<double> &buckets = {},
                   std::string *error = nullptr);
    /// Looks a series up without creating it (tests, status).
    const Series *find(std::string_view name, const LabelSet &labels) const;
    /// Prometheus text format 0.0.4.
    std::string exposition() const;

  private:
    struct Family {
        std::string name, help;
        MetricType type;
        std::vector<std::string> label_names;
        std::vector<double> buckets;
        std::map<std::vector<std::string>, std::unique_ptr<Series>> series; // by label values
    };
    mutable std::mutex mu_;
    std::map<std::string, Family> families_;
};

} // namespace fraiseql_observer::host
