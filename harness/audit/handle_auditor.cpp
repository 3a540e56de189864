// Handles of a live rank: fds, locks, children.
//
// Locks are matched to the rank by the pid /proc/locks prints; OFD locks
// print -1 (they belong to an open file description, which may be shared),
// so those are matched by inode against the rank's own fds instead.
#include "audit/handle_auditor.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>

#include <optional>

#include "audit/audit.hpp"

#include <set>
#include "sys/proc.hpp"

namespace reclaim::audit {
namespace {

std::string lock_key(const sys::LockEntry& l) {
  return fmt::format("{} {} {} {}", l.type, l.access, l.dev_inode, l.range);
}


}  // namespace

void HandleAuditor::take_baseline(int pid) {
  pid_ = pid;
  fds_.clear();
  locks_.clear();
  children_.clear();
  const auto fds = sys::list_fds(pid);
  for (const auto& f : fds) fds_.emplace(f.fd, f.target);
  for (const auto& [fd, l] : sys::locks_on_fds(pid, fds))
    if (!l.waiter && (l.pid == pid || l.pid == -1)) locks_.insert(lock_key(l));
  for (const auto& p : sys::children_of(pid)) children_.emplace(p.pid, p.starttime);
}

std::vector<Leak> HandleAuditor::audit(int pid) const {
  std::vector<Leak> leaks;
  const bool same = pid == pid_;
  const auto fds = sys::list_fds(pid);
  if (fds.empty() && !sys::read_stat(pid)) return leaks;  // gone

  for (const auto& f : fds) {
    if (same && fds_.count({f.fd, f.target})) continue;
    Leak leak;
    leak.kind = LeakKind::fd;
    leak.what = fmt::format("fd {} -> {}", f.fd, f.target);
    leak.details = {{"pid", std::to_string(pid)}, {"fd", std::to_string(f.fd)}, {"target", f.target}};
    leaks.push_back(std::move(leak));
  }

  std::set<std::string> reported;
  for (const auto& [fd, l] : sys::locks_on_fds(pid, fds)) {
    // Another process's lock on a file we have open is not ours; an OFD lock
    // (pid -1) on our open file is.
    if (l.waiter || (l.pid != pid && l.pid != -1)) continue;
    if ((same && locks_.count(lock_key(l))) || !reported.insert(lock_key(l)).second) continue;
    std::optional<sys::FdEntry> holder = fd;
    Leak leak;
    leak.kind = LeakKind::lock;
    std::string on = holder ? holder->target : "inode " + l.dev_inode;
    leak.what = fmt::format("lock {} {} on {} ({})", l.type, l.access, on, l.range);
    leak.details = {{"pid", std::to_string(pid)},  {"type", l.type},   {"access", l.access},
                    {"inode", l.dev_inode},        {"range", l.range}};
    if (holder) leak.details.emplace_back("path", holder->target);
    leaks.push_back(std::move(leak));
  }

  for (const auto& p : sys::children_of(pid)) {
    if (p.ppid != pid || (same && children_.count({p.pid, p.starttime}))) continue;
    const bool zombie = p.state == 'Z';
    std::string cmdline = sys::read_cmdline(p.pid).value_or("");
    Leak leak;
    leak.kind = zombie ? LeakKind::zombie : LeakKind::process;
    leak.what = zombie ? describe_process("zombie", p, cmdline) + " not reaped"
                       : describe_process("process", p, cmdline) + " still running after the hook returned";
    leak.details = {{"pid", std::to_string(p.pid)},
                    {"ppid", std::to_string(p.ppid)},
                    {"cmdline", cmdline},
                    {"state", std::string(1, p.state)}};
    leaks.push_back(std::move(leak));
  }
  return leaks;
}

}  // namespace reclaim::audit
