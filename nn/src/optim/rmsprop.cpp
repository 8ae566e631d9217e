// RMSprop: option checks and the update loop (torch.optim.RMSprop's _single_tensor_rmsprop, one
// element at a time).
#include "fp_mode.hpp"

#include <nn/optim/rmsprop.hpp>

#include <cmath>

#include "update.hpp"

namespace gg::optim {

RMSprop::RMSprop(std::vector<Var> params, RMSpropOptions options)
    : OptimizerWithState("RMSprop", std::move(params), options.lr()), options_(options) {
  detail::check_non_negative("RMSprop", "eps", options.eps());
  detail::check_non_negative("RMSprop", "momentum", options.momentum());
  detail::check_non_negative("RMSprop", "weight_decay", options.weight_decay());
  detail::check_non_negative("RMSprop", "alpha", options.alpha());
}

RMSpropParamState RMSprop::init_state(const Tensor& param) const {
  RMSpropParamState s;
  s.square_avg = Tensor::zeros(param.shape(), param.dtype());
  if (options_.momentum() > 0) s.momentum_buffer = Tensor::zeros(param.shape(), param.dtype());
  if (options_.centered()) s.grad_avg = Tensor::zeros(param.shape(), param.dtype());
  return s;
}

void RMSprop::update(Tensor& param, const Tensor& grad, RMSpropParamState& state, bool) {
  const RMSpropOptions& o = options_;
  detail::advance_step(state.step);
  detail::by_dtype(param.dtype(), [&]<class T>(T) {
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* sq = state.square_avg.data<T>();
    T* buf = o.momentum() > 0 ? state.momentum_buffer.data<T>() : nullptr;
    T* gavg = o.centered() ? state.grad_avg.data<T>() : nullptr;
    const T wd = static_cast<T>(o.weight_decay()), alpha = static_cast<T>(o.alpha());
    const T one_minus_alpha = static_cast<T>(1 - o.alpha()), eps = static_cast<T>(o.eps());
    const T mom = static_cast<T>(o.momentum()), neg_lr = static_cast<T>(-lr());
    const std::int64_t n = param.numel();
    detail::with_flag(o.weight_decay() != 0, [&](auto decay) {
      detail::with_flag(gavg != nullptr, [&](auto centered) {
        detail::with_flag(buf != nullptr, [&](auto momentum) {
          for (std::int64_t i = 0; i < n; ++i) {
            T gi = g[i];
            if constexpr (decay) gi = detail::add_scaled(gi, wd, p[i]);
            sq[i] = detail::addcmul(sq[i] * alpha, one_minus_alpha, gi, gi);
            T avg;
            if constexpr (centered) {
              gavg[i] = detail::add_scaled(gavg[i] * alpha, one_minus_alpha, gi);
              avg = std::sqrt(detail::addcmul(sq[i], T(-1), gavg[i], gavg[i]));
            } else {
              avg = std::sqrt(sq[i]);
            }
            avg = avg + eps;
            if constexpr (momentum) {
              buf[i] = detail::addcdiv(buf[i] * mom, T(1), gi, avg);
              p[i] = detail::add_scaled(p[i], neg_lr, buf[i]);
            } else {
              p[i] = detail::addcdiv(p[i], neg_lr, gi, avg);
            }
          }
        });
      });
    });
  });
}

} // namespace gg::optim
