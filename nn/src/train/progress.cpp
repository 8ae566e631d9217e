// Training progress: formatting (pure, tested), the bar drawn with a carriage return, and the
// ProgressLogger callback that feeds it and prints the epoch lines.
#include <nn/train/progress.hpp>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ostream.h>

namespace gg::train {

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
  return head + format_bar(p.step > 0 ? done : -1, cells) + tail;
}

std::string format_bar(double done, int cells) {
  const int full = static_cast<int>(std::clamp(done, 0.0, 1.0) * cells);
  std::string bar(static_cast<std::size_t>(cells), ' ');
  std::fill_n(bar.begin(), full, '=');
  if (full < cells && done > 0) bar[static_cast<std::size_t>(full)] = '>';
  return "[" + bar + "]";
}

ProgressBar::ProgressBar(std::ostream& out, bool enabled, int width)
    : out_(out), enabled_(enabled), width_(width) {}

void ProgressBar::update(const Progress& p, bool force) {
  // Checked here too, so that a line that is not due is not formatted.
  if (!enabled_ ||
      (!force && drawn_ && std::chrono::steady_clock::now() - last_ < std::chrono::milliseconds(100)))
    return;
  draw(format_progress(p, width_), true);
}

void ProgressBar::draw(const std::string& line, bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  // "\r" back to the start of the line, "\x1b[K" erases what a longer previous line left.
  out_ << '\r' << line << "\x1b[K" << std::flush;
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

std::string format_logs(const Logs& logs) {
  std::string out;
  std::string_view group;
  for (const auto& [name, value] : logs) {
    const std::string_view n = name;
    const std::size_t cut = n.find('_');
    const std::string_view prefix = cut == std::string_view::npos ? std::string_view() : n.substr(0, cut);
    const std::string_view metric = cut == std::string_view::npos ? n : n.substr(cut + 1);
    if (!out.empty()) out += "  ";
    if (prefix != group || out.empty()) out += fmt::format("{}{}", prefix, prefix.empty() ? "" : " ");
    group = prefix;
    out += metric == "accuracy" ? fmt::format("{} {:.4f}", metric, value)
                                : fmt::format("{} {:.6g}", metric, value);
  }
  return out;
}

ProgressLogger::ProgressLogger(std::ostream& out, ProgressOptions options)
    : out_(out), options_(options), bar_(out, options.bar, options.width) {}

double ProgressLogger::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressLogger::on_fit_begin(Trainer& trainer) {
  start_ = std::chrono::steady_clock::now();
  first_epoch_ = trainer.position().epoch;
  first_step_ = trainer.position().step;
  samples_ = 0;
}

void ProgressLogger::on_epoch_begin(Trainer&, std::int64_t) {
  rows_ = 0, accuracy_rows_ = 0, loss_sum_ = 0, accuracy_sum_ = 0;
}

void ProgressLogger::on_batch_end(Trainer& trainer, const StepInfo& s) {
  if (trainer.rank() != 0) return;
  // Data-parallel: s.loss is the whole batch's; the output is this rank's share of it.
  const std::int64_t n = s.data.global_rows > 0 ? s.data.global_rows : s.data.x.shape()[0],
                     mine = s.data.x.shape()[0];
  samples_ += n;
  if (!bar_.enabled()) return;
  rows_ += n;
  loss_sum_ += s.loss * static_cast<double>(n);
  Progress p;
  p.epoch = s.epoch, p.epochs = trainer.options().epochs;
  p.step = s.batch + 1, p.steps = s.batches;
  p.loss = loss_sum_ / static_cast<double>(rows_);
  for (const auto& [name, metric] : trainer.metrics())
    if (name == "accuracy") {
      if (mine > 0) accuracy_sum_ += metric(s.output.value(), s.data.y) * static_cast<double>(mine);
      accuracy_rows_ += mine;
      p.accuracy = accuracy_sum_ / static_cast<double>(std::max<std::int64_t>(accuracy_rows_, 1));
    }
  const double secs = std::max(seconds(), 1e-9);
  const auto done = static_cast<double>(s.step - first_step_);
  p.samples_per_second = static_cast<double>(samples_) / secs;
  p.eta_seconds = secs / done * static_cast<double>(p.epochs * s.batches - s.step);
  bar_.update(p, s.batch + 1 == s.batches);
}

void ProgressLogger::on_epoch_end(Trainer& trainer, std::int64_t epoch, const Logs& logs) {
  const std::int64_t epochs = trainer.options().epochs;
  const std::int64_t every = options_.every > 0 ? options_.every : std::max<std::int64_t>(1, epochs / 20);
  if (trainer.rank() != 0 || !options_.lines ||
      !(epoch == first_epoch_ || epoch == epochs || epoch % every == 0))
    return;
  bar_.clear();
  fmt::print(out_, "epoch {:>4}  {}  {:.0f} samples/s\n", epoch, format_logs(logs),
             static_cast<double>(samples_) / std::max(seconds(), 1e-9));
  out_.flush(); // progress shows even when the output goes to a file
}

void ProgressLogger::on_fit_end(Trainer&, const FitResult&) {
  bar_.clear();
}

} // namespace gg::train
