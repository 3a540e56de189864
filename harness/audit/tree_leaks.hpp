// Internal to the audit folder: "what is left in a directory", shared by the
// temp-file and shm auditors.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/model.hpp"

namespace reclaim::audit::detail {

// (relative path, type) of every entry below a directory.
using TreeSnapshot = std::set<std::pair<std::string, std::string>>;

// Empty for an empty or missing root.
TreeSnapshot snapshot_tree(const std::string& root);

// Every entry below `root` not in `baseline`, as a Leak of `kind`, described
// as "<label> <shown_prefix><path> (<type>, <size> bytes)". `shown_prefix` is
// where the datamodule saw the directory ("tmp/", "dev/shm/").
std::vector<Leak> tree_leaks(const std::string& root, const TreeSnapshot& baseline, LeakKind kind,
                             std::string_view label, std::string_view shown_prefix);

}  // namespace reclaim::audit::detail
