#include "supervisor/verdict.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>

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

// The success path: teardown once, no on_exception, exit 0.
std::vector<Violation> success_contract(const std::vector<std::string>& hooks, const ExitStatus& exit) {
  std::vector<Violation> out;
  auto oe = count_from(hooks, 0, "on_exception");
  auto td = count_from(hooks, 0, "teardown");
  if (td != 1) out.push_back({"teardown called once on success", fmt::format("teardown called {} times", td)});
  if (oe != 0) out.push_back({"no on_exception on success", fmt::format("on_exception called {} times", oe)});
  if (exit.exited && (exit.signal != 0 || exit.code != 0))
    out.push_back({"the rank exits 0 on success", exit.describe()});
  return out;
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
  return success_contract(ev.hooks, ev.rank_exit);
}

std::vector<Violation> check_survivor(const Scenario& sc, const SurvivorEvidence& ev) {
  std::vector<Violation> out;
  if (sc.expect.contract != Contract::lightning) return out;
  // Stopped before its first hook (still starting when the launcher acted):
  // it held nothing of the datamodule's, so there was nothing to clean up.
  if (ev.world_failed && ev.hooks.empty()) return out;
  if (!ev.probe_connected) {
    out.push_back({"the rank reports its lifecycle through a probe (HELLO)", "no probe connected"});
    return out;
  }
  auto oe = count_from(ev.hooks, 0, "on_exception");
  if (!ev.world_failed || (oe == 0 && ev.exit.exited && ev.exit.signal == 0 && ev.exit.code == 0)) {
    // Nothing failed, or it finished before it could know: the success path.
    return success_contract(ev.hooks, ev.exit);
  }
  if (ev.exit.signal == SIGKILL) return out;  // it could not react
  if (oe != 1)
    out.push_back({"on_exception called once after another rank failed", fmt::format("on_exception called {} times", oe)});
  auto first_oe = std::find(ev.hooks.begin(), ev.hooks.end(), "on_exception");
  if (first_oe != ev.hooks.end()) {
    auto td = std::count(first_oe, ev.hooks.end(), "teardown");
    if (td != 0) out.push_back({"teardown not called after on_exception", fmt::format("teardown called {} times after it", td)});
  }
  return out;
}

namespace {

std::string detail_of(const Leak& l, std::string_view key) {
  for (auto& [k, v] : l.details)
    if (k == key) return v;
  return {};
}

int to_pid(const std::string& s) {
  if (s.empty()) return 0;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  return (end && *end == 0 && v > 0 && v < (1 << 30)) ? static_cast<int>(v) : 0;
}

}  // namespace

int attribute_leak(const Leak& leak, int world_size, const std::function<int(int)>& rank_of_pid) {
  if (world_size <= 1) return 0;
  switch (leak.kind) {
    case LeakKind::process:
    case LeakKind::zombie:
    case LeakKind::fd:
    case LeakKind::lock: {
      int pid = to_pid(detail_of(leak, "pid"));
      return pid ? rank_of_pid(pid) : -1;
    }
    case LeakKind::sysv_ipc: {
      int pid = to_pid(detail_of(leak, "cpid"));
      return pid ? rank_of_pid(pid) : -1;
    }
    case LeakKind::temp_file: {
      std::string path = detail_of(leak, "path");
      if (path.rfind("rank-", 0) != 0) return -1;
      std::size_t end = path.find('/', 5);
      std::string digits = path.substr(5, end == std::string::npos ? std::string::npos : end - 5);
      if (digits.empty() || digits.size() > 6 ||
          !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }))
        return -1;
      int r = std::atoi(digits.c_str());
      return r < world_size ? r : -1;
    }
    case LeakKind::shm: {
      // Digit runs in the name that are the pid of a process of some rank.
      std::string path = detail_of(leak, "path");
      for (std::size_t i = 0; i < path.size();) {
        if (!std::isdigit(static_cast<unsigned char>(path[i]))) {
          ++i;
          continue;
        }
        std::size_t j = i;
        while (j < path.size() && std::isdigit(static_cast<unsigned char>(path[j]))) ++j;
        int pid = to_pid(path.substr(i, j - i));
        if (pid) {
          int r = rank_of_pid(pid);
          if (r >= 0) return r;
        }
        i = j;
      }
      return -1;
    }
  }
  return -1;
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
