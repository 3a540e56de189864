// Protocol-level tests of the C++ probe, the driver and the worker_pool
// fixture. The test plays the harness itself: a socketpair, a rank spawned
// with RECLAIM_CONTROL=fd:N, and the reclaim/1 conversation by hand — so these
// tests pin down exactly what a rank says and when, independent of the engine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <optional>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

#include "probe/probe.hpp"
#include "protocol/wire.hpp"

extern char** environ;

namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace reclaim;

constexpr int kDeadlineMs = 10000;

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

int pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int pidfd, int signo) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
}

// Polls `fd` for readability until the deadline; true when readable.
bool wait_readable(int fd, std::int64_t deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, deadline - now_ms())));
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  for (pid_t c; in >> c;) out.push_back(c);
  return out;
}

// Start time (clock ticks since boot) of a process: field 22 of /proc/PID/stat.
unsigned long long start_time_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return std::stoull(field);
  return 0;
}

std::size_t fd_count(pid_t pid) { return list_dir("/proc/" + std::to_string(pid) + "/fd").size(); }

// Lines of /proc/locks held by `pid` (flock and POSIX locks).
std::size_t locks_held_by(pid_t pid) {
  std::ifstream in("/proc/locks");
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, cls, mode, type, p;
    if (f >> id >> cls >> mode >> type >> p && p == std::to_string(pid)) ++n;
  }
  return n;
}

// What the rank looked like from outside at an AUDIT.
struct AuditSnapshot {
  std::string label;
  std::size_t fds = 0;
  std::size_t children = 0;
  std::size_t locks = 0;
};

struct Transcript {
  pid_t hello_pid = 0;
  std::string probe;
  std::size_t baseline_fds = 0;
  std::vector<std::string> hooks;
  std::vector<std::string> ats;  // "fit train_batch#2"
  std::vector<AuditSnapshot> audits;
  std::vector<wire::Event> events;
  std::optional<int> bye;
  bool channel_eof = false;
};

struct ExitInfo {
  bool exited = false;
  int code = -1;
  int signal = 0;
};

// A rank spawned by the test, playing the harness. Owns the process: the
// destructor kills the rank if it is still running (through its pidfd).
class FakeHarness {
 public:
  FakeHarness(std::vector<std::string> argv, std::vector<std::string> extra_env = {}, bool connect = true) {
    char tmpl[] = "/tmp/reclaim-driver-test-XXXXXX";
    tmpdir_ = mkdtemp(tmpl);
    int sv[2] = {-1, -1};
    if (connect) {
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
      channel_ = sv[0];
    }
    // Everything the child needs is built before fork: only async-signal-safe
    // calls between fork and exec.
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view v(*e);
      if (v.substr(0, 8) == "RECLAIM_" || v.substr(0, 7) == "TMPDIR=" || v.substr(0, 11) == "LOCAL_RANK=") continue;
      env.emplace_back(v);
    }
    env.push_back("TMPDIR=" + tmpdir_);
    if (connect) env.push_back("RECLAIM_CONTROL=fd:" + std::to_string(sv[1]));
    for (auto& e : extra_env) env.push_back(e);
    std::vector<char*> cargv, cenv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    for (auto& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    const int rank_end = sv[1];

    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      if (rank_end >= 0) fcntl(rank_end, F_SETFD, 0);
      execve(cargv[0], cargv.data(), cenv.data());
      _exit(127);
    }
    // The pidfd is taken before anyone can reap the child: no PID reuse.
    pidfd_ = pidfd_open(pid_);
    if (rank_end >= 0) close(rank_end);
  }

  ~FakeHarness() {
    if (!reaped_) {
      pidfd_send_signal(pidfd_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (channel_ >= 0) close(channel_);
    if (pidfd_ >= 0) close(pidfd_);
    for (auto& n : list_dir(tmpdir_)) unlink((tmpdir_ + "/" + n).c_str());
    rmdir(tmpdir_.c_str());
  }

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_; }
  const std::string& tmpdir() const { return tmpdir_; }

  void send(const wire::Message& m) {
    std::string line = wire::encode(m);
    ::send(channel_, line.data(), line.size(), MSG_NOSIGNAL);
  }

  // The next message, or nullopt at EOF / deadline.
  std::optional<wire::Message> receive(std::int64_t deadline) {
    for (;;) {
      if (auto line = in_.next()) return wire::decode(*line);
      if (!wait_readable(channel_, deadline)) return std::nullopt;
      char buf[4096];
      ssize_t n = recv(channel_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      in_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }

  using AtHandler = std::function<wire::Message(FakeHarness&, const wire::At&)>;

  // Plays the whole conversation: HELLO → WELCOME, ARM…, GO; answers every AT
  // with `on_at` (default GO) and every AUDIT with AUDITED 0 after taking a
  // snapshot; returns when the channel closes.
  Transcript converse(const std::vector<wire::Arm>& arms, const AtHandler& on_at = {}) {
    Transcript t;
    const std::int64_t deadline = now_ms() + kDeadlineMs;
    auto hello = receive(deadline);
    if (!hello || !std::holds_alternative<wire::Hello>(*hello)) {
      ADD_FAILURE() << "no HELLO from the rank";
      return t;
    }
    const auto& h = std::get<wire::Hello>(*hello);
    EXPECT_EQ(h.version, wire::kVersion);
    t.hello_pid = static_cast<pid_t>(h.pid);
    t.probe = h.probe;
    t.baseline_fds = fd_count(pid_);
    send(wire::Welcome{std::string(wire::kVersion)});
    for (const auto& a : arms) send(a);
    send(wire::Go{});
    while (auto m = receive(deadline)) {
      if (auto* hook = std::get_if<wire::HookEntered>(&*m)) {
        t.hooks.push_back(hook->name);
      } else if (auto* at = std::get_if<wire::At>(&*m)) {
        t.ats.push_back(at->entry + " " + at->point);
        send(on_at ? on_at(*this, *at) : wire::Message(wire::Go{}));
      } else if (auto* audit = std::get_if<wire::AuditRequest>(&*m)) {
        t.audits.push_back({audit->label, fd_count(pid_), children_of(pid_).size(), locks_held_by(pid_)});
        send(wire::Audited{0});
      } else if (auto* e = std::get_if<wire::Event>(&*m)) {
        t.events.push_back(*e);
      } else if (auto* b = std::get_if<wire::Bye>(&*m)) {
        t.bye = b->code;
      }
    }
    t.channel_eof = now_ms() < deadline;
    return t;
  }

  ExitInfo wait_exit() {
    ExitInfo info;
    if (!wait_readable(pidfd_, now_ms() + kDeadlineMs)) return info;
    siginfo_t si{};
    if (waitid(P_PIDFD, static_cast<id_t>(pidfd_), &si, WEXITED) != 0) return info;
    reaped_ = true;
    info.exited = true;
    if (si.si_code == CLD_EXITED) {
      info.code = si.si_status;
    } else {
      info.signal = si.si_status;
    }
    return info;
  }

 private:
  std::string tmpdir_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int channel_ = -1;
  bool reaped_ = false;
  wire::LineBuffer in_;
};

std::vector<std::string> worker_pool(std::vector<std::string> args) {
  args.insert(args.begin(), RECLAIM_WORKER_POOL);
  return args;
}

std::vector<std::string> expected_hooks(const std::string& entry) {
  if (entry == "fit")
    return {"prepare_data", "setup", "val_dataloader", "train_dataloader", "state_dict", "teardown"};
  return {"prepare_data", "setup", entry == "validate" ? "val_dataloader" : entry + "_dataloader", "teardown"};
}

std::size_t count(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), x));
}

// The rank's own clean state after a hook that should have released everything.
void expect_clean_audit(const Transcript& t, const std::string& label) {
  ASSERT_EQ(t.audits.size(), 1u);
  EXPECT_EQ(t.audits[0].label, label);
  EXPECT_EQ(t.audits[0].fds, t.baseline_fds) << "descriptors beyond the HELLO baseline";
  EXPECT_EQ(t.audits[0].children, 0u) << "children left alive or unreaped";
  EXPECT_EQ(t.audits[0].locks, 0u) << "locks still held";
}

class HookOrderTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HookOrderTest, FollowsLightningAndCleansUpInTeardown) {
  const std::string entry = GetParam();
  FakeHarness rank(worker_pool({"--entry", entry}));
  Transcript t = rank.converse({});
  ExitInfo exit = rank.wait_exit();

  EXPECT_EQ(t.hello_pid, rank.pid());
  EXPECT_EQ(t.probe, "cpp");
  EXPECT_THAT(t.hooks, ElementsAreArray(expected_hooks(entry)));
  EXPECT_THAT(t.ats, IsEmpty()) << "nothing was armed";
  expect_clean_audit(t, "after-teardown");
  EXPECT_EQ(t.bye, 0);
  EXPECT_TRUE(t.channel_eof);
  EXPECT_TRUE(exit.exited);
  EXPECT_EQ(exit.code, 0);
  EXPECT_EQ(exit.signal, 0);
  EXPECT_THAT(list_dir(rank.tmpdir()), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(DriverProtocolTest, HookOrderTest, ::testing::Values("fit", "validate", "test", "predict"));

TEST(DriverProtocolTest, EntryComesFromTheEnvironmentWhenNoFlagIsGiven) {
  FakeHarness rank(worker_pool({}), {"RECLAIM_ENTRY=predict"});
  Transcript t = rank.converse({});
  EXPECT_THAT(t.hooks, ElementsAreArray(expected_hooks("predict")));
  EXPECT_EQ(rank.wait_exit().code, 0);
}

TEST(DriverProtocolTest, PrepareDataRunsOnlyOnLocalRankZero) {
  FakeHarness rank(worker_pool({"--entry", "test"}), {"LOCAL_RANK=1"});
  Transcript t = rank.converse({});
  EXPECT_THAT(t.hooks, ElementsAre("setup", "test_dataloader", "teardown"));
  EXPECT_EQ(rank.wait_exit().code, 0);
}

TEST(DriverProtocolTest, RaiseRunsOnExceptionOnceAndNoTeardown) {
  FakeHarness rank(worker_pool({"--entry", "fit"}));
  Transcript t = rank.converse({wire::Arm{"fit", "train_batch#2"}}, [](FakeHarness&, const wire::At&) {
    return wire::Message(wire::Raise{"RuntimeError", "injected failure"});
  });
  ExitInfo exit = rank.wait_exit();

  EXPECT_THAT(t.ats, ElementsAre("fit train_batch#2"));
  EXPECT_THAT(t.hooks, ElementsAre("prepare_data", "setup", "val_dataloader", "train_dataloader", "on_exception"));
  EXPECT_EQ(count(t.hooks, "teardown"), 0u);
  expect_clean_audit(t, "after-on_exception");
  ASSERT_FALSE(t.events.empty());
  EXPECT_EQ(t.events[0].name, "error");
  EXPECT_EQ(t.events[0].text, "injected failure");
  EXPECT_EQ(t.bye, 1);
  EXPECT_EQ(exit.code, 1);
  EXPECT_THAT(list_dir(rank.tmpdir()), IsEmpty());
}

TEST(DriverProtocolTest, FailureInTeardownPointStillGoesToOnException) {
  FakeHarness rank(worker_pool({"--entry", "validate"}));
  Transcript t = rank.converse({wire::Arm{"validate", "teardown"}}, [](FakeHarness&, const wire::At&) {
    return wire::Message(wire::Raise{"RuntimeError", "late"});
  });
  // teardown was entered before the fault; its body did not run; on_exception cleaned up.
  EXPECT_THAT(t.hooks, ElementsAre("prepare_data", "setup", "val_dataloader", "teardown", "on_exception"));
  expect_clean_audit(t, "after-on_exception");
  EXPECT_EQ(rank.wait_exit().code, 1);
}

TEST(DriverProtocolTest, SigtermIsGracefulThenTheRankDiesBySigterm) {
  FakeHarness rank(worker_pool({"--entry", "fit"}));
  Transcript t = rank.converse({wire::Arm{"fit", "val_batch#1"}}, [](FakeHarness& h, const wire::At&) {
    // As the harness does: the signal first, then GO.
    EXPECT_EQ(pidfd_send_signal(h.pidfd(), SIGTERM), 0);
    return wire::Message(wire::Go{});
  });
  ExitInfo exit = rank.wait_exit();

  EXPECT_THAT(t.ats, ElementsAre("fit val_batch#1"));
  EXPECT_THAT(t.hooks, ElementsAre("prepare_data", "setup", "val_dataloader", "on_exception"));
  expect_clean_audit(t, "after-on_exception");
  EXPECT_EQ(t.bye, std::nullopt) << "a signalled rank dies by the signal, without BYE";
  EXPECT_TRUE(exit.exited);
  EXPECT_EQ(exit.signal, SIGTERM);
  EXPECT_THAT(list_dir(rank.tmpdir()), IsEmpty());
}

TEST(DriverProtocolTest, ProcessGroupSigintKillsWorkersAndTheRankStillCleansUp) {
  FakeHarness rank(worker_pool({"--entry", "test"}));
  Transcript t = rank.converse({wire::Arm{"test", "test_batch#1"}}, [](FakeHarness& h, const wire::At&) {
    EXPECT_EQ(kill(-h.pid(), SIGINT), 0);  // the rank runs in its own process group
    return wire::Message(wire::Go{});
  });
  ExitInfo exit = rank.wait_exit();
  EXPECT_EQ(count(t.hooks, "on_exception"), 1u);
  EXPECT_EQ(count(t.hooks, "teardown"), 0u);
  expect_clean_audit(t, "after-on_exception");
  EXPECT_EQ(exit.signal, SIGINT);
  EXPECT_THAT(list_dir(rank.tmpdir()), IsEmpty());
}

TEST(DriverProtocolTest, KeyboardInterruptDirectiveEndsBySigint) {
  FakeHarness rank(worker_pool({"--entry", "predict"}));
  Transcript t = rank.converse({wire::Arm{"predict", "setup"}}, [](FakeHarness&, const wire::At&) {
    return wire::Message(wire::Raise{"KeyboardInterrupt", "ctrl-c"});
  });
  EXPECT_THAT(t.hooks, ElementsAre("prepare_data", "setup", "on_exception"));
  expect_clean_audit(t, "after-on_exception");
  EXPECT_EQ(rank.wait_exit().signal, SIGINT);
}

TEST(DriverProtocolTest, UnarmedBatchesProduceNoAt) {
  FakeHarness rank(worker_pool({"--entry", "fit"}));
  // Armed: one batch of this entry, a batch of another entry, a batch that never comes.
  Transcript t = rank.converse(
      {wire::Arm{"fit", "train_batch#3"}, wire::Arm{"validate", "val_batch#1"}, wire::Arm{"fit", "train_batch#99"}});
  EXPECT_THAT(t.ats, ElementsAre("fit train_batch#3"));
  EXPECT_EQ(t.bye, 0);
  EXPECT_EQ(rank.wait_exit().code, 0);
}

TEST(DriverProtocolTest, ValidationBatchesContinueTheSanityCount) {
  FakeHarness rank(worker_pool({"--entry", "fit", "--sanity-steps", "2", "--val-batches", "3"}));
  Transcript t = rank.converse({wire::Arm{"fit", "val_batch#2"}, wire::Arm{"fit", "val_batch#3"},
                                wire::Arm{"fit", "val_batch#5"}, wire::Arm{"fit", "val_batch#6"},
                                wire::Arm{"fit", "train_batch#4"}, wire::Arm{"fit", "train_batch#5"}});
  EXPECT_THAT(t.ats, ElementsAre("fit val_batch#2", "fit train_batch#4", "fit val_batch#3", "fit val_batch#5"));
  EXPECT_EQ(rank.wait_exit().code, 0);
}

TEST(DriverProtocolTest, KilledWorkerSurfacesAsLoaderError) {
  FakeHarness rank(worker_pool({"--entry", "test"}));
  pid_t victim = 0;
  Transcript t = rank.converse({wire::Arm{"test", "test_batch#1"}}, [&](FakeHarness& h, const wire::At&) {
    // The youngest child of the rank: the last worker the loader started.
    auto kids = children_of(h.pid());
    EXPECT_EQ(kids.size(), 3u) << "janitor + 2 workers";
    victim = *std::max_element(kids.begin(), kids.end(), [](pid_t a, pid_t b) {
      return start_time_of(a) < start_time_of(b) || (start_time_of(a) == start_time_of(b) && a < b);
    });
    int pidfd = pidfd_open(victim);
    EXPECT_EQ(pidfd_send_signal(pidfd, SIGKILL), 0);
    EXPECT_TRUE(wait_readable(pidfd, now_ms() + kDeadlineMs)) << "the worker did not die";
    close(pidfd);
    return wire::Message(wire::Go{});
  });
  ExitInfo exit = rank.wait_exit();

  EXPECT_THAT(t.hooks, ElementsAre("prepare_data", "setup", "test_dataloader", "on_exception"));
  ASSERT_FALSE(t.events.empty());
  EXPECT_THAT(t.events[0].text, HasSubstr("DataLoader worker (pid " + std::to_string(victim) + ") is killed by signal"));
  expect_clean_audit(t, "after-on_exception");
  EXPECT_EQ(exit.code, 1);
  EXPECT_THAT(list_dir(rank.tmpdir()), IsEmpty());
}

TEST(DriverProtocolTest, SigkilledRankLeavesNothingBehind) {
  // Orphans of the killed rank re-parent to us, so we can wait for and reap them.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  FakeHarness rank(worker_pool({"--entry", "fit"}));
  std::vector<int> descendants;
  std::vector<pid_t> descendant_pids;
  Transcript t = rank.converse({wire::Arm{"fit", "train_batch#1"}}, [&](FakeHarness& h, const wire::At&) {
    for (pid_t c : children_of(h.pid())) {
      descendant_pids.push_back(c);
      descendants.push_back(pidfd_open(c));
    }
    EXPECT_EQ(pidfd_send_signal(h.pidfd(), SIGKILL), 0);
    return wire::Message(wire::Go{});
  });
  EXPECT_EQ(rank.wait_exit().signal, SIGKILL);
  EXPECT_EQ(descendants.size(), 5u) << "janitor + 2 val workers + 2 train workers";
  // Workers die by PDEATHSIG; the janitor sees EOF, removes the files, exits.
  const std::int64_t deadline = now_ms() + kDeadlineMs;
  for (std::size_t i = 0; i < descendants.size(); ++i) {
    EXPECT_TRUE(wait_readable(descendants[i], deadline)) << "descendant " << descendant_pids[i] << " survived";
    waitpid(descendant_pids[i], nullptr, WNOHANG);
    close(descendants[i]);
  }
  EXPECT_THAT(list_dir(rank.tmpdir()), IsEmpty());
  struct stat st {};
  EXPECT_NE(stat(("/dev/shm/worker_pool-" + std::to_string(rank.pid())).c_str(), &st), 0);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST(DriverProtocolTest, ExitDirectiveLeavesWithoutCleanupHooks) {
  FakeHarness rank(worker_pool({"--entry", "validate"}));
  Transcript t = rank.converse({wire::Arm{"validate", "prepare_data"}},
                               [](FakeHarness&, const wire::At&) { return wire::Message(wire::Exit{7}); });
  EXPECT_THAT(t.hooks, ElementsAre("prepare_data"));
  EXPECT_THAT(t.audits, IsEmpty());
  EXPECT_EQ(rank.wait_exit().code, 7);
}

TEST(DriverProtocolTest, BrokenVariantIsVisibleAtTheAudit) {
  // skip-on-exception leaves the janitor, its fds and the flock: the audit this
  // test takes must see them, or the clean-audit checks above prove nothing.
  FakeHarness rank(worker_pool({"--entry", "fit", "--bug", "skip-on-exception"}));
  Transcript t = rank.converse({wire::Arm{"fit", "setup"}}, [](FakeHarness&, const wire::At&) {
    return wire::Message(wire::Raise{"RuntimeError", "boom"});
  });
  ASSERT_EQ(t.audits.size(), 1u);
  EXPECT_GT(t.audits[0].fds, t.baseline_fds);
  EXPECT_EQ(t.audits[0].children, 1u);
  EXPECT_EQ(t.audits[0].locks, 1u);
  EXPECT_EQ(rank.wait_exit().code, 1);
}

TEST(DriverProtocolTest, UnknownBugIsAConfigurationError) {
  FakeHarness rank(worker_pool({"--bug", "no-such-bug"}));
  Transcript t = rank.converse({});
  EXPECT_THAT(t.hooks, IsEmpty());
  EXPECT_EQ(t.bye, 2);
  EXPECT_EQ(rank.wait_exit().code, 2);
}

TEST(DriverProtocolTest, WithoutControlChannelTheProbeIsInactive) {
  FakeHarness rank(worker_pool({"--entry", "fit"}), {}, /*connect=*/false);
  ExitInfo exit = rank.wait_exit();
  EXPECT_EQ(exit.code, 0);
  EXPECT_THAT(list_dir(rank.tmpdir()), IsEmpty());
}

TEST(DriverProtocolTest, HostRunsTheModuleFromASharedLibrary) {
  const std::string bin = RECLAIM_BINARY_DIR;
  FakeHarness rank({bin + "/reclaim-host", bin + "/fixtures/libworker_pool_module.so", "--entry", "fit"});
  Transcript t = rank.converse({wire::Arm{"fit", "train_batch#1"}});
  EXPECT_THAT(t.hooks, ElementsAreArray(expected_hooks("fit")));
  EXPECT_THAT(t.ats, ElementsAre("fit train_batch#1"));
  expect_clean_audit(t, "after-teardown");
  EXPECT_EQ(t.bye, 0);
  EXPECT_EQ(rank.wait_exit().code, 0);
  EXPECT_THAT(list_dir(rank.tmpdir()), IsEmpty());
}

TEST(DriverProtocolTest, HostRejectsAMissingLibraryOrFactory) {
  const std::string bin = RECLAIM_BINARY_DIR;
  FakeHarness missing({bin + "/reclaim-host", bin + "/fixtures/no-such-module.so"}, {}, false);
  EXPECT_EQ(missing.wait_exit().code, 2);
  FakeHarness no_factory({bin + "/reclaim-host", "libm.so.6"}, {}, false);
  EXPECT_EQ(no_factory.wait_exit().code, 2);
}

// ---- the probe alone, in-process ---------------------------------------------------------

// Both ends of a control channel: the probe's and the harness's.
struct Channel {
  int probe_end = -1;
  int harness_end = -1;
  Channel() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    probe_end = sv[0];
    harness_end = sv[1];
  }
  ~Channel() {
    if (harness_end >= 0) close(harness_end);
  }
  void write(std::string_view text) const { ::send(harness_end, text.data(), text.size(), MSG_NOSIGNAL); }
  // Everything the probe sent so far (non-blocking).
  std::string drain() const {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = recv(harness_end, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return out;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
};

TEST(ProbeTest, CountsBatchesAndSpeaksOnlyAtArmedPoints) {
  Channel ch;
  Probe probe(ch.probe_end, 3);
  ch.write("WELCOME reclaim/1\nARM fit train_batch#2\nARM fit setup\nGO\n");
  probe.hello();
  EXPECT_EQ(ch.drain(), "HELLO reclaim/1 " + std::to_string(getpid()) + " 3 cpp\n");
  EXPECT_TRUE(probe.armed("fit", "train_batch#2"));

  EXPECT_EQ(probe.at("fit", "prepare_data").kind, DirectiveKind::go);
  EXPECT_EQ(probe.at("fit", "train_batch").kind, DirectiveKind::go);  // #1: not armed
  EXPECT_EQ(ch.drain(), "") << "an unarmed point sends nothing";

  ch.write("RAISE RuntimeError disk on fire\n");
  Directive d = probe.at("fit", "train_batch");  // #2: armed
  EXPECT_EQ(ch.drain(), "AT fit train_batch#2\n");
  EXPECT_EQ(d.kind, DirectiveKind::raise);
  EXPECT_EQ(d.type, "RuntimeError");
  EXPECT_EQ(d.text, "disk on fire");
  EXPECT_EQ(probe.occurrences("fit", "train_batch"), 2);
  EXPECT_EQ(probe.occurrences("fit", "val_batch"), 0);

  ch.write("FUTURE message\nEXIT 9\n");  // unknown types are ignored
  EXPECT_EQ(probe.at("fit", "setup").kind, DirectiveKind::exit);
  EXPECT_EQ(ch.drain(), "AT fit setup\n");

  probe.hook("teardown");
  std::string hook = ch.drain();
  EXPECT_THAT(hook, ::testing::StartsWith("HOOK teardown "));
  auto t = wire::decode(hook);
  ASSERT_TRUE(std::holds_alternative<wire::HookEntered>(t));
  EXPECT_GT(std::get<wire::HookEntered>(t).t_ns, 0);

  ch.write("AUDITED 0\n");
  probe.audit("after-teardown");
  probe.bye(0);
  EXPECT_EQ(ch.drain(), "AUDIT after-teardown\nBYE 0\n");
  EXPECT_TRUE(probe.active());
}

TEST(ProbeTest, ABrokenChannelMakesTheProbeInactiveNotFatal) {
  Channel ch;
  Probe probe(ch.probe_end, 0);
  ch.write("WELCOME reclaim/1\nARM test setup\nGO\n");
  probe.hello();
  close(ch.harness_end);
  ch.harness_end = -1;
  EXPECT_EQ(probe.at("test", "setup").kind, DirectiveKind::go);  // EOF or EPIPE: go on
  EXPECT_FALSE(probe.active());
  probe.hook("teardown");
  probe.audit("after-teardown");
  probe.bye(0);
}

TEST(ProbeTest, InactiveWithoutTheControlVariable) {
  const char* saved = getenv("RECLAIM_CONTROL");
  std::string keep = saved ? saved : "";
  unsetenv("RECLAIM_CONTROL");
  Probe probe = Probe::from_environment();
  EXPECT_FALSE(probe.active());
  probe.hello();
  EXPECT_EQ(probe.at("fit", "train_batch").kind, DirectiveKind::go);
  EXPECT_EQ(probe.occurrences("fit", "train_batch"), 1);
  setenv("RECLAIM_CONTROL", "tcp:nowhere", 1);
  EXPECT_FALSE(Probe::from_environment().active());
  if (saved) setenv("RECLAIM_CONTROL", keep.c_str(), 1); else unsetenv("RECLAIM_CONTROL");
}

volatile std::sig_atomic_t g_usr1 = 0;
extern "C" void on_usr1(int) { g_usr1 = 1; }

TEST(ProbeTest, ReadsSurviveSignalsDeliveredWhileWaiting) {
  // The harness signals the rank while it waits for the directive, then sends GO.
  struct sigaction sa {}, old {};
  sa.sa_handler = &on_usr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: recv returns EINTR
  sigaction(SIGUSR1, &sa, &old);
  g_usr1 = 0;

  Channel ch;
  Probe probe(ch.probe_end, 0);
  ch.write("WELCOME reclaim/1\nARM fit setup\nGO\n");
  probe.hello();
  ch.drain();  // HELLO
  const pid_t main_tid = static_cast<pid_t>(syscall(SYS_gettid));
  const pthread_t main_thread = pthread_self();
  std::thread harness([&] {
    // Wait for "AT", then for the main thread to block in recv, then signal, then GO.
    std::int64_t deadline = now_ms() + kDeadlineMs;
    EXPECT_TRUE(wait_readable(ch.harness_end, deadline));
    std::string stat_path = "/proc/self/task/" + std::to_string(main_tid) + "/stat";
    while (now_ms() < deadline) {
      std::ifstream in(stat_path);
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto close_paren = stat.rfind(')');
      if (close_paren != std::string::npos && stat[close_paren + 2] == 'S') break;
      std::this_thread::yield();
    }
    pthread_kill(main_thread, SIGUSR1);
    ch.write("GO\n");
  });
  Directive d = probe.at("fit", "setup");
  harness.join();
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(d.kind, DirectiveKind::go);
  EXPECT_EQ(g_usr1, 1);
  EXPECT_TRUE(probe.active());
  EXPECT_EQ(ch.drain(), "AT fit setup\n");
}

}  // namespace
