// gg::plot — small, dependency-free SVG charts a browser opens: LineChart (loss curves, log y, dashes
// and markers), small_multiples (charts side by side) and decision_regions (a 2-D classifier's
// predicted class over a grid, with the training points).
// Files are written atomically: a reader sees the old file or the whole new one, never half.
#pragma once

#include <autodiff/tensor.hpp>

#include <array>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gg::plot {

/// Number of colours in the fixed palette (Tableau 10); colour i + palette_size repeats colour i.
inline constexpr std::size_t palette_size = 10;
/// Colour i of the palette as "#rrggbb" (lines, points).
std::string color(std::size_t i);
/// The same colour blended towards white (decision regions), so points in color(i) stand out on it.
std::string light_color(std::size_t i);

/// text with & < > " ' replaced by entities (and control characters XML forbids dropped): safe
/// inside SVG text and attribute values.
std::string escape_xml(std::string_view text);

/// Writes path via a temporary file in the same directory and a rename, so a reader never sees
/// half a file; gg::IOError naming the path and the reason otherwise (no temporary file is left).
void write_atomically(const std::string& path, const std::string& content);

/// An axis range and its tick positions.
struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
};
/// A linear axis covering [lo, hi]: about `target` ticks spaced 1, 2 or 5 times a power of ten,
/// the range widened to the outer ticks. lo == hi (or a non-finite bound) gives a small range
/// around the value (around 0).
Axis nice_axis(double lo, double hi, int target = 5);
/// A log-10 axis covering [lo, hi] (both > 0): ticks at 1, 2, 5 × powers of ten for spans up to
/// two decades, at powers of ten (every k-th when there are many) beyond; the range widened to
/// the outer ticks.
Axis log_axis(double lo, double hi);
/// A tick value as text with no more decimals than the step between ticks needs ("0.2", "1e-05").
std::string format_tick(double value, double step);

/// How a line is stroked.
enum class Dash { solid, dashed, dotted, dash_dot };
/// A marker shape drawn on a line.
enum class Marker { none, circle, square, triangle, diamond, cross, plus };

/// How a LineChart draws one series. The defaults give series i the palette's colour i, solid for
/// the first palette_size series and dashed, then dotted after.
struct SeriesStyle {
  /// Any SVG colour ("#bbbbbb", "gray"); empty: the palette's colour for the series' position.
  std::string color = {};
  /// Empty: by the series' position, as above.
  std::optional<Dash> dash = {};
  /// Drawn at every point of a short series (40 points or fewer; circles when none is chosen) and,
  /// on a longer one, every ~60 pixels along the line, each series starting at its own offset so
  /// that two curves on top of each other still show both markers.
  Marker marker = Marker::none;
  double width = 2; ///< line width in pixels
  bool in_legend = true;
};

/// Lines (x, y) of several named series on one pair of axes, with a legend. Non-finite points
/// (and, on a log axis, points <= 0) are skipped: the line breaks there. A series whose last
/// point is not finite (a diverged loss) is listed in the legend as "name (diverged)".
class LineChart {
public:
  explicit LineChart(std::string title = {}, std::string x_label = {}, std::string y_label = {});

  /// Adds a series of points x[i], y[i] (equal lengths, ValueError otherwise).
  LineChart& add(std::string name, std::vector<double> x, std::vector<double> y, SeriesStyle style = {});
  /// Adds a series with x = 1, 2, ..., y.size() (a loss per step or epoch).
  LineChart& add(std::string name, std::vector<double> y, SeriesStyle style = {});
  /// Log-10 scale on the y axis.
  LineChart& log_y(bool on = true);
  /// Lines of smaller text under the title ('\n' separates them): a formula, a setting.
  LineChart& subtitle(std::string text);
  /// Fixed axis ranges (widened to the nearest ticks) instead of the data's: charts meant to be
  /// compared side by side (small_multiples) share them. ValueError for a range that is not finite
  /// and increasing (or, on the log y axis, not positive).
  LineChart& x_range(double lo, double hi);
  LineChart& y_range(double lo, double hi);
  /// Size of the whole picture in pixels (default 800 x 500).
  LineChart& size(int width, int height);

  /// The chart as SVG text.
  std::string svg() const;
  /// Writes svg() to path atomically.
  void save(const std::string& path) const;

private:
  friend std::string small_multiples_svg(const std::vector<LineChart>& charts, int columns,
                                         const std::string& title);
  struct Series {
    std::string name;
    std::vector<double> x, y;
    SeriesStyle style;
  };
  /// The SVG placed at (x, y) of an enclosing picture (a nested <svg>), its ids prefixed by id.
  std::string render(const std::string& id, double x, double y, bool nested) const;

  std::string title_, subtitle_, x_label_, y_label_;
  std::vector<Series> series_;
  bool log_y_ = false;
  std::optional<std::pair<double, double>> x_range_, y_range_;
  int width_ = 800, height_ = 500;
};

/// Several charts in one picture, `columns` to a row, each at its own size with its own title and
/// legend (small multiples: one panel per series, on shared axes, compares them better than ten
/// lines on one). A row is as tall as its tallest chart; title, if any, is drawn above all.
/// ValueError for no charts or columns < 1.
std::string small_multiples_svg(const std::vector<LineChart>& charts, int columns,
                                const std::string& title = {});
/// Writes small_multiples_svg(...) to path atomically.
void small_multiples(const std::string& path, const std::vector<LineChart>& charts, int columns,
                     const std::string& title = {});

/// A 2-D classifier: points [n, 2] -> class scores [n, k] (argmax is the class) or class ids [n].
/// decision_regions calls it once for the whole grid, with recording off (gg::NoGrad).
using Classifier = std::function<Tensor(const Tensor& points)>;

/// A straight line a·x1 + b·x2 + c = 0 drawn over a region plot (e.g. a hidden unit's boundary).
struct RegionLine {
  double a = 0, b = 0, c = 0;
  std::string label; ///< shown in the legend
};

/// How decision_regions draws.
struct RegionOptions {
  std::string title;
  std::string x_label = "x1", y_label = "x2";
  /// Cells per side of the grid the classifier is evaluated on.
  int grid = 150;
  /// The plotted area {x1_min, x1_max, x2_min, x2_max}; default: the points' range plus 10%.
  std::optional<std::array<double, 4>> bounds;
  /// Legend names of the classes (default "class 0", "class 1", ...).
  std::vector<std::string> class_names;
  /// Extra lines drawn dashed over the regions, listed in the legend.
  std::vector<RegionLine> lines;
  int width = 700, height = 560;
};

/// The predicted class over a grid of options.grid × options.grid cells as SVG: light colours per
/// class (each row merged into runs of equal class, one rect per run), the points x [n, 2] on top
/// coloured by their class y [n] (undefined y: all in one colour), axes with ticks and a legend.
/// ValueError when shapes do not fit or the classifier returns something else than n rows.
std::string decision_regions_svg(const Classifier& classify, const Tensor& x, const Tensor& y,
                                 const RegionOptions& options = {});
/// Writes decision_regions_svg(...) to path atomically.
void decision_regions(const std::string& path, const Classifier& classify, const Tensor& x, const Tensor& y,
                      const RegionOptions& options = {});

} // namespace gg::plot
