#include "supervisor/verdict.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace reclaim::supervisor {

namespace {

long count_from(const std::vector<std::string>& hooks, std::size_t from, std::string_view name) {
  from = std::min(from, hooks.size());
  return std::count(hooks.begin() + static_cast<long>(from), hooks.end(), name);
}

bool has_detail(const Leak& l, std::string_view key, std::string_view value) {
  return std::any_of(l.details.begin(), l.details.end(),
                     [&](auto& kv) { return kv.first == key && kv.second == value; });
}

}  // namespace

std::vector<Violation> check_contract(const Scenario& sc, const Evidence& ev) {
  std::vector<Violation> out;
  if (sc.expect.contract != Contract::lightning) return out;
  if (!ev.probe_connected) {
    out.push_back({"the rank reports its lifecycle through a probe (HELLO)", "no probe connected"});
    return out;
  }
  if (sc.fault.is_failure()) {
    if (!ev.fault_delivered || !sc.fault.rank_can_react()) return out;
    auto oe = count_from(ev.hooks, ev.hooks_at_fault, "on_exception");
    auto td = count_from(ev.hooks, ev.hooks_at_fault, "teardown");
    if (oe != 1)
      out.push_back({"on_exception called once after the fault", fmt::format("on_exception called {} times", oe)});
    if (td != 0) out.push_back({"teardown not called after the fault", fmt::format("teardown called {} times", td)});
    return out;
  }
  auto oe = count_from(ev.hooks, 0, "on_exception");
  auto td = count_from(ev.hooks, 0, "teardown");
  if (td != 1) out.push_back({"teardown called once on success", fmt::format("teardown called {} times", td)});
  if (oe != 0) out.push_back({"no on_exception on success", fmt::format("on_exception called {} times", oe)});
  if (ev.rank_exit.exited && (ev.rank_exit.signal != 0 || ev.rank_exit.code != 0))
    out.push_back({"the rank exits 0 on success", ev.rank_exit.describe()});
  return out;
}

Verdict decide_verdict(bool harness_error, bool hang, const std::vector<Violation>& violations,
                       const std::vector<Leak>& leaks) {
  if (harness_error) return Verdict::error;
  if (hang) return Verdict::hang;
  if (!violations.empty()) return Verdict::contract;
  if (!leaks.empty()) return Verdict::leak;
  return Verdict::pass;
}

std::vector<Leak> collect_leaks(const std::vector<audit::Auditor*>& auditors, const audit::AuditScope& scope) {
  std::vector<Leak> out;
  const std::string shepherd = std::to_string(scope.shepherd_pid);
  for (auto* a : auditors) {
    for (auto& l : a->audit(scope)) {
      if (l.kind == LeakKind::zombie && has_detail(l, "ppid", shepherd)) continue;
      out.push_back(std::move(l));
    }
  }
  return out;
}

}  // namespace reclaim::supervisor
