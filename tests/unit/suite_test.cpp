#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/model.hpp"
#include "suite/duration.hpp"
#include "suite/suite.hpp"

namespace reclaim::suite {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

std::string data_file(const std::string& name) { return std::string(RECLAIM_TEST_DATA) + "/suites/" + name; }
std::string shipped(const std::string& name) { return std::string(RECLAIM_SOURCE_DIR) + "/scenarios/" + name; }

const Placeholders kPlaces{"/opt/reclaim/bin", "/srv/suites"};

// The nine faults of the standard matrix, in its order.
const std::vector<std::string> kStandardFaults = {"exception", "sigint",     "sigterm",
                                                  "sigkill",   "sigsegv",    "sigabrt",
                                                  "pg-sigint", "pg-sigterm", "worker-sigkill"};

std::vector<std::string> ids(const Suite& s) {
  std::vector<std::string> out;
  for (const auto& sc : s.scenarios) out.push_back(sc.id());
  return out;
}

Suite parse(const std::string& text) { return parse_suite(text, "mem/inline.toml", kPlaces); }

// What the standard matrix must produce for one entry, derived from the model
// rather than written down: the normal run, then every (point, fault) pair the
// model allows, batch hooks at occurrences 1 and 2.
std::size_t expected_standard_count(Entry e) {
  std::size_t n = 1;
  for (Hook h : hooks_of(e)) {
    std::size_t faults = 0;
    for (const auto& name : kStandardFaults)
      if (fault_valid_at(*parse_fault(name), h)) ++faults;
    n += faults * (is_batch(h) ? 2 : 1);
  }
  return n;
}

// ---- the shipped suites ---------------------------------------------------------

TEST(StandardSuite, ExpandsEveryEntryPointAndFault) {
  Suite s = load_suite(shipped("standard.toml"), kPlaces);
  EXPECT_EQ(s.name, "standard");
  EXPECT_EQ(s.description, "every entry x point x fault, one rank");
  EXPECT_THAT(s.target.argv, ElementsAre("/opt/reclaim/bin/fixtures/worker_pool"));
  EXPECT_EQ(s.expect.grace, milliseconds(1000));
  EXPECT_EQ(s.expect.timeout, milliseconds(10000));
  EXPECT_EQ(s.expect.kill_after, milliseconds(1000));
  EXPECT_EQ(s.expect.contract, Contract::lightning);

  std::size_t total = 0;
  for (Entry e : kAllEntries) {
    auto n = std::count_if(s.scenarios.begin(), s.scenarios.end(), [&](const Scenario& sc) { return sc.entry == e; });
    EXPECT_EQ(static_cast<std::size_t>(n), expected_standard_count(e)) << to_string(e);
    total += expected_standard_count(e);
  }
  EXPECT_EQ(s.scenarios.size(), total);
  // Pinned once, so a change to the model's hook lists is noticed here too.
  EXPECT_EQ(s.scenarios.size(), 238u);
}

TEST(StandardSuite, FollowsLightningOrderWithinEachEntry) {
  Suite s = load_suite(shipped("standard.toml"), kPlaces);
  auto all = ids(s);
  ASSERT_GE(all.size(), 11u);
  EXPECT_EQ(all[0], "fit/none");
  // Then prepare_data with each fault in the listed order; the worker fault
  // (last) cannot land there.
  ASSERT_EQ(kStandardFaults.back(), "worker-sigkill");
  for (std::size_t i = 0; i + 1 < kStandardFaults.size(); ++i)
    EXPECT_EQ(all[1 + i], "fit/prepare_data/" + kStandardFaults[i]);
  EXPECT_EQ(all[kStandardFaults.size()], "fit/setup/exception");

  // The distinct points of fit, in the order they first appear.
  std::vector<std::string> points;
  for (const auto& sc : s.scenarios) {
    if (sc.entry != Entry::fit || !sc.point) continue;
    std::string p = to_string(*sc.point);
    if (std::find(points.begin(), points.end(), p) == points.end()) points.push_back(p);
  }
  EXPECT_THAT(points, ElementsAre("prepare_data", "setup", "val_dataloader", "train_dataloader", "train_batch#1",
                                  "train_batch#2", "val_batch#1", "val_batch#2", "state_dict", "teardown"));

  // Entries come in blocks, in the listed order, each opened by its normal run.
  std::vector<Entry> blocks;
  for (const auto& sc : s.scenarios) {
    if (blocks.empty() || blocks.back() != sc.entry) {
      blocks.push_back(sc.entry);
      EXPECT_FALSE(sc.point) << sc.id();
    }
  }
  EXPECT_THAT(blocks, ElementsAre(Entry::fit, Entry::validate, Entry::test, Entry::predict));
}

TEST(StandardSuite, SkipsCombinationsTheModelForbids) {
  Suite s = load_suite(shipped("standard.toml"), kPlaces);
  std::set<std::string> unique;
  for (const auto& sc : s.scenarios) {
    EXPECT_TRUE(unique.insert(sc.id()).second) << "duplicate " << sc.id();
    EXPECT_EQ(sc.world_size, 1);
    EXPECT_EQ(sc.target.argv, s.target.argv);
    EXPECT_EQ(sc.expect.timeout, s.expect.timeout);
    if (!sc.point) {
      EXPECT_EQ(sc.fault.kind, FaultKind::none);
      continue;
    }
    EXPECT_TRUE(hook_valid_for(sc.entry, sc.point->hook)) << sc.id();
    EXPECT_TRUE(fault_valid_at(sc.fault, sc.point->hook)) << sc.id();
    EXPECT_NE(sc.point->hook, Hook::on_exception);
  }
  EXPECT_TRUE(unique.count("fit/train_batch#2/worker-sigkill"));
  EXPECT_FALSE(unique.count("fit/setup/worker-sigkill"));
  EXPECT_FALSE(unique.count("fit/test_batch#1/sigterm"));
  EXPECT_TRUE(unique.count("predict/predict_batch#1/pg-sigterm"));
}

TEST(SmokeSuite, CoversEveryStandardFaultInAFewScenarios) {
  Suite s = load_suite(shipped("smoke.toml"), kPlaces);
  EXPECT_EQ(s.name, "smoke");
  EXPECT_GE(s.scenarios.size(), 8u);
  EXPECT_LE(s.scenarios.size(), 16u);
  std::set<std::string> faults;
  for (const auto& sc : s.scenarios) faults.insert(to_string(sc.fault));
  for (const auto& f : kStandardFaults) EXPECT_TRUE(faults.count(f)) << f;
  auto all = ids(s);
  for (const char* id : {"fit/none", "test/none", "fit/setup/exception", "fit/train_batch#1/sigterm",
                         "fit/train_batch#1/sigkill", "fit/train_batch#1/worker-sigkill", "fit/teardown/exception"})
    EXPECT_NE(std::find(all.begin(), all.end(), id), all.end()) << id;
  EXPECT_THAT(s.target.argv, ElementsAre("/opt/reclaim/bin/fixtures/worker_pool"));
}

// ---- expansion ------------------------------------------------------------------

TEST(Expansion, NamedPointsRunInLightningOrderWithAscendingBatches) {
  Suite s = parse(R"(
[[matrix]]
entries = ["fit"]
points = ["teardown", "train_batch#2", "setup", "train_batch"]
batches = [3, 1]
faults = ["sigkill", "exception"]
normal = false
)");
  EXPECT_THAT(ids(s), ElementsAre("fit/setup/sigkill", "fit/setup/exception", "fit/train_batch#1/sigkill",
                                  "fit/train_batch#1/exception", "fit/train_batch#2/sigkill",
                                  "fit/train_batch#2/exception", "fit/train_batch#3/sigkill",
                                  "fit/train_batch#3/exception", "fit/teardown/sigkill", "fit/teardown/exception"));
}

TEST(Expansion, EntriesInListedOrderEachOpenedByItsNormalRun) {
  Suite s = parse(R"(
[[matrix]]
entries = ["test", "fit"]
points = ["setup"]
faults = ["sigterm"]
)");
  EXPECT_THAT(ids(s), ElementsAre("test/none", "test/setup/sigterm", "fit/none", "fit/setup/sigterm"));
}

TEST(Expansion, DefaultsToAllEntriesEveryPointAndFirstBatch) {
  Suite s = parse(R"(
[[matrix]]
faults = ["exception"]
)");
  std::size_t expected = 0;
  for (Entry e : kAllEntries) expected += 1 + hooks_of(e).size();
  EXPECT_EQ(s.scenarios.size(), expected);
  auto all = ids(s);
  EXPECT_NE(std::find(all.begin(), all.end(), "validate/val_batch#1/exception"), all.end());
  EXPECT_EQ(std::find(all.begin(), all.end(), "validate/val_batch#2/exception"), all.end());
}

TEST(Expansion, PointsAnEntryDoesNotReachAreSkippedForThatEntry) {
  Suite s = parse(R"(
[[matrix]]
entries = ["fit", "test"]
points = ["val_batch", "test_dataloader"]
faults = ["worker-sigkill", "sigterm"]
normal = false
)");
  // worker-sigkill cannot land at test_dataloader; fit has no test_dataloader,
  // test has no val_batch.
  EXPECT_THAT(ids(s), ElementsAre("fit/val_batch#1/worker-sigkill", "fit/val_batch#1/sigterm",
                                  "test/test_dataloader/sigterm"));
}

TEST(Expansion, NormalOnlyMatrixAndNoNormalRun) {
  Suite s = parse(R"(
[[matrix]]
entries = ["predict", "validate"]
faults = []

[[matrix]]
entries = ["fit"]
points = ["state_dict"]
faults = ["sigabrt"]
normal = false
)");
  EXPECT_THAT(ids(s), ElementsAre("predict/none", "validate/none", "fit/state_dict/sigabrt"));
}

TEST(Expansion, DuplicateIdsKeepTheFirstOccurrence) {
  Suite s = parse(R"(
[[matrix]]
entries = ["fit"]
points = ["setup"]
faults = ["sigterm"]
grace = "5s"

[[matrix]]
entries = ["fit"]
points = ["setup", "teardown"]
faults = ["sigterm", "sigterm"]
grace = "2s"
)");
  ASSERT_THAT(ids(s), ElementsAre("fit/none", "fit/setup/sigterm", "fit/teardown/sigterm"));
  EXPECT_EQ(s.scenarios[0].expect.grace, milliseconds(5000));
  EXPECT_EQ(s.scenarios[1].expect.grace, milliseconds(5000));
  EXPECT_EQ(s.scenarios[2].expect.grace, milliseconds(2000));
}

TEST(Expansion, MatrixKeysOverrideSuiteExpectations) {
  Suite s = parse(R"(
[expect]
grace = "2s"
timeout = 2500
contract = "lightning"

[[matrix]]
entries = ["fit"]
faults = []
grace = "500ms"
kill_after = "1.5s"
contract = "none"

[[matrix]]
entries = ["test"]
faults = []
)");
  ASSERT_EQ(s.scenarios.size(), 2u);
  const Expectations& a = s.scenarios[0].expect;
  EXPECT_EQ(a.grace, milliseconds(500));
  EXPECT_EQ(a.timeout, milliseconds(2500));
  EXPECT_EQ(a.kill_after, milliseconds(1500));
  EXPECT_EQ(a.contract, Contract::none);
  const Expectations& b = s.scenarios[1].expect;
  EXPECT_EQ(b.grace, milliseconds(2000));
  EXPECT_EQ(b.kill_after, Expectations{}.kill_after);
  EXPECT_EQ(b.contract, Contract::lightning);
  EXPECT_EQ(s.expect.grace, milliseconds(2000));
}

TEST(Expansion, OmittedTablesTakeDocumentedDefaults) {
  Suite s = parse_suite("[[matrix]]\nentries = [\"fit\"]\nfaults = []\n", "some/dir/my_suite.toml", {});
  EXPECT_EQ(s.name, "my_suite");
  EXPECT_EQ(s.description, "");
  EXPECT_EQ(s.path, "some/dir/my_suite.toml");
  EXPECT_TRUE(s.target.argv.empty());  // the CLI must supply `-- CMD`
  EXPECT_EQ(s.expect.grace, Expectations{}.grace);
  EXPECT_EQ(s.expect.timeout, Expectations{}.timeout);
  EXPECT_EQ(s.expect.contract, Contract::lightning);
  ASSERT_EQ(s.scenarios.size(), 1u);
  EXPECT_TRUE(s.scenarios[0].target.argv.empty());
}

TEST(Expansion, WorldSizesAndFailingRanksAreAxesWithIdsCarryingThem) {
  Suite s = parse(R"(
[[matrix]]
entries = ["fit"]
points = ["prepare_data", "setup"]
faults = ["crash", "hang"]
world_sizes = [1, 2, 4]
ranks = [0, -1]
)");
  EXPECT_THAT(ids(s), ElementsAre(
      "fit/none", "fit/none/ws2/r0", "fit/none/ws4/r0",
      // prepare_data runs on local rank 0 only; a hang needs a second rank.
      "fit/prepare_data/crash", "fit/prepare_data/crash/ws2/r0", "fit/prepare_data/crash/ws4/r0",
      "fit/prepare_data/hang/ws2/r0", "fit/prepare_data/hang/ws4/r0",
      "fit/setup/crash", "fit/setup/crash/ws2/r0", "fit/setup/crash/ws2/r1", "fit/setup/crash/ws4/r0",
      "fit/setup/crash/ws4/r3", "fit/setup/hang/ws2/r0", "fit/setup/hang/ws2/r1", "fit/setup/hang/ws4/r0",
      "fit/setup/hang/ws4/r3"));
  for (const auto& sc : s.scenarios) EXPECT_LT(sc.rank, sc.world_size) << sc.id();
}

TEST(Expansion, LauncherAndCollectiveSettingsComeFromExpectAndMatrix) {
  Suite s = parse(R"(
[expect]
launcher = "lightning-ddp"
shutdown_timeout = "250ms"
[[matrix]]
faults = ["exit"]
points = ["setup"]
entries = ["fit"]
normal = false
world_sizes = [2]
collective_timeout = "1s"
[[matrix]]
faults = ["exception"]
points = ["setup"]
entries = ["fit"]
normal = false
world_sizes = [2]
launcher = "none"
)");
  ASSERT_EQ(s.scenarios.size(), 2u);
  EXPECT_EQ(s.scenarios[0].expect.launcher, Launcher::lightning_ddp);
  EXPECT_EQ(s.scenarios[0].expect.shutdown_timeout, milliseconds(250));
  EXPECT_EQ(s.scenarios[0].expect.collective_timeout, milliseconds(1000));
  EXPECT_EQ(s.scenarios[1].expect.launcher, Launcher::none);
  EXPECT_EQ(s.scenarios[1].expect.collective_timeout, milliseconds(2000));
}

TEST(RanksSuite, EveryPointTimesEveryRankFaultOnFirstAndLastRank) {
  Suite s = load_suite(shipped("ranks.toml"), kPlaces);
  const std::vector<std::string> faults{"crash", "exit", "exception", "hang"};
  std::size_t expected = 0;
  for (Entry e : kAllEntries)
    for (Hook h : hooks_of(e))
      for (int ws : {2, 4}) {
        (void)ws;
        std::size_t ranks = h == Hook::prepare_data ? 1 : 2;  // local rank 0 only
        expected += ranks * faults.size();                     // batch hooks at occurrence 1
      }
  std::size_t normal = 0, faulted = 0;
  for (const auto& sc : s.scenarios) {
    EXPECT_TRUE(sc.world_size == 2 || sc.world_size == 4) << sc.id();
    EXPECT_EQ(sc.expect.launcher, Launcher::torchrun) << sc.id();
    if (sc.fault.is_failure()) {
      ++faulted;
      EXPECT_TRUE(sc.rank == 0 || sc.rank == sc.world_size - 1) << sc.id();
    } else {
      ++normal;
    }
  }
  EXPECT_EQ(faulted, expected);
  EXPECT_EQ(normal, 2u * 4u);  // each entry's normal run at both world sizes
}

TEST(Placeholders, AreSubstitutedInEveryArgument) {
  Suite s = parse(R"(
[target]
command = ["{bindir}/driver", "--data={suitedir}/data", "{suitedir}{bindir}", "{other}"]

[[matrix]]
entries = ["fit"]
faults = []
)");
  EXPECT_THAT(s.target.argv, ElementsAre("/opt/reclaim/bin/driver", "--data=/srv/suites/data",
                                         "/srv/suites/opt/reclaim/bin", "{other}"));
  EXPECT_EQ(s.scenarios.at(0).target.argv, s.target.argv);
}

TEST(Placeholders, SuitedirDefaultsToTheSuiteFilesDirectory) {
  Suite s = load_suite(data_file("placeholder.toml"), {"/b", ""});
  auto dir = std::filesystem::absolute(data_file("placeholder.toml")).parent_path().string();
  EXPECT_THAT(s.target.argv, ElementsAre("/b/fixtures/worker_pool", "--data", dir + "/data"));
}

TEST(Placeholders, SetTargetReplacesEveryScenariosTarget) {
  Suite s = load_suite(shipped("smoke.toml"), kPlaces);
  set_target(s, Target{{"python3", "train.py"}});
  EXPECT_THAT(s.target.argv, ElementsAre("python3", "train.py"));
  for (const auto& sc : s.scenarios) EXPECT_THAT(sc.target.argv, ElementsAre("python3", "train.py"));
}

// ---- durations ------------------------------------------------------------------

TEST(Duration, ParsesMillisecondsAndSeconds) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("0ms"), milliseconds(0));
  EXPECT_EQ(parse_duration("2s"), milliseconds(2000));
  EXPECT_EQ(parse_duration("1.5s"), milliseconds(1500));
  EXPECT_EQ(parse_duration("0.25s"), milliseconds(250));
  EXPECT_EQ(parse_duration("0.001s"), milliseconds(1));
}

TEST(Duration, RejectsAnythingElse) {
  for (const char* bad : {"", "s", "ms", "2", "1 s", " 1s", "1.s", ".5s", "-1s", "+1s", "1.5ms", "1.0005s", "1e3ms",
                          "2m", "2h", "1sec", "10000000000s", "1,5s"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(Duration, FormatsTheShortestForm) {
  EXPECT_EQ(format_duration(milliseconds(1000)), "1s");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(format_duration(milliseconds(1250)), "1.25s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(0)), "0ms");
  for (int ms : {1, 999, 1001, 61000, 123456})
    EXPECT_EQ(parse_duration(format_duration(milliseconds(ms))), milliseconds(ms)) << ms;
}

// ---- errors -----------------------------------------------------------------------

struct ErrorCase {
  const char* file;
  int line;
  int column;
  const char* message;
};

class SuiteErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(SuiteErrorTest, ReportsFileLineColumnAndExactMessage) {
  const ErrorCase& c = GetParam();
  const std::string path = data_file(c.file);
  try {
    load_suite(path, kPlaces);
    FAIL() << "expected a SuiteError for " << c.file;
  } catch (const SuiteError& e) {
    EXPECT_EQ(e.file, path);
    EXPECT_EQ(e.line, c.line);
    EXPECT_EQ(e.column, c.column);
    EXPECT_EQ(e.message, c.message);
    std::string where = c.line > 0 ? path + ":" + std::to_string(c.line) + ":" + std::to_string(c.column) : path;
    EXPECT_EQ(std::string(e.what()), where + ": " + c.message);
  }
}

const ErrorCase kErrorCases[] = {
    {"toml_syntax.toml", 6, 1, "Error while parsing value: could not determine value type"},
    {"unknown_key.toml", 6, 1, "unknown key 'faluts' in [[matrix]]; did you mean 'faults'?"},
    {"unknown_key_far.toml", 3, 1, "unknown key 'colour' in [expect]"},
    {"unknown_table.toml", 1, 2, "unknown table 'sutie'; did you mean 'suite'?"},
    {"unknown_top_key.toml", 1, 1, "unknown key 'verbose' at the top level"},
    {"unknown_fault.toml", 3, 24, "unknown fault 'sigtrem'; did you mean 'sigterm'?"},
    {"unknown_fault_far.toml", 2, 11, "unknown fault 'explode'"},
    {"none_fault.toml", 2, 11, "'none' is not a fault; the no-fault run of each entry is controlled by 'normal'"},
    {"unknown_entry.toml", 2, 19, "unknown entry 'tset'; did you mean 'test'?"},
    {"unknown_point.toml", 3, 20, "unknown point 'trian_batch#2'; did you mean 'train_batch#2'?"},
    {"on_exception_point.toml", 2, 11,
     "'on_exception' is not a point a matrix may target: it is where the rank reacts to a fault"},
    {"occurrence_on_hook.toml", 2, 11, "point 'setup#1': only batch hooks take an occurrence '#K'"},
    {"bad_occurrence.toml", 2, 11, "point 'train_batch#0': expected 'train_batch#K' with K from 1 to 100000"},
    {"point_not_reached.toml", 3, 11,
     "point 'test_batch#1' is not reached by any entry of this [[matrix]] (fit, validate)"},
    {"fault_lands_nowhere.toml", 4, 22,
     "fault 'worker-sigkill' can land at none of the points of this [[matrix]] (worker faults need a batch point)"},
    {"unknown_contract.toml", 2, 12, "unknown contract 'lightnig'; did you mean 'lightning'?"},
    {"wrong_type.toml", 3, 10, "expected an array of strings for 'faults', got integer"},
    {"wrong_element_type.toml", 3, 22, "expected an array of strings for 'faults', found integer in the array"},
    {"empty_entries.toml", 2, 11, "expected a non-empty array of strings for 'entries'"},
    {"wrong_string.toml", 2, 8, "expected a string for 'name', got integer"},
    {"wrong_bool.toml", 3, 10, "expected a boolean for 'normal', got string"},
    {"wrong_table.toml", 1, 10, "expected a table for 'target', got string"},
    {"matrix_not_array.toml", 1, 1, "expected an array of tables for 'matrix' (write [[matrix]]), got table"},
    {"bad_batches.toml", 3, 15, "expected an array of integers from 1 to 100000 for 'batches', found 0"},
    {"bad_duration.toml", 2, 9, R"(expected a duration like "500ms" or "2s" for 'grace', got "1 sec")"},
    {"duration_wrong_type.toml", 3, 14, R"(expected a duration like "500ms" or "2s" for 'kill_after', got float)"},
    {"zero_timeout.toml", 2, 11, "'timeout' must be greater than 0"},
    {"bad_world_size.toml", 3, 19, "expected an array of integers from 1 to 1024 for 'world_sizes', found 0"},
    {"bad_rank.toml", 4, 13, "expected an integer rank for 'ranks' (0 = first, -1 = last), found string"},
    {"hang_single_rank.toml", 3, 11,
     "fault 'hang' can land at none of the points of this [[matrix]] (a hang needs world_sizes above 1: only a "
     "collective notices it)"},
    {"unknown_launcher.toml", 2, 12, "unknown launcher 'torchrnu'; did you mean 'torchrun'?"},
    {"zero_collective_timeout.toml", 3, 22, "'collective_timeout' must be greater than 0"},
    {"empty_matrix.toml", 1, 1, "this [[matrix]] defines no scenarios: it has no faults and normal = false"},
    {"no_scenarios.toml", 0, 0, "the suite defines no scenarios"},
    {"does_not_exist.toml", 0, 0, "cannot read the suite file: No such file or directory"},
};

INSTANTIATE_TEST_SUITE_P(MalformedSuites, SuiteErrorTest, ::testing::ValuesIn(kErrorCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& param_info) {
                           std::string name = param_info.param.file;
                           name = name.substr(0, name.find('.'));
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(SuiteErrors, EveryMalformedFileHasACase) {
  std::set<std::string> covered;
  for (const auto& c : kErrorCases) covered.insert(c.file);
  for (const auto& f : std::filesystem::directory_iterator(std::string(RECLAIM_TEST_DATA) + "/suites")) {
    std::string name = f.path().filename().string();
    if (name == "placeholder.toml") continue;  // valid; its error needs other placeholders
    EXPECT_TRUE(covered.count(name)) << name << " has no expected message";
  }
}

TEST(SuiteErrors, PlaceholderWithoutAValueIsAnError) {
  const std::string path = data_file("placeholder.toml");
  try {
    load_suite(path, {"", "/s"});
    FAIL() << "expected a SuiteError";
  } catch (const SuiteError& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ":2:12: placeholder '{bindir}' is used in 'command' but has no value here");
  }
}

TEST(SuiteErrors, DirectoryIsNotASuite) {
  const std::string dir = std::string(RECLAIM_TEST_DATA) + "/suites";
  try {
    load_suite(dir, kPlaces);
    FAIL() << "expected a SuiteError";
  } catch (const SuiteError& e) {
    EXPECT_EQ(std::string(e.what()), dir + ": cannot read the suite file: Is a directory");
  }
}

TEST(SuiteErrors, ParseSuiteNamesTheSource) {
  try {
    parse_suite("[[matrix]]\nfaults = [\"sigkil\"]\n", "<inline>", {});
    FAIL() << "expected a SuiteError";
  } catch (const SuiteError& e) {
    EXPECT_EQ(std::string(e.what()), "<inline>:2:11: unknown fault 'sigkil'; did you mean 'sigkill'?");
  }
}

TEST(SuiteErrors, SuggestsTargetedSignalNames) {
  try {
    parse(R"([[matrix]]
faults = ["worker-sigkil"]
)");
    FAIL() << "expected a SuiteError";
  } catch (const SuiteError& e) {
    EXPECT_EQ(e.message, "unknown fault 'worker-sigkil'; did you mean 'worker-sigkill'?");
  }
}

}  // namespace
}  // namespace reclaim::suite
