// The /proc layer: parsers on captured text (tests/data/proc), readers and
// pidfds on real processes.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "sys/pidfd.hpp"
#include "sys/proc.hpp"

namespace reclaim::sys {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

std::string data(const std::string& name) {
  std::ifstream in(std::string(RECLAIM_TEST_DATA) + "/proc/" + name, std::ios::binary);
  EXPECT_TRUE(in) << "missing test data " << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- parse_stat ------------------------------------------------------------

TEST(ParseStat, PlainProcess) {
  auto st = parse_stat(data("stat_cat.txt"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pid, 4248);
  EXPECT_EQ(st->comm, "cat");
  EXPECT_EQ(st->state, 'R');
  EXPECT_EQ(st->ppid, 4228);
  EXPECT_EQ(st->pgrp, 4228);
  EXPECT_EQ(st->session, 2726);
  EXPECT_EQ(st->starttime, 55337u);
}

TEST(ParseStat, InitAndKernelThread) {
  auto init = parse_stat(data("stat_init.txt"));
  ASSERT_TRUE(init);
  EXPECT_EQ(init->pid, 1);
  EXPECT_EQ(init->ppid, 0);
  EXPECT_EQ(init->comm, "process_api");
  auto kthread = parse_stat(data("stat_kthreadd.txt"));
  ASSERT_TRUE(kthread);
  EXPECT_EQ(kthread->pid, 2);
  EXPECT_EQ(kthread->comm, "kthreadd");
  EXPECT_EQ(kthread->ppid, 0);
  EXPECT_EQ(kthread->starttime, 26u);
}

TEST(ParseStat, Zombie) {
  auto st = parse_stat(data("stat_zombie.txt"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, 'Z');
  EXPECT_EQ(st->ppid, 4328);
  EXPECT_EQ(st->starttime, 56356u);
}

TEST(ParseStat, CommWithParenthesesAndFakeStateUsesLastParen) {
  auto st = parse_stat(data("stat_tricky_comm.txt"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pid, 4242);
  EXPECT_EQ(st->comm, "evil) Z (x) S");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 4240);
  EXPECT_EQ(st->starttime, 99999u);
}

TEST(ParseStat, CommWithSpacesAndLargeStarttime) {
  auto st = parse_stat(data("stat_spaces.txt"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->comm, "a b c");
  EXPECT_EQ(st->ppid, 1);
  EXPECT_EQ(st->starttime, 123456789012u);
  auto empty = parse_stat(data("stat_empty_comm.txt"));
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->comm, "");
  EXPECT_EQ(empty->starttime, 5u);
}

TEST(ParseStat, RejectsMalformed) {
  EXPECT_FALSE(parse_stat(data("stat_truncated.txt")));
  EXPECT_FALSE(parse_stat(""));
  EXPECT_FALSE(parse_stat("garbage\n"));
  EXPECT_FALSE(parse_stat("12 (x R 1 2 3"));
  EXPECT_FALSE(parse_stat("x12 (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"));
  EXPECT_FALSE(parse_stat("12 (x) RR 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"));
}

// ---- cmdline / environ ---------------------------------------------------------

TEST(ParseCmdline, JoinsArguments) {
  using namespace std::string_literals;
  EXPECT_EQ(parse_cmdline("worker_pool\0--bug\0orphan-worker\0"s), "worker_pool --bug orphan-worker");
  EXPECT_EQ(parse_cmdline("a b\0c\0"s), "a b c");
  EXPECT_EQ(parse_cmdline("no-trailing-nul"), "no-trailing-nul");
  EXPECT_EQ(parse_cmdline(""), "");
  EXPECT_EQ(parse_cmdline("x\0\0y\0"s), "x  y");  // an empty argument stays visible
}

TEST(EnvironContains, ExactEntryOnly) {
  using namespace std::string_literals;
  const std::string env = "PATH=/bin\0RECLAIM_SCENARIO=abc\0HOME=/root\0"s;
  EXPECT_TRUE(environ_contains(env, "RECLAIM_SCENARIO=abc"));
  EXPECT_TRUE(environ_contains(env, "HOME=/root"));
  EXPECT_FALSE(environ_contains(env, "RECLAIM_SCENARIO=ab"));
  EXPECT_FALSE(environ_contains(env, "RECLAIM_SCENARIO=abcd"));
  EXPECT_FALSE(environ_contains(env, "SCENARIO=abc"));
  EXPECT_FALSE(environ_contains(env, ""));
  EXPECT_FALSE(environ_contains("", "A=1"));
  EXPECT_TRUE(environ_contains("A=1", "A=1"));  // no trailing NUL
}

// ---- scanning ------------------------------------------------------------------

TEST(ScanProcesses, FakeRootSkipsNonNumericAndGarbage) {
  auto table = scan_processes(std::string(RECLAIM_TEST_DATA) + "/proc/root");
  std::vector<int> pids;
  for (const auto& p : table) pids.push_back(p.pid);
  EXPECT_THAT(pids, UnorderedElementsAre(1, 2, 4242, 4369));
  auto it = std::find_if(table.begin(), table.end(), [](const ProcStat& p) { return p.pid == 4242; });
  ASSERT_NE(it, table.end());
  EXPECT_EQ(it->comm, "evil) Z (x) S");
}

TEST(ScanProcesses, MissingRootIsEmpty) { EXPECT_TRUE(scan_processes("/nonexistent/proc").empty()); }

TEST(ScanProcesses, FindsOurselvesAndOurParent) {
  auto table = scan_processes();
  auto self = std::find_if(table.begin(), table.end(), [](const ProcStat& p) { return p.pid == ::getpid(); });
  ASSERT_NE(self, table.end());
  EXPECT_EQ(self->ppid, ::getppid());
  EXPECT_NE(self->starttime, 0u);
  auto st = read_stat(::getpid());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->starttime, self->starttime);
}

TEST(ReadCmdline, Self) {
  auto cmd = read_cmdline(::getpid());
  ASSERT_TRUE(cmd);
  EXPECT_NE(cmd->find("unit_tests"), std::string::npos) << *cmd;
  EXPECT_FALSE(read_cmdline(-5));
}

TEST(ProcessEnvironContains, SelfAndUnreadable) {
  // /proc/self/environ holds the environment at exec time; PATH is always there in CI.
  auto raw = read_small_file("/proc/self/environ");
  ASSERT_TRUE(raw);
  auto first_entry = std::string(raw->c_str());
  ASSERT_FALSE(first_entry.empty());
  EXPECT_EQ(process_environ_contains(::getpid(), first_entry), std::optional<bool>(true));
  EXPECT_EQ(process_environ_contains(::getpid(), "RECLAIM_NO_SUCH=1"), std::optional<bool>(false));
  EXPECT_EQ(process_environ_contains(-5, "A=1"), std::nullopt);
}

// ---- descendants -----------------------------------------------------------------

ProcStat row(int pid, int ppid, char state = 'S') {
  ProcStat p;
  p.pid = pid;
  p.ppid = ppid;
  p.state = state;
  p.comm = "p" + std::to_string(pid);
  return p;
}

TEST(Descendants, SyntheticTableWithReparentedDoubleForkGrandchild) {
  // 100 = shepherd (subreaper). 101 rank -> 102 worker -> 103 grandchild.
  // 104 was a double-forked daemon: its parent (a child of 101) exited and it
  // re-parented to the subreaper 100; it then forked 105.
  // 200 is an unrelated tree; 300 an orphan that re-parented to init (1).
  std::vector<ProcStat> table = {row(1, 0),   row(2, 0),   row(100, 1), row(101, 100), row(102, 101, 'Z'),
                                 row(103, 102), row(104, 100), row(105, 104), row(200, 1), row(201, 200),
                                 row(300, 1)};
  EXPECT_THAT(descendants(table, 100), ElementsAre(101, 104, 102, 105, 103));
  EXPECT_THAT(descendants(table, 102), ElementsAre(103));
  EXPECT_THAT(descendants(table, 200), ElementsAre(201));
  EXPECT_TRUE(descendants(table, 103).empty());
  EXPECT_TRUE(descendants(table, 4242).empty());
}

TEST(Descendants, CycleInMalformedTableTerminates) {
  std::vector<ProcStat> table = {row(10, 11), row(11, 10), row(12, 12)};
  EXPECT_THAT(descendants(table, 10), ElementsAre(11));
  EXPECT_TRUE(descendants(table, 12).empty());
}

// ---- locks -------------------------------------------------------------------------

TEST(ParseLocks, CapturedFlockPosixOfdWithWaiters) {
  auto locks = parse_locks(data("locks.txt"));
  ASSERT_EQ(locks.size(), 5u);
  EXPECT_EQ(locks[0].id, 1);
  EXPECT_EQ(locks[0].type, "OFDLCK");
  EXPECT_EQ(locks[0].access, "READ");
  EXPECT_EQ(locks[0].pid, -1);
  EXPECT_EQ(locks[0].dev_inode, "fe:00:10952920");
  EXPECT_EQ(locks[0].range, "0 EOF");
  EXPECT_FALSE(locks[0].waiter);

  EXPECT_EQ(locks[1].type, "POSIX");
  EXPECT_EQ(locks[1].access, "WRITE");
  EXPECT_EQ(locks[1].pid, 4269);
  EXPECT_EQ(locks[1].range, "0 9");
  EXPECT_FALSE(locks[1].waiter);
  EXPECT_EQ(locks[2].id, 2);
  EXPECT_TRUE(locks[2].waiter);
  EXPECT_EQ(locks[2].pid, 4312);
  EXPECT_EQ(locks[2].type, "POSIX");

  EXPECT_EQ(locks[3].type, "FLOCK");
  EXPECT_EQ(locks[3].pid, 4269);
  EXPECT_TRUE(locks[4].waiter);
  EXPECT_EQ(locks[4].type, "FLOCK");
  EXPECT_EQ(locks[4].dev_inode, "fe:00:10952918");
}

TEST(ParseLocks, TrickyLeasesSharedLocksGarbage) {
  auto locks = parse_locks(data("locks_tricky.txt"));
  ASSERT_EQ(locks.size(), 8u);  // garbage and truncated lines dropped
  EXPECT_EQ(locks[0].type, "LEASE");
  EXPECT_EQ(locks[0].access, "READ");
  EXPECT_EQ(locks[1].type, "DELEG");
  EXPECT_EQ(locks[2].range, "100 199");
  EXPECT_TRUE(locks[3].waiter);
  EXPECT_TRUE(locks[4].waiter);
  EXPECT_EQ(locks[4].pid, 5005);
  EXPECT_EQ(locks[4].range, "150 160");
  EXPECT_EQ(locks[5].pid, 5006);
  EXPECT_EQ(locks[6].pid, 5007);
  EXPECT_EQ(locks[6].id, 4);
  EXPECT_EQ(locks[7].type, "OFDLCK");
  EXPECT_EQ(locks[7].pid, -1);
  EXPECT_TRUE(parse_locks("").empty());
}

TEST(ParseDevInode, HexDeviceDecimalInode) {
  auto d = parse_dev_inode("fe:00:10952918");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->major, 0xfeu);
  EXPECT_EQ(d->minor, 0u);
  EXPECT_EQ(d->inode, 10952918u);
  auto e = parse_dev_inode("08:1a:12");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->minor, 0x1au);
  EXPECT_FALSE(parse_dev_inode("fe:00"));
  EXPECT_FALSE(parse_dev_inode("zz:00:1"));
  EXPECT_FALSE(parse_dev_inode("fe:00:"));
}

// ---- SysV IPC ------------------------------------------------------------------------

TEST(ParseSysvipc, CapturedShm) {
  auto objs = parse_sysvipc(SysvKind::shm, data("sysvipc_shm.txt"));
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(objs[0].kind, SysvKind::shm);
  EXPECT_EQ(objs[0].key, 215203806);
  EXPECT_EQ(objs[0].id, 0);
  EXPECT_EQ(objs[0].size, 4096u);
  EXPECT_EQ(objs[0].cpid, 4233);
  EXPECT_EQ(objs[0].uid, 0);
}

TEST(ParseSysvipc, CapturedSemAndMsgHaveNoCreator) {
  auto sem = parse_sysvipc(SysvKind::sem, data("sysvipc_sem.txt"));
  ASSERT_EQ(sem.size(), 1u);
  EXPECT_EQ(sem[0].kind, SysvKind::sem);
  EXPECT_EQ(sem[0].key, 278502514);
  EXPECT_EQ(sem[0].size, 3u);  // nsems
  EXPECT_EQ(sem[0].cpid, 0);
  auto msg = parse_sysvipc(SysvKind::msg, data("sysvipc_msg.txt"));
  ASSERT_EQ(msg.size(), 1u);
  EXPECT_EQ(msg[0].kind, SysvKind::msg);
  EXPECT_EQ(msg[0].key, 558796672);
  EXPECT_EQ(msg[0].cpid, 0);
}

TEST(ParseSysvipc, TrickyRows) {
  auto shm = parse_sysvipc(SysvKind::shm, data("sysvipc_shm_tricky.txt"));
  ASSERT_EQ(shm.size(), 2u);
  EXPECT_EQ(shm[0].key, 0);
  EXPECT_EQ(shm[0].id, 32769);
  EXPECT_EQ(shm[0].size, 67108864u);
  EXPECT_EQ(shm[0].cpid, 5100);
  EXPECT_EQ(shm[0].uid, 1000);
  EXPECT_EQ(shm[1].key, -559038737);
  EXPECT_EQ(shm[1].cpid, 5200);
  auto msg = parse_sysvipc(SysvKind::msg, data("sysvipc_msg_tricky.txt"));
  ASSERT_EQ(msg.size(), 2u);
  EXPECT_EQ(msg[0].size, 12u);  // cbytes
  EXPECT_EQ(msg[0].uid, 1000);
  EXPECT_EQ(msg[1].id, 1);
}

TEST(ParseSysvipc, WrongTableOrNoHeaderIsEmpty) {
  // A shm table parsed as sem has no "semid" column.
  EXPECT_TRUE(parse_sysvipc(SysvKind::sem, data("sysvipc_shm.txt")).empty());
  EXPECT_TRUE(parse_sysvipc(SysvKind::shm, "").empty());
  EXPECT_TRUE(parse_sysvipc(SysvKind::shm, " 1 2 3 4 5 6\n").empty());
}

TEST(MonotonicNs, Increases) {
  auto a = monotonic_ns();
  auto b = monotonic_ns();
  EXPECT_GT(a, 0);
  EXPECT_GE(b, a);
}

// ---- pidfds (fork: DeathTest suite) ----------------------------------------------------

// A child that blocks until `release` is closed, then exits with code 7.
int fork_blocked_child(int& release) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  int pid = ::fork();
  if (pid == 0) {
    ::close(p[1]);
    char c;
    while (::read(p[0], &c, 1) < 0) {
    }
    ::_exit(7);
  }
  ::close(p[0]);
  release = p[1];
  return pid;
}

TEST(PidfdDeathTest, WaitExitSeesTheExitWithoutSleeping) {
  int release = -1;
  int pid = fork_blocked_child(release);
  ASSERT_GT(pid, 0);
  auto pidfd = Pidfd::open(pid);
  ASSERT_TRUE(pidfd) << pidfd.error().message();
  EXPECT_EQ(pidfd->pid(), pid);
  EXPECT_GE(pidfd->fd(), 0);
  EXPECT_FALSE(pidfd->exited());
  EXPECT_FALSE(pidfd->wait_exit(std::chrono::milliseconds(20)));
  ::close(release);
  EXPECT_TRUE(pidfd->wait_exit(std::chrono::seconds(10)));
  EXPECT_TRUE(pidfd->exited());
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  // Reaped: signalling through the pidfd now fails instead of hitting a recycled pid.
  EXPECT_EQ(pidfd->send_signal(SIGTERM).value(), ESRCH);
}

TEST(PidfdDeathTest, SendSignalKills) {
  int release = -1;
  int pid = fork_blocked_child(release);
  ASSERT_GT(pid, 0);
  auto pidfd = Pidfd::open(pid);
  ASSERT_TRUE(pidfd);
  EXPECT_FALSE(pidfd->send_signal(SIGKILL));
  EXPECT_TRUE(pidfd->wait_exit(std::chrono::seconds(10)));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  ::close(release);
}

TEST(PidfdDeathTest, MoveTransfersOwnership) {
  auto a = Pidfd::open(::getpid());
  ASSERT_TRUE(a);
  int fd = a->fd();
  Pidfd b = std::move(a).value();
  EXPECT_EQ(b.fd(), fd);
  Pidfd c = std::move(b);
  EXPECT_EQ(c.fd(), fd);
  EXPECT_EQ(b.fd(), -1);  // NOLINT: checking the moved-from state on purpose
  EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC);
}

TEST(PidfdDeathTest, OpenErrors) {
  EXPECT_EQ(Pidfd::open(0).error().value(), ESRCH);
  EXPECT_EQ(Pidfd::open(-1).error().value(), ESRCH);
  // pid_max is at most 2^22: this pid cannot exist.
  EXPECT_EQ(Pidfd::open(1 << 23).error().value(), ESRCH);
}

TEST(PidfdDeathTest, OpenVerifiedChecksStarttime) {
  auto st = read_stat(::getpid());
  ASSERT_TRUE(st);
  auto ok = open_verified(::getpid(), st->starttime);
  ASSERT_TRUE(ok);
  EXPECT_FALSE(ok->exited());
  // Same pid, other start time: a recycled pid must not be handed out.
  EXPECT_FALSE(open_verified(::getpid(), st->starttime + 1));
  EXPECT_FALSE(open_verified(1 << 23, 0));
}

}  // namespace
}  // namespace reclaim::sys

namespace reclaim::sys {
namespace {

TEST(SignalDispositionsTest, ReadsIgnoredAndCaughtMasks) {
  // Captured from a process that ignores SIGINT and SIGTERM and catches SIGCHLD.
  const char* status =
      "Name:\tworker_pool\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n"
      "SigIgn:\t0000000000004002\nSigCgt:\t0000000000010000\nCapInh:\t0000000000000000\n";
  auto d = parse_signal_dispositions(status);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->takes_default(2));   // SIGINT ignored
  EXPECT_FALSE(d->takes_default(15));  // SIGTERM ignored
  EXPECT_FALSE(d->takes_default(17));  // SIGCHLD caught
  EXPECT_TRUE(d->takes_default(9));
  EXPECT_TRUE(d->dies_now(9));
  auto blocked = parse_signal_dispositions("SigBlk:\t0000000000004000\nSigIgn:\t0\nSigCgt:\t0\n");
  ASSERT_TRUE(blocked);
  EXPECT_TRUE(blocked->takes_default(15));
  EXPECT_FALSE(blocked->dies_now(15));  // SIGTERM blocked: it waits until unblocked
  EXPECT_FALSE(parse_signal_dispositions("Name:\tx\nSigIgn:\tzz\nSigCgt:\t0\n"));
  EXPECT_FALSE(parse_signal_dispositions("Name:\tx\n"));
}

}  // namespace
}  // namespace reclaim::sys

namespace reclaim::sys {
namespace {

TEST(FdinfoLocksTest, ParsesTheLockLinesOfAnFdinfo) {
  // Captured: /proc/PID/fdinfo/N of a file held with flock(LOCK_EX), and an OFD lock.
  const char* fdinfo =
      "pos:\t0\nflags:\t02100001\nmnt_id:\t27\nino:\t10952954\n"
      "lock:\t1: FLOCK  ADVISORY  WRITE 1490 fe:00:10952954 0 EOF\n"
      "lock:\t2: OFDLCK ADVISORY  READ  -1 fe:00:10952954 0 99\n";
  auto locks = parse_fdinfo_locks(fdinfo);
  ASSERT_EQ(locks.size(), 2u);
  EXPECT_EQ(locks[0].type, "FLOCK");
  EXPECT_EQ(locks[0].access, "WRITE");
  EXPECT_EQ(locks[0].pid, 1490);
  EXPECT_EQ(locks[0].dev_inode, "fe:00:10952954");
  EXPECT_EQ(locks[1].type, "OFDLCK");
  EXPECT_EQ(locks[1].pid, -1);
  EXPECT_TRUE(parse_fdinfo_locks("pos:\t0\nflags:\t02\n").empty());
}

}  // namespace
}  // namespace reclaim::sys
