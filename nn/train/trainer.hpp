// gg::train::Trainer — the training loop as a library call, in the spirit of Keras' fit and dlib's
// dnn_trainer: epochs of mini-batches from a DataLoader, evaluation and metrics after each epoch,
// learning-rate schedulers, gradient clipping, a stop on non-finite values, checkpoints that resume
// bit-exact, and callbacks (nn/train/callbacks.hpp) for logs, progress, early stopping and signals.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <autodiff/error.hpp>
#include <autodiff/var.hpp>
#include <nn/data/dataloader.hpp>
#include <nn/io/safetensors.hpp>
#include <nn/module.hpp>
#include <nn/optim/lr_scheduler.hpp>
#include <nn/optim/optimizer.hpp>
#include <nn/train/data_parallel.hpp>

namespace gg::train {

/// Training stopped because a loss or a weight became NaN or infinite; the message names the epoch,
/// the step and the value (or the parameter). The weights are those of the last finite step, or
/// (when a weight is not finite) must not be saved as a model.
class DivergedError : public ValueError {
public:
  using ValueError::ValueError;
};

/// Named numbers in a fixed order, as Keras' logs: {"train_loss", 0.41}, {"test_accuracy", 0.9}.
using Logs = std::vector<std::pair<std::string, double>>;
/// The value called name in logs, if any.
std::optional<double> find(const Logs& logs, std::string_view name);

/// The loss of a batch: the model's output and the batch's targets -> a 0-d Var (mean over rows).
using LossFn = std::function<Var(const Var& output, const Tensor& target)>;
/// A metric: the model's output [n, ...] and the targets [n, ...] -> one number (metrics::accuracy).
using MetricFn = std::function<double(const Tensor& output, const Tensor& target)>;

/// Where training stands: the next step runs batch `batch` (from 0) of epoch `epoch` (from 1), and
/// `step` optimizer steps have been taken. After the last epoch: epoch = epochs + 1, batch 0.
struct Position {
  std::int64_t epoch = 1, batch = 0, step = 0;
};

/// Why fit() returned.
enum class StopReason : std::uint8_t {
  finished,       ///< every epoch ran
  early_stopping, ///< a callback found no more progress (EarlyStopping)
  requested,      ///< Trainer::stop() was called (a callback or another thread)
  signal,         ///< a signal arrived (StopOnSignal): SIGINT, SIGTERM, SIGHUP
};

/// What fit() did.
struct FitResult {
  StopReason reason = StopReason::finished;
  /// Where it stopped: resuming from here (a checkpoint saved now) continues the same run.
  Position position;
  /// Epochs whose end was reached by this call.
  std::int64_t epochs_run = 0;
  /// The logs of the last epoch end (empty when no epoch ended).
  Logs logs;
};

/// Options of Trainer.
struct TrainerOptions {
  /// Passes over the training data (fit() runs epochs position().epoch .. epochs).
  std::int64_t epochs = 1;
  /// Scale all gradients together to at most this total norm before each step (0: off), as
  /// torch.nn.utils.clip_grad_norm_ with clip_norm_type (2, or INFINITY for the largest magnitude).
  double clip_grad_norm = 0;
  double clip_norm_type = 2;
  /// Clamp every gradient entry into [-clip_grad_value, clip_grad_value] before each step (0: off).
  double clip_grad_value = 0;
  /// At each epoch end, the loss and metrics over the whole training set ("train_loss", ...);
  /// otherwise "train_loss" is the mean of the epoch's batch losses (cheaper, as Keras reports).
  bool evaluate_train = true;
  /// Rows per forward pass in evaluate() (0: all rows in one pass).
  std::int64_t eval_batch_size = 0;
  /// The prefix of the validation data's logs: "test" gives "test_loss", "test_accuracy".
  std::string validation_name = "test";
  /// Stop with a DivergedError when a batch's loss, or a weight at an epoch end, is NaN or infinite.
  bool check_finite = true;
  /// Data-parallel: what a batch's loss is the mean over, from its targets (none: its rows). The
  /// processes' losses and gradients are weighted by it, so the step is the whole batch's when the
  /// loss skips some targets (a language model's padding: the count of targets that are not -1).
  std::function<std::int64_t(const Tensor& y)> loss_weight = {};
};

class Trainer;

/// A step just taken, as callbacks see it.
struct StepInfo {
  std::int64_t epoch, batch, step; ///< the epoch (from 1), its batch (from 0), steps taken including it
  std::int64_t batches;            ///< batches in this epoch
  double loss;                     ///< the batch's loss
  const Var& output;               ///< the model's output for the batch
  const data::Batch& data;         ///< the batch (x, y)
};

/// Hooks into fit(), called in the order the callbacks were added (Keras' Callback). A callback
/// stops training with trainer.stop(); one with state to resume (EarlyStopping) names it.
class Callback {
public:
  virtual ~Callback() = default;
  virtual void on_fit_begin(Trainer&) {}
  virtual void on_epoch_begin(Trainer&, std::int64_t /*epoch*/) {}
  /// Before each step (the place to ask for a stop before the step is taken).
  virtual void on_batch_begin(Trainer&, const Position&) {}
  /// Between backward and the optimizer's step, with the gradients as backward left them (not yet
  /// clipped); `p` is the step's position (p.step steps were taken before it).
  virtual void on_after_backward(Trainer&, const Position& /*p*/) {}
  virtual void on_batch_end(Trainer&, const StepInfo&) {}
  /// After the epoch's evaluation and the schedulers' step; trainer.position() is already the next
  /// epoch's start, so a checkpoint saved here resumes there.
  virtual void on_epoch_end(Trainer&, std::int64_t /*epoch*/, const Logs&) {}
  /// After training, however it stopped (not after an exception).
  virtual void on_fit_end(Trainer&, const FitResult&) {}

  /// A name for the state a checkpoint keeps ("" for none): entries "callback.<name>.<key>".
  virtual std::string state_name() const { return {}; }
  virtual optim::StateList state() const { return {}; }
  virtual void load_state(const optim::StateList&) {}
};

/// When an epoch-driven scheduler steps.
enum class SchedulerInterval : std::uint8_t { epoch, step };

/// The training loop:
///
///     gg::train::Trainer trainer(model, optimizer, [](const Var& out, const Tensor& y) {
///       return gg::nn::cross_entropy(out, y); }, {.epochs = 20});
///     trainer.add_metric("accuracy", gg::metrics::accuracy);
///     gg::train::FitResult r = trainer.fit(loader, x_test, y_test);
///
/// Each step: zero_grad, forward, loss (checked finite), backward, clipping, optimizer step, then
/// per-step schedulers. Each epoch end: the weights checked finite, the training (and validation)
/// loss and metrics, then the schedulers, then the callbacks. The model, optimizer, schedulers and
/// callbacks are held by reference and must outlive the trainer.
class Trainer {
public:
  /// ValueError for epochs < 1, negative clipping bounds or eval_batch_size.
  Trainer(nn::Module& model, optim::Optimizer& optimizer, LossFn loss, TrainerOptions options = {});

  /// Computes name over outputs and targets at each evaluation (logs "<prefix>_<name>").
  Trainer& add_metric(std::string name, MetricFn metric);
  Trainer& add_callback(Callback& callback);
  /// StepLR, ExponentialLR, CosineAnnealingLR: step() once per epoch (or per optimizer step).
  Trainer& add_scheduler(optim::LRScheduler& scheduler,
                         SchedulerInterval interval = SchedulerInterval::epoch);
  /// ReduceLROnPlateau: step(logs[monitor]) at each epoch end (ValueError there when it is missing).
  Trainer& add_scheduler(optim::ReduceLROnPlateau& scheduler, std::string monitor = "test_loss");
  /// Trains as one of several processes (gg::distributed::DistributedDataParallel): each step's loss
  /// is the whole batch's and its gradients are averaged over the processes before clipping and the
  /// optimizer; evaluate() and predict() split the rows among them and gather the outputs, so the
  /// logs are the whole data's, the same on every process; a stop asked for on one process stops all
  /// at the same step; only rank 0's callbacks log, print and save (save_checkpoint writes on rank 0
  /// only; every rank reads one). fit()'s loader must have this rank and world size.
  Trainer& set_data_parallel(DataParallel& data_parallel);
  /// This process's rank and the number of processes (0 and 1 without set_data_parallel).
  int rank() const { return data_parallel_ ? data_parallel_->rank() : 0; }
  int world_size() const { return data_parallel_ ? data_parallel_->world_size() : 1; }

  /// Trains from position() to the end of options().epochs on the loader's batches, evaluating on
  /// (x_val, y_val) when given. Resuming (after load_checkpoint, or a stopped fit) replays the
  /// loader's earlier shuffles, so the batches are those of an uninterrupted run. DivergedError on a
  /// non-finite loss or weight (check_finite).
  FitResult fit(data::DataLoader& loader, const Tensor& x_val = {}, const Tensor& y_val = {});
  /// One optimizer step on (x, y) outside fit(): the loss before the step.
  double train_step(const Tensor& x, const Tensor& y);
  /// The loss and metrics over (x, y) in eval mode without recording: {"<prefix>_loss", ...} (no
  /// prefix: {"loss", ...}).
  Logs evaluate(const Tensor& x, const Tensor& y, std::string_view prefix = {});
  /// The model's outputs for x, in eval mode without recording (eval_batch_size rows at a time).
  Tensor predict(const Tensor& x);

  /// Asks fit() to stop before its next step (callbacks, another thread); the reason is reported.
  void stop(StopReason reason = StopReason::requested);
  /// Whether a stop was asked for and not yet acted on.
  bool stop_requested() const { return stop_.load() >= 0; }
  /// Whether a stop was asked for on any process (data-parallel: collective, every process calls it
  /// at the same step; then this one's stop_requested() too). fit() asks before each step.
  bool agree_on_stop();

  const Position& position() const { return position_; }
  nn::Module& model() const { return *model_; }
  optim::Optimizer& optimizer() const { return *optimizer_; }
  const TrainerOptions& options() const { return options_; }
  const std::vector<std::pair<std::string, MetricFn>>& metrics() const { return metrics_; }

  /// Everything a resumed run needs, in one safetensors file written atomically: "model.<name>"
  /// (state dict), "optimizer.<name>", "scheduler.<i>.<name>", "callback.<name>.<key>", and in the
  /// metadata the position ("gradgraph.epoch", "gradgraph.batch", "gradgraph.step") with `metadata`.
  /// In a data-parallel run only rank 0 writes it (the ranks' states are the same): a resumed run may
  /// have another number of processes.
  void save_checkpoint(const std::string& path,
                       const std::map<std::string, std::string>& metadata = {}) const;
  /// The same as tensors and metadata (what save_checkpoint writes).
  std::pair<optim::StateList, std::map<std::string, std::string>>
  checkpoint(const std::map<std::string, std::string>& metadata = {}) const;
  /// Restores a checkpoint into the model, optimizer, schedulers and callbacks (all checked before
  /// any changes) and sets position(); the next fit() continues there. Returns the metadata.
  std::map<std::string, std::string> load_checkpoint(const safetensors::File& file);
  std::map<std::string, std::string> load_checkpoint(const std::string& path);

private:
  struct Plateau {
    optim::ReduceLROnPlateau* scheduler;
    std::string monitor;
  };
  /// The step itself; `output` receives the model's output (undefined on a process without rows).
  double step(const Tensor& x, const Tensor& y, Var& output);
  void check_weights(std::int64_t epoch) const;
  /// Loads the optimizer, scheduler and callback entries of a checkpoint's tensors.
  void load_parts(const optim::StateList& all);
  FitResult finish(FitResult result);

  nn::Module* model_;
  optim::Optimizer* optimizer_;
  LossFn loss_;
  TrainerOptions options_;
  std::vector<std::pair<std::string, MetricFn>> metrics_;
  std::vector<Callback*> callbacks_;
  std::vector<std::pair<optim::LRScheduler*, SchedulerInterval>> schedulers_;
  std::vector<Plateau> plateaus_;
  DataParallel* data_parallel_ = nullptr;
  Position position_;
  std::atomic<int> stop_{-1}; ///< the StopReason asked for, or -1
};

/// Whether every value of the model's parameters and buffers is finite; otherwise the state-dict name
/// of the first entry that is not.
std::optional<std::string> first_non_finite(const nn::Module& model);

/// A fingerprint of tensors' contents (dtype, shape and every value's bits; an undefined tensor
/// counts as one): 16 hex digits that change when anything changes, to tell whether the data of a
/// run is the data a checkpoint was made with. Not cryptographic; the same on every machine of
/// the same byte order.
std::string fingerprint(const std::vector<Tensor>& tensors);

} // namespace gg::train
