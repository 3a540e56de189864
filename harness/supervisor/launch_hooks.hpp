// Launch hooks for Boost.Process v2's default_launcher, shared by the
// supervisor (starting shepherds) and the shepherd (starting ranks).
#pragma once

#include <boost/process/v2/posix/default_launcher.hpp>
#include <unistd.h>

#include <cerrno>

namespace reclaim::launch {

namespace bp2 = boost::process::v2;

// Passes descriptor `fd` to the child as `target`. Replaces
// bp2::posix::bind_fd, whose on_setup in Boost 1.81 flows off the end of a
// function returning error_code (undefined behaviour: garbage errors, stack
// corruption at -O2).
struct BindFd {
  int target;
  int fd;

  bp2::error_code on_setup(bp2::posix::default_launcher& launcher, const bp2::filesystem::path&,
                           const char* const*) {
    launcher.fd_whitelist.push_back(target);
    return {};
  }
  // Between fork and exec: async-signal-safe calls only. dup2 clears
  // FD_CLOEXEC on the target; for fd == target it must be cleared by hand.
  bp2::error_code on_exec_setup(bp2::posix::default_launcher&, const bp2::filesystem::path&,
                                const char* const*) {
    if (fd == target) {
      int flags = ::fcntl(fd, F_GETFD);
      if (flags < 0 || ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) return {errno, bp2::system_category()};
      return {};
    }
    if (::dup2(fd, target) == -1) return {errno, bp2::system_category()};
    return {};
  }
};

}  // namespace reclaim::launch
