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

class NAdam : public Optimizer {
public:
  /// ValueError on a negative lr, eps, weight_decay or momentum_decay, or betas outside [0, 1).
  NAdam(std::vector<Var> params, NAdamOptions options = {});
  const NAdamOptions& options() const { return options_; }

protected:
  std::vector<Tensor> init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, bool fresh) override;

private:
  NAdamOptions options_;
};

} // namespace gg::optim
