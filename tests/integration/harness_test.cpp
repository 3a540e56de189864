// End-to-end tests of `reclaim run` on real processes: the reference fixture
// and its broken variants against scenarios/standard.toml, determinism under
// -j, interruption, and the guarantees of the sandbox.
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <set>

#include "readme_table.hpp"
#include "reclaim_cli.hpp"
#include "suite/filter.hpp"
#include "sys/cgroup.hpp"

namespace reclaim::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kStandard = kSource + "/scenarios/standard.toml";
const std::string kSmoke = kSource + "/scenarios/smoke.toml";

// id -> "verdict:kind,kind" (leak kinds sorted, deduplicated)
std::map<std::string, std::string> outcome_by_id(const json& report) {
  std::map<std::string, std::string> out;
  for (const auto& sc : report.at("scenarios")) {
    std::set<std::string> kinds;
    for (const auto& l : sc.at("leaks")) kinds.insert(l.at("kind").get<std::string>());
    std::string s = sc.at("verdict").get<std::string>() + ":";
    for (const auto& k : kinds) s += k + ",";
    out[sc.at("id").get<std::string>()] = s;
  }
  return out;
}

std::vector<std::string> dir_entries(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name).rfind(prefix, 0) == 0) out.emplace_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

// Every process whose environment carries a reclaim marker of `harness_pid`.
std::vector<int> processes_marked_by(int harness_pid) {
  std::vector<int> out;
  const std::string needle = "RECLAIM_MARKER=" + std::to_string(harness_pid) + ".";
  for (const auto& name : dir_entries("/proc", "")) {
    int pid = std::atoi(name.c_str());
    if (pid <= 0) continue;
    std::string env = read_file("/proc/" + name + "/environ");
    if (env.find(needle) != std::string::npos) out.push_back(pid);
  }
  return out;
}

TEST(StandardSuiteTest, WellBehavedFixturePassesEveryScenario) {
  TempDir dir;
  auto r = run_reclaim({"run", kStandard, "-j", "2", "--json", dir.path() + "/r.json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  json report = load_json(dir.path() + "/r.json");
  EXPECT_EQ(report["summary"]["total"], 238);
  EXPECT_EQ(report["summary"]["passed"], 238);
  for (const auto& sc : report["scenarios"]) {
    EXPECT_EQ(sc["verdict"], "pass") << sc.dump(2);
    if (sc["fault"] == "none") continue;
    EXPECT_TRUE(sc["reclaim_latency_ms"].is_number()) << sc["id"];
    // The timeline is ordered: fault, on_exception (when the rank could react), rank exit, all reclaimed.
    const auto& t = sc["timeline_ns"];
    const auto fault = t["fault_injected"].get<std::int64_t>();
    EXPECT_LE(fault, t["rank_exited"].get<std::int64_t>()) << sc["id"];
    EXPECT_LE(t["rank_exited"].get<std::int64_t>(), t["all_reclaimed"].get<std::int64_t>()) << sc["id"];
    EXPECT_LE(t["all_reclaimed"].get<std::int64_t>(), t["finished"].get<std::int64_t>()) << sc["id"];
    const std::string f = sc["fault"];
    if (f == "exception" || f == "sigterm" || f == "sigint" || f == "pg-sigint" || f == "pg-sigterm" ||
        f == "worker-sigkill") {
      ASSERT_TRUE(t["on_exception"].is_number()) << sc["id"];
      EXPECT_LE(fault, t["on_exception"].get<std::int64_t>()) << sc["id"];
      EXPECT_LE(t["on_exception"].get<std::int64_t>(), t["rank_exited"].get<std::int64_t>()) << sc["id"];
    }
  }
}

// ---- the documented table of fixtures/README.md --------------------------------

struct ExpectedRow {
  std::string variant, filter, verdict;
  std::set<std::string> kinds;
};

// The rows of the table under the heading `heading` (a whole line), up to the next heading.
std::vector<ExpectedRow> expected_rows(const std::string& heading = "## Expected results") {
  std::vector<ExpectedRow> rows;
  for (const auto& cells : table_rows(kSource + "/fixtures/README.md", heading)) {
    if (cells.size() < 4) continue;
    ExpectedRow row{cells[0], cells[1], cells[2], {}};
    for (const auto& k : kinds_in_cell(cells[3])) row.kinds.insert(k);
    rows.push_back(row);
  }
  return rows;
}

// A documented table: which fixture, which suite, and how it is run.
struct FixtureTable {
  std::string heading;
  std::string suite;
  std::vector<std::string> target;  // the fixture's command; "--bug VARIANT" is appended
  std::string slow_variant;         // the variant whose hangs need a shorter timeout
  std::string slow_timeout;
  std::string timeout = "5s";       // every other variant's timeout
  std::string filter = "";          // only these scenarios (gtest-style), when the whole suite is too slow
};

const FixtureTable kCppTable{"## Expected results", kStandard, {kWorkerPool}, "hang-in-cleanup", "500ms"};
const FixtureTable kPythonTable{"## Expected results: python",
                                kSource + "/scenarios/python.toml",
                                {"/usr/bin/python3", kSource + "/fixtures/python/mp_datamodule.py"},
                                "nondaemon-process",
                                "2s"};
// torch: each rank imports torch (about 1.2 s of CPU, several seconds of wall
// time on a loaded 2-core machine), so the timeout is generous and the variants
// run on fit's normal run and its first training batch only, every fault there
// (the documented table covers the whole suite; the good variant runs it whole
// below).
const FixtureTable kTorchTable{"## Expected results: torch",
                               kSource + "/scenarios/torch.toml",
                               {"/usr/bin/python3", kSource + "/fixtures/python/torch_datamodule.py"},
                               "nondaemon-process",
                               "15s",
                               "60s",
                               "fit/none:fit/train_batch#1/*"};

std::vector<std::string> variants(const FixtureTable& table) {
  std::vector<std::string> out;
  for (const auto& r : expected_rows(table.heading))
    if (std::find(out.begin(), out.end(), r.variant) == out.end()) out.push_back(r.variant);
  return out;
}

// Runs `variant` of the table's fixture through its suite and checks every
// scenario against the table: a matching row's verdict and exactly its leak
// kinds, or pass.
void check_variant(const FixtureTable& table, const std::string& variant) {
  TempDir dir;
  const std::string report_path = dir.path() + "/r.json";
  // The documented run: short grace and timeout keep failing scenarios quick.
  std::vector<std::string> args = {"run", table.suite, "-j", "2", "--json", report_path, "--grace", "150ms",
                                   "--timeout", variant == table.slow_variant ? table.slow_timeout : table.timeout,
                                   "--kill-after", "100ms"};
  std::vector<std::string> list_args = {"list", table.suite};
  if (!table.filter.empty()) {
    args.insert(args.end(), {"--filter", table.filter});
    list_args.insert(list_args.end(), {"--filter", table.filter});
  }
  args.push_back("--");
  args.insert(args.end(), table.target.begin(), table.target.end());
  args.insert(args.end(), {"--bug", variant});
  auto r = run_reclaim(args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto outcomes = outcome_by_id(load_json(report_path));
  auto listed = run_reclaim(list_args);
  ASSERT_EQ(outcomes.size(), static_cast<std::size_t>(std::count(listed.out.begin(), listed.out.end(), '\n')))
      << r.err;

  std::vector<ExpectedRow> rows;
  for (const auto& row : expected_rows(table.heading))
    if (row.variant == variant) rows.push_back(row);
  ASSERT_FALSE(rows.empty());
  int failing = 0;
  for (const auto& [id, got] : outcomes) {
    std::string want = "pass:";
    for (const auto& row : rows) {
      if (!suite::Filter::parse(row.filter).matches(id)) continue;
      want = row.verdict + ":";
      for (const auto& k : row.kinds) want += k + ",";
      ++failing;
      break;
    }
    EXPECT_EQ(got, want) << variant << " " << id;
  }
  EXPECT_GT(failing, 0) << "the table names no failing scenario for " << variant;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& param_info) {
  std::string n = param_info.param;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

class BugVariantTest : public ::testing::TestWithParam<std::string> {};
TEST_P(BugVariantTest, CaughtInExactlyTheDocumentedScenarios) { check_variant(kCppTable, GetParam()); }
INSTANTIATE_TEST_SUITE_P(FixtureTable, BugVariantTest, ::testing::ValuesIn(variants(kCppTable)), test_name);

class PythonBugVariantTest : public ::testing::TestWithParam<std::string> {};
TEST_P(PythonBugVariantTest, CaughtInExactlyTheDocumentedScenarios) { check_variant(kPythonTable, GetParam()); }
INSTANTIATE_TEST_SUITE_P(PythonFixtureTable, PythonBugVariantTest, ::testing::ValuesIn(variants(kPythonTable)),
                         test_name);

// Every entry x every point x the nine standard faults, plus the normal runs.
TEST(FixtureTableTest, PythonFixturePassesItsSuite) {
  TempDir dir;
  std::vector<std::string> args = {"run", kPythonTable.suite, "-j", "2", "--json", dir.path() + "/r.json", "--"};
  args.insert(args.end(), kPythonTable.target.begin(), kPythonTable.target.end());
  auto r = run_reclaim(args);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  json report = load_json(dir.path() + "/r.json");
  EXPECT_EQ(report["summary"]["total"], 193);
  EXPECT_EQ(report["summary"]["passed"], 193);
}

class TorchBugVariantTest : public ::testing::TestWithParam<std::string> {};
TEST_P(TorchBugVariantTest, CaughtInExactlyTheDocumentedScenarios) { check_variant(kTorchTable, GetParam()); }
INSTANTIATE_TEST_SUITE_P(TorchFixtureTable, TorchBugVariantTest, ::testing::ValuesIn(variants(kTorchTable)),
                         test_name);

// The good variant on a real torch DataLoader passes the whole suite, at the
// suite's own grace and timeout.
TEST(FixtureTableTest, TorchFixturePassesItsSuite) {
  TempDir dir;
  std::vector<std::string> args = {"run", kTorchTable.suite, "-j", "2", "--json", dir.path() + "/r.json", "--"};
  args.insert(args.end(), kTorchTable.target.begin(), kTorchTable.target.end());
  auto r = run_reclaim(args);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  json report = load_json(dir.path() + "/r.json");
  EXPECT_EQ(report["summary"]["total"], 193);
  EXPECT_EQ(report["summary"]["passed"], 193);
}

TEST(FixtureTableTest, EveryVariantOfTheFixtureIsDocumented) {
  EXPECT_EQ(variants(kCppTable).size(), 9u);
  EXPECT_EQ(variants(kPythonTable).size(), 4u);
  EXPECT_EQ(variants(kTorchTable).size(), 3u);
}

// ---- determinism ---------------------------------------------------------------

TEST(DeterminismTest, OneAndTwoJobsGiveIdenticalResults) {
  TempDir dir;
  auto run = [&](const std::string& jobs, const std::string& bug) {
    std::string path = dir.path() + "/j" + jobs + bug + ".json";
    run_reclaim({"run", kStandard, "-j", jobs, "--filter", "fit/*", "--grace", "150ms", "--json", path, "--",
                 kWorkerPool, "--bug", bug});
    return outcome_by_id(load_json(path));
  };
  for (const std::string bug : {"skip-on-exception", "orphan-worker"}) {
    auto one = run("1", bug);
    auto two = run("2", bug);
    EXPECT_FALSE(one.empty());
    EXPECT_EQ(one, two) << bug;
  }
}

// ---- interruption ------------------------------------------------------------------

TEST(InterruptTest, SigintStopsCleansUpAndKeepsFinishedResults) {
  TempDir dir, sandbox;
  const std::string report = dir.path() + "/r.json";
  int finished_lines = 0;
  const std::vector<std::string> env = {"TMPDIR=" + sandbox.path()};
  // Slow scenarios, so that some are surely running when the signal lands.
  std::string base;  // the run's sandbox directory, "reclaim.XXXXXX"
  auto r = run_reclaim({"run", kStandard, "-j", "2", "--json", report, "--", kWorkerPool, "--bug", "slow-cleanup=300"},
                       env, [&](const std::string& line) {
                         if (base.empty()) {
                           auto names = dir_entries(sandbox.path(), "reclaim.");
                           if (!names.empty()) base = names.front();
                         }
                         return line.find("PASS") != std::string::npos && ++finished_lines == 3;
                       });
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  // Nothing the harness started is left: no sandbox, no private /dev/shm directory.
  ASSERT_FALSE(base.empty());
  EXPECT_THAT(dir_entries(sandbox.path(), "reclaim."), ::testing::IsEmpty());
  for (const auto& s : dir_entries("/dev/shm", base + ".")) ADD_FAILURE() << "left in /dev/shm: " << s;
  const std::string cgroups = sys::cgroup2_mount();
  if (!cgroups.empty()) {
    EXPECT_NE(::access((cgroups + "/" + base).c_str(), F_OK), 0) << "cgroup left: " << base;
  }
  json j = load_json(report);
  EXPECT_TRUE(j["summary"]["interrupted"].get<bool>());
  EXPECT_GE(j["scenarios"].size(), 3u);
  EXPECT_LT(j["scenarios"].size(), 238u);
  EXPECT_GT(j["summary"]["not_run"].get<int>(), 0);
}

TEST(InterruptTest, NoProcessOfAnInterruptedRunSurvives) {
  TempDir dir;
  int harness_pid = 0;
  int seen = 0;
  auto r = run_reclaim({"run", kStandard, "-j", "2", "--", kWorkerPool, "--bug", "orphan-worker"}, {},
                       [&](const std::string& line) {
                         // The orphans of finished scenarios were killed; those of running ones must be too.
                         if (line.find("LEAK") != std::string::npos) ++seen;
                         if (seen == 2 && harness_pid == 0) {
                           for (const auto& name : dir_entries("/proc", "")) {
                             std::string cmd = read_file("/proc/" + name + "/cmdline");
                             if (cmd.rfind(RECLAIM_BIN, 0) == 0 && cmd.find("orphan-worker") != std::string::npos)
                               harness_pid = std::atoi(name.c_str());
                           }
                           return true;
                         }
                         return false;
                       },
                       SIGTERM);
  EXPECT_EQ(r.exit_code, 143) << r.err;
  ASSERT_GT(harness_pid, 0);
  EXPECT_THAT(processes_marked_by(harness_pid), ::testing::IsEmpty());
}

// `reclaim run ... | head -1`: the reader goes away after the first line. The
// harness must not die of SIGPIPE with scenarios running; it finishes, cleans
// up and exits normally.
TEST(InterruptTest, ReaderThatGoesAwayDoesNotMakeTheHarnessLeak) {
  TempDir sandbox;
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::setenv("TMPDIR", sandbox.path().c_str(), 1);
    ::execl(RECLAIM_BIN, RECLAIM_BIN, "run", kSmoke.c_str(), "-j", "2", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') {
  }
  ::close(out[0]);  // like head(1) after its line
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  if (WIFEXITED(status)) {
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  EXPECT_THAT(dir_entries(sandbox.path(), "reclaim."), ::testing::IsEmpty());
}

// ---- suites and targets ------------------------------------------------------------

TEST(CliTest, MalformedSuiteIsAUsageErrorWithItsLocation) {
  auto r = run_reclaim({"run", kSource + "/tests/data/suites/unknown_fault.toml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::ContainsRegex("unknown_fault.toml:[0-9]+:[0-9]+: unknown fault"));
  EXPECT_THAT(r.err, HasSubstr("did you mean"));
}

TEST(CliTest, MissingTargetIsAUsageErrorBeforeAnythingRuns) {
  auto r = run_reclaim({"run", kStandard, "--", "no/such/worker_pool"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("the target 'no/such/worker_pool' is not an executable file"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("ERROR")));
}

TEST(CliTest, ListPrintsEveryScenarioIdOnce) {
  auto r = run_reclaim({"list", kStandard});
  EXPECT_EQ(r.exit_code, 0);
  std::istringstream in(r.out);
  std::set<std::string> ids;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ids.insert(line);
    ++n;
  }
  EXPECT_EQ(n, 238);
  EXPECT_EQ(ids.size(), 238u);
  EXPECT_TRUE(ids.count("fit/train_batch#2/exception"));
  EXPECT_TRUE(ids.count("fit/none"));
}

TEST(CliTest, FailureReportNamesTheLeakAndTheReproCommand) {
  auto r = run_reclaim({"run", kStandard, "--filter", "fit/setup/exception", "--", kWorkerPool, "--bug", "leak-tempfile"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("temp file tmp/worker_pool-cache-"));
  EXPECT_THAT(r.out, HasSubstr("repro: "));
  EXPECT_THAT(r.out, HasSubstr("--filter fit/setup/exception"));
}

TEST(CliTest, FailureReportCarriesTheLastLinesTheScenarioPrinted) {
  // A target that prints on both streams and never speaks the protocol.
  TempDir dir;
  const std::string script = dir.path() + "/noisy.sh";
  {
    std::ofstream out(script);
    out << "#!/bin/sh\necho first-line-on-stdout\necho second-line-on-stderr >&2\nexit 3\n";
  }
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  const std::string report = dir.path() + "/out.json";
  auto r = run_reclaim({"run", kSmoke, "--filter", "fit/none", "--json", report, "--", script});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(read_file(report),
              HasSubstr("output of the scenario (last lines):\\nfirst-line-on-stdout\\nsecond-line-on-stderr"));
}

TEST(HostProgramTest, SharedLibraryDataModulePassesTheSmokeSuite) {
  const std::string host = std::string(RECLAIM_BINARY_DIR) + "/reclaim-host";
  const std::string module = std::string(RECLAIM_BINARY_DIR) + "/fixtures/libworker_pool_module.so";
  auto r = run_reclaim({"run", kSmoke, "--", host, module});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(SandboxTest, HardCodedTmpPathIsCaughtInThePrivateTmp) {
  if (::geteuid() != 0) GTEST_SKIP() << "a private /tmp needs root";
  TempDir dir;
  const std::string suite = dir.path() + "/s.toml";
  std::ofstream(suite) << "[target]\ncommand = [\"/bin/sh\", \"-c\", \"echo x > /tmp/hardcoded-by-target; "
                          "echo y > /dev/shm/hardcoded-shm\"]\n[expect]\ncontract = \"none\"\ngrace = \"200ms\"\n"
                          "[[matrix]]\nentries = [\"fit\"]\n";
  auto r = run_reclaim({"run", suite, "--json", dir.path() + "/r.json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto j = load_json(dir.path() + "/r.json");
  std::set<std::string> what;
  for (const auto& l : j["scenarios"][0]["leaks"]) what.insert(l["kind"].get<std::string>() + " " + l["path"].get<std::string>());
  EXPECT_TRUE(what.count("temp_file hardcoded-by-target")) << j.dump(2);
  EXPECT_TRUE(what.count("shm hardcoded-shm")) << j.dump(2);
  // The host's /tmp and /dev/shm never saw them.
  EXPECT_NE(::access("/tmp/hardcoded-by-target", F_OK), 0);
  EXPECT_NE(::access("/dev/shm/hardcoded-shm", F_OK), 0);
}

TEST(SandboxTest, TargetLivingUnderTmpStillGetsAPrivateTmp) {
  if (::geteuid() != 0) GTEST_SKIP() << "a private /tmp needs root";
  // A build tree under /tmp (CI clones there) must not cost the private /tmp:
  // its directory is bound back into the scenario's own /tmp.
  char templ[] = "/tmp/reclaim-under-tmp.XXXXXX";
  ASSERT_NE(::mkdtemp(templ), nullptr);
  const std::string dir = templ;
  // The program and the module it loads both live there.
  const std::string host = dir + "/reclaim-host";
  const std::string module = dir + "/libworker_pool_module.so";
  const std::string bin = RECLAIM_BINARY_DIR;
  ASSERT_EQ(std::system(("cp '" + bin + "/reclaim-host' '" + bin + "/fixtures/libworker_pool_module.so' '" + dir + "'").c_str()), 0);
  auto r = run_reclaim({"run", kSmoke, "-j", "2", "--", host, module});
  std::system(("rm -rf '" + dir + "'").c_str());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("no private /tmp")));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("unavailable")));
}

TEST(SandboxTest, TargetFilesRightInTmpStillGetAPrivateTmp) {
  if (::geteuid() != 0) GTEST_SKIP() << "a private /tmp needs root";
  // The program and the module it loads, each a file right in /tmp: each is
  // bound back into the scenario's own /tmp, onto an empty file.
  const std::string tag = std::to_string(::getpid());
  const std::string host = "/tmp/reclaim-host-" + tag, module = "/tmp/libworker_pool_module-" + tag + ".so";
  const std::string bin = RECLAIM_BINARY_DIR;
  const int copied = std::system(("cp '" + bin + "/reclaim-host' '" + host + "' && cp '" + bin +
                                  "/fixtures/libworker_pool_module.so' '" + module + "'").c_str());
  CliResult r;
  if (copied == 0) r = run_reclaim({"run", kSmoke, "-j", "2", "--", host, module});
  ::unlink(host.c_str());
  ::unlink(module.c_str());
  ASSERT_EQ(copied, 0);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("unavailable")));
}

TEST(SandboxTest, WithoutPrivateShmLeakedHostObjectsAreRecordedThenRemoved) {
  TempDir dir;
  const std::string name = "reclaim-test-host-leak-" + std::to_string(::getpid());
  const std::string suite = dir.path() + "/s.toml";
  std::ofstream(suite) << "[target]\ncommand = [\"/bin/sh\", \"-c\", \"echo x > /dev/shm/" << name
                       << "\"]\n[expect]\ncontract = \"none\"\ngrace = \"100ms\"\n[[matrix]]\nentries = [\"fit\"]\n";
  auto r = run_reclaim({"run", suite, "--no-private-tmp"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("shm dev/shm/" + name));
  EXPECT_NE(::access(("/dev/shm/" + name).c_str(), F_OK), 0) << "the harness left the leaked object on the machine";
  ::unlink(("/dev/shm/" + name).c_str());
}

TEST(SandboxTest, PlantedSymlinkDoesNotMakeTheHarnessDeleteItsTarget) {
  TempDir dir;
  const std::string outside = dir.path() + "/precious";
  ASSERT_EQ(::mkdir(outside.c_str(), 0700), 0);
  std::ofstream(outside + "/keep") << "keep";
  const std::string suite = dir.path() + "/s.toml";
  std::ofstream(suite) << "[target]\ncommand = [\"/bin/ln\", \"-s\", \"" << outside
                       << "\", \"/tmp/link-out\"]\n[expect]\ncontract = \"none\"\n[[matrix]]\nentries = [\"fit\"]\n";
  auto r = run_reclaim({"run", suite, "--json", dir.path() + "/r.json"}, {"TMPDIR=" + dir.path()});
  // The link is a leak (the private /tmp, or TMPDIR without one) — and the directory it points to survives.
  EXPECT_EQ(::access((outside + "/keep").c_str(), F_OK), 0);
}

TEST(SandboxTest, DaemonizedGrandchildIsFoundAndKilled) {
  TempDir dir;
  const std::string suite = dir.path() + "/s.toml";
  // setsid + double fork, environment cleared: only the subreaper can find it.
  std::ofstream(suite) << "[target]\ncommand = [\"/bin/sh\", \"-c\", \"(setsid env -i /bin/sh -c 'exec sleep 300' &) \"]\n"
                       << "[expect]\ncontract = \"none\"\ngrace = \"200ms\"\n[[matrix]]\nentries = [\"fit\"]\n";
  auto r = run_reclaim({"run", suite, "--json", dir.path() + "/r.json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto j = load_json(dir.path() + "/r.json");
  ASSERT_EQ(j["scenarios"][0]["leaks"].size(), 1u) << j.dump(2);
  const auto& leak = j["scenarios"][0]["leaks"][0];
  EXPECT_EQ(leak["kind"], "process");
  EXPECT_THAT(leak["what"].get<std::string>(), HasSubstr("sleep 300"));
  int pid = std::stoi(leak["pid"].get<std::string>());
  EXPECT_NE(::kill(pid, 0), 0) << "the harness left the daemon " << pid << " running";
}

}  // namespace
}  // namespace reclaim::testing
