// The JUnit XML report. JUnit is a cumulative format: <testsuite> carries the
// totals as attributes, before its testcases. Testcases are therefore written
// as XML fragments to an anonymous scratch file as scenarios finish (memory
// stays flat however long the run), and at the end the document is assembled
// around them: header with totals, the fragments, footer.
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <ctime>
#include <stdexcept>

#include "reports/atomic_file.hpp"
#include "reports/reporter.hpp"
#include "reports/xml_writer.hpp"

namespace reclaim::report {

namespace {

std::string seconds(double s) { return fmt::format("{:.3f}", s < 0 ? 0.0 : s); }

double duration_s(const Timeline& t) {
  if (t.started_ns == 0 || t.finished_ns == 0) return 0;
  return static_cast<double>(t.finished_ns - t.started_ns) / 1e9;
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

std::string iso8601_utc_now() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  return buf.data();
}

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return "localhost";
  return buf.data();
}

// The lines under <failure>/<error>: everything a CI page needs to act on a
// failure without opening the JSON report.
std::string failure_body(const ScenarioResult& r) {
  std::string body;
  for (const Leak& leak : r.leaks)
    body += fmt::format("leak {} (rank {}): {}\n", to_string(leak.kind), leak.rank, leak.what);
  for (const Violation& v : r.violations)
    body += fmt::format("contract: expected {}, got {}\n", v.expected, v.actual);
  if (!r.error.empty()) body += fmt::format("error: {}\n", r.error);
  body += fmt::format("rank exit: {}\n", r.rank_exit.describe());
  body += fmt::format("repro: {}", r.repro);
  return body;
}

std::string failure_message(const ScenarioResult& r) {
  switch (r.verdict) {
    case Verdict::leak:
      return "leak: " + plural(r.leaks.size(), "leak", "leaks");
    case Verdict::contract:
      return "contract: " + plural(r.violations.size(), "violation", "violations");
    case Verdict::hang:
      return "hang: " + (r.error.empty() ? std::string("rank did not exit in time") : r.error);
    case Verdict::error:
      return "error: " + r.error;
    case Verdict::pass:
      break;
  }
  return std::string(to_string(r.verdict));
}

void write_testcase(XmlWriter& xml, const ScenarioResult& r) {
  const Scenario& s = r.scenario;
  std::string name = s.id();
  if (s.repeat_index > 0) name += fmt::format(" (repeat {})", s.repeat_index);
  auto testcase = xml.scoped_element("testcase");
  testcase.attribute("classname", fmt::format("reclaim.{}", to_string(s.entry)))
      .attribute("name", name)
      .attribute("time", seconds(duration_s(r.timeline)));
  {
    auto properties = xml.scoped_element("properties");
    auto property = [&](std::string_view key, const std::string& value) {
      xml.scoped_element("property").attribute("name", key).attribute("value", value);
    };
    property("fault", to_string(s.fault));
    property("point", s.point ? to_string(*s.point) : "none");
    property("world_size", std::to_string(s.world_size));
    property("rank", std::to_string(s.rank));
    property("verdict", std::string(to_string(r.verdict)));
    double latency = r.reclaim_latency_ms();
    property("reclaim_latency_ms", latency < 0 ? "n/a" : fmt::format("{:.3f}", latency));
  }
  if (r.verdict != Verdict::pass) {
    auto failure = xml.scoped_element(r.verdict == Verdict::error ? "error" : "failure");
    failure.attribute("message", failure_message(r))
        .attribute("type", to_string(r.verdict))
        .text(failure_body(r));
  }
  std::string out;
  if (!r.hooks.empty()) {
    out += "hooks:";
    for (const auto& h : r.hooks) out += " " + h;
    out += "\n";
  }
  for (const auto& note : r.notes) out += "note: " + note + "\n";
  if (r.verdict == Verdict::pass) out += "repro: " + r.repro + "\n";
  if (!out.empty()) xml.scoped_element("system-out").text(out);
}

class JunitReporter final : public Reporter {
 public:
  explicit JunitReporter(const std::string& path) : path_(path) {
    std::error_code ec;
    scratch_ = open_scratch_file(path_, ec);
    if (!scratch_)
      throw std::runtime_error(
          fmt::format("cannot create JUnit report scratch file near {}: {}", path_, ec.message()));
  }

  ~JunitReporter() override {
    if (finished_) return;
    try {
      RunSummary summary;
      summary.interrupted = true;
      summary.total = info_.total > tests_ ? info_.total : tests_;
      summary.not_run = summary.total - tests_;
      if (run_started_)
        summary.wall_ms = std::chrono::duration<double, std::milli>(
                              std::chrono::steady_clock::now() - started_at_)
                              .count();
      finish(summary);
    } catch (...) {
      // Destructors never throw; the report is then lost, the scratch file
      // vanishes with its descriptor.
    }
  }

  void run_started(const RunInfo& info) override {
    info_ = info;
    run_started_ = true;
    started_at_ = std::chrono::steady_clock::now();
    timestamp_ = iso8601_utc_now();
  }

  void scenario_finished(const ScenarioResult& r) override {
    if (finished_) return;
    {
      // Depth 2: the fragments sit inside <testsuites><testsuite>.
      XmlWriter xml(scratch_.get(), 2);
      write_testcase(xml, r);
    }
    ++tests_;
    if (r.verdict == Verdict::error)
      ++errors_;
    else if (r.verdict != Verdict::pass)
      ++failures_;
  }

  void run_finished(const RunSummary& summary) override {
    if (!finished_) finish(summary);
  }

 private:
  void finish(const RunSummary& summary) {
    finished_ = true;
    if (timestamp_.empty()) timestamp_ = iso8601_utc_now();
    AtomicFile out(path_, ".tmp");
    std::error_code ec = out.error();
    if (out.is_open()) {
      {
        XmlWriter xml(out.stream());
        xml.declaration();
        // Totals are counted from the testcases actually written, so the
        // attributes always agree with the document's content.
        auto suites = xml.scoped_element("testsuites");
        suites.attribute("name", "reclaim")
            .attribute("tests", static_cast<long long>(tests_))
            .attribute("failures", static_cast<long long>(failures_))
            .attribute("errors", static_cast<long long>(errors_))
            .attribute("time", seconds(summary.wall_ms / 1000));
        auto suite = xml.scoped_element("testsuite");
        suite.attribute("name", info_.suite_path)
            .attribute("tests", static_cast<long long>(tests_))
            .attribute("failures", static_cast<long long>(failures_))
            .attribute("errors", static_cast<long long>(errors_))
            .attribute("skipped", static_cast<long long>(summary.not_run))
            .attribute("time", seconds(summary.wall_ms / 1000))
            .attribute("timestamp", timestamp_)
            .attribute("hostname", host_name());
        {
          auto properties = xml.scoped_element("properties");
          auto property = [&](std::string_view key, const std::string& value) {
            xml.scoped_element("property").attribute("name", key).attribute("value", value);
          };
          property("seed", std::to_string(info_.seed));
          property("shuffled", info_.shuffled ? "true" : "false");
          property("jobs", std::to_string(info_.jobs));
          property("command", info_.command);
          property("interrupted", summary.interrupted ? "true" : "false");
        }
        if (std::error_code copy = xml.raw_children(scratch_.get()); copy && !ec) ec = copy;
      }
      if (std::ferror(out.stream()) && !ec) ec = std::make_error_code(std::errc::io_error);
      // A document known to be broken is not published: `out` then removes
      // PATH.tmp and leaves any earlier report at PATH alone.
      if (!ec) ec = out.commit();
    }
    scratch_.reset();
    if (ec) fmt::print(stderr, "reclaim: cannot write JUnit report {}: {}\n", path_, ec.message());
  }

  std::string path_;
  UniqueFile scratch_;
  RunInfo info_;
  bool run_started_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point started_at_;
  std::string timestamp_;
  std::size_t tests_ = 0, failures_ = 0, errors_ = 0;
};

}  // namespace

std::unique_ptr<Reporter> make_junit_reporter(const std::string& path) {
  return std::make_unique<JunitReporter>(path);
}

}  // namespace reclaim::report
