// Pidfd: a process handle that cannot be fooled by PID reuse.
//
// Signals go through pidfd_send_signal and exits are observed by polling the
// pidfd, so the harness never signals a recycled PID and never sleeps to find
// out whether a process is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <system_error>

#include "sys/result.hpp"

namespace reclaim::sys {

class Pidfd {
 public:
  // Opens a pidfd for `pid` (pidfd_open, O_CLOEXEC). Errors: ESRCH when no
  // such process exists, ENOSYS on kernels before 5.3, EMFILE/ENFILE.
  // A zombie still has a pidfd; it reads as exited().
  static Result<Pidfd> open(int pid);

  // Takes ownership of a pidfd obtained elsewhere (e.g. received over a
  // socket from the process's parent, which opened it before it could reap).
  static Pidfd adopt(int fd, int pid) { return Pidfd(fd, pid); }

  Pidfd(Pidfd&& other) noexcept;
  Pidfd& operator=(Pidfd&& other) noexcept;
  Pidfd(const Pidfd&) = delete;
  Pidfd& operator=(const Pidfd&) = delete;
  ~Pidfd();  // closes the descriptor; never throws

  int fd() const { return fd_; }
  int pid() const { return pid_; }

  // pidfd_send_signal. Errors: ESRCH once the process has been reaped (a
  // zombie still accepts signals and ignores them), EPERM, EINVAL.
  std::error_code send_signal(int signo) const;

  // Whether the process has exited (zombie or reaped). Never blocks.
  bool exited() const;

  // Waits until the process exits or `timeout` passes (poll on the pidfd
  // with a deadline; EINTR restarts with the remaining time).
  // Returns whether it exited.
  bool wait_exit(std::chrono::milliseconds timeout) const;

 private:
  Pidfd(int fd, int pid) : fd_(fd), pid_(pid) {}
  void reset() noexcept;

  int fd_ = -1;
  int pid_ = 0;
};

// Opens a pidfd for `pid` and keeps it only if the process it names is still
// the one started at `starttime` (from /proc/PID/stat). Because the pidfd is
// taken first, a PID recycled after this check cannot be signalled through it.
// nullopt when the process is gone or the PID now belongs to someone else.
std::optional<Pidfd> open_verified(int pid, std::uint64_t starttime);

}  // namespace reclaim::sys
