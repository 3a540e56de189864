// cgroup v2, where the machine has it: one cgroup per scenario lists exactly
// the scenario's processes (no scan of every process on the machine) and can
// kill them all at once.
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace reclaim::sys {

// The mount point of the cgroup v2 hierarchy in a /proc/self/mounts text;
// "" when there is none.
std::string parse_cgroup2_mount(std::string_view mounts);
// The same for this machine.
std::string cgroup2_mount();

// The processes in the cgroup directory `dir` (its cgroup.procs); empty when
// it cannot be read.
std::vector<int> cgroup_procs(const std::string& dir);

// Kills every process in the cgroup (cgroup.kill, Linux 5.14+).
std::error_code cgroup_kill(const std::string& dir);

}  // namespace reclaim::sys
