// gg::plot::decision_regions: a 2-D classifier's predicted class over a grid, with the training
// points and optional lines on top, as SVG; saved atomically.
#pragma once

#include <nn/plot/svg.hpp>

#include <autodiff/tensor.hpp>

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gg::plot {

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
  /// Held-out points [m, 2] and their classes [m], drawn as diamonds over the (round) training points
  /// and named in the legend; undefined: none.
  Tensor test_x, test_y;
  int width = 700, height = 560;
};

/// The predicted class over a grid of options.grid × options.grid cells as SVG: light colours per
/// class (each row merged into runs of equal class, one rect per run), the points x [n, 2] on top
/// coloured by their class y [n] (undefined y: all in one colour), options.test_x as diamonds, axes
/// with ticks and a legend.
/// ValueError when shapes do not fit or the classifier returns something else than n rows.
std::string decision_regions_svg(const Classifier& classify, const Tensor& x, const Tensor& y,
                                 const RegionOptions& options = {});
/// Writes decision_regions_svg(...) to path atomically.
void decision_regions(const std::string& path, const Classifier& classify, const Tensor& x, const Tensor& y,
                      const RegionOptions& options = {});

} // namespace gg::plot
