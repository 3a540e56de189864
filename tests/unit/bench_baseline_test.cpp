// The regression guard of `reclaim bench --baseline`: reading Google
// Benchmark JSON and flagging regressed scenarios, on crafted documents.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <unistd.h>

#include "bench/baseline.hpp"

namespace reclaim::bench {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// One repetition of a scenario's benchmark, as Google Benchmark 1.7 writes it.
json repetition(const std::string& scenario, int index, double p50, bool error = false) {
  const std::string name = scenario + "/iterations:10/repeats:3/manual_time";
  json run = {{"name", name},
              {"family_index", 0},
              {"per_family_instance_index", 0},
              {"run_name", name},
              {"run_type", "iteration"},
              {"repetitions", 3},
              {"repetition_index", index},
              {"threads", 1},
              {"iterations", 10},
              {"real_time", p50},
              {"cpu_time", 0.01},
              {"time_unit", "ms"}};
  if (error) {
    run["error_occurred"] = true;
    run["error_message"] = "verdict leak";
  } else {
    run[std::string(kP50Counter)] = p50;
    run["all_reclaimed_p90_ms"] = p50 * 2;
  }
  return run;
}

json aggregate(const std::string& scenario, const std::string& which, double p50) {
  const std::string run_name = scenario + "/iterations:10/repeats:3/manual_time";
  return {{"name", run_name + "_" + which}, {"run_name", run_name}, {"run_type", "aggregate"},
          {"aggregate_name", which},        {"iterations", 3},      {std::string(kP50Counter), p50}};
}

json document(std::vector<json> runs) {
  return {{"context", {{"date", "2026-12-04"}, {"num_cpus", 2}}}, {"benchmarks", runs}};
}

TEST(BenchBaselineTest, ScenarioIdFromRunName) {
  EXPECT_EQ(scenario_of_run_name("fit/train_batch#1/sigkill/iterations:10/repeats:3/manual_time"),
            "fit/train_batch#1/sigkill");
  EXPECT_EQ(scenario_of_run_name("fit/none/iterations:10/manual_time"), "fit/none");
  EXPECT_EQ(scenario_of_run_name("fit/setup/exception/ws4/r3/manual_time"), "fit/setup/exception/ws4/r3");
  EXPECT_EQ(scenario_of_run_name("fit/none"), "fit/none");
}

TEST(BenchBaselineTest, P50IsTheMedianOverRepetitions) {
  auto doc = document({repetition("fit/none", 0, 1.0), repetition("fit/none", 1, 9.0), repetition("fit/none", 2, 2.0),
                       aggregate("fit/none", "mean", 4.0), aggregate("fit/none", "median", 2.0),
                       repetition("fit/setup/sigkill", 0, 0.5)});
  auto p50 = p50_by_scenario(doc);
  ASSERT_EQ(p50.size(), 2u);
  EXPECT_DOUBLE_EQ(p50["fit/none"], 2.0);
  EXPECT_DOUBLE_EQ(p50["fit/setup/sigkill"], 0.5);
}

TEST(BenchBaselineTest, AggregatesOnlyFileUsesTheMedianAggregate) {
  auto doc = document({aggregate("fit/none", "mean", 4.0), aggregate("fit/none", "median", 3.0),
                       aggregate("fit/none", "stddev", 1.0)});
  auto p50 = p50_by_scenario(doc);
  ASSERT_EQ(p50.count("fit/none"), 1u);
  EXPECT_DOUBLE_EQ(p50["fit/none"], 3.0);
}

TEST(BenchBaselineTest, FailedRunsAreSkipped) {
  auto doc = document({repetition("fit/setup/exception", 0, 0, /*error=*/true), repetition("fit/none", 0, 1.5)});
  auto p50 = p50_by_scenario(doc);
  EXPECT_EQ(p50.count("fit/setup/exception"), 0u);
  EXPECT_DOUBLE_EQ(p50["fit/none"], 1.5);
}

TEST(BenchBaselineTest, NotGoogleBenchmarkJsonIsAConfigurationError) {
  EXPECT_THROW(p50_by_scenario(json::array()), BaselineError);
  EXPECT_THROW(p50_by_scenario(json{{"scenarios", json::array()}}), BaselineError);  // a `run --json` report
  EXPECT_THROW(load_baseline("/nonexistent/baseline.json"), BaselineError);
  char path[] = "/tmp/reclaim-baseline-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "{ not json";
  EXPECT_THROW(load_baseline(path), BaselineError);
  std::ofstream(path) << document({repetition("fit/none", 0, 1.25)}).dump();
  EXPECT_DOUBLE_EQ(load_baseline(path).at("fit/none"), 1.25);
  std::remove(path);
}

TEST(BenchBaselineTest, UnchangedRunPasses) {
  const std::map<std::string, double> before{{"fit/none", 1.2}, {"fit/setup/sigkill", 0.6}};
  auto report = compare(before, before, {});
  EXPECT_FALSE(report.any_regressed());
  EXPECT_EQ(report.rows.size(), 2u);
  EXPECT_TRUE(report.only_in_baseline.empty());
  EXPECT_TRUE(report.only_in_current.empty());
}

TEST(BenchBaselineTest, SyntheticRegressionIsFlagged) {
  const std::map<std::string, double> before{{"fit/none", 10.0}, {"fit/setup/sigkill", 0.6}};
  const std::map<std::string, double> after{{"fit/none", 12.5}, {"fit/setup/sigkill", 0.6}};
  auto report = compare(before, after, {0.20, 1.0});
  EXPECT_TRUE(report.any_regressed());
  ASSERT_EQ(report.rows.size(), 2u);
  EXPECT_TRUE(report.rows[0].regressed);  // +25 % and +2.5 ms
  EXPECT_NEAR(report.rows[0].change(), 0.25, 1e-9);
  EXPECT_FALSE(report.rows[1].regressed);
  const std::string text = format_comparison(report, {0.20, 1.0});
  EXPECT_THAT(text, HasSubstr("fit/none"));
  EXPECT_THAT(text, HasSubstr("REGRESSED"));
  EXPECT_THAT(text, HasSubstr("1 of 2 scenario(s) regressed"));
}

TEST(BenchBaselineTest, BothThresholdAndFloorMustBeExceeded) {
  const RegressionPolicy policy{0.20, 1.0};
  // Tripled, but by 0.6 ms only: noise on a sub-ms latency.
  EXPECT_FALSE(compare({{"a", 0.3}}, {{"a", 0.9}}, policy).any_regressed());
  // +1.5 ms, but only 10 % of a long latency.
  EXPECT_FALSE(compare({{"a", 15.0}}, {{"a", 16.5}}, policy).any_regressed());
  // Exactly at the threshold is not above it.
  EXPECT_FALSE(compare({{"a", 10.0}}, {{"a", 12.0}}, policy).any_regressed());
  EXPECT_TRUE(compare({{"a", 10.0}}, {{"a", 12.01}}, policy).any_regressed());
  // Faster is never a regression.
  EXPECT_FALSE(compare({{"a", 10.0}}, {{"a", 1.0}}, policy).any_regressed());
}

TEST(BenchBaselineTest, ScenariosOnOneSideOnlyAreListedNotFlagged) {
  auto report = compare({{"old", 1.0}, {"both", 1.0}}, {{"new", 50.0}, {"both", 1.0}}, {});
  EXPECT_FALSE(report.any_regressed());
  EXPECT_THAT(report.only_in_baseline, ElementsAre("old"));
  EXPECT_THAT(report.only_in_current, ElementsAre("new"));
  EXPECT_THAT(format_comparison(report, {}), ::testing::ContainsRegex("new +not in the baseline"));
}

TEST(BenchBaselineTest, RoundTripThroughTheDocument) {
  // The file a previous run wrote, compared with a run 30 % slower on one scenario.
  auto doc = document({repetition("fit/none", 0, 4.0), repetition("fit/none", 1, 4.2), repetition("fit/none", 2, 3.9),
                       repetition("test/test_batch#1/pg-sigterm", 0, 2.0)});
  auto baseline = p50_by_scenario(doc);
  auto same = compare(baseline, baseline, {});
  EXPECT_FALSE(same.any_regressed());
  auto slower = baseline;
  slower["fit/none"] *= 1.3;
  slower["fit/none"] += 1.0;
  EXPECT_TRUE(compare(baseline, slower, {}).any_regressed());
}

}  // namespace
}  // namespace reclaim::bench
