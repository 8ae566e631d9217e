// Adadelta: option checks and the update loop (torch.optim.Adadelta's _single_tensor_adadelta,
// one element at a time).
#include "fp_mode.hpp"

#include <nn/optim/adadelta.hpp>

#include <cmath>

#include <fmt/format.h>

#include "update.hpp"

namespace gg::optim {

Adadelta::Adadelta(std::vector<Var> params, AdadeltaOptions options)
    : OptimizerWithState("Adadelta", std::move(params), options.lr()), options_(options) {
  if (!(options.rho() >= 0 && options.rho() <= 1))
    throw ValueError(fmt::format("Adadelta: rho must be in [0, 1], got {}", options.rho()));
  detail::check_non_negative("Adadelta", "eps", options.eps());
  detail::check_non_negative("Adadelta", "weight_decay", options.weight_decay());
}

AdadeltaParamState Adadelta::init_state(const Tensor& param) const {
  return {0, Tensor::zeros(param.shape(), param.dtype()), Tensor::zeros(param.shape(), param.dtype())};
}

void Adadelta::update(Tensor& param, const Tensor& grad, AdadeltaParamState& state, bool) {
  const AdadeltaOptions& o = options_;
  detail::advance_step(state.step);
  detail::by_dtype(param.dtype(), [&]<class T>(T) {
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* sq = state.square_avg.data<T>();
    T* acc = state.acc_delta.data<T>();
    const T wd = static_cast<T>(o.weight_decay()), rho = static_cast<T>(o.rho());
    const T one_minus_rho = static_cast<T>(1 - o.rho()), eps = static_cast<T>(o.eps());
    const T neg_lr = static_cast<T>(-lr());
    const std::int64_t n = param.numel();
    detail::with_flag(o.weight_decay() != 0, [&](auto decay) {
      for (std::int64_t i = 0; i < n; ++i) {
        T gi = g[i];
        if constexpr (decay) gi = detail::add_scaled(gi, wd, p[i]);
        sq[i] = detail::addcmul(sq[i] * rho, one_minus_rho, gi, gi);
        const T std_i = std::sqrt(sq[i] + eps);
        const T delta = std::sqrt(acc[i] + eps) / std_i * gi;
        acc[i] = detail::addcmul(acc[i] * rho, one_minus_rho, delta, delta);
        p[i] = detail::add_scaled(p[i], neg_lr, delta);
      }
    });
  });
}

} // namespace gg::optim
