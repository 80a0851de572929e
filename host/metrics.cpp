#include "metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace fraiseql_observer::host {

const std::vector<double> &default_latency_buckets() {
    static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10,
                                          30,     60};
    return b;
}

Series::Series(MetricType type, std::vector<double> buckets)
    : type_(type), buckets_(std::move(buckets)) {
    if (type_ == MetricType::histogram) {
        counts_ = std::make_unique<std::atomic<uint64_t>[]>(buckets_.size() + 1);
        for (size_t i = 0; i <= buckets_.size(); ++i) counts_[i] = 0;
    }
}

static void atomic_add(std::atomic<double> &a, double v) {
    double cur = a.load(std::memory_order_relaxed);
    while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
}

void Series::add(double v) {
    if (type_ == MetricType::counter && !(v >= 0)) return; // counters never go down
    if (type_ == MetricType::histogram) return;
    atomic_add(value_, v);
}

void Series::set(double v) {
    if (type_ == MetricType::gauge) value_.store(v, std::memory_order_relaxed);
}

void Series::observe(double v) {
    if (type_ != MetricType::histogram || std::isnan(v)) return;
    size_t i = std::lower_bound(buckets_.begin(), buckets_.end(), v) - buckets_.begin();
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    atomic_add(value_, v);
    count_.fetch_add(1, std::memory_order_relaxed);
}

double Series::value() const {
    return type_ == MetricType::histogram ? static_cast<double>(count()) : value_.load();
}
double Series::sum() const { return value_.load(); }
uint64_t Series::count() const { return count_.load(); }

std::vector<uint64_t> Series::bucket_counts() const {
    std::vector<uint64_t> out;
    uint64_t acc = 0;
    for (size_t i = 0; i <= buckets_.size(); ++i) {
        acc += counts_[i].load(std::memory_order_relaxed);
        out.push_back(acc);
    }
    return out;
}

static bool valid_name(std::string_view n) {
    if (n.empty()) return false;
    for (size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static std::string full_name(std::string_view name) {
    if (name.substr(0, metric_prefix.size()) == metric_prefix) return std::string(name);
    return std::string(metric_prefix) + std::string(name);
}

Series *MetricsRegistry::series(MetricType type, std::string_view name, std::string_view help,
                                const LabelSet &labels, const std::vector<double> &buckets_in,
                                std::string *error) {
    auto fail = [&](const std::string &msg) -> Series * {
        if (error) *error = msg;
        return nullptr;
    };
    std::string fname = full_name(name);
    if (!valid_name(fname)) return fail("invalid metric name '" + fname + "'");
    std::vector<std::string> names, values;
    for (const auto &[k, v] : labels) {
        if (!valid_name(k) || k.substr(0, 2) == "__" || k == "le")
            return fail("invalid label name '" + k + "' for metric " + fname);
        names.push_back(k);
        values.push_back(v);
    }
    std::vector<double> buckets = buckets_in;
    if (type == MetricType::histogram) {
        if (buckets.empty()) buckets = default_latency_buckets();
        if (!std::is_sorted(buckets.begin(), buckets.end()) ||
            std::adjacent_find(buckets.begin(), buckets.end()) != buckets.end())
            return fail("histogram buckets of " + fname + " must be strictly ascending");
    } else {
        buckets.clear();
    }
    std::lock_guard lock(mu_);
    auto it = families_.find(fname);
    if (it == families_.end()) {
        Family f{fname, std::string(help), type, names, buckets, {}};
        it = families_.emplace(fname, std::move(f)).first;
    } else {
        Family &f = it->second;
        if (f.type != type) return fail("metric " + fname + " already registered with another type");
        if (f.label_names != names)
            return fail("metric " + fname + " already registered with other label names");
        if (type == MetricType::histogram && f.buckets != buckets)
            return fail("metric " + fname + " already registered with other buckets");
    }
    auto &slot = it->second.series[values];
    if (!slot) slot = std::make_unique<Series>(type, buckets);
    return slot.get();
}

const Series *MetricsRegistry::find(std::string_view name, const LabelSet &labels) const {
    std::string fname = full_name(name);
    std::lock_guard lock(mu_);
    auto it = families_.find(fname);
    if (it == families_.end()) return nullptr;
    const Family &f = it->second;
    std::vector<std::string> values;
    for (const auto &ln : f.label_names) {
        auto l = std::find_if(labels.begin(), labels.end(),
                              [&](const auto &kv) { return kv.first == ln; });
        if (l == labels.end()) return nullptr;
        values.push_back(l->second);
    }
    if (values.size() != labels.size()) return nullptr;
    auto s = f.series.find(values);
    return s == f.series.end() ? nullptr : s->second.get();
}

static std::string escape_label(const std::string &v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

static std::string escape_help(const std::string &v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

static std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
    else std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

static std::string label_block(const std::vector<std::string> &names,
                               const std::vector<std::string> &values,
                               const std::string &extra = {}) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) {
        if (!out.empty()) out += ',';
        out += names[i] + "=\"" + escape_label(values[i]) + "\"";
    }
    if (!extra.empty()) {
        if (!out.empty()) out += ',';
        out += extra;
    }
    return out.empty() ? out : "{" + out + "}";
}

std::string MetricsRegistry::exposition() const {
    std::ostringstream out;
    std::lock_guard lock(mu_);
    for (const auto &[name, f] : families_) {
        const char *type = f.type == MetricType::counter ? "counter"
                           : f.type == MetricType::gauge ? "gauge"
                                                         : "histogram";
        out << "# HELP " << name << ' ' << escape_help(f.help.empty() ? name : f.help) << '\n';
        out << "# TYPE " << name << ' ' << type << '\n';
        for (const auto &[values, s] : f.series) {
            if (f.type != MetricType::histogram) {
                out << name << label_block(f.label_names, values) << ' ' << format_value(s->value())
                    << '\n';
                continue;
            }
            auto counts = s->bucket_counts();
            for (size_t i = 0; i < counts.size(); ++i) {
                std::string le = i < f.buckets.size() ? format_value(f.buckets[i]) : "+Inf";
                if (i < f.buckets.size()) {
                    char buf[64];
                    std::snprintf(buf, sizeof buf, "%g", f.buckets[i]);
                    le = buf;
                }
                out << name << "_bucket" << label_block(f.label_names, values, "le=\"" + le + "\"")
                    << ' ' << counts[i] << '\n';
            }
            out << name << "_sum" << label_block(f.label_names, values) << ' '
                << format_value(s->sum()) << '\n';
            out << name << "_count" << label_block(f.label_names, values) << ' ' << counts.back()
                << '\n';
        }
    }
    return out.str();
}

} // namespace fraiseql_observer::host
