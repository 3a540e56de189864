// The System V IPC auditor: segments, semaphore sets and message queues
// created since the baseline.
//
// SysV objects outlive every process (until IPC_RMID or reboot), which makes
// them the most durable leak there is. Scenarios deliberately share the host
// IPC namespace: a private one would vanish with its last process and erase
// exactly the evidence we are looking for. Attribution therefore relies on
// the creator pid the kernel records for shared memory; semaphores and
// message queues have none (see the limit stated in audit.hpp).
#include <fmt/format.h>

#include <tuple>
#include <unordered_set>

#include "audit/audit.hpp"

namespace reclaim::audit {
namespace {

using ObjectKey = std::tuple<sys::SysvKind, long, long>;  // (kind, id, key): ids carry a sequence number

ObjectKey key_of(const sys::SysvObject& o) { return {o.kind, o.id, o.key}; }

class SysvAuditor final : public Auditor {
 public:
  std::string_view name() const override { return "sysv"; }

  void take_baseline(const AuditScope&) override {
    baseline_.clear();
    for (const auto& o : sys::read_sysvipc()) baseline_.insert(key_of(o));
  }

  std::vector<Leak> audit(const AuditScope& scope) override {
    std::vector<Leak> leaks;
    std::optional<std::unordered_set<int>> tree;  // computed on first need
    for (const auto& o : sys::read_sysvipc()) {
      if (baseline_.count(key_of(o))) continue;
      if (o.kind == sys::SysvKind::shm && !created_by_scenario(o.cpid, scope, tree)) continue;
      leaks.push_back(to_leak(o));
    }
    return leaks;
  }

 private:
  static bool created_by_scenario(int cpid, const AuditScope& scope, std::optional<std::unordered_set<int>>& tree) {
    if (scope.seen_pids == nullptr) return true;  // no attribution available: every new segment counts
    if (scope.seen_pids->count(cpid)) return true;
    // The creator may have come and gone between two process audits; if it
    // is still alive we can still place it.
    if (!tree) {
      auto d = scope.shepherd_pid > 0 ? sys::descendants(sys::scan_processes(), scope.shepherd_pid) : std::vector<int>{};
      tree.emplace(d.begin(), d.end());
    }
    if (tree->count(cpid)) return true;
    return !scope.marker.empty() && sys::process_environ_contains(cpid, scope.marker).value_or(false);
  }

  static Leak to_leak(const sys::SysvObject& o) {
    Leak leak;
    leak.kind = LeakKind::sysv_ipc;
    const auto kind = sys::to_string(o.kind);
    switch (o.kind) {
      case sys::SysvKind::shm:
        leak.what = fmt::format("SysV shm key {:#010x} id {} ({} bytes, creator pid {})", static_cast<unsigned>(o.key),
                                o.id, o.size, o.cpid);
        break;
      case sys::SysvKind::sem:
        leak.what = fmt::format("SysV sem key {:#010x} id {} ({} semaphores)", static_cast<unsigned>(o.key), o.id, o.size);
        break;
      case sys::SysvKind::msg:
        leak.what = fmt::format("SysV msg queue key {:#010x} id {} ({} bytes queued)", static_cast<unsigned>(o.key), o.id,
                                o.size);
        break;
    }
    leak.details = {{"ipc", std::string(kind)},
                    {"key", std::to_string(o.key)},
                    {"id", std::to_string(o.id)},
                    {"size", std::to_string(o.size)},
                    {"uid", std::to_string(o.uid)}};
    if (o.kind == sys::SysvKind::shm) leak.details.emplace_back("cpid", std::to_string(o.cpid));
    return leak;
  }

  std::set<ObjectKey> baseline_;
};

}  // namespace

std::unique_ptr<Auditor> make_sysv_auditor() { return std::make_unique<SysvAuditor>(); }

}  // namespace reclaim::audit
