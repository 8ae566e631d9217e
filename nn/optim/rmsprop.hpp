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

class RMSprop : public Optimizer {
public:
  /// ValueError on a negative lr, alpha, eps, weight_decay or momentum.
  RMSprop(std::vector<Var> params, RMSpropOptions options = {});
  const RMSpropOptions& options() const { return options_; }

protected:
  std::vector<Tensor> init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, bool fresh) override;

private:
  RMSpropOptions options_;
};

} // namespace gg::optim
