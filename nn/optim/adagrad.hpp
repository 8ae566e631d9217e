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

/// Adagrad's state of one parameter (torch.optim.Adagrad's names).
struct AdagradParamState {
  /// Updates done, counted in float32 as torch.optim's "step" tensor.
  float step = 0;
  /// The sum of squared gradients, from initial_accumulator_value.
  Tensor sum;
  /// Calls f(name, field) for each field.
  template <class F> void visit(F&& f) {
    f("step", step);
    f("sum", sum);
  }
};

class Adagrad : public OptimizerWithState<AdagradParamState> {
public:
  /// ValueError on a negative lr, lr_decay, weight_decay, initial_accumulator_value or eps.
  Adagrad(std::vector<Var> params, AdagradOptions options = {});
  const AdagradOptions& options() const { return options_; }

protected:
  AdagradParamState init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, AdagradParamState& state, bool fresh) override;

private:
  AdagradOptions options_;
};

} // namespace gg::optim
