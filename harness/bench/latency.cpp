#include "bench/latency.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace reclaim::bench {

std::string_view to_string(Metric m) {
  switch (m) {
    case Metric::on_exception: return "on_exception";
    case Metric::rank_exit: return "rank_exit";
    case Metric::last_process_gone: return "last_process_gone";
    case Metric::last_temp_file_gone: return "last_temp_file_gone";
    case Metric::all_reclaimed: return "all_reclaimed";
  }
  return "?";
}

namespace {

std::int64_t event_ns(const Timeline& t, Metric m) {
  switch (m) {
    case Metric::on_exception: return t.on_exception_ns;
    case Metric::rank_exit: return t.rank_exited_ns;
    case Metric::last_process_gone: return t.last_process_gone_ns;
    case Metric::last_temp_file_gone: return t.last_temp_file_gone_ns;
    case Metric::all_reclaimed: return t.all_reclaimed_ns;
  }
  return 0;
}

}  // namespace

std::optional<double> latency_ms(const Timeline& t, Metric m) {
  // Every timestamp is CLOCK_MONOTONIC of this machine (the probe's
  // on_exception stamp included), so differences are meaningful as they are.
  const std::int64_t origin = t.fault_injected_ns != 0 ? t.fault_injected_ns : t.rank_exited_ns;
  const std::int64_t at = event_ns(t, m);
  if (origin == 0 || at == 0 || at < origin) return std::nullopt;
  if (t.fault_injected_ns == 0 && m == Metric::on_exception) return std::nullopt;
  return static_cast<double>(at - origin) / 1e6;
}

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  // Nearest rank: the smallest sample with at least p % of the samples at or
  // below it. No interpolation: every reported value was actually observed.
  const double rank = std::ceil(p / 100.0 * static_cast<double>(samples.size()));
  const auto index = static_cast<std::size_t>(std::max(1.0, rank));
  return samples[std::min(index, samples.size()) - 1];
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::optional<Percentiles> percentiles(const std::vector<double>& samples) {
  if (samples.empty()) return std::nullopt;
  Percentiles p;
  p.n = samples.size();
  p.p50 = percentile(samples, 50);
  p.p90 = percentile(samples, 90);
  p.p99 = percentile(samples, 99);
  p.max = *std::max_element(samples.begin(), samples.end());
  return p;
}

void LatencySamples::add(const Timeline& t) {
  for (Metric m : kAllMetrics)
    if (auto ms = latency_ms(t, m)) samples_[static_cast<std::size_t>(m)].push_back(*ms);
}

void LatencySamples::append(const LatencySamples& other) {
  for (std::size_t i = 0; i < samples_.size(); ++i)
    samples_[i].insert(samples_[i].end(), other.samples_[i].begin(), other.samples_[i].end());
}

bool LatencySamples::empty() const {
  return std::all_of(samples_.begin(), samples_.end(), [](const auto& v) { return v.empty(); });
}

std::string format_summary(const std::vector<ScenarioLatencies>& rows) {
  std::size_t width = 8;
  for (const auto& r : rows) width = std::max(width, r.scenario.size());
  std::string out = fmt::format("{:<{}}  {:<19} {:>5} {:>9} {:>9} {:>9} {:>9}\n", "scenario", width,
                                "fault -> (ms)", "n", "p50", "p90", "p99", "max");
  for (const auto& r : rows) {
    if (!r.error.empty()) {
      out += fmt::format("{:<{}}  ERROR: {}\n", r.scenario, width, r.error);
      continue;
    }
    bool first = true;
    for (Metric m : kAllMetrics) {
      const std::string name = first ? r.scenario : std::string();
      first = false;
      if (auto p = percentiles(r.samples.of(m)))
        out += fmt::format("{:<{}}  {:<19} {:>5} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f}\n", name, width, to_string(m),
                           p->n, p->p50, p->p90, p->p99, p->max);
      else
        out += fmt::format("{:<{}}  {:<19} {:>5} {:>9} {:>9} {:>9} {:>9}\n", name, width, to_string(m), 0, "-", "-",
                           "-", "-");
    }
  }
  return out;
}

}  // namespace reclaim::bench
