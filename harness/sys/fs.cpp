#include "sys/fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "sys/result.hpp"

namespace reclaim::sys {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

std::string type_of(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFLNK: return "symlink";
    case S_IFCHR: return "char";
    case S_IFBLK: return "block";
  }
  return "unknown";
}

// The names in an open directory, sorted, without "." and "..". Takes
// ownership of nothing: the directory fd is dup'ed for the stream.
std::vector<std::string> names_in(int dirfd) {
  std::vector<std::string> names;
  int copy = ::dup(dirfd);
  if (copy < 0) return names;
  DIR* dir = ::fdopendir(copy);
  if (dir == nullptr) {
    ::close(copy);
    return names;
  }
  while (dirent* e = ::readdir(dir)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

void list_into(int dirfd, const std::string& prefix, std::vector<FileEntry>& out) {
  for (const auto& name : names_in(dirfd)) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    out.push_back({rel, static_cast<std::uint64_t>(st.st_size), type_of(st.st_mode)});
    if (S_ISDIR(st.st_mode)) {
      // O_NOFOLLOW: if the entry was swapped for a symlink since fstatat,
      // the open fails instead of walking out of the tree.
      int sub = ::openat(dirfd, name.c_str(), kDirFlags);
      if (sub < 0) continue;
      list_into(sub, rel, out);
      ::close(sub);
    }
  }
}

// Opens a sub-directory for removal. A directory with mode 0 (or without
// search permission for a non-root owner) cannot be opened for reading: we
// pin it with O_PATH|O_NOFOLLOW, chmod it through /proc/self/fd (which acts
// on the pinned inode, never on a symlink target) and try again.
int open_dir_for_removal(int parent, const char* name) {
  int fd = ::openat(parent, name, kDirFlags);
  if (fd >= 0 || errno != EACCES) return fd;
  int pinned = ::openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (pinned < 0) return -1;
  std::string link = "/proc/self/fd/" + std::to_string(pinned);
  int rc = ::chmod(link.c_str(), 0700);
  ::close(pinned);
  if (rc != 0) return -1;
  return ::openat(parent, name, kDirFlags);
}

void remember(std::error_code& first, std::error_code ec) {
  if (!first && ec) first = ec;
}

// Empties the directory open as `dirfd` (device `dev`).
void empty_dir(int dirfd, dev_t dev, std::error_code& first) {
  // Parent directories need write+search permission for unlinkat; a 0-mode
  // directory was made 0700 by open_dir_for_removal already. Loop until the
  // directory is empty or nothing more can be removed (entries created while
  // we work are picked up on the next pass).
  for (int pass = 0; pass < 3; ++pass) {
    auto names = names_in(dirfd);
    if (names.empty()) return;
    for (const auto& name : names) {
      struct stat st {};
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) remember(first, last_error());
        continue;
      }
      if (!S_ISDIR(st.st_mode)) {
        if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) remember(first, last_error());
        continue;
      }
      if (st.st_dev != dev) {
        remember(first, std::error_code(EXDEV, std::system_category()));
        continue;
      }
      int sub = open_dir_for_removal(dirfd, name.c_str());
      if (sub < 0) {
        if (errno != ENOENT) remember(first, last_error());
        continue;
      }
      empty_dir(sub, dev, first);
      ::close(sub);
      if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) remember(first, last_error());
    }
  }
}

}  // namespace

std::vector<FileEntry> list_tree(const std::string& root) {
  std::vector<FileEntry> out;
  int fd = ::open(root.c_str(), kDirFlags);
  if (fd < 0) return out;
  list_into(fd, "", out);
  ::close(fd);
  return out;
}

std::error_code remove_tree(const std::string& root, bool keep_root) {
  int fd = ::open(root.c_str(), kDirFlags);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    return last_error();
  }
  std::error_code first;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    first = last_error();
    ::close(fd);
    return first;
  }
  empty_dir(fd, st.st_dev, first);
  ::close(fd);
  if (!keep_root && ::rmdir(root.c_str()) != 0 && errno != ENOENT) remember(first, last_error());
  return first;
}

std::error_code make_private_dir(const std::string& path) {
  if (path.empty()) return std::make_error_code(std::errc::invalid_argument);
  // Create each missing component in turn ("mkdir -p"), 0700 throughout.
  for (std::size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    std::string parent = path.substr(0, pos);
    if (::mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) return last_error();
  }
  if (::mkdir(path.c_str(), 0700) == 0) return {};
  if (errno != EEXIST) return last_error();
  // It exists: accept it only if it is a real directory that belongs to us.
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return std::error_code(EEXIST, std::system_category());
  struct stat st {};
  std::error_code ec;
  if (::fstat(fd, &st) != 0)
    ec = last_error();
  else if (st.st_uid != ::geteuid())
    ec = std::error_code(EPERM, std::system_category());
  else if ((st.st_mode & 07777) != 0700 && ::fchmod(fd, 0700) != 0)
    ec = last_error();
  ::close(fd);
  return ec;
}

}  // namespace reclaim::sys
