// `reclaim bench --plot`: the SVG must be well-formed XML (parsed back with
// Boost.PropertyTree's XML reader) with exactly one series per scenario.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "reports/svg_plot.hpp"

namespace reclaim::report {
namespace {

namespace pt = boost::property_tree;

std::string render(const std::vector<LatencySeries>& series) {
  char* buf = nullptr;
  std::size_t size = 0;
  std::FILE* f = ::open_memstream(&buf, &size);
  write_latency_svg(f, series);
  std::fclose(f);
  std::string out(buf, size);
  std::free(buf);
  return out;
}

pt::ptree parse(const std::string& xml) {
  std::istringstream in(xml);
  pt::ptree tree;
  pt::read_xml(in, tree);  // throws xml_parser_error on malformed XML
  return tree;
}

// Every <g class="series"> directly under <svg>, by data-name.
std::vector<std::string> series_names(const pt::ptree& doc) {
  std::vector<std::string> names;
  for (const auto& [tag, child] : doc.get_child("svg"))
    if (tag == "g" && child.get("<xmlattr>.class", "") == "series") names.push_back(child.get("<xmlattr>.data-name", ""));
  return names;
}

std::size_t count_children(const pt::ptree& node, const std::string& tag) {
  std::size_t n = 0;
  for (const auto& [t, c] : node)
    if (t == tag) ++n;
  return n;
}

TEST(BenchSvgTest, WellFormedWithOneSeriesPerScenario) {
  std::vector<LatencySeries> series{{"fit/setup/sigkill", {0.5, 0.6, 0.7, 0.55}},
                                    {"fit/train_batch#1/exception", {1.8, 2.1, 1.9}},
                                    {"test/test_batch#1/pg-sigterm", {3.0}}};
  const std::string svg = render(series);
  pt::ptree doc;
  ASSERT_NO_THROW(doc = parse(svg)) << svg;
  EXPECT_EQ(doc.get<std::string>("svg.<xmlattr>.xmlns"), "http://www.w3.org/2000/svg");
  EXPECT_THAT(series_names(doc),
              ::testing::ElementsAre("fit/setup/sigkill", "fit/train_batch#1/exception", "test/test_batch#1/pg-sigterm"));
  // A dot per sample in each series.
  std::size_t i = 0;
  for (const auto& [tag, child] : doc.get_child("svg")) {
    if (tag == "g" && child.get("<xmlattr>.class", "") == "series") {
      EXPECT_EQ(count_children(child, "circle"), series[i++].samples_ms.size());
    }
  }
}

TEST(BenchSvgTest, NamesAreEscaped) {
  const std::string svg = render({{"a<b>&\"c'", {1.0}}});
  pt::ptree doc;
  ASSERT_NO_THROW(doc = parse(svg)) << svg;
  EXPECT_THAT(series_names(doc), ::testing::ElementsAre("a<b>&\"c'"));
}

TEST(BenchSvgTest, EmptySeriesAndWideRangesStayWellFormed) {
  // 0.3 ms next to 85 ms: a log axis; an empty series (a failed scenario); zeros.
  const std::string svg = render({{"fast", {0.3, 0.31}}, {"failed", {}}, {"slow", {80.2, 85.0}}, {"zero", {0.0}}});
  pt::ptree doc;
  ASSERT_NO_THROW(doc = parse(svg)) << svg;
  EXPECT_EQ(series_names(doc).size(), 4u);
  EXPECT_THAT(svg, ::testing::HasSubstr("log scale"));
  EXPECT_THAT(svg, ::testing::HasSubstr("no samples"));
  EXPECT_THAT(svg, ::testing::Not(::testing::HasSubstr("nan")));
  EXPECT_THAT(svg, ::testing::Not(::testing::HasSubstr("inf")));
  // No series at all is still a document.
  ASSERT_NO_THROW(parse(render({})));
  EXPECT_TRUE(series_names(parse(render({}))).empty());
}

TEST(BenchSvgTest, FileIsPublishedAtomically) {
  char dir[] = "/tmp/reclaim-svg-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/plot.svg";
  EXPECT_FALSE(write_latency_svg_file(path, {{"fit/none", {1.0, 2.0}}}));
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(series_names(parse(text.str())).size(), 1u);
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0);
  EXPECT_TRUE(write_latency_svg_file(std::string(dir) + "/missing/plot.svg", {}));
  std::remove(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace reclaim::report
