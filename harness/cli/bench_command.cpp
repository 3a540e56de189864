#include "cli/bench_command.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <poll.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include "bench/latency.hpp"
#include "reports/atomic_file.hpp"
#include "reports/svg_plot.hpp"

namespace reclaim::cli {

namespace {

using bench::Metric;

// Everything one scenario's benchmark accumulates over its repetitions. The
// benchmark function is called once per repetition (iterations are fixed, so
// Google Benchmark never calls it again to calibrate).
struct ScenarioBench {
  Scenario scenario;
  bench::LatencySamples samples;      // every iteration of every repetition
  std::vector<double> repetition_p50;  // kP50Counter of each repetition, as reported
  std::string error;                   // first failure: the scenario is reported, not timed
};

struct BenchRun {
  const BenchOptions* options = nullptr;
  std::uint64_t seq = 0;  // unique sandbox names within the run
  bool warmed_up = false;
  bool interrupted = false;
};

bool abort_requested(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

std::string describe_failure(const ScenarioResult& r) {
  std::string why = fmt::format("verdict {}", to_string(r.verdict));
  if (!r.error.empty()) why += ": " + r.error;
  else if (!r.leaks.empty()) why += fmt::format(": {} leak(s), first: {}", r.leaks.size(), r.leaks.front().what);
  else if (!r.violations.empty())
    why += fmt::format(": expected {}, got {}", r.violations.front().expected, r.violations.front().actual);
  return why;
}

void skip(benchmark::State& state, ScenarioBench& b, std::string why) {
  if (b.error.empty()) b.error = why;
  state.SkipWithError(why.c_str());
}

void bench_scenario(benchmark::State& state, ScenarioBench& b, BenchRun& run) {
  const auto& config = run.options->supervisor;
  if (run.interrupted || abort_requested(config.abort_fd)) {
    run.interrupted = true;
    skip(state, b, "interrupted");
    return;
  }
  if (!b.error.empty()) {  // an earlier repetition failed: do not run it again
    state.SkipWithError(b.error.c_str());
    return;
  }
  // One untimed run per bench, before the first timed one: the first spawn of
  // the target pays for the page cache and the dynamic loader.
  if (!run.warmed_up) {
    run.warmed_up = true;
    (void)supervisor::run_scenario(b.scenario, run.seq++, config);
  }

  bench::LatencySamples repetition;
  for (auto _ : state) {
    auto outcome = supervisor::run_scenario(b.scenario, run.seq++, config);
    if (outcome.interrupted) {
      run.interrupted = true;
      skip(state, b, "interrupted");
      break;
    }
    const ScenarioResult& r = outcome.result;
    if (r.verdict != Verdict::pass) {
      skip(state, b, describe_failure(r));
      break;
    }
    auto latency = bench::latency_ms(r.timeline, Metric::all_reclaimed);
    if (!latency) {
      skip(state, b, "passed, but the timeline has no fault -> all reclaimed interval");
      break;
    }
    // The reclaim latency, not the scenario's wall time, is what is timed.
    state.SetIterationTime(*latency / 1e3);
    repetition.add(r.timeline);
  }
  if (!b.error.empty()) return;

  for (Metric m : bench::kAllMetrics) {
    auto p = bench::percentiles(repetition.of(m));
    if (!p) continue;
    const std::string stem(to_string(m));
    state.counters[stem + "_p50_ms"] = p->p50;
    state.counters[stem + "_p90_ms"] = p->p90;
    state.counters[stem + "_p99_ms"] = p->p99;
    state.counters[stem + "_max_ms"] = p->max;
    if (m == Metric::all_reclaimed) b.repetition_p50.push_back(p->p50);
  }
  b.samples.append(repetition);
}

// The value of the last "--benchmark_NAME=VALUE" among `args`, else the
// environment variable Google Benchmark also reads (BENCHMARK_NAME).
std::optional<std::string> benchmark_flag(const std::vector<std::string>& args, const std::string& name) {
  std::optional<std::string> value;
  const std::string prefix = "--benchmark_" + name + "=";
  for (const auto& a : args)
    if (a.rfind(prefix, 0) == 0) value = a.substr(prefix.size());
  if (!value) {
    std::string env = "BENCHMARK_" + name;
    for (auto& c : env) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (const char* v = std::getenv(env.c_str()); v && *v) value = v;
  }
  return value;
}

}  // namespace

int run_bench(const BenchOptions& options, const std::string& argv0) {
  // Google Benchmark parses its own flags out of an argv it may rewrite.
  std::vector<std::string> storage{argv0};
  storage.insert(storage.end(), options.benchmark_args.begin(), options.benchmark_args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(storage.size());
  benchmark::Initialize(&argc, argv.data());
  if (benchmark::ReportUnrecognizedArguments(argc, argv.data())) return kBenchUsage;

  // Inputs and outputs are checked before anything runs.
  std::map<std::string, double> baseline;
  if (!options.baseline_path.empty()) {
    try {
      baseline = bench::load_baseline(options.baseline_path);
    } catch (const bench::BaselineError& e) {
      std::fprintf(stderr, "reclaim: %s\n", e.what());
      return kBenchUsage;
    }
  }
  if (!options.plot_path.empty()) {
    report::AtomicFile probe(options.plot_path, ".tmp");  // removed again when it goes out of scope
    if (!probe.is_open()) {
      std::fprintf(stderr, "reclaim: cannot write the plot %s: %s\n", options.plot_path.c_str(),
                   probe.error().message().c_str());
      return kBenchUsage;
    }
  }

  const auto format = benchmark_flag(options.benchmark_args, "format");
  std::FILE* text_out = !format || *format == "console" ? stdout : stderr;
  // --benchmark_repetitions must win over our default, but a benchmark's own
  // Repetitions() overrides the flag: set ours only when the flag is absent.
  const bool repetitions_from_flag = benchmark_flag(options.benchmark_args, "repetitions").has_value();

  BenchRun run;
  run.options = &options;
  std::vector<std::unique_ptr<ScenarioBench>> benches;
  for (const auto& sc : options.scenarios) {
    benches.push_back(std::make_unique<ScenarioBench>(ScenarioBench{sc, {}, {}, {}}));
    ScenarioBench* b = benches.back().get();
    auto* registered = benchmark::RegisterBenchmark(sc.id().c_str(), [b, &run](benchmark::State& state) {
      bench_scenario(state, *b, run);
    });
    // Fixed counts: calibrating on manual time would run thousands of
    // process-spawning iterations for a 1 ms latency.
    registered->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(options.iterations);
    if (!repetitions_from_flag) registered->Repetitions(options.repetitions);
  }

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fflush(stdout);

  // The summary covers the benchmarks that ran (--benchmark_filter may have
  // left some out: they have neither samples nor an error).
  std::vector<bench::ScenarioLatencies> rows;
  std::vector<report::LatencySeries> series;
  std::map<std::string, double> current;
  bool failed = false;
  std::size_t not_run = 0;
  for (const auto& b : benches) {
    if (b->samples.empty() && b->error.empty()) continue;
    if (b->samples.empty() && run.interrupted && b->error == "interrupted") {
      ++not_run;  // one line for all of them below, not one row each
      continue;
    }
    const std::string id = b->scenario.id();
    rows.push_back({id, b->samples, b->error});
    series.push_back({id, b->samples.of(Metric::all_reclaimed)});
    if (!b->error.empty()) failed = true;
    else if (!b->repetition_p50.empty()) current[id] = bench::median(b->repetition_p50);
  }
  std::fprintf(text_out, "\nReclaim latency over every iteration of every repetition (nearest-rank percentiles):\n%s",
               bench::format_summary(rows).c_str());
  if (not_run > 0) std::fprintf(text_out, "%zu scenario(s) not run: interrupted\n", not_run);

  if (!options.plot_path.empty()) {
    if (auto ec = report::write_latency_svg_file(options.plot_path, series)) {
      std::fprintf(stderr, "reclaim: cannot write the plot %s: %s\n", options.plot_path.c_str(),
                   ec.message().c_str());
      failed = true;
    } else {
      std::fprintf(text_out, "plot: %s\n", options.plot_path.c_str());
    }
  }

  bool regressed = false;
  if (!options.baseline_path.empty()) {
    auto comparison = bench::compare(baseline, current, options.policy);
    std::fprintf(text_out, "\nAgainst the baseline %s:\n%s", options.baseline_path.c_str(),
                 bench::format_comparison(comparison, options.policy).c_str());
    regressed = comparison.any_regressed();
  }
  std::fflush(text_out);
  return failed || regressed ? kBenchFailed : kBenchOk;
}

}  // namespace reclaim::cli
