#include "supervisor/zygote.hpp"

#include "supervisor/fd_passing.hpp"
#include "supervisor/launch_hooks.hpp"
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "sys/fs.hpp"
#include "sys/pidfd.hpp"

namespace reclaim::supervisor {

namespace bp2 = boost::process::v2;

struct ShepherdZygote::State {
  int sock = -1;  // our end of the request socket
  std::mutex mu;
  std::condition_variable cv;
  // Finished scenarios' shepherds to wait for, and what to do once each is gone.
  std::deque<std::pair<sys::Pidfd, std::function<void()>>> retired;
  // Sandboxes made ahead, up to `depth`; none once making one failed.
  std::deque<Sandbox> made;
  std::size_t depth = 1;
  bool make_more = true;
  std::string sandbox_base, shm_base, cgroup_base;
  std::uint64_t next_sandbox = 0;
  bool stopping = false;
  std::thread sweeper;

  // The thread: sandboxes first (the next scenario may be waiting for one),
  // then finished shepherds.
  void sweep() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stopping || !retired.empty() || (make_more && made.size() < depth); });
      if (!stopping && make_more && made.size() < depth) {
        lock.unlock();
        auto sb = make_sandbox();
        lock.lock();
        if (sb) made.push_back(std::move(*sb));
        else make_more = false;
        continue;
      }
      if (retired.empty()) break;
      auto [shepherd, then] = std::move(retired.front());
      retired.pop_front();
      lock.unlock();
      if (!shepherd.wait_exit(std::chrono::seconds(5))) {
        shepherd.send_signal(SIGKILL);
        shepherd.wait_exit(std::chrono::seconds(5));
      }
      then();
      lock.lock();
    }
    for (const auto& sb : made) remove_sandbox(sb);
    made.clear();
  }

  std::optional<Sandbox> make_sandbox() {
    const std::string name = "p" + std::to_string(next_sandbox++);
    Sandbox sb;
    sb.root = sandbox_base + "/" + name;
    sb.tmp = sb.root + "/tmp";
    bool ok = !sys::make_private_dir(sb.tmp);
    if (ok && !shm_base.empty()) {
      sb.shm = shm_base + "." + name;
      ok = !sys::make_private_dir(sb.shm);
    }
    if (ok && !cgroup_base.empty()) {
      sb.cgroup = cgroup_base + "/" + name;
      ok = ::mkdir(sb.cgroup.c_str(), 0755) == 0 && ::mkdir((sb.cgroup + "/r0").c_str(), 0755) == 0;
    }
    if (ok) return sb;
    remove_sandbox(sb);  // the supervisor makes its own, and says what failed
    return std::nullopt;
  }

  static void remove_sandbox(const Sandbox& sb) {
    if (!sb.cgroup.empty()) {
      ::rmdir((sb.cgroup + "/r0").c_str());
      ::rmdir(sb.cgroup.c_str());
    }
    if (!sb.shm.empty()) sys::remove_tree(sb.shm);
    sys::remove_tree(sb.root);
  }
  boost::asio::io_context io;
  // The launcher's exact type: Boost.Process 1.81's converting move to
  // bp2::process leaves members uninitialised. Kept until the zygote is
  // reaped: 1.81's detach() is unreliable.
  std::optional<bp2::basic_process<boost::asio::io_context::executor_type>> proc;
  std::optional<sys::Pidfd> pfd;
};

std::unique_ptr<ShepherdZygote> ShepherdZygote::start(const SupervisorConfig& cfg, int spares, std::string& error) {
  const std::string& shepherd_path = cfg.shepherd_path;
  const bool private_tmp = cfg.private_tmp;
  auto s = std::make_unique<State>();
  s->depth = static_cast<std::size_t>(std::max(1, spares));
  s->sandbox_base = cfg.sandbox_base;
  s->shm_base = cfg.private_tmp ? cfg.shm_base : "";
  s->cgroup_base = cfg.cgroup_base;
  s->make_more = !cfg.sandbox_base.empty();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    error = std::string("socketpair: ") + std::strerror(errno);
    return nullptr;
  }
  s->sock = sv[0];
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) {
    error = std::string("/dev/null: ") + std::strerror(errno);
    ::close(sv[0]);
    ::close(sv[1]);
    return nullptr;
  }
  const std::string spare_count = std::to_string(std::max(1, spares));
  const char* argv[] = {shepherd_path.c_str(), "--serve", "--spares", spare_count.c_str(),
                        private_tmp ? "--unshare" : nullptr, nullptr};
  bp2::posix::default_launcher launcher;
  bp2::error_code ec;
  std::fflush(nullptr);  // Boost.Process 1.81 calls exit(), not _exit(), when exec fails
  // The executor overload: the io_context one of Boost 1.81 drops `ec` and throws.
  // stdin and stdout: /dev/null (it holds no reader's pipe open); stderr: ours.
  auto proc = launcher(s->io.get_executor(), ec, shepherd_path, argv, launch::BindFd{0, devnull},
                       launch::BindFd{1, devnull}, launch::BindFd{3, sv[1]});
  ::close(sv[1]);
  ::close(devnull);
  if (ec) {
    ::close(s->sock);
    error = "starting " + shepherd_path + " --serve: " + ec.message();
    return nullptr;
  }
  auto pfd = sys::Pidfd::open(proc.id());
  s->proc.emplace(std::move(proc));
  if (!pfd) {
    // Without a handle we could not wait for it: let it go at once.
    ::close(s->sock);
    ::waitpid(s->proc->id(), nullptr, 0);
    error = "pidfd_open(zygote): " + pfd.error().message();
    return nullptr;
  }
  s->pfd.emplace(std::move(pfd.value()));
  State* state = s.get();
  s->sweeper = std::thread([state] { state->sweep(); });
  return std::unique_ptr<ShepherdZygote>(new ShepherdZygote(std::move(s)));
}

ShepherdZygote::ShepherdZygote(std::unique_ptr<State> s) : s_(std::move(s)) {}

ShepherdZygote::~ShepherdZygote() {
  {
    std::lock_guard lock(s_->mu);
    s_->stopping = true;
  }
  s_->cv.notify_all();
  s_->sweeper.join();
  ::close(s_->sock);  // EOF: the zygote takes no more requests
  if (!s_->pfd->wait_exit(std::chrono::seconds(10))) {
    s_->pfd->send_signal(SIGKILL);
    s_->pfd->wait_exit(std::chrono::seconds(10));
  }
  siginfo_t info{};
  ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(s_->pfd->fd()), &info, WEXITED);
  s_->proc.reset();
}

int ShepherdZygote::pid() const { return s_->pfd->pid(); }

std::optional<ShepherdZygote::Sandbox> ShepherdZygote::take_sandbox() const {
  std::optional<Sandbox> sb;
  {
    std::lock_guard lock(s_->mu);
    if (s_->made.empty()) return sb;
    sb = std::move(s_->made.front());
    s_->made.pop_front();
  }
  s_->cv.notify_one();
  return sb;
}

void ShepherdZygote::retire(sys::Pidfd shepherd, std::function<void()> then) const {
  {
    std::lock_guard lock(s_->mu);
    s_->retired.emplace_back(std::move(shepherd), std::move(then));
  }
  s_->cv.notify_one();
}

std::error_code ShepherdZygote::request(const std::string& cwd, const std::vector<std::string>& args,
                                        const std::vector<std::string>& env, const std::vector<int>& fds) const {
  if (fds.size() < 3 || fds.size() > kMaxFds) return std::make_error_code(std::errc::invalid_argument);
  // NUL-separated strings: "NARGS NENV", the directory, the arguments, the environment.
  std::string data = std::to_string(args.size()) + " " + std::to_string(env.size());
  data.push_back('\0');
  auto put = [&](const std::string& v) {
    data += v;
    data.push_back('\0');
  };
  put(cwd);
  for (const auto& a : args) put(a);
  for (const auto& e : env) put(e);
  const ssize_t n = launch::send_with_fds(s_->sock, data.data(), data.size(), fds.data(), fds.size());
  if (n < 0) return {errno, std::system_category()};
  return {};
}

}  // namespace reclaim::supervisor
