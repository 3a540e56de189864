// `reclaim bench`: cleanup-latency benchmarking on Google Benchmark. One
// benchmark per scenario, registered at run time; each iteration runs one
// whole scenario through supervisor::run_scenario and reports its reclaim
// latency (fault -> all reclaimed) as manual time.
#pragma once

#include <string>
#include <vector>

#include "bench/baseline.hpp"
#include "model/model.hpp"
#include "supervisor/supervisor.hpp"

namespace reclaim::cli {

struct BenchOptions {
  std::vector<Scenario> scenarios;        // already filtered, in order
  supervisor::SupervisorConfig supervisor;  // shepherd, sandbox base, private_tmp, abort_fd: ready to use
  int iterations = 10;                    // scenario runs per repetition (fixed: never calibrated)
  int repetitions = 3;                    // repetitions per scenario, unless --benchmark_repetitions is given
  // Google Benchmark's own flags ("--benchmark_format=json", ...), passed to
  // benchmark::Initialize as they are.
  std::vector<std::string> benchmark_args;
  std::string baseline_path;  // --baseline: compare p50 all-reclaimed with this --benchmark_out file
  bench::RegressionPolicy policy;
  std::string plot_path;  // --plot: write latency distributions as SVG here
};

// Exit codes of `reclaim bench`.
inline constexpr int kBenchOk = 0;
inline constexpr int kBenchFailed = 1;  // a scenario did not pass (not timed), or a regression against the baseline
inline constexpr int kBenchUsage = 2;   // an unknown --benchmark_* flag, an unreadable baseline, a bad plot path

// Runs the benchmarks and prints Google Benchmark's report, then the latency
// summary table (and the baseline comparison) — on stdout when the display
// format is the console one, else on stderr so stdout stays parseable JSON/CSV.
// Interruption (supervisor.abort_fd readable) stops the current scenario,
// cleans it up and skips the remaining ones; the caller maps it to 128+signal.
// `argv0` is the program name handed to Google Benchmark.
int run_bench(const BenchOptions& options, const std::string& argv0);

}  // namespace reclaim::cli
