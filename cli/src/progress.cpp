// The training progress bar: formatting (pure, tested) and drawing with a carriage return.
#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ostream>

#include <fmt/format.h>

namespace gg::cli {

std::string format_duration(double seconds) {
  if (!(seconds >= 0)) return "?";
  const auto s = static_cast<long long>(std::llround(std::min(seconds, 1e9)));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

namespace {
/// 52100 -> "52.1k", 1.2e6 -> "1.2M", 950 -> "950".
std::string format_rate(double v) {
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}
} // namespace

std::string format_progress(const Progress& p, int width) {
  const int epoch_digits = static_cast<int>(std::to_string(p.epochs).size());
  const int step_digits = static_cast<int>(std::to_string(p.steps).size());
  const std::string head = fmt::format("epoch {:>{}}/{} ", p.epoch, epoch_digits, p.epochs);
  std::string tail = fmt::format("  {:>{}}/{}  loss {:.4f}", p.step, step_digits, p.steps, p.loss);
  if (p.accuracy >= 0) tail += fmt::format("  acc {:.4f}", p.accuracy);
  tail += fmt::format("  {} samples/s  ETA {}", format_rate(p.samples_per_second),
                      format_duration(p.eta_seconds));
  const int cells =
      std::max(10, width - 1 - static_cast<int>(head.size()) - 2 - static_cast<int>(tail.size()));
  const double done =
      p.steps > 0 ? std::clamp(static_cast<double>(p.step) / static_cast<double>(p.steps), 0.0, 1.0) : 1.0;
  const int full = static_cast<int>(done * cells);
  std::string bar(static_cast<std::size_t>(cells), ' ');
  std::fill_n(bar.begin(), full, '=');
  if (full < cells && p.step > 0) bar[static_cast<std::size_t>(full)] = '>';
  return head + "[" + bar + "]" + tail;
}

ProgressBar::ProgressBar(std::ostream& out, bool enabled, int width)
    : out_(out), enabled_(enabled), width_(width) {}

void ProgressBar::update(const Progress& p, bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  // "\r" back to the start of the line, "\x1b[K" erases what a longer previous line left.
  out_ << '\r' << format_progress(p, width_) << "\x1b[K" << std::flush;
}

void ProgressBar::clear() {
  if (!enabled_ || !drawn_) return;
  out_ << "\r\x1b[K" << std::flush;
  drawn_ = false;
}

bool stdout_is_terminal() {
  return isatty(STDOUT_FILENO) == 1;
}

int terminal_width() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

} // namespace gg::cli
