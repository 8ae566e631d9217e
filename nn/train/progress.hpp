// Training progress for people: a one-line bar redrawn in place on a terminal (epoch, bar, step,
// running loss and accuracy, samples/s, ETA) and a line per reported epoch (Keras' progress bar
// and verbose=2), as the ProgressLogger callback of gg::train::Trainer.
#pragma once

#include <nn/train/trainer.hpp>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace gg::train {

/// Where training stands, as the bar shows it.
struct Progress {
  std::int64_t epoch = 1, epochs = 1; ///< current epoch (from 1) and the last one
  std::int64_t step = 0, steps = 1;   ///< steps done in this epoch, of steps per epoch
  double loss = 0;                    ///< mean loss over the examples so far this epoch
  double accuracy = -1;               ///< accuracy over the examples so far this epoch (< 0: none)
  double samples_per_second = 0;      ///< since training (or resuming) started
  double eta_seconds = -1;            ///< time left for all epochs (< 0: not known yet)
};

/// "epoch  3/20 [#######.....]  120/469  loss 0.4312  acc 0.8451  52.1k samples/s  ETA 1m23s",
/// the bar sized so that the line fits in `width` columns (a bar of at least 10 cells).
std::string format_progress(const Progress& p, int width);
/// "[=====>    ]": `cells` cells between brackets, the share `done` (0 to 1) of them filled.
std::string format_bar(double done, int cells);
/// "45s", "1m23s", "2h05m", or "?" for a negative time.
std::string format_duration(double seconds);
/// An epoch end's logs as text: "train loss 0.41  accuracy 0.9000  test loss 0.52  accuracy
/// 0.8800" (accuracies with 4 decimals, other values with 6 significant digits).
std::string format_logs(const Logs& logs);

/// Draws Progress on a terminal, redrawn at most ten times a second (and whenever forced).
class ProgressBar {
public:
  /// Draws on `out`; `enabled` false makes every call a no-op (output that is not a terminal).
  ProgressBar(std::ostream& out, bool enabled, int width = 100);
  bool enabled() const { return enabled_; }
  /// Redraws the line (when due, or always with force).
  void update(const Progress& p, bool force = false);
  /// Draws another line in its place (when due, or always with force): a bar of other units.
  void draw(const std::string& line, bool force = false);
  int width() const { return width_; }
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

/// Options of ProgressLogger.
struct ProgressOptions {
  /// The bar, redrawn after each step (for a terminal).
  bool bar = false;
  int width = 80;
  /// "epoch    3  train loss ...  1234 samples/s" for the first and last epoch of the run and every
  /// `every` epochs (0: every epochs/20, at least 1).
  bool lines = true;
  std::int64_t every = 0;
};

/// Shows training progress on a stream: the bar during epochs, a line per reported epoch.
class ProgressLogger : public Callback {
public:
  explicit ProgressLogger(std::ostream& out, ProgressOptions options = {});
  void on_fit_begin(Trainer& trainer) override;
  void on_epoch_begin(Trainer&, std::int64_t epoch) override;
  void on_batch_end(Trainer& trainer, const StepInfo& step) override;
  void on_epoch_end(Trainer& trainer, std::int64_t epoch, const Logs& logs) override;
  void on_fit_end(Trainer&, const FitResult&) override;
  /// Erases the bar, so that other output can be printed.
  void clear() { bar_.clear(); }
  /// Examples trained on since fit() began: the batches' real sizes (a last, smaller batch counts its
  /// rows), which samples/s divides by the time.
  std::int64_t samples() const { return samples_; }

private:
  double seconds() const;
  std::ostream& out_;
  ProgressOptions options_;
  ProgressBar bar_;
  std::chrono::steady_clock::time_point start_{};
  std::int64_t first_epoch_ = 1, first_step_ = 0, samples_ = 0;
  /// Examples of this epoch's steps run by this fit, and their losses and accuracies weighted by
  /// their batch's size: the running means are means over examples, as the epoch's are (batches of
  /// 32, 32, 32 and 24 rows weigh 32:32:32:24, not 1:1:1:1). In a data-parallel run the loss is the
  /// whole batch's and the accuracy that of rank 0's share of it (accuracy_rows_).
  std::int64_t rows_ = 0, accuracy_rows_ = 0;
  double loss_sum_ = 0, accuracy_sum_ = 0;
};

} // namespace gg::train
