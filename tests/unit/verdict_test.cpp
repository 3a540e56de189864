#include <gmock/gmock.h>
#include <csignal>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/supervisor.hpp"
#include "supervisor/verdict.hpp"

namespace reclaim::supervisor {
namespace {

using ::testing::_;
using ::testing::Return;

Scenario scenario(const char* fault, const char* point = "setup") {
  Scenario s;
  s.entry = Entry::fit;
  s.fault = *parse_fault(fault);
  if (s.fault.is_failure()) s.point = parse_point(point);
  return s;
}

Evidence evidence(std::vector<std::string> hooks, std::size_t at_fault, ExitStatus exit = {true, 0, 0}) {
  Evidence e;
  e.probe_connected = true;
  e.fault_delivered = true;
  e.hooks = std::move(hooks);
  e.hooks_at_fault = at_fault;
  e.rank_exit = exit;
  return e;
}

TEST(ContractTest, FailureNeedsOnExceptionOnceAndNoTeardownAfterTheFault) {
  auto sc = scenario("exception", "teardown");
  // teardown entered before the fault (its point fires at its start) is fine
  EXPECT_TRUE(check_contract(sc, evidence({"setup", "teardown", "on_exception"}, 2)).empty());

  auto v = check_contract(sc, evidence({"setup", "teardown"}, 2));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].expected, "on_exception called once after the fault");
  EXPECT_EQ(v[0].actual, "on_exception called 0 times");

  v = check_contract(scenario("sigterm"), evidence({"setup", "teardown"}, 1));
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[1].actual, "teardown called 1 times");

  v = check_contract(scenario("exception"), evidence({"setup", "on_exception", "on_exception"}, 1));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].actual, "on_exception called 2 times");
}

TEST(ContractTest, UncatchableFaultsLeaveNothingToCheck) {
  EXPECT_TRUE(check_contract(scenario("sigkill"), evidence({"setup"}, 1, {true, -1, 9})).empty());
  EXPECT_TRUE(check_contract(scenario("sigsegv"), evidence({"setup"}, 1, {true, -1, 11})).empty());
  // but a killed worker surfaces in the rank, which must react
  EXPECT_FALSE(check_contract(scenario("worker-sigkill", "train_batch#1"), evidence({"setup"}, 1)).empty());
}

TEST(ContractTest, SuccessNeedsTeardownOnceNoOnExceptionAndExitZero) {
  auto sc = scenario("none");
  EXPECT_TRUE(check_contract(sc, evidence({"prepare_data", "setup", "teardown"}, 0)).empty());
  auto v = check_contract(sc, evidence({"setup", "on_exception"}, 0, {true, 1, 0}));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].expected, "teardown called once on success");
  EXPECT_EQ(v[1].expected, "no on_exception on success");
  EXPECT_EQ(v[2].actual, "exit 1");
}

TEST(ContractTest, NoProbeBreaksTheLightningContractButNotNone) {
  auto sc = scenario("none");
  Evidence silent;
  EXPECT_EQ(check_contract(sc, silent).size(), 1u);
  sc.expect.contract = Contract::none;
  EXPECT_TRUE(check_contract(sc, silent).empty());
}

// ---- survivors of a multi-rank failure ----------------------------------------

Scenario world_scenario(const char* fault = "crash", Contract contract = Contract::lightning) {
  Scenario s = scenario(fault, "train_batch#1");
  s.world_size = 4;
  s.rank = 3;
  s.expect.contract = contract;
  return s;
}

SurvivorEvidence survivor(std::vector<std::string> hooks, ExitStatus exit, bool world_failed = true) {
  SurvivorEvidence e;
  e.probe_connected = true;
  e.world_failed = world_failed;
  e.hooks = std::move(hooks);
  e.exit = exit;
  return e;
}

constexpr ExitStatus kExit0{true, 0, 0};
constexpr ExitStatus kExit1{true, 1, 0};
constexpr ExitStatus kTerminated{true, -1, SIGTERM};
constexpr ExitStatus kKilled{true, -1, SIGKILL};

TEST(SurvivorTest, NoProbeBreaksTheContract) {
  SurvivorEvidence silent;  // no HELLO, the world did not fail
  auto v = check_survivor(world_scenario(), silent);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].actual, "no probe connected");
  // Hooks can only come through a probe; still, without HELLO it is the probe that is missing.
  silent.world_failed = true;
  silent.hooks = {"setup"};
  v = check_survivor(world_scenario(), silent);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].actual, "no probe connected");
}

TEST(SurvivorTest, WithoutAWorldFailureTheSuccessContractApplies) {
  auto sc = world_scenario();
  EXPECT_TRUE(check_survivor(sc, survivor({"setup", "train_dataloader", "teardown"}, kExit0, false)).empty());

  auto v = check_survivor(sc, survivor({"setup", "on_exception"}, kExit0, false));
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].expected, "teardown called once on success");
  EXPECT_EQ(v[0].actual, "teardown called 0 times");
  EXPECT_EQ(v[1].expected, "no on_exception on success");
  EXPECT_EQ(v[1].actual, "on_exception called 1 times");

  v = check_survivor(sc, survivor({"setup", "teardown", "teardown"}, kExit0, false));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].actual, "teardown called 2 times");
}

TEST(SurvivorTest, StoppedBeforeItsFirstHookHeldNothing) {
  auto sc = world_scenario();
  EXPECT_TRUE(check_survivor(sc, survivor({}, kTerminated)).empty());
  auto no_hello = survivor({}, kKilled);
  no_hello.probe_connected = false;  // killed before it could even say HELLO
  EXPECT_TRUE(check_survivor(sc, no_hello).empty());
  // The same silence without a world failure is a broken contract.
  EXPECT_EQ(check_survivor(sc, survivor({}, kExit0, false)).size(), 1u);
}

TEST(SurvivorTest, SigkilledSurvivorCouldNotReact) {
  auto sc = world_scenario();
  EXPECT_TRUE(check_survivor(sc, survivor({"setup"}, kKilled)).empty());
  EXPECT_TRUE(check_survivor(sc, survivor({"setup", "on_exception", "on_exception", "teardown"}, kKilled)).empty());
  // Killed by anything else it could have reacted to, it must have.
  EXPECT_EQ(check_survivor(sc, survivor({"setup"}, kTerminated)).size(), 1u);
}

TEST(SurvivorTest, OnExceptionOnceAndNoTeardownAfterItIsClean) {
  auto sc = world_scenario();
  EXPECT_TRUE(check_survivor(sc, survivor({"setup", "on_exception"}, kExit1)).empty());
  EXPECT_TRUE(check_survivor(sc, survivor({"setup", "on_exception"}, kTerminated)).empty());
  // A teardown it began before it could know of the failure is allowed.
  EXPECT_TRUE(check_survivor(sc, survivor({"setup", "teardown", "on_exception"}, kExit1)).empty());
}

TEST(SurvivorTest, OnExceptionTwiceOrNeverIsAViolation) {
  auto sc = world_scenario();
  auto v = check_survivor(sc, survivor({"setup", "on_exception", "on_exception"}, kExit1));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].expected, "on_exception called once after another rank failed");
  EXPECT_EQ(v[0].actual, "on_exception called 2 times");

  v = check_survivor(sc, survivor({"setup", "train_dataloader"}, kExit1));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].actual, "on_exception called 0 times");
}

TEST(SurvivorTest, TeardownAfterOnExceptionIsAViolation) {
  auto sc = world_scenario();
  auto v = check_survivor(sc, survivor({"setup", "on_exception", "teardown"}, kExit1));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].expected, "teardown not called after on_exception");
  EXPECT_EQ(v[0].actual, "teardown called 1 times after it");
  // Before and after: only the one after counts.
  v = check_survivor(sc, survivor({"teardown", "on_exception", "teardown", "teardown"}, kTerminated));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].actual, "teardown called 2 times after it");
}

TEST(SurvivorTest, CompletedBeforeItCouldKnowFollowsTheSuccessContract) {
  auto sc = world_scenario();
  EXPECT_TRUE(check_survivor(sc, survivor({"setup", "teardown"}, kExit0)).empty());
  auto v = check_survivor(sc, survivor({"setup"}, kExit0));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].expected, "teardown called once on success");
  // Exit 0 after on_exception is not "completed first": the failure contract applies.
  v = check_survivor(sc, survivor({"setup", "on_exception", "teardown"}, kExit0));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].expected, "teardown not called after on_exception");
}

TEST(SurvivorTest, ContractNoneChecksNothing) {
  auto sc = world_scenario("crash", Contract::none);
  SurvivorEvidence silent;
  EXPECT_TRUE(check_survivor(sc, silent).empty());
  EXPECT_TRUE(check_survivor(sc, survivor({"setup", "on_exception", "on_exception", "teardown"}, kExit1)).empty());
  EXPECT_TRUE(check_survivor(sc, survivor({"setup", "on_exception"}, kExit0, false)).empty());
}

// ---- leak attribution ------------------------------------------------------------

Leak leak_with(LeakKind kind, std::vector<std::pair<std::string, std::string>> details) {
  Leak l;
  l.kind = kind;
  l.rank = 99;  // attribute_leak must not read it
  l.details = std::move(details);
  return l;
}

// pid 4242 -> rank 2, 5151 -> rank 0; anything else: unknown.
int rank_of(int pid) {
  if (pid == 4242) return 2;
  if (pid == 5151) return 0;
  return -1;
}

TEST(AttributeLeakTest, OneRankOwnsEverything) {
  int calls = 0;
  auto counting = [&](int) {
    ++calls;
    return -1;
  };
  for (auto kind : {LeakKind::process, LeakKind::temp_file, LeakKind::shm, LeakKind::sysv_ipc})
    EXPECT_EQ(attribute_leak(leak_with(kind, {{"pid", "4242"}, {"path", "rank-3/x"}}), 1, counting), 0);
  EXPECT_EQ(calls, 0);
}

TEST(AttributeLeakTest, ProcessesAndHandlesByTheirPid) {
  std::vector<int> asked;
  auto recording = [&](int pid) {
    asked.push_back(pid);
    return rank_of(pid);
  };
  for (auto kind : {LeakKind::process, LeakKind::zombie, LeakKind::fd, LeakKind::lock}) {
    EXPECT_EQ(attribute_leak(leak_with(kind, {{"ppid", "5151"}, {"pid", "4242"}}), 4, recording), 2)
        << to_string(kind);
    EXPECT_EQ(attribute_leak(leak_with(kind, {{"pid", "5151"}}), 4, recording), 0) << to_string(kind);
    EXPECT_EQ(attribute_leak(leak_with(kind, {{"pid", "777"}}), 4, recording), -1) << to_string(kind);
  }
  EXPECT_EQ(asked, (std::vector<int>{4242, 5151, 777, 4242, 5151, 777, 4242, 5151, 777, 4242, 5151, 777}));
  // No usable pid: nobody is asked.
  asked.clear();
  EXPECT_EQ(attribute_leak(leak_with(LeakKind::process, {}), 4, recording), -1);
  EXPECT_EQ(attribute_leak(leak_with(LeakKind::process, {{"pid", "42x"}}), 4, recording), -1);
  EXPECT_EQ(attribute_leak(leak_with(LeakKind::process, {{"pid", "-4242"}}), 4, recording), -1);
  EXPECT_EQ(attribute_leak(leak_with(LeakKind::process, {{"cpid", "4242"}}), 4, recording), -1);
  EXPECT_TRUE(asked.empty());
}

TEST(AttributeLeakTest, SysvObjectsByTheirCreatorPid) {
  EXPECT_EQ(attribute_leak(leak_with(LeakKind::sysv_ipc, {{"ipc", "shm"}, {"cpid", "4242"}}), 4, rank_of), 2);
  EXPECT_EQ(attribute_leak(leak_with(LeakKind::sysv_ipc, {{"ipc", "shm"}, {"cpid", "5151"}}), 4, rank_of), 0);
  // "pid" is not the creator; a semaphore carries no creator at all.
  EXPECT_EQ(attribute_leak(leak_with(LeakKind::sysv_ipc, {{"pid", "4242"}}), 4, rank_of), -1);
  EXPECT_EQ(attribute_leak(leak_with(LeakKind::sysv_ipc, {{"ipc", "sem"}}), 4, rank_of), -1);
}

TEST(AttributeLeakTest, TempFilesByTheRankDirectoryTheyLieIn) {
  auto temp = [](const char* path) { return leak_with(LeakKind::temp_file, {{"path", path}, {"pid", "4242"}}); };
  auto nobody = [](int) { return -1; };
  EXPECT_EQ(attribute_leak(temp("rank-2/foo"), 4, nobody), 2);
  EXPECT_EQ(attribute_leak(temp("rank-0/a/b/c.npy"), 4, nobody), 0);
  EXPECT_EQ(attribute_leak(temp("rank-3"), 4, nobody), 3);  // the directory itself
  EXPECT_EQ(attribute_leak(temp("rank-9/x"), 4, nobody), -1);
  EXPECT_EQ(attribute_leak(temp("rank-4/x"), 4, nobody), -1);
  EXPECT_EQ(attribute_leak(temp("other/x"), 4, nobody), -1);
  EXPECT_EQ(attribute_leak(temp("other/rank-1/x"), 4, nobody), -1);
  EXPECT_EQ(attribute_leak(temp("data-1/rank-1/x"), 4, nobody), -1);  // only the top level names a rank
  EXPECT_EQ(attribute_leak(temp("rank-x/y"), 4, nobody), -1);
  EXPECT_EQ(attribute_leak(temp("rank-/y"), 4, nobody), -1);
  EXPECT_EQ(attribute_leak(temp("rank-1x/y"), 4, nobody), -1);
  EXPECT_EQ(attribute_leak(temp("rank--1/y"), 4, nobody), -1);
  EXPECT_EQ(attribute_leak(leak_with(LeakKind::temp_file, {}), 4, nobody), -1);
}

TEST(AttributeLeakTest, ShmEntriesByARanksPidInTheirName) {
  auto shm = [](const char* path) { return leak_with(LeakKind::shm, {{"path", path}}); };
  EXPECT_EQ(attribute_leak(shm("worker_pool-4242"), 4, rank_of), 2);
  EXPECT_EQ(attribute_leak(shm("5151"), 4, rank_of), 0);
  // Digit runs that are no rank's pid are skipped until one is.
  EXPECT_EQ(attribute_leak(shm("torch_7_4242_seg"), 4, rank_of), 2);
  EXPECT_EQ(attribute_leak(shm("cache-777"), 4, rank_of), -1);
  EXPECT_EQ(attribute_leak(shm("psm_shared"), 4, rank_of), -1);
  // The digits must form one whole run: 42420 is not 4242.
  EXPECT_EQ(attribute_leak(shm("pool-42420"), 4, rank_of), -1);
}

TEST(VerdictTest, PrecedenceIsErrorHangContractLeak) {
  std::vector<Violation> v{{"a", "b"}};
  std::vector<Leak> l{Leak{}};
  EXPECT_EQ(decide_verdict(true, true, v, l), Verdict::error);
  EXPECT_EQ(decide_verdict(false, true, v, l), Verdict::hang);
  EXPECT_EQ(decide_verdict(false, false, v, l), Verdict::contract);
  EXPECT_EQ(decide_verdict(false, false, {}, l), Verdict::leak);
  EXPECT_EQ(decide_verdict(false, false, {}, {}), Verdict::pass);
}

class MockAuditor : public audit::Auditor {
 public:
  MOCK_METHOD(std::string_view, name, (), (const, override));
  MOCK_METHOD(std::vector<Leak>, audit, (const audit::AuditScope&), (override));
};

Leak leak(LeakKind kind, std::string ppid) {
  Leak l;
  l.kind = kind;
  l.details = {{"pid", "99"}, {"ppid", std::move(ppid)}};
  return l;
}

TEST(CollectLeaksTest, KeepsEveryAuditorsLeaksButTheShepherdsUnreapedOrphans) {
  MockAuditor processes, files;
  audit::AuditScope scope;
  scope.shepherd_pid = 4242;
  EXPECT_CALL(processes, audit(_))
      .WillOnce(Return(std::vector<Leak>{leak(LeakKind::zombie, "4242"), leak(LeakKind::zombie, "77"),
                                         leak(LeakKind::process, "4242")}));
  EXPECT_CALL(files, audit(_)).WillOnce(Return(std::vector<Leak>{leak(LeakKind::temp_file, "")}));
  auto got = collect_leaks({&processes, &files}, scope);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].kind, LeakKind::zombie);  // a zombie of someone else's: not reaped by its parent
  EXPECT_EQ(got[1].kind, LeakKind::process);
  EXPECT_EQ(got[2].kind, LeakKind::temp_file);
}

}  // namespace
}  // namespace reclaim::supervisor

namespace reclaim::supervisor {
namespace {

TEST(ResolveExecutableTest, SearchesPathOnlyForBareNames) {
  EXPECT_EQ(resolve_executable("/bin/sh"), "/bin/sh");
  auto sh = resolve_executable("sh");
  ASSERT_TRUE(sh);
  EXPECT_EQ(sh->back(), 'h');
  EXPECT_NE(sh->find('/'), std::string::npos);
  EXPECT_FALSE(resolve_executable("reclaim-no-such-program"));
  EXPECT_FALSE(resolve_executable("/"));  // exists, not a file
  char plain[] = "/tmp/reclaim-resolve-XXXXXX";
  int fd = ::mkstemp(plain);
  ASSERT_GE(fd, 0);
  ::close(fd);
  ::chmod(plain, 0600);
  EXPECT_FALSE(resolve_executable(plain));  // a file, not executable by anyone
  ::unlink(plain);
  EXPECT_FALSE(resolve_executable(""));
}

}  // namespace
}  // namespace reclaim::supervisor

namespace reclaim::supervisor {
namespace {

TEST(PrivateTmpTest, CarriesTheTargetsDirectoriesUnderTmp) {
  Target t{{"/tmp/ci/build/fixtures/worker_pool", "--bug", "x", "/tmp/ci/fixtures/python/a.py", "/tmpfoo/x", "/tmp"}};
  EXPECT_EQ(paths_to_carry(t, "/work/main"), (std::vector<std::string>{"/tmp/ci"}));
  EXPECT_EQ(paths_to_carry(t, "/tmp/other/sub"), (std::vector<std::string>{"/tmp/ci", "/tmp/other"}));
  EXPECT_TRUE(paths_to_carry(Target{{"/usr/bin/python3", "x.py"}}, "/work").empty());
  // A file right in /tmp is carried itself.
  EXPECT_EQ(paths_to_carry(Target{{"/tmp/run.sh", "/tmp/data.bin"}}, "/work"),
            (std::vector<std::string>{"/tmp/run.sh", "/tmp/data.bin"}));
  EXPECT_EQ(private_tmp_obstacle(t), "");
  EXPECT_NE(private_tmp_obstacle(Target{{"/bin/cat", "/dev/shm/x"}}), "");
}

}  // namespace
}  // namespace reclaim::supervisor
