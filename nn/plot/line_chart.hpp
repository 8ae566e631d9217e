// gg::plot::LineChart: lines of several named series on one pair of axes (loss curves, log y,
// dashes and markers), and small_multiples (charts side by side); written as SVG a browser opens,
// saved atomically.
#pragma once

#include <nn/plot/svg.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gg::plot {

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

} // namespace gg::plot
