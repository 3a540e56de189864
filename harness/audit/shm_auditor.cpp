// The POSIX shared-memory auditor: what is left in /dev/shm.
//
// A private /dev/shm (a sandbox directory bound over /dev/shm in the
// scenario's mount namespace) holds only the scenario's objects, and it is a
// plain host directory, so it survives the namespace and can be listed after
// the fact. Without a namespace the host's /dev/shm is shared with everybody
// and only the baseline diff separates the scenario's objects from the rest.
#include "audit/audit.hpp"

#include <algorithm>
#include "audit/tree_leaks.hpp"

namespace reclaim::audit {
namespace {

constexpr const char* kHostShm = "/dev/shm";

class ShmAuditor final : public Auditor {
 public:
  std::string_view name() const override { return "shm"; }
  void take_baseline(const AuditScope& scope) override { baseline_ = detail::snapshot_tree(root_of(scope)); }
  std::vector<Leak> audit(const AuditScope& scope) override {
    auto leaks = detail::tree_leaks(root_of(scope), baseline_, LeakKind::shm, "shm", "dev/shm/");
    if (scope.sandbox_shm.empty()) {
      // On the host's /dev/shm, other reclaim runs keep their scenarios'
      // private /dev/shm directories ("reclaim.*"): never this scenario's.
      std::erase_if(leaks, [](const Leak& l) {
        return std::any_of(l.details.begin(), l.details.end(),
                           [](auto& kv) { return kv.first == "path" && kv.second.rfind("reclaim.", 0) == 0; });
      });
    }
    return leaks;
  }

 private:
  static std::string root_of(const AuditScope& scope) { return scope.sandbox_shm.empty() ? kHostShm : scope.sandbox_shm; }
  detail::TreeSnapshot baseline_;
};

}  // namespace

std::unique_ptr<Auditor> make_shm_auditor() { return std::make_unique<ShmAuditor>(); }

}  // namespace reclaim::audit
