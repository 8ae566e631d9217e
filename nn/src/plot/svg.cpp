// gg::plot's building blocks: palette colours, XML escaping, nice axes, and the drawing pieces the
// charts share (plot area, axes, grid, legend).
#include "drawing.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

namespace gg::plot {

namespace {

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

} // namespace

namespace detail {

double text_width(std::string_view s) {
  std::size_t chars = 0;
  for (const char c : s) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80; // UTF-8 code points
  return 0.6 * font_size * static_cast<double>(chars);
}

std::string px(double v) {
  if (std::abs(v) < 0.05) v = 0;
  return fmt::format("{:.1f}", v);
}

void open_svg(std::string& out, int width, int height, const std::string& title,
              const std::vector<std::string>& subtitle, std::optional<std::pair<double, double>> at) {
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

void clip_path(std::string& out, const Frame& f, std::string_view id) {
  out += fmt::format("<defs><clipPath id=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>"
                     "</clipPath></defs>\n",
                     id, px(f.left), px(f.top), px(f.right - f.left), px(f.bottom - f.top));
}

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

constexpr double legend_row = 20;

double legend_width(const std::vector<LegendEntry>& entries) {
  double w = 0;
  for (const auto& e : entries) w = std::max(w, text_width(e.text));
  return entries.empty() ? 0 : w + 24 + 8 + 16;
}

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

Frame layout(int width, int height, bool has_title, double legend_w, std::size_t subtitle_lines) {
  Frame f{};
  f.left = 76;
  f.top = (has_title ? 42 : 16) + subtitle_row * static_cast<double>(subtitle_lines);
  f.right = std::max(f.left + 50, width - 20 - legend_w);
  f.bottom = std::max(f.top + 50, height - 52.0);
  return f;
}

} // namespace detail

using namespace detail;

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

} // namespace gg::plot
