// gg::optim::Adagrad — divides by the root of the summed squared gradients, with learning-rate
// decay and an initial accumulator value, exactly as torch.optim.Adagrad (state created at once).
#pragma once

#include <nn/optim/optimizer.hpp>

namespace gg::optim {

class AdagradOptions {
public:
  AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
  GG_OPTIM_ARG(double, lr_decay) = 0;
  GG_OPTIM_ARG(double, weight_decay) = 0;
  GG_OPTIM_ARG(double, initial_accumulator_value) = 0;
  GG_OPTIM_ARG(double, eps) = 1e-10;
};

class Adagrad : public Optimizer {
public:
  /// ValueError on a negative lr, lr_decay, weight_decay, initial_accumulator_value or eps.
  Adagrad(std::vector<Var> params, AdagradOptions options = {});
  const AdagradOptions& options() const { return options_; }

protected:
  std::vector<Tensor> init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, bool fresh) override;

private:
  AdagradOptions options_;
};

} // namespace gg::optim
