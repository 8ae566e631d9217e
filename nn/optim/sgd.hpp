// gg::optim::SGD — stochastic gradient descent with momentum, dampening, Nesterov momentum and
// weight decay, exactly as torch.optim.SGD (the momentum buffer starts as the first gradient).
#pragma once

#include <nn/optim/optimizer.hpp>

namespace gg::optim {

class SGDOptions {
public:
  /// lr is required, as in PyTorch and LibTorch: SGDOptions(0.1).momentum(0.9).
  SGDOptions(double lr) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
  GG_OPTIM_ARG(double, momentum) = 0;
  GG_OPTIM_ARG(double, dampening) = 0;
  GG_OPTIM_ARG(double, weight_decay) = 0;
  GG_OPTIM_ARG(bool, nesterov) = false;
};

class SGD : public Optimizer {
public:
  /// ValueError on a negative lr, momentum or weight_decay, or nesterov without momentum > 0 and
  /// dampening = 0.
  SGD(std::vector<Var> params, SGDOptions options);
  const SGDOptions& options() const { return options_; }

protected:
  std::vector<Tensor> init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, bool fresh) override;

private:
  SGDOptions options_;
};

} // namespace gg::optim
