// Adagrad: option checks, state made at construction (as torch.optim.Adagrad) and the update loop
// (_single_tensor_adagrad, dense gradients).
#include "fp_mode.hpp"

#include <nn/optim/adagrad.hpp>

#include <cmath>

#include "update.hpp"

namespace gg::optim {

Adagrad::Adagrad(std::vector<Var> params, AdagradOptions options)
    : OptimizerWithState("Adagrad", std::move(params), options.lr()), options_(options) {
  detail::check_non_negative("Adagrad", "lr_decay", options.lr_decay());
  detail::check_non_negative("Adagrad", "weight_decay", options.weight_decay());
  detail::check_non_negative("Adagrad", "initial_accumulator_value", options.initial_accumulator_value());
  detail::check_non_negative("Adagrad", "eps", options.eps());
  init_all_state();
}

AdagradParamState Adagrad::init_state(const Tensor& param) const {
  return {0, Tensor::full(param.shape(), options_.initial_accumulator_value(), param.dtype())};
}

void Adagrad::update(Tensor& param, const Tensor& grad, AdagradParamState& state, bool) {
  const AdagradOptions& o = options_;
  const double step = detail::advance_step(state.step);
  const double clr = lr() / (1 + (step - 1) * o.lr_decay());
  detail::by_dtype(param.dtype(), [&]<class T>(T) {
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* sum = state.sum.data<T>();
    const T wd = static_cast<T>(o.weight_decay()), eps = static_cast<T>(o.eps());
    const T neg_clr = static_cast<T>(-clr);
    const std::int64_t n = param.numel();
    detail::with_flag(o.weight_decay() != 0, [&](auto decay) {
      for (std::int64_t i = 0; i < n; ++i) {
        T gi = g[i];
        if constexpr (decay) gi = detail::add_scaled(gi, wd, p[i]);
        sum[i] = detail::addcmul(sum[i], T(1), gi, gi);
        const T std_i = std::sqrt(sum[i]) + eps;
        p[i] = detail::addcdiv(p[i], neg_clr, gi, std_i);
      }
    });
  });
}

} // namespace gg::optim
