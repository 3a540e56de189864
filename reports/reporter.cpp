#include "reports/reporter.hpp"

namespace reclaim::report {

namespace {

constexpr Verdict kAllVerdicts[] = {Verdict::pass, Verdict::leak, Verdict::contract, Verdict::hang,
                                    Verdict::error};

// A timestamp of the model (absolute CLOCK_MONOTONIC ns, 0 = did not happen)
// as the report shows it: relative to the first rank's spawn, so two reports
// can be compared without knowing when the machine booted.
nlohmann::json relative(std::int64_t t, std::int64_t started) {
  if (t == 0) return nullptr;
  return t - started;
}

}  // namespace

std::unique_ptr<Reporter> make_reporter(std::string_view format, const std::string& path) {
  if (format == "json") return make_json_reporter(path);
  if (format == "junit") return make_junit_reporter(path);
  return nullptr;
}

std::vector<std::string_view> report_formats() { return {"json", "junit"}; }

void MultiReporter::add(std::unique_ptr<Reporter> reporter) {
  if (reporter) reporters_.push_back(std::move(reporter));
}

void MultiReporter::run_started(const RunInfo& info) {
  for (auto& r : reporters_) r->run_started(info);
}

void MultiReporter::scenario_started(const Scenario& scenario) {
  for (auto& r : reporters_) r->scenario_started(scenario);
}

void MultiReporter::scenario_finished(const ScenarioResult& result) {
  for (auto& r : reporters_) r->scenario_finished(result);
}

void MultiReporter::run_finished(const RunSummary& summary) {
  for (auto& r : reporters_) r->run_finished(summary);
}

nlohmann::json to_json(const ScenarioResult& result) {
  const Scenario& s = result.scenario;
  nlohmann::json j = nlohmann::json::object();
  j["id"] = s.id();
  j["repeat"] = s.repeat_index;
  j["entry"] = std::string(to_string(s.entry));
  j["point"] = s.point ? nlohmann::json(to_string(*s.point)) : nlohmann::json(nullptr);
  j["fault"] = to_string(s.fault);
  j["world_size"] = s.world_size;
  j["rank"] = s.rank;
  j["verdict"] = std::string(to_string(result.verdict));

  auto leaks = nlohmann::json::array();
  for (const Leak& leak : result.leaks) {
    nlohmann::json l = {
        {"kind", std::string(to_string(leak.kind))}, {"rank", leak.rank}, {"what", leak.what}};
    // Details are flattened into the leak so a jq filter reads `.pid`, not
    // `.details.pid`; a detail that would shadow a fixed field keeps its
    // value under a prefixed name instead.
    for (const auto& [key, value] : leak.details) {
      std::string name = l.contains(key) ? "detail_" + key : key;
      l[name] = value;
    }
    leaks.push_back(std::move(l));
  }
  j["leaks"] = std::move(leaks);

  auto violations = nlohmann::json::array();
  for (const Violation& v : result.violations)
    violations.push_back({{"expected", v.expected}, {"actual", v.actual}});
  j["violations"] = std::move(violations);
  j["hooks"] = result.hooks;

  const Timeline& t = result.timeline;
  j["timeline_ns"] = {
      {"started", relative(t.started_ns, t.started_ns)},
      {"fault_injected", relative(t.fault_injected_ns, t.started_ns)},
      {"on_exception", relative(t.on_exception_ns, t.started_ns)},
      {"rank_exited", relative(t.rank_exited_ns, t.started_ns)},
      {"last_process_gone", relative(t.last_process_gone_ns, t.started_ns)},
      {"last_temp_file_gone", relative(t.last_temp_file_gone_ns, t.started_ns)},
      {"all_reclaimed", relative(t.all_reclaimed_ns, t.started_ns)},
      {"finished", relative(t.finished_ns, t.started_ns)},
  };
  double latency = result.reclaim_latency_ms();
  j["reclaim_latency_ms"] = latency < 0 ? nlohmann::json(nullptr) : nlohmann::json(latency);
  j["rank_exit"] = result.rank_exit.describe();
  // Per rank (one entry for single-rank scenarios too): how it ended, its
  // hooks and its own timeline, relative to the scenario's start.
  auto ranks = nlohmann::json::array();
  for (const RankResult& r : result.ranks) {
    ranks.push_back({{"rank", r.rank},
                     {"pid", r.pid},
                     {"exit", r.exit.describe()},
                     {"failed", r.failed},
                     {"failure", r.failure.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.failure)},
                     {"hooks", r.hooks},
                     {"timeline_ns",
                      {{"on_exception", relative(r.on_exception_ns, t.started_ns)},
                       {"exited", relative(r.exited_ns, t.started_ns)}}}});
  }
  j["ranks"] = std::move(ranks);
  j["world_failed_ns"] = relative(result.world_failed_ns, t.started_ns);
  j["notes"] = result.notes;
  j["error"] = result.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(result.error);
  j["repro"] = result.repro;
  return j;
}

nlohmann::json to_json(const RunSummary& summary) {
  nlohmann::json by_verdict = nlohmann::json::object();
  for (Verdict v : kAllVerdicts) {
    auto it = summary.by_verdict.find(v);
    by_verdict[std::string(to_string(v))] = it == summary.by_verdict.end() ? 0 : it->second;
  }
  return {{"total", summary.total},
          {"passed", summary.passed},
          {"failed", summary.failed},
          {"not_run", summary.not_run},
          {"by_verdict", std::move(by_verdict)},
          {"interrupted", summary.interrupted},
          {"wall_ms", summary.wall_ms}};
}

}  // namespace reclaim::report
