// gg::optim::Adam (optionally AMSGrad, L2 weight decay added to the gradient) and gg::optim::AdamW
// (decoupled weight decay, θ ← θ(1 − lr·λ) before the Adam step), exactly as torch.optim.
#pragma once

#include <nn/optim/optimizer.hpp>

namespace gg::optim {

class AdamOptions {
public:
  AdamOptions(double lr = 1e-3) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
  GG_OPTIM_ARG(Betas, betas) = {0.9, 0.999};
  GG_OPTIM_ARG(double, eps) = 1e-8;
  GG_OPTIM_ARG(double, weight_decay) = 0;
  GG_OPTIM_ARG(bool, amsgrad) = false;
};

class AdamWOptions {
public:
  AdamWOptions(double lr = 1e-3) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
  GG_OPTIM_ARG(Betas, betas) = {0.9, 0.999};
  GG_OPTIM_ARG(double, eps) = 1e-8;
  GG_OPTIM_ARG(double, weight_decay) = 1e-2;
  GG_OPTIM_ARG(bool, amsgrad) = false;
};

/// Adam's and AdamW's state of one parameter (torch.optim's names; LibTorch's AdamParamState).
struct AdamParamState {
  /// Updates done, counted in float32 as torch.optim's "step" tensor.
  float step = 0;
  /// The first moment m: β₁·m + (1 − β₁)·g.
  Tensor exp_avg;
  /// The second moment v: β₂·v + (1 − β₂)·g².
  Tensor exp_avg_sq;
  /// AMSGrad's running maximum of v (undefined without amsgrad).
  Tensor max_exp_avg_sq;
  /// Calls f(name, field) for each field.
  template <class F> void visit(F&& f) {
    f("step", step);
    f("exp_avg", exp_avg);
    f("exp_avg_sq", exp_avg_sq);
    f("max_exp_avg_sq", max_exp_avg_sq);
  }
};
/// AdamW keeps the same state as Adam.
using AdamWParamState = AdamParamState;

class Adam : public OptimizerWithState<AdamParamState> {
public:
  /// ValueError on a negative lr, eps or weight_decay, or betas outside [0, 1).
  Adam(std::vector<Var> params, AdamOptions options = {});
  const AdamOptions& options() const { return options_; }

protected:
  AdamParamState init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, AdamParamState& state, bool fresh) override;

private:
  AdamOptions options_;
};

class AdamW : public OptimizerWithState<AdamWParamState> {
public:
  /// ValueError on a negative lr, eps or weight_decay, or betas outside [0, 1).
  AdamW(std::vector<Var> params, AdamWOptions options = {});
  const AdamWOptions& options() const { return options_; }

protected:
  AdamWParamState init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, AdamWParamState& state, bool fresh) override;

private:
  AdamWOptions options_;
};

} // namespace gg::optim
