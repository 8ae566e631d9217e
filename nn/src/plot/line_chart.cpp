// gg::plot::LineChart: series of points as SVG polylines (simplified to what the pixels show),
// broken where a point cannot be drawn, with dashes, markers and a legend; small multiples.
#include "drawing.hpp"

#include <nn/io/atomic_file.hpp>
#include <nn/plot/line_chart.hpp>

#include <autodiff/error.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <tuple>
#include <utility>

#include <fmt/format.h>

namespace gg::plot {

namespace {

using namespace detail;

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
  gg::write_atomically(path, svg());
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
  gg::write_atomically(path, small_multiples_svg(charts, columns, title));
}

} // namespace gg::plot
