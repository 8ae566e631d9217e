// Adam and AdamW: option checks and one shared update loop (torch.optim's _single_tensor_adam and
// _single_tensor_adamw, one element at a time, with their bias-correction arithmetic).
#include "fp_mode.hpp"

#include <nn/optim/adam.hpp>

#include <cmath>

#include "update.hpp"

namespace gg::optim {

namespace {

template <class Options> void check_adam_options(const char* name, const Options& o) {
  detail::check_non_negative(name, "eps", o.eps());
  detail::check_unit_open(name, "betas[0]", o.betas()[0]);
  detail::check_unit_open(name, "betas[1]", o.betas()[1]);
  detail::check_non_negative(name, "weight_decay", o.weight_decay());
}

AdamParamState adam_state(const Tensor& param, bool amsgrad) {
  AdamParamState s;
  s.exp_avg = Tensor::zeros(param.shape(), param.dtype());
  s.exp_avg_sq = Tensor::zeros(param.shape(), param.dtype());
  if (amsgrad) s.max_exp_avg_sq = Tensor::zeros(param.shape(), param.dtype());
  return s;
}

/// One Adam step; decoupled selects AdamW's decay (θ·(1 − lr·λ)) instead of g + λθ.
void adam_update(Tensor& param, const Tensor& grad, AdamParamState& state, double lr, const Betas& betas,
                 double eps, double weight_decay, bool amsgrad, bool decoupled) {
  const double step = detail::advance_step(state.step);
  const double bias_correction1 = 1 - std::pow(betas[0], step);
  const double bias_correction2 = 1 - std::pow(betas[1], step);
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  detail::by_dtype(param.dtype(), [&]<class T>(T) {
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* m = state.exp_avg.data<T>();
    T* v = state.exp_avg_sq.data<T>();
    T* vmax = amsgrad ? state.max_exp_avg_sq.data<T>() : nullptr;
    const T b1 = static_cast<T>(betas[0]), b2 = static_cast<T>(betas[1]);
    const T one_minus_b1 = static_cast<T>(1 - betas[0]), one_minus_b2 = static_cast<T>(1 - betas[1]);
    const T wd = static_cast<T>(weight_decay), decay_factor = static_cast<T>(1 - lr * weight_decay);
    const T bc2_sqrt = static_cast<T>(bias_correction2_sqrt), eps_t = static_cast<T>(eps);
    const T neg_step_size = static_cast<T>(-step_size);
    const std::int64_t n = param.numel();
    detail::with_flag(!decoupled && weight_decay != 0, [&](auto l2) {
      detail::with_flag(decoupled, [&](auto decoupled_decay) {
        detail::with_flag(amsgrad, [&](auto use_max) {
          for (std::int64_t i = 0; i < n; ++i) {
            T gi = g[i];
            if constexpr (l2) gi = detail::add_scaled(gi, wd, p[i]);
            if constexpr (decoupled_decay) p[i] = p[i] * decay_factor;
            m[i] = detail::add_scaled(m[i] * b1, one_minus_b1, gi);
            v[i] = detail::addcmul(v[i] * b2, one_minus_b2, gi, gi);
            T second = v[i];
            if constexpr (use_max) {
              // torch.maximum: a NaN on either side wins.
              const T vm = vmax[i];
              second = vmax[i] = (second > vm || second != second) ? second : vm;
            }
            const T denom = std::sqrt(second) / bc2_sqrt + eps_t;
            p[i] = detail::addcdiv(p[i], neg_step_size, m[i], denom);
          }
        });
      });
    });
  });
}

} // namespace

Adam::Adam(std::vector<Var> params, AdamOptions options)
    : OptimizerWithState("Adam", std::move(params), options.lr()), options_(options) {
  check_adam_options("Adam", options);
}

AdamParamState Adam::init_state(const Tensor& param) const {
  return adam_state(param, options_.amsgrad());
}

void Adam::update(Tensor& param, const Tensor& grad, AdamParamState& state, bool) {
  adam_update(param, grad, state, lr(), options_.betas(), options_.eps(), options_.weight_decay(),
              options_.amsgrad(), false);
}

AdamW::AdamW(std::vector<Var> params, AdamWOptions options)
    : OptimizerWithState("AdamW", std::move(params), options.lr()), options_(options) {
  check_adam_options("AdamW", options);
}

AdamWParamState AdamW::init_state(const Tensor& param) const {
  return adam_state(param, options_.amsgrad());
}

void AdamW::update(Tensor& param, const Tensor& grad, AdamWParamState& state, bool) {
  adam_update(param, grad, state, lr(), options_.betas(), options_.eps(), options_.weight_decay(),
              options_.amsgrad(), true);
}

} // namespace gg::optim
