// Latency distributions as a picture: a self-contained SVG written by the
// harness (no plotting tool), one row per scenario. People read a
// distribution faster from a picture than from a percentile table.
#pragma once

#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

namespace reclaim::report {

// One scenario's samples (ms). An empty series is drawn as "no samples".
struct LatencySeries {
  std::string name;
  std::vector<double> samples_ms;
};

struct PlotOptions {
  std::string title = "reclaim bench: cleanup latency";
  std::string x_label = "fault \u2192 all reclaimed (ms)";
};

// Writes a standalone SVG document to `out` (not closed): a title, one
// `<g class="series" data-name="…">` per series in the given order — label,
// whisker min..max, box p25..p75, a bar at the median, and a dot per sample —
// and a shared x axis with ticks and `x_label`. The axis is linear from 0,
// or logarithmic when the samples span more than a factor of 20, so a 0.5 ms
// and an 80 ms scenario are both readable. Every name is XML-escaped.
// Write errors are the stream's (std::ferror).
void write_latency_svg(std::FILE* out, const std::vector<LatencySeries>& series, const PlotOptions& options = {});

// The same, published atomically at `path` (written to `path.tmp`, renamed).
// Returns the error of creating, writing or renaming the file.
std::error_code write_latency_svg_file(const std::string& path, const std::vector<LatencySeries>& series,
                                       const PlotOptions& options = {});

}  // namespace reclaim::report
