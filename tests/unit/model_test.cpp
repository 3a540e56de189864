#include <csignal>
#include <gtest/gtest.h>

#include "model/model.hpp"

namespace reclaim {
namespace {

TEST(Point, RoundTripsHooksAndBatches) {
  for (const char* s : {"setup", "prepare_data", "train_batch#2", "val_batch#1", "teardown"}) {
    auto p = parse_point(s);
    ASSERT_TRUE(p) << s;
    EXPECT_EQ(to_string(*p), s);
  }
}

TEST(Point, RejectsBatchWithoutOccurrenceAndHookWithOne) {
  EXPECT_FALSE(parse_point("train_batch"));
  EXPECT_FALSE(parse_point("train_batch#0"));
  EXPECT_FALSE(parse_point("train_batch#x"));
  EXPECT_FALSE(parse_point("setup#1"));
  EXPECT_FALSE(parse_point("nosuchhook"));
}

TEST(Fault, ParsesTargetsAndSignals) {
  auto f = parse_fault("pg-sigterm");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, FaultKind::signal);
  EXPECT_EQ(f->signo, SIGTERM);
  EXPECT_EQ(f->target, SignalTarget::group);
  EXPECT_EQ(to_string(*f), "pg-sigterm");

  f = parse_fault("worker-sigkill");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->target, SignalTarget::worker);
  EXPECT_EQ(to_string(*f), "worker-sigkill");

  EXPECT_EQ(to_string(*parse_fault("exception")), "exception");
  EXPECT_FALSE(parse_fault("sigfoo"));
  EXPECT_FALSE(parse_fault("term"));
}

TEST(Fault, OnlyCatchableSignalsLetTheRankReact) {
  EXPECT_TRUE(parse_fault("sigterm")->rank_can_react());
  EXPECT_TRUE(parse_fault("pg-sigint")->rank_can_react());
  EXPECT_TRUE(parse_fault("exception")->rank_can_react());
  EXPECT_TRUE(parse_fault("worker-sigkill")->rank_can_react());
  EXPECT_FALSE(parse_fault("sigkill")->rank_can_react());
  EXPECT_FALSE(parse_fault("sigsegv")->rank_can_react());
  EXPECT_FALSE(parse_fault("sigabrt")->rank_can_react());
}

TEST(Fault, RankFailuresRoundTripAndLeaveTheRankNoChanceToReact) {
  const std::pair<const char*, FaultKind> failures[] = {{"crash", FaultKind::crash},
                                                         {"exit", FaultKind::exit},
                                                         {"hang", FaultKind::hang},
                                                         {"disconnect", FaultKind::disconnect}};
  for (auto [name, kind] : failures) {
    auto f = parse_fault(name);
    ASSERT_TRUE(f) << name;
    EXPECT_EQ(f->kind, kind) << name;
    EXPECT_EQ(f->target, SignalTarget::rank) << name;
    EXPECT_EQ(to_string(*f), name);
    EXPECT_TRUE(f->is_failure()) << name;
    EXPECT_FALSE(f->rank_can_react()) << name;
    EXPECT_TRUE(is_rank_failure(*f)) << name;
  }
  EXPECT_EQ(parse_fault("crash")->signo, SIGKILL);  // a crash is a SIGKILL to the rank
  EXPECT_FALSE(parse_fault("pg-crash"));
  EXPECT_FALSE(parse_fault("Crash"));
}

TEST(Fault, OnlyCrashExitHangAndDisconnectAreRankFailures) {
  for (const char* name : {"none", "exception", "sigkill", "sigterm", "pg-sigterm", "worker-sigkill"})
    EXPECT_FALSE(is_rank_failure(*parse_fault(name))) << name;
}

TEST(Launcher, RoundTripsEveryNameAndRejectsOthers) {
  const std::pair<Launcher, const char*> launchers[] = {{Launcher::torchrun, "torchrun"},
                                                         {Launcher::lightning_ddp, "lightning-ddp"},
                                                         {Launcher::none, "none"},
                                                         {Launcher::mpirun, "mpirun"}};
  for (auto [launcher, name] : launchers) {
    EXPECT_EQ(to_string(launcher), name);
    EXPECT_EQ(parse_launcher(name), launcher) << name;
  }
  for (const char* bad : {"", "lightning_ddp", "Torchrun", "torchrun ", "slurm", "?"})
    EXPECT_FALSE(parse_launcher(bad)) << bad;
  EXPECT_EQ(Expectations{}.launcher, Launcher::torchrun);
}

TEST(Fault, WorkerFaultsOnlyAtBatches) {
  auto w = *parse_fault("worker-sigkill");
  EXPECT_TRUE(fault_valid_at(w, Hook::train_batch));
  EXPECT_FALSE(fault_valid_at(w, Hook::setup));
  EXPECT_TRUE(fault_valid_at(*parse_fault("sigterm"), Hook::setup));
}

TEST(Entry, HooksFollowLightningOrder) {
  const auto& fit = hooks_of(Entry::fit);
  ASSERT_EQ(fit.size(), 8u);
  EXPECT_EQ(fit.front(), Hook::prepare_data);
  EXPECT_EQ(fit[2], Hook::val_dataloader);  // sanity check runs before training
  EXPECT_EQ(fit[3], Hook::train_dataloader);
  EXPECT_EQ(fit.back(), Hook::teardown);
  EXPECT_FALSE(hook_valid_for(Entry::test, Hook::train_batch));
  EXPECT_TRUE(hook_valid_for(Entry::predict, Hook::predict_dataloader));
}

TEST(Scenario, IdsAreStableAndReadable) {
  Scenario s;
  s.entry = Entry::fit;
  s.point = parse_point("train_batch#2");
  s.fault = *parse_fault("exception");
  EXPECT_EQ(s.id(), "fit/train_batch#2/exception");
  s.world_size = 4;
  s.rank = 3;
  EXPECT_EQ(s.id(), "fit/train_batch#2/exception/ws4/r3");
  Scenario normal;
  normal.entry = Entry::test;
  EXPECT_EQ(normal.id(), "test/none");
}

TEST(Scenario, MultiRankIdsNameWorldSizeAndFailingRank) {
  Scenario s;
  s.entry = Entry::fit;
  s.point = parse_point("setup");
  s.fault = *parse_fault("crash");
  EXPECT_EQ(s.id(), "fit/setup/crash");  // one rank: no suffix
  s.world_size = 4;
  s.rank = 3;
  EXPECT_EQ(s.id(), "fit/setup/crash/ws4/r3");
  s.rank = 0;
  EXPECT_EQ(s.id(), "fit/setup/crash/ws4/r0");
  s.fault = *parse_fault("disconnect");
  s.point = parse_point("train_batch#3");
  s.world_size = 2;
  s.rank = 1;
  EXPECT_EQ(s.id(), "fit/train_batch#3/disconnect/ws2/r1");
}

TEST(ExitStatus, KeepsSignalsAndCodesApart) {
  EXPECT_EQ((ExitStatus{true, 0, 0}).describe(), "exit 0");
  EXPECT_EQ((ExitStatus{true, -1, SIGTERM}).describe(), "killed by SIGTERM");
}

}  // namespace
}  // namespace reclaim
