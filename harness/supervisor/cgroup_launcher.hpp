// A Boost.Process v2 launcher that starts the child directly inside a cgroup
// v2 directory: clone3(CLONE_INTO_CGROUP | CLONE_PIDFD) in place of fork().
//
// Why: a child that joins its cgroup by writing to cgroup.procs after fork
// takes the kernel's cgroup_threadgroup_rwsem for writing, and that waits for
// an RCU grace period whenever the lock has been idle for a while — 10–16 ms
// stalls in about one rank start of thirty on this machine. A child created
// in the cgroup only takes the lock for reading. The pidfd comes from the
// same call, so it names the child before anything could reap it.
//
// The hooks of bp2::posix::default_launcher (whose members it uses, as
// Boost's own vfork_launcher does): on_setup, on_exec_setup (between clone
// and exec), close of every descriptor not white-listed, exec, on_exec_error,
// the error pipe, on_success / on_error. With cgroup_fd < 0, or when clone3
// fails for any reason (ENOSYS, E2BIG or EINVAL on kernels before 5.7), it
// forks as the default launcher does and `placed` stays false: the caller
// then joins the cgroup the old way.
//
// For a single-threaded caller only (the shepherd is one): a raw clone3 skips
// glibc's fork handling (atfork handlers, the state of other threads' locks),
// which the child of a single-threaded process does not need before exec.
#pragma once

#include <boost/process/v2/posix/default_launcher.hpp>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>

namespace reclaim::launch {

namespace bp2 = boost::process::v2;

struct CgroupLauncher : bp2::posix::default_launcher {
  int cgroup_fd = -1;  // an O_DIRECTORY descriptor of the cgroup v2 directory, or -1
  int pidfd = -1;      // set after a successful clone3: the child's pidfd (the caller closes it)
  bool placed = false; // the child was created inside cgroup_fd

  template <typename Executor, typename Args, typename... Inits>
  auto operator()(Executor exec, bp2::error_code& ec, const bp2::filesystem::path& executable, Args&& args,
                  Inits&&... inits) -> bp2::basic_process<Executor> {
    namespace detail = bp2::posix::detail;
    auto argv = this->build_argv_(executable, std::forward<Args>(args));
    pipe_guard pg;
    if (::pipe2(pg.p, O_CLOEXEC)) {
      ec.assign(errno, bp2::system_category());
      return bp2::basic_process<Executor>{exec};
    }
    ec = detail::on_setup(*this, executable, argv, inits...);
    if (ec) {
      detail::on_error(*this, executable, argv, ec, inits...);
      return bp2::basic_process<Executor>(exec);
    }
    fd_whitelist.push_back(pg.p[1]);
    auto& ctx = boost::asio::query(exec, boost::asio::execution::context);
    ctx.notify_fork(boost::asio::execution_context::fork_prepare);
    pid = -1;
    if (cgroup_fd >= 0) {
      clone_args ca{};
      ca.flags = CLONE_INTO_CGROUP | CLONE_PIDFD;
      ca.pidfd = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&pidfd));
      ca.exit_signal = SIGCHLD;
      ca.cgroup = static_cast<std::uint64_t>(cgroup_fd);
      pid = static_cast<pid_t>(::syscall(SYS_clone3, &ca, sizeof ca));
      placed = pid >= 0;
      if (pid < 0) pidfd = -1;
    }
    if (pid < 0) pid = ::fork();
    if (pid == -1) {
      ctx.notify_fork(boost::asio::execution_context::fork_parent);
      detail::on_fork_error(*this, executable, argv, ec, inits...);
      detail::on_error(*this, executable, argv, ec, inits...);
      ec.assign(errno, bp2::system_category());
      return bp2::basic_process<Executor>{exec};
    }
    if (pid == 0) {
      ::close(pg.p[0]);
      ctx.notify_fork(boost::asio::execution_context::fork_child);
      ec = detail::on_exec_setup(*this, executable, argv, inits...);
      if (!ec) close_all_fds(ec);
      if (!ec) ::execve(executable.c_str(), const_cast<char* const*>(argv), const_cast<char* const*>(env));
      int err = ec ? ec.value() : errno;
      (void)!::write(pg.p[1], &err, sizeof err);
      ec.assign(err, bp2::system_category());
      detail::on_exec_error(*this, executable, argv, ec, inits...);
      ::_exit(EXIT_FAILURE);
    }
    ctx.notify_fork(boost::asio::execution_context::fork_parent);
    ::close(pg.p[1]);
    pg.p[1] = -1;
    int child_error = 0;
    ssize_t count;
    while ((count = ::read(pg.p[0], &child_error, sizeof child_error)) == -1)
      if (errno != EAGAIN && errno != EINTR) {
        ec.assign(errno, bp2::system_category());
        break;
      }
    if (count > 0) ec.assign(child_error, bp2::system_category());
    if (ec) {
      detail::on_error(*this, executable, argv, ec, inits...);
      return bp2::basic_process<Executor>{exec};
    }
    bp2::basic_process<Executor> proc(exec, pid);
    detail::on_success(*this, executable, argv, ec, inits...);
    return proc;
  }
};

}  // namespace reclaim::launch
