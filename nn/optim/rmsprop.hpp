// gg::optim::RMSprop — divides the gradient by a running root mean square (optionally centered,
// with momentum and weight decay), exactly as torch.optim.RMSprop: eps is added after the root.
#pragma once

#include <nn/optim/optimizer.hpp>

namespace gg::optim {

class RMSpropOptions {
public:
  RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
  GG_OPTIM_ARG(double, alpha) = 0.99;
  GG_OPTIM_ARG(double, eps) = 1e-8;
  GG_OPTIM_ARG(double, weight_decay) = 0;
  GG_OPTIM_ARG(double, momentum) = 0;
  GG_OPTIM_ARG(bool, centered) = false;
};

/// RMSprop's state of one parameter (torch.optim.RMSprop's names).
struct RMSpropParamState {
  /// Updates done, counted in float32 as torch.optim's "step" tensor.
  float step = 0;
  /// The running mean of g²: α·s + (1 − α)·g².
  Tensor square_avg;
  /// The momentum buffer (undefined without momentum).
  Tensor momentum_buffer;
  /// The running mean of g, subtracted from square_avg's variance (undefined unless centered).
  Tensor grad_avg;
  /// Calls f(name, field) for each field.
  template <class F> void visit(F&& f) {
    f("step", step);
    f("square_avg", square_avg);
    f("momentum_buffer", momentum_buffer);
    f("grad_avg", grad_avg);
  }
};

class RMSprop : public OptimizerWithState<RMSpropParamState> {
public:
  /// ValueError on a negative lr, alpha, eps, weight_decay or momentum.
  RMSprop(std::vector<Var> params, RMSpropOptions options = {});
  const RMSpropOptions& options() const { return options_; }

protected:
  RMSpropParamState init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, RMSpropParamState& state, bool fresh) override;

private:
  RMSpropOptions options_;
};

} // namespace gg::optim
