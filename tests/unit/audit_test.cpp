// The auditors on real resources created by the test itself: processes,
// temp files, /dev/shm entries, SysV objects, fds, locks. Suites that fork
// are named *DeathTest.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <cstdlib>
#include <cstring>

#include "audit/audit.hpp"
#include "sys/cgroup.hpp"
#include "sys/fs.hpp"
#include "sys/proc.hpp"

namespace reclaim::audit {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::Return;

// ---- helpers -------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/reclaim-audit-test-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    if (!path_.empty()) sys::remove_tree(path_);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

void write_file(const std::string& path, std::size_t bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path;
  std::string content(bytes, 'x');
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(bytes));
  ::close(fd);
}

std::string detail(const Leak& leak, const std::string& key) {
  for (const auto& [k, v] : leak.details)
    if (k == key) return v;
  return "<none>";
}

std::vector<Leak> of_kind(const std::vector<Leak>& leaks, LeakKind kind) {
  std::vector<Leak> out;
  std::copy_if(leaks.begin(), leaks.end(), std::back_inserter(out), [&](const Leak& l) { return l.kind == kind; });
  return out;
}

const Leak* find_pid(const std::vector<Leak>& leaks, int pid) {
  for (const auto& l : leaks)
    if (detail(l, "pid") == std::to_string(pid)) return &l;
  return nullptr;
}

// A child process that blocks until `release` is closed.
struct BlockedChild {
  int pid = -1;
  int release = -1;

  // argv empty: fork only. Otherwise exec argv with envp, stdin = the pipe
  // (so /bin/cat blocks until release), and return only once the exec has
  // happened: the child holds a close-on-exec pipe end, so EOF on it is the
  // event "exec done" (or "child died"), no polling needed.
  static BlockedChild start(std::vector<std::string> argv = {}, std::vector<std::string> envp = {}) {
    BlockedChild c;
    int p[2], exec_sync[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return c;
    if (::pipe2(exec_sync, O_CLOEXEC) != 0) return c;
    std::vector<char*> av, ev;
    for (auto& a : argv) av.push_back(a.data());
    av.push_back(nullptr);
    for (auto& e : envp) ev.push_back(e.data());
    ev.push_back(nullptr);
    c.pid = ::fork();
    if (c.pid == 0) {
      ::close(p[1]);
      ::close(exec_sync[0]);
      if (!argv.empty()) {
        ::dup2(p[0], 0);  // dup2 clears FD_CLOEXEC on the copy
        ::execve(av[0], av.data(), ev.data());
        ::_exit(127);
      }
      ::close(exec_sync[1]);
      char ch;
      while (::read(p[0], &ch, 1) < 0) {
      }
      ::_exit(0);
    }
    ::close(p[0]);
    ::close(exec_sync[1]);
    char ch;
    while (::read(exec_sync[0], &ch, 1) < 0 && errno == EINTR) {
    }
    ::close(exec_sync[0]);
    c.release = p[1];
    return c;
  }
  void finish() {
    if (release >= 0) ::close(release);
    release = -1;
    if (pid > 0) ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  ~BlockedChild() { finish(); }
};

// A child that has exited but is not reaped: waitid(WNOWAIT) waits for the
// exit without consuming it, so no sleep is needed to see it as a zombie.
int make_zombie() {
  int pid = ::fork();
  if (pid == 0) ::_exit(3);
  siginfo_t info{};
  ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
  return pid;
}

// ---- the interface ----------------------------------------------------------------

class MockAuditor : public Auditor {
 public:
  MOCK_METHOD(std::string_view, name, (), (const, override));
  MOCK_METHOD(void, take_baseline, (const AuditScope&), (override));
  MOCK_METHOD(std::vector<Leak>, audit, (const AuditScope&), (override));
};

TEST(Auditor, IsMockable) {
  MockAuditor mock;
  Leak leak{LeakKind::fd, 0, "fd 7 -> /tmp/x", {}};
  EXPECT_CALL(mock, audit).WillOnce(Return(std::vector<Leak>{leak}));
  Auditor& a = mock;
  EXPECT_EQ(a.audit(AuditScope{}).at(0).what, "fd 7 -> /tmp/x");
}

TEST(Auditor, DefaultSetInOrder) {
  auto all = make_default_auditors();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0]->name(), "process");
  EXPECT_EQ(all[1]->name(), "temp_file");
  EXPECT_EQ(all[2]->name(), "shm");
  EXPECT_EQ(all[3]->name(), "sysv");
}

TEST(DescribeProcess, CmdlineOrComm) {
  sys::ProcStat p;
  p.pid = 4242;
  p.ppid = 1;
  p.comm = "worker_pool";
  EXPECT_EQ(describe_process("process", p, "worker_pool --bug orphan-worker"),
            "process 4242 (ppid 1, \"worker_pool --bug orphan-worker\")");
  EXPECT_EQ(describe_process("zombie", p, ""), "zombie 4242 (ppid 1, \"[worker_pool]\")");
}

// ---- process auditor -----------------------------------------------------------------

TEST(ProcessAuditorDeathTest, ReportsLiveChildrenAndZombiesOfTheShepherd) {
  // The test process plays the shepherd.
  auto live = BlockedChild::start();
  ASSERT_GT(live.pid, 0);
  int zombie = make_zombie();
  ASSERT_GT(zombie, 0);
  std::set<int> seen;
  AuditScope scope;
  scope.shepherd_pid = ::getpid();
  scope.rank_pid = live.pid;
  scope.seen_pids = &seen;
  auto auditor = make_process_auditor();
  auditor->take_baseline(scope);
  auto leaks = auditor->audit(scope);

  const Leak* l = find_pid(leaks, live.pid);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->kind, LeakKind::process);
  EXPECT_EQ(detail(*l, "ppid"), std::to_string(::getpid()));
  EXPECT_EQ(detail(*l, "role"), "rank");
  EXPECT_THAT(detail(*l, "cmdline"), HasSubstr("unit_tests"));
  EXPECT_THAT(l->what, HasSubstr(fmt::format("process {} (ppid {}, \"", live.pid, ::getpid())));

  const Leak* z = find_pid(leaks, zombie);
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(z->kind, LeakKind::zombie);
  EXPECT_EQ(detail(*z, "state"), "Z");
  EXPECT_TRUE(seen.count(live.pid));
  EXPECT_TRUE(seen.count(zombie));

  // Once reaped, nothing is left.
  ASSERT_EQ(::waitpid(zombie, nullptr, 0), zombie);
  live.finish();
  leaks = auditor->audit(scope);
  EXPECT_EQ(find_pid(leaks, live.pid), nullptr);
  EXPECT_EQ(find_pid(leaks, zombie), nullptr);
}

TEST(ProcessAuditorDeathTest, FindsEscapedProcessByMarker) {
  const std::string marker = fmt::format("RECLAIM_SCENARIO=audit-test-{}", ::getpid());
  auto shepherd = BlockedChild::start();  // a stand-in shepherd with no children
  ASSERT_GT(shepherd.pid, 0);
  // Outside the shepherd's tree, but carrying the scenario's marker.
  auto escaped = BlockedChild::start({"/bin/cat"}, {marker, "PATH=/bin"});
  ASSERT_GT(escaped.pid, 0);
  // Outside the tree, without the marker: not the scenario's business.
  auto stranger = BlockedChild::start({"/bin/cat"}, {"PATH=/bin"});
  ASSERT_GT(stranger.pid, 0);

  AuditScope scope;
  scope.shepherd_pid = shepherd.pid;
  scope.marker = marker;
  auto auditor = make_process_auditor();
  auto leaks = auditor->audit(scope);  // start() returned after the exec: the environment is in place

  const Leak* e = find_pid(leaks, escaped.pid);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind, LeakKind::process);
  EXPECT_EQ(detail(*e, "escaped"), "true");
  EXPECT_THAT(e->what, HasSubstr("escaped"));
  EXPECT_THAT(e->what, HasSubstr("/bin/cat"));
  EXPECT_EQ(find_pid(leaks, stranger.pid), nullptr);
  EXPECT_EQ(find_pid(leaks, shepherd.pid), nullptr);
  EXPECT_EQ(find_pid(leaks, ::getpid()), nullptr);
}

// The scenario's cgroup instead of every process on the machine: its members,
// and the zombie children of members (a zombie has left the cgroup). Needs
// cgroup v2 and the right to create a child cgroup (root in CI).
TEST(ProcessAuditorDeathTest, WithACgroupReadsItsMembersAndTheirZombieChildren) {
  const std::string mount = sys::cgroup2_mount();
  if (mount.empty() || ::geteuid() != 0) GTEST_SKIP() << "needs cgroup v2 and root";
  const std::string cg = fmt::format("{}/reclaim-audit-test.{}", mount, ::getpid());
  ASSERT_EQ(::mkdir(cg.c_str(), 0755), 0) << std::strerror(errno);
  // A member that has a dead, unreaped child: it forks, waits for the child
  // to exit without reaping it, then says so and blocks.
  int ready[2], hold[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  const int member = ::fork();
  if (member == 0) {
    ::close(hold[1]);  // else its own copy would keep the EOF from coming
    ::close(ready[0]);
    int child = ::fork();
    if (child == 0) ::_exit(0);
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT);
    (void)!::write(ready[1], &child, sizeof child);
    char ch;
    while (::read(hold[0], &ch, 1) < 0) {
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(hold[0]);
  int zombie = 0;
  ASSERT_EQ(::read(ready[0], &zombie, sizeof zombie), static_cast<ssize_t>(sizeof zombie));
  { std::ofstream(cg + "/cgroup.procs") << member; }
  // Carries the marker but is outside the cgroup: no sweep on this path.
  const std::string marker = fmt::format("RECLAIM_SCENARIO=cgroup-test-{}", ::getpid());
  auto outsider = BlockedChild::start({"/bin/cat"}, {marker, "PATH=/bin"});

  AuditScope scope;
  scope.shepherd_pid = ::getpid();
  scope.marker = marker;
  scope.cgroups = {cg};
  auto leaks = make_process_auditor()->audit(scope);
  const Leak* m = find_pid(leaks, member);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->kind, LeakKind::process);
  const Leak* z = find_pid(leaks, zombie);
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(z->kind, LeakKind::zombie);
  EXPECT_EQ(find_pid(leaks, outsider.pid), nullptr);
  EXPECT_EQ(leaks.size(), 2u);

  ::close(hold[1]);
  ::waitpid(member, nullptr, 0);
  outsider.finish();
  ::rmdir(cg.c_str());
}

TEST(ProcessAuditor, NoShepherdNoMarkerNoLeaks) {
  AuditScope scope;
  EXPECT_TRUE(make_process_auditor()->audit(scope).empty());
}

// ---- temp files and shm ---------------------------------------------------------------

TEST(TempFileAuditor, ReportsWhatIsNewInTheSandbox) {
  TempDir sandbox;
  write_file(sandbox / "harness-owned", 1);  // present at baseline: never blamed
  AuditScope scope;
  scope.sandbox_tmp = sandbox.path();
  auto auditor = make_temp_file_auditor();
  auditor->take_baseline(scope);
  EXPECT_TRUE(auditor->audit(scope).empty());

  write_file(sandbox / "worker_pool-cache-ab12", 4096);
  ASSERT_EQ(::mkdir((sandbox / "d").c_str(), 0700), 0);
  ASSERT_EQ(::mkfifo((sandbox / "d/fifo").c_str(), 0600), 0);
  auto leaks = auditor->audit(scope);
  ASSERT_EQ(leaks.size(), 3u);
  for (const auto& l : leaks) EXPECT_EQ(l.kind, LeakKind::temp_file);
  EXPECT_EQ(leaks[0].what, "temp file tmp/d (dir)");
  EXPECT_EQ(leaks[1].what, "temp file tmp/d/fifo (fifo, 0 bytes)");
  EXPECT_EQ(leaks[2].what, "temp file tmp/worker_pool-cache-ab12 (file, 4096 bytes)");
  EXPECT_EQ(detail(leaks[2], "path"), "worker_pool-cache-ab12");
  EXPECT_EQ(detail(leaks[2], "size"), "4096");
  EXPECT_EQ(detail(leaks[2], "type"), "file");
}

TEST(TempFileAuditor, MissingSandboxIsClean) {
  AuditScope scope;
  scope.sandbox_tmp = "/nonexistent/reclaim-sandbox";
  EXPECT_TRUE(make_temp_file_auditor()->audit(scope).empty());
}

TEST(ShmAuditor, PrivateShmDirectory) {
  TempDir shm;
  AuditScope scope;
  scope.sandbox_shm = shm.path();
  auto auditor = make_shm_auditor();
  auditor->take_baseline(scope);
  write_file(shm / "torch_1234_5678", 100);
  auto leaks = auditor->audit(scope);
  ASSERT_EQ(leaks.size(), 1u);
  EXPECT_EQ(leaks[0].kind, LeakKind::shm);
  EXPECT_EQ(leaks[0].what, "shm dev/shm/torch_1234_5678 (file, 100 bytes)");
}

TEST(ShmAuditor, HostDevShmIsDiffedAgainstTheBaseline) {
  const std::string name = fmt::format("/reclaim-audit-test-{}", ::getpid());
  AuditScope scope;  // no private /dev/shm
  auto auditor = make_shm_auditor();
  auditor->take_baseline(scope);
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::ftruncate(fd, 8192), 0);
  ::close(fd);
  auto leaks = auditor->audit(scope);
  ::shm_unlink(name.c_str());
  auto it = std::find_if(leaks.begin(), leaks.end(),
                         [&](const Leak& l) { return detail(l, "path") == name.substr(1); });
  ASSERT_NE(it, leaks.end());
  EXPECT_EQ(it->what, fmt::format("shm dev/shm{} (file, 8192 bytes)", name));
  EXPECT_TRUE(std::none_of(leaks.begin(), leaks.end(), [](const Leak& l) { return l.what.empty(); }));
  leaks = auditor->audit(scope);
  EXPECT_TRUE(std::none_of(leaks.begin(), leaks.end(), [&](const Leak& l) { return detail(l, "path") == name.substr(1); }));
}

// ---- SysV -----------------------------------------------------------------------------

bool has_id(const std::vector<Leak>& leaks, const std::string& ipc, int id) {
  return std::any_of(leaks.begin(), leaks.end(), [&](const Leak& l) {
    return l.kind == LeakKind::sysv_ipc && detail(l, "ipc") == ipc && detail(l, "id") == std::to_string(id);
  });
}

TEST(SysvAuditor, SharedMemoryAttributedByCreatorPid) {
  auto auditor = make_sysv_auditor();
  std::set<int> seen;
  AuditScope scope;
  scope.seen_pids = &seen;
  auditor->take_baseline(scope);
  int id = ::shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  ASSERT_GE(id, 0) << std::strerror(errno);

  // Created by a pid the scenario does not own: not blamed.
  EXPECT_FALSE(has_id(auditor->audit(scope), "shm", id));
  // Created by one of the scenario's pids: blamed, with its creator.
  seen.insert(::getpid());
  auto leaks = auditor->audit(scope);
  ::shmctl(id, IPC_RMID, nullptr);
  ASSERT_TRUE(has_id(leaks, "shm", id));
  auto it = std::find_if(leaks.begin(), leaks.end(), [&](const Leak& l) { return detail(l, "id") == std::to_string(id); });
  EXPECT_EQ(detail(*it, "cpid"), std::to_string(::getpid()));
  EXPECT_EQ(detail(*it, "size"), "4096");
  EXPECT_THAT(it->what, HasSubstr(fmt::format("SysV shm key 0x00000000 id {} (4096 bytes, creator pid {})", id, ::getpid())));
  EXPECT_FALSE(has_id(auditor->audit(scope), "shm", id));  // removed: gone from the audit
}

TEST(SysvAuditor, SharedMemoryOfALiveDescendantIsAttributed) {
  auto auditor = make_sysv_auditor();
  std::set<int> seen;  // empty: the creator was never seen
  AuditScope scope;
  scope.seen_pids = &seen;
  scope.shepherd_pid = ::getppid();  // we are a descendant of it
  auditor->take_baseline(scope);
  int id = ::shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  ASSERT_GE(id, 0);
  auto leaks = auditor->audit(scope);
  ::shmctl(id, IPC_RMID, nullptr);
  EXPECT_TRUE(has_id(leaks, "shm", id));
}

TEST(SysvAuditor, SemaphoresAndQueuesNewSinceBaseline) {
  int before = ::semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
  ASSERT_GE(before, 0);
  auto auditor = make_sysv_auditor();
  std::set<int> seen;
  AuditScope scope;
  scope.seen_pids = &seen;
  auditor->take_baseline(scope);
  int sem = ::semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
  ASSERT_GE(sem, 0);
  auto leaks = auditor->audit(scope);
  ::semctl(sem, 0, IPC_RMID);
  ::semctl(before, 0, IPC_RMID);
  EXPECT_TRUE(has_id(leaks, "sem", sem));
  EXPECT_FALSE(has_id(leaks, "sem", before));  // baseline: never blamed
}

// ---- handles of a live rank (the test process itself) ------------------------------------

TEST(HandleAuditorDeathTest, NewFdIsReportedBaselineFdIsNot) {
  TempDir dir;
  int old_fd = ::open((dir / "old").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(old_fd, 0);
  HandleAuditor handles;
  handles.take_baseline(::getpid());
  EXPECT_TRUE(handles.audit(::getpid()).empty());

  int fd = ::open((dir / "x.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::unlink((dir / "x.lock").c_str());
  auto leaks = handles.audit(::getpid());
  ::close(fd);
  ::close(old_fd);
  ASSERT_EQ(leaks.size(), 1u);
  EXPECT_EQ(leaks[0].kind, LeakKind::fd);
  EXPECT_EQ(leaks[0].what, fmt::format("fd {} -> {} (deleted)", fd, dir / "x.lock"));
  EXPECT_EQ(detail(leaks[0], "fd"), std::to_string(fd));
}

TEST(HandleAuditorDeathTest, UnreapedChildIsAZombie) {
  HandleAuditor handles;
  handles.take_baseline(::getpid());
  int zombie = make_zombie();
  ASSERT_GT(zombie, 0);
  auto leaks = handles.audit(::getpid());
  ::waitpid(zombie, nullptr, 0);
  auto zombies = of_kind(leaks, LeakKind::zombie);
  ASSERT_EQ(zombies.size(), 1u);
  EXPECT_EQ(detail(zombies[0], "pid"), std::to_string(zombie));
  EXPECT_THAT(zombies[0].what, HasSubstr("not reaped"));
  EXPECT_TRUE(handles.audit(::getpid()).empty());
}

TEST(HandleAuditorDeathTest, LiveChildIsStillRunning) {
  HandleAuditor handles;
  handles.take_baseline(::getpid());
  auto child = BlockedChild::start();
  ASSERT_GT(child.pid, 0);
  auto leaks = of_kind(handles.audit(::getpid()), LeakKind::process);
  ASSERT_EQ(leaks.size(), 1u);
  EXPECT_EQ(detail(leaks[0], "pid"), std::to_string(child.pid));
  EXPECT_THAT(leaks[0].what, HasSubstr("still running after the hook returned"));
  child.finish();
  EXPECT_TRUE(handles.audit(::getpid()).empty());
}

TEST(HandleAuditorDeathTest, FlockIsALockWithItsPath) {
  TempDir dir;
  const std::string path = dir / "held.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  HandleAuditor handles;
  handles.take_baseline(::getpid());
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto leaks = handles.audit(::getpid());
  auto locks = of_kind(leaks, LeakKind::lock);
  ASSERT_EQ(locks.size(), 1u);
  EXPECT_EQ(detail(locks[0], "type"), "FLOCK");
  EXPECT_EQ(detail(locks[0], "access"), "WRITE");
  EXPECT_EQ(detail(locks[0], "path"), path);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_THAT(detail(locks[0], "inode"), ::testing::EndsWith(":" + std::to_string(st.st_ino)));
  EXPECT_EQ(locks[0].what, fmt::format("lock FLOCK WRITE on {} (0 EOF)", path));
  ::flock(fd, LOCK_UN);
  EXPECT_TRUE(of_kind(handles.audit(::getpid()), LeakKind::lock).empty());
  ::close(fd);
}

TEST(HandleAuditorDeathTest, OfdLockHasNoPidButIsMatchedByInode) {
  TempDir dir;
  const std::string path = dir / "ofd.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  HandleAuditor handles;
  handles.take_baseline(::getpid());
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  ASSERT_EQ(::fcntl(fd, F_OFD_SETLK, &fl), 0) << std::strerror(errno);
  auto locks = of_kind(handles.audit(::getpid()), LeakKind::lock);
  ::close(fd);  // releases the OFD lock
  ASSERT_EQ(locks.size(), 1u);
  EXPECT_EQ(detail(locks[0], "type"), "OFDLCK");
  EXPECT_EQ(detail(locks[0], "path"), path);
}

TEST(HandleAuditor, GoneProcessHasNoHandles) {
  HandleAuditor handles;
  handles.take_baseline(1 << 23);
  EXPECT_TRUE(handles.audit(1 << 23).empty());
}

}  // namespace
}  // namespace reclaim::audit

namespace reclaim::audit {
namespace {

TEST(ShmAuditorHostTest, IgnoresOtherRunsPrivateShmDirectories) {
  auto auditor = make_shm_auditor();
  AuditScope scope;  // no private /dev/shm: the host's is diffed
  auditor->take_baseline(scope);
  const std::string dir = "/dev/shm/reclaim.unit-" + std::to_string(::getpid());
  const std::string file = "/dev/shm/unit-leak-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto leaks = auditor->audit(scope);
  ::rmdir(dir.c_str());
  ::unlink(file.c_str());
  std::vector<std::string> paths;
  for (auto& l : leaks)
    for (auto& [k, v] : l.details)
      if (k == "path") paths.push_back(v);
  EXPECT_THAT(paths, ::testing::Contains("unit-leak-" + std::to_string(::getpid())));
  EXPECT_THAT(paths, ::testing::Not(::testing::Contains(::testing::StartsWith("reclaim."))));
}

}  // namespace
}  // namespace reclaim::audit
