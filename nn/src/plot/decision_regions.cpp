// gg::plot::decision_regions: the classifier evaluated once on a grid, each row of cells merged
// into runs of one class, the points and lines on top.
#include "drawing.hpp"

#include <nn/io/atomic_file.hpp>
#include <nn/metrics.hpp>
#include <nn/plot/decision_regions.hpp>

#include <autodiff/error.hpp>
#include <autodiff/var.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace gg::plot {

using namespace detail;

std::string decision_regions_svg(const Classifier& classify, const Tensor& x, const Tensor& y,
                                 const RegionOptions& options) {
  if (!classify) throw ValueError("decision_regions: no classifier given");
  if (!x.defined() || x.rank() != 2 || x.shape()[1] != 2)
    throw ValueError(fmt::format("decision_regions: points must be [n, 2], got {}",
                                 x.defined() ? x.shape().str() : "an undefined tensor"));
  const std::int64_t n = x.shape()[0];
  if (y.defined() && (y.rank() != 1 || y.shape()[0] != n))
    throw ValueError(fmt::format("decision_regions: classes must be [{}] for points {}, got {}", n,
                                 x.shape().str(), y.shape().str()));
  const int g = options.grid;
  if (g < 1 || g > 2000)
    throw ValueError(fmt::format("decision_regions: grid must be in [1, 2000], got {}", g));
  if (options.width < 200 || options.height < 150 || options.width > 20000 || options.height > 20000)
    throw ValueError(fmt::format("decision_regions: {} x {} pixels is outside 200 x 150 .. 20000 x 20000",
                                 options.width, options.height));
  const Tensor &tx = options.test_x, &ty = options.test_y;
  const bool tests = tx.defined();
  if (tests && (tx.rank() != 2 || tx.shape()[1] != 2 || !ty.defined() || ty.rank() != 1 ||
                ty.shape()[0] != tx.shape()[0]))
    throw ValueError(
        fmt::format("decision_regions: test points must be [m, 2] with classes [m], got {} and {}",
                    tx.shape().str(), ty.defined() ? ty.shape().str() : "none"));
  // The training points, then the test points: their coordinates and classes.
  std::vector<double> xs = x.to_vector();
  std::vector<double> ys = y.defined() ? y.to_vector() : std::vector<double>(static_cast<std::size_t>(n), 0);
  const std::int64_t all = n + (tests ? tx.shape()[0] : 0);
  if (tests) {
    const std::vector<double> more = tx.to_vector(), classes = ty.to_vector();
    xs.insert(xs.end(), more.begin(), more.end());
    ys.insert(ys.end(), classes.begin(), classes.end());
  }
  for (std::int64_t i = 0; i < all; ++i) {
    const double c = ys[static_cast<std::size_t>(i)];
    if (!(c >= 0 && c < 1e6 && c == std::floor(c)))
      throw ValueError(fmt::format("decision_regions: class of {} point {} is {}, not a class id",
                                   i < n ? "" : "test", i < n ? i : i - n, c));
  }

  // The area: given bounds, or the points' range plus 10% on each side.
  std::array<double, 4> b{-1, 1, -1, 1};
  if (options.bounds) {
    b = *options.bounds;
    for (int k = 0; k < 2; ++k)
      if (!std::isfinite(b[2 * k]) || !std::isfinite(b[2 * k + 1]) || !(b[2 * k] < b[2 * k + 1]))
        throw ValueError(fmt::format("decision_regions: bounds of x{} are [{}, {}], not a finite range",
                                     k + 1, b[2 * k], b[2 * k + 1]));
  } else if (all > 0) {
    for (int k = 0; k < 2; ++k) {
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (std::int64_t i = 0; i < all; ++i) {
        const double v = xs[static_cast<std::size_t>(2 * i + k)];
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
      }
      if (!std::isfinite(lo)) lo = -1, hi = 1;
      // Points near ±DBL_MAX made hi - lo, and so every coordinate, infinite or NaN ("-nan" in the
      // SVG): the area stops at ±1e300 (as nice_axis), and points beyond it are left out as clipped.
      constexpr double limit = 1e300;
      lo = std::clamp(lo, -limit, limit), hi = std::clamp(hi, -limit, limit);
      const double pad = hi > lo ? 0.1 * (hi - lo) : std::max(1.0, 0.1 * std::abs(lo));
      b[2 * k] = lo - pad, b[2 * k + 1] = hi + pad;
    }
  }

  // The classifier on every cell's centre; row 0 is the top (largest x2), as the picture's rows.
  const auto cells = static_cast<std::int64_t>(g) * g;
  Tensor grid = Tensor::empty({cells, 2});
  double* p = grid.data<double>();
  const double dx = (b[1] - b[0]) / g, dy = (b[3] - b[2]) / g;
  for (int j = 0; j < g; ++j)
    for (int i = 0; i < g; ++i) {
      *p++ = b[0] + (i + 0.5) * dx;
      *p++ = b[3] - (j + 0.5) * dy;
    }
  Tensor out;
  {
    NoGrad no_grad;
    out = classify(grid);
  }
  if (!out.defined() || out.rank() < 1 || out.rank() > 2 || out.shape()[0] != cells)
    throw ValueError(fmt::format("decision_regions: the classifier returned {} for {} points [{}, 2]; "
                                 "expected [{}, k] scores or [{}] class ids",
                                 out.defined() ? out.shape().str() : "an undefined tensor", cells, cells,
                                 cells, cells));
  const std::vector<double> ids = metrics::class_ids(out).to_vector();
  // The legend lists the named classes and those that occur (predicted or among the points).
  std::size_t classes = options.class_names.size();
  std::vector<bool> present(classes, true);
  const auto occurs = [&](double id) {
    const auto c = static_cast<std::size_t>(id);
    if (c >= present.size()) present.resize(c + 1, false);
    present[c] = true;
    classes = std::max(classes, c + 1);
  };
  for (std::size_t c = 0; c < ids.size(); ++c) {
    if (!(ids[c] >= 0 && ids[c] < 1e6 && ids[c] == std::floor(ids[c])))
      throw ValueError(fmt::format("decision_regions: the classifier returned class {} for point ({}, {})",
                                   ids[c], grid.flat(2 * static_cast<std::int64_t>(c)),
                                   grid.flat(2 * static_cast<std::int64_t>(c) + 1)));
    if (c == 0 || ids[c] != ids[c - 1]) occurs(ids[c]);
  }
  if (y.defined() || tests)
    for (double c : ys) occurs(c);

  std::vector<LegendEntry> entries;
  for (std::size_t c = 0; c < classes; ++c)
    if (present[c])
      entries.push_back(
          {fmt::format("<rect x=\"0\" y=\"0\" width=\"24\" height=\"12\" fill=\"{}\" "
                       "stroke=\"#999\" stroke-width=\"0.5\"/><circle cx=\"12\" cy=\"6\" r=\"3.5\" "
                       "fill=\"{}\" stroke=\"#222\" stroke-width=\"0.7\"/>",
                       light_color(c), color(c)),
           c < options.class_names.size() ? options.class_names[c] : fmt::format("class {}", c)});
  for (std::size_t l = 0; l < options.lines.size(); ++l)
    entries.push_back({fmt::format("<line x1=\"0\" y1=\"6\" x2=\"24\" y2=\"6\" stroke=\"{}\" "
                                   "stroke-width=\"2\" stroke-dasharray=\"6 3\"/>",
                                   color(classes + l)),
                       options.lines[l].label});
  if (tests) {
    entries.push_back({"<circle cx=\"12\" cy=\"6\" r=\"3.5\" fill=\"#fff\" stroke=\"#222\" "
                       "stroke-width=\"0.7\"/>",
                       "training point"});
    entries.push_back({"<path d=\"M12 0.5L17.5 6L12 11.5L6.5 6Z\" fill=\"#fff\" stroke=\"#222\" "
                       "stroke-width=\"1.2\"/>",
                       "test point"});
  }

  Frame f = layout(options.width, options.height, !options.title.empty(), legend_width(entries));
  const auto inner_ticks = [](double lo, double hi, double pixels) {
    Axis a = nice_axis(lo, hi, std::clamp(static_cast<int>(pixels / 80), 2, 10));
    std::erase_if(a.ticks, [&](double t) { return t < lo - 1e-9 * (hi - lo) || t > hi + 1e-9 * (hi - lo); });
    a.lo = lo, a.hi = hi; // the grid covers exactly the bounds
    return a;
  };
  f.x = inner_ticks(b[0], b[1], f.right - f.left);
  f.y = inner_ticks(b[2], b[3], f.bottom - f.top);

  std::string svg;
  open_svg(svg, options.width, options.height, options.title);
  clip_path(svg, f, "plot-area");
  // Cells in grid units (column i, row j from the top), scaled onto the plot area: one rect per run
  // of equal class in a row. crispEdges keeps neighbouring runs from showing hairline seams.
  svg += fmt::format("<g class=\"regions\" transform=\"translate({} {}) scale({} {})\" "
                     "shape-rendering=\"crispEdges\">\n",
                     px(f.left), px(f.top), (f.right - f.left) / g, (f.bottom - f.top) / g);
  for (int j = 0; j < g; ++j) {
    int start = 0;
    for (int i = 1; i <= g; ++i) {
      const std::size_t row = static_cast<std::size_t>(j) * static_cast<std::size_t>(g);
      if (i < g && ids[row + static_cast<std::size_t>(i)] == ids[row + static_cast<std::size_t>(start)])
        continue;
      svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"1\" fill=\"{}\"/>\n", start, j,
                         i - start,
                         light_color(static_cast<std::size_t>(ids[row + static_cast<std::size_t>(start)])));
      start = i;
    }
  }
  svg += "</g>\n";
  if (!options.lines.empty()) {
    svg += "<g class=\"lines\" clip-path=\"url(#plot-area)\" stroke-width=\"2\" stroke-dasharray=\"6 3\">\n";
    for (std::size_t l = 0; l < options.lines.size(); ++l) {
      const RegionLine& line = options.lines[l];
      double x0, y0, x1, y1;
      if (std::abs(line.b) >= std::abs(line.a) && line.b != 0) { // y as a function of x
        x0 = b[0], x1 = b[1];
        y0 = -(line.a * x0 + line.c) / line.b, y1 = -(line.a * x1 + line.c) / line.b;
      } else if (line.a != 0) { // x as a function of y
        y0 = b[2], y1 = b[3];
        x0 = -(line.b * y0 + line.c) / line.a, x1 = -(line.b * y1 + line.c) / line.a;
      } else {
        continue; // 0 = c: no line to draw
      }
      if (!std::isfinite(x0 + y0 + x1 + y1)) continue;
      svg += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\"/>\n", px(f.map_x(x0)),
                         px(f.map_y(y0)), px(f.map_x(x1)), px(f.map_y(y1)), color(classes + l));
    }
    svg += "</g>\n";
  }
  svg += "<g class=\"points\" clip-path=\"url(#plot-area)\" stroke=\"#222\" stroke-width=\"0.7\">\n";
  for (std::int64_t i = 0; i < all; ++i) {
    const double u = xs[static_cast<std::size_t>(2 * i)], v = xs[static_cast<std::size_t>(2 * i + 1)];
    if (!(u >= b[0] && u <= b[1] && v >= b[2] && v <= b[3])) continue; // outside the area, or NaN
    const std::string fill =
        y.defined() || i >= n ? color(static_cast<std::size_t>(ys[static_cast<std::size_t>(i)])) : "#444";
    if (i == n)
      svg += "</g>\n<g class=\"test-points\" clip-path=\"url(#plot-area)\" stroke=\"#222\" "
             "stroke-width=\"1.2\">\n";
    const double cx = f.map_x(u), cy = f.map_y(v);
    if (i < n)
      svg += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"/>\n", px(cx), px(cy), fill);
    else // a diamond a little larger than the circles
      svg += fmt::format("<path d=\"M{} {}L{} {}L{} {}L{} {}Z\" fill=\"{}\"/>\n", px(cx), px(cy - 5.5),
                         px(cx + 5.5), px(cy), px(cx), px(cy + 5.5), px(cx - 5.5), px(cy), fill);
  }
  svg += "</g>\n";
  axes(svg, f, options.x_label, options.y_label);
  legend(svg, entries, f.right + 16, f.top + 4);
  svg += "</svg>\n";
  return svg;
}

void decision_regions(const std::string& path, const Classifier& classify, const Tensor& x, const Tensor& y,
                      const RegionOptions& options) {
  gg::write_atomically(path, decision_regions_svg(classify, x, y, options));
}

} // namespace gg::plot
