// HandleAuditor: what a live rank holds that it did not hold at HELLO.
//
// Unlike the scenario auditors (audit.hpp), which look at what is left after
// the rank is gone, this one looks inside a running rank between hooks: an fd
// opened in setup() and never closed, a child that should have been joined.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/model.hpp"

namespace reclaim::audit {

// The handles of a live rank, diffed against a baseline taken at HELLO.
// Everything is keyed so that what existed at the baseline is never blamed:
// fds by (number, target), locks by (type, access, device:inode, range),
// children by (pid, starttime).
class HandleAuditor {
 public:
  // Records pid's fds, locks and children. Taking a new baseline replaces the old one.
  void take_baseline(int pid);
  // For `pid`, now:
  //  - open fds not in the baseline -> LeakKind::fd (details fd, target);
  //  - dead children not reaped (ppid == pid, state Z) -> LeakKind::zombie;
  //  - /proc/locks entries held by pid (and OFD locks, which have no pid, on
  //    an inode one of pid's fds refers to) -> LeakKind::lock (type, access,
  //    inode, and path when an fd of pid points at that inode);
  //  - live children -> LeakKind::process ("still running after the hook returned").
  // Auditing a pid other than the baseline's diffs against nothing. A gone
  // process has no handles: empty.
  std::vector<Leak> audit(int pid) const;

 private:
  int pid_ = 0;
  std::set<std::pair<int, std::string>> fds_;
  std::set<std::string> locks_;
  std::set<std::pair<int, std::uint64_t>> children_;
};

}  // namespace reclaim::audit
