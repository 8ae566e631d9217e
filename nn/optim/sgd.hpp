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

/// SGD's state of one parameter (torch.optim.SGD's names).
struct SGDParamState {
  /// The velocity: the first (decayed) gradient, then momentum·buf + (1 − dampening)·g. Undefined
  /// without momentum (there is no state then).
  Tensor momentum_buffer;
  /// Calls f(name, field) for each field.
  template <class F> void visit(F&& f) { f("momentum_buffer", momentum_buffer); }
};

class SGD : public OptimizerWithState<SGDParamState> {
public:
  /// ValueError on a negative lr, momentum or weight_decay, or nesterov without momentum > 0 and
  /// dampening = 0.
  SGD(std::vector<Var> params, SGDOptions options);
  const SGDOptions& options() const { return options_; }

protected:
  SGDParamState init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, SGDParamState& state, bool fresh) override;

private:
  SGDOptions options_;
};

} // namespace gg::optim
