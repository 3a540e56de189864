#include "suite/filter.hpp"

#include <algorithm>

namespace reclaim::suite {

namespace {

// The prefixes model.hpp's parse_fault puts before a signal name to aim it
// at something other than the rank. A '-' after them is part of an id.
constexpr std::string_view kFaultTargetPrefixes[] = {"pg", "worker"};

std::size_t find_separator(std::string_view expr) {
  for (std::size_t i = 0; i < expr.size(); ++i) {
    if (expr[i] != '-') continue;
    std::string_view before = expr.substr(0, i);
    bool in_name = std::any_of(std::begin(kFaultTargetPrefixes), std::end(kFaultTargetPrefixes),
                               [&](std::string_view p) { return before.ends_with(p); });
    if (!in_name) return i;
  }
  return std::string_view::npos;
}

void split_patterns(std::string_view part, std::vector<std::string>& out) {
  while (!part.empty()) {
    auto colon = part.find(':');
    std::string_view pattern = part.substr(0, colon);
    if (!pattern.empty()) out.emplace_back(pattern);
    if (colon == std::string_view::npos) break;
    part.remove_prefix(colon + 1);
  }
}

bool any_match(const std::vector<std::string>& patterns, std::string_view id) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return wildcard_match(p, id); });
}

}  // namespace

bool wildcard_match(std::string_view pattern, std::string_view text) {
  // Linear-time greedy matching with one backtrack point: on a mismatch we
  // let the most recent '*' swallow one more character. Patterns come from
  // the command line, so no recursion that a long "*a*a*a" could blow up.
  std::size_t p = 0, t = 0;
  std::size_t star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Filter Filter::parse(std::string_view expr) {
  Filter f;
  auto sep = find_separator(expr);
  split_patterns(expr.substr(0, sep), f.positive_);
  if (sep != std::string_view::npos) split_patterns(expr.substr(sep + 1), f.negative_);
  if (f.positive_.empty()) f.positive_.emplace_back("*");
  return f;
}

Filter Filter::parse_all(const std::vector<std::string>& exprs) {
  Filter all;
  for (const auto& e : exprs) {
    Filter one = parse(e);
    all.positive_.insert(all.positive_.end(), one.positive_.begin(), one.positive_.end());
    all.negative_.insert(all.negative_.end(), one.negative_.begin(), one.negative_.end());
  }
  if (all.positive_.empty()) all.positive_.emplace_back("*");
  return all;
}

bool Filter::matches(std::string_view id) const {
  return any_match(positive_, id) && !any_match(negative_, id);
}

std::vector<Scenario> select(const std::vector<Scenario>& scenarios, const Filter& filter) {
  std::vector<Scenario> out;
  for (const auto& s : scenarios)
    if (filter.matches(s.id())) out.push_back(s);
  return out;
}

}  // namespace reclaim::suite
