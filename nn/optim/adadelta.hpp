// gg::optim::Adadelta — step sizes from running averages of squared gradients and squared updates
// (Zeiler 2012), exactly as torch.optim.Adadelta (lr 1.0 scales the update).
#pragma once

#include <nn/optim/optimizer.hpp>

namespace gg::optim {

class AdadeltaOptions {
public:
  AdadeltaOptions(double lr = 1.0) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
  GG_OPTIM_ARG(double, rho) = 0.9;
  GG_OPTIM_ARG(double, eps) = 1e-6;
  GG_OPTIM_ARG(double, weight_decay) = 0;
};

/// Adadelta's state of one parameter (torch.optim.Adadelta's names).
struct AdadeltaParamState {
  /// Updates done, counted in float32 as torch.optim's "step" tensor.
  float step = 0;
  /// The running mean of g²: ρ·s + (1 − ρ)·g².
  Tensor square_avg;
  /// The running mean of the squared updates Δ².
  Tensor acc_delta;
  /// Calls f(name, field) for each field.
  template <class F> void visit(F&& f) {
    f("step", step);
    f("square_avg", square_avg);
    f("acc_delta", acc_delta);
  }
};

class Adadelta : public OptimizerWithState<AdadeltaParamState> {
public:
  /// ValueError on a negative lr, eps or weight_decay, or rho outside [0, 1].
  Adadelta(std::vector<Var> params, AdadeltaOptions options = {});
  const AdadeltaOptions& options() const { return options_; }

protected:
  AdadeltaParamState init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, AdadeltaParamState& state, bool fresh) override;

private:
  AdadeltaOptions options_;
};

} // namespace gg::optim
