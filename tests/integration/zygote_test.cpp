// The shepherd zygote (supervisor/zygote.hpp) on real processes: a scenario
// gets the same result whether its shepherd was forked by the zygote or
// exec'd anew, requests beyond the spares are still served, a bad request
// ends on its channel instead of hanging, and nothing of the zygote — spares,
// shepherds, sandboxes — outlives it.
#include <gtest/gtest.h>
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"
#include "model/model.hpp"
#include "suite/suite.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/zygote.hpp"
#include "sys/pidfd.hpp"
#include "sys/proc.hpp"

namespace reclaim {
namespace {

const std::string kSource = RECLAIM_SOURCE_DIR;
const std::string kBinary = RECLAIM_BINARY_DIR;

const suite::Suite& load(const std::string& name) {
  static std::map<std::string, suite::Suite> suites;
  auto it = suites.find(name);
  if (it == suites.end())
    it = suites.emplace(name, suite::load_suite(kSource + "/scenarios/" + name, suite::Placeholders{kBinary, ""})).first;
  return it->second;
}

Scenario scenario(const std::string& suite_name, const std::string& id) {
  for (const auto& sc : load(suite_name).scenarios)
    if (sc.id() == id) return sc;
  ADD_FAILURE() << "no scenario " << id << " in " << suite_name;
  return {};
}

// A run's resources, as `reclaim run` holds them, with or without a zygote.
struct RunFixture {
  engine::SandboxBase base = engine::make_sandbox_base();
  supervisor::SupervisorConfig cfg;
  std::unique_ptr<supervisor::ShepherdZygote> zygote;
  std::uint64_t seq = 0;

  explicit RunFixture(bool with_zygote, int spares = 1) {
    cfg.shepherd_path = kBinary + "/reclaim-shepherd";
    cfg.sandbox_base = base.dir;
    cfg.shm_base = base.shm_prefix;
    cfg.cgroup_base = base.cgroup;
    cfg.private_tmp = ::geteuid() == 0;
    if (with_zygote) {
      std::string error;
      zygote = supervisor::ShepherdZygote::start(cfg, spares, error);
      EXPECT_TRUE(zygote) << error;
      cfg.zygote = zygote.get();
    }
  }
  ~RunFixture() {
    zygote.reset();
    engine::remove_sandbox_base(base);
  }
  ScenarioResult run(const Scenario& sc) { return supervisor::run_scenario(sc, seq++, cfg).result; }
};

// Whether the supervisor had to start the shepherd itself.
bool fell_back(const ScenarioResult& r) {
  return std::any_of(r.notes.begin(), r.notes.end(),
                     [](const std::string& n) { return n.find("shepherd zygote took no request") != std::string::npos; });
}

std::vector<std::string> leak_kinds(const ScenarioResult& r) {
  std::vector<std::string> kinds;
  for (const auto& l : r.leaks) kinds.emplace_back(to_string(l.kind));
  std::sort(kinds.begin(), kinds.end());
  return kinds;
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string n = e->d_name; n != "." && n != "..") out.push_back(n);
    ::closedir(d);
  }
  return out;
}

TEST(ZygoteTest, ShepherdFromTheZygoteGivesTheSameResultsAsAnExecdOne) {
  std::vector<Scenario> cases;
  for (const char* id : {"fit/none", "fit/setup/sigkill", "fit/train_batch#1/exception", "fit/setup/pg-sigterm",
                         "fit/train_batch#1/worker-sigkill"})
    cases.push_back(scenario("standard.toml", id));
  for (const char* id : {"fit/setup/crash/ws4/r3", "fit/train_batch#1/exception/ws4/r0"})
    cases.push_back(scenario("ranks.toml", id));
  // A variant that leaks: the leak is found the same way by both.
  Scenario leaky = scenario("standard.toml", "fit/setup/exception");
  leaky.target.argv = {kBinary + "/fixtures/worker_pool", "--bug", "leak-tempfile"};
  cases.push_back(leaky);

  RunFixture forked(true), execd(false);
  for (const auto& sc : cases) {
    SCOPED_TRACE(sc.id() + " " + sc.target.argv.back());
    const ScenarioResult a = forked.run(sc), b = execd.run(sc);
    EXPECT_EQ(a.verdict, b.verdict) << a.error << " | " << b.error;
    EXPECT_EQ(leak_kinds(a), leak_kinds(b));
    EXPECT_EQ(a.hooks, b.hooks);
    EXPECT_EQ(a.ranks.size(), b.ranks.size());
    EXPECT_TRUE(a.error.empty()) << a.error;
    EXPECT_FALSE(fell_back(a)) << "the zygote served it";
  }
  EXPECT_EQ(forked.run(leaky).verdict, Verdict::leak);
  EXPECT_EQ(forked.run(cases.front()).verdict, Verdict::pass);
}

TEST(ZygoteTest, RequestsBeyondTheSparesAreServed) {
  // One spare, four scenarios at a time: the others are served while the
  // spare is taken (by the zygote itself, or by the next spare).
  RunFixture r(true, 1);
  const Scenario sc = scenario("standard.toml", "fit/setup/sigterm");
  std::atomic<int> passed{0}, seq{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        auto out = supervisor::run_scenario(sc, static_cast<std::uint64_t>(seq++), r.cfg);
        if (out.result.verdict == Verdict::pass && !fell_back(out.result)) ++passed;
        else ADD_FAILURE() << to_string(out.result.verdict) << ": " << out.result.error;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(passed, 20);
}

TEST(ZygoteTest, NothingOfTheZygoteOutlivesIt) {
  auto r = std::make_unique<RunFixture>(true, 2);
  const std::string base = r->base.dir;
  // Processes killed outright are the last to leave their cgroup.
  for (int k = 0; k < 4; ++k)
    for (const char* id : {"fit/none", "fit/setup/sigkill", "fit/train_batch#1/pg-sigterm", "fit/val_batch#1/sigint"})
      EXPECT_EQ(r->run(scenario("standard.toml", id)).verdict, Verdict::pass);
  // The zygote and everything below it now: its spares, and shepherds that
  // may still be on their way out.
  std::vector<sys::Pidfd> procs;
  const int zygote = r->zygote->pid();
  const auto table = sys::scan_processes();
  for (int pid : sys::descendants(table, zygote))
    if (auto pfd = sys::Pidfd::open(pid)) procs.push_back(std::move(*pfd));
  if (auto pfd = sys::Pidfd::open(zygote)) procs.push_back(std::move(*pfd));
  EXPECT_GE(procs.size(), 3u) << "the zygote and its two spares";

  r->zygote.reset();
  for (const auto& p : procs) EXPECT_TRUE(p.exited()) << "pid " << p.pid() << " outlived the zygote";
  EXPECT_EQ(dir_entries(base), std::vector<std::string>{}) << "every sandbox was removed";
  if (!r->base.cgroup.empty()) {
    std::vector<std::string> cgroups;
    for (const auto& e : dir_entries(r->base.cgroup))
      if (e.rfind("cgroup.", 0) != 0 && e.find('.') == std::string::npos) cgroups.push_back(e);
    EXPECT_EQ(cgroups, std::vector<std::string>{}) << "every scenario's cgroup was removed";
  }
  r.reset();
}

TEST(ZygoteTest, ScenariosStillRunAfterTheZygoteIsKilled) {
  RunFixture r(true, 2);
  const Scenario sc = scenario("standard.toml", "fit/setup/sigkill");
  EXPECT_EQ(r.run(sc).verdict, Verdict::pass);
  auto zygote = sys::Pidfd::open(r.zygote->pid());
  ASSERT_TRUE(zygote);
  std::vector<sys::Pidfd> spares;
  for (int pid : sys::descendants(sys::scan_processes(), r.zygote->pid()))
    if (auto pfd = sys::Pidfd::open(pid)) spares.push_back(std::move(*pfd));
  ASSERT_FALSE(zygote->send_signal(SIGKILL));
  ASSERT_TRUE(zygote->wait_exit(std::chrono::seconds(10)));
  // Its waiting spares die with it (PR_SET_PDEATHSIG); a finished scenario's
  // shepherd may still be on its way out.
  for (const auto& p : spares) EXPECT_TRUE(p.wait_exit(std::chrono::seconds(10))) << "pid " << p.pid();

  for (int k = 0; k < 3; ++k) {
    const ScenarioResult res = r.run(sc);
    EXPECT_EQ(res.verdict, Verdict::pass) << res.error;
    EXPECT_TRUE(fell_back(res));
  }
}

TEST(ZygoteTest, BadRequestEndsOnItsChannel) {
  RunFixture r(true, 1);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  EXPECT_EQ(r.zygote->request("/", {"reclaim-shepherd"}, {}, {devnull, devnull}),
            std::make_error_code(std::errc::invalid_argument))
      << "a channel, stdin and stdout are required";

  // No command after the options: the shepherd says so and ends; the channel
  // reaches EOF instead of leaving the supervisor waiting.
  int chan[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan), 0);
  ASSERT_FALSE(r.zygote->request("/", {"reclaim-shepherd", "--ranks", "1"}, {}, {chan[1], devnull, devnull}));
  ::close(chan[1]);
  std::vector<std::string> packets;
  for (;;) {
    pollfd p{chan[0], POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "the channel stayed open";
    char buf[512];
    ssize_t n = ::recv(chan[0], buf, sizeof buf, 0);
    if (n <= 0) break;
    packets.emplace_back(buf, static_cast<std::size_t>(n));
  }
  ASSERT_FALSE(packets.empty());
  EXPECT_EQ(packets.front().rfind("STARTED ", 0), 0u) << packets.front();
  ::close(chan[0]);

  // No command line at all: refused on the channel, not dropped in silence.
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan), 0);
  ASSERT_FALSE(r.zygote->request("/", {}, {}, {chan[1], devnull, devnull}));
  ::close(chan[1]);
  {
    pollfd p{chan[0], POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "the channel stayed silent";
    char buf[512];
    ssize_t n = ::recv(chan[0], buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)).rfind("SPAWNFAIL ", 0), 0u);
  }
  ::close(chan[0]);
  ::close(devnull);

  // The zygote still serves the next scenario.
  EXPECT_EQ(r.run(scenario("standard.toml", "fit/none")).verdict, Verdict::pass);
}

}  // namespace
}  // namespace reclaim
