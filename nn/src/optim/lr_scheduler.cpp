// The learning-rate schedulers: PyTorch 1.13's get_lr() formulas (recursive, from the optimizer's
// current lr), ReduceLROnPlateau's bookkeeping, and their state for resuming.
#include "fp_mode.hpp"

#include <nn/optim/lr_scheduler.hpp>

#include <cmath>
#include <limits>
#include <numbers>

#include <fmt/format.h>

#include "update.hpp"

namespace gg::optim {

namespace {

/// Reads 0-d entries by name into the given slots; ValueError on an unknown, repeated, missing or
/// non-scalar entry. Nothing changes unless all are valid.
void load_scalars(std::string_view where, const StateList& entries,
                  const std::vector<std::pair<std::string_view, double*>>& slots) {
  std::vector<double> values(slots.size());
  std::vector<bool> seen(slots.size(), false);
  for (const auto& [name, t] : entries) {
    std::size_t k = 0;
    while (k < slots.size() && slots[k].first != name) ++k;
    if (k == slots.size()) throw ValueError(fmt::format("{}: unknown entry \"{}\"", where, name));
    if (seen[k]) throw ValueError(fmt::format("{}: entry \"{}\" appears twice", where, name));
    if (!t.defined() || t.numel() != 1)
      throw ValueError(fmt::format("{}: entry \"{}\" must have one element", where, name));
    values[k] = t.item();
    seen[k] = true;
  }
  for (std::size_t k = 0; k < slots.size(); ++k)
    if (!seen[k]) throw ValueError(fmt::format("{}: missing entry \"{}\"", where, slots[k].first));
  for (std::size_t k = 0; k < slots.size(); ++k) *slots[k].second = values[k];
}

} // namespace

LRScheduler::LRScheduler(Optimizer& optimizer)
    : optimizer_(&optimizer), base_lr_(optimizer.lr()), last_lr_(optimizer.lr()) {}

void LRScheduler::initial_step() {
  step();
}

void LRScheduler::step() {
  ++last_epoch_;
  optimizer_->set_lr(get_lr());
  last_lr_ = optimizer_->lr();
}

StateList LRScheduler::state() const {
  return {{"last_epoch", Tensor::scalar(static_cast<double>(last_epoch_))},
          {"base_lr", Tensor::scalar(base_lr_)},
          {"last_lr", Tensor::scalar(last_lr_)}};
}

void LRScheduler::load_state(const StateList& entries) {
  double epoch = 0;
  load_scalars("LRScheduler.load_state", entries,
               {{"last_epoch", &epoch}, {"base_lr", &base_lr_}, {"last_lr", &last_lr_}});
  last_epoch_ = static_cast<std::int64_t>(epoch);
}

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size < 1) throw ValueError(fmt::format("StepLR: step_size must be >= 1, got {}", step_size));
  initial_step();
}

double StepLR::get_lr() const {
  const double lr = optimizer().lr();
  if (last_epoch() == 0 || last_epoch() % step_size_ != 0) return lr;
  return lr * gamma_;
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) {
  initial_step();
}

double ExponentialLR::get_lr() const {
  const double lr = optimizer().lr();
  return last_epoch() == 0 ? lr : lr * gamma_;
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min)
    : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
  if (t_max < 1) throw ValueError(fmt::format("CosineAnnealingLR: t_max must be >= 1, got {}", t_max));
  initial_step();
}

double CosineAnnealingLR::get_lr() const {
  constexpr double pi = std::numbers::pi;
  const double lr = optimizer().lr();
  const std::int64_t e = last_epoch();
  const double t_max = static_cast<double>(t_max_);
  if (e == 0) return lr;
  // At T_cur = (2k+1)·T_max the recursive ratio below would divide by zero: PyTorch adds the
  // step of the rising half instead. (Only divisibility matters, so C++'s % sign is harmless.)
  if ((e - 1 - t_max_) % (2 * t_max_) == 0)
    return lr + (base_lr() - eta_min_) * (1 - std::cos(pi / t_max)) / 2;
  return (1 + std::cos(pi * static_cast<double>(e) / t_max)) /
             (1 + std::cos(pi * static_cast<double>(e - 1) / t_max)) * (lr - eta_min_) +
         eta_min_;
}

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options)
    : optimizer_(&optimizer), options_(options), last_lr_(optimizer.lr()) {
  if (!(options.factor() < 1))
    throw ValueError(fmt::format("ReduceLROnPlateau: factor must be < 1, got {}", options.factor()));
  best_ = options.mode() == PlateauMode::min ? std::numeric_limits<double>::infinity()
                                             : -std::numeric_limits<double>::infinity();
}

bool ReduceLROnPlateau::is_better(double a) const {
  const ReduceLROnPlateauOptions& o = options_;
  if (o.mode() == PlateauMode::min)
    return o.threshold_mode() == ThresholdMode::rel ? a < best_ * (1. - o.threshold())
                                                    : a < best_ - o.threshold();
  return o.threshold_mode() == ThresholdMode::rel ? a > best_ * (o.threshold() + 1.)
                                                  : a > best_ + o.threshold();
}

void ReduceLROnPlateau::step(double metric) {
  const ReduceLROnPlateauOptions& o = options_;
  ++last_epoch_;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0; // bad epochs in cooldown do not count
  }
  if (num_bad_epochs_ > o.patience()) {
    const double old_lr = optimizer_->lr();
    const double new_lr = std::max(old_lr * o.factor(), o.min_lr());
    if (old_lr - new_lr > o.eps()) optimizer_->set_lr(new_lr);
    cooldown_counter_ = o.cooldown();
    num_bad_epochs_ = 0;
  }
  last_lr_ = optimizer_->lr();
}

StateList ReduceLROnPlateau::state() const {
  return {{"last_epoch", Tensor::scalar(static_cast<double>(last_epoch_))},
          {"best", Tensor::scalar(best_)},
          {"num_bad_epochs", Tensor::scalar(static_cast<double>(num_bad_epochs_))},
          {"cooldown_counter", Tensor::scalar(static_cast<double>(cooldown_counter_))},
          {"last_lr", Tensor::scalar(last_lr_)}};
}

void ReduceLROnPlateau::load_state(const StateList& entries) {
  double epoch = 0, bad = 0, cooldown = 0;
  load_scalars("ReduceLROnPlateau.load_state", entries,
               {{"last_epoch", &epoch},
                {"best", &best_},
                {"num_bad_epochs", &bad},
                {"cooldown_counter", &cooldown},
                {"last_lr", &last_lr_}});
  last_epoch_ = static_cast<std::int64_t>(epoch);
  num_bad_epochs_ = static_cast<std::int64_t>(bad);
  cooldown_counter_ = static_cast<std::int64_t>(cooldown);
}

} // namespace gg::optim
