// Human output. Two shapes, chosen by the CLI:
//  - a terminal gets one status line rewritten in place, plus a permanent line
//    for each failure as it happens;
//  - a log (CI) gets one plain line per finished scenario.
// At the end both print the verdict matrix, the failures and a summary line.
// Only what those need is kept: the worst verdict per matrix cell, and the
// first kMaxFailures failed results.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "reports/reporter.hpp"

namespace reclaim::report {

namespace {

constexpr std::size_t kMaxFailures = 50;
// A status line longer than the terminal wraps, and '\r' then rewrites only
// its last row; 79 columns fit every terminal people use.
constexpr std::size_t kMaxStatusWidth = 79;

constexpr std::string_view kReset = "\x1b[0m";
constexpr std::string_view kRed = "\x1b[1;31m";
constexpr std::string_view kGreen = "\x1b[32m";
constexpr std::string_view kYellow = "\x1b[33m";
constexpr std::string_view kClearToEol = "\x1b[K";

// How bad a verdict is, for "worst of the repeats" in the matrix: an error
// (the harness could not tell) hides nothing, so it ranks highest; a hang
// usually also leaks; a leak outranks a broken hook contract.
int severity(Verdict v) {
  switch (v) {
    case Verdict::pass:
      return 0;
    case Verdict::contract:
      return 1;
    case Verdict::leak:
      return 2;
    case Verdict::hang:
      return 3;
    case Verdict::error:
      return 4;
  }
  return 4;
}

std::string_view cell_label(Verdict v) {
  switch (v) {
    case Verdict::pass:
      return "ok";
    case Verdict::leak:
      return "LEAK";
    case Verdict::contract:
      return "CONTR";
    case Verdict::hang:
      return "HANG";
    case Verdict::error:
      return "ERR";
  }
  return "?";
}

std::string_view line_label(Verdict v) {
  switch (v) {
    case Verdict::pass:
      return "PASS";
    case Verdict::leak:
      return "LEAK";
    case Verdict::contract:
      return "CONTR";
    case Verdict::hang:
      return "HANG";
    case Verdict::error:
      return "ERROR";
  }
  return "?";
}

std::string_view colour_of(Verdict v) {
  switch (v) {
    case Verdict::pass:
      return kGreen;
    case Verdict::hang:
      return kYellow;
    default:
      return kRed;
  }
}

// Text that came from the target (a leaked process's cmdline, an error
// message) can hold control bytes; written raw, an ESC would recolour or
// garble the user's terminal. They are shown as \xNN instead.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += ch;
  }
  return out;
}

std::string display_id(const Scenario& s) {
  std::string id = s.id();
  if (s.repeat_index > 0) id += fmt::format(" (repeat {})", s.repeat_index);
  return id;
}

// A matrix row: entry/point, plus world size and rank for multi-rank
// scenarios. Rows sort in lifecycle order (the normal run first), whatever
// order a shuffled run finished them in.
struct RowKey {
  int entry = 0;
  int hook_order = -1;  // -1: the normal run ("none")
  int occurrence = 0;
  int world_size = 1;
  int rank = 0;

  friend bool operator<(const RowKey& a, const RowKey& b) {
    return std::tie(a.entry, a.hook_order, a.occurrence, a.world_size, a.rank) <
           std::tie(b.entry, b.hook_order, b.occurrence, b.world_size, b.rank);
  }
};

RowKey row_key(const Scenario& s) {
  RowKey k;
  k.entry = static_cast<int>(s.entry);
  if (s.point) {
    const auto& hooks = hooks_of(s.entry);
    auto it = std::find(hooks.begin(), hooks.end(), s.point->hook);
    // Hooks outside the entry's list (on_exception) go after the lifecycle.
    k.hook_order = it == hooks.end()
                       ? static_cast<int>(hooks.size()) + static_cast<int>(s.point->hook)
                       : static_cast<int>(it - hooks.begin());
    k.occurrence = s.point->occurrence;
  }
  if (s.world_size > 1) {
    k.world_size = s.world_size;
    k.rank = s.rank;
  }
  return k;
}

std::string row_label(const Scenario& s) {
  std::string label(to_string(s.entry));
  label += "/" + (s.point ? to_string(*s.point) : std::string("none"));
  if (s.world_size > 1) label += fmt::format(" ws{}/r{}", s.world_size, s.rank);
  return label;
}

class ConsoleReporter final : public Reporter {
 public:
  ConsoleReporter(std::FILE* out, ConsoleOptions options) : out_(out), options_(options) {}

  ~ConsoleReporter() override {
    // Going down without a summary: at least leave the terminal on a clean line.
    if (!finished_) clear_status();
    std::fflush(out_);
  }

  void run_started(const RunInfo& info) override {
    info_ = info;
    std::string seed = fmt::format("seed {}", info.seed);
    if (info.shuffled) seed += ", shuffled";
    fmt::print(out_, "reclaim: {} scenarios from {} ({}, {} {})\n", info.total,
               printable(info.suite_path), seed, info.jobs, info.jobs == 1 ? "job" : "jobs");
    std::fflush(out_);
  }

  void scenario_started(const Scenario& s) override {
    if (options_.progress_line) draw_status(display_id(s));
  }

  void scenario_finished(const ScenarioResult& r) override {
    ++done_;
    bool failed = is_failure(r.verdict);
    if (failed) {
      ++failed_;
      if (failures_.size() < kMaxFailures)
        failures_.push_back(r);
      else
        ++failures_dropped_;
    }
    record_cell(r);

    if (!options_.progress_line || failed) {
      clear_status();
      std::string duration;
      if (r.timeline.started_ns != 0 && r.timeline.finished_ns != 0)
        duration =
            fmt::format("  {:.1f} ms",
                        static_cast<double>(r.timeline.finished_ns - r.timeline.started_ns) / 1e6);
      fmt::print(out_, "{} {} {}{}\n", counter(done_),
                 paint(fmt::format("{:<5}", line_label(r.verdict)), colour_of(r.verdict)),
                 display_id(r.scenario), duration);
    }
    if (options_.progress_line) draw_status(display_id(r.scenario));
    std::fflush(out_);
  }

  void run_finished(const RunSummary& summary) override {
    finished_ = true;
    clear_status();
    print_matrix();
    print_failures();
    print_summary(summary);
    std::fflush(out_);
  }

 private:
  std::string paint(std::string_view text, std::string_view colour) const {
    if (!options_.color) return std::string(text);
    return fmt::format("{}{}{}", colour, text, kReset);
  }

  std::string counter(std::size_t n) const {
    if (info_.total == 0) return fmt::format("[{}]", n);
    int width = static_cast<int>(std::to_string(info_.total).size());
    return fmt::format("[{:>{}}/{}]", n, width, info_.total);
  }

  void draw_status(const std::string& id) {
    std::string count = fmt::format("{} failed", failed_);
    std::string text = fmt::format("{} {}  ", counter(done_), count);
    std::size_t room = kMaxStatusWidth > text.size() ? kMaxStatusWidth - text.size() : 0;
    if (id.size() <= room)
      text += id;
    else if (room > 3)
      text += "..." + id.substr(id.size() - (room - 3));
    std::size_t previous = status_width_;
    status_width_ = text.size();
    if (options_.color) {
      // Same text, with the failure count in red once there is one.
      std::string shown = text;
      if (failed_) shown.replace(counter(done_).size() + 1, count.size(), paint(count, kRed));
      fmt::print(out_, "\r{}{}", shown, kClearToEol);
    } else {
      // Without escape codes, blank out the rest of a longer previous line.
      std::string pad(previous > text.size() ? previous - text.size() : 0, ' ');
      fmt::print(out_, "\r{}{}", text, pad);
    }
    std::fflush(out_);
  }

  void clear_status() {
    if (status_width_ == 0) return;
    if (options_.color)
      fmt::print(out_, "\r{}", kClearToEol);
    else
      fmt::print(out_, "\r{}\r", std::string(status_width_, ' '));
    status_width_ = 0;
  }

  void record_cell(const ScenarioResult& r) {
    std::string column = to_string(r.scenario.fault);
    auto col = std::find(columns_.begin(), columns_.end(), column);
    std::size_t col_index = static_cast<std::size_t>(col - columns_.begin());
    if (col == columns_.end()) columns_.push_back(std::move(column));

    auto& row = rows_[row_key(r.scenario)];
    if (row.label.empty()) row.label = row_label(r.scenario);
    auto [cell, inserted] = row.cells.try_emplace(col_index, r.verdict);
    if (!inserted && severity(r.verdict) > severity(cell->second)) cell->second = r.verdict;
  }

  void print_matrix() {
    if (rows_.empty()) return;
    std::size_t label_width = 0;
    for (const auto& [key, row] : rows_) label_width = std::max(label_width, row.label.size());
    std::vector<std::size_t> widths;
    for (const auto& c : columns_) widths.push_back(std::max<std::size_t>(c.size(), 5));

    std::string header = fmt::format("\n{:<{}}", "", label_width);
    for (std::size_t i = 0; i < columns_.size(); ++i)
      header += fmt::format("  {:<{}}", columns_[i], widths[i]);
    fmt::print(out_, "{}\n", trim_right(header));

    for (const auto& [key, row] : rows_) {
      std::string line = fmt::format("{:<{}}", row.label, label_width);
      std::size_t pending_pad = 0;  // padding is written lazily: no trailing blanks
      for (std::size_t i = 0; i < columns_.size(); ++i) {
        auto it = row.cells.find(i);
        std::string_view text = it == row.cells.end() ? "." : cell_label(it->second);
        line += std::string(pending_pad + 2, ' ');
        line += it == row.cells.end() ? std::string(text) : paint(text, colour_of(it->second));
        pending_pad = widths[i] - text.size();
      }
      fmt::print(out_, "{}\n", line);
    }
  }

  void print_failures() {
    if (failures_.empty()) return;
    fmt::print(out_, "\nfailures:\n");
    for (const ScenarioResult& r : failures_) {
      fmt::print(out_, "{} {}  (rank exit: {})\n",
                 paint(line_label(r.verdict), colour_of(r.verdict)), display_id(r.scenario),
                 r.rank_exit.describe());
      for (const Leak& leak : r.leaks) {
        if (r.scenario.world_size > 1)
          fmt::print(out_, "  leak (rank {}): {}\n", leak.rank < 0 ? std::string("?") : std::to_string(leak.rank),
                     printable(leak.what));
        else
          fmt::print(out_, "  leak: {}\n", printable(leak.what));
      }
      for (const Violation& v : r.violations)
        fmt::print(out_, "  contract: expected {}, got {}\n", printable(v.expected),
                   printable(v.actual));
      if (!r.error.empty()) fmt::print(out_, "  error: {}\n", printable(r.error));
      fmt::print(out_, "  repro: {}\n", printable(r.repro));
    }
    if (failures_dropped_ > 0)
      fmt::print(out_, "... {} more, see the JSON report\n", failures_dropped_);
  }

  void print_summary(const RunSummary& s) {
    std::string breakdown;
    for (Verdict v : {Verdict::leak, Verdict::contract, Verdict::hang, Verdict::error}) {
      auto it = s.by_verdict.find(v);
      if (it == s.by_verdict.end() || it->second == 0) continue;
      if (!breakdown.empty()) breakdown += ", ";
      breakdown += fmt::format("{} {}", it->second, to_string(v));
    }
    if (!breakdown.empty()) breakdown = " (" + breakdown + ")";
    std::string failed = fmt::format("{} failed{}", s.failed, breakdown);
    fmt::print(out_, "\n{} scenarios: {}, {} in {:.1f} s\n", s.total,
               paint(fmt::format("{} passed", s.passed), kGreen),
               s.failed ? paint(failed, kRed) : failed, s.wall_ms / 1000);
    if (s.interrupted)
      fmt::print(out_, "{}\n",
                 paint(fmt::format("interrupted: {} of {} scenarios not run", s.not_run, s.total),
                       kYellow));
  }

  static std::string trim_right(std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

  struct Row {
    std::string label;
    std::map<std::size_t, Verdict> cells;  // column index -> worst verdict
  };

  std::FILE* out_;
  ConsoleOptions options_;
  RunInfo info_;
  std::size_t done_ = 0, failed_ = 0;
  std::size_t status_width_ = 0;  // columns of the status line on screen, 0 if none
  bool finished_ = false;
  std::vector<std::string> columns_;  // faults, first-seen order
  std::map<RowKey, Row> rows_;
  std::vector<ScenarioResult> failures_;
  std::size_t failures_dropped_ = 0;
};

}  // namespace

std::unique_ptr<Reporter> make_console_reporter(std::FILE* out, ConsoleOptions options) {
  return std::make_unique<ConsoleReporter>(out, options);
}

}  // namespace reclaim::report
