// The supervisor runs one scenario: sandbox, shepherd, ranks, fault, audits,
// verdict. It observes from outside (pidfds, /proc, inotify) and never trusts
// the rank's word about its own cleanliness.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/model.hpp"

namespace reclaim::supervisor {

class ShepherdZygote;

struct SupervisorConfig {
  std::string shepherd_path;    // the reclaim-shepherd program
  const ShepherdZygote* zygote = nullptr;  // forks shepherds without exec (see zygote.hpp); null:
                                           // each scenario execs shepherd_path
  std::string sandbox_base;     // private 0700 directory holding every scenario's sandbox
  std::string shm_base;         // prefix for private /dev/shm directories ("/dev/shm/reclaim.PID")
  bool private_tmp = true;      // try a private /tmp and /dev/shm per scenario (mount namespace)
  std::string cgroup_base;      // a cgroup v2 directory for the run: each scenario gets a child
                                // listing exactly its processes; empty: find them by scanning /proc
  int abort_fd = -1;            // readable when the run is interrupted: stop, clean up, return
  bool control_tcp = false;     // ranks a launcher starts (mpirun) connect over TCP on 127.0.0.1
                                // ("tcp:HOST:PORT") instead of an abstract unix socket
};

// The executable a command name runs: itself when it holds a '/', else the
// first executable match on PATH. nullopt when there is none.
std::optional<std::string> resolve_executable(const std::string& name);

// Whether a scenario's target can get a private /tmp and /dev/shm: no path of
// its command line may live under /dev/shm (the mount would hide it). Paths
// under /tmp are fine: see paths_to_carry. Returns an empty string when
// it can, else the reason it cannot.
std::string private_tmp_obstacle(const Target& target);

// The top-level entries under /tmp ("/tmp/x": a directory, or a file right in
// /tmp) that the target's command line or working directory `cwd` lives in:
// the shepherd binds them back into the scenario's private /tmp at their own
// paths.
std::vector<std::string> paths_to_carry(const Target& target, const std::string& cwd);

// Runs `scenario` to its verdict. `seq` makes the sandbox name unique within
// the run. Never throws for anything the target does; a harness failure is
// verdict `error`. When the run is interrupted (abort_fd readable) the result
// has `interrupted` set, everything the scenario started is killed and its
// sandbox removed.
struct RunOutcome {
  ScenarioResult result;
  bool interrupted = false;
};
RunOutcome run_scenario(const Scenario& scenario, std::uint64_t seq, const SupervisorConfig& config);

}  // namespace reclaim::supervisor
