// End-to-end tests of multi-rank scenarios on real processes: the shipped
// scenarios/ranks.toml against the reference fixture and its documented bug
// variants (with leaks attributed to ranks), each launcher policy, each rank
// fault, the torchrun environment, and a real torch.distributed program
// rendezvousing over loopback TCP under the harness.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <dirent.h>
#include <sys/stat.h>

#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "readme_table.hpp"
#include "reclaim_cli.hpp"
#include "suite/filter.hpp"

namespace reclaim::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kRanks = kSource + "/scenarios/ranks.toml";

// A suite file in `dir` running the C++ fixture with `body` appended.
std::string write_suite(const TempDir& dir, const std::string& body, const std::string& name = "s.toml") {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path) << "[target]\ncommand = [\"" << kWorkerPool << "\"]\n" << body;
  return path;
}

// Runs `suite` with `extra` arguments and returns the JSON report.
json run_json(const std::string& suite, std::vector<std::string> extra, int expect_exit) {
  TempDir dir;
  std::vector<std::string> args{"run", suite, "-j", "2", "--json", dir.path() + "/r.json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_reclaim(args);
  EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err;
  return load_json(dir.path() + "/r.json");
}

const json& rank_of(const json& sc, int k) { return sc.at("ranks").at(static_cast<std::size_t>(k)); }

bool has_hook(const json& rank, const std::string& name) {
  for (const auto& h : rank.at("hooks"))
    if (h == name) return true;
  return false;
}

std::string notes_of(const json& sc) {
  std::string out;
  for (const auto& n : sc.at("notes")) out += n.get<std::string>() + "\n";
  return out;
}

// ---- the shipped suite --------------------------------------------------------

TEST(RanksSuiteTest, WellBehavedFixturePassesEveryScenarioWithEveryRankAccountedFor) {
  json report = run_json(kRanks, {}, 0);
  EXPECT_EQ(report["summary"]["total"], 344);
  EXPECT_EQ(report["summary"]["passed"], 344);
  for (const auto& sc : report["scenarios"]) {
    EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
    const int ws = sc["world_size"];
    ASSERT_EQ(sc["ranks"].size(), static_cast<std::size_t>(ws)) << sc["id"];
    for (int k = 0; k < ws; ++k) {
      EXPECT_EQ(rank_of(sc, k)["rank"], k);
      EXPECT_TRUE(rank_of(sc, k)["timeline_ns"]["exited"].is_number()) << sc["id"] << " rank " << k;
    }
    if (sc["fault"] == "none") {
      for (int k = 0; k < ws; ++k) EXPECT_EQ(rank_of(sc, k)["exit"], "exit 0") << sc["id"];
      continue;
    }
    // The failing rank is the one marked failed, and the world failed after the fault.
    const int r = sc["rank"];
    EXPECT_TRUE(rank_of(sc, r)["failed"].get<bool>()) << sc.dump(2);
    for (int k = 0; k < ws; ++k) {
      if (k == r) continue;
      EXPECT_FALSE(rank_of(sc, k)["failed"].get<bool>()) << sc["id"] << " rank " << k;
    }
    ASSERT_TRUE(sc["world_failed_ns"].is_number()) << sc["id"];
    EXPECT_LE(sc["timeline_ns"]["fault_injected"].get<std::int64_t>(), sc["world_failed_ns"].get<std::int64_t>())
        << sc["id"];
    EXPECT_LE(sc["world_failed_ns"].get<std::int64_t>(), sc["timeline_ns"]["all_reclaimed"].get<std::int64_t>())
        << sc["id"];
    if (sc["fault"] == "hang") {
      EXPECT_THAT(notes_of(sc), HasSubstr("did not reach collective")) << sc["id"];
    }
  }
}

// ---- the documented table of fixtures/README.md ---------------------------------

struct RankRow {
  std::string variant, filter, verdict;
  std::set<std::string> failing, others;
};

std::set<std::string> kinds_cell(const std::string& cell) {
  auto kinds = kinds_in_cell(cell);
  return {kinds.begin(), kinds.end()};
}

std::vector<RankRow> rank_rows() {
  std::vector<RankRow> rows;
  for (const auto& cells : table_rows(kSource + "/fixtures/README.md", "## Expected results: ranks")) {
    if (cells.size() < 5) continue;
    rows.push_back({cells[0], cells[1], cells[2], kinds_cell(cells[3]), kinds_cell(cells[4])});
  }
  return rows;
}

std::vector<std::string> rank_variants() {
  std::vector<std::string> out;
  for (const auto& r : rank_rows())
    if (std::find(out.begin(), out.end(), r.variant) == out.end()) out.push_back(r.variant);
  return out;
}

// "verdict | failing: k,k | others: k,k", from a scenario of the report; a
// leak attributed to no rank shows as "unattributed".
std::string outcome(const json& sc) {
  std::set<std::string> failing, others;
  const int r = sc["rank"];
  for (const auto& l : sc["leaks"]) {
    const int lr = l["rank"];
    std::string kind = l["kind"];
    if (lr < 0) others.insert("unattributed " + kind);
    else if (lr == r) failing.insert(kind);
    else others.insert(kind);
  }
  std::string s = sc["verdict"].get<std::string>() + " | failing:";
  for (const auto& k : failing) s += " " + k;
  s += " | others:";
  for (const auto& k : others) s += " " + k;
  return s;
}

std::string expected_outcome(const RankRow& row) {
  std::string s = row.verdict + " | failing:";
  for (const auto& k : row.failing) s += " " + k;
  s += " | others:";
  for (const auto& k : row.others) s += " " + k;
  return s;
}

class RankBugVariantTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RankBugVariantTest, CaughtInExactlyTheDocumentedScenariosOnTheDocumentedRanks) {
  const std::string variant = GetParam();
  json report = run_json(kRanks,
                         {"--grace", "150ms", "--collective-timeout", "300ms", "--shutdown-timeout", "100ms", "--",
                          kWorkerPool, "--bug", variant},
                         1);
  std::vector<RankRow> rows;
  for (const auto& row : rank_rows())
    if (row.variant == variant) rows.push_back(row);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(report["summary"]["total"], 344);
  int failing = 0;
  for (const auto& sc : report["scenarios"]) {
    const std::string id = sc["id"];
    std::string want = "pass | failing: | others:";
    for (const auto& row : rows) {
      if (!suite::Filter::parse(row.filter).matches(id)) continue;
      want = expected_outcome(row);
      ++failing;
      break;
    }
    EXPECT_EQ(outcome(sc), want) << variant << " " << id;
  }
  EXPECT_GT(failing, 0) << "the table names no failing scenario for " << variant;
}

INSTANTIATE_TEST_SUITE_P(RanksTable, RankBugVariantTest, ::testing::ValuesIn(rank_variants()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(RanksTableTest, DocumentsTheRankVariants) {
  auto v = rank_variants();
  EXPECT_THAT(v, ::testing::UnorderedElementsAre("no-parent-watch", "skip-on-exception"));
}

// ---- launcher policies ------------------------------------------------------------

const char* kCrashAtBatch = R"(
[expect]
collective_timeout = "2s"
shutdown_timeout = "2s"
timeout = "20s"
[[matrix]]
entries = ["fit"]
points = ["train_batch#1"]
faults = ["crash"]
world_sizes = [2]
ranks = [1]
normal = false
)";

TEST(LauncherPolicyTest, TorchrunTerminatesSurvivorsThroughTheirProcessGroup) {
  TempDir dir;
  json report = run_json(write_suite(dir, kCrashAtBatch), {"--launcher", "torchrun"}, 0);
  ASSERT_EQ(report["scenarios"].size(), 1u);
  const json& sc = report["scenarios"][0];
  EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
  EXPECT_THAT(notes_of(sc), HasSubstr("torchrun policy: SIGTERM to the process groups of rank(s) 0"));
  EXPECT_EQ(rank_of(sc, 1)["exit"], "killed by SIGKILL");
  // The survivor was aborted and SIGTERMed: on_exception, then death by SIGTERM.
  EXPECT_EQ(rank_of(sc, 0)["exit"], "killed by SIGTERM") << sc.dump(2);
  EXPECT_TRUE(has_hook(rank_of(sc, 0), "on_exception")) << sc.dump(2);
  EXPECT_FALSE(has_hook(rank_of(sc, 0), "teardown")) << sc.dump(2);
}

TEST(LauncherPolicyTest, TorchrunEscalatesToSigkillAfterTheShutdownTimeout) {
  TempDir dir;
  // A hung rank ignores nothing but cannot act: only the SIGKILL ends it.
  json report = run_json(write_suite(dir, R"(
[expect]
collective_timeout = "300ms"
shutdown_timeout = "200ms"
[[matrix]]
entries = ["fit"]
points = ["setup"]
faults = ["hang"]
world_sizes = [2]
ranks = [0]
normal = false
)"),
                         {}, 0);
  const json& sc = report["scenarios"][0];
  EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
  EXPECT_THAT(notes_of(sc), HasSubstr("did not reach collective 'post_setup' within 300 ms"));
  EXPECT_THAT(notes_of(sc), HasSubstr("still running 200 ms after SIGTERM; sent SIGKILL"));
  EXPECT_EQ(rank_of(sc, 0)["exit"], "killed by SIGKILL");
  EXPECT_TRUE(has_hook(rank_of(sc, 1), "on_exception")) << sc.dump(2);
}

TEST(LauncherPolicyTest, LightningDdpKillsEverySurvivor) {
  TempDir dir;
  json report = run_json(write_suite(dir, kCrashAtBatch), {"--launcher", "lightning-ddp"}, 0);
  const json& sc = report["scenarios"][0];
  EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
  EXPECT_THAT(notes_of(sc), HasSubstr("lightning-ddp policy: SIGKILL to rank(s) 0"));
  EXPECT_EQ(rank_of(sc, 0)["exit"], "killed by SIGKILL") << sc.dump(2);
  EXPECT_FALSE(has_hook(rank_of(sc, 0), "on_exception")) << sc.dump(2);
}

TEST(LauncherPolicyTest, NoneLeavesSurvivorsToTheAbortedCollective) {
  TempDir dir;
  json report = run_json(write_suite(dir, kCrashAtBatch), {"--launcher", "none"}, 0);
  const json& sc = report["scenarios"][0];
  EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
  EXPECT_THAT(notes_of(sc), ::testing::Not(HasSubstr("policy")));
  // Nobody signalled it: the abort became an exception, on_exception, exit 1.
  EXPECT_EQ(rank_of(sc, 0)["exit"], "exit 1") << sc.dump(2);
  EXPECT_TRUE(has_hook(rank_of(sc, 0), "on_exception"));
}

TEST(LauncherPolicyTest, NoneCannotStopAHungRankSoTheScenarioHangs) {
  TempDir dir;
  json report = run_json(write_suite(dir, R"(
[expect]
collective_timeout = "200ms"
timeout = "1500ms"
kill_after = "100ms"
[[matrix]]
entries = ["fit"]
points = ["train_batch#1"]
faults = ["hang"]
world_sizes = [2]
ranks = [1]
normal = false
)"),
                         {"--launcher", "none"}, 1);
  const json& sc = report["scenarios"][0];
  EXPECT_EQ(sc["verdict"], "hang") << sc.dump(2);
  EXPECT_EQ(rank_of(sc, 0)["exit"], "exit 1") << sc.dump(2);  // it noticed through the collective timeout
  EXPECT_EQ(rank_of(sc, 1)["exit"], "killed by SIGKILL") << sc.dump(2);
}

// OpenMPI's mpirun starts the ranks (as it would across machines); they
// connect back to the harness's control address, and mpirun stops the job
// itself when a rank fails. CI installs openmpi-bin (.ci/setup).
TEST(LauncherPolicyTest, MpirunStartsTheRanksWhichConnectBackAndAreAuditedAndInjected) {
  ASSERT_EQ(std::system("command -v mpirun >/dev/null"), 0) << "mpirun is missing: run .ci/setup (openmpi-bin)";
  TempDir dir;
  json report = run_json(write_suite(dir, R"(
[expect]
launcher = "mpirun"
collective_timeout = "1s"
shutdown_timeout = "1s"
timeout = "30s"
[[matrix]]
entries = ["fit"]
points = ["train_batch#1"]
faults = ["crash", "exception", "hang"]
world_sizes = [2]
ranks = [1]
)"),
                         {}, 0);
  ASSERT_EQ(report["scenarios"].size(), 4u);
  for (const auto& sc : report["scenarios"]) {
    EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
    EXPECT_THAT(notes_of(sc), ::testing::Not(HasSubstr("policy"))) << sc["id"];
    std::set<int> pids;
    for (int k = 0; k < 2; ++k) {
      EXPECT_TRUE(has_hook(rank_of(sc, k), "setup")) << sc.dump(2);  // it spoke the protocol
      pids.insert(rank_of(sc, k)["pid"].get<int>());
    }
    EXPECT_EQ(pids.size(), 2u);
    if (sc["fault"] == "none") {
      for (int k = 0; k < 2; ++k) EXPECT_EQ(rank_of(sc, k)["exit"], "exit 0") << sc.dump(2);
      continue;
    }
    EXPECT_TRUE(rank_of(sc, 1)["failed"].get<bool>()) << sc.dump(2);
    EXPECT_TRUE(has_hook(rank_of(sc, 0), "on_exception")) << sc.dump(2);
  }
  // A crashed rank's status belongs to mpirun, which reaped it.
  for (const auto& sc : report["scenarios"]) {
    if (sc["fault"] != "crash") continue;
    EXPECT_EQ(rank_of(sc, 1)["exit"], "exited (status unknown: its launcher reaped it)");
  }
}

// The same over TCP on the loopback interface, the transport ranks on other
// machines would use: the probes connect to "tcp:127.0.0.1:PORT".
TEST(LauncherPolicyTest, MpirunRanksConnectBackOverTcp) {
  ASSERT_EQ(std::system("command -v mpirun >/dev/null"), 0) << "mpirun is missing: run .ci/setup (openmpi-bin)";
  TempDir dir;
  json report = run_json(write_suite(dir, R"(
[expect]
launcher = "mpirun"
collective_timeout = "1s"
shutdown_timeout = "1s"
[[matrix]]
entries = ["fit"]
points = ["setup"]
faults = ["exception"]
world_sizes = [3]
ranks = [-1]
)"),
                         {"--control", "tcp"}, 0);
  ASSERT_EQ(report["scenarios"].size(), 2u);
  for (const auto& sc : report["scenarios"]) {
    EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
    for (int k = 0; k < 3; ++k) EXPECT_TRUE(has_hook(rank_of(sc, k), "setup")) << sc.dump(2);
  }
}

// ---- rank faults --------------------------------------------------------------------

TEST(RankFaultTest, EveryRankFaultIsReclaimedOnEveryRank) {
  TempDir dir;
  json report = run_json(write_suite(dir, R"(
[expect]
collective_timeout = "500ms"
shutdown_timeout = "300ms"
[[matrix]]
entries = ["fit"]
points = ["train_batch#2"]
faults = ["crash", "exit", "exception", "hang", "disconnect"]
world_sizes = [3]
ranks = [1]
normal = false
)"),
                         {}, 0);
  std::map<std::string, std::string> failure;
  for (const auto& sc : report["scenarios"]) {
    EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
    failure[sc["fault"]] = rank_of(sc, 1)["failure"].is_string() ? rank_of(sc, 1)["failure"].get<std::string>() : "";
    for (int k : {0, 2}) {
      EXPECT_TRUE(has_hook(rank_of(sc, k), "on_exception")) << sc["id"] << " rank " << k;
      EXPECT_FALSE(rank_of(sc, k)["failed"].get<bool>()) << sc["id"];
    }
  }
  EXPECT_EQ(failure["crash"], "killed by SIGKILL");
  EXPECT_EQ(failure["exit"], "exit 1");
  EXPECT_EQ(failure["exception"], "exit 1");
  EXPECT_EQ(failure["hang"], "did not reach collective 'train_batch#2' within 500 ms");
  // The rank that lost its channel fails at its next collective.
  EXPECT_EQ(failure["disconnect"], "exit 1");
}

TEST(RankFaultTest, TheFailingRanksContractIsCheckedAfterAnException) {
  TempDir dir;
  // skip-on-exception still calls on_exception: the contract holds, the leaks show.
  json report = run_json(write_suite(dir, R"(
[[matrix]]
entries = ["fit"]
points = ["setup"]
faults = ["exception"]
world_sizes = [2]
ranks = [1]
normal = false
)"),
                         {"--grace", "150ms", "--", kWorkerPool, "--bug", "skip-on-exception"}, 1);
  const json& sc = report["scenarios"][0];
  EXPECT_EQ(sc["verdict"], "leak") << sc.dump(2);
  std::set<int> ranks;
  for (const auto& l : sc["leaks"]) ranks.insert(l["rank"].get<int>());
  EXPECT_EQ(ranks, (std::set<int>{0, 1}));
  EXPECT_TRUE(sc["violations"].empty()) << sc.dump(2);
}

// ---- interruption ------------------------------------------------------------------

// Interrupted while hung ranks wait to be stopped: every rank, worker and
// janitor of the running scenarios is killed and every sandbox removed.
std::vector<int> pids_where(const std::function<bool(const std::string& dir)>& pred) {
  std::vector<int> out;
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      const int pid = std::atoi(e->d_name);
      if (pid > 0 && pred(std::string("/proc/") + e->d_name)) out.push_back(pid);
    }
    ::closedir(d);
  }
  return out;
}

TEST(RankInterruptTest, InterruptedRunLeavesNoRankNoWorkerNoSandbox) {
  TempDir dir, sandbox;
  // Two scenarios start together under -j 2: a quick one, and one whose hung
  // rank would keep everyone waiting for 30 s. The quick one's line comes
  // while the other's four ranks, their workers and janitors all run.
  const std::string suite = write_suite(dir, R"(
[[matrix]]
entries = ["fit"]
faults = []
world_sizes = [2]
[[matrix]]
entries = ["fit"]
points = ["setup"]
faults = ["hang"]
world_sizes = [4]
ranks = [1]
normal = false
collective_timeout = "30s"
timeout = "60s"
)");
  int harness = 0;
  std::size_t running = 0;
  auto r = run_reclaim({"run", suite, "-j", "2"}, {"TMPDIR=" + sandbox.path()}, [&](const std::string& line) {
    if (line.find("PASS") == std::string::npos) return false;
    auto h = pids_where([&](const std::string& d) {
      std::string cmd = read_file(d + "/cmdline");
      return cmd.rfind(RECLAIM_BIN, 0) == 0 && cmd.find(suite) != std::string::npos;
    });
    if (!h.empty()) harness = h.front();
    const std::string marker = "RECLAIM_MARKER=" + std::to_string(harness) + ".";
    running = pids_where([&](const std::string& d) { return read_file(d + "/environ").find(marker) != std::string::npos; })
                  .size();
    return true;
  });
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  ASSERT_GT(harness, 0);
  EXPECT_GT(running, 4u) << "the interrupt was meant to land while the hung scenario runs";
  const std::string marker = "RECLAIM_MARKER=" + std::to_string(harness) + ".";
  auto left = pids_where([&](const std::string& d) { return read_file(d + "/environ").find(marker) != std::string::npos; });
  EXPECT_TRUE(left.empty()) << left.size() << " processes of the run survive";
  auto sandboxes = 0;
  if (DIR* d = ::opendir(sandbox.path().c_str())) {
    while (dirent* e = ::readdir(d)) sandboxes += std::string(e->d_name).rfind("reclaim.", 0) == 0;
    ::closedir(d);
  }
  EXPECT_EQ(sandboxes, 0) << "a sandbox was left in " << sandbox.path();
}

// ---- the torchrun environment ----------------------------------------------------------

TEST(RankEnvironmentTest, EachRankGetsTorchrunsVariablesAndItsOwnTempDirectory) {
  TempDir dir;
  const std::string out = dir.path() + "/env";
  ASSERT_EQ(::mkdir(out.c_str(), 0755), 0);
  const std::string suite = dir.path() + "/env.toml";
  // A target that is no datamodule: it records its environment and exits 0.
  std::ofstream(suite) << "[target]\ncommand = [\"/bin/sh\", \"-c\", "
                          "\"echo $RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT $TMPDIR "
                          "$RECLAIM_RANK > $0/rank-$RANK\", \""
                       << out << "\"]\n"
                       << "[expect]\ncontract = \"none\"\n[[matrix]]\nentries = [\"fit\"]\nworld_sizes = [4]\n";
  json report = run_json(suite, {}, 0);
  ASSERT_EQ(report["scenarios"].size(), 1u);
  std::set<std::string> ports;
  for (int k = 0; k < 4; ++k) {
    std::istringstream in(read_file(out + "/rank-" + std::to_string(k)));
    std::string rank, local, world, local_world, addr, port, tmp, reclaim_rank;
    in >> rank >> local >> world >> local_world >> addr >> port >> tmp >> reclaim_rank;
    EXPECT_EQ(rank, std::to_string(k));
    EXPECT_EQ(local, std::to_string(k));
    EXPECT_EQ(reclaim_rank, std::to_string(k));
    EXPECT_EQ(world, "4");
    EXPECT_EQ(local_world, "4");
    EXPECT_EQ(addr, "127.0.0.1");
    EXPECT_GT(std::atoi(port.c_str()), 0);
    ports.insert(port);
    EXPECT_THAT(tmp, ::testing::EndsWith("/rank-" + std::to_string(k)));
  }
  EXPECT_EQ(ports.size(), 1u) << "every rank of a scenario rendezvouses on one port";
}

// A real torch.distributed program (gloo over loopback TCP, rendezvous through
// MASTER_ADDR/MASTER_PORT) runs unchanged under the harness, and a rank's
// failure is reclaimed on both ranks.
TEST(RankEnvironmentTest, RealTorchDistributedProgramRendezvousesUnderTheHarness) {
  TempDir dir;
  const std::string suite = dir.path() + "/gloo.toml";
  std::ofstream(suite) << "[target]\ncommand = [\"/usr/bin/python3\", \"" << kSource
                       << "/fixtures/python/ddp_gloo.py\"]\n"
                          "[expect]\ntimeout = \"90s\"\ngrace = \"2s\"\ncollective_timeout = \"60s\"\n"
                          "shutdown_timeout = \"5s\"\n"
                          "[[matrix]]\nentries = [\"fit\"]\npoints = [\"train_batch#2\"]\n"
                          "faults = [\"exception\"]\nworld_sizes = [2]\nranks = [1]\n";
  json report = run_json(suite, {}, 0);
  ASSERT_EQ(report["scenarios"].size(), 2u);
  for (const auto& sc : report["scenarios"]) {
    EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
    for (int k = 0; k < 2; ++k) EXPECT_TRUE(has_hook(rank_of(sc, k), "train_dataloader")) << sc.dump(2);
  }
  std::map<std::string, json> by_fault;
  for (const auto& sc : report["scenarios"]) by_fault[sc["fault"]] = sc;
  const json& normal = by_fault["none"];
  for (int k = 0; k < 2; ++k) EXPECT_EQ(rank_of(normal, k)["exit"], "exit 0") << normal.dump(2);
  // Whichever rank gloo lets fail first, both ran on_exception and nothing was left.
  const json& failed = by_fault["exception"];
  for (int k = 0; k < 2; ++k) EXPECT_TRUE(has_hook(rank_of(failed, k), "on_exception")) << failed.dump(2);
}

}  // namespace
}  // namespace reclaim::testing
