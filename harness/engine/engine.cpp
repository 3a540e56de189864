#include "engine/engine.hpp"

#include <fmt/format.h>
#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "sys/cgroup.hpp"
#include "sys/fs.hpp"
#include "sys/proc.hpp"

namespace reclaim::engine {

SandboxBase make_sandbox_base() {
  const char* t = std::getenv("TMPDIR");
  std::string base = (t && *t) ? t : "/tmp";
  std::string templ = base + "/reclaim.XXXXXX";
  if (!::mkdtemp(templ.data()))
    throw std::runtime_error(fmt::format("cannot create a sandbox directory under {}: {}", base, std::strerror(errno)));
  std::string name = templ.substr(templ.rfind('/') + 1);
  SandboxBase out{templ, "/dev/shm/" + name, ""};
  // A cgroup per run (a child per scenario) where cgroup v2 is mounted and
  // writable; without it scenarios are found by scanning /proc.
  if (::geteuid() == 0) {
    std::string root = sys::cgroup2_mount();
    if (!root.empty() && ::mkdir((root + "/" + name).c_str(), 0755) == 0) out.cgroup = root + "/" + name;
  }
  return out;
}

void remove_sandbox_base(const SandboxBase& base) {
  sys::remove_tree(base.dir);
  if (base.cgroup.empty()) return;
  // Scenario cgroups (with a child per rank) are removed by their scenarios;
  // an interrupted one may remain. cgroup directories are removed with rmdir,
  // children first, never unlinked into.
  auto remove_children = [](const std::string& dir) {
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* e = ::readdir(d))
        if (e->d_type == DT_DIR && e->d_name[0] != '.') ::rmdir((dir + "/" + e->d_name).c_str());
      ::closedir(d);
    }
  };
  if (DIR* d = ::opendir(base.cgroup.c_str())) {
    while (dirent* e = ::readdir(d))
      if (e->d_type == DT_DIR && e->d_name[0] != '.') {
        remove_children(base.cgroup + "/" + e->d_name);
        ::rmdir((base.cgroup + "/" + e->d_name).c_str());
      }
    ::closedir(d);
  }
  ::rmdir(base.cgroup.c_str());
}

namespace {

bool aborted(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

}  // namespace

report::RunSummary run_all(const std::vector<Scenario>& scenarios, EngineOptions options,
                           report::Reporter& reporter) {
  const std::int64_t t0 = sys::monotonic_ns();
  report::RunSummary summary;
  summary.total = scenarios.size();
  std::mutex mu;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> interrupted{false};
  const auto& cfg = options.supervisor;

  auto worker = [&] {
    for (;;) {
      if (interrupted || aborted(cfg.abort_fd)) {
        interrupted = true;
        return;
      }
      std::size_t i = next++;
      if (i >= scenarios.size()) return;
      {
        std::lock_guard lock(mu);
        reporter.scenario_started(scenarios[i]);
      }
      auto outcome = options.runner(scenarios[i], i, cfg);
      if (outcome.interrupted) {
        interrupted = true;
        return;  // an unfinished scenario has no result
      }
      if (options.repro) outcome.result.repro = options.repro(scenarios[i]);
      std::lock_guard lock(mu);
      ++summary.by_verdict[outcome.result.verdict];
      if (outcome.result.verdict == Verdict::pass) ++summary.passed;
      else ++summary.failed;
      reporter.scenario_finished(outcome.result);
    }
  };

  const int jobs = std::max(1, std::min<int>(options.jobs, static_cast<int>(std::max<std::size_t>(1, scenarios.size()))));
  std::vector<std::thread> threads;
  for (int j = 1; j < jobs; ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();

  summary.interrupted = interrupted;
  summary.not_run = summary.total - summary.passed - summary.failed;
  summary.wall_ms = static_cast<double>(sys::monotonic_ns() - t0) / 1e6;
  return summary;
}

}  // namespace reclaim::engine
