// Cleanup latency as numbers: the five intervals `reclaim bench` reports for
// each scenario, read off a scenario's Timeline, and nearest-rank percentiles
// over many runs. Pure functions over values; nothing here runs a process.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.hpp"

namespace reclaim::bench {

// The intervals measured, each from the fault to one timeline event.
enum class Metric {
  on_exception,         // fault -> the probe's own timestamp of entering on_exception
  rank_exit,            // fault -> the rank's pidfd became readable
  last_process_gone,    // fault -> no process of the scenario left
  last_temp_file_gone,  // fault -> sandbox (and private /dev/shm) empty
  all_reclaimed,        // fault -> all of the above: the reclaim latency
};
inline constexpr std::array<Metric, 5> kAllMetrics = {Metric::on_exception, Metric::rank_exit,
                                                      Metric::last_process_gone, Metric::last_temp_file_gone,
                                                      Metric::all_reclaimed};

// "on_exception", "rank_exit", "last_process_gone", "last_temp_file_gone",
// "all_reclaimed": used as counter-name stems and in the summary table.
std::string_view to_string(Metric m);

// The interval `m` of one scenario in ms, from the fault injection to the
// event. On the success path (no fault) the origin is the rank's exit, as for
// ScenarioResult::reclaim_latency_ms, so rank_exit is 0 and on_exception has
// no value. nullopt when the origin or the event did not happen (timestamp 0:
// e.g. on_exception after SIGKILL, or no temp file was ever created) or when
// the event precedes the origin (it cannot be a latency of this fault).
std::optional<double> latency_ms(const Timeline& t, Metric m);

// Nearest-rank percentile `p` (0 < p <= 100) of `samples`; 0 when empty.
double percentile(std::vector<double> samples, double p);

// Median of `values` (mean of the two middle ones for an even count); 0 when empty.
double median(std::vector<double> values);

struct Percentiles {
  std::size_t n = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};
// nullopt when `samples` is empty.
std::optional<Percentiles> percentiles(const std::vector<double>& samples);

// The samples of every metric over a number of runs of one scenario.
class LatencySamples {
 public:
  // Adds every metric of `t` that has a value.
  void add(const Timeline& t);
  // Appends all of `other`'s samples.
  void append(const LatencySamples& other);
  const std::vector<double>& of(Metric m) const { return samples_[static_cast<std::size_t>(m)]; }
  bool empty() const;

 private:
  std::array<std::vector<double>, kAllMetrics.size()> samples_;
};

// One row group of the summary table: a scenario's samples, or why it has none.
struct ScenarioLatencies {
  std::string scenario;  // id
  LatencySamples samples;
  std::string error;  // non-empty: the scenario did not pass (not timed)
};

// The summary table `reclaim bench` prints after Google Benchmark's output:
// per scenario one line per metric with n, p50, p90, p99 and max in ms
// ("-" where a metric has no sample), or one ERROR line.
std::string format_summary(const std::vector<ScenarioLatencies>& rows);

}  // namespace reclaim::bench
