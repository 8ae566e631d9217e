// Learning-rate schedulers, as torch.optim.lr_scheduler computes them (the recursive "chainable"
// forms of PyTorch 1.13): StepLR, ExponentialLR, CosineAnnealingLR and ReduceLROnPlateau. Each
// holds a reference to its optimizer, which must outlive it, and changes it through set_lr().
#pragma once

#include <cstdint>

#include <nn/optim/optimizer.hpp>

namespace gg::optim {

/// The base of the epoch-driven schedulers. Construction performs PyTorch's initial step (epoch 0,
/// lr unchanged); call step() once per epoch after the epoch's optimizer.step() calls.
class LRScheduler {
public:
  virtual ~LRScheduler() = default;

  /// Advances one epoch and sets the optimizer's learning rate.
  void step();
  /// The learning rate set by the last step() or by the constructor (PyTorch returns one per
  /// parameter group; gg optimizers have one group).
  double get_last_lr() const { return last_lr_; }
  /// Epochs stepped (0 after construction).
  std::int64_t last_epoch() const { return last_epoch_; }
  /// The optimizer's learning rate when the scheduler was made (PyTorch's initial_lr).
  double base_lr() const { return base_lr_; }
  Optimizer& optimizer() const { return *optimizer_; }

  /// "last_epoch", "base_lr" and "last_lr" as 0-d float64 tensors, for resuming.
  StateList state() const;
  /// Restores what state() returned (ValueError naming a missing or unknown entry). The
  /// optimizer's own lr is restored by its load_state.
  void load_state(const StateList& entries);

protected:
  explicit LRScheduler(Optimizer& optimizer);
  /// PyTorch's initial step; derived constructors call it last (virtual calls need the derived
  /// object complete).
  void initial_step();
  /// The learning rate for last_epoch(), from the optimizer's current one.
  virtual double get_lr() const = 0;

private:
  Optimizer* optimizer_;
  double base_lr_;
  std::int64_t last_epoch_ = -1;
  double last_lr_;
};

/// lr × gamma every step_size epochs.
class StepLR : public LRScheduler {
public:
  /// ValueError unless step_size >= 1.
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

protected:
  double get_lr() const override;

private:
  std::int64_t step_size_;
  double gamma_;
};

/// lr × gamma every epoch.
class ExponentialLR : public LRScheduler {
public:
  ExponentialLR(Optimizer& optimizer, double gamma);

protected:
  double get_lr() const override;

private:
  double gamma_;
};

/// η_t = η_min + ½(η_max − η_min)(1 + cos(π t / T_max)), computed recursively from the current lr
/// as PyTorch does (so it composes with other changes of the lr); past T_max it rises again.
class CosineAnnealingLR : public LRScheduler {
public:
  /// ValueError unless t_max >= 1.
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min = 0);

protected:
  double get_lr() const override;

private:
  std::int64_t t_max_;
  double eta_min_;
};

/// Whether ReduceLROnPlateau's metric should go down (a loss) or up (an accuracy).
enum class PlateauMode { min, max };
/// Whether "better" means better than best·(1 ∓ threshold) (rel) or best ∓ threshold (abs).
enum class ThresholdMode { rel, abs };

class ReduceLROnPlateauOptions {
  GG_OPTIM_ARG(PlateauMode, mode) = PlateauMode::min;
  GG_OPTIM_ARG(double, factor) = 0.1;
  GG_OPTIM_ARG(std::int64_t, patience) = 10;
  GG_OPTIM_ARG(double, threshold) = 1e-4;
  GG_OPTIM_ARG(ThresholdMode, threshold_mode) = ThresholdMode::rel;
  GG_OPTIM_ARG(std::int64_t, cooldown) = 0;
  GG_OPTIM_ARG(double, min_lr) = 0;
  GG_OPTIM_ARG(double, eps) = 1e-8;
};

/// Multiplies the lr by factor (not below min_lr; changes smaller than eps are skipped) when the
/// metric has not improved for more than patience epochs; then waits cooldown epochs.
class ReduceLROnPlateau {
public:
  /// ValueError unless factor < 1.
  explicit ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});

  /// One epoch with the metric's value (e.g. the validation loss).
  void step(double metric);
  /// The optimizer's lr after the last step (its lr at construction before any).
  double get_last_lr() const { return last_lr_; }
  std::int64_t last_epoch() const { return last_epoch_; }
  /// The best metric so far (+inf in min mode, -inf in max mode before any step).
  double best() const { return best_; }
  std::int64_t num_bad_epochs() const { return num_bad_epochs_; }
  std::int64_t cooldown_counter() const { return cooldown_counter_; }
  const ReduceLROnPlateauOptions& options() const { return options_; }
  Optimizer& optimizer() const { return *optimizer_; }

  /// "last_epoch", "best", "num_bad_epochs", "cooldown_counter", "last_lr" (0-d float64).
  StateList state() const;
  /// Restores what state() returned (ValueError naming a missing or unknown entry).
  void load_state(const StateList& entries);

private:
  bool is_better(double a) const;

  Optimizer* optimizer_;
  ReduceLROnPlateauOptions options_;
  std::int64_t last_epoch_ = 0;
  double best_;
  std::int64_t num_bad_epochs_ = 0;
  std::int64_t cooldown_counter_ = 0;
  double last_lr_;
};

} // namespace gg::optim
