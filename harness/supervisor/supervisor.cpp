#include "supervisor/supervisor.hpp"

#include "supervisor/fd_passing.hpp"
#include "supervisor/launch_hooks.hpp"
#include "supervisor/verdict.hpp"
#include "supervisor/zygote.hpp"
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "audit/audit.hpp"
#include "audit/handle_auditor.hpp"
#include "protocol/wire.hpp"
#include "sys/cgroup.hpp"
#include "sys/fs.hpp"
#include "sys/inotify.hpp"
#include "sys/pidfd.hpp"
#include "sys/proc.hpp"

extern char** environ;

namespace reclaim::supervisor {

namespace bp2 = boost::process::v2;
using namespace std::chrono_literals;
namespace launch = reclaim::launch;

namespace {

constexpr std::int64_t kMs = 1'000'000;

// A file descriptor owned by exactly one object.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

bool under(const std::string& path, std::string_view dir) {
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

void send_line(int fd, const wire::Message& m) {
  std::string line = wire::encode(m);
  std::size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // the rank is gone; its exit is observed through its pidfd
    }
    off += static_cast<std::size_t>(n);
  }
}

// Receives one packet from the shepherd, with an optional passed descriptor.
// nullopt with errno EAGAIN when none is waiting, errno 0 at EOF.
std::optional<std::string> recv_packet(int fd, Fd* passed) {
  char buf[512];
  std::vector<int> fds;
  const ssize_t n = launch::recv_with_fds(fd, buf, sizeof buf - 1, fds, MSG_DONTWAIT);
  if (n == 0) errno = 0;  // EOF: not to be mistaken for a stale EAGAIN
  if (n <= 0) return std::nullopt;
  for (std::size_t k = 0; k < fds.size(); ++k) {
    if (k == 0 && passed) *passed = Fd(fds[k]);
    else ::close(fds[k]);
  }
  return std::string(buf, static_cast<std::size_t>(n));
}

// Reads what is waiting on the stream `fd` into `buf`, without blocking:
// the number of bytes read, 0 when nothing was waiting, -1 when the peer
// closed the stream or it failed (the caller drops it).
ssize_t read_available(int fd, wire::LineBuffer& buf) {
  char chunk[4096];
  ssize_t n;
  do n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return -1;
  if (n < 0) return 0;
  buf.feed(std::string_view(chunk, static_cast<std::size_t>(n)));
  return n;
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    auto sp = s.find(' ');
    out.push_back(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return out;
}

long to_long(std::string_view s) { return std::strtol(std::string(s).c_str(), nullptr, 10); }

std::string tail_lines(const std::string& path, std::size_t max_lines) {
  auto text = sys::read_small_file(path);
  if (!text || text->empty()) return {};
  std::string_view t = *text;
  if (t.back() == '\n') t.remove_suffix(1);
  std::size_t pos = t.size();
  for (std::size_t lines = 0; lines < max_lines && pos != std::string_view::npos;) {
    pos = t.rfind('\n', pos == 0 ? 0 : pos - 1);
    if (pos == std::string_view::npos) break;
    ++lines;
  }
  return std::string(pos == std::string_view::npos ? t : t.substr(pos + 1));
}

// A free TCP port on the loopback interface, for MASTER_PORT: bound with port
// 0 and released, as torchrun does. 0 when none could be had.
int free_loopback_port() {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
  socklen_t len = sizeof addr;
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

// Descriptors the shepherd receives, placed at their numbers between fork and
// exec. The sources must not lie in the range of the targets (the caller
// moves them above it), so no dup2 overwrites a source still to be placed.
struct BindFds {
  std::vector<std::pair<int, int>> map;  // (target, source)

  bp2::error_code on_setup(bp2::posix::default_launcher& launcher, const bp2::filesystem::path&,
                           const char* const*) {
    for (auto& [target, source] : map) launcher.fd_whitelist.push_back(target);
    return {};
  }
  bp2::error_code on_exec_setup(bp2::posix::default_launcher&, const bp2::filesystem::path&, const char* const*) {
    for (auto& [target, source] : map)
      if (::dup2(source, target) == -1) return {errno, bp2::system_category()};
    return {};
  }
};

// One rank of a scenario, as the supervisor follows it.
struct RankState {
  int rank = 0;
  std::optional<sys::Pidfd> pfd;
  Fd probe;                  // the harness's end of the rank's control channel
  wire::LineBuffer buf;
  bool hello = false;
  int probe_pid = 0;
  std::optional<int> bye;    // the code of its BYE
  audit::HandleAuditor handles;
  RankResult out;
  bool status_known = false; // the shepherd reported its exit status
  bool settled = false;      // exit judged: completed or failed
  bool waiting = false;      // blocked in a collective
  int collectives = 0;       // collectives it entered

  bool exited() const { return out.exited_ns != 0; }
};

// One scenario from sandbox to verdict.
class ScenarioRun {
 public:
  ScenarioRun(const Scenario& sc, std::uint64_t seq, const SupervisorConfig& cfg)
      : sc_(sc),
        cfg_(cfg),
        ranks_(static_cast<std::size_t>(std::max(1, sc.world_size))),
        via_mpirun_(sc.expect.launcher == Launcher::mpirun),
        cgroup_per_rank_(!via_mpirun_) {
    res_.scenario = sc;
    control_name_ = fmt::format("reclaim.{}.{}", ::getpid(), seq);
    root_ = fmt::format("{}/s{}", cfg.sandbox_base, seq);
    tmp_ = root_ + "/tmp";
    marker_ = fmt::format("RECLAIM_MARKER={}.{}", ::getpid(), seq);
    if (cfg.private_tmp) shm_ = fmt::format("{}.s{}", cfg.shm_base, seq);
    if (!cfg.cgroup_base.empty()) cgroup_ = fmt::format("{}/s{}", cfg.cgroup_base, seq);
    for (std::size_t k = 0; k < ranks_.size(); ++k) ranks_[k].rank = ranks_[k].out.rank = static_cast<int>(k);
  }

  RunOutcome run() {
    if (prepare() && spawn()) loop();
    finish();
    cleanup();
    return {std::move(res_), interrupted_};
  }

 private:
  int world() const { return static_cast<int>(ranks_.size()); }
  bool multi() const { return ranks_.size() > 1; }
  RankState& failing() { return ranks_[static_cast<std::size_t>(std::clamp(sc_.rank, 0, world() - 1))]; }
  std::string rank_cgroup(int k) const { return fmt::format("{}/r{}", cgroup_, k); }

  // ---- set-up -----------------------------------------------------------------

  bool fail(std::string what) {
    if (res_.error.empty()) res_.error = std::move(what);
    harness_error_ = true;
    return false;
  }

  // The sandbox directory, the private /dev/shm directory and the cgroups.
  bool make_sandbox() {
    if (auto ec = sys::make_private_dir(tmp_)) return fail(fmt::format("sandbox {}: {}", tmp_, ec.message()));
    if (!shm_.empty()) {
      if (auto ec = sys::make_private_dir(shm_)) {
        res_.notes.push_back(fmt::format("private /dev/shm unavailable ({}): /dev/shm is audited by diff", ec.message()));
        shm_.clear();
      }
    }
    if (!cgroup_.empty()) make_rank_cgroups(::mkdir(cgroup_.c_str(), 0755) == 0, 0);
    return true;
  }

  // One child cgroup per rank: every process a rank starts stays in it,
  // which names the rank of each leftover process exactly.
  void make_rank_cgroups(bool ok, int from) {
    for (int k = from; ok && k < world(); ++k) ok = ::mkdir(rank_cgroup(k).c_str(), 0755) == 0;
    if (!ok) {
      remove_cgroups();
      cgroup_.clear();  // fall back to /proc scans
    }
  }

  bool prepare() {
    if (auto made = cfg_.zygote ? cfg_.zygote->take_sandbox() : std::nullopt) {
      // Made ahead on the zygote's thread, the cgroup with its child r0.
      root_ = made->root;
      tmp_ = made->tmp;
      shm_ = made->shm;
      cgroup_ = made->cgroup;
      if (!cgroup_.empty()) make_rank_cgroups(true, 1);
    } else if (!make_sandbox()) {
      return false;
    }
    if (!shm_.empty()) {
      // Where the target's own directories and files under /tmp reappear
      // inside its private /tmp: empty directories and files to bind them
      // onto, part of the baseline, never leaks.
      char cwd[4096];
      for (const auto& path : paths_to_carry(sc_.target, ::getcwd(cwd, sizeof cwd) ? cwd : "")) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) continue;
        const std::string name = path.substr(5), at = tmp_ + "/" + name;
        const bool dir = S_ISDIR(st.st_mode);
        if (dir ? ::mkdir(at.c_str(), 0755) != 0 : !Fd(::open(at.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)))
          continue;
        carry_.push_back(path);
        baseline_entries_.emplace_back(name, dir ? "dir" : "file");
      }
    }
    if (multi()) {
      // Each rank's TMPDIR: what a rank leaves there is attributed to it.
      for (int k = 0; k < world(); ++k) {
        std::string name = fmt::format("rank-{}", k);
        if (::mkdir((tmp_ + "/" + name).c_str(), 0700) != 0)
          return fail(fmt::format("sandbox {}/{}: {}", tmp_, name, std::strerror(errno)));
        baseline_entries_.emplace_back(name, "dir");
      }
    }
    return true;
  }

  // The watches on the sandbox and the auditors' baselines: taken while the
  // shepherd gets ready, and complete before it may start a rank.
  bool watch_and_take_baselines() {
    scope_.marker = marker_;
    scope_.sandbox_tmp = tmp_;
    scope_.sandbox_shm = shm_;
    scope_.seen_pids = &seen_pids_;
    auditors_.push_back(audit::make_process_auditor());
    auditors_.push_back(audit::make_temp_file_auditor());
    auditors_.push_back(audit::make_shm_auditor());
    auditors_.push_back(audit::make_sysv_auditor());
    auto tw = sys::TreeWatch::open(tmp_);
    if (!tw) return fail(fmt::format("inotify on {}: {}", tmp_, tw.error().message()));
    tmp_watch_.emplace(std::move(tw.value()));
    if (!shm_.empty()) {
      auto sw = sys::TreeWatch::open(shm_);
      if (!sw) return fail(fmt::format("inotify on {}: {}", shm_, sw.error().message()));
      shm_watch_.emplace(std::move(sw.value()));
    }
    for (auto& a : auditors_) a->take_baseline(scope_);
    return true;
  }

  // The shepherd waits for this word before it starts the ranks.
  bool release_shepherd() {
    if (::send(chan_.get(), "SPAWN", 5, MSG_NOSIGNAL) != 5)
      return fail(fmt::format("the shepherd is gone before starting the ranks: {}", std::strerror(errno)));
    return true;
  }

  std::vector<std::string> rank_environment() const {
    static const char* const kOwned[] = {"TMPDIR=", "TMP=", "TEMP=", "RECLAIM_", "RANK=", "WORLD_SIZE=",
                                         "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT=",
                                         "GROUP_RANK=", "ROLE_RANK=", "ROLE_WORLD_SIZE="};
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string_view v(*e);
      bool owned = std::any_of(std::begin(kOwned), std::end(kOwned),
                               [&](const char* k) { return v.substr(0, std::strlen(k)) == k; });
      if (!owned) env.emplace_back(v);
    }
    // With a private /tmp the shepherd keeps these (and appends /rank-K for
    // several ranks); without, it rewrites them to the sandbox's host path.
    std::string tmp = "/tmp";
    if (shm_.empty()) tmp = tmp_;
    env.push_back("TMPDIR=" + tmp);
    env.push_back("TMP=" + tmp);
    env.push_back("TEMP=" + tmp);
    env.push_back("RECLAIM_CONTROL=" + (via_mpirun_ ? control_address_ : std::string("fd:3")));
    env.push_back("RECLAIM_SCENARIO=" + sc_.id());
    env.push_back(marker_);
    env.push_back(fmt::format("RECLAIM_ENTRY={}", to_string(sc_.entry)));
    env.push_back(fmt::format("RECLAIM_WORLD_SIZE={}", world()));
    // torchrun's variables; RANK and LOCAL_RANK are set per rank by the shepherd.
    env.push_back(fmt::format("WORLD_SIZE={}", world()));
    env.push_back(fmt::format("LOCAL_WORLD_SIZE={}", world()));
    env.push_back("GROUP_RANK=0");
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back(fmt::format("MASTER_PORT={}", master_port_));
    return env;
  }

  bool spawn() {
    if (sc_.target.argv.empty()) return fail("no target command: give one in the suite's [target] or after --");
    // Boost.Process execs without a PATH lookup: resolve the command first.
    auto exe = resolve_executable(sc_.target.argv[0]);
    if (!exe)
      return fail(fmt::format("the target '{}' is not an executable file{}", sc_.target.argv[0],
                              sc_.target.argv[0].find('/') == std::string::npos ? " on PATH" : ""));
    master_port_ = free_loopback_port();
    const int n = world();
    // Child-side descriptors are moved above every target number first.
    const int floor = 3 + 1 + n + 8;
    auto high = [&](int fd) {
      int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
      ::close(fd);
      return moved;
    };
    int chan[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) != 0)
      return fail(fmt::format("socketpair: {}", std::strerror(errno)));
    chan_ = Fd(chan[0]);
    Fd chan_child(high(chan[1]));
    std::vector<Fd> probe_children;
    if (via_mpirun_ && !listen_control()) return false;
    for (auto& r : ranks_) {
      if (via_mpirun_) break;  // the ranks connect to the control address
      int probe[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, probe) != 0)
        return fail(fmt::format("socketpair: {}", std::strerror(errno)));
      r.probe = Fd(probe[0]);
      probe_children.emplace_back(high(probe[1]));
    }
    // The ranks' output, kept in memory: shown when the scenario fails.
    log_ = Fd(::memfd_create("reclaim-output", MFD_CLOEXEC));
    Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (log_) log_ = Fd(high(log_.release()));
    if (devnull) devnull = Fd(high(devnull.release()));
    if (!chan_child || !devnull ||
        std::any_of(probe_children.begin(), probe_children.end(), [](const Fd& f) { return !f; }))
      return fail(fmt::format("descriptors for the shepherd: {}", std::strerror(errno)));

    std::vector<std::string> args;
    auto arg = [&](std::string a) { args.push_back(std::move(a)); };
    if (!shm_.empty()) {
      arg("--private-tmp");
      arg(tmp_);
      arg("--private-shm");
      arg(shm_);
    }
    for (const auto& dir : carry_) {
      arg("--carry");
      arg(dir);
    }
    if (!cgroup_.empty()) {
      arg("--cgroup");
      arg(cgroup_);
    }
    arg("--await-spawn");
    if (via_mpirun_) {
      auto mpirun = resolve_executable("mpirun");
      if (!mpirun) return fail("the mpirun launcher needs 'mpirun' on PATH (Debian: apt-get install openmpi-bin)");
      arg("--launcher");
      arg("--ranks");
      arg("1");
      arg("--");
      for (auto& a : mpirun_command(*mpirun, *exe)) arg(std::move(a));
    } else {
      arg("--ranks");
      arg(std::to_string(n));
      arg("--");
      arg(*exe);
    }
    for (std::size_t i = 1; i < sc_.target.argv.size(); ++i) arg(sc_.target.argv[i]);
    std::vector<const char*> argv{cfg_.shepherd_path.c_str()};
    for (auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    auto env = rank_environment();
    std::vector<const char*> envp;
    for (auto& e : env) envp.push_back(e.c_str());
    envp.push_back(nullptr);

    const int out = log_ ? log_.get() : STDERR_FILENO;
    if (cfg_.zygote && probe_children.size() + 3 <= ShepherdZygote::kMaxFds) {
      std::vector<int> fds{chan_child.get(), devnull.get(), out};
      for (const auto& p : probe_children) fds.push_back(p.get());
      char cwd[4096];
      std::vector<std::string> command = args;
      command.insert(command.begin(), cfg_.shepherd_path);
      auto ec = cfg_.zygote->request(::getcwd(cwd, sizeof cwd) ? cwd : "/", command, env, fds);
      if (!ec) {
        // The request carries them now: closing ours lets the channel reach
        // EOF if the request dies with the zygote before a shepherd took it.
        chan_child.reset();
        devnull.reset();
        probe_children.clear();
        return watch_and_take_baselines() && await_started() && release_shepherd();
      }
      // The zygote is gone (or the request too large): start one here.
      res_.notes.push_back(fmt::format("the shepherd zygote took no request ({}): started a shepherd here", ec.message()));
    }

    // The io_context and the process object live as long as the scenario:
    // Boost.Process 1.81's detach() is unreliable, and destroying the object
    // is harmless once the shepherd has been reaped (its waitpid finds no child).
    io_ = std::make_unique<boost::asio::io_context>();
    bp2::posix::default_launcher launcher;
    launcher.env = envp.data();
    bp2::error_code ec;
    std::fflush(nullptr);  // Boost.Process 1.81 calls exit(), not _exit(), when exec fails
    BindFds fds;
    fds.map = {{0, devnull.get()}, {1, out}, {2, out}, {3, chan_child.get()}};
    for (std::size_t k = 0; k < probe_children.size(); ++k)
      fds.map.emplace_back(4 + static_cast<int>(k), probe_children[k].get());
    // The executor overload: the io_context one of Boost 1.81 drops `ec` and throws.
    auto proc = launcher(io_->get_executor(), ec, cfg_.shepherd_path, argv.data(), std::move(fds));
    if (ec) return fail(fmt::format("starting {}: {}", cfg_.shepherd_path, ec.message()));
    shepherd_pid_ = proc.id();
    shepherd_proc_.emplace(std::move(proc));
    // Our child: it cannot be reaped before we wait, so the pidfd is it.
    auto pfd = sys::Pidfd::open(shepherd_pid_);
    if (!pfd) return fail(fmt::format("pidfd_open(shepherd): {}", pfd.error().message()));
    shepherd_pfd_.emplace(std::move(pfd.value()));
    return watch_and_take_baselines() && started() && release_shepherd();
  }

  bool started() {
    scope_.shepherd_pid = shepherd_pid_;
    deadline_ns_ = sys::monotonic_ns() + sc_.expect.timeout.count() * kMs;
    return true;
  }

  // A shepherd from the zygote introduces itself on the channel with its pid
  // and pidfd; the zygote (its parent) reaps it. This takes well under a
  // millisecond; the channel reaches EOF if the request is lost with the
  // zygote, so the deadline is only for a shepherd that hangs on its way.
  bool await_started() {
    const std::int64_t until = sys::monotonic_ns() + 10'000 * kMs;
    while (chan_) {
      const std::int64_t left = until - sys::monotonic_ns();
      if (left <= 0) return fail("the shepherd zygote did not start a shepherd within 10 s");
      pollfd p{chan_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>((left + kMs - 1) / kMs)) <= 0) continue;
      Fd passed;
      auto pkt = recv_packet(chan_.get(), &passed);
      if (!pkt) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        break;
      }
      auto f = split(*pkt);
      if (f.size() == 2 && f[0] == "STARTED") {
        if (!passed) return fail(fmt::format("the shepherd {} sent no pidfd", f[1]));
        shepherd_pid_ = static_cast<int>(to_long(f[1]));
        shepherd_pfd_.emplace(sys::Pidfd::adopt(passed.release(), shepherd_pid_));
        return started();
      }
      return fail(fmt::format("the shepherd zygote: {}", *pkt));
    }
    return fail("the shepherd zygote closed the channel before a shepherd started");
  }

  // The control address of ranks started by mpirun: an abstract unix socket
  // (no file to clean up, reachable from the scenario's mount namespace), or
  // with control_tcp a TCP port on the loopback interface.
  bool listen_control() {
    if (cfg_.control_tcp) {
      listen_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof addr;
      if (!listen_ || ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
          ::listen(listen_.get(), world() + 8) != 0 ||
          ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        return fail(fmt::format("control socket on 127.0.0.1: {}", std::strerror(errno)));
      control_address_ = fmt::format("tcp:127.0.0.1:{}", ntohs(addr.sin_port));
      return true;
    }
    listen_ = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path + 1, control_name_.data(), control_name_.size());
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + control_name_.size());
    if (!listen_ || ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_.get(), world() + 8) != 0)
      return fail(fmt::format("control socket @{}: {}", control_name_, std::strerror(errno)));
    control_address_ = "unix:@" + control_name_;
    return true;
  }

  // mpirun starting every rank through a small shell step that gives it
  // torchrun's RANK/LOCAL_RANK and its own TMPDIR from Open MPI's variables,
  // then execs the target (the rank keeps the shell's pid). -x forwards what
  // the ranks need when mpirun places them on other machines.
  std::vector<std::string> mpirun_command(const std::string& mpirun, const std::string& exe) const {
    // mpirun stops the other ranks itself: SIGTERM, then SIGKILL after
    // odls_base_sigkill_timeout whole seconds — the suite's shutdown timeout.
    const auto shutdown_s = std::max<std::int64_t>(1, (sc_.expect.shutdown_timeout.count() + 999) / 1000);
    std::vector<std::string> a{mpirun,  "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                               "--mca", "odls_base_sigkill_timeout", std::to_string(shutdown_s),
                               "-np",   std::to_string(world())};
    for (const char* v : {"RECLAIM_CONTROL", "RECLAIM_SCENARIO", "RECLAIM_MARKER", "RECLAIM_ENTRY",
                          "RECLAIM_WORLD_SIZE", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                          "TMPDIR"}) {
      a.emplace_back("-x");
      a.emplace_back(v);
    }
    a.emplace_back("/bin/sh");
    a.emplace_back("-c");
    a.emplace_back(
        "r=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}; "
        "export RANK=$r RECLAIM_RANK=$r LOCAL_RANK=${OMPI_COMM_WORLD_LOCAL_RANK:-$r}; "
        "export TMPDIR=\"${TMPDIR:-/tmp}/rank-$r\"; export TMP=\"$TMPDIR\" TEMP=\"$TMPDIR\"; "
        "exec \"$@\"");
    a.emplace_back("reclaim-rank");
    a.push_back(exe);
    return a;
  }

  // A rank started by mpirun connected: its HELLO names the rank.
  void on_accept() {
    for (;;) {
      int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;
      pending_.push_back(std::make_unique<PendingRank>());
      pending_.back()->fd = Fd(fd);
    }
  }

  void on_pending(std::size_t i) {
    PendingRank& p = *pending_[i];
    const ssize_t n = read_available(p.fd.get(), p.buf);
    if (n < 0) {
      p.fd.reset();
      return;
    }
    if (n == 0) return;
    auto line = p.buf.next();
    if (!line) {
      if (p.buf.overflowed()) p.fd.reset();
      return;
    }
    wire::Message m = wire::decode(*line);
    auto* h = std::get_if<wire::Hello>(&m);
    if (!h || h->rank < 0 || h->rank >= world() || ranks_[static_cast<std::size_t>(h->rank)].pfd) {
      send_line(p.fd.get(), wire::Error{"expected HELLO with a rank of this scenario not yet connected"});
      res_.notes.push_back(fmt::format("refused a control connection that began '{}'", *line));
      p.fd.reset();
      return;
    }
    RankState& r = ranks_[static_cast<std::size_t>(h->rank)];
    // Only a process of this scenario may be a rank: below the shepherd.
    auto table = sys::scan_processes();
    auto desc = sys::descendants(table, shepherd_pid_);
    auto pfd = sys::Pidfd::open(static_cast<int>(h->pid));
    if (std::find(desc.begin(), desc.end(), static_cast<int>(h->pid)) == desc.end() || !pfd) {
      fail(fmt::format("rank {} connected from pid {}, which is not a process of this scenario", h->rank, h->pid));
      p.fd.reset();
      return;
    }
    r.out.pid = static_cast<int>(h->pid);
    r.pfd.emplace(std::move(pfd.value()));
    seen_pids_.insert(r.out.pid);
    pid_rank_[r.out.pid] = r.rank;
    if (r.rank == failing().rank) scope_.rank_pid = r.out.pid;
    r.probe = std::move(p.fd);
    r.buf = std::move(p.buf);
    on_message(r, *line);
    while (r.probe) {
      auto more = r.buf.next();
      if (!more) break;
      on_message(r, *more);
    }
  }

  // mpirun is gone: a rank that never connected will not.
  void on_launcher_exit(std::int64_t now) {
    launcher_exited_ = true;
    std::vector<int> missing;
    for (auto& r : ranks_)
      if (!r.pfd && !r.exited()) {
        r.out.exited_ns = now;
        r.settled = true;
        missing.push_back(r.rank);
      }
    if (!missing.empty() && !world_failed_)
      fail(fmt::format("mpirun exited before rank(s) {} connected to the harness", join_ints(missing)));
    if (all_exited() && !ranks_done()) {
      res_.timeline.rank_exited_ns = now;
      grace_deadline_ns_ = now + sc_.expect.grace.count() * kMs;
    }
  }

  // ---- the event loop ---------------------------------------------------------

  bool all_spawned() const {
    return std::all_of(ranks_.begin(), ranks_.end(), [](const RankState& r) { return r.pfd.has_value(); });
  }
  bool all_exited() const {
    return std::all_of(ranks_.begin(), ranks_.end(), [](const RankState& r) { return r.exited(); });
  }
  bool ranks_done() const { return res_.timeline.rank_exited_ns != 0; }

  void loop() {
    for (;;) {
      std::vector<pollfd> fds;
      auto add = [&](int fd) {
        fds.push_back({fd, POLLIN, 0});
        return fds.size() - 1;
      };
      const std::size_t i_chan = chan_ ? add(chan_.get()) : SIZE_MAX;
      std::vector<std::size_t> i_probe(ranks_.size(), SIZE_MAX), i_rank(ranks_.size(), SIZE_MAX);
      for (std::size_t k = 0; k < ranks_.size(); ++k) {
        if (ranks_[k].probe) i_probe[k] = add(ranks_[k].probe.get());
        if (ranks_[k].pfd && !ranks_[k].exited()) i_rank[k] = add(ranks_[k].pfd->fd());
      }
      const std::size_t i_listen = listen_ ? add(listen_.get()) : SIZE_MAX;
      const std::size_t first_pending = fds.size();
      for (auto& p : pending_) add(p->fd ? p->fd.get() : -1);
      const std::size_t i_launcher = launcher_pfd_ && !launcher_exited_ ? add(launcher_pfd_->fd()) : SIZE_MAX;
      const std::size_t i_tmp = add(tmp_watch_->fd());
      const std::size_t i_shm = shm_watch_ ? add(shm_watch_->fd()) : SIZE_MAX;
      const std::size_t i_abort = cfg_.abort_fd >= 0 ? add(cfg_.abort_fd) : SIZE_MAX;
      const std::size_t first_leftover = fds.size();
      for (auto& [pid, pfd] : leftovers_) add(pfd.fd());

      std::int64_t now = sys::monotonic_ns();
      std::int64_t wake = next_deadline();
      int timeout_ms = wake == INT64_MAX ? -1 : static_cast<int>(std::max<std::int64_t>(0, (wake - now + kMs - 1) / kMs));
      int n = ::poll(fds.data(), fds.size(), timeout_ms);
      if (n < 0 && errno != EINTR) {
        fail(fmt::format("poll: {}", std::strerror(errno)));
        return;
      }
      now = sys::monotonic_ns();
      auto ready = [&](std::size_t i) { return i != SIZE_MAX && n > 0 && fds[i].revents != 0; };

      if (ready(i_abort)) {
        interrupted_ = true;
        return;
      }
      if (ready(i_chan)) on_shepherd();
      if (ready(i_listen)) on_accept();
      for (std::size_t i = 0; i < pending_.size() && first_pending + i < fds.size(); ++i)
        if (ready(first_pending + i)) on_pending(i);
      pending_.erase(std::remove_if(pending_.begin(), pending_.end(), [](auto& p) { return !p->fd; }), pending_.end());
      for (std::size_t k = 0; k < ranks_.size(); ++k)
        if (ready(i_probe[k])) on_probe(ranks_[k]);
      for (std::size_t k = 0; k < ranks_.size(); ++k) {
        RankState& r = ranks_[k];
        if (ready(i_rank[k])) {
          on_rank_exit(r, now);
        } else if (r.pfd && !r.exited() && r.pfd->exited()) {
          // It died while we handled messages (a SIGKILL we just sent): the
          // time is now, not when poll returned.
          on_rank_exit(r, sys::monotonic_ns());
        }
      }
      if (ready(i_launcher)) on_launcher_exit(sys::monotonic_ns());
      bool files_changed = false;
      if (ready(i_tmp)) files_changed |= tmp_watch_->drain();
      if (ready(i_shm)) files_changed |= shm_watch_->drain();
      if (files_changed) on_files_changed(now);
      bool leftover_exited = false;
      for (std::size_t i = first_leftover; i < fds.size(); ++i) leftover_exited |= ready(i);
      if (harness_error_) return;

      if (!ranks_done()) {
        enforce_deadlines(now);
        if (!all_spawned() && !chan_) {
          fail("the shepherd ended before starting the rank");
          return;
        }
        continue;
      }
      if (leftover_exited || files_changed || !checked_after_exit_) {
        checked_after_exit_ = true;
        if (reclaimed(now)) return;
      }
      if (now >= grace_deadline_ns_) return;
    }
  }

  std::int64_t next_deadline() const {
    if (ranks_done()) return grace_deadline_ns_;
    std::int64_t t = kill_deadline_ns_ ? kill_deadline_ns_ : deadline_ns_;
    if (shutdown_deadline_ns_) t = std::min(t, shutdown_deadline_ns_);
    if (collective_started_ns_) t = std::min(t, collective_started_ns_ + sc_.expect.collective_timeout.count() * kMs);
    return t;
  }

  void enforce_deadlines(std::int64_t now) {
    if (collective_started_ns_ && now >= collective_started_ns_ + sc_.expect.collective_timeout.count() * kMs)
      on_collective_timeout(now);
    if (shutdown_deadline_ns_ && now >= shutdown_deadline_ns_) {
      shutdown_deadline_ns_ = 0;
      std::vector<int> killed;
      const auto table = scenario_table();
      for (auto& r : ranks_)
        if (r.pfd && !r.exited()) {
          r.pfd->send_signal(SIGKILL);
          for (auto& m : group_members(r, table)) m.send_signal(SIGKILL);
          killed.push_back(r.rank);
        }
      if (!killed.empty())
        res_.notes.push_back(fmt::format("torchrun policy: rank(s) {} still running {} ms after SIGTERM; sent SIGKILL",
                                         join_ints(killed), sc_.expect.shutdown_timeout.count()));
    }
    if (!all_spawned()) {
      if (now >= deadline_ns_) fail("the rank was not started within the scenario timeout");
      return;
    }
    if (!hang_ && now >= deadline_ns_) {
      hang_ = true;
      res_.error = multi() ? fmt::format("the ranks did not exit within {} ms; sent SIGTERM", sc_.expect.timeout.count())
                           : fmt::format("the rank did not exit within {} ms; sent SIGTERM", sc_.expect.timeout.count());
      signal_running_ranks(SIGTERM);
      kill_deadline_ns_ = now + sc_.expect.kill_after.count() * kMs;
    } else if (hang_ && kill_deadline_ns_ && now >= kill_deadline_ns_) {
      res_.error += fmt::format(", then SIGKILL after {} ms", sc_.expect.kill_after.count());
      signal_running_ranks(SIGKILL);
      kill_deadline_ns_ = 0;
      deadline_ns_ = INT64_MAX;
    }
  }

  // The scenario deadline: every rank still running, and mpirun if it runs.
  void signal_running_ranks(int signo) {
    for (auto& r : ranks_)
      if (r.pfd && !r.exited()) r.pfd->send_signal(signo);
    if (launcher_pfd_ && !launcher_exited_) launcher_pfd_->send_signal(signo);
  }

  static std::string join_ints(const std::vector<int>& v) {
    std::string out;
    for (int x : v) out += (out.empty() ? "" : ", ") + std::to_string(x);
    return out;
  }

  // ---- the shepherd's channel -------------------------------------------------

  void on_shepherd() {
    for (;;) {
      Fd passed;
      auto pkt = recv_packet(chan_.get(), &passed);
      if (!pkt) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        chan_.reset();  // the shepherd is gone
        return;
      }
      auto f = split(*pkt);
      if (f.empty()) continue;
      if (f[0] == "READY" && f.size() >= 2) {
        private_ns_ = f[1] == "1";
        if (!private_ns_ && !shm_.empty()) {
          std::string reason(pkt->substr(std::min(pkt->size(), std::size_t{8})));
          res_.notes.push_back("private /tmp and /dev/shm unavailable (" + reason +
                               "): hard-coded /tmp and /dev/shm paths are not audited");
          scope_.sandbox_shm.clear();
        }
      } else if (f[0] == "SPAWNED" && f.size() >= 4 && via_mpirun_) {
        launcher_pid_ = static_cast<int>(to_long(f[2]));
        res_.timeline.started_ns = to_long(f[3]);
        seen_pids_.insert(launcher_pid_);
        if (passed) launcher_pfd_.emplace(sys::Pidfd::adopt(passed.release(), launcher_pid_));
        else fail("the shepherd sent no pidfd for mpirun");
        if (!cgroup_.empty()) {
          auto members = sys::cgroup_procs(rank_cgroup(0));
          cgroup_in_use_ = std::find(members.begin(), members.end(), launcher_pid_) != members.end();
          if (cgroup_in_use_) scope_.cgroups.push_back(rank_cgroup(0));
        }
      } else if (f[0] == "SPAWNED" && f.size() >= 4) {
        const long k = to_long(f[1]);
        if (k < 0 || k >= world()) continue;
        RankState& r = ranks_[static_cast<std::size_t>(k)];
        r.out.pid = static_cast<int>(to_long(f[2]));
        const std::int64_t t = to_long(f[3]);
        if (res_.timeline.started_ns == 0 || t < res_.timeline.started_ns) res_.timeline.started_ns = t;
        seen_pids_.insert(r.out.pid);
        pid_rank_[r.out.pid] = r.rank;
        if (r.rank == failing().rank) scope_.rank_pid = r.out.pid;
        if (passed) {
          // The shepherd opened it before it could reap the rank: it names the
          // rank even when the rank is already gone and its PID reused.
          r.pfd.emplace(sys::Pidfd::adopt(passed.release(), r.out.pid));
        } else {
          fail(fmt::format("the shepherd sent no pidfd for rank {}", r.out.pid));
        }
        if (!cgroup_.empty() && all_spawned()) {
          // Each rank joined its cgroup before exec — unless the machine
          // refused; then (or if one is already gone) scan /proc.
          cgroup_in_use_ = std::all_of(ranks_.begin(), ranks_.end(), [&](const RankState& x) {
            auto members = sys::cgroup_procs(rank_cgroup(x.rank));
            return std::find(members.begin(), members.end(), x.out.pid) != members.end();
          });
          if (cgroup_in_use_)
            for (const auto& x : ranks_) scope_.cgroups.push_back(rank_cgroup(x.rank));
        }
      } else if (f[0] == "SPAWNFAIL") {
        fail(fmt::format("could not start the target '{}': {}", sc_.target.argv[0],
                         f.size() > 3 ? std::string(pkt->substr(pkt->find(f[3]))) : std::string("?")));
      } else if (f[0] == "REAPED" && f.size() >= 5) {
        int pid = static_cast<int>(to_long(f[1]));
        seen_pids_.insert(pid);
        for (auto& r : ranks_) {
          if (r.out.pid != pid || r.status_known) continue;
          r.status_known = true;
          r.out.exit.exited = true;
          r.out.exit.code = static_cast<int>(to_long(f[2]));
          r.out.exit.signal = static_cast<int>(to_long(f[3]));
          settle(r, sys::monotonic_ns());
        }
      }
    }
  }

  // ---- the ranks' probes ------------------------------------------------------

  void on_probe(RankState& r) {
    for (;;) {
      const ssize_t n = read_available(r.probe.get(), r.buf);
      if (n < 0) {
        r.probe.reset();
        r.waiting = false;
        return;
      }
      if (n == 0) return;
      while (r.probe) {
        auto line = r.buf.next();
        if (!line) break;
        on_message(r, *line);
      }
      if (r.buf.overflowed()) {
        fail(fmt::format("protocol error: a line longer than 4096 bytes from rank {}", r.rank));
        r.probe.reset();
        return;
      }
      if (!r.probe) return;
    }
  }

  // Reads what a rank has already sent, so its hooks are counted before the
  // harness acts on a failure.
  void drain_probes() {
    for (auto& r : ranks_)
      if (r.probe) on_probe(r);
  }

  void on_message(RankState& r, const std::string& line) {
    wire::Message m = wire::decode(line);
    if (auto* h = std::get_if<wire::Hello>(&m)) return on_hello(r, *h);
    if (auto* h = std::get_if<wire::HookEntered>(&m)) {
      r.out.hooks.push_back(h->name);
      if (h->name == "on_exception") {
        if (r.out.on_exception_ns == 0) r.out.on_exception_ns = h->t_ns;
        auto& t = res_.timeline.on_exception_ns;
        if (t == 0 || h->t_ns < t) t = h->t_ns;
      }
      return;
    }
    if (auto* a = std::get_if<wire::At>(&m)) return on_at(r, *a);
    if (auto* a = std::get_if<wire::AuditRequest>(&m)) return on_audit_request(r, *a);
    if (auto* b = std::get_if<wire::Barrier>(&m)) return on_barrier(r, *b);
    if (auto* e = std::get_if<wire::Event>(&m)) {
      res_.notes.push_back(multi() ? fmt::format("rank {} event {}: {}", r.rank, e->name, e->text)
                                   : fmt::format("rank event {}: {}", e->name, e->text));
      return;
    }
    if (auto* b = std::get_if<wire::Bye>(&m)) {
      r.bye = b->code;
      return;
    }
    if (auto* u = std::get_if<wire::Unknown>(&m)) {
      if (u->malformed) {
        send_line(r.probe.get(), wire::Error{"malformed line: " + u->line});
        fail(fmt::format("protocol error: malformed line from rank {}: '{}'", r.rank, u->line));
      }
      return;
    }
    fail(fmt::format("protocol error: unexpected message from rank {}: '{}'", r.rank, line));
  }

  void await_spawned(const RankState& r) {
    // HELLO can overtake SPAWNED (two sockets); wait for the shepherd's word.
    const std::int64_t until = sys::monotonic_ns() + 2000 * kMs;
    while (!r.pfd && chan_ && !harness_error_ && sys::monotonic_ns() < until) {
      pollfd p{chan_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) on_shepherd();
    }
  }

  void on_hello(RankState& r, const wire::Hello& h) {
    if (h.version != wire::kVersion) {
      send_line(r.probe.get(), wire::Error{fmt::format("unsupported protocol {}; this harness speaks {}", h.version,
                                                       wire::kVersion)});
      fail(fmt::format("protocol error: the rank speaks {}, the harness {}", h.version, wire::kVersion));
      return;
    }
    await_spawned(r);
    r.hello = true;
    if (h.pid != r.out.pid)
      res_.notes.push_back(fmt::format("the probe's HELLO came from pid {}, not the rank {}", h.pid, r.out.pid));
    if (multi() && h.rank != r.rank)
      res_.notes.push_back(fmt::format("rank {} introduced itself as rank {}", r.rank, h.rank));
    r.handles.take_baseline(static_cast<int>(h.pid));
    r.probe_pid = static_cast<int>(h.pid);
    send_line(r.probe.get(), wire::Welcome{std::string(wire::kVersion)});
    if (sc_.point && r.rank == failing().rank)
      send_line(r.probe.get(), wire::Arm{std::string(to_string(sc_.entry)), to_string(*sc_.point)});
    send_line(r.probe.get(), wire::Go{});
  }

  void on_at(RankState& r, const wire::At& at) {
    const bool armed = sc_.point && r.rank == failing().rank && at.entry == to_string(sc_.entry) &&
                       at.point == to_string(*sc_.point);
    if (!armed || fault_delivered_ || fault_pending_) {
      send_line(r.probe.get(), wire::Go{});
      return;
    }
    // With several ranks the fault lands once every other rank waits in the
    // collective that follows the point (or has exited), so the survivors
    // are in the same place on every run instead of racing the failure.
    fault_pending_ = true;
    inject_when_others_wait();
  }

  void inject_when_others_wait(bool now = false) {
    if (!fault_pending_) return;
    RankState& r = failing();
    // Ranks that never entered a brokered collective (a program with its own,
    // e.g. torch.distributed's) are not waited for: they may be blocked on
    // the failing rank itself.
    if (!now)
      for (const auto& x : ranks_)
        if (x.rank != r.rank && x.collectives > 0 && !x.waiting && !x.exited()) return;
    fault_pending_ = false;
    if (!r.probe) return;
    inject(r);
  }

  void inject(RankState& r) {
    fault_delivered_ = true;
    hooks_at_fault_ = r.out.hooks.size();
    const Fault& f = sc_.fault;
    auto& t = res_.timeline.fault_injected_ns;
    switch (f.kind) {
      case FaultKind::none: break;
      case FaultKind::exception:
        t = sys::monotonic_ns();
        send_line(r.probe.get(), wire::Raise{"RuntimeError", "reclaim injected an exception at " + sc_.id()});
        return;
      case FaultKind::exit:
        t = sys::monotonic_ns();
        send_line(r.probe.get(), wire::Exit{1});
        return;
      case FaultKind::hang:
        t = sys::monotonic_ns();
        send_line(r.probe.get(), wire::Hang{});
        return;
      case FaultKind::disconnect:
        // The rank's channel drops while it waits for the directive: its
        // probe sees EOF, and the rank goes on without the harness.
        t = sys::monotonic_ns();
        ::shutdown(r.probe.get(), SHUT_RDWR);
        r.probe.reset();
        return;
      case FaultKind::crash:
        t = sys::monotonic_ns();
        if (auto ec = r.pfd->send_signal(SIGKILL)) fail(fmt::format("pidfd_send_signal: {}", ec.message()));
        break;
      case FaultKind::signal:
        if (f.target == SignalTarget::rank) {
          t = sys::monotonic_ns();
          if (auto ec = r.pfd->send_signal(f.signo)) fail(fmt::format("pidfd_send_signal: {}", ec.message()));
        } else if (f.target == SignalTarget::group) {
          signal_group(r, f.signo);
        } else {
          signal_worker(r, f.signo);
        }
        break;
    }
    // The signal is sent (and, for a worker, has killed it) before GO.
    send_line(r.probe.get(), wire::Go{});
  }

  // The live processes of rank `r`'s process group other than the rank itself.
  std::vector<sys::Pidfd> group_members(const RankState& r) { return group_members(r, scenario_table()); }

  std::vector<sys::Pidfd> group_members(const RankState& r, const std::vector<sys::ProcStat>& table) {
    std::vector<sys::Pidfd> out;
    for (auto& p : table)
      if (p.pgrp == r.out.pid && p.pid != r.out.pid && p.state != 'Z')
        if (auto pfd = sys::open_verified(p.pid, p.starttime)) out.push_back(std::move(*pfd));
    return out;
  }


  // Every process of the rank's process group, each through its own pidfd —
  // what a terminal's Ctrl-C or a scheduler's killpg delivers. Before GO we
  // wait for the processes the signal kills (those that neither catch nor
  // ignore it) to be gone, so the rank finds the same world on every run.
  void signal_group(RankState& r, int signo) {
    std::vector<sys::Pidfd> members = group_members(r);
    res_.timeline.fault_injected_ns = sys::monotonic_ns();
    r.pfd->send_signal(signo);
    auto dying = signal_members(members, signo);
    wait_for_the_dying(dying, signo);
  }

  // Sends `signo` to each of `members`; returns those it kills outright (they
  // neither catch, block nor ignore it), for the caller to wait on.
  static std::vector<sys::Pidfd> signal_members(std::vector<sys::Pidfd>& members, int signo) {
    std::vector<sys::Pidfd> dying;
    for (auto& m : members) {
      auto d = sys::read_signal_dispositions(m.pid());
      m.send_signal(signo);
      if (d && d->dies_now(signo)) dying.push_back(std::move(m));
    }
    return dying;
  }

  void wait_for_the_dying(const std::vector<sys::Pidfd>& dying, int signo) {
    for (const auto& m : dying)
      if (!m.wait_exit(2000ms))
        res_.notes.push_back(fmt::format("process {} outlived {} for 2 s", m.pid(), signal_name(signo)));
  }

  // The youngest child of the rank: a loader worker started for the current
  // loop. Waiting for it to die before GO makes the rank's reaction
  // deterministic (it finds the worker dead at its next fetch).
  void signal_worker(RankState& r, int signo) {
    const sys::ProcStat* pick = nullptr;
    auto children = sys::children_of(r.out.pid);
    for (auto& p : children) {
      if (p.state == 'Z') continue;
      if (!pick || p.starttime > pick->starttime || (p.starttime == pick->starttime && p.pid > pick->pid)) pick = &p;
    }
    if (!pick) {
      fail(fmt::format("no worker to signal: the rank has no child process at {}", to_string(*sc_.point)));
      return;
    }
    auto pfd = sys::open_verified(pick->pid, pick->starttime);
    if (!pfd) {
      fail(fmt::format("worker {} vanished before it could be signalled", pick->pid));
      return;
    }
    res_.timeline.fault_injected_ns = sys::monotonic_ns();
    res_.notes.push_back(fmt::format("{} sent to worker {}", signal_name(signo), pick->pid));
    pfd->send_signal(signo);
    if (signo == SIGKILL && !pfd->wait_exit(2000ms)) res_.notes.push_back("the worker outlived SIGKILL for 2 s");
  }

  void on_audit_request(RankState& r, const wire::AuditRequest& a) {
    auto leaks = r.handles.audit(r.probe_pid);
    for (auto& l : leaks) {
      l.rank = r.rank;
      l.details.emplace_back("when", a.label);
      res_.leaks.push_back(std::move(l));
    }
    send_line(r.probe.get(), wire::Audited{static_cast<int>(leaks.size())});
  }

  // ---- collectives and rank failures --------------------------------------------

  // A rank entered a collective: release everyone once all ranks are in it;
  // after a failure, answer ABORT at once (NCCL's async error handling).
  void on_barrier(RankState& r, const wire::Barrier& b) {
    if (world_failed_) {
      send_line(r.probe.get(), wire::Abort{failure_text_});
      return;
    }
    r.waiting = true;
    ++r.collectives;
    if (!collective_started_ns_) {
      collective_started_ns_ = sys::monotonic_ns();
      collective_name_ = b.name;
    }
    inject_when_others_wait();
    if (!std::all_of(ranks_.begin(), ranks_.end(), [](const RankState& x) { return x.waiting; })) return;
    collective_started_ns_ = 0;
    for (auto& x : ranks_) {
      x.waiting = false;
      send_line(x.probe.get(), wire::Go{});
    }
  }

  void on_collective_timeout(std::int64_t now) {
    if (fault_pending_) {
      // Some rank did not reach the collective while the fault waited for it:
      // inject anyway, and give the collective a fresh timeout.
      inject_when_others_wait(true);
      collective_started_ns_ = now;
      return;
    }
    collective_started_ns_ = 0;
    std::vector<int> missing;
    for (auto& r : ranks_)
      if (!r.waiting) missing.push_back(r.rank);
    if (missing.empty()) return;
    world_failure(missing,
                  fmt::format("did not reach collective '{}' within {} ms", collective_name_,
                              sc_.expect.collective_timeout.count()),
                  now);
  }

  // The rank's exit is judged once both its pidfd and its status are in (or
  // its BYE said how it ended): a completed rank is fine, any other ending
  // is a rank failure.
  void settle(RankState& r, std::int64_t now) {
    if (r.settled || !r.exited()) return;
    // mpirun, not the shepherd, reaps ranks it started: their BYE is all there
    // is. It was written before the exit, so it is in the socket by now.
    if (via_mpirun_ && r.probe) on_probe(r);
    if (!r.status_known && !(r.bye && *r.bye == 0) && !via_mpirun_) return;
    r.settled = true;
    if (!r.status_known && via_mpirun_) {
      r.out.exit.exited = true;
      r.out.exit.code = r.bye ? *r.bye : -1;
    }
    const bool completed = r.status_known ? (r.out.exit.signal == 0 && r.out.exit.code == 0) : (r.bye && *r.bye == 0);
    if (r.rank == failing().rank && !fault_delivered_ && sc_.fault.is_failure() && !harness_error_ && !hang_ &&
        !world_failed_) {
      fail(fmt::format("the rank exited ({}) without reaching the point {}", r.out.exit.describe(),
                       sc_.point ? to_string(*sc_.point) : "?"));
      harness_error_ = false;  // still audit what it left
    }
    if (!completed)
      world_failure({r.rank},
                    r.status_known || r.bye ? r.out.exit.describe() : std::string("exited without a BYE (mpirun reaped it)"),
                    now);
  }

  // Some rank failed: what the launcher does to the survivors, then the
  // collectives they wait in are aborted. Under torchrun the processes the
  // SIGTERM kills outright (loader workers) are gone before the ABORT, so a
  // survivor finds the same world on every run.
  void world_failure(const std::vector<int>& failed, const std::string& how, std::int64_t now) {
    if (world_failed_ || !multi()) return;
    drain_probes();
    world_failed_ = true;
    res_.world_failed_ns = now;
    for (int k : failed) {
      ranks_[static_cast<std::size_t>(k)].out.failed = true;
      ranks_[static_cast<std::size_t>(k)].out.failure = how;
    }
    failure_text_ = fmt::format("rank {} failed: {}", join_ints(failed), how);
    res_.notes.push_back(failure_text_);
    collective_started_ns_ = 0;
    std::vector<int> survivors;
    for (auto& r : ranks_)
      if (r.pfd && !r.exited()) survivors.push_back(r.rank);
    switch (survivors.empty() ? Launcher::none : sc_.expect.launcher) {
      case Launcher::torchrun: {
        std::vector<sys::Pidfd> dying;
        const auto table = scenario_table();  // one read for every survivor's group
        for (int k : survivors) {
          RankState& r = ranks_[static_cast<std::size_t>(k)];
          auto members = group_members(r, table);
          for (auto& m : signal_members(members, SIGTERM)) dying.push_back(std::move(m));
          r.pfd->send_signal(SIGTERM);
        }
        wait_for_the_dying(dying, SIGTERM);
        shutdown_deadline_ns_ = now + sc_.expect.shutdown_timeout.count() * kMs;
        res_.notes.push_back(fmt::format("torchrun policy: SIGTERM to the process groups of rank(s) {}",
                                         join_ints(survivors)));
        break;
      }
      case Launcher::lightning_ddp:
        for (int k : survivors) ranks_[static_cast<std::size_t>(k)].pfd->send_signal(SIGKILL);
        res_.notes.push_back(fmt::format("lightning-ddp policy: SIGKILL to rank(s) {}", join_ints(survivors)));
        break;
      case Launcher::none:
      case Launcher::mpirun:
        break;
    }
    for (auto& r : ranks_) {
      if (!r.waiting) continue;
      r.waiting = false;
      send_line(r.probe.get(), wire::Abort{failure_text_});
    }
  }

  // ---- reclamation ------------------------------------------------------------

  void on_rank_exit(RankState& r, std::int64_t now) {
    r.out.exited_ns = now;
    if (r.rank == failing().rank) res_.rank_exit = r.out.exit;
    settle(r, now);
    // Under mpirun the job ends when mpirun does: it reaps the ranks, holds
    // their orphans and removes its session directory last.
    if (all_exited() && (!via_mpirun_ || launcher_exited_)) {
      res_.timeline.rank_exited_ns = now;
      grace_deadline_ns_ = now + sc_.expect.grace.count() * kMs;
      shutdown_deadline_ns_ = 0;
      collective_started_ns_ = 0;
    }
  }

  void on_files_changed(std::int64_t now) {
    if (files_empty()) {
      if (res_.timeline.last_temp_file_gone_ns == 0 || had_files_) res_.timeline.last_temp_file_gone_ns = now;
      had_files_ = false;
    } else {
      had_files_ = true;
      res_.timeline.last_temp_file_gone_ns = 0;
    }
  }

  bool files_empty() const {
    for (const auto& e : sys::list_tree(tmp_))
      if (std::find(baseline_entries_.begin(), baseline_entries_.end(), std::pair{e.path, e.type}) ==
          baseline_entries_.end())
        return false;
    return scope_.sandbox_shm.empty() || sys::list_tree(shm_).empty();
  }

  // The processes of the scenario and their stats: the rank cgroups' lists
  // when they are in use (a few reads, however busy the machine), else every
  // process on the machine (the tree below the shepherd is picked out by the
  // caller). Zombies have left the cgroup: a zombie with a live parent still
  // shows through its parent, and the final audit of a failing scenario
  // scans /proc.
  std::vector<sys::ProcStat> scenario_table() {
    if (!cgroup_in_use_) return sys::scan_processes();
    std::vector<sys::ProcStat> out;
    for (const auto& r : ranks_)
      for (int pid : sys::cgroup_procs(rank_cgroup(r.rank))) {
        if (cgroup_per_rank_) pid_rank_[pid] = r.rank;
        if (auto st = sys::read_stat(pid)) out.push_back(std::move(*st));
      }
    return out;
  }

  // Whether everything the scenario created is gone. Opens a pidfd for every
  // process still alive so that its exit wakes the loop.
  bool reclaimed(std::int64_t now) {
    // A process listed alive may be gone before its pidfd is opened; then no
    // event would ever wake us for it, so look again at once.
    for (int attempt = 0; attempt < 100; ++attempt) {
      bool stable = true;
      bool done = reclaimed_once(now, stable);
      if (stable) return done;
      now = sys::monotonic_ns();
    }
    return false;
  }

  bool reclaimed_once(std::int64_t now, bool& stable) {
    auto table = scenario_table();
    std::map<int, const sys::ProcStat*> live;
    for (int pid : sys::descendants(table, shepherd_pid_)) {
      auto it = std::find_if(table.begin(), table.end(), [&](auto& p) { return p.pid == pid; });
      if (it == table.end()) continue;
      seen_pids_.insert(pid);
      // A dead orphan waiting for the shepherd to reap it is gone already.
      if (it->state == 'Z' && it->ppid == shepherd_pid_) continue;
      live[pid] = &*it;
    }
    if (multi() && !(cgroup_in_use_ && cgroup_per_rank_))
      for (const auto& r : ranks_)
        for (int pid : sys::descendants(table, r.out.pid)) pid_rank_.emplace(pid, r.rank);
    for (auto it = leftovers_.begin(); it != leftovers_.end();)
      it = live.count(it->first) ? std::next(it) : leftovers_.erase(it);
    for (auto& [pid, st] : live)
      if (!leftovers_.count(pid)) {
        if (auto pfd = sys::open_verified(pid, st->starttime)) leftovers_.emplace(pid, std::move(*pfd));
        else stable = false;
      }

    auto& tl = res_.timeline;
    if (live.empty()) {
      if (tl.last_process_gone_ns == 0) tl.last_process_gone_ns = now;
    } else {
      tl.last_process_gone_ns = 0;
    }
    const bool files_clean = files_empty();
    if (files_clean && had_files_) on_files_changed(now);
    if (live.empty() && files_clean) {
      tl.all_reclaimed_ns = std::max({tl.rank_exited_ns, tl.last_process_gone_ns, tl.last_temp_file_gone_ns});
      // Nothing can appear once nothing runs: the final audit may use this table.
      clean_table_ = std::move(table);
      return true;
    }
    // Nothing of the scenario is left running: what remains can never be removed.
    return live.empty();
  }

  // The rank a process belongs to: its rank cgroup, else the rank it was
  // seen below. -1 when unknown.
  int rank_of_pid(int pid) {
    if (auto it = pid_rank_.find(pid); it != pid_rank_.end()) return it->second;
    if (!cgroup_.empty() && cgroup_per_rank_) {
      if (auto text = sys::read_small_file(fmt::format("/proc/{}/cgroup", pid))) {
        auto at = text->rfind("/r");
        if (at != std::string::npos) {
          int k = std::atoi(text->c_str() + at + 2);
          std::string expect = fmt::format("{}/r{}", cgroup_.substr(cgroup_.rfind("/s")), k);
          if (text->find(expect) != std::string::npos && k >= 0 && k < world()) return k;
        }
      }
    }
    return -1;
  }

  // ---- verdict ----------------------------------------------------------------

  void finish() {
    if (interrupted_) return;
    // The shepherd reports each rank's exit status when it reaps it, which
    // can come just after the pidfd said the rank is gone.
    const std::int64_t until = sys::monotonic_ns() + 1000 * kMs;
    auto statuses_pending = [&] {
      return !via_mpirun_ &&
             std::any_of(ranks_.begin(), ranks_.end(), [](const RankState& r) { return r.exited() && !r.status_known; });
    };
    while (statuses_pending() && chan_ && sys::monotonic_ns() < until) {
      pollfd p{chan_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) on_shepherd();
    }
    // Messages a rank sent just before it exited.
    drain_probes();
    for (auto& r : ranks_) {
      if (r.exited() && !r.out.exit.exited) r.out.exit.exited = true;
      res_.ranks.push_back(r.out);
    }
    const RankState& f = failing();
    res_.hooks = f.out.hooks;
    res_.rank_exit = f.out.exit;
    if (shepherd_pid_ > 0) {
      std::vector<audit::Auditor*> auditors;
      for (auto& a : auditors_) auditors.push_back(a.get());
      if (clean_table_) scope_.process_table = &*clean_table_;
      for (auto& l : collect_leaks(auditors, scope_)) res_.leaks.push_back(std::move(l));
      scope_.process_table = nullptr;
    }
    for (auto& l : res_.leaks)
      if (l.kind != LeakKind::fd && l.kind != LeakKind::lock && !(l.kind == LeakKind::process && has_when(l)))
        l.rank = attribute_leak(l, world(), [this](int pid) { return rank_of_pid(pid); });
    if (!hang_ && !harness_error_ && all_spawned()) check_contracts();
    res_.timeline.finished_ns = sys::monotonic_ns();
    res_.verdict = decide_verdict(harness_error_ || (!res_.error.empty() && !hang_), hang_, res_.violations, res_.leaks);
    if (res_.verdict != Verdict::pass) {
      std::string out = log_ ? tail_lines(fmt::format("/proc/self/fd/{}", log_.get()), multi() ? 20 : 12) : "";
      if (!out.empty()) res_.notes.push_back("output of the scenario (last lines):\n" + out);
    }
  }

  static bool has_when(const Leak& l) {
    return std::any_of(l.details.begin(), l.details.end(), [](auto& kv) { return kv.first == "when"; });
  }

  void check_contracts() {
    auto prefix = [&](int k, std::vector<Violation> v) {
      for (auto& x : v) {
        if (multi()) x.expected = fmt::format("rank {}: {}", k, x.expected);
        res_.violations.push_back(std::move(x));
      }
    };
    for (auto& r : ranks_) {
      if (!sc_.fault.is_failure() || r.rank == failing().rank) {
        // The failing rank's hooks count from the fault; with no fault every
        // rank follows the success path.
        Evidence ev{r.hello, fault_delivered_, r.rank == failing().rank ? hooks_at_fault_ : 0, r.out.hooks, r.out.exit};
        prefix(r.rank, check_contract(sc_, ev));
      } else {
        SurvivorEvidence ev{r.hello, world_failed_, r.out.hooks, r.out.exit};
        prefix(r.rank, check_survivor(sc_, ev));
      }
    }
  }

  // ---- clean-up: after the audit, kill what is left and remove the sandbox ----

  void cleanup() {
    leftovers_.clear();
    bool retire = false;
    if (shepherd_pid_ > 0) {
      // Kill every leftover ourselves, then let the shepherd reap and exit.
      // When the audit found no process left, none can appear: skip the scans.
      const bool anything_left =
          interrupted_ || hang_ || !ranks_done() ||
          std::any_of(res_.leaks.begin(), res_.leaks.end(),
                      [](const Leak& l) { return l.kind == LeakKind::process || l.kind == LeakKind::zombie; });
      if (anything_left && cgroup_in_use_)
        for (const auto& r : ranks_) sys::cgroup_kill(rank_cgroup(r.rank));
      for (int round = 0; anything_left && round < 50; ++round) {
        auto table = sys::scan_processes();
        auto desc = sys::descendants(table, shepherd_pid_);
        std::vector<sys::Pidfd> victims;
        for (int pid : desc) {
          auto it = std::find_if(table.begin(), table.end(), [&](auto& p) { return p.pid == pid; });
          if (it != table.end() && it->state != 'Z')
            if (auto pfd = sys::open_verified(pid, it->starttime)) victims.push_back(std::move(*pfd));
        }
        if (victims.empty()) break;
        for (auto& v : victims) v.send_signal(SIGKILL);
        for (auto& v : victims) v.wait_exit(1000ms);
      }
      chan_.reset();  // EOF: the shepherd kills anything left, reaps, exits
      // A shepherd of the zygote with nothing left to do exits on its own and
      // the zygote reaps it: the sandbox is removed once it is gone, off this
      // scenario's path. Otherwise wait here.
      retire = !shepherd_proc_ && !anything_left;
      if (!retire && !shepherd_pfd_->wait_exit(5000ms)) {
        shepherd_pfd_->send_signal(SIGKILL);
        shepherd_pfd_->wait_exit(5000ms);
      }
      if (shepherd_proc_) {
        siginfo_t info{};
        ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(shepherd_pfd_->fd()), &info, WEXITED);
        shepherd_proc_.reset();
      }
    }
    for (auto& r : ranks_) r.probe.reset();
    pending_.clear();
    listen_.reset();
    remove_machine_wide_leaks();
    if (retire) {
      // Once the shepherd is gone, it has reaped every process of the
      // scenario: a cgroup with a process still exiting cannot be removed,
      // nor a directory bound into a live mount namespace. The watches go
      // after the trees: closing an inotify descriptor that still watches
      // something waits for an RCU grace period (~15 ms).
      auto watches = std::make_shared<std::pair<std::optional<sys::TreeWatch>, std::optional<sys::TreeWatch>>>(
          std::move(tmp_watch_), std::move(shm_watch_));
      cfg_.zygote->retire(std::move(*shepherd_pfd_),
                          [cgroup = cgroup_, n = world(), shm = shm_, root = root_, watches] {
                            remove_cgroups(cgroup, n);
                            if (!shm.empty()) sys::remove_tree(shm);
                            sys::remove_tree(root);
                            watches->first.reset();
                            watches->second.reset();
                          });
      return;
    }
    // Empty now: the shepherd reaped every process of the scenario.
    remove_cgroups();
    if (!shm_.empty()) sys::remove_tree(shm_);
    sys::remove_tree(root_);
  }

  void remove_cgroups() const { remove_cgroups(cgroup_, world()); }
  static void remove_cgroups(const std::string& cgroup, int ranks) {
    if (cgroup.empty()) return;
    for (int k = 0; k < ranks; ++k) ::rmdir(fmt::format("{}/r{}", cgroup, k).c_str());
    ::rmdir(cgroup.c_str());
  }

  // What the scenario left outside its sandbox, once recorded, is removed too:
  // SysV IPC objects, and /dev/shm entries when there was no private /dev/shm.
  void remove_machine_wide_leaks() {
    auto detail = [](const Leak& l, std::string_view key) -> std::string {
      for (auto& [k, v] : l.details)
        if (k == key) return v;
      return {};
    };
    for (const auto& l : res_.leaks) {
      if (l.kind == LeakKind::sysv_ipc) {
        const std::string ipc = detail(l, "ipc");
        const int id = std::atoi(detail(l, "id").c_str());
        if (ipc == "shm") ::shmctl(id, IPC_RMID, nullptr);
        else if (ipc == "sem") ::semctl(id, 0, IPC_RMID);
        else if (ipc == "msg") ::msgctl(id, IPC_RMID, nullptr);
      } else if (l.kind == LeakKind::shm && detail(l, "root") == "/dev/shm") {
        const std::string path = detail(l, "path");
        if (path.empty() || path.find("..") != std::string::npos) continue;
        // Symlink-safe: an entry is unlinked, a directory removed without following links.
        if (detail(l, "type") == "dir") sys::remove_tree("/dev/shm/" + path);
        else ::unlinkat(AT_FDCWD, ("/dev/shm/" + path).c_str(), 0);
      }
    }
  }

  const Scenario& sc_;
  const SupervisorConfig& cfg_;
  std::vector<RankState> ranks_;
  const bool via_mpirun_;       // mpirun starts the ranks; they connect to control_name_
  const bool cgroup_per_rank_;  // each rank in its own cgroup (not under mpirun: it starts them all)
  std::string control_name_;    // the abstract socket name for RECLAIM_CONTROL=unix:@...
  std::string control_address_; // RECLAIM_CONTROL for ranks mpirun starts
  Fd listen_;
  struct PendingRank {
    Fd fd;
    wire::LineBuffer buf;
  };
  std::vector<std::unique_ptr<PendingRank>> pending_;  // connected, HELLO not read yet
  std::optional<sys::Pidfd> launcher_pfd_;
  int launcher_pid_ = 0;
  bool launcher_exited_ = false;
  ScenarioResult res_;
  std::string root_, tmp_, shm_, marker_, cgroup_;
  Fd log_;  // a memfd: the ranks' stdout and stderr
  bool cgroup_in_use_ = false;
  std::vector<std::string> carry_;  // host paths under /tmp bound into the private /tmp
  // What the harness put in the sandbox, empty and never a leak: (path, type).
  std::vector<std::pair<std::string, std::string>> baseline_entries_;
  audit::AuditScope scope_;
  std::vector<std::unique_ptr<audit::Auditor>> auditors_;
  std::set<int> seen_pids_;
  std::map<int, int> pid_rank_;  // pid -> the rank it belongs to
  std::optional<sys::TreeWatch> tmp_watch_, shm_watch_;
  Fd chan_;
  int shepherd_pid_ = 0, master_port_ = 0;
  std::unique_ptr<boost::asio::io_context> io_;
  // The launcher's exact type: Boost.Process 1.81's converting move to
  // bp2::process leaves members uninitialised.
  std::optional<bp2::basic_process<boost::asio::io_context::executor_type>> shepherd_proc_;  // after io_
  std::optional<sys::Pidfd> shepherd_pfd_;
  std::map<int, sys::Pidfd> leftovers_;
  std::optional<std::vector<sys::ProcStat>> clean_table_;  // the scan that proved the scenario clean
  std::int64_t deadline_ns_ = INT64_MAX, kill_deadline_ns_ = 0, grace_deadline_ns_ = INT64_MAX;
  std::int64_t shutdown_deadline_ns_ = 0;   // torchrun policy: SIGKILL survivors then
  std::int64_t collective_started_ns_ = 0;  // first arrival at the pending collective
  std::string collective_name_, failure_text_;
  std::size_t hooks_at_fault_ = 0;
  bool fault_pending_ = false;  // the failing rank waits at its point for the others to reach the collective
  bool fault_delivered_ = false, hang_ = false, harness_error_ = false, world_failed_ = false;
  bool interrupted_ = false, private_ns_ = false, had_files_ = false, checked_after_exit_ = false;
};

}  // namespace

namespace {
bool executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}
}  // namespace

std::optional<std::string> resolve_executable(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (executable_file(name)) return name;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

std::string private_tmp_obstacle(const Target& target) {
  for (const auto& a : target.argv)
    if (under(a, "/dev/shm")) return fmt::format("the command line names {}, which a private /dev/shm would hide", a);
  return {};
}

std::vector<std::string> paths_to_carry(const Target& target, const std::string& cwd) {
  std::vector<std::string> out;
  auto add = [&](const std::string& path) {
    if (!under(path, "/tmp") || path.size() <= 5) return;
    std::string top = path.substr(0, path.find('/', 5));
    if (top.size() > 5 && std::find(out.begin(), out.end(), top) == out.end()) out.push_back(top);
  };
  for (const auto& a : target.argv) add(a);
  add(cwd);
  return out;
}

RunOutcome run_scenario(const Scenario& scenario, std::uint64_t seq, const SupervisorConfig& config) {
  ScenarioRun run(scenario, seq, config);
  return run.run();
}

}  // namespace reclaim::supervisor
