// Internal to gg::plot: drawing pieces its charts share: the plot area and its maps from data to
// pixels, the SVG opening, clip path, grid, axes and legend, and pixel formatting.
#pragma once

#include <nn/plot/svg.hpp>

#include <array>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gg::plot::detail {

// Tableau 10 (matplotlib's tab10): distinct hues that stay apart for colour-blind readers too.
inline constexpr std::array<unsigned, palette_size> palette{0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                                            0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

inline constexpr double font_size = 12;
inline constexpr double title_size = 15;
inline constexpr double subtitle_row = 16; // pixels per line of a subtitle

/// Roughly how wide text is drawn at font_size in a sans-serif font (no font metrics at hand).
double text_width(std::string_view s);
/// A pixel coordinate, one decimal.
std::string px(double v);

/// The plotting area of a picture and the maps from data to pixels.
struct Frame {
  double left, top, right, bottom; // pixel bounds of the plot area
  Axis x, y;
  bool log_y = false;
  double map_x(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * (right - left); }
  double map_y(double v) const {
    const double t = log_y ? (std::log10(v) - std::log10(y.lo)) / (std::log10(y.hi) - std::log10(y.lo))
                           : (v - y.lo) / (y.hi - y.lo);
    return bottom - t * (bottom - top);
  }
};

/// Opens the picture: the svg element (nested at x, y in an enclosing picture, or the root), a white
/// background, the title and the subtitle's lines under it.
void open_svg(std::string& out, int width, int height, const std::string& title,
              const std::vector<std::string>& subtitle = {},
              std::optional<std::pair<double, double>> at = {});
/// A clip path named id around the plot area.
void clip_path(std::string& out, const Frame& f, std::string_view id);
/// Light grid lines at the ticks (drawn under the data).
void grid_lines(std::string& out, const Frame& f);
/// The frame, tick marks, tick labels and axis labels (drawn over the data).
void axes(std::string& out, const Frame& f, const std::string& x_label, const std::string& y_label);

/// One legend row: a swatch (drawn by the caller's snippet at x, y) and its text.
struct LegendEntry {
  std::string swatch; // SVG elements, drawn in a 24 x 12 box whose top-left is (0, 0)
  std::string text;
};

/// Width the legend needs (0 without entries).
double legend_width(const std::vector<LegendEntry>& entries);
/// The legend at (x, y): one row per entry.
void legend(std::string& out, const std::vector<LegendEntry>& entries, double x, double y);
/// Margins around the plot area: tick labels and axis labels left and below, the title and
/// `subtitle_lines` lines above, the legend on the right.
Frame layout(int width, int height, bool has_title, double legend_w, std::size_t subtitle_lines = 0);

} // namespace gg::plot::detail
