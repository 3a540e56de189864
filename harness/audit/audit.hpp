// The after-the-fact proof: what a scenario left behind, read from outside.
//
// Each auditor looks at one kind of resource, behind one small interface so
// the engine can be tested with gMock'd auditors. An auditor takes a
// baseline before the scenario starts and then reports, as Leak values, what
// is present now that was not there before and belongs to the scenario. It
// never cleans anything up: the supervisor kills and removes leftovers only
// after they have been recorded (audit before cleanup).
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "audit/handle_auditor.hpp"  // HandleAuditor: the handles of a live rank
#include "model/model.hpp"
#include "sys/proc.hpp"

namespace reclaim::audit {

// What belongs to one scenario.
struct AuditScope {
  int shepherd_pid = 0;        // the scenario's subreaper: every process of the scenario descends from it
  int rank_pid = 0;            // the rank (for labelling; it is audited like any other descendant)
  std::string marker;          // "RECLAIM_SCENARIO=<token>": every process of the scenario has it in its environment
  std::string sandbox_tmp;     // host path of the scenario's TMPDIR / private /tmp
  std::string sandbox_shm;     // host path bound over /dev/shm in the scenario's mount namespace; empty if no namespace
  std::set<int>* seen_pids = nullptr;  // pids known to belong to the scenario (for SysV cpid attribution); may be null
  // A process table the caller has just read (sys::scan_processes), so the
  // process auditor need not read /proc again; null: it scans itself.
  const std::vector<sys::ProcStat>* process_table = nullptr;
  // cgroup v2 directories that hold exactly the scenario's processes (the
  // shepherd stays out). When set, the process auditor reads them instead of
  // every process on the machine: the audit costs what the scenario holds,
  // however busy the machine.
  std::vector<std::string> cgroups;
};

class Auditor {
 public:
  virtual ~Auditor() = default;
  virtual std::string_view name() const = 0;
  // Records what exists before the scenario, so it is never blamed on it.
  virtual void take_baseline(const AuditScope&) {}
  // What is left now. Leak::rank is 0; the caller assigns ranks.
  virtual std::vector<Leak> audit(const AuditScope&) = 0;
};

// "process": every descendant of shepherd_pid (the shepherd itself excluded):
// alive -> LeakKind::process, state Z -> LeakKind::zombie; plus every process
// outside that tree whose environment holds `marker` (escaped: re-parented
// away from the subreaper, e.g. by a PID namespace edge case or by a process
// spawned through a daemon). Details: pid, ppid, cmdline, state, comm, and
// escaped=true / role=rank where they apply. Adds every pid it reports to
// *seen_pids. A process that cleared its environment AND left the tree is
// invisible to it: that is what the subreaper is for.
// With `cgroups` (and no process_table), the scenario's processes are the
// cgroups' members plus their zombie children (a zombie has left its cgroup
// but not its parent), and there is no marker sweep: leaving a cgroup takes
// an explicit move by a privileged process, which the tree never allowed for
// either.
std::unique_ptr<Auditor> make_process_auditor();

// "temp_file": every entry below sandbox_tmp not present at baseline ->
// LeakKind::temp_file with path (relative to the sandbox), size, type.
std::unique_ptr<Auditor> make_temp_file_auditor();

// "shm": with sandbox_shm set, every entry below it -> LeakKind::shm.
// Without it, new entries of the host's /dev/shm since the baseline. Limit:
// in that mode, objects created meanwhile by anything else on the machine
// (another scenario under -j N included) are blamed too; give scenarios a
// private /dev/shm to avoid it.
std::unique_ptr<Auditor> make_shm_auditor();

// "sysv": System V objects that did not exist at baseline -> LeakKind::sysv_ipc.
// Shared-memory segments carry their creator pid and are attributed when
// cpid is in *seen_pids, or cpid is still alive and a descendant of the
// shepherd or carries the marker (with seen_pids null, every new segment
// counts). Limit: the kernel records no creator for semaphore sets and
// message queues, so every new one counts, whoever made it; under -j N a
// neighbour's objects can be blamed.
std::unique_ptr<Auditor> make_sysv_auditor();

// The four above, in the order process, temp_file, shm, sysv.
std::vector<std::unique_ptr<Auditor>> make_default_auditors();

// ---- helpers shared by the auditors (exposed for tests) -------------------------

// `process 4242 (ppid 1, "worker_pool --bug orphan-worker")`; when the
// cmdline is empty (zombie, kernel thread) the comm is shown as "[comm]".
std::string describe_process(std::string_view kind, const sys::ProcStat& p, std::string_view cmdline);

}  // namespace reclaim::audit
