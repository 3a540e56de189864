// The shepherd zygote: one long-lived `reclaim-shepherd --serve` per run that
// keeps a shepherd forked (without exec) ahead of each scenario. Starting the
// program anew for every scenario (fork of the harness, exec, dynamic
// linking) was the largest part of the harness's own cost per scenario.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "supervisor/supervisor.hpp"
#include "sys/pidfd.hpp"

namespace reclaim::supervisor {

class ShepherdZygote {
 public:
  // Starts `cfg.shepherd_path --serve`, keeping `spares` shepherds (the
  // number of scenarios run at once) forked ahead, and as many sandboxes made
  // ahead below cfg's bases. With cfg.private_tmp, each shepherd enters its
  // own mount namespace while it waits for its scenario. nullptr, with the
  // reason in `error`, when it cannot start: the supervisor then starts one
  // shepherd per scenario and makes its own sandboxes.
  static std::unique_ptr<ShepherdZygote> start(const SupervisorConfig& cfg, int spares, std::string& error);

  // Closes the request socket and waits until the zygote has exited, which
  // it does once the last shepherd it forked is gone (a shepherd ends when
  // its supervisor closes the scenario's channel); SIGKILL after 10 s.
  ~ShepherdZygote();
  ShepherdZygote(const ShepherdZygote&) = delete;
  ShepherdZygote& operator=(const ShepherdZygote&) = delete;

  // Asks for one shepherd with command line `args` (argv, from the program
  // name on), environment `env` (the ranks'), working directory `cwd`, and the
  // descriptors `fds`: the scenario's channel, stdin, stdout and stderr, then
  // the ranks' control sockets (at most 250 in all). The shepherd's first
  // packet on the channel is "STARTED PID" with its pidfd attached, or
  // "SPAWNFAIL ..." when it could not be forked. Safe from several threads.
  std::error_code request(const std::string& cwd, const std::vector<std::string>& args,
                          const std::vector<std::string>& env, const std::vector<int>& fds) const;

  // Takes over a finished scenario's shepherd (its channel already closed)
  // and runs `then` once it has exited — removing the sandbox, which cannot
  // be removed while bound into the shepherd's mount namespace. Done on a
  // thread of its own, so the next scenario need not wait for it; the
  // destructor waits for all of it.
  void retire(sys::Pidfd shepherd, std::function<void()> then) const;

  // A sandbox made ahead of its scenario, on the same thread that removes
  // finished ones: `tmp` (0700) inside `root`, the private /dev/shm directory
  // `shm` when the run has a private /tmp, and the cgroup `cgroup` with its
  // child "r0" when the run has cgroups ("" otherwise).
  struct Sandbox {
    std::string root, tmp, shm, cgroup;
  };
  // One sandbox made ahead, or nullopt when none is ready: the caller makes
  // its own. Safe from several threads.
  std::optional<Sandbox> take_sandbox() const;

  int pid() const;  // the zygote's own process

  static constexpr std::size_t kMaxFds = 250;

 private:
  struct State;
  explicit ShepherdZygote(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace reclaim::supervisor
