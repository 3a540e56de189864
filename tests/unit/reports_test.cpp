// Reporters: golden-file tests (a fixed set of results through each format,
// compared to tests/data/golden/), plus the properties golden files cannot
// show: schema, well-formedness, escaping, streaming and interruption.
// Regenerate the golden files with RECLAIM_UPDATE_GOLDEN=1 and review the diff.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "reports/atomic_file.hpp"
#include "reports/reporter.hpp"
#include "reports/xml_writer.hpp"

namespace reclaim::report {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- fixtures -----------------------------------------------------------------

constexpr std::int64_t kT0 = 5'000'000'000;  // an arbitrary CLOCK_MONOTONIC origin
constexpr std::int64_t kMs = 1'000'000;

Scenario scenario(Entry entry, const char* point, const char* fault, int world_size = 1,
                  int rank = 0, int repeat = 0) {
  Scenario s;
  s.entry = entry;
  if (point) s.point = parse_point(point);
  s.fault = *parse_fault(fault);
  s.world_size = world_size;
  s.rank = rank;
  s.repeat_index = repeat;
  return s;
}

ScenarioResult result(Scenario s, Verdict v) {
  ScenarioResult r;
  r.scenario = std::move(s);
  r.verdict = v;
  r.timeline.started_ns = kT0;
  r.timeline.finished_ns = kT0 + 12 * kMs;
  r.rank_exit = {true, 0, 0};
  r.repro = "reclaim run scenarios/smoke.toml --only " + r.scenario.id();
  return r;
}

// One of each verdict, a repeated scenario whose repeats disagree, a
// multi-rank scenario, and strings that need escaping in every format.
std::vector<ScenarioResult> sample_results() {
  std::vector<ScenarioResult> out;

  auto normal = result(scenario(Entry::fit, nullptr, "none"), Verdict::pass);
  normal.hooks = {"prepare_data",     "setup",      "val_dataloader",
                  "train_dataloader", "state_dict", "teardown"};
  normal.timeline.rank_exited_ns = kT0 + 10 * kMs;
  normal.timeline.all_reclaimed_ns = kT0 + 11 * kMs;
  out.push_back(normal);

  auto term = result(scenario(Entry::fit, "setup", "sigterm"), Verdict::pass);
  term.hooks = {"prepare_data", "setup", "on_exception"};
  term.timeline.fault_injected_ns = kT0 + 2 * kMs;
  term.timeline.on_exception_ns = kT0 + 2 * kMs + 100'000;
  term.timeline.rank_exited_ns = kT0 + 3 * kMs;
  term.timeline.last_process_gone_ns = kT0 + 3 * kMs + 100'000;
  term.timeline.all_reclaimed_ns = kT0 + 3 * kMs + 200'000;
  term.timeline.finished_ns = kT0 + 3 * kMs + 300'000;
  term.rank_exit = {true, -1, SIGTERM};
  out.push_back(term);

  // The same scenario again, this time leaking: the matrix must show LEAK.
  auto term_again = result(scenario(Entry::fit, "setup", "sigterm", 1, 0, 1), Verdict::leak);
  term_again.rank_exit = {true, -1, SIGTERM};
  term_again.timeline.fault_injected_ns = kT0 + 2 * kMs;
  term_again.timeline.rank_exited_ns = kT0 + 3 * kMs;
  term_again.timeline.finished_ns = kT0 + 1003 * kMs;
  term_again.leaks.push_back(
      {LeakKind::process,
       0,
       "process 4242 (python -c \"x<y & z\" \x1b[31m) still running",
       {{"pid", "4242"}, {"cmdline", "python -c \"x<y & z\" 'q'\x1b[0m"}, {"kind", "daemon"}}});
  out.push_back(term_again);

  auto kill = result(scenario(Entry::fit, "train_batch#1", "sigkill"), Verdict::leak);
  kill.rank_exit = {true, -1, SIGKILL};
  kill.timeline.fault_injected_ns = kT0 + 4 * kMs;
  kill.timeline.rank_exited_ns = kT0 + 4 * kMs + 80'000;
  kill.timeline.finished_ns = kT0 + 1005 * kMs;
  kill.hooks = {"prepare_data", "setup", "val_dataloader", "train_dataloader"};
  kill.leaks.push_back(
      {LeakKind::process, 0, "loader worker 4301 still running", {{"pid", "4301"}, {"ppid", "1"}}});
  kill.leaks.push_back({LeakKind::temp_file,
                        0,
                        "temp file shard-0.npy (1024 bytes)",
                        {{"path", "shard-0.npy"}, {"size", "1024"}}});
  kill.notes = {"private /tmp unavailable: not root"};
  out.push_back(kill);

  auto contract = result(scenario(Entry::fit, "train_batch#1", "exception"), Verdict::contract);
  contract.hooks = {"prepare_data", "setup", "val_dataloader", "train_dataloader", "teardown"};
  contract.rank_exit = {true, 1, 0};
  contract.violations.push_back({"on_exception called once", "on_exception not called"});
  contract.violations.push_back({"no teardown after a failure", "teardown called"});
  out.push_back(contract);

  auto hang = result(scenario(Entry::validate, "val_batch#1", "pg-sigterm"), Verdict::hang);
  hang.rank_exit = {true, -1, SIGKILL};
  hang.timeline.fault_injected_ns = kT0 + 5 * kMs;
  hang.timeline.finished_ns = kT0 + 11000 * kMs;
  hang.error = "rank did not exit within 10000 ms";
  out.push_back(hang);

  auto error = result(scenario(Entry::test, "setup", "exception"), Verdict::error);
  error.rank_exit = {};
  error.timeline = {};
  error.error = "cannot spawn <rank>: \"no such file\" & \x01gone";
  out.push_back(error);

  // Rank 1's loader worker is killed; rank 1 reacts and exits 1, which fails
  // the world; rank 0 is aborted in its next collective.
  auto multi = result(scenario(Entry::fit, "train_batch#1", "worker-sigkill", 2, 1), Verdict::pass);
  multi.timeline.fault_injected_ns = kT0 + 6 * kMs;
  multi.timeline.all_reclaimed_ns = kT0 + 7 * kMs + 500'000;
  multi.rank_exit = {true, 1, 0};
  multi.world_failed_ns = kT0 + 6 * kMs + 300'000;
  // prepare_data runs on local rank 0 only.
  multi.ranks.push_back({0, 4100, {true, 1, 0},
                         {"prepare_data", "setup", "val_dataloader", "train_dataloader", "on_exception"},
                         kT0 + 6 * kMs + 400'000, kT0 + 6 * kMs + 900'000, false, ""});
  multi.ranks.push_back({1, 4101, {true, 1, 0}, {"setup", "val_dataloader", "train_dataloader", "on_exception"},
                         kT0 + 6 * kMs + 100'000, kT0 + 6 * kMs + 250'000, true, "exit 1"});
  out.push_back(multi);
  return out;
}

RunInfo sample_info(std::size_t total) {
  RunInfo info;
  info.suite_path = "scenarios/smoke.toml";
  info.seed = 42;
  info.shuffled = true;
  info.jobs = 2;
  info.total = total;
  info.command = "reclaim run scenarios/smoke.toml --seed 42 --shuffle -j 2";
  return info;
}

RunSummary summarise(const std::vector<ScenarioResult>& results, std::size_t planned) {
  RunSummary s;
  s.total = planned;
  for (const auto& r : results) {
    ++s.by_verdict[r.verdict];
    if (r.verdict == Verdict::pass)
      ++s.passed;
    else
      ++s.failed;
  }
  s.not_run = planned - results.size();
  s.interrupted = s.not_run > 0;
  s.wall_ms = 4123.4;
  return s;
}

// Drives a reporter through a whole run, as the engine would.
void run_through(Reporter& reporter, const std::vector<ScenarioResult>& results) {
  reporter.run_started(sample_info(results.size()));
  for (const auto& r : results) {
    reporter.scenario_started(r.scenario);
    reporter.scenario_finished(r);
  }
  reporter.run_finished(summarise(results, results.size()));
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "reclaim-reports-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
    return names;
  }

 private:
  std::string path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Console output captured in memory.
class Capture {
 public:
  Capture() : file_(::open_memstream(&buf_, &size_)) {}
  ~Capture() {
    if (file_) std::fclose(file_);
    std::free(buf_);
  }
  std::FILE* file() const { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buf_, size_);
  }

 private:
  char* buf_ = nullptr;
  std::size_t size_ = 0;
  std::FILE* file_;
};

// Replaces what legitimately differs between runs (wall-clock time of day,
// host) so the rest can be compared byte for byte.
std::string normalise(std::string text) {
  text = std::regex_replace(text, std::regex(R"(timestamp="[^"]*")"), R"(timestamp="TIMESTAMP")");
  text = std::regex_replace(text, std::regex(R"(hostname="[^"]*")"), R"(hostname="HOST")");
  return text;
}

void expect_matches_golden(const std::string& actual, const std::string& name) {
  std::string path = std::string(RECLAIM_TEST_DATA) + "/golden/" + name;
  if (std::getenv("RECLAIM_UPDATE_GOLDEN")) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << actual;
    GTEST_SKIP() << "updated " << path;
  }
  ASSERT_TRUE(fs::exists(path)) << path << " missing; run with RECLAIM_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, slurp(path)) << "output differs from " << path;
}

// ---- a tiny XML checker ---------------------------------------------------------
// Enough XML to prove a report is well-formed: nesting, quoting, entities,
// one root. Returns the elements in document order with decoded attributes.

struct XmlElement {
  std::string name;
  std::map<std::string, std::string> attributes;
  std::string text;  // decoded character data directly inside
  int depth = 0;
};

std::optional<std::string> decode_entities(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') return std::nullopt;
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    auto semi = s.find(';', i);
    if (semi == std::string_view::npos) return std::nullopt;
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out += '&';
    else if (ent == "lt")
      out += '<';
    else if (ent == "gt")
      out += '>';
    else if (ent == "quot")
      out += '"';
    else if (ent == "apos")
      out += '\'';
    else if (ent.size() > 1 && ent[0] == '#')
      out += static_cast<char>(std::stoi(std::string(ent.substr(1))));
    else
      return std::nullopt;
    i = semi;
  }
  return out;
}

struct XmlDoc {
  std::vector<XmlElement> elements;
  std::string error;  // empty when well-formed
};

XmlDoc parse_xml(const std::string& doc) {
  XmlDoc result;
  auto fail = [&](std::string why) {
    result.error = std::move(why);
    return result;
  };
  std::size_t i = 0;
  if (doc.rfind("<?xml", 0) == 0) i = doc.find("?>") + 2;
  std::vector<std::size_t> open;  // indices into elements
  int roots = 0;
  while (i < doc.size()) {
    auto lt = doc.find('<', i);
    std::string_view text(doc.data() + i, (lt == std::string::npos ? doc.size() : lt) - i);
    for (char c : text)
      if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r')
        return fail("control character in text");
    auto decoded = decode_entities(text);
    if (!decoded) return fail("bad entity in text");
    if (open.empty() && decoded->find_first_not_of(" \n\t\r") != std::string::npos)
      return fail("text outside the root");
    if (!open.empty()) result.elements[open.back()].text += *decoded;
    if (lt == std::string::npos) break;
    auto gt = doc.find('>', lt);
    if (gt == std::string::npos) return fail("unterminated tag");
    std::string tag = doc.substr(lt + 1, gt - lt - 1);
    i = gt + 1;
    if (tag.empty()) return fail("empty tag");
    if (tag[0] == '/') {
      if (open.empty() || result.elements[open.back()].name != tag.substr(1))
        return fail("mismatched </" + tag.substr(1) + ">");
      open.pop_back();
      continue;
    }
    bool self_closing = tag.back() == '/';
    if (self_closing) tag.pop_back();
    XmlElement el;
    el.depth = static_cast<int>(open.size());
    std::size_t p = tag.find_first_of(" \n\t");
    el.name = tag.substr(0, p);
    while (p != std::string::npos && p < tag.size()) {
      p = tag.find_first_not_of(" \n\t", p);
      if (p == std::string::npos) break;
      auto eq = tag.find('=', p);
      if (eq == std::string::npos || eq + 1 >= tag.size() || tag[eq + 1] != '"')
        return fail("attribute without quoted value in <" + el.name + ">");
      auto close = tag.find('"', eq + 2);
      if (close == std::string::npos) return fail("unterminated attribute");
      std::string name = tag.substr(p, eq - p);
      auto value = decode_entities(tag.substr(eq + 2, close - eq - 2));
      if (!value) return fail("bad entity in attribute " + name);
      if (el.attributes.count(name)) return fail("duplicate attribute " + name);
      el.attributes[name] = *value;
      p = close + 1;
    }
    if (open.empty() && ++roots > 1) return fail("more than one root");
    result.elements.push_back(std::move(el));
    if (!self_closing) open.push_back(result.elements.size() - 1);
  }
  if (!open.empty()) return fail("unclosed <" + result.elements[open.back()].name + ">");
  if (roots != 1) return fail("no root element");
  return result;
}

std::vector<const XmlElement*> find_all(const XmlDoc& doc, const std::string& name) {
  std::vector<const XmlElement*> out;
  for (const auto& e : doc.elements)
    if (e.name == name) out.push_back(&e);
  return out;
}

TEST(XmlChecker, RejectsMalformedDocuments) {
  // The checker must be able to fail, or the tests below prove nothing.
  EXPECT_EQ(parse_xml("<a><b></a></b>").error, "mismatched </a>");
  EXPECT_FALSE(parse_xml("<a x=\"1&2\"/>").error.empty());
  EXPECT_FALSE(parse_xml("<a>1 < 2</a>").error.empty());
  EXPECT_FALSE(parse_xml("<a><b/>").error.empty());
  EXPECT_FALSE(parse_xml("<a/><b/>").error.empty());
  EXPECT_TRUE(parse_xml("<a x=\"&lt;&amp;\"><b>t&quot;</b></a>").error.empty());
}

// ---- XML writer ------------------------------------------------------------------

TEST(XmlEscape, EscapesMarkupAndStripsControlCharacters) {
  EXPECT_EQ(xml_escape("a<b & \"c\" 'd'>", XmlContext::text),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  EXPECT_EQ(xml_escape("x\x1b[0m\x01y\x7f", XmlContext::text), "x[0my");
  EXPECT_EQ(xml_escape("l1\nl2\tx", XmlContext::text), "l1\nl2\tx");
  EXPECT_EQ(xml_escape("l1\nl2\tx", XmlContext::attribute), "l1&#10;l2&#9;x");
}

TEST(XmlWriter, NestsScopedElementsAndSelfClosesEmptyOnes) {
  Capture out;
  {
    XmlWriter xml(out.file());
    xml.declaration();
    auto root = xml.scoped_element("root");
    root.attribute("name", "a&b").attribute("n", 3);
    xml.scoped_element("empty").attribute("k", "<v>");
    {
      auto child = xml.scoped_element("child");
      child.text("1 < 2");
    }
    // `root` still open here: the writer's destructor must not close it twice.
  }
  EXPECT_EQ(out.text(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<root name=\"a&amp;b\" n=\"3\">\n"
            "  <empty k=\"&lt;v&gt;\"/>\n"
            "  <child>1 &lt; 2</child>\n"
            "</root>\n");
}

// ---- atomic files ------------------------------------------------------------------

TEST(AtomicFile, PublishesOnlyOnCommit) {
  TempDir dir;
  AtomicFile f(dir.file("r.json"), ".partial");
  ASSERT_TRUE(f.is_open()) << f.error().message();
  f.write("hello");
  f.flush();
  EXPECT_FALSE(fs::exists(dir.file("r.json")));
  EXPECT_EQ(slurp(dir.file("r.json.partial")), "hello");
  EXPECT_FALSE(f.commit());
  EXPECT_EQ(slurp(dir.file("r.json")), "hello");
  EXPECT_FALSE(fs::exists(dir.file("r.json.partial")));
}

TEST(AtomicFile, AbandonedFileLeavesNothingBehind) {
  TempDir dir;
  {
    AtomicFile f(dir.file("r.xml"), ".tmp");
    f.write("half");
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, OpenFailureIsAValue) {
  AtomicFile f("/nonexistent-dir/r.json", ".partial");
  EXPECT_FALSE(f.is_open());
  EXPECT_EQ(f.error(), std::errc::no_such_file_or_directory);
  f.write("ignored");
  EXPECT_TRUE(f.commit());
}

TEST(ScratchFile, HasNoNameInTheDirectory) {
  TempDir dir;
  std::error_code ec;
  UniqueFile f = open_scratch_file(dir.file("r.xml"), ec);
  ASSERT_TRUE(f) << ec.message();
  std::fputs("fragment", f.get());
  EXPECT_TRUE(dir.entries().empty());
  Capture copy;
  EXPECT_FALSE(copy_stream(f.get(), copy.file()));
  EXPECT_EQ(copy.text(), "fragment");
}

// ---- to_json --------------------------------------------------------------------

TEST(ToJson, FollowsTheScenarioSchema) {
  auto results = sample_results();
  nlohmann::json normal = to_json(results[0]);
  EXPECT_EQ(normal["id"], "fit/none");
  EXPECT_TRUE(normal["point"].is_null());
  EXPECT_EQ(normal["fault"], "none");
  EXPECT_EQ(normal["timeline_ns"]["started"], 0);
  EXPECT_TRUE(normal["timeline_ns"]["fault_injected"].is_null());
  EXPECT_EQ(normal["timeline_ns"]["rank_exited"], 10 * kMs);
  // No fault, but the rank exited: latency counts from the exit.
  EXPECT_DOUBLE_EQ(normal["reclaim_latency_ms"].get<double>(), 1.0);
  EXPECT_TRUE(normal["error"].is_null());
  EXPECT_EQ(normal["rank_exit"], "exit 0");

  nlohmann::json leak = to_json(results[2]);
  EXPECT_EQ(leak["point"], "setup");
  EXPECT_EQ(leak["repeat"], 1);
  EXPECT_TRUE(leak["reclaim_latency_ms"].is_null());
  ASSERT_EQ(leak["leaks"].size(), 1u);
  EXPECT_EQ(leak["leaks"][0]["kind"], "process");
  EXPECT_EQ(leak["leaks"][0]["pid"], "4242");
  EXPECT_EQ(leak["leaks"][0]["detail_kind"], "daemon");  // a detail never hides a field
  EXPECT_EQ(leak["rank_exit"], "killed by SIGTERM");

  nlohmann::json contract = to_json(results[4]);
  ASSERT_EQ(contract["violations"].size(), 2u);
  EXPECT_EQ(contract["violations"][1]["actual"], "teardown called");

  nlohmann::json error = to_json(results[6]);
  EXPECT_TRUE(error["timeline_ns"]["started"].is_null());
  EXPECT_EQ(error["error"], results[6].error);
  EXPECT_EQ(error["verdict"], "error");
}

TEST(ToJson, ReportsEveryRankRelativeToTheScenarioStart) {
  auto r = result(scenario(Entry::fit, "setup", "crash", 2, 1), Verdict::pass);
  r.world_failed_ns = kT0 + 4 * kMs + 50'000;
  r.ranks.push_back({0, 4100, {true, -1, SIGTERM}, {"prepare_data", "setup", "on_exception"},
                     kT0 + 5 * kMs, kT0 + 6 * kMs, false, ""});
  r.ranks.push_back({1, 4101, {true, -1, SIGKILL}, {"setup"}, 0, kT0 + 4 * kMs, true, "killed by SIGKILL"});
  nlohmann::json j = to_json(r);
  EXPECT_EQ(j["id"], "fit/setup/crash/ws2/r1");
  EXPECT_EQ(j["world_failed_ns"], 4 * kMs + 50'000);
  ASSERT_TRUE(j["ranks"].is_array());
  ASSERT_EQ(j["ranks"].size(), 2u);
  // Exactly these fields: a survivor has no failure, and what did not happen is null.
  EXPECT_EQ(j["ranks"][0], nlohmann::json::parse(R"({
      "rank": 0, "pid": 4100, "exit": "killed by SIGTERM", "failed": false, "failure": null,
      "hooks": ["prepare_data", "setup", "on_exception"],
      "timeline_ns": {"on_exception": 5000000, "exited": 6000000}})"));
  EXPECT_EQ(j["ranks"][1], nlohmann::json::parse(R"({
      "rank": 1, "pid": 4101, "exit": "killed by SIGKILL", "failed": true, "failure": "killed by SIGKILL",
      "hooks": ["setup"],
      "timeline_ns": {"on_exception": null, "exited": 4000000}})"));

  // One rank, no world failure: an empty list and a null time.
  nlohmann::json single = to_json(sample_results()[0]);
  ASSERT_TRUE(single["ranks"].is_array());
  EXPECT_TRUE(single["ranks"].empty());
  ASSERT_TRUE(single.contains("world_failed_ns"));
  EXPECT_TRUE(single["world_failed_ns"].is_null());
}

// ---- JSON reporter --------------------------------------------------------------

void expect_json_report_schema(const nlohmann::json& j) {
  for (const char* key :
       {"reclaim", "suite", "seed", "shuffled", "jobs", "command", "scenarios", "summary"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["reclaim"], "0.1");
  EXPECT_TRUE(j["seed"].is_number_unsigned());
  EXPECT_TRUE(j["shuffled"].is_boolean());
  ASSERT_TRUE(j["scenarios"].is_array());
  for (const auto& s : j["scenarios"]) {
    for (const char* key :
         {"id", "entry", "point", "fault", "world_size", "rank", "verdict", "leaks", "violations",
          "hooks", "timeline_ns", "reclaim_latency_ms", "rank_exit", "ranks", "world_failed_ns", "notes",
          "error", "repro"})
      EXPECT_TRUE(s.contains(key)) << key << " in " << s.dump();
    EXPECT_EQ(s["timeline_ns"].size(), 8u);
    ASSERT_TRUE(s["ranks"].is_array());
    for (const auto& r : s["ranks"]) {
      EXPECT_EQ(r.size(), 7u) << r.dump();
      for (const char* key : {"rank", "pid", "exit", "failed", "failure", "hooks", "timeline_ns"})
        EXPECT_TRUE(r.contains(key)) << key << " in " << r.dump();
      EXPECT_EQ(r["timeline_ns"].size(), 2u) << r.dump();
    }
  }
  const auto& summary = j["summary"];
  for (const char* key :
       {"total", "passed", "failed", "not_run", "by_verdict", "interrupted", "wall_ms"})
    EXPECT_TRUE(summary.contains(key)) << key;
  for (const char* v : {"pass", "leak", "contract", "hang", "error"})
    EXPECT_TRUE(summary["by_verdict"][v].is_number()) << v;
}

TEST(JsonReporter, MatchesGoldenAndSchema) {
  TempDir dir;
  auto results = sample_results();
  {
    auto reporter = make_json_reporter(dir.file("report.json"));
    run_through(*reporter, results);
  }
  EXPECT_THAT(dir.entries(), ::testing::ElementsAre("report.json"));  // no .partial left
  std::string text = slurp(dir.file("report.json"));
  nlohmann::json j = nlohmann::json::parse(text);
  expect_json_report_schema(j);
  EXPECT_EQ(j["scenarios"].size(), results.size());
  EXPECT_EQ(j["summary"]["failed"], 5);
  EXPECT_EQ(j["summary"]["by_verdict"]["leak"], 2);
  EXPECT_FALSE(j["summary"]["interrupted"].get<bool>());
  const auto& multi = j["scenarios"][7];
  ASSERT_EQ(multi["ranks"].size(), 2u);
  EXPECT_EQ(multi["ranks"][1]["failure"], "exit 1");
  EXPECT_EQ(multi["world_failed_ns"], 6 * kMs + 300'000);
  expect_matches_golden(normalise(text), "report.json");
}

TEST(JsonReporter, StreamsEachScenarioBeforeTheRunEnds) {
  TempDir dir;
  auto results = sample_results();
  auto reporter = make_json_reporter(dir.file("report.json"));
  reporter->run_started(sample_info(results.size()));
  reporter->scenario_finished(results[3]);
  // Flushed already: a harness killed now leaves this scenario on disk.
  std::string partial = slurp(dir.file("report.json.partial"));
  EXPECT_THAT(partial, HasSubstr("\"fit/train_batch#1/sigkill\""));
  EXPECT_FALSE(fs::exists(dir.file("report.json")));
  reporter->run_finished(summarise({results[3]}, results.size()));
  EXPECT_TRUE(fs::exists(dir.file("report.json")));
  EXPECT_FALSE(fs::exists(dir.file("report.json.partial")));
}

TEST(JsonReporter, InterruptedRunStillPublishesFinishedScenarios) {
  TempDir dir;
  auto results = sample_results();
  {
    auto reporter = make_json_reporter(dir.file("report.json"));
    reporter->run_started(sample_info(results.size()));
    for (int i = 0; i < 3; ++i) reporter->scenario_finished(results[i]);
    // Destroyed without run_finished: the harness is dying.
  }
  ASSERT_TRUE(fs::exists(dir.file("report.json")));
  EXPECT_FALSE(fs::exists(dir.file("report.json.partial")));
  nlohmann::json j = nlohmann::json::parse(slurp(dir.file("report.json")));
  expect_json_report_schema(j);
  ASSERT_EQ(j["scenarios"].size(), 3u);
  EXPECT_EQ(j["scenarios"][2]["verdict"], "leak");
  EXPECT_TRUE(j["summary"]["interrupted"].get<bool>());
  EXPECT_EQ(j["summary"]["total"], results.size());
  EXPECT_EQ(j["summary"]["passed"], 2);
  EXPECT_EQ(j["summary"]["failed"], 1);
  EXPECT_EQ(j["summary"]["not_run"], results.size() - 3);
  EXPECT_EQ(j["summary"]["by_verdict"]["leak"], 1);
}

TEST(JsonReporter, EmptyRunIsValidJson) {
  TempDir dir;
  { auto reporter = make_json_reporter(dir.file("r.json")); }
  nlohmann::json j = nlohmann::json::parse(slurp(dir.file("r.json")));
  EXPECT_TRUE(j["scenarios"].empty());
  EXPECT_TRUE(j["summary"]["interrupted"].get<bool>());
}

TEST(JsonReporter, InvalidUtf8IsReplacedNotThrown) {
  TempDir dir;
  auto r = sample_results()[3];
  r.leaks[0].what = "bad \xff\xfe bytes";
  {
    auto reporter = make_json_reporter(dir.file("r.json"));
    reporter->run_started(sample_info(1));
    reporter->scenario_finished(r);
    reporter->run_finished(summarise({r}, 1));
  }
  nlohmann::json j = nlohmann::json::parse(slurp(dir.file("r.json")));
  EXPECT_THAT(j["scenarios"][0]["leaks"][0]["what"].get<std::string>(), HasSubstr("bad"));
}

TEST(JsonReporter, UnwritablePathIsAConfigurationError) {
  EXPECT_THROW(make_json_reporter("/nonexistent-dir/r.json"), std::runtime_error);
}

// ---- JUnit reporter ---------------------------------------------------------------

TEST(JunitReporter, MatchesGoldenAndIsWellFormed) {
  TempDir dir;
  auto results = sample_results();
  {
    auto reporter = make_junit_reporter(dir.file("report.xml"));
    run_through(*reporter, results);
  }
  EXPECT_THAT(dir.entries(), ::testing::ElementsAre("report.xml"));  // no .tmp, no scratch
  std::string text = slurp(dir.file("report.xml"));
  XmlDoc doc = parse_xml(text);
  ASSERT_EQ(doc.error, "") << text;

  auto suites = find_all(doc, "testsuite");
  ASSERT_EQ(suites.size(), 1u);
  const auto& suite = *suites[0];
  auto testcases = find_all(doc, "testcase");
  auto failures = find_all(doc, "failure");
  auto errors = find_all(doc, "error");
  EXPECT_EQ(testcases.size(), results.size());
  EXPECT_EQ(suite.attributes.at("tests"), std::to_string(testcases.size()));
  EXPECT_EQ(suite.attributes.at("failures"), std::to_string(failures.size()));
  EXPECT_EQ(suite.attributes.at("errors"), std::to_string(errors.size()));
  EXPECT_EQ(failures.size(), 4u);
  EXPECT_EQ(errors.size(), 1u);
  EXPECT_EQ(suite.attributes.at("name"), "scenarios/smoke.toml");
  EXPECT_EQ(suite.attributes.at("time"), "4.123");
  EXPECT_EQ(testcases[3]->attributes.at("classname"), "reclaim.fit");
  EXPECT_EQ(testcases[3]->attributes.at("name"), "fit/train_batch#1/sigkill");
  EXPECT_EQ(testcases[3]->attributes.at("time"), "1.005");
  EXPECT_EQ(failures[1]->attributes.at("message"), "leak: 2 leaks");
  EXPECT_EQ(failures[1]->attributes.at("type"), "leak");
  EXPECT_THAT(failures[1]->text, HasSubstr("leak temp_file (rank 0): temp file shard-0.npy"));
  EXPECT_THAT(
      failures[2]->text,
      HasSubstr("contract: expected on_exception called once, got on_exception not called"));

  expect_matches_golden(normalise(text), "report.junit.xml");
}

TEST(JunitReporter, EscapesMarkupAndDropsControlCharacters) {
  TempDir dir;
  auto results = sample_results();
  {
    auto reporter = make_junit_reporter(dir.file("report.xml"));
    run_through(*reporter, results);
  }
  std::string text = slurp(dir.file("report.xml"));
  EXPECT_THAT(text, HasSubstr("cannot spawn &lt;rank&gt;: &quot;no such file&quot; &amp; gone"));
  EXPECT_THAT(text, Not(HasSubstr("\x01")));
  EXPECT_THAT(text, Not(HasSubstr("\x1b")));
  XmlDoc doc = parse_xml(text);
  ASSERT_EQ(doc.error, "");
  auto errors = find_all(doc, "error");
  ASSERT_EQ(errors.size(), 1u);
  // Round trip: what a CI parser reads back is the original minus the control byte.
  EXPECT_EQ(errors[0]->attributes.at("message"),
            "error: cannot spawn <rank>: \"no such file\" & gone");
  auto properties = find_all(doc, "property");
  bool saw_latency = false;
  for (const auto* p : properties)
    if (p->attributes.at("name") == "reclaim_latency_ms" && p->attributes.at("value") == "1.200")
      saw_latency = true;
  EXPECT_TRUE(saw_latency) << "fit/setup/sigterm reclaimed 1.2 ms after the fault";
}

TEST(JunitReporter, InterruptedRunStillProducesAValidFile) {
  TempDir dir;
  auto results = sample_results();
  {
    auto reporter = make_junit_reporter(dir.file("report.xml"));
    reporter->run_started(sample_info(results.size()));
    for (int i = 0; i < 4; ++i) reporter->scenario_finished(results[i]);
  }
  EXPECT_THAT(dir.entries(), ::testing::ElementsAre("report.xml"));
  XmlDoc doc = parse_xml(slurp(dir.file("report.xml")));
  ASSERT_EQ(doc.error, "");
  EXPECT_EQ(find_all(doc, "testcase").size(), 4u);
  const auto& suite = *find_all(doc, "testsuite")[0];
  EXPECT_EQ(suite.attributes.at("tests"), "4");
  EXPECT_EQ(suite.attributes.at("failures"), "2");
  EXPECT_EQ(suite.attributes.at("skipped"), std::to_string(results.size() - 4));
  bool interrupted = false;
  for (const auto* p : find_all(doc, "property"))
    if (p->attributes.at("name") == "interrupted")
      interrupted = p->attributes.at("value") == "true";
  EXPECT_TRUE(interrupted);
}

// ---- console reporter --------------------------------------------------------------

std::string console_run(ConsoleOptions options, const std::vector<ScenarioResult>& results) {
  Capture out;
  {
    auto reporter = make_console_reporter(out.file(), options);
    run_through(*reporter, results);
  }
  return out.text();
}

std::string strip_ansi(const std::string& s) {
  return std::regex_replace(s, std::regex("\x1b\\[[0-9;]*[mK]"), "");
}

TEST(ConsoleReporter, PlainOutputMatchesGolden) {
  std::string text = console_run({}, sample_results());
  // Not even from a leaked process's cmdline, which held an ESC.
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_THAT(text,
              HasSubstr("  leak: process 4242 (python -c \"x<y & z\" \\x1b[31m) still running\n"));
  EXPECT_THAT(text, HasSubstr("  error: cannot spawn <rank>: \"no such file\" & \\x01gone\n"));
  EXPECT_THAT(text, HasSubstr("[1/8] PASS  fit/none  12.0 ms\n"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "8 scenarios: 3 passed, 5 failed (2 leak, 1 contract, 1 hang, 1 error) in 4.1 s\n"));
  expect_matches_golden(text, "console.txt");
}

TEST(ConsoleReporter, MatrixShowsWorstVerdictOfRepeats) {
  std::string text = console_run({}, sample_results());
  // fit/setup × sigterm passed once and leaked once: the cell says LEAK.
  EXPECT_THAT(text, ::testing::ContainsRegex("\nfit/setup +\\. +LEAK( +\\.)+\n"));
  EXPECT_THAT(text, ::testing::ContainsRegex("\nfit/none +ok( +\\.)+\n"));
  EXPECT_THAT(text, ::testing::ContainsRegex("\nfit/train_batch#1 ws2/r1( +\\.)+ +ok\n"));
  // Rows in lifecycle order although the normal run could finish anywhere.
  auto reversed = sample_results();
  std::reverse(reversed.begin(), reversed.end());
  std::string other = console_run({}, reversed);
  EXPECT_LT(other.find("\nfit/none"), other.find("\nfit/setup"));
  EXPECT_LT(other.find("\nfit/setup"), other.find("\nfit/train_batch#1 "));
}

TEST(ConsoleReporter, ColourOnlyWhenAskedFor) {
  std::string plain = console_run({false, false}, sample_results());
  std::string colour = console_run({true, false}, sample_results());
  EXPECT_EQ(plain.find('\x1b'), std::string::npos);
  EXPECT_NE(colour.find('\x1b'), std::string::npos);
  EXPECT_EQ(strip_ansi(colour), plain);  // colour adds escapes and nothing else
}

TEST(ConsoleReporter, ProgressLineRewritesOneLine) {
  std::string text = console_run({false, true}, sample_results());
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << "no escape codes without colour";
  EXPECT_THAT(text, HasSubstr("\r[1/8] 0 failed  fit/none"));
  // Passing scenarios only update the status line; failures get a line each.
  EXPECT_THAT(text, Not(HasSubstr("PASS  fit/none")));
  EXPECT_THAT(text, HasSubstr("LEAK  fit/train_batch#1/sigkill  1005.0 ms\n"));
  EXPECT_THAT(text, HasSubstr("\r[8/8] 5 failed  fit/train_batch#1/worker-sigkill/ws2/r1"));

  std::string colour = console_run({true, true}, sample_results());
  EXPECT_THAT(colour, HasSubstr("\x1b[K"));
}

TEST(ConsoleReporter, ListsFailuresWithReproAndCapsThem) {
  std::string text = console_run({}, sample_results());
  EXPECT_THAT(
      text,
      HasSubstr("LEAK fit/train_batch#1/sigkill  (rank exit: killed by SIGKILL)\n"
                "  leak: loader worker 4301 still running\n"
                "  leak: temp file shard-0.npy (1024 bytes)\n"
                "  repro: reclaim run scenarios/smoke.toml --only fit/train_batch#1/sigkill\n"));
  EXPECT_THAT(text,
              HasSubstr("  contract: expected no teardown after a failure, got teardown called\n"));
  EXPECT_THAT(text, HasSubstr("  error: rank did not exit within 10000 ms\n"));

  std::vector<ScenarioResult> many;
  for (int i = 1; i <= 55; ++i) {
    auto r = result(scenario(Entry::fit, fmt::format("train_batch#{}", i).c_str(), "sigkill"),
                    Verdict::leak);
    r.leaks.push_back({LeakKind::process, 0, "worker", {}});
    many.push_back(r);
  }
  std::string capped = console_run({}, many);
  EXPECT_THAT(capped,
              HasSubstr("--only fit/train_batch#50/sigkill\n... 5 more, see the JSON report\n"));
  EXPECT_THAT(
      capped,
      Not(HasSubstr("  repro: reclaim run scenarios/smoke.toml --only fit/train_batch#51/")));
}

TEST(ConsoleReporter, SaysWhenTheRunWasInterrupted) {
  Capture out;
  auto results = sample_results();
  {
    auto reporter = make_console_reporter(out.file(), {});
    reporter->run_started(sample_info(20));
    reporter->scenario_finished(results[0]);
    reporter->run_finished(summarise({results[0]}, 20));
  }
  std::string text = out.text();
  EXPECT_THAT(text, HasSubstr("[ 1/20] PASS  fit/none"));
  EXPECT_THAT(text, HasSubstr("20 scenarios: 1 passed, 0 failed in 4.1 s\n"
                              "interrupted: 19 of 20 scenarios not run\n"));
}

// ---- registry and fan-out -------------------------------------------------------------

TEST(Registry, KnowsJsonAndJunitOnly) {
  TempDir dir;
  EXPECT_NE(make_reporter("json", dir.file("a.json")), nullptr);
  EXPECT_NE(make_reporter("junit", dir.file("a.xml")), nullptr);
  EXPECT_EQ(make_reporter("html", dir.file("a.html")), nullptr);
  EXPECT_THAT(report_formats(), ::testing::ElementsAre("json", "junit"));
}

class MockReporter : public Reporter {
 public:
  MOCK_METHOD(void, run_started, (const RunInfo&), (override));
  MOCK_METHOD(void, scenario_started, (const Scenario&), (override));
  MOCK_METHOD(void, scenario_finished, (const ScenarioResult&), (override));
  MOCK_METHOD(void, run_finished, (const RunSummary&), (override));
};

TEST(MultiReporter, ForwardsEveryEventInOrder) {
  auto first = std::make_unique<MockReporter>();
  auto second = std::make_unique<MockReporter>();
  ::testing::Sequence seq;
  auto results = sample_results();
  for (MockReporter* m : {first.get(), second.get()}) {
    EXPECT_CALL(*m, run_started(::testing::Field(&RunInfo::seed, 42u))).InSequence(seq);
  }
  EXPECT_CALL(*first, scenario_started(::testing::_)).Times(8);
  EXPECT_CALL(*second, scenario_started(::testing::_)).Times(8);
  EXPECT_CALL(*first, scenario_finished(::testing::_)).Times(8);
  EXPECT_CALL(*second, scenario_finished(::testing::_)).Times(8);
  EXPECT_CALL(*first, run_finished(::testing::Field(&RunSummary::failed, 5u)));
  EXPECT_CALL(*second, run_finished(::testing::Field(&RunSummary::failed, 5u)));
  MultiReporter multi;
  multi.add(std::move(first));
  multi.add(std::move(second));
  multi.add(nullptr);  // ignored
  EXPECT_EQ(multi.size(), 2u);
  run_through(multi, results);
}

}  // namespace
}  // namespace reclaim::report
