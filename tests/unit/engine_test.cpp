#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>

#include "engine/engine.hpp"

namespace reclaim::engine {
namespace {

std::vector<Scenario> scenarios(int n) {
  std::vector<Scenario> out;
  for (int i = 0; i < n; ++i) {
    Scenario s;
    s.entry = Entry::fit;
    s.fault = *parse_fault("exception");
    s.point = Point{Hook::train_batch, i + 1};
    out.push_back(s);
  }
  return out;
}

class Recorder : public report::Reporter {
 public:
  void scenario_started(const Scenario&) override { ++started; }
  void scenario_finished(const ScenarioResult& r) override { finished.push_back(r); }
  int started = 0;
  std::vector<ScenarioResult> finished;
};

supervisor::RunOutcome outcome(const Scenario& s, Verdict v) {
  supervisor::RunOutcome o;
  o.result.scenario = s;
  o.result.verdict = v;
  return o;
}

TEST(EngineTest, RunsEveryScenarioOnceAndCountsVerdicts) {
  std::mutex mu;
  std::multiset<std::uint64_t> seqs;
  EngineOptions o;
  o.jobs = 3;
  o.repro = [](const Scenario& s) { return "repro " + s.id(); };
  o.runner = [&](const Scenario& s, std::uint64_t seq, const supervisor::SupervisorConfig&) {
    std::lock_guard lock(mu);
    seqs.insert(seq);
    return outcome(s, s.point->occurrence % 3 == 0 ? Verdict::leak : Verdict::pass);
  };
  Recorder rec;
  auto summary = run_all(scenarios(10), o, rec);
  EXPECT_EQ(summary.total, 10u);
  EXPECT_EQ(summary.passed, 7u);
  EXPECT_EQ(summary.failed, 3u);
  EXPECT_EQ(summary.by_verdict[Verdict::leak], 3u);
  EXPECT_EQ(summary.not_run, 0u);
  EXPECT_FALSE(summary.interrupted);
  EXPECT_EQ(rec.started, 10);
  ASSERT_EQ(rec.finished.size(), 10u);
  EXPECT_EQ(rec.finished[0].repro.rfind("repro fit/train_batch#", 0), 0u);
  EXPECT_EQ(seqs, (std::multiset<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));  // unique sandbox names
}

TEST(EngineTest, RunsJobsScenariosAtOnceAndNoMore) {
  std::mutex mu;
  std::condition_variable cv;
  int running = 0, peak = 0;
  EngineOptions o;
  o.jobs = 2;
  // Each scenario waits (with a deadline) until another one is in flight, so
  // a serial engine shows a peak of 1 and an unbounded one a peak above 2.
  o.runner = [&](const Scenario& s, std::uint64_t, const supervisor::SupervisorConfig&) {
    std::unique_lock lock(mu);
    peak = std::max(peak, ++running);
    cv.notify_all();
    cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return running >= 2; });
    --running;
    return outcome(s, Verdict::pass);
  };
  Recorder rec;
  run_all(scenarios(20), o, rec);
  EXPECT_EQ(peak, 2);
}

TEST(EngineTest, InterruptionStopsLaunchingAndDropsTheUnfinished) {
  int abort_fd = ::eventfd(0, EFD_CLOEXEC);
  EngineOptions o;
  o.jobs = 1;
  o.supervisor.abort_fd = abort_fd;
  int calls = 0;
  o.runner = [&](const Scenario& s, std::uint64_t, const supervisor::SupervisorConfig&) {
    if (++calls == 3) {
      // The third scenario is running when the signal lands: it reports itself interrupted.
      std::uint64_t one = 1;
      EXPECT_EQ(::write(abort_fd, &one, sizeof one), 8);
      supervisor::RunOutcome r = outcome(s, Verdict::error);
      r.interrupted = true;
      return r;
    }
    return outcome(s, Verdict::pass);
  };
  Recorder rec;
  auto summary = run_all(scenarios(10), o, rec);
  ::close(abort_fd);
  EXPECT_TRUE(summary.interrupted);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(rec.finished.size(), 2u);
  EXPECT_EQ(summary.passed, 2u);
  EXPECT_EQ(summary.not_run, 8u);
}

}  // namespace
}  // namespace reclaim::engine
