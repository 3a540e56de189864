// Regression guard for cleanup speed: compares the p50 reclaim latency of
// each scenario against a previous `reclaim bench --benchmark_out` file
// (Google Benchmark JSON). Pure functions over values.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace reclaim::bench {

// The counter each repetition of a scenario's benchmark reports, and the one
// the comparison reads: p50 of fault -> all reclaimed over the repetition's
// iterations, in ms.
inline constexpr std::string_view kP50Counter = "all_reclaimed_p50_ms";

// A baseline file that is not what `reclaim bench --benchmark_out` writes:
// a configuration error, reported before anything runs.
class BaselineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The scenario id behind a Google Benchmark run name: drops the suffix
// components the library appends ("/iterations:10", "/repeats:3",
// "/manual_time", "/real_time", "/min_time:…", "/threads:N") and an
// aggregate's "_mean"/"_median"/… ending. "fit/train_batch#1/sigkill/
// iterations:10/repeats:3/manual_time" -> "fit/train_batch#1/sigkill".
std::string scenario_of_run_name(std::string_view run_name);

// Per scenario, the p50 reclaim latency of a Google Benchmark JSON document:
// the median, over the scenario's repetitions, of kP50Counter. Repetition
// runs (run_type "iteration") are used when present; a file written with
// --benchmark_report_aggregates_only falls back to the "median" aggregate.
// Runs that ended in an error (a scenario that did not pass) are skipped.
// Throws BaselineError when `doc` has no "benchmarks" array.
std::map<std::string, double> p50_by_scenario(const nlohmann::json& doc);

// Reads and parses `path`, then p50_by_scenario. Throws BaselineError when the
// file cannot be read or is not Google Benchmark JSON.
std::map<std::string, double> load_baseline(const std::string& path);

// A scenario regressed when its p50 grew by more than `threshold` (a fraction:
// 0.2 = 20 %) of the baseline AND by more than `floor_ms`: the floor keeps
// scheduler noise on sub-millisecond latencies from failing CI.
struct RegressionPolicy {
  double threshold = 0.20;
  double floor_ms = 1.0;
};

struct Comparison {
  std::string scenario;
  double baseline_ms = 0;
  double current_ms = 0;
  bool regressed = false;
  double change() const { return baseline_ms > 0 ? current_ms / baseline_ms - 1 : 0; }  // +0.25 = 25 % slower
};

struct ComparisonReport {
  std::vector<Comparison> rows;                 // scenarios in both, by id
  std::vector<std::string> only_in_baseline;    // not run now (filtered out, or failed)
  std::vector<std::string> only_in_current;     // new scenarios: nothing to compare with
  bool any_regressed() const;
};

ComparisonReport compare(const std::map<std::string, double>& baseline, const std::map<std::string, double>& current,
                         const RegressionPolicy& policy);

// A table of the comparison, one line per scenario ("REGRESSED" marked), and
// a closing line with the verdict and the policy used.
std::string format_comparison(const ComparisonReport& report, const RegressionPolicy& policy);

}  // namespace reclaim::bench
