// reclaim-shepherd: the per-scenario subreaper.
//
// The supervisor starts one shepherd per scenario. The shepherd makes itself a
// child subreaper, so every process of the scenario — ranks, loader workers,
// setsid + double-forked daemons, children that cleared their environment —
// re-parents to *this scenario's* shepherd when its parent dies, never to a
// parent shared with other scenarios under -j N. It optionally gives the
// scenario a private /tmp and /dev/shm (a mount namespace, as systemd's
// PrivateTmp= does), spawns the ranks with Boost.Process, hands the supervisor
// a pidfd per rank, reaps every orphan and reports each exit.
//
// Usage (internal; started by the supervisor):
//   reclaim-shepherd [--private-tmp HOSTDIR --private-shm HOSTDIR [--carry /tmp/PATH]...] [--cgroup DIR]
//                    [--launcher] [--await-spawn] --ranks N -- EXE ARGS...
// With --await-spawn, the ranks start only once the supervisor sent SPAWN
// (it takes its baselines while the shepherd gets ready).
//   reclaim-shepherd --serve [--spares N] [--unshare]
// The second form is the zygote (supervisor/zygote.hpp): it keeps N shepherds
// forked ahead of the supervisor's requests on fd 3 (each a packet of strings
// — "NARGS NENV", the working directory, the first form's argv, the ranks'
// environment — with the channel, stdin, stdout+stderr and the ranks' control
// sockets attached), each with its mount namespace already entered under
// --unshare. A forked shepherd first sends "STARTED PID" with its own pidfd
// on the channel, then behaves as the first form.
// With --cgroup, rank K is created inside the cgroup v2 directory DIR/rK
// (clone3; or it joins before exec where that is not possible), so the
// cgroups list exactly the scenario's processes, per rank (the shepherd
// stays out). Each rank gets RANK, LOCAL_RANK and RECLAIM_RANK; with several
// ranks, TMPDIR/TMP/TEMP name the rank's own directory "rank-K" below the
// scenario's temp directory (the supervisor creates them).
// Descriptors: 3 = SOCK_SEQPACKET channel to the supervisor; 4 .. 4+N-1 = the
// control sockets of ranks 0 .. N-1 (each rank receives its own as fd 3).
// With --launcher, EXE is a launcher that starts the ranks itself (mpirun):
// it is spawned once, as "rank 0" of the protocol below, with the environment
// untouched, no control socket (the ranks connect to the address in
// RECLAIM_CONTROL) and the cgroup DIR/r0.
// Channel messages (one per packet):
//   -> STARTED PID                (forked by the zygote only) with its pidfd attached
//   -> READY NS REASON            NS = 1 when the private /tmp and /dev/shm are in place
//   -> SPAWNED RANK PID T         with the rank's pidfd attached (SCM_RIGHTS)
//   -> SPAWNFAIL RANK ERRNO TEXT      RANK -1: the shepherd itself could not start
//   -> REAPED PID CODE SIGNAL T   every child reaped (the ranks and any orphan)
//   <- SPAWN                      (--await-spawn) start the ranks now
//   <- KILL                       SIGKILL every descendant now
//   EOF from the supervisor       SIGKILL every descendant, reap them all, exit 0
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>
#include "supervisor/cgroup_launcher.hpp"
#include "supervisor/fd_passing.hpp"
#include "supervisor/launch_hooks.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

namespace bp2 = boost::process::v2;
namespace asio = boost::asio;

namespace {

constexpr int kChannelFd = 3;
constexpr int kFirstRankFd = 4;

long long now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void send_packet(const std::string& text, int fd_to_pass = -1) {
  reclaim::launch::send_with_fds(kChannelFd, text.data(), text.size(), &fd_to_pass, fd_to_pass >= 0 ? 1 : 0);
}

int pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// Every process whose parent chain leads to us, read from /proc.
std::vector<pid_t> descendants() {
  std::map<pid_t, pid_t> parent;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
      if (pid <= 0) continue;
      char path[64], buf[512];
      std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (n <= 0) continue;
      buf[n] = 0;
      const char* rp = std::strrchr(buf, ')');
      if (!rp) continue;
      char state = 0;
      int ppid = 0;
      if (std::sscanf(rp + 1, " %c %d", &state, &ppid) != 2) continue;
      parent[pid] = ppid;
    }
    closedir(d);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> frontier{getpid()};
  while (!frontier.empty()) {
    pid_t p = frontier.back();
    frontier.pop_back();
    for (auto& [child, pp] : parent) {
      if (pp == p) {
        out.push_back(child);
        frontier.push_back(child);
      }
    }
  }
  return out;
}

void kill_descendants() {
  for (pid_t pid : descendants()) {
    // Open the pidfd first: the process is our descendant, and our own
    // children cannot be reaped behind our back, so the pidfd is the process
    // we just saw (or an exited one, which ignores the signal).
    int pfd = pidfd_open(pid);
    if (pfd < 0) continue;
    syscall(SYS_pidfd_send_signal, pfd, SIGKILL, nullptr, 0);
    close(pfd);
  }
}

void reap_all(bool report) {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
    if (pid <= 0) return;
    if (report) {
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      send_packet("REAPED " + std::to_string(pid) + " " + std::to_string(code) + " " +
                  std::to_string(sig) + " " + std::to_string(now_ns()));
    }
  }
}

// Kills everything below us and waits until nothing is left.
void shutdown_scenario() {
  for (int round = 0; round < 1000; ++round) {
    // Without children we have no descendants either: any orphan below us
    // would have been re-parented to us. The common case costs no /proc scan.
    int st = 0;
    pid_t r = waitpid(-1, &st, WNOHANG | __WALL);
    if (r < 0 && errno == ECHILD) return;
    if (r > 0) continue;
    kill_descendants();
    int status = 0;
    pid_t pid = waitpid(-1, &status, __WALL);  // blocks until a child is gone
    if (pid < 0 && errno == ECHILD) {
      if (descendants().empty()) return;
    }
  }
}

// A mount namespace of our own, with nothing propagating back to the host.
// Slave, as systemd's PrivateTmp= does: what the host mounts or unmounts
// later still reaches us (a spare may wait a while before its scenario).
std::string enter_private_ns() {
  if (unshare(CLONE_NEWNS) != 0) return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
    return std::string("making / a slave mount: ") + std::strerror(errno);
  return {};
}

// Set when a spare of the zygote entered its namespace ahead of its request:
// the outcome of enter_private_ns() (empty: in place).
std::optional<std::string> g_ns_entered;

// A spare's pipe to the zygote, or -1. Records: 'T' when it took a request,
// 'R' once its ranks are started, 'E' when fd 3 was closed instead.
int g_zygote_fd = -1;

// Which spare this process was forked as: a note names its spare by pid and
// this number, so a late note never lands on a new spare that got the pid.
unsigned g_spare_seq = 0;

struct ZygoteNote {
  char kind;
  pid_t pid;
  unsigned seq;
};

void tell_zygote(char kind) {
  if (g_zygote_fd < 0) return;
  const ZygoteNote note{kind, getpid(), g_spare_seq};
  // MSG_NOSIGNAL: a zygote that is gone must not take its shepherds with it.
  (void)!send(g_zygote_fd, &note, sizeof note, MSG_NOSIGNAL);
}

// `carry`: host directories (or files right in /tmp) under /tmp that the
// target needs (its program or script lives there) and that the private /tmp
// would hide; each is bound back at its own path, onto an empty directory or
// file the supervisor made in the sandbox.
std::string private_tmp(const std::string& host_tmp, const std::string& host_shm,
                        const std::vector<std::string>& carry) {
  if (std::string e = g_ns_entered ? *g_ns_entered : enter_private_ns(); !e.empty()) return e;
  // Opened inside the new namespace (a bind mount's source must belong to it)
  // and before /tmp is covered.
  std::vector<int> carried;
  std::string error;
  for (const auto& dir : carry) {
    int fd = open(dir.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) {
      error = "opening " + dir + ": " + std::strerror(errno);
      break;
    }
    carried.push_back(fd);
  }
  bool tmp_mounted = false, shm_mounted = false;
  if (error.empty()) {
    if (mount(host_tmp.c_str(), "/tmp", nullptr, MS_BIND, nullptr) != 0)
      error = std::string("bind mount over /tmp: ") + std::strerror(errno);
    else
      tmp_mounted = true;
  }
  if (error.empty()) {
    if (mount(host_shm.c_str(), "/dev/shm", nullptr, MS_BIND, nullptr) != 0)
      error = std::string("bind mount over /dev/shm: ") + std::strerror(errno);
    else
      shm_mounted = true;
  }
  for (std::size_t k = 0; error.empty() && k < carry.size(); ++k) {
    std::string from = "/proc/self/fd/" + std::to_string(carried[k]);
    if (mount(from.c_str(), carry[k].c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      error = "bind mount of " + carry[k] + ": " + std::strerror(errno);
  }
  for (int fd : carried) close(fd);
  if (!error.empty()) {
    // Give the scenario the host's view back rather than a half-private one.
    if (tmp_mounted) umount2("/tmp", MNT_DETACH);
    if (shm_mounted) umount2("/dev/shm", MNT_DETACH);
  }
  return error;
}

// Runs in the rank between fork and exec: only async-signal-safe calls.
struct RankExecSetup {
  int cgroup_procs_fd = -1;  // the scenario cgroup's cgroup.procs, or -1

  // const: Boost.Process detects the hook by calling it, and silently skips
  // a hook it cannot call on the object as passed.
  bp2::error_code on_exec_setup(reclaim::launch::CgroupLauncher& launcher, const bp2::filesystem::path&,
                                const char* const*) const {
    // Not created inside the cgroup: join it now. Joining may fail (no
    // cgroup v2, no permission): the supervisor checks membership and falls
    // back to scanning /proc.
    if (!launcher.placed && cgroup_procs_fd >= 0) (void)!::write(cgroup_procs_fd, "0", 1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // The rank leads its own process group: group faults reach it and its workers only.
    if (setpgid(0, 0) != 0) return {errno, bp2::system_category()};
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);  // SIGSEGV/SIGABRT faults must not litter core files
    return {};
  }
};

// One scenario's shepherd, as described at the top. `environment` is the ranks'.
int shepherd(int argc, char** argv, char** environment) {
  std::string host_tmp, host_shm, cgroup;
  std::vector<std::string> carry;
  int ranks = 1;
  bool launcher_mode = false, await_spawn = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--private-tmp" && i + 1 < argc) host_tmp = argv[++i];
    else if (a == "--private-shm" && i + 1 < argc) host_shm = argv[++i];
    else if (a == "--ranks" && i + 1 < argc) ranks = std::atoi(argv[++i]);
    else if (a == "--cgroup" && i + 1 < argc) cgroup = argv[++i];
    else if (a == "--carry" && i + 1 < argc) carry.emplace_back(argv[++i]);
    else if (a == "--launcher") launcher_mode = true;
    else if (a == "--await-spawn") await_spawn = true;
    else if (a == "--") { ++i; break; }
    else {
      std::fprintf(stderr, "reclaim-shepherd: unexpected argument '%s' (internal program of reclaim)\n", argv[i]);
      return 2;
    }
  }
  if (i >= argc || ranks < 1) {
    std::fprintf(stderr, "reclaim-shepherd: no command (internal program of reclaim)\n");
    return 2;
  }

  // The harness ignores SIGPIPE; the ranks start with the default, as from a shell.
  signal(SIGPIPE, SIG_DFL);
  // The harness runs with SIGINT/SIGTERM blocked; start from a clean mask and
  // take SIGCHLD through a signalfd.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  // Our own process group: a terminal's Ctrl-C aimed at the harness must not
  // kill the shepherd and orphan the scenario.
  setpgid(0, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  // Under a private /tmp the executable may no longer be reachable by its path
  // (a build tree under /tmp): open it before mounting and exec it through
  // /proc/self/fd. A script needs the descriptor to survive exec (its
  // interpreter opens /dev/fd/N); an ELF binary does not.
  std::string exec_path = argv[i];
  std::string reason = "not requested";
  bool ns = false;
  std::vector<int> keep_fds;
  if (!host_tmp.empty() && !host_shm.empty()) {
    int exe_fd = open(argv[i], O_PATH | O_CLOEXEC);
    if (exe_fd >= 0) {
      char magic[4] = {};
      int rd = open(argv[i], O_RDONLY | O_CLOEXEC);
      bool elf = rd >= 0 && read(rd, magic, 4) == 4 && std::memcmp(magic, "\x7f" "ELF", 4) == 0;
      if (rd >= 0) close(rd);
      if (!elf) fcntl(exe_fd, F_SETFD, 0);
      exec_path = "/proc/self/fd/" + std::to_string(exe_fd);
      keep_fds.push_back(exe_fd);
    }
    reason = private_tmp(host_tmp, host_shm, carry);
    ns = reason.empty();
    if (!ns) exec_path = argv[i];
  }
  std::vector<std::string> env_store;
  for (char** e = environment; *e; ++e) env_store.emplace_back(*e);
  if (!ns && !host_tmp.empty()) {
    // No private /tmp: point the temp variables at the sandbox on the host.
    for (auto& e : env_store) {
      if (e.rfind("TMPDIR=", 0) == 0) e = "TMPDIR=" + host_tmp;
      else if (e.rfind("TMP=", 0) == 0) e = "TMP=" + host_tmp;
      else if (e.rfind("TEMP=", 0) == 0) e = "TEMP=" + host_tmp;
    }
  }
  send_packet(std::string("READY ") + (ns ? "1 ok" : "0 " + reason));
  if (await_spawn) {
    // The supervisor takes its baselines meanwhile; nothing may start before.
    char word[16] = {};
    ssize_t n;
    do n = recv(kChannelFd, word, sizeof word - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0 || std::strncmp(word, "SPAWN", 5) != 0) return 0;  // the supervisor gave up
  }

  std::vector<const char*> rank_argv;
  for (int k = i; k < argc; ++k) rank_argv.push_back(argv[k]);
  rank_argv.push_back(nullptr);

  std::vector<int> cgroup_dir_fds, cgroup_procs_fds;
  for (int r = 0; r < ranks; ++r) {
    const std::string dir = cgroup + "/r" + std::to_string(r);
    cgroup_dir_fds.push_back(cgroup.empty() ? -1 : ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    cgroup_procs_fds.push_back(cgroup.empty() ? -1 : ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
  }
  asio::io_context ctx;
  // The launcher's exact type: Boost.Process 1.81's converting move to
  // bp2::process leaves members uninitialised.
  std::vector<bp2::basic_process<asio::io_context::executor_type>> procs;
  if (launcher_mode) ranks = 1;
  for (int r = 0; r < ranks; ++r) {
    std::vector<std::string> env = env_store;
    const std::string rs = std::to_string(r);
    if (!launcher_mode) {
      for (const char* key : {"RANK=", "LOCAL_RANK=", "RECLAIM_RANK=", "ROLE_RANK="}) {
        bool found = false;
        for (auto& e : env)
          if (e.rfind(key, 0) == 0) { e = key + rs; found = true; }
        if (!found) env.push_back(key + rs);
      }
      if (ranks > 1)
        for (auto& e : env)
          for (const char* key : {"TMPDIR=", "TMP=", "TEMP="})
            if (e.rfind(key, 0) == 0) e += "/rank-" + rs;
    }
    std::vector<const char*> envp;
    for (auto& e : env) envp.push_back(e.c_str());
    envp.push_back(nullptr);

    reclaim::launch::CgroupLauncher launcher;
    launcher.cgroup_fd = cgroup_dir_fds[static_cast<std::size_t>(r)];
    launcher.env = envp.data();
    bp2::error_code ec;
    for (int fd : keep_fds) launcher.fd_whitelist.push_back(fd);
    const RankExecSetup setup{cgroup_procs_fds[static_cast<std::size_t>(r)]};
    // The executor overload: the io_context one of Boost 1.81 drops `ec` and throws.
    auto proc = launcher_mode
                    ? launcher(ctx.get_executor(), ec, exec_path, rank_argv.data(), setup)
                    : launcher(ctx.get_executor(), ec, exec_path, rank_argv.data(),
                               reclaim::launch::BindFd{3, kFirstRankFd + r}, setup);
    if (ec) {
      if (launcher.pidfd >= 0) close(launcher.pidfd);  // the child's: it failed to exec
      send_packet("SPAWNFAIL " + rs + " " + std::to_string(ec.value()) + " " + ec.message());
      continue;
    }
    pid_t pid = proc.id();
    // From clone3, or taken before we ever wait: the child cannot be reaped
    // (and its PID recycled) until we do, so this pidfd is the rank.
    int pfd = launcher.pidfd >= 0 ? launcher.pidfd : pidfd_open(pid);
    // Kept, not detached (detach() is unreliable in Boost.Process 1.81); its
    // destructor finds the rank reaped and does nothing.
    procs.push_back(std::move(proc));
    send_packet("SPAWNED " + rs + " " + std::to_string(pid) + " " + std::to_string(now_ns()), pfd);
    if (pfd >= 0) close(pfd);
    if (!launcher_mode) close(kFirstRankFd + r);
  }

  // The zygote forks the next spare now, while the ranks start up.
  tell_zygote('R');
  if (g_zygote_fd >= 0) close(g_zygote_fd);
  g_zygote_fd = -1;

  pollfd fds[2] = {{kChannelFd, POLLIN, 0}, {sigfd, POLLIN, 0}};
  for (;;) {
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      while (read(sigfd, &info, sizeof info) > 0) {
      }
      reap_all(true);
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[256];
      ssize_t len = recv(kChannelFd, buf, sizeof buf - 1, 0);
      if (len <= 0) break;  // the supervisor closed the channel (or died)
      buf[len] = 0;
      if (std::strncmp(buf, "KILL", 4) == 0) kill_descendants();
    }
  }
  shutdown_scenario();
  return 0;
}

// ---- --serve: the zygote ------------------------------------------------------

// A request that cannot become a shepherd: say so on its channel (the
// supervisor waits there), then let its descriptors go.
void refuse(const std::vector<int>& passed, const std::string& why) {
  if (!passed.empty()) {
    const std::string text = "SPAWNFAIL -1 0 shepherd zygote: " + why;
    send(passed[0], text.data(), text.size(), MSG_NOSIGNAL);
  }
  for (int fd : passed) close(fd);
}

// In a child the zygote just forked: put the request's descriptors in place,
// tell the supervisor who we are, and become that scenario's shepherd.
// `fds`: the channel, stdin, stdout+stderr, then one control socket per rank.
int forked_shepherd(const std::vector<char>& data, const std::vector<int>& fds) {
  std::vector<char*> strings;
  for (std::size_t at = 0; !data.empty() && data.back() == '\0' && at < data.size();) {
    strings.push_back(const_cast<char*>(data.data() + at));
    at += std::strlen(data.data() + at) + 1;
  }
  int nargs = 0, nenv = 0;
  if (strings.size() < 2 || std::sscanf(strings[0], "%d %d", &nargs, &nenv) != 2 || nargs < 1 || nenv < 0 ||
      strings.size() != static_cast<std::size_t>(2 + nargs + nenv) || fds.size() < 3) {
    refuse(fds, "malformed request");
    return 2;
  }
  // Every descriptor above the highest target first, so no dup2 overwrites
  // a source still to be placed.
  const int nprobes = static_cast<int>(fds.size()) - 3;
  const int high = kFirstRankFd + nprobes + 8;
  std::vector<int> moved;
  for (int fd : fds) {
    moved.push_back(fcntl(fd, F_DUPFD_CLOEXEC, high));
    if (moved.back() < 0) {
      refuse(fds, std::string("placing descriptors: ") + std::strerror(errno));
      return 2;
    }
  }
  for (int fd : fds) close(fd);
  if (g_zygote_fd >= 0) {
    const int up = fcntl(g_zygote_fd, F_DUPFD_CLOEXEC, high);
    close(g_zygote_fd);
    g_zygote_fd = up;
  }
  bool placed = dup2(moved[0], kChannelFd) >= 0 && dup2(moved[1], 0) >= 0 && dup2(moved[2], 1) >= 0 &&
                dup2(moved[2], 2) >= 0;
  for (int k = 0; placed && k < nprobes; ++k)
    placed = dup2(moved[static_cast<std::size_t>(3 + k)], kFirstRankFd + k) >= 0;
  if (!placed) {
    refuse({moved[0]}, std::string("placing descriptors: ") + std::strerror(errno));
    return 2;
  }
  for (int fd : moved) close(fd);
  // The pipe to the zygote, if any, just above the control sockets; then
  // whatever else the zygote had open.
  int last = kFirstRankFd + nprobes - 1;
  if (g_zygote_fd >= 0) {
    last = kFirstRankFd + nprobes;
    const int up = g_zygote_fd;
    g_zygote_fd = dup3(up, last, O_CLOEXEC) == last ? last : -1;
    close(up);
  }
  syscall(SYS_close_range, last + 1, ~0U, 0);
  if (chdir(strings[1]) != 0) {
    send_packet(std::string("SPAWNFAIL -1 ") + std::to_string(errno) + " chdir " + strings[1] + ": " +
                std::strerror(errno));
    return 2;
  }
  // Our pidfd, opened by ourselves: the supervisor's handle on this shepherd.
  int self = pidfd_open(getpid());
  if (self < 0) {
    send_packet(std::string("SPAWNFAIL -1 ") + std::to_string(errno) + " pidfd_open: " + std::strerror(errno));
    return 2;
  }
  send_packet("STARTED " + std::to_string(getpid()), self);
  close(self);
  std::vector<char*> argv(strings.begin() + 2, strings.begin() + 2 + nargs);
  argv.push_back(nullptr);
  std::vector<char*> envp(strings.begin() + 2 + nargs, strings.end());
  envp.push_back(nullptr);
  return shepherd(nargs, argv.data(), envp.data());
}

// Receives one request from the supervisor: its strings and descriptors.
// 1 when it did, 0 at EOF (the supervisor is done), -1 on error (errno; EAGAIN
// with MSG_DONTWAIT and none waiting). Several spares may wait here at once;
// each packet goes to one of them whole.
int receive_request(std::vector<char>& data, std::vector<int>& passed, int flags) {
  static char buf[1 << 20];  // only the pages a request fills get touched
  passed.clear();
  bool truncated = false;
  const ssize_t n = reclaim::launch::recv_with_fds(kChannelFd, buf, sizeof buf, passed, flags, &truncated);
  if (n <= 0) return n == 0 ? 0 : -1;
  data.assign(buf, buf + n);
  // Cut short: forked_shepherd() refuses it (no final NUL).
  if (truncated) data.clear();
  return 1;
}

// A spare: forked ahead of time (with its mount namespace already entered
// when `unshare_ns`), it takes the next request from fd 3 itself and becomes
// that request's shepherd, telling the zygote through `notes` ('T' now, 'R'
// once its ranks run). Exits 0 when the supervisor closed fd 3.
[[noreturn]] void spare(int notes, bool unshare_ns, pid_t zygote) {
  // A spare dies with the zygote: requests then fail at once and the
  // supervisor starts its shepherds itself. A taken one lives on.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != zygote) _exit(4);
  if (unshare_ns) g_ns_entered = enter_private_ns();
  std::vector<char> data;
  std::vector<int> passed;
  g_zygote_fd = notes;
  if (int got = receive_request(data, passed, 0); got != 1) {
    if (got == 0) tell_zygote('E');
    _exit(got == 0 ? 0 : 5);
  }
  prctl(PR_SET_PDEATHSIG, 0);
  tell_zygote('T');
  _exit(forked_shepherd(data, passed));
}

// Keeps `spares` shepherds forked ahead of the requests, so a scenario waits
// neither for an exec nor for a fork. A new spare is forked while no taken
// one is still starting its ranks (the fork would compete with them for the
// CPU). Runs until the supervisor closes fd 3, then until its last shepherd
// has exited, reaping each one.
int serve(bool unshare_ns, int spares) {
  setpgid(0, 0);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  const int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  int notes[2];  // one packet per note
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, notes) != 0) return 1;
  fcntl(notes[0], F_SETFL, O_NONBLOCK);
  const pid_t self = getpid();
  int live = 0;
  std::set<pid_t> waiting, starting;  // spares without a request; shepherds starting their ranks
  std::map<pid_t, unsigned> spare_seq;
  unsigned next_seq = 0;
  int failed_in_a_row = 0;  // spares that ended without a request: past 10, none are forked
  bool open = true;
  while (open || live > 0) {
    while (open && starting.empty() && static_cast<int>(waiting.size()) < spares && failed_in_a_row < 10) {
      g_spare_seq = ++next_seq;
      const pid_t pid = fork();
      if (pid == 0) {
        close(sigfd);
        close(notes[0]);
        spare(notes[1], unshare_ns, self);
      }
      if (pid < 0) break;  // none: the next request is served here
      ++live;
      waiting.insert(pid);
      spare_seq[pid] = g_spare_seq;
    }
    // Without a spare waiting, the next request is served here.
    const bool serve_here = open && waiting.empty();
    pollfd fds[3] = {{sigfd, POLLIN, 0}, {notes[0], POLLIN, 0}, {serve_here ? kChannelFd : -1, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0 && errno != EINTR) return 1;
    ZygoteNote note;
    while (recv(notes[0], &note, sizeof note, 0) == static_cast<ssize_t>(sizeof note)) {
      const auto it = spare_seq.find(note.pid);
      if (it == spare_seq.end() || it->second != note.seq) continue;  // from a spare already reaped
      if (note.kind == 'T' && waiting.erase(note.pid)) {
        starting.insert(note.pid);
        failed_in_a_row = 0;
      } else if (note.kind == 'R') {
        starting.erase(note.pid);
      } else if (note.kind == 'E' && open) {
        open = false;  // the supervisor is done (or gone)
        close(kChannelFd);
      }
    }
    signalfd_siginfo info;
    while (read(sigfd, &info, sizeof info) > 0) {
    }
    int status = 0;
    for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
      // A spare that ends without a word failed: another is forked.
      --live;
      spare_seq.erase(pid);
      starting.erase(pid);
      if (waiting.erase(pid)) ++failed_in_a_row;
    }
    if (!serve_here || !(fds[2].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    std::vector<char> data;
    std::vector<int> passed;
    // Never blocking: notes and exits must keep being read.
    const int got = receive_request(data, passed, MSG_DONTWAIT);
    if (got < 0) continue;
    if (got == 0) {
      open = false;  // the supervisor is done (or gone)
      close(kChannelFd);
      continue;
    }
    const pid_t pid = passed.size() >= 3 ? fork() : -1;
    if (pid == 0) {
      close(sigfd);
      close(notes[0]);
      close(notes[1]);
      _exit(forked_shepherd(data, passed));
    }
    if (pid > 0) {
      ++live;
      for (int fd : passed) close(fd);
    } else {
      refuse(passed, passed.size() < 3 ? "malformed request" : std::strerror(errno));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--serve") == 0) {
    bool unshare_ns = false;
    int spares = 1;
    for (int k = 2; k < argc; ++k) {
      if (std::strcmp(argv[k], "--unshare") == 0) unshare_ns = true;
      else if (std::strcmp(argv[k], "--spares") == 0 && k + 1 < argc) spares = std::max(0, std::atoi(argv[++k]));
    }
    return serve(unshare_ns, spares);
  }
  return shepherd(argc, argv, environ);
}
