// One packet with descriptors attached (SCM_RIGHTS) over a unix socket: the
// supervisor, the shepherd zygote and the shepherds pass pidfds and the
// scenario's descriptors this way.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

namespace reclaim::launch {

// Sends `len` bytes of `data` with the `nfds` descriptors of `fds` (none when
// nfds == 0) as one packet; EINTR is retried, SIGPIPE never raised. Returns
// sendmsg's result.
inline ssize_t send_with_fds(int sock, const void* data, std::size_t len, const int* fds, std::size_t nfds) {
  iovec iov{const_cast<void*>(data), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(nfds ? CMSG_SPACE(sizeof(int) * nfds) : 0);
  if (nfds) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

// Receives one packet into `buf` (at most `len` bytes) and appends the
// descriptors it carries to `fds`, close-on-exec; EINTR is retried. Returns
// recvmsg's result; `truncated` (if given) tells whether the packet or its
// descriptors were cut short.
inline ssize_t recv_with_fds(int sock, void* buf, std::size_t len, std::vector<int>& fds, int flags,
                             bool* truncated = nullptr) {
  iovec iov{buf, len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 253)];  // the kernel's limit per packet
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      for (std::size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++k) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
        fds.push_back(fd);
      }
  if (truncated) *truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return n;
}

}  // namespace reclaim::launch
