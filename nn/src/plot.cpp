// gg::plot: SVG line charts and decision-region plots written as plain text, nice axis ticks, XML
// escaping and the atomic file write (temp file + rename) they are saved with.
#include <nn/plot.hpp>

#include <autodiff/var.hpp>
#include <nn/io/atomic_file.hpp>
#include <nn/metrics.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace gg::plot {

namespace {

// Tableau 10 (matplotlib's tab10): distinct hues that stay apart for colour-blind readers too.
constexpr std::array<unsigned, palette_size> palette{0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                                     0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

constexpr double font_size = 12;
constexpr double title_size = 15;
constexpr double subtitle_row = 16; // pixels per line of a subtitle

/// Roughly how wide text is drawn at font_size in a sans-serif font (no font metrics at hand).
double text_width(std::string_view s) {
  std::size_t chars = 0;
  for (const char c : s) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80; // UTF-8 code points
  return 0.6 * font_size * static_cast<double>(chars);
}

/// A pixel coordinate, one decimal.
std::string px(double v) {
  if (std::abs(v) < 0.05) v = 0;
  return fmt::format("{:.1f}", v);
}

/// The points of a polyline that stay after Ramer-Douglas-Peucker simplification: a point within
/// `tolerance` pixels of the segment between the kept points around it is dropped. A training
/// run's loss curve has thousands of points on a few hundred pixels; the picture stays the same.
std::vector<std::pair<double, double>> simplified(const std::vector<std::pair<double, double>>& p,
                                                  double tolerance) {
  if (p.size() < 3) return p;
  std::vector<char> keep(p.size(), 0);
  keep.front() = keep.back() = 1;
  std::vector<std::pair<std::size_t, std::size_t>> todo{{0, p.size() - 1}}; // no recursion: long curves
  while (!todo.empty()) {
    const auto [lo, hi] = todo.back();
    todo.pop_back();
    const double dx = p[hi].first - p[lo].first, dy = p[hi].second - p[lo].second;
    const double len = std::hypot(dx, dy);
    double worst = 0;
    std::size_t far = lo;
    for (std::size_t i = lo + 1; i < hi; ++i) {
      const double ex = p[i].first - p[lo].first, ey = p[i].second - p[lo].second;
      const double d = len == 0 ? std::hypot(ex, ey) : std::abs(ex * dy - ey * dx) / len;
      if (d > worst) worst = d, far = i;
    }
    if (worst > tolerance) {
      keep[far] = 1;
      todo.push_back({lo, far});
      todo.push_back({far, hi});
    }
  }
  std::vector<std::pair<double, double>> out;
  for (std::size_t i = 0; i < p.size(); ++i)
    if (keep[i]) out.push_back(p[i]);
  return out;
}

/// 10^e exactly as the nearest double (pow may be off by an ulp for negative e).
double pow10(int e) {
  double p = 1;
  for (int i = 0; i < std::abs(e); ++i) p *= 10;
  return e < 0 ? 1 / p : p;
}
/// m × 10^e with one rounding.
double scaled(double m, int e) {
  return e < 0 ? m / pow10(-e) : m * pow10(e);
}

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
              std::optional<std::pair<double, double>> at = {}) {
  const std::string where = at ? fmt::format("x=\"{}\" y=\"{}\"", px(at->first), px(at->second))
                               : "xmlns=\"http://www.w3.org/2000/svg\"";
  out +=
      fmt::format("<svg {0} width=\"{1}\" height=\"{2}\" viewBox=\"0 0 {1} {2}\" font-family=\"DejaVu Sans, "
                  "Helvetica, Arial, sans-serif\" font-size=\"{3}\">\n",
                  where, width, height, font_size);
  if (!title.empty()) out += fmt::format("<title>{}</title>\n", escape_xml(title));
  out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!title.empty())
    out += fmt::format("<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"{}\" "
                       "font-weight=\"bold\">{}</text>\n",
                       px(width / 2.0), title_size, escape_xml(title));
  for (std::size_t i = 0; i < subtitle.size(); ++i)
    out += fmt::format(
        "<text class=\"subtitle\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{}</text>\n",
        px(width / 2.0), px((title.empty() ? 14 : 42) + subtitle_row * static_cast<double>(i)),
        escape_xml(subtitle[i]));
}

/// A clip path named id around the plot area.
void clip_path(std::string& out, const Frame& f, std::string_view id) {
  out += fmt::format("<defs><clipPath id=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>"
                     "</clipPath></defs>\n",
                     id, px(f.left), px(f.top), px(f.right - f.left), px(f.bottom - f.top));
}

/// Light grid lines at the ticks (drawn under the data).
void grid_lines(std::string& out, const Frame& f) {
  out += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (double t : f.x.ticks)
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", px(f.map_x(t)), px(f.top),
                       px(f.bottom));
  for (double t : f.y.ticks)
    out += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\"/>\n", px(f.map_y(t)), px(f.left),
                       px(f.right));
  out += "</g>\n";
}

/// The frame, tick marks, tick labels and axis labels (drawn over the data).
void axes(std::string& out, const Frame& f, const std::string& x_label, const std::string& y_label) {
  out += fmt::format("<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
                     "stroke=\"#333\"/>\n",
                     px(f.left), px(f.top), px(f.right - f.left), px(f.bottom - f.top));
  out += "<g class=\"ticks\" stroke=\"#333\">\n";
  for (double t : f.x.ticks)
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", px(f.map_x(t)), px(f.bottom),
                       px(f.bottom + 5));
  for (double t : f.y.ticks)
    out += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\"/>\n", px(f.map_y(t)),
                       px(f.left - 5), px(f.left));
  out += "</g>\n<g class=\"tick-labels\" fill=\"#222\">\n";
  const double x_step = f.x.ticks.size() > 1 ? f.x.ticks[1] - f.x.ticks[0] : 1;
  for (double t : f.x.ticks)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(f.map_x(t)),
                       px(f.bottom + 19), escape_xml(format_tick(t, x_step)));
  const double y_step = f.y.ticks.size() > 1 ? f.y.ticks[1] - f.y.ticks[0] : 1;
  for (double t : f.y.ticks)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", px(f.left - 8),
                       px(f.map_y(t) + 4), escape_xml(format_tick(t, f.log_y ? t : y_step)));
  out += "</g>\n";
  if (!x_label.empty())
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       px((f.left + f.right) / 2), px(f.bottom + 40), escape_xml(x_label));
  if (!y_label.empty())
    out += fmt::format("<text transform=\"translate({} {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                       px(16), px((f.top + f.bottom) / 2), escape_xml(y_label));
}

/// One legend row: a swatch (drawn by the caller's snippet at x, y) and its text.
struct LegendEntry {
  std::string swatch; // SVG elements, drawn in a 24 x 12 box whose top-left is (0, 0)
  std::string text;
};
constexpr double legend_row = 20;

/// Width the legend needs (0 without entries).
double legend_width(const std::vector<LegendEntry>& entries) {
  double w = 0;
  for (const auto& e : entries) w = std::max(w, text_width(e.text));
  return entries.empty() ? 0 : w + 24 + 8 + 16;
}

/// The legend at (x, y): one row per entry.
void legend(std::string& out, const std::vector<LegendEntry>& entries, double x, double y) {
  if (entries.empty()) return;
  out += "<g class=\"legend\">\n";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const double row = y + legend_row * static_cast<double>(i);
    out += fmt::format("<g transform=\"translate({} {})\">{}</g>\n", px(x), px(row), entries[i].swatch);
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", px(x + 32), px(row + 10.5),
                       escape_xml(entries[i].text));
  }
  out += "</g>\n";
}

/// Margins around the plot area: tick labels and axis labels left and below, the title and
/// `subtitle_lines` lines above, the legend on the right.
Frame layout(int width, int height, bool has_title, double legend_w, std::size_t subtitle_lines = 0) {
  Frame f{};
  f.left = 76;
  f.top = (has_title ? 42 : 16) + subtitle_row * static_cast<double>(subtitle_lines);
  f.right = std::max(f.left + 50, width - 20 - legend_w);
  f.bottom = std::max(f.top + 50, height - 52.0);
  return f;
}

bool plottable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

/// The stroke-dasharray attribute of a dash style ("" for solid).
std::string dash_attribute(Dash d) {
  switch (d) {
  case Dash::dashed: return " stroke-dasharray=\"7 4\"";
  case Dash::dotted: return " stroke-dasharray=\"2 3\"";
  case Dash::dash_dot: return " stroke-dasharray=\"8 3 2 3\"";
  case Dash::solid: break;
  }
  return "";
}

/// Default dash of series i: solid for the first palette_size series, then dashed, then dotted.
Dash default_dash(std::size_t i) {
  switch ((i / palette_size) % 3) {
  case 1: return Dash::dashed;
  case 2: return Dash::dotted;
  default: return Dash::solid;
  }
}

/// A marker centred on (x, y): filled shapes with a thin white rim, so that markers on top of each
/// other stay apart; the cross and the plus are strokes.
std::string marker_svg(Marker m, double x, double y, const std::string& fill) {
  const auto polygon = [&](std::initializer_list<std::pair<double, double>> pts) {
    std::string p;
    for (const auto& [dx, dy] : pts) {
      if (!p.empty()) p += ' ';
      p += px(x + dx);
      p += ',';
      p += px(y + dy);
    }
    return fmt::format("<polygon points=\"{}\" fill=\"{}\" stroke=\"white\" stroke-width=\"0.8\"/>\n", p,
                       fill);
  };
  const auto strokes = [&](double ax, double ay, double bx, double by) {
    return fmt::format("<path d=\"M{} {}L{} {}M{} {}L{} {}\" stroke=\"{}\" stroke-width=\"2\" "
                       "stroke-dasharray=\"none\" fill=\"none\"/>\n",
                       px(x - ax), px(y - ay), px(x + ax), px(y + ay), px(x - bx), px(y - by), px(x + bx),
                       px(y + by), fill);
  };
  switch (m) {
  case Marker::none: return "";
  case Marker::circle:
    return fmt::format(
        "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\" stroke=\"white\" stroke-width=\"0.8\"/>\n", px(x),
        px(y), fill);
  case Marker::square: return polygon({{-3.3, -3.3}, {3.3, -3.3}, {3.3, 3.3}, {-3.3, 3.3}});
  case Marker::triangle: return polygon({{0, -4.5}, {4, 2.8}, {-4, 2.8}});
  case Marker::diamond: return polygon({{0, -4.6}, {4.6, 0}, {0, 4.6}, {-4.6, 0}});
  case Marker::cross: return strokes(3.5, 3.5, 3.5, -3.5);
  case Marker::plus: return strokes(4.2, 0, 0, 4.2);
  }
  return "";
}

/// Points every `spacing` pixels along a polyline made of runs (gaps between runs are not
/// measured), the first at `offset`: where a long series' markers go.
std::vector<std::pair<double, double>> along(const std::vector<std::vector<std::pair<double, double>>>& runs,
                                             double spacing, double offset) {
  std::vector<std::pair<double, double>> out;
  double next = offset, walked = 0;
  for (const auto& run : runs)
    for (std::size_t i = 1; i < run.size(); ++i) {
      const auto [x0, y0] = run[i - 1];
      const auto [x1, y1] = run[i];
      const double len = std::hypot(x1 - x0, y1 - y0);
      while (len > 0 && next <= walked + len) {
        const double t = (next - walked) / len;
        out.emplace_back(x0 + t * (x1 - x0), y0 + t * (y1 - y0));
        next += spacing;
      }
      walked += len;
    }
  return out;
}

} // namespace

std::string color(std::size_t i) {
  return fmt::format("#{:06x}", palette[i % palette_size]);
}

std::string light_color(std::size_t i) {
  const unsigned c = palette[i % palette_size];
  // 70% white: light enough for dark points on top, still clearly the same hue.
  const auto mix = [](unsigned v) { return static_cast<unsigned>(std::lround(0.3 * v + 0.7 * 255)); };
  return fmt::format("#{:02x}{:02x}{:02x}", mix((c >> 16) & 0xff), mix((c >> 8) & 0xff), mix(c & 0xff));
}

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    case '\'': out += "&apos;"; break;
    default:
      // XML 1.0 allows no control characters but tab, newline and carriage return.
      if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += c;
    }
  }
  return out;
}

void write_atomically(const std::string& path, const std::string& content) {
  gg::write_atomically(path, content);
}

Axis nice_axis(double lo, double hi, int target) {
  if (!std::isfinite(lo) && !std::isfinite(hi)) lo = hi = 0;
  if (!std::isfinite(lo)) lo = hi;
  if (!std::isfinite(hi)) hi = lo;
  if (lo > hi) std::swap(lo, hi);
  // Beyond ±1e300 the range would overflow; below 1e-290 the step would underflow.
  lo = std::clamp(lo, -1e300, 1e300), hi = std::clamp(hi, -1e300, 1e300);
  if (hi - lo <= 1e-12 * std::max(std::abs(lo), std::abs(hi)) || hi - lo < 1e-290) {
    const double d = lo == 0 ? 1 : 0.1 * std::abs(lo);
    lo -= d, hi += d;
  }
  target = std::max(target, 2);
  const double raw = (hi - lo) / target;
  const int e = static_cast<int>(std::floor(std::log10(raw)));
  const double norm = raw / pow10(e);
  // 1, 2 or 5 × 10^e, whichever is nearest to the raw step on a log scale (Heckbert's rule).
  const double m = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  const double step = scaled(m, e);
  const auto k0 = static_cast<long long>(std::floor(lo / step + 1e-9));
  const auto k1 = static_cast<long long>(std::ceil(hi / step - 1e-9));
  Axis a;
  for (long long k = k0; k <= k1; ++k) a.ticks.push_back(scaled(static_cast<double>(k) * m, e));
  a.lo = a.ticks.front();
  a.hi = a.ticks.back();
  return a;
}

Axis log_axis(double lo, double hi) {
  if (lo > hi) std::swap(lo, hi);
  if (!(hi > 0) || !std::isfinite(hi)) hi = lo > 0 && std::isfinite(lo) ? lo : 1;
  if (!(lo > 0) || !std::isfinite(lo)) lo = hi / 10;
  lo = std::clamp(lo, 1e-300, 1e300), hi = std::clamp(hi, 1e-300, 1e300); // 10^e stays finite
  if (lo == hi) lo /= 2, hi *= 2;
  const double l0 = std::log10(lo), l1 = std::log10(hi);
  Axis a;
  if (l1 - l0 <= 2) {
    // 1, 2, 5 × 10^e: the largest at or below lo, everything between, the smallest at or above hi.
    std::vector<double> candidates;
    for (int e = static_cast<int>(std::floor(l0)) - 1; e <= static_cast<int>(std::ceil(l1)) + 1; ++e)
      for (double m : {1.0, 2.0, 5.0}) candidates.push_back(scaled(m, e));
    const double tol = 1e-9;
    std::size_t first = 0, last = candidates.size() - 1;
    for (std::size_t i = 0; i < candidates.size(); ++i)
      if (candidates[i] <= lo * (1 + tol)) first = i;
    for (std::size_t i = candidates.size(); i-- > 0;)
      if (candidates[i] >= hi * (1 - tol)) last = i;
    a.ticks.assign(candidates.begin() + static_cast<std::ptrdiff_t>(first),
                   candidates.begin() + static_cast<std::ptrdiff_t>(last) + 1);
  } else {
    const int e0 = static_cast<int>(std::floor(l0 + 1e-9));
    int e1 = static_cast<int>(std::ceil(l1 - 1e-9));
    const int k = std::max(1, (e1 - e0 + 7) / 8); // at most ~9 labelled decades
    e1 = e0 + k * ((e1 - e0 + k - 1) / k);
    for (int e = e0; e <= e1; e += k) a.ticks.push_back(pow10(e));
  }
  a.lo = a.ticks.front();
  a.hi = a.ticks.back();
  return a;
}

std::string format_tick(double value, double step) {
  step = std::abs(step);
  if (!std::isfinite(value)) return fmt::format("{}", value);
  if (!(step > 0) || !std::isfinite(step)) step = std::abs(value) > 0 ? std::abs(value) : 1;
  if (std::abs(value) < 1e-9 * step) return "0";
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  if (std::abs(value) >= 1e6 || decimals > 4) return fmt::format("{:g}", value);
  return fmt::format("{:.{}f}", value, decimals);
}

// ---------------------------------------------------------------------------------------------------
// LineChart

LineChart::LineChart(std::string title, std::string x_label, std::string y_label)
    : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)) {}

LineChart& LineChart::add(std::string name, std::vector<double> x, std::vector<double> y, SeriesStyle style) {
  if (x.size() != y.size())
    throw ValueError(
        fmt::format("LineChart::add: series '{}' has {} x values but {} y values", name, x.size(), y.size()));
  if (!(style.width > 0 && style.width <= 50))
    throw ValueError(
        fmt::format("LineChart::add: series '{}' has line width {}, not in (0, 50]", name, style.width));
  series_.push_back({std::move(name), std::move(x), std::move(y), std::move(style)});
  return *this;
}

LineChart& LineChart::add(std::string name, std::vector<double> y, SeriesStyle style) {
  std::vector<double> x(y.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i + 1);
  return add(std::move(name), std::move(x), std::move(y), std::move(style));
}

LineChart& LineChart::log_y(bool on) {
  log_y_ = on;
  return *this;
}

LineChart& LineChart::subtitle(std::string text) {
  subtitle_ = std::move(text);
  return *this;
}

namespace {
/// A fixed axis range, checked.
std::pair<double, double> checked_range(const char* what, double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
    throw ValueError(fmt::format("LineChart::{}: [{}, {}] is not a finite increasing range", what, lo, hi));
  return {lo, hi};
}
} // namespace

LineChart& LineChart::x_range(double lo, double hi) {
  x_range_ = checked_range("x_range", lo, hi);
  return *this;
}

LineChart& LineChart::y_range(double lo, double hi) {
  y_range_ = checked_range("y_range", lo, hi);
  return *this;
}

LineChart& LineChart::size(int width, int height) {
  if (width < 200 || height < 150 || width > 20000 || height > 20000)
    throw ValueError(
        fmt::format("LineChart::size: {} x {} pixels is outside 200 x 150 .. 20000 x 20000", width, height));
  width_ = width, height_ = height;
  return *this;
}

std::string LineChart::svg() const {
  return render("", 0, 0, false);
}

std::string LineChart::render(const std::string& id, double at_x, double at_y, bool nested) const {
  if (log_y_ && y_range_ && !(y_range_->first > 0))
    throw ValueError(fmt::format("LineChart::y_range: [{}, {}] on a log axis must be positive",
                                 y_range_->first, y_range_->second));
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const auto& s : series_)
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (plottable(s.x[i], s.y[i], log_y_)) {
        x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, s.y[i]), y_hi = std::max(y_hi, s.y[i]);
      }
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1, y_lo = log_y_ ? 0.1 : 0, y_hi = 1; // nothing to draw
  if (x_range_) std::tie(x_lo, x_hi) = *x_range_;
  if (y_range_) std::tie(y_lo, y_hi) = *y_range_;

  // Each series' look: its style, with the position's colour and dash where it gives none.
  const auto stroke_of = [&](std::size_t i) {
    return series_[i].style.color.empty() ? color(i) : escape_xml(series_[i].style.color);
  };
  const auto dash_of = [&](std::size_t i) {
    return dash_attribute(series_[i].style.dash.value_or(default_dash(i)));
  };
  std::vector<LegendEntry> entries;
  for (std::size_t i = 0; i < series_.size(); ++i) {
    const auto& s = series_[i];
    if (!s.style.in_legend) continue;
    const bool diverged = !s.y.empty() && !(std::isfinite(s.x.back()) && std::isfinite(s.y.back()));
    entries.push_back({fmt::format("<line x1=\"0\" y1=\"6\" x2=\"24\" y2=\"6\" stroke=\"{}\" "
                                   "stroke-width=\"{}\"{}/>",
                                   stroke_of(i), std::min(s.style.width + 0.5, 6.0), dash_of(i)) +
                           marker_svg(s.style.marker, 12, 6, stroke_of(i)),
                       diverged ? s.name + " (diverged)" : s.name});
  }
  std::vector<std::string> subtitle_lines;
  for (std::size_t from = 0; !subtitle_.empty() && from <= subtitle_.size();) {
    const std::size_t end = std::min(subtitle_.find('\n', from), subtitle_.size());
    subtitle_lines.push_back(subtitle_.substr(from, end - from));
    from = end + 1;
  }
  Frame f = layout(width_, height_, !title_.empty(), legend_width(entries), subtitle_lines.size());
  f.log_y = log_y_;
  f.x = nice_axis(x_lo, x_hi, std::clamp(static_cast<int>((f.right - f.left) / 90), 2, 10));
  f.y = log_y_ ? log_axis(y_lo, y_hi)
               : nice_axis(y_lo, y_hi, std::clamp(static_cast<int>((f.bottom - f.top) / 60), 2, 10));

  std::string out;
  open_svg(out, width_, height_, title_, subtitle_lines,
           nested ? std::optional<std::pair<double, double>>({at_x, at_y}) : std::nullopt);
  const std::string area = id + "plot-area";
  clip_path(out, f, area);
  grid_lines(out, f);
  out += fmt::format("<g class=\"series\" clip-path=\"url(#{})\" fill=\"none\" stroke-linejoin=\"round\" "
                     "stroke-linecap=\"round\">\n",
                     area);
  constexpr double marker_spacing = 60;
  for (std::size_t si = 0; si < series_.size(); ++si) {
    const auto& s = series_[si];
    const std::string stroke = stroke_of(si);
    std::size_t finite = 0;
    for (std::size_t i = 0; i < s.x.size(); ++i) finite += plottable(s.x[i], s.y[i], log_y_);
    const bool every_point = finite <= 40; // a short series: a marker on every point
    out += fmt::format("<g stroke=\"{}\" stroke-width=\"{}\"{}>\n", stroke, s.style.width, dash_of(si));
    // One polyline per run of plottable points: the line breaks where a point is skipped. Points
    // within a quarter pixel of the line through their neighbours are left out.
    std::vector<std::vector<std::pair<double, double>>> runs(1);
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (plottable(s.x[i], s.y[i], log_y_))
        runs.back().emplace_back(f.map_x(s.x[i]), f.map_y(s.y[i]));
      else if (!runs.back().empty())
        runs.emplace_back();
    }
    for (auto& run : runs) {
      if (run.size() == 1 && !every_point) // a lone point would be invisible as a line
        out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{}\"/>\n", px(run[0].first),
                           px(run[0].second), stroke);
      if (run.size() < 2) continue;
      run = simplified(run, 0.25);
      std::string points;
      for (const auto& [x, y] : run) {
        if (!points.empty()) points += ' ';
        points += px(x) + "," + px(y);
      }
      out += fmt::format("<polyline points=\"{}\"/>\n", points);
    }
    out += "</g>\n";
    std::string marks;
    if (every_point) {
      const Marker m = s.style.marker == Marker::none ? Marker::circle : s.style.marker;
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (plottable(s.x[i], s.y[i], log_y_))
          marks += marker_svg(m, f.map_x(s.x[i]), f.map_y(s.y[i]), stroke);
    } else if (s.style.marker != Marker::none) {
      // Each series starts its markers at its own offset (golden-ratio steps), so curves that lie
      // on top of each other show alternating markers.
      const double phase = std::fmod(0.5 + 0.381966 * static_cast<double>(si), 1.0);
      for (const auto& [x, y] : along(runs, marker_spacing, phase * marker_spacing))
        marks += marker_svg(s.style.marker, x, y, stroke);
    }
    if (!marks.empty()) out += "<g class=\"markers\">\n" + marks + "</g>\n";
  }
  out += "</g>\n";
  axes(out, f, x_label_, log_y_ && !y_label_.empty() ? y_label_ + " (log scale)" : y_label_);
  legend(out, entries, f.right + 16, f.top + 4);
  out += "</svg>\n";
  return out;
}

void LineChart::save(const std::string& path) const {
  write_atomically(path, svg());
}

std::string small_multiples_svg(const std::vector<LineChart>& charts, int columns, const std::string& title) {
  if (charts.empty()) throw ValueError("small_multiples: no charts");
  if (columns < 1) throw ValueError(fmt::format("small_multiples: {} columns, need at least 1", columns));
  const auto cols = static_cast<std::size_t>(columns);
  // Column widths and row heights: the widest and tallest chart in each.
  std::vector<double> widths(std::min(cols, charts.size()), 0), heights((charts.size() + cols - 1) / cols, 0);
  for (std::size_t i = 0; i < charts.size(); ++i) {
    widths[i % cols] = std::max(widths[i % cols], static_cast<double>(charts[i].width_));
    heights[i / cols] = std::max(heights[i / cols], static_cast<double>(charts[i].height_));
  }
  const double top = title.empty() ? 0 : 40;
  double width = 0, height = top;
  for (double w : widths) width += w;
  for (double h : heights) height += h;
  std::string out;
  open_svg(out, static_cast<int>(std::ceil(width)), static_cast<int>(std::ceil(height)), title);
  double y = top;
  for (std::size_t r = 0; r < heights.size(); ++r) {
    double x = 0;
    for (std::size_t c = 0; c < cols && r * cols + c < charts.size(); ++c) {
      out += charts[r * cols + c].render(fmt::format("p{}-", r * cols + c), x, y, true);
      x += widths[c];
    }
    y += heights[r];
  }
  out += "</svg>\n";
  return out;
}

void small_multiples(const std::string& path, const std::vector<LineChart>& charts, int columns,
                     const std::string& title) {
  write_atomically(path, small_multiples_svg(charts, columns, title));
}

// ---------------------------------------------------------------------------------------------------
// Decision regions

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
  const std::vector<double> xs = x.to_vector();
  std::vector<double> ys = y.defined() ? y.to_vector() : std::vector<double>(static_cast<std::size_t>(n), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const double c = ys[static_cast<std::size_t>(i)];
    if (!(c >= 0 && c < 1e6 && c == std::floor(c)))
      throw ValueError(fmt::format("decision_regions: class of point {} is {}, not a class id", i, c));
  }

  // The area: given bounds, or the points' range plus 10% on each side.
  std::array<double, 4> b{-1, 1, -1, 1};
  if (options.bounds) {
    b = *options.bounds;
    for (int k = 0; k < 2; ++k)
      if (!std::isfinite(b[2 * k]) || !std::isfinite(b[2 * k + 1]) || !(b[2 * k] < b[2 * k + 1]))
        throw ValueError(fmt::format("decision_regions: bounds of x{} are [{}, {}], not a finite range",
                                     k + 1, b[2 * k], b[2 * k + 1]));
  } else if (n > 0) {
    for (int k = 0; k < 2; ++k) {
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (std::int64_t i = 0; i < n; ++i) {
        const double v = xs[static_cast<std::size_t>(2 * i + k)];
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
      }
      if (!std::isfinite(lo)) lo = -1, hi = 1;
      const double pad = hi > lo ? 0.1 * (hi - lo) : 1;
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
  if (y.defined())
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
  for (std::int64_t i = 0; i < n; ++i) {
    const double u = xs[static_cast<std::size_t>(2 * i)], v = xs[static_cast<std::size_t>(2 * i + 1)];
    if (!std::isfinite(u) || !std::isfinite(v)) continue;
    svg +=
        fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"/>\n", px(f.map_x(u)), px(f.map_y(v)),
                    y.defined() ? color(static_cast<std::size_t>(ys[static_cast<std::size_t>(i)])) : "#444");
  }
  svg += "</g>\n";
  axes(svg, f, options.x_label, options.y_label);
  legend(svg, entries, f.right + 16, f.top + 4);
  svg += "</svg>\n";
  return svg;
}

void decision_regions(const std::string& path, const Classifier& classify, const Tensor& x, const Tensor& y,
                      const RegionOptions& options) {
  write_atomically(path, decision_regions_svg(classify, x, y, options));
}

} // namespace gg::plot
