// Scenario filters, in GoogleTest's --gtest_filter syntax, matched against
// scenario ids ("fit/train_batch#2/sigterm").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/model.hpp"

namespace reclaim::suite {

// Glob match of the whole `text`: '*' matches any run of characters
// (including '/' and the empty run), '?' exactly one character; every other
// character, '#' included, matches itself.
bool wildcard_match(std::string_view pattern, std::string_view text);

// "POS1:POS2-NEG1:NEG2": an id is selected when it matches some positive
// pattern and no negative one. An empty positive part means "*"; an empty
// expression selects everything. Empty patterns between ':' are ignored.
//
// Scenario ids contain '-' themselves (fault names "pg-sigint",
// "worker-sigkill"), so a '-' directly after "pg" or "worker" belongs to the
// pattern; the separator is the first other '-'. "*/pg-sigint" therefore
// selects the group SIGINT scenarios, and "fit/*-*/pg-sigint" selects fit
// without them.
//
// Parsing never fails: every string is a valid filter.
class Filter {
 public:
  static Filter parse(std::string_view expr);
  // Several --filter options: the union of their positive patterns and the
  // union of their negative ones. No expressions at all selects everything.
  static Filter parse_all(const std::vector<std::string>& exprs);

  bool matches(std::string_view id) const;

  const std::vector<std::string>& positive() const { return positive_; }
  const std::vector<std::string>& negative() const { return negative_; }

 private:
  std::vector<std::string> positive_;  // never empty after parse: {"*"} by default
  std::vector<std::string> negative_;
};

// The scenarios whose id `filter` matches, in their original order.
std::vector<Scenario> select(const std::vector<Scenario>& scenarios, const Filter& filter);

}  // namespace reclaim::suite
