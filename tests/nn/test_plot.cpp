// Tests of gg::plot: the SVG is well formed (balanced tags, escaped text), axis ticks step by
// 1, 2 or 5, non-finite points are skipped, decision regions put a known boundary where it is,
// and files are written atomically (an error leaves no temporary file behind).
#include <nn/nn.hpp>
#include <nn/plot/plot.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <vector>

#include <unistd.h>

using gg::Tensor;
namespace plot = gg::plot;
namespace fs = std::filesystem;
using gg::test::read_file;
using gg::test::TempDir;

namespace {

/// Checks the text is one <svg> element whose tags all balance and whose '&' all start one of
/// the five entities; returns a description of the first problem, or "" when there is none.
std::string well_formed(const std::string& s) {
  if (s.rfind("<svg", 0) != 0) return "does not start with <svg";
  std::string trimmed = s;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
  if (trimmed.size() < 6 || trimmed.compare(trimmed.size() - 6, 6, "</svg>") != 0)
    return "does not end with </svg>";
  std::vector<std::string> open;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      bool entity = false;
      for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
        entity = entity || s.compare(i, std::strlen(e), e) == 0;
      if (!entity) return "a raw '&' at " + std::to_string(i);
      continue;
    }
    if (s[i] == '>') return "a raw '>' outside a tag at " + std::to_string(i);
    if (s[i] != '<') continue;
    const std::size_t close = s.find('>', i);
    if (close == std::string::npos) return "an unterminated tag at " + std::to_string(i);
    const std::string tag = s.substr(i + 1, close - i - 1);
    if (tag.find('<') != std::string::npos) return "a '<' inside the tag at " + std::to_string(i);
    if (tag.front() == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "</" + tag.substr(1) + "> closes nothing open";
      open.pop_back();
      if (open.empty() && close + 1 < trimmed.size()) return "content after the root element";
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find_first_of(" \n\t")));
    }
    i = close;
  }
  return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

/// The text of the <g class="name"> group (up to its first "</g>").
std::string group(const std::string& svg, const std::string& name) {
  const std::size_t begin = svg.find("<g class=\"" + name + "\"");
  REQUIRE(begin != std::string::npos);
  return svg.substr(begin, svg.find("</g>", begin) - begin);
}

/// The class colour of every cell (row j from the top, column i) of a region plot, read back from
/// its <rect> runs; every row must be covered exactly once.
std::vector<std::vector<std::string>> cell_colours(const std::string& svg, int g) {
  const std::string regions = group(svg, "regions");
  std::vector<std::vector<std::string>> cells(static_cast<std::size_t>(g), std::vector<std::string>(g));
  const std::regex rect(R"re(<rect x="(\d+)" y="(\d+)" width="(\d+)" height="1" fill="(#[0-9a-f]{6})"/>)re");
  for (auto it = std::sregex_iterator(regions.begin(), regions.end(), rect); it != std::sregex_iterator();
       ++it) {
    const int x = std::stoi((*it)[1]), y = std::stoi((*it)[2]), w = std::stoi((*it)[3]);
    for (int i = x; i < x + w; ++i) {
      auto& cell = cells.at(static_cast<std::size_t>(y)).at(static_cast<std::size_t>(i));
      CHECK(cell.empty());
      cell = (*it)[4];
    }
  }
  for (const auto& row : cells)
    for (const auto& c : row) REQUIRE(!c.empty());
  return cells;
}

} // namespace

TEST_CASE("plot: escape_xml replaces the five special characters and drops control characters") {
  CHECK(plot::escape_xml(R"(a & b < c > d "e" 'f')") ==
        "a &amp; b &lt; c &gt; d &quot;e&quot; &apos;f&apos;");
  CHECK(plot::escape_xml(std::string("x\x01y\tz")) == "x"
                                                      "y\tz");
  CHECK(plot::escape_xml("Perceptrón ñ") == "Perceptrón ñ");
}

TEST_CASE("plot: nice axis ticks step by 1, 2 or 5 times a power of ten and cover the range") {
  using V = std::vector<double>;
  const auto ticks = [](double lo, double hi, int target = 5) {
    return plot::nice_axis(lo, hi, target).ticks;
  };
  CHECK(ticks(0, 1) == V{0, 0.2, 0.4, 0.6, 0.8, 1});
  CHECK(ticks(1, 2000) == V{0, 500, 1000, 1500, 2000});
  CHECK(ticks(-3.7, 12.2) == V{-5, 0, 5, 10, 15});
  CHECK(ticks(0.3, 0.7) == V{0.3, 0.4, 0.5, 0.6, 0.7});
  CHECK(ticks(-1, 1, 4) == V{-1, -0.5, 0, 0.5, 1});
  CHECK(ticks(0.0012, 0.0031) == V{0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035});
  const plot::Axis one = plot::nice_axis(5, 5); // a single value gets a small range around it
  CHECK(one.lo < 5);
  CHECK(one.hi > 5);
  CHECK(one.ticks.size() >= 3);
  CHECK(ticks(0, 0) == V{-1, -0.5, 0, 0.5, 1});
  CHECK(ticks(2, 1) == ticks(1, 2));
  // Extreme ranges still give a few finite ticks.
  for (const auto& [lo, hi] :
       std::vector<std::pair<double, double>>{{-1e308, 1e308}, {0, 1e-320}, {1, 1 + 1e-15}}) {
    const plot::Axis e = plot::nice_axis(lo, hi);
    CHECK(e.ticks.size() >= 2);
    CHECK(e.ticks.size() <= 20);
    for (double t : e.ticks) CHECK(std::isfinite(t));
  }
  const plot::Axis a = plot::nice_axis(13, 87);
  CHECK(a.lo == 10);
  CHECK(a.hi == 90);
  CHECK(a.ticks == V{10, 20, 30, 40, 50, 60, 70, 80, 90});
}

TEST_CASE("plot: log axis ticks are 1-2-5 within two decades and powers of ten beyond") {
  using V = std::vector<double>;
  CHECK(plot::log_axis(0.05, 0.69).ticks == V{0.05, 0.1, 0.2, 0.5, 1});
  CHECK(plot::log_axis(3, 40).ticks == V{2, 5, 10, 20, 50});
  CHECK(plot::log_axis(1e-4, 2).ticks == V{1e-4, 1e-3, 1e-2, 0.1, 1, 10});
  const plot::Axis wide = plot::log_axis(1e-30, 1e2);
  CHECK(wide.ticks.size() <= 10);
  CHECK(wide.lo <= 1e-30);
  CHECK(wide.hi >= 1e2);
  for (double t : plot::log_axis(1e-320, 1e-310).ticks) CHECK((std::isfinite(t) && t > 0));
}

TEST_CASE("plot: tick labels use the decimals the step needs") {
  CHECK(plot::format_tick(0.6000000000000001, 0.2) == "0.6");
  CHECK(plot::format_tick(1500, 500) == "1500");
  CHECK(plot::format_tick(0.0025, 0.0005) == "0.0025");
  CHECK(plot::format_tick(-5.551115123125783e-17, 0.1) == "0");
  CHECK(plot::format_tick(1e-5, 1e-5) == "1e-05");
  CHECK(plot::format_tick(2e6, 1e6) == "2e+06");
}

TEST_CASE("plot: a line chart is well-formed SVG with its escaped title, labels and series names") {
  plot::LineChart chart("Loss <train> & \"test\"", "epoch", "loss");
  chart.add("Adam", {0.7, 0.5, 0.3, 0.2}).add("SGD & momentum", {1, 2, 3}, {0.7, 0.6, 0.55});
  for (int i = 0; i < 11; ++i) chart.add(fmt::format("s{}", i), {1, 2}, {0.1 * i, 0.2});
  const std::string svg = chart.svg();
  CHECK(well_formed(svg) == "");
  CHECK(svg.find("Loss &lt;train&gt; &amp; &quot;test&quot;") != std::string::npos);
  CHECK(svg.find(">SGD &amp; momentum</text>") != std::string::npos);
  CHECK(svg.find(">Adam</text>") != std::string::npos);
  CHECK(svg.find(">epoch</text>") != std::string::npos);
  CHECK(svg.find(">loss</text>") != std::string::npos);
  CHECK(svg.find("(diverged)") == std::string::npos);
  CHECK(count(svg, "<polyline") == 13);
  // Ten distinct colours, then the palette repeats with a dash pattern.
  for (std::size_t i = 0; i < plot::palette_size; ++i)
    for (std::size_t j = 0; j < i; ++j) CHECK(plot::color(i) != plot::color(j));
  CHECK(svg.find("stroke-dasharray") != std::string::npos);
  CHECK_THROWS_AS(chart.add("bad", {1, 2}, {1}), gg::ValueError);

  const std::string log = plot::LineChart("t", "step", "loss").log_y().add("a", {1, 0.1, 0.01}).svg();
  CHECK(well_formed(log) == "");
  CHECK(log.find(">0.01</text>") != std::string::npos);
  CHECK(log.find("loss (log scale)") != std::string::npos);
}

TEST_CASE("plot: NaN and inf points are skipped and a series without finite points is marked diverged") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  plot::LineChart chart("t");
  chart.add("gap", {1, 2, 3, 4, 5, 6}, {1, 2, nan, 4, 5, 6});
  chart.add("blown up", {1, 2, inf});
  chart.add("all NaN", {nan, nan});
  chart.add("empty", {});
  const std::string svg = chart.svg();
  CHECK(well_formed(svg) == "");
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  CHECK(svg.find(">all NaN (diverged)</text>") != std::string::npos);
  CHECK(svg.find(">blown up (diverged)</text>") != std::string::npos);
  CHECK(svg.find(">gap</text>") != std::string::npos);
  CHECK(svg.find(">empty</text>") != std::string::npos);
  // "gap" breaks into two lines at the NaN; "blown up" keeps its two finite points.
  CHECK(count(svg, "<polyline") == 3);
  // On a log axis, zeros and negative values cannot be drawn and are skipped too.
  const std::string log = plot::LineChart().log_y().add("z", {1, 0, -1, 0.5, 0.25}).svg();
  CHECK(well_formed(log) == "");
  CHECK(count(log, "<circle") == 3);
}

TEST_CASE("plot: a long curve is drawn with the points its shape needs") {
  // Points within a quarter pixel of the drawn line are dropped: 10,000 points on a straight line
  // are two points, a parabola keeps some dozens, a sharp corner is kept.
  std::vector<double> line(10000), curve(10000);
  for (std::size_t i = 0; i < line.size(); ++i) {
    line[i] = 3.0 + 0.5 * static_cast<double>(i);
    const double t = static_cast<double>(i) / 9999.0 - 0.5;
    curve[i] = t * t;
  }
  const auto points_of = [](const std::string& svg) {
    const std::size_t from = svg.find("<polyline points=\"") + 18;
    const std::string pts = svg.substr(from, svg.find('"', from) - from);
    return std::count(pts.begin(), pts.end(), ',');
  };
  const std::string straight = plot::LineChart("t").add("line", line).svg();
  CHECK(well_formed(straight) == "");
  CHECK(points_of(straight) == 2);
  const std::string bent = plot::LineChart("t").add("parabola", curve).svg();
  CHECK(points_of(bent) > 10);
  CHECK(points_of(bent) < 500);
  // A sharp corner is kept: down 9,999 steps then one step up.
  std::vector<double> v(10000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = i + 1 < v.size() ? -static_cast<double>(i) : 0.0;
  CHECK(points_of(plot::LineChart("t").add("corner", v).svg()) == 3);
}

TEST_CASE("plot: series styles give curves on top of each other distinct dashes, colours and markers") {
  // Two identical long curves (as GD's under SGD's) and a third kept out of the legend.
  std::vector<double> y(1000);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = 1.0 / (1.0 + static_cast<double>(i));
  plot::LineChart chart("t");
  chart.add("a", y, {.marker = plot::Marker::square});
  chart.add("b", y,
            {.color = "#123456", .dash = plot::Dash::dashed, .marker = plot::Marker::cross, .width = 3});
  chart.add("background", y, {.color = "gray", .in_legend = false});
  const std::string svg = chart.svg();
  CHECK(well_formed(svg) == "");
  CHECK(svg.find("<g stroke=\"#1f77b4\" stroke-width=\"2\">") !=
        std::string::npos); // a: palette colour 0, solid
  CHECK(svg.find("<g stroke=\"#123456\" stroke-width=\"3\" stroke-dasharray=\"7 4\">") != std::string::npos);
  CHECK(svg.find("<g stroke=\"gray\" stroke-width=\"2\">") != std::string::npos);
  const std::string legend = svg.substr(svg.find("<g class=\"legend\""));
  CHECK(legend.find(">a</text>") != std::string::npos);
  CHECK(legend.find(">b</text>") != std::string::npos);
  CHECK(legend.find("background") == std::string::npos);
  CHECK(count(legend, "<polygon") == 1); // a's square swatch marker
  CHECK(count(legend, "<path") == 1);    // b's cross

  // Markers every ~60 px along each long curve, at different places for the two curves; none for
  // the background series, which chose none.
  const std::size_t first = svg.find("<g class=\"markers\">"),
                    second = svg.find("<g class=\"markers\">", first + 1);
  REQUIRE(second != std::string::npos);
  CHECK(svg.find("<g class=\"markers\">", second + 1) == std::string::npos);
  const std::string a_marks = svg.substr(first, svg.find("</g>", first) - first);
  const std::string b_marks = svg.substr(second, svg.find("</g>", second) - second);
  const std::size_t squares = count(a_marks, "<polygon"), crosses = count(b_marks, "<path");
  CHECK(squares >= 8);
  CHECK(squares <= 40);
  CHECK(crosses + 1 >= squares);
  CHECK(crosses <= squares + 1);
  // The first marker's centre: a square's first corner is 3.3 px up-left of it, a cross's 3.5.
  const auto first_centre = [](const std::string& marks, double corner) {
    std::smatch m;
    REQUIRE(std::regex_search(marks, m, std::regex(R"((-?[0-9.]+)[, ](-?[0-9.]+))")));
    return std::pair{std::stod(m[1]) + corner, std::stod(m[2]) + corner};
  };
  const auto [ax, ay] = first_centre(a_marks, 3.3);
  const auto [bx, by] = first_centre(b_marks, 3.5);
  CHECK(std::hypot(ax - bx, ay - by) > 10);

  // A short series gets its marker on every point (circles when it names none).
  const std::string shortly = plot::LineChart().add("s", {3, 2, 1}, {.marker = plot::Marker::diamond}).svg();
  CHECK(count(group(shortly, "markers"), "<polygon") == 3);
  CHECK(count(group(plot::LineChart().add("s", {3, 2, 1}).svg(), "markers"), "<circle") == 3);
  CHECK_THROWS_AS(plot::LineChart().add("w", {1, 2}, plot::SeriesStyle{.width = 0}), gg::ValueError);
}

TEST_CASE("plot: fixed axis ranges and a subtitle") {
  plot::LineChart chart("Adam <1>", "step", "loss");
  chart.add("a", {0.5, 0.4, 0.3}).x_range(0, 10).y_range(0, 2).subtitle("m <- b1 m + (1-b1) g\nv & w");
  const std::string svg = chart.svg();
  CHECK(well_formed(svg) == "");
  const std::string labels = group(svg, "tick-labels");
  CHECK(labels.find(">10</text>") != std::string::npos); // the range, not the data's 1..3
  CHECK(labels.find(">2.0</text>") != std::string::npos);
  CHECK(count(svg, "class=\"subtitle\"") == 2);
  CHECK(svg.find(">m &lt;- b1 m + (1-b1) g</text>") != std::string::npos);
  CHECK(svg.find(">v &amp; w</text>") != std::string::npos);
  CHECK_THROWS_AS(plot::LineChart().x_range(1, 1), gg::ValueError);
  CHECK_THROWS_AS(plot::LineChart().y_range(0, std::numeric_limits<double>::infinity()), gg::ValueError);
  CHECK_THROWS_AS(plot::LineChart().log_y().y_range(0, 1).add("a", {1, 2}).svg(), gg::ValueError);
}

TEST_CASE("plot: small multiples place charts in a grid with ids of their own") {
  std::vector<plot::LineChart> charts;
  for (int i = 0; i < 3; ++i) {
    charts.emplace_back(fmt::format("panel {}", i));
    charts.back().add("a", {1, 2, 3}).size(300, 200 + 100 * (i % 2));
  }
  const std::string svg = plot::small_multiples_svg(charts, 2, "all & one");
  CHECK(well_formed(svg) == "");
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"540\"", 0) == 0);
  CHECK(svg.find("<svg x=\"0.0\" y=\"40.0\" width=\"300\" height=\"200\"") != std::string::npos);
  CHECK(svg.find("<svg x=\"300.0\" y=\"40.0\" width=\"300\" height=\"300\"") != std::string::npos);
  CHECK(svg.find("<svg x=\"0.0\" y=\"340.0\" width=\"300\" height=\"200\"") != std::string::npos);
  for (int i = 0; i < 3; ++i) {
    CHECK(count(svg, fmt::format("id=\"p{}-plot-area\"", i)) == 1);
    CHECK(count(svg, fmt::format("url(#p{}-plot-area)", i)) == 1);
  }
  CHECK(svg.find(">all &amp; one</text>") != std::string::npos);
  CHECK_THROWS_AS(plot::small_multiples_svg({}, 2), gg::ValueError);
  CHECK_THROWS_AS(plot::small_multiples_svg(charts, 0), gg::ValueError);
}

TEST_CASE("plot: decision regions of class = x1 > 0 put the boundary at x1 = 0") {
  gg::Rng rng(1);
  const Tensor x = Tensor::rand({40, 2}, rng, gg::f64, -1, 1);
  Tensor y = Tensor::empty({40});
  for (std::int64_t i = 0; i < 40; ++i) y.set_flat(i, x.flat(2 * i) > 0);
  const auto ids = [](const Tensor& p) {
    Tensor c = Tensor::empty({p.shape()[0]});
    for (std::int64_t i = 0; i < p.shape()[0]; ++i) c.set_flat(i, p.flat(2 * i) > 0);
    return c;
  };
  const auto scores = [](const Tensor& p) { // [-x1, x1]: argmax is class 1 where x1 > 0
    Tensor s = Tensor::empty({p.shape()[0], 2});
    for (std::int64_t i = 0; i < p.shape()[0]; ++i)
      s.set_flat(2 * i, -p.flat(2 * i)), s.set_flat(2 * i + 1, p.flat(2 * i));
    return s;
  };
  plot::RegionOptions o;
  o.title = "x1 > 0";
  o.grid = 100;
  o.bounds = std::array<double, 4>{-1, 1, -2, 2};
  o.class_names = {"left", "right & up"};
  o.lines = {{1, 0, 0, "x1 = 0"}};
  for (const plot::Classifier& f : {plot::Classifier(ids), plot::Classifier(scores)}) {
    const std::string svg = plot::decision_regions_svg(f, x, y, o);
    CHECK(well_formed(svg) == "");
    CHECK(svg.find(">right &amp; up</text>") != std::string::npos);
    CHECK(svg.find(">x1 = 0</text>") != std::string::npos);
    const auto cells = cell_colours(svg, 100);
    // Cell i's centre is -1 + (i + 0.5) * 0.02: columns 0..49 are left of 0, 50..99 right.
    for (const auto& row : cells) {
      CHECK(row[0] == plot::light_color(0));
      CHECK(row[49] == plot::light_color(0));
      CHECK(row[50] == plot::light_color(1));
      CHECK(row[99] == plot::light_color(1));
    }
    // Merged runs: two rects per row, not 100.
    CHECK(count(group(svg, "regions"), "<rect") == 200);
    // The points on top, dark, in their own class's colour.
    std::size_t right = 0;
    for (std::int64_t i = 0; i < 40; ++i) right += y.flat(i) == 1;
    const std::string points = group(svg, "points");
    CHECK(count(points, "<circle") == 40);
    CHECK(count(points, "fill=\"" + plot::color(1) + "\"") == right);
    CHECK(count(points, "fill=\"" + plot::color(0) + "\"") == 40 - right);
  }
}

TEST_CASE("plot: decision regions follow a diagonal boundary and default to the points' range") {
  const Tensor x({-1, -1, 1, 1, -1, 1, 1, -1}, {4, 2});
  const Tensor y({0, 0, 1, 1}, {4});
  const auto above = [](const Tensor& p) { // class 1 above the diagonal x2 = x1
    Tensor c = Tensor::empty({p.shape()[0]});
    for (std::int64_t i = 0; i < p.shape()[0]; ++i) c.set_flat(i, p.flat(2 * i + 1) > p.flat(2 * i));
    return c;
  };
  plot::RegionOptions o;
  o.grid = 20;
  const auto cells = cell_colours(plot::decision_regions_svg(above, x, y, o), 20);
  // The bounds are [-1.2, 1.2] on both axes, so cell (row j, column i) is above the diagonal
  // exactly when i + j < 19.
  CHECK(cells[0][0] == plot::light_color(1));
  CHECK(cells[19][19] == plot::light_color(0));
  CHECK(cells[1][19] == plot::light_color(0));
  CHECK(cells[19][1] == plot::light_color(0));
  CHECK(cells[5][3] == plot::light_color(1));
  CHECK(cells[10][12] == plot::light_color(0));
  CHECK(cells[0][18] == plot::light_color(1));
}

TEST_CASE("plot: decision regions of points near the largest doubles, or NaN, hold no NaN coordinate") {
  const auto by_x1 = [](const Tensor& p) { // a classifier that sees NaN and huge inputs, as a diverged model
    Tensor c = Tensor::empty({p.shape()[0]});
    for (std::int64_t i = 0; i < p.shape()[0]; ++i) c.set_flat(i, p.flat(2 * i) > 0);
    return c;
  };
  const double big = std::numeric_limits<double>::max();
  for (const Tensor& x : {Tensor({-big, -big, big, big, 0, 1, NAN, 2}, {4, 2}),
                          Tensor({big, big, big / 2, big, big, big / 3, 1e308, 1e308}, {4, 2}),
                          Tensor({NAN, NAN, INFINITY, -INFINITY, 1e-300, 0, 0, 0}, {4, 2})}) {
    INFO(x.str());
    const std::string svg = plot::decision_regions_svg(by_x1, x, Tensor({0, 1, 0, 1}, {4}), {});
    CHECK(well_formed(svg).empty());
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("inf") == std::string::npos);
  }
}

TEST_CASE("plot: decision regions draw held-out test points as diamonds, inside the area they widen") {
  const Tensor x({-1, -1, 1, 1}, {2, 2}), y({0, 1}, {2});
  const auto by_x1 = [](const Tensor& p) {
    Tensor c = Tensor::empty({p.shape()[0]});
    for (std::int64_t i = 0; i < p.shape()[0]; ++i) c.set_flat(i, p.flat(2 * i) > 0);
    return c;
  };
  plot::RegionOptions o;
  o.test_x = Tensor({3, 0, -0.5, 0.5, 0.5, -0.5}, {3, 2});
  o.test_y = Tensor({1, 0, 1}, {3});
  const std::string svg = plot::decision_regions_svg(by_x1, x, y, o);
  CHECK(well_formed(svg).empty());
  CHECK(count(group(svg, "points"), "<circle") == 2);
  const std::string tests = group(svg, "test-points");
  CHECK(count(tests, "<path") == 3); // x1 = 3 is inside: the area covers the test points too
  CHECK(count(tests, "fill=\"" + plot::color(1) + "\"") == 2);
  CHECK(svg.find(">test point</text>") != std::string::npos);
  CHECK(plot::decision_regions_svg(by_x1, x, y, {}).find("test") == std::string::npos);
  o.test_y = Tensor({1, 0}, {2});
  CHECK_THROWS_AS(plot::decision_regions_svg(by_x1, x, y, o), gg::ValueError);
}

TEST_CASE("plot: decision regions reject points, classes and classifier results of the wrong shape") {
  const Tensor x = Tensor::zeros({3, 2}), y = Tensor::zeros({3});
  const auto ok = [](const Tensor& p) { return Tensor::zeros({p.shape()[0]}); };
  CHECK_THROWS_AS(plot::decision_regions_svg(ok, Tensor::zeros({3, 3}), y), gg::ValueError);
  CHECK_THROWS_AS(plot::decision_regions_svg(ok, x, Tensor::zeros({2})), gg::ValueError);
  CHECK_THROWS_AS(plot::decision_regions_svg(ok, x, Tensor({0, 1, -1}, {3})), gg::ValueError);
  CHECK_THROWS_AS(plot::decision_regions_svg([](const Tensor&) { return Tensor::zeros({5}); }, x, y),
                  gg::ValueError);
  CHECK_THROWS_AS(
      plot::decision_regions_svg([](const Tensor& p) { return Tensor::full({p.shape()[0]}, 0.5); }, x, y),
      gg::ValueError);
  plot::RegionOptions bad;
  bad.bounds = std::array<double, 4>{1, -1, 0, 1};
  CHECK_THROWS_AS(plot::decision_regions_svg(ok, x, y, bad), gg::ValueError);
  // The legend lists the classes that occur, not every id below the largest.
  const std::string seven = plot::decision_regions_svg(
      [](const Tensor& p) { return Tensor::full({p.shape()[0]}, 7); }, x, Tensor::full({3}, 7));
  CHECK(count(seven.substr(seven.find("<g class=\"legend\"")), "<text") == 1);
  CHECK(seven.find(">class 7</text>") != std::string::npos);
  // Without classes, points are drawn in one neutral colour.
  CHECK(well_formed(plot::decision_regions_svg(ok, x, Tensor())) == "");
}

TEST_CASE("plot: files are written whole, and a failed write throws IOError and leaves no temporary file") {
  TempDir dir("plot");
  const fs::path file = dir.path / "chart.svg";
  plot::LineChart chart("t");
  chart.add("a", {1, 2, 3});
  chart.save(file.string());
  CHECK(read_file(file) == chart.svg());
  chart.add("b", {3, 2, 1});
  chart.save(file.string()); // replaces the old file
  CHECK(read_file(file) == chart.svg());

  // The target is a directory: refused before anything is written.
  fs::create_directory(dir.path / "taken.svg");
  try {
    chart.save((dir.path / "taken.svg").string());
    FAIL("no IOError");
  } catch (const gg::IOError& e) {
    CHECK_THAT(e.what(), Catch::Contains("taken.svg"));
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"chart.svg", "taken.svg"});

  // A directory that does not exist.
  const std::string missing = (dir.path / "no-such-dir" / "x.svg").string();
  try {
    gg::write_atomically(missing, "x");
    FAIL("no IOError");
  } catch (const gg::IOError& e) {
    CHECK_THAT(e.what(), Catch::Contains(missing) && Catch::Contains("No such file"));
  }
  CHECK_THROWS_AS(plot::decision_regions(
                      missing, [](const Tensor& p) { return Tensor::zeros({p.shape()[0]}); },
                      Tensor::zeros({1, 2}), Tensor::zeros({1})),
                  gg::IOError);
}
