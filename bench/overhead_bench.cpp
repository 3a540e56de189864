// overhead_bench — what the harness costs per scenario, next to the floor of
// doing the same thing by hand, plus the cost of the /proc scan that runs on
// every event of every scenario. BENCHMARKS.md has the numbers and commands.
//
// Cases (each iteration is one complete run, wall clock, reported with
// UseManualTime and fixed Iterations x Repetitions — see kIterations):
//
//   floor/normal          fork+exec fixtures/worker_pool directly, no
//                         RECLAIM_CONTROL (the probe is inactive, so the rank
//                         runs the whole fit: janitor, 2 loaders x 2 workers,
//                         teardown), TMPDIR = a fresh private directory; wait
//                         for the rank through its pidfd, reap every orphan,
//                         count what is left in TMPDIR and remove it.
//   harness/normal        supervisor::run_scenario("fit/none" of
//                         scenarios/standard.toml): sandbox, shepherd (private
//                         /tmp as root), probe round trips at every hook,
//                         audits, verdict, clean-up.
//   floor/sigkill         as floor/normal, plus an inotify watch on TMPDIR:
//                         when the rank creates its lock file (the last
//                         resource setup() makes), SIGKILL the rank through
//                         its pidfd; then wait until the rank, its workers
//                         (PR_SET_PDEATHSIG) and its janitor (which removes
//                         the registered files on EOF) are all gone — the
//                         bench process is a child subreaper, so the orphans
//                         come back to it — and remove TMPDIR.
//   harness/sigkill@setup          run_scenario("fit/setup/sigkill"): the same
//                                  fault at about the same moment, via the probe.
//   harness/sigkill@train_batch#1  run_scenario("fit/train_batch#1/sigkill"),
//                                  the case; 4 workers exist by then,
//                                  so the rank has done more work than in the floor.
//
//   scan/*                sys::scan_processes() and sys::descendants(), which
//                         the supervisor calls on every event, and the
//                         process auditor's environ sweep (once per scenario).
//   inotify/*             closing a TreeWatch, in the supervisor's order
//                         (sandbox removed first) and the other order.
//
// Counters on the spawning cases are the mean time (ms from the start of the
// run) at which the rank was spawned, killed, gone, everything reclaimed and
// (harness) the verdict reached. After the run a summary prints, per case, the
// median and p90 over every single iteration and the ratio harness / floor.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "engine/engine.hpp"
#include "model/model.hpp"
#include "suite/suite.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/zygote.hpp"
#include "sys/fs.hpp"
#include "sys/inotify.hpp"
#include "sys/proc.hpp"

extern char** environ;

namespace {

using namespace reclaim;

// Spawning benchmarks must not be calibrated: Google Benchmark would run
// thousands of 10 ms iterations. 10 x 10 = 100 samples per case (30 gave
// medians that moved by 0.3 ms between runs on a shared machine) keeps the
// whole program well under a minute.
constexpr int kIterations = 10;
constexpr int kRepetitions = 10;
// A run that takes longer than this is broken, not slow.
constexpr int kDeadlineSeconds = 10;

const std::string kBinaryDir = RECLAIM_BINARY_DIR;
const std::string kSourceDir = RECLAIM_SOURCE_DIR;

// Every single iteration's wall time (ms), per case, for the summary.
std::map<std::string, std::vector<double>>& samples() {
  static std::map<std::string, std::vector<double>> s;
  return s;
}

std::int64_t now_ns() { return sys::monotonic_ns(); }

double ms_between(std::int64_t from, std::int64_t to) { return static_cast<double>(to - from) / 1e6; }

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int pidfd, int signo) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
}

// ---- the floor: the same processes, spawned, signalled and reaped by hand ----

enum class FloorFault { none, sigkill_after_setup };

struct FloorRun {
  double ms = 0;
  int exit_code = -1;
  int exit_signal = 0;
  std::size_t leftover_files = 0;  // left in TMPDIR (or /dev/shm) once every process was gone
  // Phases, ms from the start of the run: rank spawned (fork returned),
  // SIGKILL sent, rank reaped, every orphan reaped.
  double spawned_ms = 0, killed_ms = 0, rank_gone_ms = 0, all_gone_ms = 0;
  std::string error;               // non-empty: the run did not happen as intended
};

// SIGALRM is the floor's deadline: it interrupts a blocking waitid (the
// handler is installed without SA_RESTART). It is never used to wait.
volatile std::sig_atomic_t g_alarm = 0;
void on_alarm(int) { g_alarm = 1; }

class FloorRunner {
 public:
  explicit FloorRunner(std::string program) : program_(std::move(program)) {
    base_ = engine::make_sandbox_base();
    // One inotify instance for the whole benchmark, one watch per run (it
    // goes away with the run's directory). Closing an inotify instance waits
    // for the kernel's fsnotify clean-up: up to ~15 ms here, and when that
    // close races with the rank's exit, the exit itself stalls as long (see
    // BENCHMARKS.md). A floor pays neither.
    inotify_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    // The rank's environment minus anything the harness would own: without
    // RECLAIM_CONTROL the probe is inactive and the driver runs on its own.
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view v(*e);
      if (v.rfind("RECLAIM_", 0) == 0 || v.rfind("TMPDIR=", 0) == 0 || v.rfind("TMP=", 0) == 0 ||
          v.rfind("TEMP=", 0) == 0)
        continue;
      env_.emplace_back(v);
    }
  }
  ~FloorRunner() {
    if (inotify_ >= 0) ::close(inotify_);
    engine::remove_sandbox_base(base_);
  }
  FloorRunner(const FloorRunner&) = delete;
  FloorRunner& operator=(const FloorRunner&) = delete;

  FloorRun run(FloorFault fault) {
    FloorRun r;
    const std::int64_t t0 = now_ns();
    const std::string dir = fmt::format("{}/f{}", base_.dir, seq_++);
    if (::mkdir(dir.c_str(), 0700) != 0) return fail(r, fmt::format("mkdir {}: {}", dir, std::strerror(errno)));

    int wd = -1;
    if (fault == FloorFault::sigkill_after_setup) {
      wd = inotify_ < 0 ? -1 : ::inotify_add_watch(inotify_, dir.c_str(), IN_CREATE);
      if (wd < 0) return fail(r, fmt::format("inotify: {}", std::strerror(errno)));
    }

    // Everything the child needs is built before fork: after it, only
    // async-signal-safe calls.
    std::vector<std::string> env = env_;
    env.push_back("TMPDIR=" + dir);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    char* argv[] = {program_.data(), nullptr};
    const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);

    const pid_t pid = ::fork();
    if (pid == 0) {
      if (devnull >= 0)
        for (int fd = 0; fd < 3; ++fd) ::dup2(devnull, fd);
      ::execve(argv[0], argv, envp.data());
      ::_exit(127);
    }
    if (devnull >= 0) ::close(devnull);
    if (pid < 0) {
      return fail(r, fmt::format("fork: {}", std::strerror(errno)));
    }
    r.spawned_ms = ms_between(t0, now_ns());
    // Our unreaped child: the pidfd cannot name a recycled PID.
    const int pidfd = pidfd_open(pid);
    const std::int64_t deadline = t0 + std::int64_t{kDeadlineSeconds} * 1'000'000'000;

    if (wd >= 0) {
      if (!kill_after_lock_file(inotify_, wd, pidfd, dir, deadline, r)) pidfd_send_signal(pidfd, SIGKILL);
      r.killed_ms = ms_between(t0, now_ns());
    }

    // The rank, then every orphan it left (re-parented to us, the subreaper),
    // until none is left. Bounded by the deadline through SIGALRM.
    g_alarm = 0;
    const auto remaining_s = std::max<std::int64_t>(1, (deadline - now_ns()) / 1'000'000'000 + 1);
    ::alarm(static_cast<unsigned>(remaining_s));
    // EINTR without the alarm is someone else's signal handler: the harness's
    // Boost.Process installs one for SIGCHLD while a scenario runs.
    siginfo_t info{};
    int w;
    do w = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED);
    while (w != 0 && errno == EINTR && !g_alarm);
    if (w == 0) {
      if (info.si_code == CLD_EXITED) r.exit_code = info.si_status;
      else r.exit_signal = info.si_status;
    } else if (r.error.empty()) {
      r.error = fmt::format("waitid(rank): {}", std::strerror(errno));
    }
    ::close(pidfd);
    r.rank_gone_ms = ms_between(t0, now_ns());
    for (;;) {
      siginfo_t orphan{};
      if (waitid(P_ALL, 0, &orphan, WEXITED) == 0) continue;
      if (errno == ECHILD) break;
      if (errno != EINTR) {
        if (r.error.empty()) r.error = fmt::format("waitid(orphans): {}", std::strerror(errno));
        break;
      }
      if (g_alarm) {
        if (r.error.empty()) r.error = "descendants still running at the deadline";
        kill_our_children();
        g_alarm = 0;
        ::alarm(static_cast<unsigned>(kDeadlineSeconds));
      }
    }
    ::alarm(0);
    r.all_gone_ms = ms_between(t0, now_ns());

    // Every process is gone: whatever is still in TMPDIR (and the rank's shm
    // object) was leaked. Remove it, as a clean-up by hand would.
    r.leftover_files = sys::list_tree(dir).size();
    if (::shm_unlink(fmt::format("/worker_pool-{}", pid).c_str()) == 0) ++r.leftover_files;
    sys::remove_tree(dir);
    r.ms = ms_between(t0, now_ns());
    return r;
  }

 private:
  static FloorRun& fail(FloorRun& r, std::string what) {
    r.error = std::move(what);
    return r;
  }

  // Waits for IN_CREATE of "worker_pool-*.lock" in `dir` and SIGKILLs the
  // rank at once. False (with r.error set) when the rank exited first or the
  // deadline passed.
  static bool kill_after_lock_file(int watch, int wd, int pidfd, const std::string& dir, std::int64_t deadline,
                                   FloorRun& r) {
    alignas(inotify_event) char buf[4096];
    for (;;) {
      pollfd fds[2] = {{watch, POLLIN, 0}, {pidfd, POLLIN, 0}};
      const auto left_ms = std::max<std::int64_t>(0, (deadline - now_ns()) / 1'000'000);
      const int n = ::poll(fds, 2, static_cast<int>(left_ms));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        r.error = fmt::format("no lock file in {} within {} s", dir, kDeadlineSeconds);
        return false;
      }
      if (fds[0].revents != 0) {
        const ssize_t len = ::read(watch, buf, sizeof buf);
        for (ssize_t off = 0; off < len;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
          std::string_view name(ev->len > 0 ? ev->name : "");
          name = name.substr(0, name.find('\0'));
          // Events of earlier runs' watches (IN_IGNORED when their directory
          // went) carry other watch descriptors.
          if (ev->wd == wd && name.rfind("worker_pool-", 0) == 0 && name.size() > 5 && name.substr(name.size() - 5) == ".lock") {
            if (pidfd_send_signal(pidfd, SIGKILL) != 0) {
              r.error = fmt::format("pidfd_send_signal: {}", std::strerror(errno));
              return false;
            }
            return true;
          }
          off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        }
      }
      if (fds[1].revents != 0) {
        r.error = "the rank exited before creating its lock file";
        return false;
      }
    }
  }

  static void kill_our_children() {
    const int self = ::getpid();
    for (const auto& p : sys::scan_processes())
      if (p.ppid == self)
        if (int fd = pidfd_open(p.pid); fd >= 0) {
          pidfd_send_signal(fd, SIGKILL);
          ::close(fd);
        }
  }

  std::string program_;
  engine::SandboxBase base_;
  int inotify_ = -1;
  std::vector<std::string> env_;
  std::uint64_t seq_ = 0;
};

// Mean of each phase over the iterations, reported as counters: where the
// time of a run goes.
class PhaseMeans {
 public:
  void add(const std::string& name, double ms) {
    auto& [sum, n] = sums_[name];
    sum += ms;
    ++n;
  }
  void report(benchmark::State& state) const {
    for (const auto& [name, sn] : sums_)
      if (sn.second > 0) state.counters[name] = sn.first / static_cast<double>(sn.second);
  }

 private:
  std::map<std::string, std::pair<double, int>> sums_;
};

void bm_floor(benchmark::State& state, const std::string& name, FloorFault fault) {
  FloorRunner runner(kBinaryDir + "/fixtures/worker_pool");
  std::size_t leftovers = 0;
  PhaseMeans phases;
  (void)runner.run(fault);  // warm-up: page cache, dynamic loader
  int missed = 0;
  for (auto _ : state) {
    FloorRun r = runner.run(fault);
    // Without a probe the floor cannot hold the rank at the point: on a busy
    // machine the rank may finish its whole fit (about 3 ms) before we have
    // read the inotify event, and the SIGKILL hits a zombie. Such a run is not
    // a SIGKILL run: count it and run again.
    for (int retry = 0; retry < 5 && fault != FloorFault::none && r.error.empty() && r.exit_signal == 0 &&
                        r.exit_code == 0;
         ++retry) {
      ++missed;
      r = runner.run(fault);
    }
    const bool expected_end = fault == FloorFault::none ? (r.exit_signal == 0 && r.exit_code == 0)
                                                        : r.exit_signal == SIGKILL;
    if (!r.error.empty() || !expected_end) {
      // Aggregate-only reports drop a failed repetition's message: say it here too.
      const std::string why =
          fmt::format("{}: run failed: {} (exit {}, signal {})", name, r.error, r.exit_code, r.exit_signal);
      std::fprintf(stderr, "%s\n", why.c_str());
      state.SkipWithError(why.c_str());
      break;
    }
    leftovers += r.leftover_files;
    phases.add("spawned_ms", r.spawned_ms);
    if (fault != FloorFault::none) phases.add("killed_ms", r.killed_ms);
    phases.add("rank_gone_ms", r.rank_gone_ms);
    phases.add("all_gone_ms", r.all_gone_ms);
    state.SetIterationTime(r.ms / 1e3);
    samples()[name].push_back(r.ms);
  }
  state.counters["leftover_files"] = benchmark::Counter(static_cast<double>(leftovers));
  if (fault != FloorFault::none) state.counters["missed_kills"] = benchmark::Counter(static_cast<double>(missed));
  phases.report(state);
}

// ---- the harness: one scenario through supervisor::run_scenario --------------

const suite::Suite& standard_suite() {
  static const suite::Suite s =
      suite::load_suite(kSourceDir + "/scenarios/standard.toml", suite::Placeholders{kBinaryDir, ""});
  return s;
}

const Scenario& find_scenario(const std::string& id) {
  for (const auto& sc : standard_suite().scenarios)
    if (sc.id() == id) return sc;
  throw std::invalid_argument(fmt::format("no scenario {} in scenarios/standard.toml", id));
}

void bm_harness(benchmark::State& state, const std::string& name, const std::string& scenario_id) {
  const Scenario* found = nullptr;
  try {
    found = &find_scenario(scenario_id);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const Scenario& scenario = *found;
  auto base = engine::make_sandbox_base();
  supervisor::SupervisorConfig config;
  config.shepherd_path = kBinaryDir + "/reclaim-shepherd";
  config.sandbox_base = base.dir;
  config.shm_base = base.shm_prefix;
  config.cgroup_base = base.cgroup;
  config.private_tmp = ::geteuid() == 0;
  std::string zygote_error;
  auto zygote = supervisor::ShepherdZygote::start(config, 1, zygote_error);
  config.zygote = zygote.get();
  std::uint64_t seq = 0;
  PhaseMeans phases;

  // Warm-up: the zygote has its spare shepherd and sandbox made ahead, as in
  // a run past its first scenarios.
  for (int k = 0; k < 3; ++k) (void)supervisor::run_scenario(scenario, seq++, config);
  for (auto _ : state) {
    const std::int64_t t0 = now_ns();
    auto outcome = supervisor::run_scenario(scenario, seq++, config);
    const double ms = ms_between(t0, now_ns());
    if (outcome.result.verdict != Verdict::pass) {
      const std::string why = fmt::format("{}: {}: verdict {} {}", name, scenario_id,
                                          to_string(outcome.result.verdict), outcome.result.error);
      std::fprintf(stderr, "%s\n", why.c_str());
      state.SkipWithError(why.c_str());
      break;
    }
    state.SetIterationTime(ms / 1e3);
    samples()[name].push_back(ms);
    // The timeline is CLOCK_MONOTONIC, like t0: phases from the start of the run.
    // A timestamp of 0 did not happen; a negative latency is not one.
    const Timeline& tl = outcome.result.timeline;
    auto phase = [&](const char* key, std::int64_t at) {
      if (at != 0) phases.add(key, ms_between(t0, at));
    };
    phase("spawned_ms", tl.started_ns);
    phase("killed_ms", tl.fault_injected_ns);
    phase("rank_gone_ms", tl.rank_exited_ns);
    phase("all_gone_ms", tl.all_reclaimed_ns);
    phase("verdict_ms", tl.finished_ns);
    if (tl.fault_injected_ns != 0 && outcome.result.reclaim_latency_ms() >= 0)
      phases.add("reclaim_latency_ms", outcome.result.reclaim_latency_ms());
  }
  phases.report(state);
  zygote.reset();  // waits for the last shepherd
  engine::remove_sandbox_base(base);
}

// ---- scan cost ---------------------------------------------------------------

void bm_scan_processes(benchmark::State& state) {
  std::size_t n = 0;
  for (auto _ : state) {
    auto table = sys::scan_processes();
    n = table.size();
    benchmark::DoNotOptimize(table);
  }
  state.counters["processes"] = static_cast<double>(n);
}

// descendants() over a fixed table, root = pid 1: the worst case, every
// process in the table is a descendant.
void bm_descendants_of_init(benchmark::State& state) {
  const auto table = sys::scan_processes();
  std::size_t n = 0;
  for (auto _ : state) {
    auto d = sys::descendants(table, 1);
    n = d.size();
    benchmark::DoNotOptimize(d);
  }
  state.counters["descendants"] = static_cast<double>(n);
}

// What ScenarioRun::reclaimed() pays per event: a fresh scan, then the
// descendants of one process (here the bench process itself, which has none:
// the scan dominates).
void bm_scan_and_descendants(benchmark::State& state) {
  const int self = ::getpid();
  for (auto _ : state) {
    auto table = sys::scan_processes();
    auto d = sys::descendants(table, self);
    benchmark::DoNotOptimize(d);
  }
}

// The process auditor's marker sweep (once per scenario, in the final
// audit): a scan, then /proc/PID/environ of every process outside the
// scenario's tree, looking for the scenario's marker.
void bm_scan_and_environ_sweep(benchmark::State& state) {
  const std::string marker = fmt::format("RECLAIM_MARKER={}.bench", ::getpid());
  std::size_t read = 0;
  for (auto _ : state) {
    read = 0;
    for (const auto& p : sys::scan_processes()) {
      if (p.state == 'Z' || p.pid == 2 || p.ppid == 2) continue;
      benchmark::DoNotOptimize(sys::process_environ_contains(p.pid, marker));
      ++read;
    }
  }
  state.counters["environs"] = static_cast<double>(read);
}

// ---- inotify teardown ---------------------------------------------------------

// The supervisor opens a TreeWatch on each scenario's sandbox and closes it
// after cleanup() removed the sandbox. This measures only the close, in the
// supervisor's order (directory removed first, so its watch is being torn
// down when the instance closes) and in the other order.
enum class CloseOrder { after_remove, before_remove };

void bm_treewatch_close(benchmark::State& state, CloseOrder order) {
  auto base = engine::make_sandbox_base();
  std::uint64_t seq = 0;
  for (auto _ : state) {
    const std::string dir = fmt::format("{}/w{}", base.dir, seq++);
    if (auto ec = sys::make_private_dir(dir + "/sub")) {
      state.SkipWithError(ec.message().c_str());
      break;
    }
    std::optional<sys::TreeWatch> watch;
    if (auto w = sys::TreeWatch::open(dir)) watch.emplace(std::move(w.value()));
    if (!watch) {
      state.SkipWithError("inotify");
      break;
    }
    if (order == CloseOrder::after_remove) sys::remove_tree(dir);
    const std::int64_t t0 = now_ns();
    watch.reset();
    const double ms = ms_between(t0, now_ns());
    state.SetIterationTime(ms / 1e3);
    samples()[order == CloseOrder::after_remove ? "inotify/close_after_remove" : "inotify/close_before_remove"]
        .push_back(ms);
    if (order == CloseOrder::before_remove) sys::remove_tree(dir);
  }
  engine::remove_sandbox_base(base);
}

// ---- summary -----------------------------------------------------------------

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Nearest rank.
  const auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p / 100.0 * static_cast<double>(v.size()))));
  return v[std::min(rank, v.size()) - 1];
}

void print_summary() {
  const auto& s = samples();
  if (s.empty()) return;
  std::printf("\nPer-iteration wall time (ms) over every iteration of every repetition:\n");
  std::printf("%-32s %5s %9s %9s %9s\n", "case", "n", "min", "median", "p90");
  for (const auto& [name, v] : s)
    std::printf("%-32s %5zu %9.2f %9.2f %9.2f\n", name.c_str(), v.size(), *std::min_element(v.begin(), v.end()),
                percentile(v, 50), percentile(v, 90));
  const std::pair<const char*, const char*> pairs[] = {
      {"harness/normal", "floor/normal"},
      {"harness/sigkill@setup", "floor/sigkill"},
      {"harness/sigkill@train_batch#1", "floor/sigkill"},
  };
  std::printf("\nRatio harness / floor (medians; the goal is <= 1.5):\n");
  for (const auto& [h, f] : pairs) {
    auto hi = s.find(h), fi = s.find(f);
    if (hi == s.end() || fi == s.end()) continue;
    const double fm = percentile(fi->second, 50);
    const double hm = percentile(hi->second, 50);
    std::printf("%-32s / %-16s %6.2fx  (overhead %+.2f ms)\n", h, f, fm > 0 ? hm / fm : 0.0, hm - fm);
  }
  std::fflush(stdout);
}

template <class Fn>
void register_run(const std::string& name, Fn fn) {
  benchmark::RegisterBenchmark(name.c_str(), fn)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(kIterations)
      ->Repetitions(kRepetitions)
      ->ReportAggregatesOnly(true);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  // The floor reaps the rank's orphans (its janitor after a SIGKILL) itself,
  // as the shepherd does for the harness.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    std::fprintf(stderr, "prctl(PR_SET_CHILD_SUBREAPER): %s\n", std::strerror(errno));
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the alarm must interrupt waitid
  ::sigaction(SIGALRM, &sa, nullptr);

  // Side by side, floor first, in one run.
  register_run("floor/normal", [](benchmark::State& st) { bm_floor(st, "floor/normal", FloorFault::none); });
  register_run("harness/normal", [](benchmark::State& st) { bm_harness(st, "harness/normal", "fit/none"); });
  register_run("floor/sigkill",
               [](benchmark::State& st) { bm_floor(st, "floor/sigkill", FloorFault::sigkill_after_setup); });
  register_run("harness/sigkill@setup",
               [](benchmark::State& st) { bm_harness(st, "harness/sigkill@setup", "fit/setup/sigkill"); });
  register_run("harness/sigkill@train_batch#1", [](benchmark::State& st) {
    bm_harness(st, "harness/sigkill@train_batch#1", "fit/train_batch#1/sigkill");
  });

  benchmark::RegisterBenchmark("scan/scan_processes", bm_scan_processes)->Unit(benchmark::kMicrosecond)->MinTime(0.2);
  benchmark::RegisterBenchmark("scan/descendants_of_init", bm_descendants_of_init)
      ->Unit(benchmark::kMicrosecond)
      ->MinTime(0.2);
  benchmark::RegisterBenchmark("scan/scan_and_descendants", bm_scan_and_descendants)
      ->Unit(benchmark::kMicrosecond)
      ->MinTime(0.2);
  benchmark::RegisterBenchmark("scan/scan_and_environ_sweep", bm_scan_and_environ_sweep)
      ->Unit(benchmark::kMicrosecond)
      ->MinTime(0.2);

  for (auto [name, order] : {std::pair{"inotify/close_after_remove", CloseOrder::after_remove},
                             std::pair{"inotify/close_before_remove", CloseOrder::before_remove}})
    benchmark::RegisterBenchmark(name, [order = order](benchmark::State& st) { bm_treewatch_close(st, order); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->Iterations(kIterations)
        ->Repetitions(kRepetitions)
        ->ReportAggregatesOnly(true);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_summary();
  return 0;
}
