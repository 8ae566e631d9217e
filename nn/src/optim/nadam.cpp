// NAdam: option checks and the update loop. Follows the documented algorithm (PyTorch >= 2.0:
// the next-step product is μ-product·μ_{t+1}); the arithmetic is _single_tensor_nadam's, with the
// μ-product kept in the parameter's dtype like PyTorch's (a tensor of the default dtype).
#include "fp_mode.hpp"

#include <nn/optim/nadam.hpp>

#include <cmath>

#include "update.hpp"

namespace gg::optim {

NAdam::NAdam(std::vector<Var> params, NAdamOptions options)
    : OptimizerWithState("NAdam", std::move(params), options.lr()), options_(options) {
  detail::check_non_negative("NAdam", "eps", options.eps());
  detail::check_unit_open("NAdam", "betas[0]", options.betas()[0]);
  detail::check_unit_open("NAdam", "betas[1]", options.betas()[1]);
  detail::check_non_negative("NAdam", "weight_decay", options.weight_decay());
  detail::check_non_negative("NAdam", "momentum_decay", options.momentum_decay());
}

NAdamParamState NAdam::init_state(const Tensor& param) const {
  return {0, Tensor::ones(Shape{}, param.dtype()), Tensor::zeros(param.shape(), param.dtype()),
          Tensor::zeros(param.shape(), param.dtype())};
}

void NAdam::update(Tensor& param, const Tensor& grad, NAdamParamState& state, bool) {
  const NAdamOptions& o = options_;
  const double beta1 = o.betas()[0], beta2 = o.betas()[1];
  const double step = detail::advance_step(state.step);
  const double bias_correction2 = 1 - std::pow(beta2, step);
  // The momentum schedule μ_t and μ_{t+1}.
  const double mu = beta1 * (1. - 0.5 * std::pow(0.96, step * o.momentum_decay()));
  const double mu_next = beta1 * (1. - 0.5 * std::pow(0.96, (step + 1) * o.momentum_decay()));
  detail::by_dtype(param.dtype(), [&]<class T>(T) {
    T& mu_product = state.mu_product.data<T>()[0];
    mu_product = mu_product * static_cast<T>(mu);
    const T mu_product_next = mu_product * static_cast<T>(mu_next);
    const T c_grad = static_cast<T>(-lr() * (1. - mu) / (1. - static_cast<double>(mu_product)));
    const T c_avg = static_cast<T>(-lr() * mu_next / (1. - static_cast<double>(mu_product_next)));
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* m = state.exp_avg.data<T>();
    T* v = state.exp_avg_sq.data<T>();
    const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
    const T one_minus_b1 = static_cast<T>(1 - beta1), one_minus_b2 = static_cast<T>(1 - beta2);
    const T wd = static_cast<T>(o.weight_decay()), eps = static_cast<T>(o.eps());
    const T bc2 = static_cast<T>(bias_correction2);
    const std::int64_t n = param.numel();
    detail::with_flag(o.weight_decay() != 0, [&](auto decay) {
      for (std::int64_t i = 0; i < n; ++i) {
        T gi = g[i];
        if constexpr (decay) gi = detail::add_scaled(gi, wd, p[i]);
        m[i] = detail::add_scaled(m[i] * b1, one_minus_b1, gi);
        v[i] = detail::addcmul(v[i] * b2, one_minus_b2, gi, gi);
        const T denom = std::sqrt(v[i] / bc2) + eps;
        p[i] = detail::addcdiv(p[i], c_grad, gi, denom);
        p[i] = detail::addcdiv(p[i], c_avg, m[i], denom);
      }
    });
  });
}

} // namespace gg::optim
