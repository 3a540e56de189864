#include "bench/baseline.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "bench/latency.hpp"

namespace reclaim::bench {

namespace {

bool is_library_suffix(std::string_view part) {
  // The components Google Benchmark appends to a registered name, in
  // whatever order it chooses; a scenario id never has one of these shapes.
  for (std::string_view key : {"iterations:", "repeats:", "min_time:", "min_warmup_time:", "threads:"})
    if (part.rfind(key, 0) == 0) return true;
  return part == "manual_time" || part == "real_time" || part == "process_time";
}

}  // namespace

std::string scenario_of_run_name(std::string_view run_name) {
  std::string_view s = run_name;
  for (;;) {
    auto slash = s.rfind('/');
    if (slash == std::string_view::npos || !is_library_suffix(s.substr(slash + 1))) break;
    s = s.substr(0, slash);
  }
  return std::string(s);
}

std::map<std::string, double> p50_by_scenario(const nlohmann::json& doc) {
  if (!doc.is_object() || !doc.contains("benchmarks") || !doc["benchmarks"].is_array())
    throw BaselineError("not Google Benchmark JSON: no \"benchmarks\" array");
  std::map<std::string, std::vector<double>> repetitions, medians;
  for (const auto& run : doc["benchmarks"]) {
    if (!run.is_object()) continue;
    if (run.value("error_occurred", false)) continue;
    auto counter = run.find(std::string(kP50Counter));
    if (counter == run.end() || !counter->is_number()) continue;
    const std::string name = run.value("run_name", run.value("name", std::string()));
    if (name.empty()) continue;
    const std::string scenario = scenario_of_run_name(name);
    const std::string type = run.value("run_type", std::string("iteration"));
    if (type == "iteration") repetitions[scenario].push_back(counter->get<double>());
    else if (type == "aggregate" && run.value("aggregate_name", std::string()) == "median")
      medians[scenario].push_back(counter->get<double>());
  }
  std::map<std::string, double> out;
  for (const auto& [scenario, values] : medians) out[scenario] = median(values);
  // Repetitions win over a median aggregate: the same definition as for the
  // current run (median over repetitions), computed from the raw values.
  for (const auto& [scenario, values] : repetitions) out[scenario] = median(values);
  return out;
}

std::map<std::string, double> load_baseline(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw BaselineError(fmt::format("cannot read baseline {}", path));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) throw BaselineError(fmt::format("baseline {} is not JSON", path));
  try {
    return p50_by_scenario(doc);
  } catch (const BaselineError& e) {
    throw BaselineError(fmt::format("baseline {}: {}", path, e.what()));
  }
}

bool ComparisonReport::any_regressed() const {
  for (const auto& r : rows)
    if (r.regressed) return true;
  return false;
}

ComparisonReport compare(const std::map<std::string, double>& baseline, const std::map<std::string, double>& current,
                         const RegressionPolicy& policy) {
  ComparisonReport report;
  for (const auto& [scenario, now] : current) {
    auto it = baseline.find(scenario);
    if (it == baseline.end()) {
      report.only_in_current.push_back(scenario);
      continue;
    }
    Comparison c{scenario, it->second, now, false};
    const double growth = now - it->second;
    c.regressed = growth > policy.threshold * it->second && growth > policy.floor_ms;
    report.rows.push_back(c);
  }
  for (const auto& [scenario, before] : baseline)
    if (!current.count(scenario)) report.only_in_baseline.push_back(scenario);
  return report;
}

std::string format_comparison(const ComparisonReport& report, const RegressionPolicy& policy) {
  std::size_t width = 8;
  for (const auto& r : report.rows) width = std::max(width, r.scenario.size());
  for (const auto& s : report.only_in_current) width = std::max(width, s.size());
  std::string out = fmt::format("{:<{}}  {:>12} {:>12} {:>9}\n", "scenario", width, "baseline p50", "current p50",
                                "change");
  std::size_t regressed = 0;
  for (const auto& r : report.rows) {
    regressed += r.regressed ? 1 : 0;
    out += fmt::format("{:<{}}  {:>9.3f} ms {:>9.3f} ms {:>+8.1f}%{}\n", r.scenario, width, r.baseline_ms,
                       r.current_ms, 100 * r.change(), r.regressed ? "  REGRESSED" : "");
  }
  for (const auto& s : report.only_in_current) out += fmt::format("{:<{}}  not in the baseline\n", s, width);
  if (!report.only_in_baseline.empty())
    out += fmt::format("{} scenario(s) of the baseline were not measured in this run\n",
                       report.only_in_baseline.size());
  out += fmt::format("{} of {} scenario(s) regressed (p50 fault -> all reclaimed up by more than {:.0f}% and {:.3g} ms)\n",
                     regressed, report.rows.size(), 100 * policy.threshold, policy.floor_ms);
  return out;
}

}  // namespace reclaim::bench
