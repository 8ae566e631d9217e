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

class Adadelta : public Optimizer {
public:
  /// ValueError on a negative lr, eps or weight_decay, or rho outside [0, 1].
  Adadelta(std::vector<Var> params, AdadeltaOptions options = {});
  const AdadeltaOptions& options() const { return options_; }

protected:
  std::vector<Tensor> init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, bool fresh) override;

private:
  AdadeltaOptions options_;
};

} // namespace gg::optim
