// gg::optim::NAdam — Adam with Nesterov momentum and a momentum schedule (Dozat 2016), following
// the documented algorithm as PyTorch >= 2.0 computes it (1.13 counted μ_t twice in the product).
#pragma once

#include <nn/optim/optimizer.hpp>

namespace gg::optim {

class NAdamOptions {
public:
  NAdamOptions(double lr = 2e-3) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
  GG_OPTIM_ARG(Betas, betas) = {0.9, 0.999};
  GG_OPTIM_ARG(double, eps) = 1e-8;
  GG_OPTIM_ARG(double, weight_decay) = 0;
  GG_OPTIM_ARG(double, momentum_decay) = 4e-3;
};

/// NAdam's state of one parameter (torch.optim.NAdam's names).
struct NAdamParamState {
  /// Updates done, counted in float32 as torch.optim's "step" tensor.
  float step = 0;
  /// The product μ₁·μ₂·…·μ_t of the momentum schedule: a 0-d tensor of the parameter's dtype.
  Tensor mu_product;
  /// The first moment m.
  Tensor exp_avg;
  /// The second moment v.
  Tensor exp_avg_sq;
  /// Calls f(name, field) for each field.
  template <class F> void visit(F&& f) {
    f("step", step);
    f("mu_product", mu_product);
    f("exp_avg", exp_avg);
    f("exp_avg_sq", exp_avg_sq);
  }
};

class NAdam : public OptimizerWithState<NAdamParamState> {
public:
  /// ValueError on a negative lr, eps, weight_decay or momentum_decay, or betas outside [0, 1).
  NAdam(std::vector<Var> params, NAdamOptions options = {});
  const NAdamOptions& options() const { return options_; }

protected:
  NAdamParamState init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, NAdamParamState& state, bool fresh) override;

private:
  NAdamOptions options_;
};

} // namespace gg::optim
