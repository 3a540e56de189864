#include "suite/suite.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <optional>
#include <unistd.h>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "suite/duration.hpp"

namespace reclaim::suite {

namespace {

std::string format_what(const std::string& file, int line, int column, const std::string& message) {
  if (line > 0) return fmt::format("{}:{}:{}: {}", file, line, column, message);
  return fmt::format("{}: {}", file, message);
}

}  // namespace

SuiteError::SuiteError(std::string file_name, int at_line, int at_column, std::string what_is_wrong)
    : std::runtime_error(format_what(file_name, at_line, at_column, what_is_wrong)),
      file(std::move(file_name)),
      line(at_line),
      column(at_column),
      message(std::move(what_is_wrong)) {}

namespace {

// ---- names and suggestions --------------------------------------------------

// Signals people commonly inject; every fault name parse_fault accepts is one
// of these with an optional "pg-" / "worker-" prefix. Only used to suggest a
// correction, never to decide what is valid (parse_fault does that).
constexpr std::string_view kCommonSignals[] = {
    "sigint", "sigterm", "sigkill", "sigsegv", "sigabrt", "sighup",  "sigquit", "sigusr1",
    "sigusr2", "sigbus", "sigfpe",  "sigill",  "sigpipe", "sigalrm", "sigxcpu"};
constexpr std::string_view kSignalTargetPrefixes[] = {"", "pg-", "worker-"};

constexpr std::string_view kDurationHint = R"(expected a duration like "500ms" or "2s")";
constexpr int kMaxBatchOccurrence = 100000;  // parse_point's limit

// Optimal string alignment distance: Levenshtein plus adjacent transpositions,
// so "faluts" is one edit away from "faults", as a reader would count it.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The closest candidate, if it is close enough to be a plausible typo: at most
// two edits, and at most one for words of up to five characters (so "foo" does
// not suggest "fit"). Ties go to the earlier candidate.
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::size_t limit = word.size() <= 5 ? 1 : 2;
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  if (auto c = closest(word, candidates)) return fmt::format("; did you mean '{}'?", *c);
  return "";
}

std::vector<std::string> entry_names() {
  std::vector<std::string> names;
  for (Entry e : kAllEntries) names.emplace_back(to_string(e));
  return names;
}

std::vector<std::string> point_hook_names() {
  std::vector<std::string> names{"*"};
  for (int h = 0; h <= static_cast<int>(Hook::on_exception); ++h)
    if (static_cast<Hook>(h) != Hook::on_exception) names.emplace_back(to_string(static_cast<Hook>(h)));
  return names;
}

const std::vector<std::string> kExpectKeys{"grace",    "timeout",          "kill_after",        "contract",
                                           "launcher", "shutdown_timeout", "collective_timeout"};
constexpr int kMaxWorldSize = 1024;

std::vector<std::string> fault_names() {
  std::vector<std::string> names{"exception", "crash", "exit", "hang", "disconnect"};
  for (auto prefix : kSignalTargetPrefixes)
    for (auto sig : kCommonSignals) {
      std::string name = std::string(prefix) + std::string(sig);
      if (parse_fault(name)) names.push_back(std::move(name));
    }
  return names;
}

std::vector<std::string> contract_names() {
  return {std::string(to_string(Contract::lightning)), std::string(to_string(Contract::none))};
}

std::string join(const std::vector<Entry>& entries) {
  std::string out;
  for (Entry e : entries) {
    if (!out.empty()) out += ", ";
    out += to_string(e);
  }
  return out;
}

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
  }
  return "value";
}

bool before(const toml::source_region& a, const toml::source_region& b) {
  return std::pair(a.begin.line, a.begin.column) < std::pair(b.begin.line, b.begin.column);
}

// ---- the parser ---------------------------------------------------------------

template <typename T>
struct Located {
  T value;
  toml::source_region where;
};

// A point as written in a [[matrix]]: every hook ("*"), a hook (batch hooks
// then take the matrix's `batches`), or one batch occurrence ("train_batch#2").
struct PointSpec {
  enum class Kind { every_hook, hook, occurrence };
  Kind kind = Kind::every_hook;
  Point point;
};

class Parser {
 public:
  Parser(const std::string& file, const Placeholders& placeholders)
      : file_(file), placeholders_(placeholders) {}

  Suite parse(std::string_view text) {
    toml::table doc;
    try {
      doc = toml::parse(text, std::string_view(file_));
    } catch (const toml::parse_error& e) {
      fail(e.source(), std::string(e.description()));
    }

    check_top_level(doc);
    Suite suite;
    suite.path = file_;
    suite.name = std::filesystem::path(file_).stem().string();

    if (const toml::table* t = table(doc, "suite")) {
      check_keys(*t, "[suite]", {"name", "description"});
      if (auto v = string_value(*t, "name")) suite.name = std::move(*v);
      if (auto v = string_value(*t, "description")) suite.description = std::move(*v);
    }
    if (const toml::table* t = table(doc, "target")) {
      check_keys(*t, "[target]", {"command"});
      if (auto command = strings(*t, "command", false)) {
        for (auto& arg : *command) suite.target.argv.push_back(substitute(arg.value, arg.where));
      }
    }
    if (const toml::table* t = table(doc, "expect")) {
      check_keys(*t, "[expect]", kExpectKeys);
      suite.expect = read_expectations(*t, suite.expect);
    }

    std::vector<Scenario> expanded;
    if (const toml::node* n = doc.get("matrix")) {
      const toml::array* matrices = n->as_array();
      if (!matrices || !matrices->is_array_of_tables())
        fail(n->source(), fmt::format("expected an array of tables for 'matrix' (write [[matrix]]), got {}",
                                      type_name(*n)));
      for (const toml::node& m : *matrices) expand(*m.as_table(), suite, expanded);
    }

    // The first occurrence of an id wins: a later, broader matrix can add
    // "everything else" without repeating what an earlier one configured.
    std::unordered_set<std::string> seen;
    for (auto& s : expanded)
      if (seen.insert(s.id()).second) suite.scenarios.push_back(std::move(s));
    if (suite.scenarios.empty()) throw SuiteError(file_, 0, 0, "the suite defines no scenarios");
    return suite;
  }

 private:
  [[noreturn]] void fail(const toml::source_region& where, std::string message) const {
    throw SuiteError(file_, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column),
                     std::move(message));
  }

  // Reports the unknown key that comes first in the file, whatever order the
  // table stores its keys in, so the message points at the first mistake.
  void check_keys(const toml::table& t, std::string_view context,
                  const std::vector<std::string>& known) const {
    const toml::key* unknown = nullptr;
    for (auto&& [key, value] : t) {
      if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
      if (!unknown || before(key.source(), unknown->source())) unknown = &key;
    }
    if (!unknown) return;
    fail(unknown->source(), fmt::format("unknown key '{}' in {}{}", unknown->str(), context,
                                        did_you_mean(unknown->str(), known)));
  }

  void check_top_level(const toml::table& doc) const {
    const std::vector<std::string> known{"suite", "target", "expect", "matrix"};
    const toml::key* unknown = nullptr;
    const toml::node* unknown_value = nullptr;
    for (auto&& [key, value] : doc) {
      if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
      if (!unknown || before(key.source(), unknown->source())) {
        unknown = &key;
        unknown_value = &value;
      }
    }
    if (!unknown) return;
    bool is_table = unknown_value->is_table() || unknown_value->is_array_of_tables();
    fail(unknown->source(), fmt::format("unknown {} '{}'{}{}", is_table ? "table" : "key", unknown->str(),
                                        is_table ? "" : " at the top level", did_you_mean(unknown->str(), known)));
  }

  const toml::table* table(const toml::table& parent, std::string_view key) const {
    const toml::node* n = parent.get(key);
    if (!n) return nullptr;
    if (const toml::table* t = n->as_table()) return t;
    fail(n->source(), fmt::format("expected a table for '{}', got {}", key, type_name(*n)));
  }

  std::optional<std::string> string_value(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (const auto* s = n->as_string()) return s->get();
    fail(n->source(), fmt::format("expected a string for '{}', got {}", key, type_name(*n)));
  }

  std::optional<bool> bool_value(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (const auto* b = n->as_boolean()) return b->get();
    fail(n->source(), fmt::format("expected a boolean for '{}', got {}", key, type_name(*n)));
  }

  std::optional<std::vector<Located<std::string>>> strings(const toml::table& t, std::string_view key,
                                                           bool allow_empty) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    const toml::array* a = n->as_array();
    if (!a) fail(n->source(), fmt::format("expected an array of strings for '{}', got {}", key, type_name(*n)));
    if (a->empty() && !allow_empty)
      fail(n->source(), fmt::format("expected a non-empty array of strings for '{}'", key));
    std::vector<Located<std::string>> out;
    for (const toml::node& e : *a) {
      const auto* s = e.as_string();
      if (!s)
        fail(e.source(), fmt::format("expected an array of strings for '{}', found {} in the array", key,
                                     type_name(e)));
      out.push_back({s->get(), e.source()});
    }
    return out;
  }

  std::optional<std::vector<Located<int>>> positive_ints(const toml::table& t, std::string_view key,
                                                         std::int64_t max) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    const toml::array* a = n->as_array();
    std::string expected = fmt::format("expected an array of positive integers for '{}'", key);
    if (!a) fail(n->source(), fmt::format("{}, got {}", expected, type_name(*n)));
    if (a->empty()) fail(n->source(), fmt::format("expected a non-empty array of positive integers for '{}'", key));
    std::vector<Located<int>> out;
    for (const toml::node& e : *a) {
      const auto* i = e.as_integer();
      if (!i) fail(e.source(), fmt::format("{}, found {} in the array", expected, type_name(e)));
      if (i->get() < 1 || i->get() > max)
        fail(e.source(), fmt::format("expected an array of integers from 1 to {} for '{}', found {}", max, key,
                                     i->get()));
      out.push_back({static_cast<int>(i->get()), e.source()});
    }
    return out;
  }

  std::optional<std::chrono::milliseconds> duration(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    std::optional<std::chrono::milliseconds> d;
    std::string got;
    if (const auto* i = n->as_integer()) {
      if (i->get() >= 0) d = std::chrono::milliseconds{i->get()};
      got = std::to_string(i->get());
    } else if (const auto* s = n->as_string()) {
      d = parse_duration(s->get());
      got = fmt::format("\"{}\"", s->get());
    } else {
      got = std::string(type_name(*n));
    }
    if (!d) fail(n->source(), fmt::format("{} for '{}', got {}", kDurationHint, key, got));
    if ((key == "timeout" || key == "collective_timeout") && d->count() == 0)
      fail(n->source(), fmt::format("'{}' must be greater than 0", key));
    return d;
  }

  // Reads the expectation keys present in `t` over `base`.
  Expectations read_expectations(const toml::table& t, Expectations base) const {
    if (auto d = duration(t, "grace")) base.grace = *d;
    if (auto d = duration(t, "timeout")) base.timeout = *d;
    if (auto d = duration(t, "kill_after")) base.kill_after = *d;
    if (auto d = duration(t, "collective_timeout")) base.collective_timeout = *d;
    if (auto d = duration(t, "shutdown_timeout")) base.shutdown_timeout = *d;
    if (auto name = string_value(t, "launcher")) {
      auto l = parse_launcher(*name);
      if (!l)
        fail(t.get("launcher")->source(),
             fmt::format("unknown launcher '{}'{}", *name,
                         did_you_mean(*name, {"torchrun", "lightning-ddp", "none", "mpirun"})));
      base.launcher = *l;
    }
    if (auto name = string_value(t, "contract")) {
      auto c = parse_contract(*name);
      if (!c)
        fail(t.get("contract")->source(),
             fmt::format("unknown contract '{}'{}", *name, did_you_mean(*name, contract_names())));
      base.contract = *c;
    }
    return base;
  }

  // Substitutes "{bindir}" and "{suitedir}" in one pass, so a value that
  // itself contains a placeholder spelling is taken literally.
  std::string substitute(const std::string& text, const toml::source_region& where) const {
    const std::pair<std::string_view, const std::string*> known[] = {
        {"{bindir}", &placeholders_.bindir}, {"{suitedir}", &placeholders_.suitedir}};
    std::string out;
    std::string_view rest = text;
    while (!rest.empty()) {
      bool replaced = false;
      for (auto& [name, value] : known) {
        if (!rest.starts_with(name)) continue;
        if (value->empty())
          fail(where, fmt::format("placeholder '{}' is used in 'command' but has no value here", name));
        out += *value;
        rest.remove_prefix(name.size());
        replaced = true;
        break;
      }
      if (!replaced) {
        out += rest.front();
        rest.remove_prefix(1);
      }
    }
    return out;
  }

  std::vector<Entry> read_entries(const toml::table& m) const {
    auto list = strings(m, "entries", false);
    if (!list) return {std::begin(kAllEntries), std::end(kAllEntries)};
    std::vector<Entry> entries;
    for (auto& name : *list) {
      auto e = parse_entry(name.value);
      if (!e)
        fail(name.where, fmt::format("unknown entry '{}'{}", name.value, did_you_mean(name.value, entry_names())));
      entries.push_back(*e);
    }
    return entries;
  }

  PointSpec read_point(const Located<std::string>& text, const std::vector<Entry>& entries) const {
    const std::string& s = text.value;
    if (s == "*") return {PointSpec::Kind::every_hook, {}};
    auto hash = s.find('#');
    std::string name = s.substr(0, hash);
    auto hook = parse_hook(name);
    if (!hook) {
      std::string suggestion;
      if (auto c = closest(name, point_hook_names()); c && *c != "*")
        suggestion = fmt::format("; did you mean '{}'?", *c + (hash == std::string::npos ? "" : s.substr(hash)));
      fail(text.where, fmt::format("unknown point '{}'{}", s, suggestion));
    }
    if (*hook == Hook::on_exception)
      fail(text.where, "'on_exception' is not a point a matrix may target: it is where the rank reacts to a fault");

    PointSpec spec{PointSpec::Kind::hook, Point{*hook, 0}};
    if (hash != std::string::npos) {
      if (!is_batch(*hook))
        fail(text.where, fmt::format("point '{}': only batch hooks take an occurrence '#K'", s));
      auto p = parse_point(s);
      if (!p)
        fail(text.where, fmt::format("point '{}': expected '{}#K' with K from 1 to {}", s, name,
                                     kMaxBatchOccurrence));
      spec = {PointSpec::Kind::occurrence, *p};
    }
    bool reached = std::any_of(entries.begin(), entries.end(),
                               [&](Entry e) { return hook_valid_for(e, *hook); });
    if (!reached)
      fail(text.where, fmt::format("point '{}' is not reached by any entry of this [[matrix]] ({})", s,
                                   join(entries)));
    return spec;
  }

  std::vector<Located<Fault>> read_faults(const toml::table& m) const {
    std::vector<Located<Fault>> faults;
    auto list = strings(m, "faults", true);
    if (!list) return faults;
    for (auto& name : *list) {
      if (name.value == "none")
        fail(name.where, "'none' is not a fault; the no-fault run of each entry is controlled by 'normal'");
      auto f = parse_fault(name.value);
      if (!f)
        fail(name.where, fmt::format("unknown fault '{}'{}", name.value, did_you_mean(name.value, fault_names())));
      faults.push_back({*f, name.where});
    }
    return faults;
  }

  // The points of `specs` that `entry` reaches, in Lightning order: by the
  // hook's place in hooks_of(entry), then by ascending occurrence.
  static std::vector<Point> points_for(Entry entry, const std::vector<PointSpec>& specs,
                                       const std::vector<int>& batches) {
    std::vector<Point> points;
    auto add_hook = [&](Hook h) {
      if (!is_batch(h)) {
        points.push_back({h, 0});
        return;
      }
      for (int b : batches) points.push_back({h, b});
    };
    for (const auto& spec : specs) {
      switch (spec.kind) {
        case PointSpec::Kind::every_hook:
          for (Hook h : hooks_of(entry)) add_hook(h);
          break;
        case PointSpec::Kind::hook:
          if (hook_valid_for(entry, spec.point.hook)) add_hook(spec.point.hook);
          break;
        case PointSpec::Kind::occurrence:
          if (hook_valid_for(entry, spec.point.hook)) points.push_back(spec.point);
          break;
      }
    }
    const auto& order = hooks_of(entry);
    auto rank = [&](const Point& p) {
      auto at = std::find(order.begin(), order.end(), p.hook) - order.begin();
      return std::pair(at, p.occurrence);
    };
    std::sort(points.begin(), points.end(), [&](const Point& a, const Point& b) { return rank(a) < rank(b); });
    points.erase(std::unique(points.begin(), points.end()), points.end());
    return points;
  }

  void expand(const toml::table& m, const Suite& suite, std::vector<Scenario>& out) const {
    std::vector<std::string> keys{"entries", "points", "batches", "faults", "normal", "world_sizes", "ranks"};
    keys.insert(keys.end(), kExpectKeys.begin(), kExpectKeys.end());
    check_keys(m, "[[matrix]]", keys);
    const Expectations expect = read_expectations(m, suite.expect);
    const std::vector<Entry> entries = read_entries(m);

    std::vector<int> world_sizes{1};
    if (auto sizes = positive_ints(m, "world_sizes", kMaxWorldSize)) {
      world_sizes.clear();
      for (auto& ws : *sizes)
        if (std::find(world_sizes.begin(), world_sizes.end(), ws.value) == world_sizes.end())
          world_sizes.push_back(ws.value);
    }
    // The failing rank: 0, 1, ... from the front, -1 for the last rank, -2 the
    // one before it. A rank beyond a world size is skipped for that size.
    std::vector<int> rank_specs{0};
    if (const toml::node* n = m.get("ranks")) {
      const toml::array* a = n->as_array();
      if (!a || a->empty())
        fail(n->source(), fmt::format("expected a non-empty array of integers for 'ranks' (0 = first, -1 = last), got {}",
                                      type_name(*n)));
      rank_specs.clear();
      for (const toml::node& e : *a) {
        const auto* i = e.as_integer();
        if (!i || i->get() < -kMaxWorldSize || i->get() >= kMaxWorldSize)
          fail(e.source(), fmt::format("expected an integer rank for 'ranks' (0 = first, -1 = last), found {}",
                                       i ? std::to_string(i->get()) : std::string(type_name(e))));
        rank_specs.push_back(static_cast<int>(i->get()));
      }
    }

    std::vector<int> batches{1};
    if (auto list = positive_ints(m, "batches", kMaxBatchOccurrence)) {
      batches.clear();
      for (auto& b : *list) batches.push_back(b.value);
      std::sort(batches.begin(), batches.end());
      batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
    }

    std::vector<PointSpec> specs;
    if (auto list = strings(m, "points", false)) {
      for (auto& p : *list) specs.push_back(read_point(p, entries));
    } else {
      specs.push_back({PointSpec::Kind::every_hook, {}});
    }

    const std::vector<Located<Fault>> faults = read_faults(m);
    const bool normal = bool_value(m, "normal").value_or(true);
    if (faults.empty() && !normal)
      fail(m.source(), "this [[matrix]] defines no scenarios: it has no faults and normal = false");

    auto make = [&](Entry entry, std::optional<Point> point, Fault fault, int ws, int rank) {
      Scenario s;
      s.entry = entry;
      s.point = point;
      s.fault = fault;
      s.world_size = ws;
      s.rank = rank;
      s.expect = expect;
      s.target = suite.target;
      out.push_back(std::move(s));
    };

    std::vector<std::size_t> landed(faults.size(), 0);
    for (Entry entry : entries) {
      if (normal)
        for (int ws : world_sizes) make(entry, std::nullopt, Fault{}, ws, 0);
      for (const Point& p : points_for(entry, specs, batches)) {
        for (std::size_t i = 0; i < faults.size(); ++i) {
          if (!fault_valid_at(faults[i].value, p.hook)) continue;
          for (int ws : world_sizes) {
            // Only a collective notices a hung rank: with one rank there is none.
            if (faults[i].value.kind == FaultKind::hang && ws == 1) continue;
            std::vector<int> ranks;
            for (int spec : rank_specs) {
              int r = spec < 0 ? ws + spec : spec;
              if (r < 0 || r >= ws || std::find(ranks.begin(), ranks.end(), r) != ranks.end()) continue;
              // prepare_data runs on local rank 0 only (Lightning's prepare_data_per_node).
              if (p.hook == Hook::prepare_data && r != 0) continue;
              ranks.push_back(r);
            }
            for (int r : ranks) {
              make(entry, p, faults[i].value, ws, r);
              ++landed[i];
            }
          }
        }
      }
    }
    // A fault that lands nowhere is a mistake in the matrix (a worker fault
    // with only non-batch points), not something to drop without a word.
    for (std::size_t i = 0; i < faults.size(); ++i) {
      if (landed[i] > 0) continue;
      bool worker = faults[i].value.kind == FaultKind::signal && faults[i].value.target == SignalTarget::worker;
      bool hang = faults[i].value.kind == FaultKind::hang;
      fail(faults[i].where, fmt::format("fault '{}' can land at none of the points of this [[matrix]]{}",
                                        to_string(faults[i].value),
                                        worker ? " (worker faults need a batch point)"
                                        : hang ? " (a hang needs world_sizes above 1: only a collective notices it)"
                                               : ""));
    }
  }

  const std::string& file_;
  const Placeholders& placeholders_;
};

// Reads the whole file with plain POSIX calls so that errno names the reason
// (missing, permission, a directory) in the error message.
std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SuiteError(path, 0, 0, fmt::format("cannot read the suite file: {}", std::strerror(errno)));
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw SuiteError(path, 0, 0, fmt::format("cannot read the suite file: {}", std::strerror(err)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace

Suite parse_suite(std::string_view text, const std::string& source_name, const Placeholders& placeholders) {
  return Parser(source_name, placeholders).parse(text);
}

Suite load_suite(const std::string& path, const Placeholders& placeholders) {
  std::string text = read_file(path);
  Placeholders effective = placeholders;
  if (effective.suitedir.empty()) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    effective.suitedir = (ec ? std::filesystem::path(path) : abs).parent_path().string();
  }
  return parse_suite(text, path, effective);
}

void set_target(Suite& suite, const Target& target) {
  suite.target = target;
  for (auto& s : suite.scenarios) s.target = target;
}

}  // namespace reclaim::suite
