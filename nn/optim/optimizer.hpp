// gg::optim::Optimizer — the base of the optimizers: the parameters, the learning rate, step(),
// zero_grad(), and saving and restoring the state; OptimizerWithState<State>, which keeps each
// parameter's state as a named struct (lazily created, as torch.optim). Also the GG_OPTIM_ARG
// macro that gives options structs LibTorch's chained setters.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
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

namespace detail {
/// The fields of a per-parameter state struct by name, as its visit() reports them: saved as
/// "state.<i>.<key>", restored and checked by the same names. A Tensor field left undefined by
/// init_state does not exist in this configuration (max_exp_avg_sq without AMSGrad).
class StateFields {
public:
  /// A tensor field (the parameter's shape and dtype, or 0-d).
  void operator()(std::string_view key, Tensor& tensor);
  /// A step count, kept in float32 as torch.optim's "step" tensor (so resumed runs round alike).
  void operator()(std::string_view key, float& count);

  /// The keys, in storage order.
  std::vector<std::string> keys() const;
  /// Appends copies of the fields as "state.<i>.<key>" (a count as a 0-d float32 tensor).
  void save(std::size_t i, StateList& out) const;
  /// Copies saved entries (by key) into the fields, converting dtypes; ValueError "<where>: ..."
  /// naming the entry when one is missing, undefined or of another shape than the field's.
  void restore(std::size_t i, const std::map<std::string, Tensor, std::less<>>& saved,
               std::string_view where);

private:
  struct Field {
    std::string_view key;
    Tensor* tensor = nullptr;
    float* count = nullptr;
  };
  std::vector<Field> fields_;
};
} // namespace detail

/// The base of all optimizers. Parameters are leaf Vars (tensor or scalar leaves); the update is
/// done in place, in each parameter's dtype, with state tensors of that dtype. Each optimizer keeps
/// its per-parameter state as a named struct (AdamParamState, ...): see OptimizerWithState.
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

  /// Saved state entries by parameter, then key.
  using SavedState = std::map<std::size_t, std::map<std::string, Tensor, std::less<>>>;
  /// Updates parameter i (in place) from its gradient (same dtype), making its state first if needed.
  /// Runs inside gg::update_leaves: backward, zero_grad or set_grad here is a UsageError.
  virtual void update_param(std::size_t i, Tensor& param, const Tensor& grad) = 0;
  /// The keys of a parameter's state in this configuration, in storage order.
  virtual std::vector<std::string> state_keys() const = 0;
  /// Appends parameter i's state as "state.<i>.<key>" entries (nothing before its first update).
  virtual void save_state(std::size_t i, StateList& out) const = 0;
  /// Replaces every parameter's state by the saved one (fresh where nothing was saved), or throws
  /// a ValueError "<where>: ..." and changes nothing.
  virtual void restore_state(const SavedState& saved, std::string_view where) = 0;

private:
  std::string name_;
  std::vector<Var> params_;
  double lr_;
};

/// The base of an optimizer whose per-parameter state is the struct State, as LibTorch's
/// OptimizerParamState (AdamParamState: step, exp_avg, exp_avg_sq, max_exp_avg_sq): one State per
/// parameter, made by init_state before the parameter's first update (torch.optim's lazy state),
/// updated by update, and saved and restored by the names State::visit gives its fields.
template <class State> class OptimizerWithState : public Optimizer {
public:
  /// Parameter i's state, or null before its first update.
  const State* param_state(std::size_t i) const { return states_.at(i) ? &*states_[i] : nullptr; }

protected:
  using Optimizer::Optimizer;

  /// The state of a parameter before its first update.
  virtual State init_state(const Tensor& param) const = 0;
  /// Updates param (in place) from its gradient (same dtype). `fresh` is true when the state was
  /// just made by init_state for this step (SGD's momentum buffer starts from the gradient).
  virtual void update(Tensor& param, const Tensor& grad, State& state, bool fresh) = 0;
  /// Makes every parameter's state now (Adagrad does, as torch.optim.Adagrad's constructor).
  void init_all_state() {
    for (std::size_t i = 0; i < states_.size(); ++i) states_[i] = init_state(parameters()[i].value());
  }

private:
  static detail::StateFields fields(State& s) {
    detail::StateFields f;
    s.visit(f);
    return f;
  }
  void update_param(std::size_t i, Tensor& param, const Tensor& grad) final {
    const bool fresh = !states_[i];
    if (fresh) states_[i] = init_state(param);
    update(param, grad, *states_[i], fresh);
  }
  std::vector<std::string> state_keys() const final {
    State probe = init_state(parameters().front().value());
    return fields(probe).keys();
  }
  void save_state(std::size_t i, StateList& out) const final {
    if (!states_[i]) return;
    State view = *states_[i]; // shares the tensors: visit() needs a non-const struct
    fields(view).save(i, out);
  }
  void restore_state(const SavedState& saved, std::string_view where) final {
    std::vector<std::optional<State>> next(states_.size());
    for (const auto& [i, entries] : saved) {
      next[i] = init_state(parameters()[i].value());
      fields(*next[i]).restore(i, entries, where);
    }
    states_ = std::move(next);
  }

  std::vector<std::optional<State>> states_ = std::vector<std::optional<State>>(parameters().size());
};

/// The state of an optimizer that keeps none (GD).
struct NoParamState {
  template <class F> void visit(F&&) {}
};

namespace detail {
/// Adds one to a float32 step count and returns the new count (torch.optim: step_t += 1;
/// step_t.item(), on a float32 tensor).
inline double advance_step(float& step) {
  step += 1.0f;
  return step;
}
/// Throws a ValueError "<opt>: <field> must be >= 0, got <v>" unless v >= 0 (NaN fails).
void check_non_negative(std::string_view opt, std::string_view field, double v);
/// Throws unless 0 <= v < 1 ("must be in [0, 1)").
void check_unit_open(std::string_view opt, std::string_view field, double v);
} // namespace detail

} // namespace gg::optim
