#include "sys/pidfd.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "sys/proc.hpp"

namespace reclaim::sys {
namespace {

// glibc 2.36 has wrappers, but going through syscall() keeps us building on
// older C libraries whose kernels do support pidfds.
int sys_pidfd_open(int pid, unsigned flags) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags)); }

int sys_pidfd_send_signal(int pidfd, int signo) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0U));
}

}  // namespace

Result<Pidfd> Pidfd::open(int pid) {
  if (pid <= 0) return std::error_code(ESRCH, std::system_category());
  // pidfds are close-on-exec by definition: a rank never inherits one.
  int fd = sys_pidfd_open(pid, 0);
  if (fd < 0) return last_error();
  return Pidfd(fd, pid);
}

Pidfd::Pidfd(Pidfd&& other) noexcept : fd_(other.fd_), pid_(other.pid_) {
  other.fd_ = -1;
  other.pid_ = 0;
}

Pidfd& Pidfd::operator=(Pidfd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.fd_;
    pid_ = other.pid_;
    other.fd_ = -1;
    other.pid_ = 0;
  }
  return *this;
}

Pidfd::~Pidfd() { reset(); }

void Pidfd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::error_code Pidfd::send_signal(int signo) const {
  if (fd_ < 0) return std::make_error_code(std::errc::bad_file_descriptor);
  if (sys_pidfd_send_signal(fd_, signo) < 0) return last_error();
  return {};
}

bool Pidfd::exited() const { return wait_exit(std::chrono::milliseconds(0)); }

bool Pidfd::wait_exit(std::chrono::milliseconds timeout) const {
  if (fd_ < 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    // A pidfd becomes readable when the process exits (turns zombie or is reaped).
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n == 0) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      continue;
    }
    if (errno != EINTR) return false;
  }
}

std::optional<Pidfd> open_verified(int pid, std::uint64_t starttime) {
  auto pidfd = Pidfd::open(pid);
  if (!pidfd) return std::nullopt;
  // The pidfd now pins this exact process. If /proc still shows the expected
  // start time, the pidfd names the process the caller meant; if not, the PID
  // was recycled between the caller's scan and our open.
  auto st = read_stat(pid);
  if (!st || st->starttime != starttime) return std::nullopt;
  return std::move(pidfd).value();
}

}  // namespace reclaim::sys
