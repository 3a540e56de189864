// Suite files: a TOML description of a set of scenarios as one or more
// matrices (entries x points x faults), expanded here into the concrete,
// ordered list of scenarios the engine runs. The format is documented in
// scenarios/README.md.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.hpp"

namespace reclaim::suite {

// An invalid suite: a TOML syntax error, an unknown key or name, a value of
// the wrong type, or a suite that defines nothing to run. Invalid
// configuration is the one thing reported by exception (the CLI maps it to
// exit code 2).
//
// what() is "FILE:LINE:COL: MESSAGE", or "FILE: MESSAGE" when the problem has
// no position in the file (line == 0), e.g. an unreadable file.
struct SuiteError : std::runtime_error {
  SuiteError(std::string file_name, int at_line, int at_column, std::string what_is_wrong);

  std::string file;
  int line = 0;    // 1-based; 0 = no position
  int column = 0;  // 1-based; 0 = no position
  std::string message;  // without the "FILE:LINE:COL: " prefix
};

// Values for the placeholders allowed in target strings ([target] command):
// "{bindir}" (where reclaim's own programs are, e.g. fixtures/worker_pool) and
// "{suitedir}" (the directory of the suite file). A placeholder that is used
// but has an empty value here is an error, never an empty substitution.
struct Placeholders {
  std::string bindir;
  std::string suitedir;
};

struct Suite {
  std::string name;         // [suite] name; default: the file name without ".toml"
  std::string description;  // [suite] description; default ""
  std::string path;         // the path or source name it was loaded from
  Target target;            // default target, placeholders substituted; argv may be
                            // empty (no [target]): the CLI must then supply one
  Expectations expect;      // suite-wide defaults ([expect], else model defaults)
  // Expanded in file order (see scenarios/README.md "Expansion order"), each id at
  // most once (the first occurrence wins). Every scenario carries the suite's
  // target and its matrix's expectations (matrix keys override [expect]).
  std::vector<Scenario> scenarios;
};

// Reads and parses the suite file at `path`. When placeholders.suitedir is
// empty, the directory containing `path` is used for "{suitedir}".
// Throws SuiteError, also when the file cannot be read.
Suite load_suite(const std::string& path, const Placeholders& placeholders);

// Parses suite text; `source_name` is used in messages and as Suite::path,
// and its stem as the default suite name. Throws SuiteError.
Suite parse_suite(std::string_view text, const std::string& source_name,
                  const Placeholders& placeholders);

// Replaces the target of the suite and of every scenario in it (the CLI's
// `reclaim run SUITE -- CMD ARGS...`).
void set_target(Suite& suite, const Target& target);

}  // namespace reclaim::suite
