// gg::plot's building blocks, shared by its charts: the colour palette, XML escaping for SVG text,
// and axes with "nice" ticks (1, 2 or 5 times a power of ten; log-10 axes).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
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

} // namespace gg::plot
