// The engine runs a list of scenarios, up to `jobs` at once, and streams each
// result to a reporter as it finishes. It never knows how a fault is
// delivered or how leaks are found: that is the supervisor's business.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/model.hpp"
#include "reports/reporter.hpp"
#include "supervisor/supervisor.hpp"

namespace reclaim::engine {

// Runs one scenario. The real one is supervisor::run_scenario; tests inject
// their own to check the engine's scheduling and interruption logic.
using ScenarioRunner =
    std::function<supervisor::RunOutcome(const Scenario&, std::uint64_t seq, const supervisor::SupervisorConfig&)>;

struct EngineOptions {
  int jobs = 1;
  supervisor::SupervisorConfig supervisor;  // sandbox_base is created by run_all and removed after
  // The command that reproduces one scenario, stored in each result.
  std::function<std::string(const Scenario&)> repro;
  ScenarioRunner runner = supervisor::run_scenario;
};

// Runs `scenarios` in order with up to `options.jobs` in flight. When
// `options.supervisor.abort_fd` becomes readable no further scenario starts,
// running ones are stopped and cleaned up, and the summary is marked
// interrupted; results of finished scenarios have already been reported.
// Reporter calls are serialised. Throws std::runtime_error only when the
// sandbox base cannot be created (nothing has run then).
report::RunSummary run_all(const std::vector<Scenario>& scenarios, EngineOptions options,
                           report::Reporter& reporter);

// A fresh private directory for a run's sandboxes ("$TMPDIR/reclaim.XXXXXX",
// 0700), and the /dev/shm prefix that goes with it.
struct SandboxBase {
  std::string dir;
  std::string shm_prefix;
  std::string cgroup;  // a cgroup v2 directory for the run's scenarios, "" when unavailable
};
SandboxBase make_sandbox_base();
// Removes what make_sandbox_base created (symlink-safe for the directory).
void remove_sandbox_base(const SandboxBase& base);

}  // namespace reclaim::engine
