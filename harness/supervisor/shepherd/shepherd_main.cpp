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
//   reclaim-shepherd [--private-tmp HOSTDIR --private-shm HOSTDIR [--carry /tmp/DIR]...] [--cgroup DIR]
//                    [--launcher] --ranks N -- EXE ARGS...
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
//   -> READY NS REASON            NS = 1 when the private /tmp and /dev/shm are in place
//   -> SPAWNED RANK PID T         with the rank's pidfd attached (SCM_RIGHTS)
//   -> SPAWNFAIL RANK ERRNO TEXT
//   -> REAPED PID CODE SIGNAL T   every child reaped (the ranks and any orphan)
//   <- KILL                       SIGKILL every descendant now
//   EOF from the supervisor       SIGKILL every descendant, reap them all, exit 0
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>
#include "supervisor/cgroup_launcher.hpp"
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
#include <map>
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
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd_to_pass >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
  }
  while (sendmsg(kChannelFd, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
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

// `carry`: host directories under /tmp that the target needs (its program or
// script lives there) and that the private /tmp would hide; each is bound back
// at its own path, onto an empty directory the supervisor made in the sandbox.
std::string private_tmp(const std::string& host_tmp, const std::string& host_shm,
                        const std::vector<std::string>& carry) {
  if (unshare(CLONE_NEWNS) != 0) return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return std::string("making / private: ") + std::strerror(errno);
  // Opened inside the new namespace (a bind mount's source must belong to it)
  // and before /tmp is covered.
  std::vector<int> carried;
  std::string error;
  for (const auto& dir : carry) {
    int fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
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

}  // namespace

int main(int argc, char** argv) {
  std::string host_tmp, host_shm, cgroup;
  std::vector<std::string> carry;
  int ranks = 1;
  bool launcher_mode = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--private-tmp" && i + 1 < argc) host_tmp = argv[++i];
    else if (a == "--private-shm" && i + 1 < argc) host_shm = argv[++i];
    else if (a == "--ranks" && i + 1 < argc) ranks = std::atoi(argv[++i]);
    else if (a == "--cgroup" && i + 1 < argc) cgroup = argv[++i];
    else if (a == "--carry" && i + 1 < argc) carry.emplace_back(argv[++i]);
    else if (a == "--launcher") launcher_mode = true;
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
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  if (!ns && !host_tmp.empty()) {
    // No private /tmp: point the temp variables at the sandbox on the host.
    for (auto& e : env_store) {
      if (e.rfind("TMPDIR=", 0) == 0) e = "TMPDIR=" + host_tmp;
      else if (e.rfind("TMP=", 0) == 0) e = "TMP=" + host_tmp;
      else if (e.rfind("TEMP=", 0) == 0) e = "TEMP=" + host_tmp;
    }
  }
  send_packet(std::string("READY ") + (ns ? "1 ok" : "0 " + reason));

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
