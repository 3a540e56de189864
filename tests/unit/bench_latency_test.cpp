// Cleanup-latency arithmetic of `reclaim bench`: intervals read off a
// timeline, nearest-rank percentiles, the summary table.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bench/latency.hpp"

namespace reclaim::bench {
namespace {

using ::testing::HasSubstr;

constexpr std::int64_t kMs = 1'000'000;

Timeline fault_timeline() {
  Timeline t;
  t.started_ns = 100 * kMs;
  t.fault_injected_ns = 200 * kMs;
  t.on_exception_ns = 201 * kMs;
  t.rank_exited_ns = 205 * kMs;
  t.last_process_gone_ns = 207 * kMs;
  t.last_temp_file_gone_ns = 206 * kMs;
  t.all_reclaimed_ns = 207 * kMs;
  return t;
}

TEST(BenchLatencyTest, IntervalsRunFromTheFault) {
  const Timeline t = fault_timeline();
  EXPECT_DOUBLE_EQ(*latency_ms(t, Metric::on_exception), 1.0);
  EXPECT_DOUBLE_EQ(*latency_ms(t, Metric::rank_exit), 5.0);
  EXPECT_DOUBLE_EQ(*latency_ms(t, Metric::last_process_gone), 7.0);
  EXPECT_DOUBLE_EQ(*latency_ms(t, Metric::last_temp_file_gone), 6.0);
  EXPECT_DOUBLE_EQ(*latency_ms(t, Metric::all_reclaimed), 7.0);
}

TEST(BenchLatencyTest, MissingEventsHaveNoValue) {
  Timeline t = fault_timeline();
  t.on_exception_ns = 0;         // SIGKILL: the rank never ran on_exception
  t.last_temp_file_gone_ns = 0;  // nothing was ever created
  EXPECT_FALSE(latency_ms(t, Metric::on_exception));
  EXPECT_FALSE(latency_ms(t, Metric::last_temp_file_gone));
  EXPECT_TRUE(latency_ms(t, Metric::all_reclaimed));
  t.all_reclaimed_ns = 0;  // grace expired
  EXPECT_FALSE(latency_ms(t, Metric::all_reclaimed));
}

TEST(BenchLatencyTest, AnEventBeforeTheFaultIsNotALatency) {
  Timeline t = fault_timeline();
  t.rank_exited_ns = t.fault_injected_ns - 1;
  EXPECT_FALSE(latency_ms(t, Metric::rank_exit));
}

TEST(BenchLatencyTest, SuccessPathMeasuresFromRankExit) {
  Timeline t = fault_timeline();
  t.fault_injected_ns = 0;
  EXPECT_FALSE(latency_ms(t, Metric::on_exception));
  EXPECT_DOUBLE_EQ(*latency_ms(t, Metric::rank_exit), 0.0);
  EXPECT_DOUBLE_EQ(*latency_ms(t, Metric::all_reclaimed), 2.0);
}

TEST(BenchLatencyTest, NearestRankPercentiles) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  EXPECT_DOUBLE_EQ(percentile(v, 50), 50);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 90);
  EXPECT_DOUBLE_EQ(percentile(v, 99), 99);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 100);
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 50), 2);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
  // Ten samples: p90 is the 9th, p99 the 10th (the max).
  std::vector<double> ten{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  auto p = percentiles(ten);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->n, 10u);
  EXPECT_DOUBLE_EQ(p->p50, 5);
  EXPECT_DOUBLE_EQ(p->p90, 9);
  EXPECT_DOUBLE_EQ(p->p99, 10);
  EXPECT_DOUBLE_EQ(p->max, 10);
  EXPECT_FALSE(percentiles({}));
}

TEST(BenchLatencyTest, MedianAveragesTheMiddlePair) {
  EXPECT_DOUBLE_EQ(median({4, 1, 3}), 3);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median({}), 0);
}

TEST(BenchLatencyTest, SamplesCollectEveryMetricThatHappened) {
  LatencySamples s;
  EXPECT_TRUE(s.empty());
  Timeline t = fault_timeline();
  s.add(t);
  t.on_exception_ns = 0;
  s.add(t);
  EXPECT_EQ(s.of(Metric::all_reclaimed).size(), 2u);
  EXPECT_EQ(s.of(Metric::on_exception).size(), 1u);
  LatencySamples more;
  more.append(s);
  more.append(s);
  EXPECT_EQ(more.of(Metric::rank_exit).size(), 4u);
}

TEST(BenchLatencyTest, SummaryHasARowPerMetricAndErrors) {
  LatencySamples s;
  Timeline t = fault_timeline();
  t.on_exception_ns = 0;
  s.add(t);
  const std::string table =
      format_summary({{"fit/setup/sigkill", s, ""}, {"fit/setup/exception", {}, "verdict leak: 1 leak(s)"}});
  EXPECT_THAT(table, HasSubstr("fit/setup/sigkill"));
  for (Metric m : kAllMetrics) EXPECT_THAT(table, HasSubstr(std::string(to_string(m))));
  EXPECT_THAT(table, HasSubstr("7.000"));  // all reclaimed
  EXPECT_THAT(table, HasSubstr("fit/setup/exception  ERROR: verdict leak"));
  // on_exception has no sample: dashes, n = 0.
  EXPECT_THAT(table, ::testing::ContainsRegex("on_exception +0 +- +- +- +-"));
}

}  // namespace
}  // namespace reclaim::bench
