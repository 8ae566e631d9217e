// gg::optim::Optimizer — the base of the optimizers: the parameters, the learning rate, step(),
// zero_grad(), per-parameter state (lazily created, as torch.optim) and its save/restore. Also the
// GG_OPTIM_ARG macro that gives options structs LibTorch's chained setters.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <autodiff/tensor.hpp>
#include <autodiff/var.hpp>

/// Declares an option `name` of type T with LibTorch-style accessors: `opts.name(v)` sets it and
/// returns the options (so setters chain), `opts.name()` reads it. Write `GG_OPTIM_ARG(double, eps) = 1e-8;`
/// (the default value) or end it with `;`; what follows it in the class is private.
#define GG_OPTIM_ARG(T, name)                                                                                \
public:                                                                                                      \
  auto& name(const T& new_##name) {                                                                          \
    name##_ = new_##name;                                                                                    \
    return *this;                                                                                            \
  }                                                                                                          \
  const T& name() const {                                                                                    \
    return name##_;                                                                                          \
  }                                                                                                          \
                                                                                                             \
private:                                                                                                     \
  T name##_

namespace gg::optim {

/// The two decay rates (β₁, β₂) of Adam-like optimizers.
using Betas = std::array<double, 2>;

/// Named tensors: an optimizer's (or scheduler's) state, e.g. {"lr", ...}, {"state.0.exp_avg", ...}.
using StateList = std::vector<std::pair<std::string, Tensor>>;

/// The base of all optimizers. Parameters are leaf Vars (tensor or scalar leaves); the update is
/// done in place, in each parameter's dtype, with state tensors of that dtype.
class Optimizer {
public:
  virtual ~Optimizer() = default;
  // A copy would share the parameters and alias the state tensors: not allowed. A move is.
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  Optimizer(Optimizer&&) = default;
  Optimizer& operator=(Optimizer&&) = default;

  /// One update of every parameter that has a gradient (others are skipped, as in torch.optim).
  void step();
  /// Forgets every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  /// The learning rate the next step() uses.
  double lr() const { return lr_; }
  /// Changes the learning rate (schedulers call this); ValueError if negative or NaN.
  void set_lr(double lr);
  /// The parameters, in the order given to the constructor.
  const std::vector<Var>& parameters() const { return params_; }
  /// The optimizer's name, e.g. "Adam" (used in error messages).
  const std::string& name() const { return name_; }

  /// A copy of the state for resuming: "lr", then "state.<i>.<key>" for every parameter i that has
  /// state (keys as torch.optim's: "step", "exp_avg", "momentum_buffer", ...). "step" is a 0-d
  /// float32 tensor like PyTorch's; the other entries have the parameter's dtype.
  StateList state() const;
  /// Restores what state() returned (entries in any order); a resumed optimizer continues exactly
  /// as the saved one would have. Checks every name, shape and completeness before changing
  /// anything: a ValueError names the offending entry.
  void load_state(const StateList& entries);

protected:
  /// Checks the parameters (non-empty, defined, leaves, no duplicates) and lr.
  Optimizer(std::string name, std::vector<Var> params, double lr);

  /// Keys of the state each parameter gets, in storage order (set by the derived constructor).
  std::vector<std::string> state_keys_;
  /// The state of a parameter before its first update (one tensor per key of state_keys_).
  virtual std::vector<Tensor> init_state(const Tensor& param) const;
  /// Updates param (in place) from its gradient (same dtype). `fresh` is true when the state was
  /// just created by init_state for this step (SGD's momentum buffer starts from the gradient).
  virtual void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, bool fresh) = 0;
  /// Creates every parameter's state now (Adagrad does, as torch.optim.Adagrad's constructor).
  void init_all_state();

private:
  struct ParamState {
    bool ready = false;
    std::vector<Tensor> tensors;
  };
  std::string name_;
  std::vector<Var> params_;
  double lr_;
  std::vector<ParamState> state_;
};

namespace detail {
/// The step counter kept in state as a 0-d float32 tensor (torch.optim's layout).
inline Tensor new_step_tensor() {
  return Tensor::zeros(Shape{}, f32);
}
/// Adds one to a step tensor and returns the new count (torch.optim: step_t += 1; step_t.item()).
double advance_step(Tensor& step);
/// Throws a ValueError "<opt>: <field> must be >= 0, got <v>" unless v >= 0 (NaN fails).
void check_non_negative(std::string_view opt, std::string_view field, double v);
/// Throws unless 0 <= v < 1 ("must be in [0, 1)").
void check_unit_open(std::string_view opt, std::string_view field, double v);
} // namespace detail

} // namespace gg::optim
