// The training progress bar of `gradgraph train`: one line redrawn in place on a terminal (epoch,
// bar, step, running loss and accuracy, samples/s, ETA), nothing at all when output is not one.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace gg::cli {

/// Where training stands, as the bar shows it.
struct Progress {
  std::int64_t epoch = 1, epochs = 1; ///< current epoch (from 1) and the last one
  std::int64_t step = 0, steps = 1;   ///< steps done in this epoch, of steps per epoch
  double loss = 0;                    ///< mean mini-batch loss so far this epoch
  double accuracy = -1;               ///< mean mini-batch accuracy so far this epoch (< 0: none)
  double samples_per_second = 0;      ///< since training (or resuming) started
  double eta_seconds = -1;            ///< time left for all epochs (< 0: not known yet)
};

/// "epoch  3/20 [#######.....]  120/469  loss 0.4312  acc 0.8451  52.1k samples/s  ETA 1m23s",
/// the bar sized so that the line fits in `width` columns (a bar of at least 10 cells).
std::string format_progress(const Progress& p, int width);
/// "45s", "1m23s", "2h05m", or "?" for a negative time.
std::string format_duration(double seconds);

/// Draws Progress on a terminal, redrawn at most ten times a second (and whenever forced).
class ProgressBar {
public:
  /// Draws on `out`; `enabled` false makes every call a no-op (output that is not a terminal).
  ProgressBar(std::ostream& out, bool enabled, int width = 100);
  bool enabled() const { return enabled_; }
  /// Redraws the line (when due, or always with force).
  void update(const Progress& p, bool force = false);
  /// Erases the line, so that ordinary output can be printed where it was.
  void clear();

private:
  std::ostream& out_;
  bool enabled_;
  int width_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

/// Whether standard output is a terminal, and its width in columns (80 when unknown).
bool stdout_is_terminal();
int terminal_width();

} // namespace gg::cli
