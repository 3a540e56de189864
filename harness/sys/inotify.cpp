#include "sys/inotify.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace reclaim::sys {
namespace {

// IN_DONT_FOLLOW: a symlink to a directory outside the sandbox is an entry
// of the sandbox, not a part of it. IN_ONLYDIR: we only ever watch directories.
constexpr std::uint32_t kMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF |
                                IN_ONLYDIR | IN_DONT_FOLLOW;

}  // namespace

Result<TreeWatch> TreeWatch::open(const std::string& root) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return last_error();
  int wd = ::inotify_add_watch(fd, root.c_str(), kMask);
  if (wd < 0) {
    auto ec = last_error();
    ::close(fd);
    return ec;
  }
  TreeWatch w(fd, root);
  w.dirs_.emplace(wd, root);
  // Sub-directories that already exist.
  int dfd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd >= 0) {
    if (DIR* dir = ::fdopendir(dfd)) {
      while (dirent* e = ::readdir(dir)) {
        std::string_view n = e->d_name;
        if (n == "." || n == "..") continue;
        struct stat st {};
        if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
          w.add_recursive(root + "/" + e->d_name);
      }
      ::closedir(dir);
    } else {
      ::close(dfd);
    }
  }
  return w;
}

TreeWatch::TreeWatch(TreeWatch&& other) noexcept
    : fd_(other.fd_), root_(std::move(other.root_)), dirs_(std::move(other.dirs_)) {
  other.fd_ = -1;
}

TreeWatch& TreeWatch::operator=(TreeWatch&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.fd_;
    root_ = std::move(other.root_);
    dirs_ = std::move(other.dirs_);
    other.fd_ = -1;
  }
  return *this;
}

TreeWatch::~TreeWatch() { reset(); }

void TreeWatch::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);  // closing drops every watch at once
  fd_ = -1;
  dirs_.clear();
}

void TreeWatch::add_recursive(const std::string& path) {
  // Watch first, list second: anything created after the watch is reported
  // as an event, anything created before it is found by the listing, so no
  // sub-directory slips through between the two.
  int wd = ::inotify_add_watch(fd_, path.c_str(), kMask);
  if (wd < 0) return;  // vanished, replaced by a symlink/file, or out of watches
  dirs_[wd] = path;
  int dfd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return;
  DIR* dir = ::fdopendir(dfd);
  if (dir == nullptr) {
    ::close(dfd);
    return;
  }
  while (dirent* e = ::readdir(dir)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      add_recursive(path + "/" + e->d_name);
  }
  ::closedir(dir);
}

bool TreeWatch::drain() {
  if (fd_ < 0) return false;
  bool changed = false;
  alignas(inotify_event) char buf[16 * 1024];
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: nothing more pending
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      inotify_event ev{};
      std::memcpy(&ev, buf + off, sizeof ev);
      const char* name = buf + off + sizeof(inotify_event);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev.len);
      if (ev.mask & IN_Q_OVERFLOW) {
        // Events were lost, maybe the creation of a directory: re-walk the
        // tree (re-adding a watch is harmless), and report a change.
        changed = true;
        add_recursive(root_);
        continue;
      }
      if (ev.mask & IN_IGNORED) {
        dirs_.erase(ev.wd);  // the directory is gone (or was unmounted)
        continue;
      }
      changed = true;
      if ((ev.mask & IN_ISDIR) && (ev.mask & (IN_CREATE | IN_MOVED_TO)) && ev.len > 0) {
        auto it = dirs_.find(ev.wd);
        if (it != dirs_.end()) add_recursive(it->second + "/" + name);
      }
    }
  }
  return changed;
}

}  // namespace reclaim::sys
