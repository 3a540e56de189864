// Reporters: what a run looks like from the outside. One interface, one file
// per format (console, JSON, JUnit XML), and a registry that picks a file
// format by name. The engine owns the reporters and calls them; reporters
// never call back into the engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.hpp"

namespace reclaim::report {

// The report format version written into every file report.
inline constexpr std::string_view kReportVersion = "0.1";

// What the engine knows before the first scenario starts.
struct RunInfo {
  std::string suite_path;
  std::uint64_t seed = 0;
  bool shuffled = false;
  int jobs = 1;
  std::size_t total = 0;  // scenarios planned (after filter and shard)
  std::string command;    // how reclaim was invoked, for the report header
};

// What the engine knows when the run is over (also after an interruption).
struct RunSummary {
  std::size_t total = 0, passed = 0, failed = 0;
  std::size_t not_run = 0;  // skipped because the run was interrupted
  std::map<Verdict, std::size_t> by_verdict;
  bool interrupted = false;
  double wall_ms = 0;
};

// Receives the events of one run, declared in the order they fire, with no-op
// defaults. The engine serialises all calls (one at a time, never
// concurrently), so implementations need no locking. A reporter is used for
// exactly one run. Methods never throw; I/O failures are reported once on
// stderr and do not stop the run.
//
// Destroying a reporter without run_finished means the harness is going down:
// file reporters then still publish what they have, marked interrupted.
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void run_started(const RunInfo&) {}
  virtual void scenario_started(const Scenario&) {}
  virtual void scenario_finished(const ScenarioResult&) {}
  virtual void run_finished(const RunSummary&) {}
};

struct ConsoleOptions {
  bool color = false;          // ANSI colours; without it no escape byte is written
  bool progress_line = false;  // terminal: one status line rewritten with '\r'
};

// Human output on `out` (not owned, not closed). Keeps only the verdict
// matrix (one worst verdict per entry/point × fault) and at most 50 failures.
std::unique_ptr<Reporter> make_console_reporter(std::FILE* out, ConsoleOptions options);

// JSON report at `path`, streamed into `path.partial` (flushed after every
// scenario) and renamed to `path` when the run finishes or the reporter is
// destroyed. Memory use does not grow with the number of scenarios.
// Throws std::runtime_error when `path.partial` cannot be created (an invalid
// report path is a configuration error, caught before any scenario runs).
std::unique_ptr<Reporter> make_json_reporter(const std::string& path);

// JUnit XML report at `path` (the dialect Jenkins and GitLab read). Testcases
// are kept in an anonymous scratch file next to `path` until the totals are
// known, then written to `path.tmp` and renamed to `path`.
// Throws std::runtime_error when the scratch file cannot be created.
std::unique_ptr<Reporter> make_junit_reporter(const std::string& path);

// The registry of file formats: "json", "junit". Returns nullptr for an
// unknown format; throws like the factories above for an unusable path.
std::unique_ptr<Reporter> make_reporter(std::string_view format, const std::string& path);
// The names make_reporter accepts, for --help and error messages.
std::vector<std::string_view> report_formats();

// Forwards every event to each added reporter, in the order they were added.
class MultiReporter : public Reporter {
 public:
  void add(std::unique_ptr<Reporter> reporter);
  std::size_t size() const { return reporters_.size(); }

  void run_started(const RunInfo& info) override;
  void scenario_started(const Scenario& scenario) override;
  void scenario_finished(const ScenarioResult& result) override;
  void run_finished(const RunSummary& summary) override;

 private:
  std::vector<std::unique_ptr<Reporter>> reporters_;
};

// One scenario in the JSON report schema:
//   id, repeat, entry, point (string|null), fault, world_size, rank, verdict,
//   leaks[] {kind, rank, what, <detail key>: string...}, violations[] {expected, actual},
//   hooks[], timeline_ns {started, fault_injected, on_exception, rank_exited,
//   last_process_gone, last_temp_file_gone, all_reclaimed, finished} (ns after
//   `started`, null when it did not happen), reclaim_latency_ms (number|null),
//   rank_exit, notes[], error (string|null), repro.
nlohmann::json to_json(const ScenarioResult& result);

// The summary object of the JSON report: total, passed, failed, not_run,
// by_verdict {pass, leak, contract, hang, error} (all five present),
// interrupted, wall_ms.
nlohmann::json to_json(const RunSummary& summary);

// Failed means any verdict but pass.
inline bool is_failure(Verdict v) { return v != Verdict::pass; }

}  // namespace reclaim::report
