// TreeWatch: tells the auditor *when* a sandbox changed, so it re-audits on
// the event instead of polling on a timer.
#pragma once

#include <string>
#include <unordered_map>

#include "sys/result.hpp"

namespace reclaim::sys {

class TreeWatch {
 public:
  // Watches `root` and every directory below it for entries created,
  // deleted, moved in/out or changed in attributes. Directories that appear
  // later are watched as they appear (with everything already inside them).
  // Symlinks are never followed. Errors: those of inotify_init1 and of
  // inotify_add_watch on root (ENOENT, ENOTDIR, ENOSPC when the per-user
  // watch limit is reached).
  static Result<TreeWatch> open(const std::string& root);

  TreeWatch(TreeWatch&& other) noexcept;
  TreeWatch& operator=(TreeWatch&& other) noexcept;
  TreeWatch(const TreeWatch&) = delete;
  TreeWatch& operator=(const TreeWatch&) = delete;
  ~TreeWatch();  // closes the inotify descriptor; never throws

  // Non-blocking descriptor, readable when events are pending: poll() it.
  int fd() const { return fd_; }

  // Reads every pending event without blocking, starts watching new
  // sub-directories, and returns whether anything in the tree changed.
  bool drain();

  // Number of directories currently watched (root included).
  std::size_t watched() const { return dirs_.size(); }

 private:
  TreeWatch(int fd, std::string root) : fd_(fd), root_(std::move(root)) {}
  void add_recursive(const std::string& path);
  void reset() noexcept;

  int fd_ = -1;
  std::string root_;
  std::unordered_map<int, std::string> dirs_;  // watch descriptor -> directory path
};

}  // namespace reclaim::sys
