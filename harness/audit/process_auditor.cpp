// The process auditor: who of the scenario is still around.
//
// The subreaper (shepherd) is the primary signal: an orphan re-parents to it,
// so the descendants of the shepherd are exactly the scenario's processes,
// even daemonized grandchildren and children that cleared their environment.
// The environment marker is the second signal, catching anything that got
// out of the tree.
#include <unistd.h>

#include <fmt/format.h>

#include <unordered_set>

#include "audit/audit.hpp"
#include "sys/cgroup.hpp"

namespace reclaim::audit {

std::string describe_process(std::string_view kind, const sys::ProcStat& p, std::string_view cmdline) {
  std::string shown = cmdline.empty() ? fmt::format("[{}]", p.comm) : std::string(cmdline);
  return fmt::format("{} {} (ppid {}, \"{}\")", kind, p.pid, p.ppid, shown);
}

namespace {

Leak process_leak(const sys::ProcStat& p, const AuditScope& scope, bool escaped) {
  const bool zombie = p.state == 'Z';
  std::string cmdline = sys::read_cmdline(p.pid).value_or("");
  Leak leak;
  leak.kind = zombie ? LeakKind::zombie : LeakKind::process;
  leak.what = describe_process(zombie ? "zombie" : "process", p, cmdline);
  if (escaped) leak.what += " escaped the scenario's process tree";
  leak.details = {{"pid", std::to_string(p.pid)},
                  {"ppid", std::to_string(p.ppid)},
                  {"cmdline", cmdline},
                  {"comm", p.comm},
                  {"state", std::string(1, p.state)}};
  if (escaped) leak.details.emplace_back("escaped", "true");
  if (p.pid == scope.rank_pid) leak.details.emplace_back("role", "rank");
  return leak;
}

// The members of `dirs` and the zombie children of each member.
std::vector<sys::ProcStat> cgroup_table(const std::vector<std::string>& dirs) {
  std::vector<sys::ProcStat> out;
  std::unordered_set<int> have;
  for (const auto& dir : dirs)
    for (int pid : sys::cgroup_procs(dir))
      if (auto st = sys::read_stat(pid); st && have.insert(pid).second) out.push_back(std::move(*st));
  const std::size_t members = out.size();
  for (std::size_t i = 0; i < members; ++i)
    for (auto& child : sys::children_of(out[i].pid))
      if (child.state == 'Z' && have.insert(child.pid).second) out.push_back(std::move(child));
  return out;
}

class ProcessAuditor final : public Auditor {
 public:
  std::string_view name() const override { return "process"; }

  std::vector<Leak> audit(const AuditScope& scope) override {
    std::vector<Leak> leaks;
    std::vector<sys::ProcStat> scanned;
    const bool by_cgroup = !scope.process_table && !scope.cgroups.empty();
    if (by_cgroup) scanned = cgroup_table(scope.cgroups);
    else if (!scope.process_table) scanned = sys::scan_processes();
    const auto& table = scope.process_table ? *scope.process_table : scanned;
    // Without a shepherd there is no tree (descendants of 0 would be every process).
    const auto tree = scope.shepherd_pid > 0 ? sys::descendants(table, scope.shepherd_pid) : std::vector<int>{};
    const std::unordered_set<int> in_tree(tree.begin(), tree.end());
    for (const auto& p : table) {
      // Every member of the scenario's cgroups is the scenario's.
      if (!by_cgroup && !in_tree.count(p.pid)) continue;
      leaks.push_back(process_leak(p, scope, false));
      if (scope.seen_pids) scope.seen_pids->insert(p.pid);
    }
    if (scope.marker.empty() || by_cgroup) return leaks;
    const int self = ::getpid();
    // A process of the scenario cannot be older than its shepherd: reading
    // the environment of every older process would be wasted work.
    std::uint64_t born = 0;
    for (const auto& p : table)
      if (p.pid == scope.shepherd_pid) born = p.starttime;
    for (const auto& p : table) {
      // Zombies have no environment left and kernel threads none at all; the
      // shepherd and we ourselves may legitimately carry the marker.
      if (in_tree.count(p.pid) || p.pid == scope.shepherd_pid || p.pid == self || p.state == 'Z' || p.pid == 2 ||
          p.ppid == 2 || p.starttime < born)
        continue;
      if (sys::process_environ_contains(p.pid, scope.marker).value_or(false)) {
        leaks.push_back(process_leak(p, scope, true));
        if (scope.seen_pids) scope.seen_pids->insert(p.pid);
      }
    }
    return leaks;
  }
};

}  // namespace

std::unique_ptr<Auditor> make_process_auditor() { return std::make_unique<ProcessAuditor>(); }

std::vector<std::unique_ptr<Auditor>> make_default_auditors() {
  std::vector<std::unique_ptr<Auditor>> out;
  out.push_back(make_process_auditor());
  out.push_back(make_temp_file_auditor());
  out.push_back(make_shm_auditor());
  out.push_back(make_sysv_auditor());
  return out;
}

}  // namespace reclaim::audit
