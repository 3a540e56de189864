#include "supervisor/supervisor.hpp"

#include "supervisor/launch_hooks.hpp"
#include "supervisor/verdict.hpp"
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
std::optional<std::string> recv_packet(int fd, Fd* passed) {
  char buf[512];
  iovec iov{buf, sizeof buf - 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return std::nullopt;
  buf[n] = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int got = -1;
      std::memcpy(&got, CMSG_DATA(c), sizeof got);
      if (passed) *passed = Fd(got);
      else ::close(got);
    }
  }
  return std::string(buf, static_cast<std::size_t>(n));
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

// One scenario from sandbox to verdict.
class ScenarioRun {
 public:
  ScenarioRun(const Scenario& sc, std::uint64_t seq, const SupervisorConfig& cfg)
      : sc_(sc), cfg_(cfg) {
    res_.scenario = sc;
    root_ = fmt::format("{}/s{}", cfg.sandbox_base, seq);
    tmp_ = root_ + "/tmp";
    log_ = root_ + "/output.log";
    marker_ = fmt::format("RECLAIM_MARKER={}.{}", ::getpid(), seq);
    if (cfg.private_tmp) shm_ = fmt::format("{}.s{}", cfg.shm_base, seq);
    if (!cfg.cgroup_base.empty()) cgroup_ = fmt::format("{}/s{}", cfg.cgroup_base, seq);
  }

  RunOutcome run() {
    if (prepare() && spawn()) loop();
    finish();
    cleanup();
    return {std::move(res_), interrupted_};
  }

 private:
  // ---- set-up -----------------------------------------------------------------

  bool fail(std::string what) {
    if (res_.error.empty()) res_.error = std::move(what);
    harness_error_ = true;
    return false;
  }

  bool prepare() {
    if (auto ec = sys::make_private_dir(tmp_)) return fail(fmt::format("sandbox {}: {}", tmp_, ec.message()));
    if (!shm_.empty()) {
      if (auto ec = sys::make_private_dir(shm_)) {
        res_.notes.push_back(fmt::format("private /dev/shm unavailable ({}): /dev/shm is audited by diff", ec.message()));
        shm_.clear();
      }
    }
    if (!cgroup_.empty() && ::mkdir(cgroup_.c_str(), 0755) != 0) cgroup_.clear();  // fall back to /proc scans
    if (!shm_.empty()) {
      // Where the target's own directories under /tmp reappear inside its
      // private /tmp: empty directories, part of the baseline, never leaks.
      char cwd[4096];
      for (const auto& dir : directories_to_carry(sc_.target, ::getcwd(cwd, sizeof cwd) ? cwd : "")) {
        std::string name = dir.substr(5);
        if (::mkdir((tmp_ + "/" + name).c_str(), 0755) == 0) {
          carry_.push_back(dir);
          carried_names_.push_back(name);
        }
      }
    }
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
    return true;
  }

  std::vector<std::string> rank_environment() const {
    static const char* const kOwned[] = {"TMPDIR=", "TMP=", "TEMP=", "RECLAIM_", "RANK=", "WORLD_SIZE=",
                                         "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="};
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string_view v(*e);
      bool owned = std::any_of(std::begin(kOwned), std::end(kOwned),
                               [&](const char* k) { return v.substr(0, std::strlen(k)) == k; });
      if (!owned) env.emplace_back(v);
    }
    // With a private /tmp the shepherd keeps these; without, it rewrites them
    // to the sandbox's host path.
    std::string tmp = "/tmp";
    if (shm_.empty()) tmp = tmp_;
    env.push_back("TMPDIR=" + tmp);
    env.push_back("TMP=" + tmp);
    env.push_back("TEMP=" + tmp);
    env.push_back("RECLAIM_CONTROL=fd:3");
    env.push_back("RECLAIM_SCENARIO=" + sc_.id());
    env.push_back(marker_);
    env.push_back(fmt::format("RECLAIM_ENTRY={}", to_string(sc_.entry)));
    env.push_back(fmt::format("RECLAIM_WORLD_SIZE={}", sc_.world_size));
    env.push_back(fmt::format("WORLD_SIZE={}", sc_.world_size));
    env.push_back(fmt::format("LOCAL_WORLD_SIZE={}", sc_.world_size));
    env.push_back("MASTER_ADDR=127.0.0.1");
    return env;
  }

  bool spawn() {
    if (sc_.target.argv.empty()) return fail("no target command: give one in the suite's [target] or after --");
    // Boost.Process execs without a PATH lookup: resolve the command first.
    auto exe = resolve_executable(sc_.target.argv[0]);
    if (!exe)
      return fail(fmt::format("the target '{}' is not an executable file{}", sc_.target.argv[0],
                              sc_.target.argv[0].find('/') == std::string::npos ? " on PATH" : ""));
    int chan[2], probe[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) != 0)
      return fail(fmt::format("socketpair: {}", std::strerror(errno)));
    chan_ = Fd(chan[0]);
    Fd chan_child(chan[1]);
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, probe) != 0)
      return fail(fmt::format("socketpair: {}", std::strerror(errno)));
    probe_ = Fd(probe[0]);
    Fd probe_child(probe[1]);
    Fd log(::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));

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
    arg("--ranks");
    arg(std::to_string(sc_.world_size));
    arg("--");
    arg(*exe);
    for (std::size_t i = 1; i < sc_.target.argv.size(); ++i) arg(sc_.target.argv[i]);
    std::vector<const char*> argv{cfg_.shepherd_path.c_str()};
    for (auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    auto env = rank_environment();
    std::vector<const char*> envp;
    for (auto& e : env) envp.push_back(e.c_str());
    envp.push_back(nullptr);

    for (auto& a : auditors_) a->take_baseline(scope_);

    // The io_context and the process object live as long as the scenario:
    // Boost.Process 1.81's detach() is unreliable, and destroying the object
    // is harmless once the shepherd has been reaped (its waitpid finds no child).
    io_ = std::make_unique<boost::asio::io_context>();
    bp2::posix::default_launcher launcher;
    launcher.env = envp.data();
    bp2::error_code ec;
    std::fflush(nullptr);  // Boost.Process 1.81 calls exit(), not _exit(), when exec fails
    const int out = log ? log.get() : STDERR_FILENO;
    Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    // The executor overload: the io_context one of Boost 1.81 drops `ec` and throws.
    auto proc = launcher(io_->get_executor(), ec, cfg_.shepherd_path, argv.data(), launch::BindFd{0, devnull.get()},
                         launch::BindFd{1, out}, launch::BindFd{2, out},
                         launch::BindFd{3, chan_child.get()}, launch::BindFd{4, probe_child.get()});
    if (ec) return fail(fmt::format("starting {}: {}", cfg_.shepherd_path, ec.message()));
    shepherd_pid_ = proc.id();
    shepherd_proc_.emplace(std::move(proc));
    // Our child: it cannot be reaped before we wait, so the pidfd is it.
    auto pfd = sys::Pidfd::open(shepherd_pid_);
    if (!pfd) return fail(fmt::format("pidfd_open(shepherd): {}", pfd.error().message()));
    shepherd_pfd_.emplace(std::move(pfd.value()));
    scope_.shepherd_pid = shepherd_pid_;
    deadline_ns_ = sys::monotonic_ns() + sc_.expect.timeout.count() * kMs;
    return true;
  }

  // ---- the event loop ---------------------------------------------------------

  void loop() {
    for (;;) {
      std::vector<pollfd> fds;
      auto add = [&](int fd) {
        fds.push_back({fd, POLLIN, 0});
        return fds.size() - 1;
      };
      const std::size_t i_chan = chan_ ? add(chan_.get()) : SIZE_MAX;
      const std::size_t i_probe = probe_ ? add(probe_.get()) : SIZE_MAX;
      const std::size_t i_rank = rank_pfd_ && !rank_exited() ? add(rank_pfd_->fd()) : SIZE_MAX;
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
      if (ready(i_probe)) on_probe();
      if (ready(i_rank)) {
        on_rank_exit(now);
      } else if (rank_pfd_ && !rank_exited() && rank_pfd_->exited()) {
        // It died while we handled its messages (a SIGKILL we just sent):
        // the time is now, not when poll returned.
        now = sys::monotonic_ns();
        on_rank_exit(now);
      }
      bool files_changed = false;
      if (ready(i_tmp)) files_changed |= tmp_watch_->drain();
      if (ready(i_shm)) files_changed |= shm_watch_->drain();
      if (files_changed) on_files_changed(now);
      bool leftover_exited = false;
      for (std::size_t i = first_leftover; i < fds.size(); ++i) leftover_exited |= ready(i);
      if (harness_error_) return;

      if (!rank_exited()) {
        enforce_deadline(now);
        if (!rank_pfd_ && !chan_) {
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

  bool rank_exited() const { return res_.timeline.rank_exited_ns != 0; }

  std::int64_t next_deadline() const {
    if (!rank_exited()) return kill_deadline_ns_ ? kill_deadline_ns_ : deadline_ns_;
    return grace_deadline_ns_;
  }

  void enforce_deadline(std::int64_t now) {
    if (!rank_pfd_) {
      if (now >= deadline_ns_) fail("the rank was not started within the scenario timeout");
      return;
    }
    if (!hang_ && now >= deadline_ns_) {
      hang_ = true;
      res_.error = fmt::format("the rank did not exit within {} ms; sent SIGTERM", sc_.expect.timeout.count());
      rank_pfd_->send_signal(SIGTERM);
      kill_deadline_ns_ = now + sc_.expect.kill_after.count() * kMs;
    } else if (hang_ && kill_deadline_ns_ && now >= kill_deadline_ns_) {
      res_.error += fmt::format(", then SIGKILL after {} ms", sc_.expect.kill_after.count());
      rank_pfd_->send_signal(SIGKILL);
      kill_deadline_ns_ = 0;
      deadline_ns_ = INT64_MAX;
    }
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
      } else if (f[0] == "SPAWNED" && f.size() >= 4) {
        rank_pid_ = static_cast<int>(to_long(f[2]));
        res_.timeline.started_ns = to_long(f[3]);
        scope_.rank_pid = rank_pid_;
        seen_pids_.insert(rank_pid_);
        if (!cgroup_.empty()) {
          // The rank joined the scenario's cgroup before exec — unless the
          // machine refused; then (or if it is already gone) scan /proc.
          auto members = sys::cgroup_procs(cgroup_);
          cgroup_in_use_ = std::find(members.begin(), members.end(), rank_pid_) != members.end();
        }
        if (passed) {
          // The shepherd opened it before it could reap the rank: it names the
          // rank even when the rank is already gone and its PID reused.
          rank_pfd_.emplace(sys::Pidfd::adopt(passed.release(), rank_pid_));
        } else {
          fail(fmt::format("the shepherd sent no pidfd for rank {}", rank_pid_));
        }
      } else if (f[0] == "SPAWNFAIL") {
        fail(fmt::format("could not start the target '{}': {}", sc_.target.argv[0],
                         f.size() > 3 ? std::string(pkt->substr(pkt->find(f[3]))) : std::string("?")));
      } else if (f[0] == "REAPED" && f.size() >= 5) {
        int pid = static_cast<int>(to_long(f[1]));
        seen_pids_.insert(pid);
        if (pid == rank_pid_) {
          res_.rank_exit.exited = true;
          res_.rank_exit.code = static_cast<int>(to_long(f[2]));
          res_.rank_exit.signal = static_cast<int>(to_long(f[3]));
        }
      }
    }
  }

  // ---- the rank's probe -------------------------------------------------------

  void on_probe() {
    char buf[4096];
    ssize_t n;
    do n = ::recv(probe_.get(), buf, sizeof buf, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      probe_.reset();
      return;
    }
    if (n < 0) return;
    probe_buf_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    while (auto line = probe_buf_.next()) on_message(*line);
    if (probe_buf_.overflowed()) {
      fail("protocol error: a line longer than 4096 bytes from the rank");
      probe_.reset();
    }
  }

  void on_message(const std::string& line) {
    wire::Message m = wire::decode(line);
    if (auto* h = std::get_if<wire::Hello>(&m)) return on_hello(*h);
    if (auto* h = std::get_if<wire::HookEntered>(&m)) {
      res_.hooks.push_back(h->name);
      if (h->name == "on_exception" && res_.timeline.on_exception_ns == 0) res_.timeline.on_exception_ns = h->t_ns;
      return;
    }
    if (auto* a = std::get_if<wire::At>(&m)) return on_at(*a);
    if (auto* a = std::get_if<wire::AuditRequest>(&m)) return on_audit_request(*a);
    if (auto* e = std::get_if<wire::Event>(&m)) {
      res_.notes.push_back(fmt::format("rank event {}: {}", e->name, e->text));
      return;
    }
    if (std::get_if<wire::Bye>(&m)) return;
    if (auto* u = std::get_if<wire::Unknown>(&m)) {
      if (u->malformed) {
        send_line(probe_.get(), wire::Error{"malformed line: " + u->line});
        fail(fmt::format("protocol error: malformed line from the rank: '{}'", u->line));
      }
      return;
    }
    fail(fmt::format("protocol error: unexpected message from the rank: '{}'", line));
  }

  void await_spawned() {
    // HELLO can overtake SPAWNED (two sockets); wait for the shepherd's word.
    const std::int64_t until = sys::monotonic_ns() + 2000 * kMs;
    while (!rank_pfd_ && chan_ && !harness_error_ && sys::monotonic_ns() < until) {
      pollfd p{chan_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) on_shepherd();
    }
  }

  void on_hello(const wire::Hello& h) {
    if (h.version != wire::kVersion) {
      send_line(probe_.get(), wire::Error{fmt::format("unsupported protocol {}; this harness speaks {}", h.version,
                                                      wire::kVersion)});
      fail(fmt::format("protocol error: the rank speaks {}, the harness {}", h.version, wire::kVersion));
      return;
    }
    await_spawned();
    hello_ = true;
    if (h.pid != rank_pid_) {
      res_.notes.push_back(fmt::format("the probe's HELLO came from pid {}, not the rank {}", h.pid, rank_pid_));
    }
    handles_.take_baseline(static_cast<int>(h.pid));
    probe_pid_ = static_cast<int>(h.pid);
    send_line(probe_.get(), wire::Welcome{std::string(wire::kVersion)});
    if (sc_.point)
      send_line(probe_.get(), wire::Arm{std::string(to_string(sc_.entry)), to_string(*sc_.point)});
    send_line(probe_.get(), wire::Go{});
  }

  void on_at(const wire::At& at) {
    const bool armed = sc_.point && at.entry == to_string(sc_.entry) && at.point == to_string(*sc_.point);
    if (!armed || fault_delivered_) {
      send_line(probe_.get(), wire::Go{});
      return;
    }
    fault_delivered_ = true;
    hooks_at_fault_ = res_.hooks.size();
    const Fault& f = sc_.fault;
    auto& t = res_.timeline.fault_injected_ns;
    if (f.kind == FaultKind::exception) {
      t = sys::monotonic_ns();
      send_line(probe_.get(), wire::Raise{"RuntimeError", "reclaim injected an exception at " + sc_.id()});
      return;
    }
    if (f.kind == FaultKind::signal) {
      if (f.target == SignalTarget::rank) {
        t = sys::monotonic_ns();
        if (auto ec = rank_pfd_->send_signal(f.signo)) fail(fmt::format("pidfd_send_signal: {}", ec.message()));
      } else if (f.target == SignalTarget::group) {
        signal_group(f.signo);
      } else {
        signal_worker(f.signo);
      }
    }
    // The signal is sent (and, for a worker, has killed it) before GO.
    send_line(probe_.get(), wire::Go{});
  }

  // Every process of the rank's process group, each through its own pidfd —
  // what a terminal's Ctrl-C or a scheduler's killpg delivers. Before GO we
  // wait for the processes the signal kills (those that neither catch nor
  // ignore it) to be gone, so the rank finds the same world on every run.
  void signal_group(int signo) {
    std::vector<sys::Pidfd> targets;
    for (auto& p : scenario_table())
      if (p.pgrp == rank_pid_ && p.pid != rank_pid_)
        if (auto pfd = sys::open_verified(p.pid, p.starttime)) targets.push_back(std::move(*pfd));
    std::vector<bool> dies;
    for (auto& t : targets) {
      auto d = sys::read_signal_dispositions(t.pid());
      dies.push_back(d && d->dies_now(signo));
    }
    res_.timeline.fault_injected_ns = sys::monotonic_ns();
    rank_pfd_->send_signal(signo);
    for (auto& t : targets) t.send_signal(signo);
    for (std::size_t i = 0; i < targets.size(); ++i)
      if (dies[i] && !targets[i].wait_exit(2000ms))
        res_.notes.push_back(fmt::format("process {} outlived {} for 2 s", targets[i].pid(), signal_name(signo)));
  }

  // The youngest child of the rank: a loader worker started for the current
  // loop. Waiting for it to die before GO makes the rank's reaction
  // deterministic (it finds the worker dead at its next fetch).
  void signal_worker(int signo) {
    const sys::ProcStat* pick = nullptr;
    auto children = sys::children_of(rank_pid_);
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

  void on_audit_request(const wire::AuditRequest& a) {
    auto leaks = handles_.audit(probe_pid_);
    for (auto& l : leaks) {
      l.details.emplace_back("when", a.label);
      res_.leaks.push_back(std::move(l));
    }
    send_line(probe_.get(), wire::Audited{static_cast<int>(leaks.size())});
  }

  // ---- reclamation ------------------------------------------------------------

  void on_rank_exit(std::int64_t now) {
    res_.timeline.rank_exited_ns = now;
    grace_deadline_ns_ = now + sc_.expect.grace.count() * kMs;
    if (!fault_delivered_ && sc_.fault.is_failure() && !harness_error_ && !hang_) {
      fail(fmt::format("the rank exited ({}) without reaching the point {}", describe_exit(),
                       sc_.point ? to_string(*sc_.point) : "?"));
      harness_error_ = false;  // still audit what it left
    }
  }

  std::string describe_exit() const {
    return res_.rank_exit.exited ? res_.rank_exit.describe() : std::string("exited");
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
      if (e.type != "dir" || std::find(carried_names_.begin(), carried_names_.end(), e.path) == carried_names_.end())
        return false;
    return scope_.sandbox_shm.empty() || sys::list_tree(shm_).empty();
  }

  // The processes of the scenario and their stats: the cgroup's list when it
  // is in use (a few reads, however busy the machine), else every process on
  // the machine (the tree below the shepherd is picked out by the caller).
  // Zombies have left the cgroup: a zombie with a live parent still shows
  // through its parent, and the final audit of a failing scenario scans /proc.
  std::vector<sys::ProcStat> scenario_table() const {
    if (!cgroup_in_use_) return sys::scan_processes();
    std::vector<sys::ProcStat> out;
    for (int pid : sys::cgroup_procs(cgroup_))
      if (auto st = sys::read_stat(pid)) out.push_back(std::move(*st));
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

  // ---- verdict ----------------------------------------------------------------

  void finish() {
    if (interrupted_) return;
    // The shepherd reports the rank's exit status when it reaps it, which can
    // come just after the pidfd said the rank is gone.
    const std::int64_t until = sys::monotonic_ns() + 1000 * kMs;
    while (rank_exited() && !res_.rank_exit.exited && chan_ && sys::monotonic_ns() < until) {
      pollfd p{chan_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) on_shepherd();
    }
    if (shepherd_pid_ > 0) {
      std::vector<audit::Auditor*> auditors;
      for (auto& a : auditors_) auditors.push_back(a.get());
      if (clean_table_) scope_.process_table = &*clean_table_;
      for (auto& l : collect_leaks(auditors, scope_)) res_.leaks.push_back(std::move(l));
      scope_.process_table = nullptr;
    }
    if (!hang_ && !harness_error_ && rank_pfd_) {
      Evidence ev{hello_, fault_delivered_, hooks_at_fault_, res_.hooks, res_.rank_exit};
      res_.violations = check_contract(sc_, ev);
    }
    res_.timeline.finished_ns = sys::monotonic_ns();
    res_.verdict = decide_verdict(harness_error_ || (!res_.error.empty() && !hang_), hang_, res_.violations, res_.leaks);
    if (res_.verdict != Verdict::pass) {
      std::string out = tail_lines(log_, 12);
      if (!out.empty()) res_.notes.push_back("output of the scenario (last lines):\n" + out);
    }
  }

  // ---- clean-up: after the audit, kill what is left and remove the sandbox ----

  void cleanup() {
    leftovers_.clear();
    if (shepherd_pid_ > 0) {
      // Kill every leftover ourselves, then let the shepherd reap and exit.
      // When the audit found no process left, none can appear: skip the scans.
      const bool anything_left =
          interrupted_ || hang_ || !rank_exited() ||
          std::any_of(res_.leaks.begin(), res_.leaks.end(),
                      [](const Leak& l) { return l.kind == LeakKind::process || l.kind == LeakKind::zombie; });
      if (anything_left && cgroup_in_use_) sys::cgroup_kill(cgroup_);
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
      if (!shepherd_pfd_->wait_exit(5000ms)) shepherd_pfd_->send_signal(SIGKILL);
      siginfo_t info{};
      ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(shepherd_pfd_->fd()), &info, WEXITED);
      shepherd_proc_.reset();
    }
    // Empty now: the shepherd reaped every process of the scenario.
    if (!cgroup_.empty()) ::rmdir(cgroup_.c_str());
    probe_.reset();
    remove_machine_wide_leaks();
    if (!shm_.empty()) sys::remove_tree(shm_);
    sys::remove_tree(root_);
    if (res_.rank_exit.exited == false && rank_exited()) res_.rank_exit.exited = true;
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
  ScenarioResult res_;
  std::string root_, tmp_, shm_, log_, marker_, cgroup_;
  bool cgroup_in_use_ = false;
  std::vector<std::string> carry_, carried_names_;  // host dirs under /tmp bound into the private /tmp
  audit::AuditScope scope_;
  std::vector<std::unique_ptr<audit::Auditor>> auditors_;
  audit::HandleAuditor handles_;
  std::set<int> seen_pids_;
  std::optional<sys::TreeWatch> tmp_watch_, shm_watch_;
  Fd chan_, probe_;
  wire::LineBuffer probe_buf_;
  int shepherd_pid_ = 0, rank_pid_ = 0, probe_pid_ = 0;
  std::unique_ptr<boost::asio::io_context> io_;
  // The launcher's exact type: Boost.Process 1.81's converting move to
  // bp2::process leaves members uninitialised.
  std::optional<bp2::basic_process<boost::asio::io_context::executor_type>> shepherd_proc_;  // after io_
  std::optional<sys::Pidfd> shepherd_pfd_, rank_pfd_;
  std::map<int, sys::Pidfd> leftovers_;
  std::optional<std::vector<sys::ProcStat>> clean_table_;  // the scan that proved the scenario clean
  std::int64_t deadline_ns_ = INT64_MAX, kill_deadline_ns_ = 0, grace_deadline_ns_ = INT64_MAX;
  std::size_t hooks_at_fault_ = 0;
  bool hello_ = false, fault_delivered_ = false, hang_ = false, harness_error_ = false;
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

std::vector<std::string> directories_to_carry(const Target& target, const std::string& cwd) {
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
