// Judging a scenario from what was observed: the hook contract and the
// verdict. Pure functions, so the rules are unit-tested without processes.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "audit/audit.hpp"
#include "model/model.hpp"

namespace reclaim::supervisor {

// What the supervisor saw of one rank.
struct Evidence {
  bool probe_connected = false;     // the rank said HELLO
  bool fault_delivered = false;     // the armed point was reached and the fault injected
  std::size_t hooks_at_fault = 0;   // how many hooks had run when the fault was injected
  std::vector<std::string> hooks;   // hooks in the order the rank entered them
  ExitStatus rank_exit;
};

// The hook contract (Expectations::contract) checked against the evidence:
//   after a fault the rank can react to: on_exception exactly once after the
//   fault, teardown never after it; on the success path: teardown once, no
//   on_exception, exit status 0. Faults the rank cannot survive (SIGKILL to
//   it, ...) leave nothing to check. A rank that never spoke the protocol
//   breaks the lightning contract.
std::vector<Violation> check_contract(const Scenario& scenario, const Evidence& evidence);

// What the supervisor saw of a rank that did not fail itself, in a
// multi-rank scenario where another rank failed.
struct SurvivorEvidence {
  bool probe_connected = false;
  bool world_failed = false;       // some rank failed (the harness saw it)
  std::vector<std::string> hooks;  // hooks in the order the rank entered them
  ExitStatus exit;
};

// The contract of a surviving rank: when the world failed and the survivor
// could still run code (it was not SIGKILLed) and had entered a hook,
// on_exception exactly once and no teardown after it; a teardown it began
// before it could know of the failure is allowed. A survivor stopped before
// its first hook held nothing to clean up. When the world did not fail (or
// the survivor completed first), the success contract.
std::vector<Violation> check_survivor(const Scenario& scenario, const SurvivorEvidence& evidence);

// The rank a leak belongs to, from its details: a process, zombie or SysV
// object by its (creator) pid through `rank_of_pid` (-1: unknown); a temp file
// by the per-rank temp directory it lies in ("rank-K/..."); a /dev/shm entry
// by a pid of a rank's process in its name ("worker_pool-4242"). With one rank
// everything is rank 0. -1 when no rank can be named.
int attribute_leak(const Leak& leak, int world_size, const std::function<int(int pid)>& rank_of_pid);

// error (the harness could not run it) > hang > contract > leak > pass.
Verdict decide_verdict(bool harness_error, bool hang, const std::vector<Violation>& violations,
                       const std::vector<Leak>& leaks);

// Runs every auditor, dropping what is not the scenario's: dead orphans that
// the shepherd (`shepherd_pid`) has yet to reap are its business, not leaks.
std::vector<Leak> collect_leaks(const std::vector<audit::Auditor*>& auditors, const audit::AuditScope& scope);

}  // namespace reclaim::supervisor
