#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/model.hpp"
#include "suite/filter.hpp"
#include "suite/suite.hpp"

namespace reclaim::suite {
namespace {

using ::testing::ElementsAre;

TEST(WildcardMatch, LiteralsQuestionMarksAndStars) {
  EXPECT_TRUE(wildcard_match("", ""));
  EXPECT_FALSE(wildcard_match("", "a"));
  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_TRUE(wildcard_match("fit/none", "fit/none"));
  EXPECT_FALSE(wildcard_match("fit/none", "fit/none2"));
  EXPECT_FALSE(wildcard_match("fit/none", "fit/non"));
  EXPECT_TRUE(wildcard_match("fit/?one", "fit/none"));
  EXPECT_FALSE(wildcard_match("fit/?none", "fit/none"));
  EXPECT_TRUE(wildcard_match("a*b*c", "aXXbYc"));
  EXPECT_FALSE(wildcard_match("a*b*c", "aXXbYcd"));
  EXPECT_TRUE(wildcard_match("*ab", "aab"));  // needs backtracking past the first 'a'
  EXPECT_TRUE(wildcard_match("**", "x"));
}

TEST(WildcardMatch, StarCrossesSlashesAndHashIsLiteral) {
  EXPECT_TRUE(wildcard_match("fit*sigterm", "fit/train_batch#2/sigterm"));
  EXPECT_TRUE(wildcard_match("*#2/*", "fit/train_batch#2/sigterm"));
  EXPECT_FALSE(wildcard_match("*#2/*", "fit/train_batch#1/sigterm"));
  EXPECT_TRUE(wildcard_match("fit/train_batch#?/*", "fit/train_batch#1/exception"));
  EXPECT_FALSE(wildcard_match("fit/train_batch#?/*", "fit/train_batch#10/exception"));
}

TEST(Filter, EmptyExpressionSelectsEverything) {
  Filter f = Filter::parse("");
  EXPECT_TRUE(f.matches("fit/none"));
  EXPECT_TRUE(f.matches(""));
  EXPECT_THAT(f.positive(), ElementsAre("*"));
  EXPECT_TRUE(f.negative().empty());
}

TEST(Filter, PositivePatternsAreAlternatives) {
  Filter f = Filter::parse("fit/setup/*:test/none");
  EXPECT_TRUE(f.matches("fit/setup/sigterm"));
  EXPECT_TRUE(f.matches("test/none"));
  EXPECT_FALSE(f.matches("fit/none"));
  EXPECT_FALSE(f.matches("test/setup/sigterm"));
}

TEST(Filter, NegativePatternsExclude) {
  Filter only_neg = Filter::parse("-*/sigkill:*/sigsegv");
  EXPECT_THAT(only_neg.positive(), ElementsAre("*"));
  EXPECT_TRUE(only_neg.matches("fit/setup/sigterm"));
  EXPECT_FALSE(only_neg.matches("fit/setup/sigkill"));
  EXPECT_FALSE(only_neg.matches("test/test_batch#1/sigsegv"));

  Filter both = Filter::parse("fit/*-*#2*");
  EXPECT_TRUE(both.matches("fit/train_batch#1/sigterm"));
  EXPECT_FALSE(both.matches("fit/train_batch#2/sigterm"));
  EXPECT_FALSE(both.matches("test/test_batch#1/sigterm"));
}

TEST(Filter, DashesInsideFaultNamesAreNotSeparators) {
  Filter pg = Filter::parse("*/pg-sigint");
  EXPECT_THAT(pg.positive(), ElementsAre("*/pg-sigint"));
  EXPECT_TRUE(pg.negative().empty());
  EXPECT_TRUE(pg.matches("fit/setup/pg-sigint"));
  EXPECT_FALSE(pg.matches("fit/setup/sigint"));

  Filter worker = Filter::parse("fit/*/worker-sigkill");
  EXPECT_TRUE(worker.matches("fit/train_batch#1/worker-sigkill"));
  EXPECT_FALSE(worker.matches("fit/train_batch#1/sigkill"));

  Filter no_pg = Filter::parse("fit/*-*/pg-*:*/worker-*");
  EXPECT_THAT(no_pg.positive(), ElementsAre("fit/*"));
  EXPECT_THAT(no_pg.negative(), ElementsAre("*/pg-*", "*/worker-*"));
  EXPECT_TRUE(no_pg.matches("fit/setup/sigint"));
  EXPECT_FALSE(no_pg.matches("fit/setup/pg-sigint"));
  EXPECT_FALSE(no_pg.matches("fit/train_batch#1/worker-sigkill"));
}

TEST(Filter, EmptyPatternsBetweenColonsAreIgnored) {
  Filter f = Filter::parse(":fit/none::-:");
  EXPECT_THAT(f.positive(), ElementsAre("fit/none"));
  EXPECT_TRUE(f.negative().empty());
  EXPECT_TRUE(f.matches("fit/none"));
  EXPECT_FALSE(f.matches("test/none"));
}

TEST(Filter, ParseAllUnitesPositivesAndNegatives) {
  Filter f = Filter::parse_all({"fit/*-*/sigkill", "test/*"});
  EXPECT_TRUE(f.matches("fit/setup/sigterm"));
  EXPECT_TRUE(f.matches("test/none"));
  EXPECT_FALSE(f.matches("fit/setup/sigkill"));
  EXPECT_FALSE(f.matches("test/setup/sigkill"));  // negatives apply to every positive
  EXPECT_FALSE(f.matches("predict/none"));

  EXPECT_TRUE(Filter::parse_all({}).matches("anything/at/all"));
  // A negative-only option keeps "*" as its positive part, so the union
  // selects everything but the negatives.
  Filter g = Filter::parse_all({"fit/*", "-*/sigsegv"});
  EXPECT_TRUE(g.matches("predict/none"));
  EXPECT_FALSE(g.matches("fit/setup/sigsegv"));
}

TEST(Filter, SelectsScenariosOfTheStandardSuiteInOrder) {
  Suite s = load_suite(std::string(RECLAIM_SOURCE_DIR) + "/scenarios/standard.toml", {"/bin", ""});
  auto workers = select(s.scenarios, Filter::parse("*/worker-*"));
  std::size_t batch_points = 0;
  for (Entry e : kAllEntries)
    for (Hook h : hooks_of(e))
      if (is_batch(h)) batch_points += 2;  // batches = [1, 2]
  EXPECT_EQ(workers.size(), batch_points);
  for (const auto& sc : workers) EXPECT_EQ(to_string(sc.fault), "worker-sigkill");

  auto normal = select(s.scenarios, Filter::parse("*/none"));
  std::vector<std::string> ids;
  for (const auto& sc : normal) ids.push_back(sc.id());
  EXPECT_THAT(ids, ElementsAre("fit/none", "validate/none", "test/none", "predict/none"));

  auto nothing = select(s.scenarios, Filter::parse("nope/*"));
  EXPECT_TRUE(nothing.empty());
}

}  // namespace
}  // namespace reclaim::suite
