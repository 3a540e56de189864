// The temp-file auditor: whatever is left in the scenario's sandbox.
//
// The sandbox is created empty for each scenario, so in practice everything
// in it is a leak; the baseline still exists so that anything the harness
// itself puts there before the rank starts is never blamed on the target.
#include <fmt/format.h>

#include "audit/audit.hpp"
#include "audit/tree_leaks.hpp"
#include "sys/fs.hpp"

namespace reclaim::audit {
namespace detail {

TreeSnapshot snapshot_tree(const std::string& root) {
  TreeSnapshot out;
  if (root.empty()) return out;
  for (const auto& e : sys::list_tree(root)) out.emplace(e.path, e.type);
  return out;
}

std::vector<Leak> tree_leaks(const std::string& root, const TreeSnapshot& baseline, LeakKind kind,
                             std::string_view label, std::string_view shown_prefix) {
  std::vector<Leak> leaks;
  if (root.empty()) return leaks;
  for (const auto& e : sys::list_tree(root)) {
    if (baseline.count({e.path, e.type})) continue;
    Leak leak;
    leak.kind = kind;
    // A directory's size is file-system bookkeeping, not something the target wrote.
    leak.what = e.type == "dir" ? fmt::format("{} {}{} (dir)", label, shown_prefix, e.path)
                                : fmt::format("{} {}{} ({}, {} bytes)", label, shown_prefix, e.path, e.type, e.size);
    leak.details = {{"path", e.path}, {"size", std::to_string(e.size)}, {"type", e.type}, {"root", root}};
    leaks.push_back(std::move(leak));
  }
  return leaks;
}

}  // namespace detail

namespace {

class TempFileAuditor final : public Auditor {
 public:
  std::string_view name() const override { return "temp_file"; }
  void take_baseline(const AuditScope& scope) override { baseline_ = detail::snapshot_tree(scope.sandbox_tmp); }
  std::vector<Leak> audit(const AuditScope& scope) override {
    return detail::tree_leaks(scope.sandbox_tmp, baseline_, LeakKind::temp_file, "temp file", "tmp/");
  }

 private:
  detail::TreeSnapshot baseline_;
};

}  // namespace

std::unique_ptr<Auditor> make_temp_file_auditor() { return std::make_unique<TempFileAuditor>(); }

}  // namespace reclaim::audit
