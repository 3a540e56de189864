#include <gmock/gmock.h>
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
  EXPECT_EQ(directories_to_carry(t, "/work/main"), (std::vector<std::string>{"/tmp/ci"}));
  EXPECT_EQ(directories_to_carry(t, "/tmp/other/sub"), (std::vector<std::string>{"/tmp/ci", "/tmp/other"}));
  EXPECT_TRUE(directories_to_carry(Target{{"/usr/bin/python3", "x.py"}}, "/work").empty());
  EXPECT_EQ(private_tmp_obstacle(t), "");
  EXPECT_NE(private_tmp_obstacle(Target{{"/bin/cat", "/dev/shm/x"}}), "");
}

}  // namespace
}  // namespace reclaim::supervisor
