// The JSON report, streamed. Each finished scenario is appended to
// PATH.partial and flushed at once, so when the harness is killed outright the
// partial file still holds every scenario that finished (one per line, easy to
// salvage). The closing part — the summary — is only known at the end; it is
// written then, and the file is renamed to PATH in one step.
#include <fmt/format.h>

#include <chrono>
#include <stdexcept>

#include "reports/atomic_file.hpp"
#include "reports/reporter.hpp"

namespace reclaim::report {

namespace {

// Invalid UTF-8 (a leaked process's cmdline is arbitrary bytes) must not make
// dump() throw half-way through a report: it is replaced instead.
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class JsonReporter final : public Reporter {
 public:
  explicit JsonReporter(const std::string& path) : file_(path, ".partial") {
    if (!file_.is_open())
      throw std::runtime_error(fmt::format("cannot create JSON report {}: {}", file_.side_path(),
                                           file_.error().message()));
  }

  ~JsonReporter() override {
    if (finished_) return;
    // The harness is going down without a summary: publish what finished,
    // counted here, and say the run was interrupted.
    try {
      RunSummary summary;
      summary.total = info_.total > finished_count_ ? info_.total : finished_count_;
      summary.passed = passed_;
      summary.failed = finished_count_ - passed_;
      summary.not_run = summary.total - finished_count_;
      summary.by_verdict = by_verdict_;
      summary.interrupted = true;
      if (run_started_)
        summary.wall_ms = std::chrono::duration<double, std::milli>(
                              std::chrono::steady_clock::now() - started_at_)
                              .count();
      finish(summary);
    } catch (...) {
      // Destructors never throw; the .partial file is then what remains.
    }
  }

  void run_started(const RunInfo& info) override {
    info_ = info;
    run_started_ = true;
    started_at_ = std::chrono::steady_clock::now();
    write_header();
  }

  void scenario_finished(const ScenarioResult& result) override {
    if (finished_) return;
    write_header();
    file_.write(finished_count_ == 0 ? "\n    " : ",\n    ");
    file_.write(dump(to_json(result)));
    file_.flush();
    ++finished_count_;
    if (result.verdict == Verdict::pass) ++passed_;
    ++by_verdict_[result.verdict];
  }

  void run_finished(const RunSummary& summary) override {
    if (!finished_) finish(summary);
  }

 private:
  void write_header() {
    if (header_written_) return;
    header_written_ = true;
    file_.write(fmt::format(
        "{{\n  \"reclaim\": {},\n  \"suite\": {},\n  \"seed\": {},\n  \"shuffled\": {},\n"
        "  \"jobs\": {},\n  \"command\": {},\n  \"scenarios\": [",
        dump(std::string(kReportVersion)), dump(info_.suite_path), info_.seed, info_.shuffled,
        info_.jobs, dump(info_.command)));
    file_.flush();
  }

  void finish(const RunSummary& summary) {
    finished_ = true;
    write_header();
    file_.write(fmt::format("{}],\n  \"summary\": {}\n}}\n", finished_count_ ? "\n  " : "",
                            dump(to_json(summary))));
    if (std::error_code ec = file_.commit())
      fmt::print(stderr, "reclaim: cannot write JSON report {}: {}\n", file_.final_path(),
                 ec.message());
  }

  AtomicFile file_;
  RunInfo info_;
  bool run_started_ = false;
  bool header_written_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point started_at_;
  // Counts only: a 10,000-scenario run must not hold 10,000 results.
  std::size_t finished_count_ = 0;
  std::size_t passed_ = 0;
  std::map<Verdict, std::size_t> by_verdict_;
};

}  // namespace

std::unique_ptr<Reporter> make_json_reporter(const std::string& path) {
  return std::make_unique<JsonReporter>(path);
}

}  // namespace reclaim::report
