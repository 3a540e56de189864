// harness_cost_bench — the harness's own cost and the resolution of its
// clock, beyond overhead_bench's floor comparison (BENCHMARKS.md, sections 5
// to 8, has the numbers and commands).
//
//   timing/clock_read          one clock_gettime(CLOCK_MONOTONIC): the cost of a
//                              timeline stamp. clock_getres is printed at start.
//   timing/pidfd_wakeup        SIGKILL (pidfd_send_signal) to an exec'd child
//                              blocked in read() -> poll() on its pidfd returns:
//                              what the rank-exit and last-process-gone stamps
//                              lag behind the exit (an upper bound: it includes
//                              signal delivery and the child's teardown).
//   timing/inotify_wakeup      another process unlinks a file in a watched
//                              directory, stamping the time right before the
//                              unlink -> poll() on the inotify fd returns: what
//                              the last-temp-file-gone stamp lags behind.
//   channel/round_trip         one probe message and its answer over an
//                              AF_UNIX stream socketpair with the wire codec, to
//                              a child process (the probe's transport).
//   audit/*/live:N             with N extra idle processes on the machine (0, 100,
//                              1,000, 5,000): the process auditor's baseline +
//                              audit of one scenario (a /proc scan, and the
//                              marker sweep reading every other process's
//                              environ), and a whole harness scenario
//                              (run_scenario of fit/setup/sigkill, wall time).
//   memory/run_all_10000       engine::run_all over 10,000 scenarios with an
//                              injected runner (results with leaks, hooks,
//                              timelines) and the real console, JSON and JUnit
//                              reporters: counters rss_growth_mb and peak
//                              (VmHWM) — results must stream, not accumulate.
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "audit/audit.hpp"
#include "engine/engine.hpp"
#include "protocol/wire.hpp"
#include "reports/reporter.hpp"
#include "suite/suite.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/zygote.hpp"
#include "sys/fs.hpp"
#include "sys/proc.hpp"

namespace {

using namespace reclaim;

const std::string kBinaryDir = RECLAIM_BINARY_DIR;
const std::string kSourceDir = RECLAIM_SOURCE_DIR;
constexpr int kDeadlineMs = 10'000;

std::int64_t now_ns() { return sys::monotonic_ns(); }
int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int pidfd, int signo) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
}

// Waits until `fd` is readable or the deadline passes. False on timeout.
bool wait_readable(int fd, int timeout_ms = kDeadlineMs) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int n = ::poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

bool read_exact(int fd, void* data, std::size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool write_exact(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// A child that blocks in read(pipe[0]) until EOF, then exits. It closes its
// copy of the write end, or the EOF would never come. Only async-signal-safe
// calls after fork.
pid_t spawn_idle(const int pipe[2]) {
  const int read_fd = pipe[0];
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe[1]);
    char c;
    while (::read(read_fd, &c, 1) != 0) {
    }
    ::_exit(0);
  }
  return pid;
}

// ---- timing resolution ---------------------------------------------------------

void bm_clock_read(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(now_ns());
}

// The child is /bin/cat (exec'd: a small process, like a rank, not a forked
// copy of this one, whose exit would spend its time tearing down our address
// space). An echoed byte proves it runs and is about to block in read().
void bm_pidfd_wakeup(benchmark::State& state) {
  for (auto _ : state) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      state.SkipWithError("pipe");
      break;
    }
    char cat[] = "/bin/cat";
    char* argv[] = {cat, nullptr};
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::execv(argv[0], argv);
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    const int pidfd = pid > 0 ? pidfd_open(pid) : -1;  // our unreaped child: cannot be recycled
    char c = 'x';
    const bool running = pidfd >= 0 && write_exact(in[1], &c, 1) && wait_readable(out[0]) && read_exact(out[0], &c, 1);
    const std::int64_t t0 = now_ns();
    if (pidfd >= 0) pidfd_send_signal(pidfd, SIGKILL);
    const bool woke = pidfd >= 0 && wait_readable(pidfd);
    const std::int64_t t1 = now_ns();
    if (pid > 0) ::waitpid(pid, nullptr, 0);
    for (int fd : {pidfd, in[1], out[0]})
      if (fd >= 0) ::close(fd);
    if (!running || !woke) {
      state.SkipWithError("cat did not run, or its pidfd never became readable");
      break;
    }
    state.SetIterationTime(static_cast<double>(t1 - t0) / 1e9);
  }
}

void bm_inotify_wakeup(benchmark::State& state) {
  auto base = engine::make_sandbox_base();
  const std::string dir = base.dir + "/watched";
  sys::make_private_dir(dir);
  const int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  const int wd = in >= 0 ? ::inotify_add_watch(in, dir.c_str(), IN_DELETE) : -1;
  int cmd[2], stamp[2];
  if (wd < 0 || ::pipe2(cmd, O_CLOEXEC) != 0 || ::pipe2(stamp, O_CLOEXEC) != 0) {
    state.SkipWithError("inotify/pipe");
    return;
  }
  const std::string file = dir + "/f";
  // The remover: on each command byte, stamp the clock, unlink, report the stamp.
  const pid_t remover = ::fork();
  if (remover == 0) {
    ::close(cmd[1]);  // else our own copy keeps the command pipe open forever
    char c;
    while (::read(cmd[0], &c, 1) == 1) {
      timespec ts{};
      ::clock_gettime(CLOCK_MONOTONIC, &ts);
      const std::int64_t t = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
      ::unlink(file.c_str());
      (void)!::write(stamp[1], &t, sizeof t);
    }
    ::_exit(0);
  }
  alignas(inotify_event) char buf[4096];
  for (auto _ : state) {
    const int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
    while (::read(in, buf, sizeof buf) > 0) {  // nothing stale
    }
    const char go = 'x';
    write_exact(cmd[1], &go, 1);
    const bool woke = wait_readable(in);
    const std::int64_t t1 = now_ns();
    std::int64_t t0 = 0;
    if (!woke || !read_exact(stamp[0], &t0, sizeof t0)) {
      state.SkipWithError("no inotify event");
      break;
    }
    state.SetIterationTime(static_cast<double>(std::max<std::int64_t>(0, t1 - t0)) / 1e9);
  }
  ::close(cmd[1]);
  ::waitpid(remover, nullptr, 0);
  for (int fd : {cmd[0], stamp[0], stamp[1], in}) ::close(fd);
  engine::remove_sandbox_base(base);
}

// ---- control channel -------------------------------------------------------------

void bm_channel_round_trip(benchmark::State& state) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  // The harness side of the exchange runs in a child: decode each line, answer
  // GO. Both ends use the real codec.
  const pid_t harness = ::fork();
  if (harness == 0) {
    ::close(sv[0]);
    wire::LineBuffer lines;
    char chunk[4096];
    const std::string go = wire::encode(wire::Go{});
    for (;;) {
      ssize_t n = ::read(sv[1], chunk, sizeof chunk);
      if (n <= 0) ::_exit(0);
      lines.feed(std::string_view(chunk, static_cast<std::size_t>(n)));
      while (auto line = lines.next())
        if (std::holds_alternative<wire::At>(wire::decode(*line))) write_exact(sv[1], go.data(), go.size());
    }
  }
  ::close(sv[1]);
  const std::string at = wire::encode(wire::At{"fit", "train_batch#1"});
  wire::LineBuffer lines;
  char chunk[4096];
  for (auto _ : state) {
    const std::int64_t t0 = now_ns();
    write_exact(sv[0], at.data(), at.size());
    bool got = false;
    while (!got) {
      if (!wait_readable(sv[0])) break;
      ssize_t n = ::read(sv[0], chunk, sizeof chunk);
      if (n <= 0) break;
      lines.feed(std::string_view(chunk, static_cast<std::size_t>(n)));
      while (auto line = lines.next()) got |= std::holds_alternative<wire::Go>(wire::decode(*line));
    }
    const std::int64_t t1 = now_ns();
    if (!got) {
      state.SkipWithError("no GO");
      break;
    }
    state.SetIterationTime(static_cast<double>(t1 - t0) / 1e9);
  }
  ::close(sv[0]);
  ::waitpid(harness, nullptr, 0);
}

// ---- audit cost with N live processes -------------------------------------------

// Idle processes kept alive across benchmark cases; resized on demand.
class Population {
 public:
  ~Population() { resize(0); }
  // Grows or shrinks to `n` idle children. False when fork failed.
  bool resize(std::size_t n) {
    while (pids_.size() > n) {
      const pid_t pid = pids_.back();
      pids_.pop_back();
      if (int fd = pidfd_open(pid); fd >= 0) {
        pidfd_send_signal(fd, SIGKILL);
        ::close(fd);
      }
      ::waitpid(pid, nullptr, 0);
    }
    if (pids_.size() < n && block_[0] < 0 && ::pipe2(block_, O_CLOEXEC) != 0) return false;
    while (pids_.size() < n) {
      const pid_t pid = spawn_idle(block_);
      if (pid < 0) return false;
      pids_.push_back(pid);
    }
    return true;
  }

 private:
  std::vector<pid_t> pids_;
  int block_[2] = {-1, -1};
};

Population& population() {
  static Population p;
  return p;
}

// range(1) == 0: the /proc path (no cgroup: scan every process, then the
// marker sweep); 1: the cgroup path scenarios take where cgroup v2 is
// available (read the scenario's cgroup), with 3 processes of the scenario
// alive in it (reported as leaks: 3 per audit).
void bm_process_audit(benchmark::State& state) {
  const auto live = static_cast<std::size_t>(state.range(0));
  const bool by_cgroup = state.range(1) == 1;
  if (!population().resize(live)) {
    state.SkipWithError("fork failed");
    return;
  }
  // A scope like a scenario's: its own shepherd, a marker nobody carries, so
  // the marker sweep reads every other process's environ.
  int block[2];
  if (::pipe2(block, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe");
    return;
  }
  const pid_t shepherd = spawn_idle(block);
  audit::AuditScope scope;
  scope.shepherd_pid = shepherd;
  scope.marker = fmt::format("RECLAIM_SCENARIO={}.bench", ::getpid());
  engine::SandboxBase base;
  std::vector<pid_t> members;
  std::string cgroup;
  if (by_cgroup) {
    base = engine::make_sandbox_base();
    cgroup = base.cgroup.empty() ? "" : base.cgroup + "/s0";
    if (cgroup.empty() || ::mkdir(cgroup.c_str(), 0755) != 0) {
      ::close(block[1]);
      ::waitpid(shepherd, nullptr, 0);
      ::close(block[0]);
      engine::remove_sandbox_base(base);
      state.SkipWithError("no cgroup v2 here");
      return;
    }
    for (int i = 0; i < 3; ++i) {
      members.push_back(spawn_idle(block));
      std::ofstream(cgroup + "/cgroup.procs") << members.back();
    }
    scope.cgroups = {cgroup};
  }
  auto auditor = audit::make_process_auditor();
  std::size_t processes = 0, leaks = 0;
  for (auto _ : state) {
    const std::int64_t t0 = now_ns();
    auditor->take_baseline(scope);
    auto found = auditor->audit(scope);
    const std::int64_t t1 = now_ns();
    leaks += found.size();
    state.SetIterationTime(static_cast<double>(t1 - t0) / 1e9);
  }
  processes = sys::scan_processes().size();
  ::close(block[1]);
  ::waitpid(shepherd, nullptr, 0);
  for (pid_t m : members) ::waitpid(m, nullptr, 0);
  ::close(block[0]);
  if (by_cgroup) {
    ::rmdir(cgroup.c_str());
    engine::remove_sandbox_base(base);
  }
  state.counters["processes"] = static_cast<double>(processes);
  state.counters["leaks_per_audit"] = static_cast<double>(leaks) / static_cast<double>(state.iterations());
}

const Scenario& standard_scenario(const std::string& id) {
  static const suite::Suite s =
      suite::load_suite(kSourceDir + "/scenarios/standard.toml", suite::Placeholders{kBinaryDir, ""});
  for (const auto& sc : s.scenarios)
    if (sc.id() == id) return sc;
  throw std::invalid_argument("no scenario " + id);
}

void bm_scenario_with_population(benchmark::State& state) {
  const auto live = static_cast<std::size_t>(state.range(0));
  if (!population().resize(live)) {
    state.SkipWithError("fork failed");
    return;
  }
  const Scenario& scenario = standard_scenario("fit/setup/sigkill");
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
  double latency_sum = 0;
  for (auto _ : state) {
    const std::int64_t t0 = now_ns();
    auto outcome = supervisor::run_scenario(scenario, seq++, config);
    const std::int64_t t1 = now_ns();
    if (outcome.result.verdict != Verdict::pass) {
      state.SkipWithError(("verdict " + std::string(to_string(outcome.result.verdict)) + " " + outcome.result.error).c_str());
      break;
    }
    latency_sum += outcome.result.reclaim_latency_ms();
    state.SetIterationTime(static_cast<double>(t1 - t0) / 1e9);
  }
  state.counters["reclaim_latency_ms"] = latency_sum / static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
  zygote.reset();  // waits for the last shepherd
  engine::remove_sandbox_base(base);
}

// ---- memory of a long run --------------------------------------------------------

// A "VmRSS:" / "VmHWM:" line of /proc/self/status, in MB.
double status_mb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  return 0;
}

void bm_run_all_memory(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const Scenario& proto = standard_scenario("fit/train_batch#1/sigkill");
  std::vector<Scenario> scenarios(count, proto);
  for (std::size_t i = 0; i < count; ++i) scenarios[i].repeat_index = static_cast<int>(i);
  auto base = engine::make_sandbox_base();
  double growth = 0, peak = 0;
  for (auto _ : state) {
    const double before = status_mb("VmRSS");
    engine::EngineOptions eo;
    eo.jobs = 2;
    eo.repro = [](const Scenario& sc) { return "reclaim run suite.toml --filter " + sc.id(); };
    // A result as rich as a failing real one: hooks, a timeline, three leaks.
    eo.runner = [](const Scenario& sc, std::uint64_t seq, const supervisor::SupervisorConfig&) {
      supervisor::RunOutcome o;
      auto& r = o.result;
      r.scenario = sc;
      r.verdict = seq % 10 == 0 ? Verdict::leak : Verdict::pass;
      r.hooks = {"prepare_data", "setup", "val_dataloader", "train_dataloader", "on_exception"};
      r.timeline = {1, 2, 3, 4, 5, 6, 7, 8};
      r.rank_exit.exited = true;
      r.rank_exit.signal = SIGKILL;
      if (r.verdict == Verdict::leak)
        for (int k = 0; k < 3; ++k)
          r.leaks.push_back({LeakKind::process, 0, fmt::format("process {} (worker_pool) still running", 1000 + k),
                             {{"pid", std::to_string(1000 + k)}, {"cmdline", "fixtures/worker_pool --workers 2"}}});
      return o;
    };
    report::MultiReporter reporter;
    std::FILE* devnull = std::fopen("/dev/null", "w");
    reporter.add(report::make_console_reporter(devnull, {}));
    reporter.add(report::make_json_reporter(base.dir + "/run.json"));
    reporter.add(report::make_junit_reporter(base.dir + "/run.xml"));
    report::RunInfo info;
    info.total = scenarios.size();
    reporter.run_started(info);
    auto summary = engine::run_all(scenarios, eo, reporter);
    reporter.run_finished(summary);
    benchmark::DoNotOptimize(summary);
    growth = status_mb("VmRSS") - before;
    peak = status_mb("VmHWM");
    std::fclose(devnull);
  }
  state.counters["scenarios"] = static_cast<double>(count);
  state.counters["rss_growth_mb"] = growth;
  state.counters["peak_rss_mb"] = peak;
  engine::remove_sandbox_base(base);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // The idle population and the scenario's orphans come back to us.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  timespec res{};
  ::clock_getres(CLOCK_MONOTONIC, &res);
  std::printf("clock_getres(CLOCK_MONOTONIC) = %ld ns\n", res.tv_nsec + res.tv_sec * 1'000'000'000L);
  std::fflush(stdout);

  benchmark::RegisterBenchmark("timing/clock_read", bm_clock_read)->Unit(benchmark::kNanosecond)->MinTime(0.1);
  using Fn = void (*)(benchmark::State&);
  for (auto [name, fn] : {std::pair<const char*, Fn>{"timing/pidfd_wakeup", bm_pidfd_wakeup},
                          std::pair<const char*, Fn>{"timing/inotify_wakeup", bm_inotify_wakeup},
                          std::pair<const char*, Fn>{"channel/round_trip", bm_channel_round_trip}})
    benchmark::RegisterBenchmark(name, fn)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond)
        ->Iterations(200)
        ->Repetitions(3)
        ->ReportAggregatesOnly(true);
  // Ascending: the population only grows until the last case.
  for (int live : {0, 100, 1000, 5000}) {
    benchmark::RegisterBenchmark("audit/process_auditor", bm_process_audit)
        ->Args({live, 0})
        ->Args({live, 1})
        ->ArgNames({"live", "cgroup"})
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->Iterations(10);
    benchmark::RegisterBenchmark("audit/scenario_fit_setup_sigkill", bm_scenario_with_population)
        ->Arg(live)
        ->ArgName("live")
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->Iterations(5);
  }
  benchmark::RegisterBenchmark("memory/run_all", [](benchmark::State& st) {
    population().resize(0);
    bm_run_all_memory(st);
  })
      ->Arg(1'000)
      ->Arg(10'000)
      ->ArgName("scenarios")
      ->Unit(benchmark::kMillisecond)
      ->Iterations(1);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  population().resize(0);
  return 0;
}
