// gg::optim::GD — plain gradient descent, θ ← θ − lr·g: the course's full-batch optimizer (use it
// with the gradient of the whole training set). The same update as SGD without options.
#pragma once

#include <nn/optim/optimizer.hpp>

namespace gg::optim {

class GDOptions {
public:
  /// lr has no default (as SGD's in PyTorch): GDOptions(0.1), or just 0.1 where options go.
  GDOptions(double lr) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
};

class GD : public OptimizerWithState<NoParamState> {
public:
  /// ValueError on a negative lr.
  GD(std::vector<Var> params, GDOptions options);
  const GDOptions& options() const { return options_; }

protected:
  NoParamState init_state(const Tensor&) const override { return {}; }
  void update(Tensor& param, const Tensor& grad, NoParamState& state, bool fresh) override;

private:
  GDOptions options_;
};

} // namespace gg::optim
