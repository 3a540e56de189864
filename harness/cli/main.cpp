// reclaim: the command line. Parses options (CLI11), loads the suite, hands
// the scenarios to the engine (`run`) or to Google Benchmark (`bench`), maps
// outcomes to exit codes:
//   0 all passed, 1 some scenario failed (bench: or regressed), 2 usage or
//   suite error, 3 harness error, 130/143 interrupted by SIGINT/SIGTERM.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>

#include "cli/bench_command.hpp"
#include "engine/engine.hpp"
#include "reports/reporter.hpp"
#include "suite/duration.hpp"
#include "suite/filter.hpp"
#include "suite/suite.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/zygote.hpp"
#include "sys/fs.hpp"

namespace {

using namespace reclaim;

constexpr int kExitFailed = 1, kExitUsage = 2, kExitHarness = 3;

std::string self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<std::size_t>(n));
  return p.substr(0, p.rfind('/'));
}

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string join_quoted(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : " ") + shell_quote(s);
  return out;
}

struct Options {
  std::string suite_path;
  std::vector<std::string> filters;
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int repeat = 1;
  bool shuffle = false;
  std::uint64_t seed = 0;
  bool seed_given = false;
  std::string grace, timeout, kill_after;
  std::string launcher, shutdown_timeout, collective_timeout;  // multi-rank
  std::string control = "unix";                                // how mpirun's ranks reach the harness
  std::string json, junit;
  bool no_private_tmp = false;
  std::vector<std::string> target;  // after "--"
};

// The options of `reclaim bench` beyond the suite, filter and durations.
struct BenchFlags {
  int iterations = 10;
  int repetitions = 3;
  std::string baseline, plot;
  std::string threshold = "20%";
  std::string min_regression = "1ms";
  std::vector<std::string> benchmark_args;  // --benchmark_*, for Google Benchmark
};

// Loads the suite and applies the command line to it. Exits 2 on bad input.
std::vector<Scenario> load(const Options& o, suite::Suite& s) {
  s = suite::load_suite(o.suite_path, {self_dir(), dir_of(o.suite_path)});
  if (!o.target.empty()) suite::set_target(s, Target{o.target});
  auto filter = suite::Filter::parse_all(o.filters);
  std::optional<std::chrono::milliseconds> grace, timeout, kill_after;
  auto duration = [](const std::string& flag, const std::string& text) {
    auto d = suite::parse_duration(text);
    if (!d) throw CLI::ValidationError(flag, fmt::format("expected a duration like \"500ms\" or \"2s\", got \"{}\"", text));
    return *d;
  };
  if (!o.grace.empty()) grace = duration("--grace", o.grace);
  if (!o.timeout.empty()) timeout = duration("--timeout", o.timeout);
  if (!o.kill_after.empty()) kill_after = duration("--kill-after", o.kill_after);
  std::optional<std::chrono::milliseconds> shutdown, collective;
  if (!o.shutdown_timeout.empty()) shutdown = duration("--shutdown-timeout", o.shutdown_timeout);
  if (!o.collective_timeout.empty()) {
    collective = duration("--collective-timeout", o.collective_timeout);
    if (collective->count() == 0) throw CLI::ValidationError("--collective-timeout", "must be greater than 0");
  }
  std::optional<Launcher> launcher;
  if (!o.launcher.empty()) {
    launcher = parse_launcher(o.launcher);
    if (!launcher)
      throw CLI::ValidationError("--launcher", fmt::format("unknown launcher '{}' (torchrun, lightning-ddp, none, mpirun)",
                                                           o.launcher));
  }
  std::vector<Scenario> out;
  for (int r = 0; r < o.repeat; ++r) {
    for (const auto& sc : s.scenarios) {
      if (!filter.matches(sc.id())) continue;
      Scenario copy = sc;
      copy.repeat_index = r;
      if (grace) copy.expect.grace = *grace;
      if (timeout) copy.expect.timeout = *timeout;
      if (kill_after) copy.expect.kill_after = *kill_after;
      if (shutdown) copy.expect.shutdown_timeout = *shutdown;
      if (collective) copy.expect.collective_timeout = *collective;
      if (launcher) copy.expect.launcher = *launcher;
      out.push_back(std::move(copy));
    }
  }
  return out;
}

// Watches SIGINT/SIGTERM/SIGHUP (blocked in every thread) and turns the first
// one into a readable eventfd that every running scenario polls.
class InterruptWatch {
 public:
  InterruptWatch() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    sigfd_ = ::signalfd(-1, &set, SFD_CLOEXEC);
    abort_ = ::eventfd(0, EFD_CLOEXEC);
    done_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] {
      pollfd p[2] = {{sigfd_, POLLIN, 0}, {done_, POLLIN, 0}};
      while (::poll(p, 2, -1) >= 0 || errno == EINTR) {
        if (p[1].revents) return;
        if (p[0].revents) {
          signalfd_siginfo info{};
          if (::read(sigfd_, &info, sizeof info) == sizeof info) {
            if (signal_ == 0) {
              signal_ = static_cast<int>(info.ssi_signo);
              std::fprintf(stderr, "\nreclaim: %s received: stopping, cleaning up what was started...\n",
                           strsignal(signal_));
            }
            std::uint64_t one = 1;
            (void)!::write(abort_, &one, sizeof one);
          }
        }
      }
    });
  }
  ~InterruptWatch() {
    std::uint64_t one = 1;
    (void)!::write(done_, &one, sizeof one);
    thread_.join();
    ::close(sigfd_);
    ::close(abort_);
    ::close(done_);
  }
  int abort_fd() const { return abort_; }
  int signal() const { return signal_; }

 private:
  int sigfd_ = -1, abort_ = -1, done_ = -1;
  std::atomic<int> signal_{0};
  std::thread thread_;
};

int cmd_list(const Options& o) {
  suite::Suite s;
  for (const auto& sc : load(o, s)) std::printf("%s\n", sc.id().c_str());
  return 0;
}

// What `run` and `bench` need before anything starts: scenarios, and a
// target that exists. Returns 0, or the usage exit code after saying why.
int check_runnable(const Options& o, const std::vector<Scenario>& scenarios) {
  if (scenarios.empty()) {
    std::fprintf(stderr, "reclaim: no scenario of %s matches the filter\n", o.suite_path.c_str());
    return kExitUsage;
  }
  const auto& argv = scenarios.front().target.argv;
  if (argv.empty()) {
    std::fprintf(stderr, "reclaim: %s names no target; give one after --, e.g. -- build/fixtures/worker_pool\n",
                 o.suite_path.c_str());
    return kExitUsage;
  }
  if (!supervisor::resolve_executable(argv.front())) {
    std::fprintf(stderr, "reclaim: the target '%s' is not an executable file%s\n", argv.front().c_str(),
                 argv.front().find('/') == std::string::npos ? " on PATH" : " (relative paths start from the "
                                                                  "current directory)");
    return kExitUsage;
  }
  return 0;
}

// The supervisor set-up shared by `run` and `bench`: the shepherd next to
// this program, and whether scenarios get a private /tmp and /dev/shm (the
// reason they do not goes to `obstacle`). Returns 0 or an exit code.
int configure_supervisor(const Options& o, const Target& target, supervisor::SupervisorConfig& cfg,
                         std::string& obstacle) {
  cfg.shepherd_path = self_dir() + "/reclaim-shepherd";
  if (::access(cfg.shepherd_path.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "reclaim: %s is missing: it is built next to reclaim\n", cfg.shepherd_path.c_str());
    return kExitHarness;
  }
  if (o.no_private_tmp) obstacle = "--no-private-tmp";
  else if (::geteuid() != 0) obstacle = "a mount namespace needs root";
  else obstacle = supervisor::private_tmp_obstacle(target);
  cfg.private_tmp = obstacle.empty();
  cfg.control_tcp = o.control == "tcp";
  return 0;
}

// What a run holds for its scenarios: a fresh sandbox base (directory,
// /dev/shm prefix, cgroup) and the shepherd zygote, both named in the
// supervisor's configuration. Released in that order's reverse: the zygote
// (waiting for the last shepherd and sandbox removal), then the base.
struct RunResources {
  engine::SandboxBase base;
  std::unique_ptr<supervisor::ShepherdZygote> zygote;

  RunResources() = default;
  RunResources(const RunResources&) = delete;
  RunResources& operator=(const RunResources&) = delete;
  ~RunResources() {
    zygote.reset();
    engine::remove_sandbox_base(base);
  }
};

std::unique_ptr<RunResources> open_run(supervisor::SupervisorConfig& cfg, int jobs) {
  auto r = std::make_unique<RunResources>();
  try {
    r->base = engine::make_sandbox_base();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reclaim: %s\n", e.what());
    return nullptr;
  }
  cfg.sandbox_base = r->base.dir;
  cfg.shm_base = r->base.shm_prefix;
  cfg.cgroup_base = r->base.cgroup;
  std::string error;
  r->zygote = supervisor::ShepherdZygote::start(cfg, jobs, error);
  if (!r->zygote)
    std::fprintf(stderr, "reclaim: no shepherd zygote (%s): starting a shepherd per scenario\n", error.c_str());
  cfg.zygote = r->zygote.get();
  return r;
}

int cmd_run(const Options& o, const std::string& argv0) {
  suite::Suite s;
  auto scenarios = load(o, s);
  if (int rc = check_runnable(o, scenarios)) return rc;
  std::uint64_t seed = o.seed_given ? o.seed : std::random_device{}();
  if (o.shuffle) std::shuffle(scenarios.begin(), scenarios.end(), std::mt19937_64(seed));

  engine::EngineOptions eo;
  eo.jobs = std::max(1, o.jobs);
  auto& cfg = eo.supervisor;
  std::string obstacle;
  if (int rc = configure_supervisor(o, scenarios.front().target, cfg, obstacle)) return rc;
  if (!cfg.private_tmp && eo.jobs > 1) {
    // /dev/shm is machine-wide: without a private one per scenario its
    // objects cannot be attributed, so scenarios run one at a time.
    std::fprintf(stderr, "reclaim: no private /tmp and /dev/shm (%s): running scenarios one at a time\n",
                 obstacle.c_str());
    eo.jobs = 1;
  }

  // Reports are opened before anything runs: a bad path is a usage error.
  report::MultiReporter reporter;
  const bool tty = ::isatty(STDOUT_FILENO);
  const char* no_color = std::getenv("NO_COLOR");
  reporter.add(report::make_console_reporter(
      stdout, {tty && !(no_color && *no_color) && std::getenv("TERM") && std::string(std::getenv("TERM")) != "dumb", tty}));
  try {
    if (!o.json.empty()) reporter.add(report::make_json_reporter(o.json));
    if (!o.junit.empty()) reporter.add(report::make_junit_reporter(o.junit));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reclaim: %s\n", e.what());
    return kExitUsage;
  }

  std::string extra;
  if (!o.grace.empty()) extra += " --grace " + shell_quote(o.grace);
  if (!o.timeout.empty()) extra += " --timeout " + shell_quote(o.timeout);
  if (!o.kill_after.empty()) extra += " --kill-after " + shell_quote(o.kill_after);
  if (!o.launcher.empty()) extra += " --launcher " + shell_quote(o.launcher);
  if (!o.shutdown_timeout.empty()) extra += " --shutdown-timeout " + shell_quote(o.shutdown_timeout);
  if (!o.collective_timeout.empty()) extra += " --collective-timeout " + shell_quote(o.collective_timeout);
  if (o.control != "unix") extra += " --control " + shell_quote(o.control);
  if (o.no_private_tmp) extra += " --no-private-tmp";
  std::string target_part = o.target.empty() ? "" : " -- " + join_quoted(o.target);
  eo.repro = [&](const Scenario& sc) {
    return fmt::format("{} run {} --filter {}{}{}", shell_quote(argv0), shell_quote(o.suite_path),
                       shell_quote(sc.id()), extra, target_part);
  };

  InterruptWatch interrupts;
  cfg.abort_fd = interrupts.abort_fd();
  auto resources = open_run(cfg, eo.jobs);
  if (!resources) return kExitHarness;

  report::RunInfo info;
  info.suite_path = o.suite_path;
  info.seed = seed;
  info.shuffled = o.shuffle;
  info.jobs = eo.jobs;
  info.total = scenarios.size();
  info.command = argv0 + " run " + o.suite_path + target_part;
  reporter.run_started(info);
  auto summary = engine::run_all(scenarios, eo, reporter);
  reporter.run_finished(summary);
  resources.reset();

  if (int sig = interrupts.signal()) return 128 + sig;
  if (summary.by_verdict[Verdict::error] > 0) return kExitHarness;
  return summary.failed > 0 ? kExitFailed : 0;
}

// The supervisor set-up of `run`, for one scenario at a time, then Google
// Benchmark. The sandbox base is removed afterwards whatever happened.
int cmd_bench(const Options& o, const BenchFlags& f, const std::string& argv0) {
  suite::Suite s;
  auto scenarios = load(o, s);
  if (int rc = check_runnable(o, scenarios)) return rc;
  cli::BenchOptions bo;
  bo.scenarios = std::move(scenarios);
  bo.iterations = f.iterations;
  bo.repetitions = f.repetitions;
  bo.benchmark_args = f.benchmark_args;
  bo.baseline_path = f.baseline;
  bo.plot_path = f.plot;
  {
    std::string t = f.threshold;
    if (!t.empty() && t.back() == '%') t.pop_back();
    char* end = nullptr;
    const double percent = std::strtod(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size() || !(percent >= 0))
      throw CLI::ValidationError("--threshold", fmt::format("expected a percentage like \"20%\", got \"{}\"", f.threshold));
    bo.policy.threshold = percent / 100;
    auto floor = suite::parse_duration(f.min_regression);
    if (!floor)
      throw CLI::ValidationError("--min-regression",
                                 fmt::format("expected a duration like \"1ms\", got \"{}\"", f.min_regression));
    bo.policy.floor_ms = static_cast<double>(floor->count());
  }

  auto& cfg = bo.supervisor;
  std::string obstacle;
  if (int rc = configure_supervisor(o, bo.scenarios.front().target, cfg, obstacle)) return rc;

  InterruptWatch interrupts;
  cfg.abort_fd = interrupts.abort_fd();
  auto resources = open_run(cfg, 1);
  if (!resources) return kExitHarness;
  const int rc = cli::run_bench(bo, argv0);
  resources.reset();
  if (int sig = interrupts.signal()) return 128 + sig;
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that goes away (`reclaim run ... | head`) must not kill the
  // harness before it has cleaned up: writes then fail with EPIPE instead.
  // The shepherd restores the default for the ranks.
  std::signal(SIGPIPE, SIG_IGN);
  // Everything after the first "--" is the target command, untouched.
  Options o;
  BenchFlags bf;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") {
      o.target.assign(argv + i + 1, argv + argc);
      break;
    }
    args.emplace_back(argv[i]);
  }
  // `bench` hands Google Benchmark's own flags (--benchmark_format=json, ...)
  // to the library untouched; CLI11 sees only reclaim's options.
  if (!args.empty() && args.front() == "bench") {
    for (auto it = args.begin(); it != args.end();) {
      if (it->rfind("--benchmark_", 0) == 0) {
        bf.benchmark_args.push_back(*it);
        it = args.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector

  CLI::App app{
      "reclaim — drives a datamodule through its lifecycle, injects exceptions, signals and rank\n"
      "failures at each stage, and proves from outside the process that child processes, temp\n"
      "files and handles were reclaimed, and how fast.\n\n"
      "  reclaim list scenarios/standard.toml\n"
      "  reclaim run scenarios/standard.toml --filter 'fit/*' -j 2 --json out.json\n"
      "  reclaim run scenarios/standard.toml -- build/fixtures/worker_pool --bug leak-tempfile\n"
      "  reclaim bench scenarios/standard.toml --filter 'fit/train_batch*' --repetitions 5 --plot latency.svg\n\n"
      "Exit codes: 0 all passed, 1 some scenario failed, 2 usage or suite error, 3 harness error,\n"
      "130/143 interrupted by SIGINT/SIGTERM.",
      "reclaim"};
  app.require_subcommand(1);
  app.footer("Scenario ids: ENTRY/none (the success path) and ENTRY/POINT/FAULT, e.g. fit/train_batch#2/sigterm.\n"
             "Run 'reclaim run --help' for the options of a run.");

  auto add_common = [&](CLI::App* sub) {
    sub->add_option("suite", o.suite_path, "Suite file (TOML), e.g. scenarios/standard.toml")->required();
    sub->add_option("--filter", o.filters,
                    "Select scenarios by id, gtest style: 'fit/*:test/*-*/sigkill' (':' separates globs, '-' starts "
                    "the negative ones). Repeatable.");
    sub->add_option("--repeat", o.repeat, "Run each scenario N times")->check(CLI::PositiveNumber);
  };
  auto* list = app.add_subcommand("list", "Print the id of every scenario in a suite, one per line");
  add_common(list);
  auto* run = app.add_subcommand(
      "run", "Run a suite's scenarios and report leaks, contract violations and hangs.\n"
             "Everything after -- replaces the suite's target command.");
  add_common(run);
  run->add_option("-j,--jobs", o.jobs, "Scenarios run at once (default: the number of CPUs)")->check(CLI::PositiveNumber);
  run->add_flag("--shuffle", o.shuffle, "Run scenarios in a random order (the seed is printed)");
  run->add_option("--seed", o.seed, "Seed for --shuffle, to repeat an order")->each([&](const std::string&) {
    o.seed_given = true;
  });
  run->add_option("--grace", o.grace,
                  "How long leftovers may take to disappear after the rank exits (overrides the suite), e.g. 500ms");
  run->add_option("--timeout", o.timeout,
                  "How long the rank may run before it is a hang (overrides the suite), e.g. 10s");
  run->add_option("--kill-after", o.kill_after,
                  "After the timeout, how long SIGTERM may take before SIGKILL (overrides the suite), e.g. 1s");
  run->add_option("--launcher", o.launcher,
                  "Multi-rank: what happens to the other ranks when one fails (overrides the suite):\n"
                  "torchrun (SIGTERM to each survivor's process group, --shutdown-timeout, then SIGKILL),\n"
                  "lightning-ddp (SIGKILL to every survivor), none (survivors must notice on their own),\n"
                  "mpirun (OpenMPI's mpirun starts the ranks and stops them itself)");
  run->add_option("--shutdown-timeout", o.shutdown_timeout,
                  "Multi-rank, torchrun policy: SIGTERM -> SIGKILL for surviving ranks (overrides the suite), e.g. 30s");
  run->add_option("--collective-timeout", o.collective_timeout,
                  "Multi-rank: a rank missing from a collective this long after the first arrived is hung "
                  "(overrides the suite), e.g. 2s");
  run->add_option("--control", o.control,
                  "Multi-rank, mpirun launcher: how the ranks reach the harness: unix (an abstract unix socket, "
                  "default) or tcp (127.0.0.1, the transport ranks on other machines would need)")
      ->check(CLI::IsMember({"unix", "tcp"}));
  run->add_option("--json", o.json, "Write a JSON report to FILE (streamed; complete also after an interruption)");
  run->add_option("--junit", o.junit, "Write a JUnit XML report to FILE (for CI systems)");
  run->add_flag("--no-private-tmp", o.no_private_tmp,
                "Do not give scenarios a private /tmp and /dev/shm (then they run one at a time)");

  auto* bench = app.add_subcommand(
      "bench",
      "Benchmark cleanup latency with Google Benchmark: one benchmark per scenario, each iteration one\n"
      "whole scenario, timed from the fault to everything reclaimed; p50/p90/p99/max of fault -> on_exception,\n"
      "rank exit, last process gone, last temp file gone and all reclaimed. Google Benchmark's own flags\n"
      "(--benchmark_format=json, --benchmark_out=FILE, --benchmark_repetitions=N, --benchmark_filter=REGEX)\n"
      "pass through. Everything after -- replaces the suite's target command. Exit 1 when a scenario does\n"
      "not pass (it is reported as an error, not timed) or regressed against --baseline.");
  bench->add_option("suite", o.suite_path, "Suite file (TOML), e.g. scenarios/standard.toml")->required();
  bench->add_option("--filter", o.filters, "Select scenarios by id, gtest style, as for 'run'. Repeatable.");
  bench->add_option("--iterations", bf.iterations, "Scenario runs per repetition (fixed, never calibrated)")
      ->check(CLI::PositiveNumber);
  bench->add_option("--repetitions", bf.repetitions,
                    "Repetitions per scenario (--benchmark_repetitions=N overrides it)")
      ->check(CLI::PositiveNumber);
  bench->add_option("--baseline", bf.baseline,
                    "A previous --benchmark_format=json/--benchmark_out file: exit 1 when a scenario's p50 fault -> "
                    "all reclaimed regressed");
  bench->add_option("--threshold", bf.threshold, "Regression threshold for --baseline, e.g. 20% (default)");
  bench->add_option("--min-regression", bf.min_regression,
                    "A regression must also exceed this absolute growth (default 1ms), so noise on sub-ms "
                    "latencies does not flag");
  bench->add_option("--plot", bf.plot, "Draw the latency distribution of each scenario into FILE.svg");
  bench->add_option("--grace", o.grace, "As for 'run' (overrides the suite)");
  bench->add_option("--timeout", o.timeout, "As for 'run' (overrides the suite)");
  bench->add_option("--kill-after", o.kill_after, "As for 'run' (overrides the suite)");
  bench->add_option("--launcher", o.launcher, "As for 'run' (overrides the suite)");
  bench->add_option("--control", o.control, "As for 'run'")->check(CLI::IsMember({"unix", "tcp"}));
  bench->add_option("--shutdown-timeout", o.shutdown_timeout, "As for 'run' (overrides the suite)");
  bench->add_option("--collective-timeout", o.collective_timeout, "As for 'run' (overrides the suite)");
  bench->add_flag("--no-private-tmp", o.no_private_tmp, "As for 'run'");

  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  try {
    if (*list) return cmd_list(o);
    if (*bench) return cmd_bench(o, bf, argv[0]);
    return cmd_run(o, argv[0]);
  } catch (const suite::SuiteError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return kExitUsage;
  } catch (const CLI::Error& e) {
    std::fprintf(stderr, "reclaim: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reclaim: harness error: %s\n", e.what());
    return kExitHarness;
  }
}
