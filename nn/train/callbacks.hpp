// The Trainer's ready-made callbacks, as Keras and PyTorch Lightning name them: LambdaCallback,
// History (the logs of every epoch), EarlyStopping, JsonLinesLogger (one JSON line per step and per epoch),
// ModelCheckpoint (every few epochs and when stopped, with a fallback place when the disk fails),
// and StopOnSignal (Ctrl-C, SIGTERM, SIGHUP stop before the next step). ProgressLogger is in
// nn/train/progress.hpp.
#pragma once

#include <nn/train/trainer.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gg::train {

/// Every epoch end's logs, in order: the curves of a run (Keras' History).
class History : public Callback {
public:
  void on_epoch_end(Trainer&, std::int64_t epoch, const Logs& logs) override;
  /// The epochs recorded (their numbers, from 1).
  const std::vector<double>& epochs() const { return epochs_; }
  /// The values of one log entry, one per recorded epoch (NaN where an epoch did not have it).
  std::vector<double> series(std::string_view name) const;
  /// Whether any epoch logged name.
  bool has(std::string_view name) const;

private:
  std::vector<double> epochs_;
  std::vector<Logs> logs_;
};

/// A callback made of functions, for one-off needs (Keras' LambdaCallback): each hook that is set is
/// called; the others do nothing.
///
///     gg::train::LambdaCallback report({.batch_end = [&](gg::train::Trainer&, const gg::train::StepInfo& s)
///     {
///       if (s.step % 100 == 0) std::cout << s.step << " " << s.loss << "\n"; }});
class LambdaCallback : public Callback {
public:
  struct Hooks {
    std::function<void(Trainer&)> fit_begin{};
    std::function<void(Trainer&, std::int64_t epoch)> epoch_begin{};
    std::function<void(Trainer&, const Position&)> batch_begin{};
    std::function<void(Trainer&, const Position&)> after_backward{};
    std::function<void(Trainer&, const StepInfo&)> batch_end{};
    std::function<void(Trainer&, std::int64_t epoch, const Logs&)> epoch_end{};
    std::function<void(Trainer&, const FitResult&)> fit_end{};
  };
  explicit LambdaCallback(Hooks hooks) : hooks_(std::move(hooks)) {}
  void on_fit_begin(Trainer& t) override { call(hooks_.fit_begin, t); }
  void on_epoch_begin(Trainer& t, std::int64_t epoch) override { call(hooks_.epoch_begin, t, epoch); }
  void on_batch_begin(Trainer& t, const Position& p) override { call(hooks_.batch_begin, t, p); }
  void on_after_backward(Trainer& t, const Position& p) override { call(hooks_.after_backward, t, p); }
  void on_batch_end(Trainer& t, const StepInfo& s) override { call(hooks_.batch_end, t, s); }
  void on_epoch_end(Trainer& t, std::int64_t epoch, const Logs& logs) override {
    call(hooks_.epoch_end, t, epoch, logs);
  }
  void on_fit_end(Trainer& t, const FitResult& r) override { call(hooks_.fit_end, t, r); }

private:
  template <class F, class... A> static void call(const F& f, A&&... a) {
    if (f) f(std::forward<A>(a)...);
  }
  Hooks hooks_;
};

/// Whether a monitored value should go down (a loss) or up (an accuracy).
enum class Mode : std::uint8_t { min, max };

/// Options of EarlyStopping (Keras' names).
struct EarlyStoppingOptions {
  std::string monitor = "test_loss";
  Mode mode = Mode::min;
  /// Epochs without improvement tolerated before stopping.
  std::int64_t patience = 5;
  /// The smallest change that counts as an improvement.
  double min_delta = 0;
  /// At the stop, put back the weights of the best epoch.
  bool restore_best_weights = false;
};

/// Stops training when the monitored log entry has not improved by min_delta for `patience`
/// epochs (StopReason::early_stopping). Its counters (and best weights) go into checkpoints.
class EarlyStopping : public Callback {
public:
  /// ValueError for a negative patience or min_delta, or an empty monitor.
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  void on_epoch_end(Trainer& trainer, std::int64_t epoch, const Logs& logs) override;
  std::string state_name() const override { return "early_stopping"; }
  optim::StateList state() const override;
  void load_state(const optim::StateList& entries) override;

  /// The best value so far (+inf for min, -inf for max before any epoch) and its epoch (0: none).
  double best() const { return best_; }
  std::int64_t best_epoch() const { return best_epoch_; }
  /// Epochs since the best one.
  std::int64_t wait() const { return wait_; }
  /// The epoch at whose end training was stopped (0: not stopped).
  std::int64_t stopped_epoch() const { return stopped_epoch_; }

private:
  EarlyStoppingOptions options_;
  double best_;
  std::int64_t best_epoch_ = 0, wait_ = 0, stopped_epoch_ = 0;
  optim::StateList best_weights_;
};

/// JSON text for a number: finite values in the shortest form that reads back exactly, the others
/// as the strings "nan", "inf" and "-inf" (JSON has no literal for them).
std::string json_number(double v);
/// A JSON string literal for text (quotes, backslashes and control characters escaped).
std::string json_string(std::string_view text);
/// One JSON object on one line, members in order: {"step": 3, "epoch": 1, "loss": 0.25}.
std::string json_line(const Logs& fields);

/// Options of JsonLinesLogger.
struct JsonLinesOptions {
  /// One line {"step": S, "epoch": E, "loss": L} per step (otherwise only epoch lines).
  bool steps = true;
  /// Writes one record as a line of JSON without the newline (default json_line; a program with its
  /// own JSON policy passes its writer).
  std::function<std::string(const Logs& fields)> format = json_line;
  /// Called once with the error's message when a write fails; the logger then stops writing.
  std::function<void(const std::string&)> on_error{};
};

/// Writes the run as JSON lines through `write`: a step line per step and an epoch line
/// {"epoch": E, "train_loss": ..., ...} per epoch end. A failing write (a full disk) never stops
/// training: the logger records the first error (error()), tells on_error and writes no more.
class JsonLinesLogger : public Callback {
public:
  explicit JsonLinesLogger(std::function<void(std::string_view line)> write, JsonLinesOptions options = {});
  void on_batch_end(Trainer&, const StepInfo& step) override;
  void on_epoch_end(Trainer&, std::int64_t epoch, const Logs& logs) override;
  /// The message of the first failed write ("" while none failed).
  const std::string& error() const { return error_; }

private:
  void emit(const std::string& line);
  std::function<void(std::string_view)> write_;
  JsonLinesOptions options_;
  std::string error_;
};

/// Where a checkpoint went: the path asked for, or a fallback, with the reason the path failed.
struct SavedCheckpoint {
  std::string path{};
  std::string failure; ///< why the asked-for path could not be written ("" when it was)
};

/// Saves trainer's checkpoint at path; when that fails (a full disk, a folder in the way, a missing
/// folder), as "gradgraph-rescue-<pid>-<time>.safetensors" in path's folder, then in the temporary
/// folder ($TMPDIR or /tmp). IOError only when all three fail, naming each reason.
SavedCheckpoint save_checkpoint_with_fallback(const Trainer& trainer, const std::string& path,
                                              const std::map<std::string, std::string>& metadata = {});

/// Options of ModelCheckpoint.
struct CheckpointOptions {
  std::string path{};
  /// Save at the end of every n-th epoch (0: never).
  std::int64_t every_epochs = 0;
  /// Save when fit() stops early on request or on a signal (the position to resume from).
  bool on_stop = true;
  /// Metadata written with each checkpoint (called at each save).
  std::function<std::map<std::string, std::string>()> metadata{};
};

/// Saves checkpoints Trainer::load_checkpoint resumes from (through save_checkpoint_with_fallback).
/// Add it last: it saves the other callbacks' state as their on_epoch_end left it.
class ModelCheckpoint : public Callback {
public:
  /// ValueError for an empty path or a negative every_epochs.
  explicit ModelCheckpoint(CheckpointOptions options);
  void on_epoch_end(Trainer& trainer, std::int64_t epoch, const Logs& logs) override;
  void on_fit_end(Trainer& trainer, const FitResult& result) override;
  /// The last save (path empty before any).
  const SavedCheckpoint& last() const { return last_; }

private:
  CheckpointOptions options_;
  SavedCheckpoint last_;
};

/// While alive, SIGINT, SIGTERM and SIGHUP (Ctrl-C, docker stop, `timeout`, a closed terminal) ask
/// the trainer to stop before its next step (StopReason::signal) instead of ending the process; a
/// second signal ends it as the default action would. The previous handlers come back at
/// destruction. One StopOnSignal at a time per process.
class StopOnSignal : public Callback {
public:
  StopOnSignal();
  ~StopOnSignal() override;
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  void on_batch_begin(Trainer& trainer, const Position&) override;
  /// The signal that arrived (0: none yet).
  int signal() const;

private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

} // namespace gg::train
