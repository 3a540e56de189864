#include "reports/svg_plot.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "reports/atomic_file.hpp"
#include "reports/xml_writer.hpp"

namespace reclaim::report {

namespace {

constexpr double kWidth = 960;
constexpr double kRowHeight = 26;
constexpr double kTop = 48;       // title
constexpr double kBottom = 64;    // axis, its label, the legend
constexpr double kRight = 24;
constexpr double kCharWidth = 6.6;  // 11px monospace, for the label column

// Quantile with linear interpolation: for drawing a box, not for reporting.
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

std::string num(double v) { return fmt::format("{:.2f}", v); }

std::string tick_label(double v) {
  if (v == 0) return "0";
  if (v >= 100) return fmt::format("{:.0f}", v);
  if (v >= 1) return fmt::format("{:g}", std::round(v * 100) / 100);
  return fmt::format("{:g}", v);
}

// Maps latencies to x pixels and chooses the ticks.
class Axis {
 public:
  Axis(double lo_px, double hi_px, const std::vector<LatencySeries>& series) : lo_px_(lo_px), hi_px_(hi_px) {
    double max = 0, min_positive = 0;
    for (const auto& s : series)
      for (double v : s.samples_ms) {
        max = std::max(max, v);
        if (v > 0 && (min_positive == 0 || v < min_positive)) min_positive = v;
      }
    if (max <= 0) max = 1;
    log_ = min_positive > 0 && max / min_positive > 20;
    if (log_) {
      lo_ = std::pow(10, std::floor(std::log10(min_positive)));
      hi_ = std::pow(10, std::ceil(std::log10(max)));
      for (double decade = lo_; decade <= hi_ * 1.0001; decade *= 10)
        for (double m : {1.0, 2.0, 5.0})
          if (decade * m <= hi_ * 1.0001) ticks_.push_back(decade * m);
    } else {
      // A "nice" step (1, 2 or 5 × 10^k) giving about five intervals.
      const double raw = max / 5;
      const double mag = std::pow(10, std::floor(std::log10(raw)));
      double step = mag;
      for (double m : {1.0, 2.0, 5.0, 10.0})
        if (raw <= m * mag) {
          step = m * mag;
          break;
        }
      lo_ = 0;
      hi_ = std::ceil(max / step) * step;
      for (int i = 0; i * step <= hi_ + step / 1e6; ++i) ticks_.push_back(i * step);
    }
  }
  double x(double v) const {
    double f;
    if (log_) f = (std::log10(std::max(v, lo_)) - std::log10(lo_)) / (std::log10(hi_) - std::log10(lo_));
    else f = (v - lo_) / (hi_ - lo_);
    return lo_px_ + std::clamp(f, 0.0, 1.0) * (hi_px_ - lo_px_);
  }
  const std::vector<double>& ticks() const { return ticks_; }
  bool logarithmic() const { return log_; }

 private:
  double lo_px_, hi_px_;
  double lo_ = 0, hi_ = 1;
  bool log_ = false;
  std::vector<double> ticks_;
};

void line(XmlWriter& w, double x1, double y1, double x2, double y2, const char* cls) {
  w.scoped_element("line")
      .attribute("class", cls)
      .attribute("x1", num(x1))
      .attribute("y1", num(y1))
      .attribute("x2", num(x2))
      .attribute("y2", num(y2));
}

void text(XmlWriter& w, double x, double y, const char* anchor, const char* cls, const std::string& s) {
  w.scoped_element("text")
      .attribute("class", cls)
      .attribute("x", num(x))
      .attribute("y", num(y))
      .attribute("text-anchor", anchor)
      .text(s);
}

}  // namespace

void write_latency_svg(std::FILE* out, const std::vector<LatencySeries>& series, const PlotOptions& options) {
  std::size_t longest = 8;
  for (const auto& s : series) longest = std::max(longest, s.name.size());
  const double left = std::clamp(static_cast<double>(longest) * kCharWidth + 16, 120.0, 420.0);
  const double plot_h = std::max<double>(1, static_cast<double>(series.size())) * kRowHeight;
  const double height = kTop + plot_h + kBottom;
  const Axis axis(left, kWidth - kRight, series);

  XmlWriter w(out);
  w.declaration();
  auto svg = w.scoped_element("svg");
  svg.attribute("xmlns", "http://www.w3.org/2000/svg")
      .attribute("width", static_cast<long long>(kWidth))
      .attribute("height", static_cast<long long>(std::ceil(height)))
      .attribute("viewBox", fmt::format("0 0 {} {}", kWidth, std::ceil(height)))
      .attribute("font-family", "monospace")
      .attribute("font-size", 11);
  w.scoped_element("style").text(
      ".grid{stroke:#ddd}.axis{stroke:#333}.whisker{stroke:#555}.box{fill:#9ecae1;stroke:#3182bd}"
      ".median{stroke:#08306b;stroke-width:2}.sample{fill:#e6550d;fill-opacity:0.45}.title{font-size:14px}"
      ".empty{fill:#a00}");
  w.scoped_element("rect").attribute("width", "100%").attribute("height", "100%").attribute("fill", "white");
  text(w, kWidth / 2, 22, "middle", "title", options.title);

  // Grid and axis first, so the series are drawn over them.
  {
    auto g = w.scoped_element("g");
    g.attribute("class", "x-axis");
    const double axis_y = kTop + plot_h;
    for (double t : axis.ticks()) {
      line(w, axis.x(t), kTop, axis.x(t), axis_y, "grid");
      line(w, axis.x(t), axis_y, axis.x(t), axis_y + 4, "axis");
      text(w, axis.x(t), axis_y + 16, "middle", "tick", tick_label(t));
    }
    line(w, left, axis_y, kWidth - kRight, axis_y, "axis");
    text(w, (left + kWidth - kRight) / 2, axis_y + 34, "middle", "label",
         options.x_label + (axis.logarithmic() ? " \u2014 log scale" : ""));
    text(w, left, axis_y + 52, "start", "legend",
         "box: p25\u2013p75, bar: median, whiskers: min\u2013max, dots: every run");
  }

  for (std::size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const double y = kTop + (static_cast<double>(i) + 0.5) * kRowHeight;
    auto g = w.scoped_element("g");
    g.attribute("class", "series").attribute("data-name", s.name);
    w.scoped_element("title").text(s.name);
    text(w, left - 8, y + 4, "end", "name", s.name);
    if (s.samples_ms.empty()) {
      text(w, left + 4, y + 4, "start", "empty", "no samples");
      continue;
    }
    std::vector<double> v = s.samples_ms;
    std::sort(v.begin(), v.end());
    const double box_h = kRowHeight * 0.5;
    line(w, axis.x(v.front()), y, axis.x(v.back()), y, "whisker");
    const double q1 = axis.x(quantile(v, 0.25)), q3 = axis.x(quantile(v, 0.75));
    w.scoped_element("rect")
        .attribute("class", "box")
        .attribute("x", num(q1))
        .attribute("y", num(y - box_h / 2))
        .attribute("width", num(std::max(1.0, q3 - q1)))
        .attribute("height", num(box_h));
    const double med = axis.x(quantile(v, 0.5));
    line(w, med, y - box_h / 2, med, y + box_h / 2, "median");
    // Samples spread vertically by their rank (deterministic, no RNG), so
    // equal values do not hide each other entirely.
    for (std::size_t k = 0; k < v.size(); ++k) {
      const double dy = (static_cast<double>(k % 5) - 2) * box_h / 6;
      w.scoped_element("circle")
          .attribute("class", "sample")
          .attribute("cx", num(axis.x(v[k])))
          .attribute("cy", num(y + dy))
          .attribute("r", "2");
    }
  }
}

std::error_code write_latency_svg_file(const std::string& path, const std::vector<LatencySeries>& series,
                                       const PlotOptions& options) {
  AtomicFile file(path, ".tmp");
  if (!file.is_open()) return file.error();
  write_latency_svg(file.stream(), series, options);
  return file.commit();
}

}  // namespace reclaim::report
