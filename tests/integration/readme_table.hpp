// Reads the expected-results tables of fixtures/README.md, which the
// table-driven integration tests check scenario by scenario.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "reclaim_cli.hpp"

namespace reclaim::testing {

// `text` without surrounding blanks and backquotes.
inline std::string trim_cell(const std::string& text) {
  auto b = text.find_first_not_of(" `");
  auto e = text.find_last_not_of(" `");
  return b == std::string::npos ? "" : text.substr(b, e - b + 1);
}

// The cells of every data row of the markdown table under the heading line
// `heading` of the file at `path`, up to the next "## " heading; the header
// row ("| variant ...") and the separator row are skipped.
inline std::vector<std::vector<std::string>> table_rows(const std::string& path, const std::string& heading) {
  std::string text = read_file(path);
  auto at = text.find("\n" + heading + "\n");
  std::vector<std::vector<std::string>> rows;
  if (at == std::string::npos) return rows;
  at += heading.size() + 2;
  auto end = text.find("\n## ", at);
  std::istringstream in(text.substr(at, end == std::string::npos ? std::string::npos : end - at));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| ", 0) != 0 || line.find("---") != std::string::npos || line.find("| variant") == 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    std::string cell;
    while (std::getline(ss, cell, '|')) cells.push_back(trim_cell(cell));
    rows.push_back(std::move(cells));
  }
  return rows;
}

// "fd, lock, process" -> {"fd", "lock", "process"}; "-" -> {}.
inline std::vector<std::string> kinds_in_cell(const std::string& cell) {
  std::vector<std::string> out;
  std::stringstream ks(cell);
  std::string k;
  while (std::getline(ks, k, ',')) {
    k = trim_cell(k);
    if (!k.empty() && k != "-") out.push_back(k);
  }
  return out;
}

}  // namespace reclaim::testing
