// Adam and AdamW: option checks and one shared update loop (torch.optim's _single_tensor_adam and
// _single_tensor_adamw, one element at a time, with their bias-correction arithmetic).
#include "fp_mode.hpp"

#include <autodiff/kernel.hpp>
#include <nn/optim/adam.hpp>

#include <cmath>
#include <type_traits>

#include "update.hpp"

namespace gg::optim {

namespace {

template <class Options> void check_adam_options(const char* name, const Options& o) {
  detail::check_non_negative(name, "eps", o.eps());
  detail::check_unit_open(name, "betas[0]", o.betas()[0]);
  detail::check_unit_open(name, "betas[1]", o.betas()[1]);
  detail::check_non_negative(name, "weight_decay", o.weight_decay());
}

/// An element's update in kernel::parallel_for's cost (cheap operations such as an add): a square root,
/// a division and five multiply-adds over four arrays, 5x SGD's loop on one thread (bench_micro's
/// BM_optimizer_step: 100,000 floats in 47 us against 8.4), and far more where m and v decay through
/// the denormal floats (as for a weight whose gradient stays 0 for many steps), each of which
/// costs an Intel CPU a microcode assist: on family 6 model 207 the 784-128-10 MLP's batch-64 step
/// took 0.38 ms, 0.20-0.28 with denormals flushed, Adam's loop 43% of it (perf). 16 splits that
/// layer's 100,352 weights across the kernel threads: the step on 2 threads 0.356 -> 0.27 ms.
constexpr std::int64_t k_adam_cost = 16;

/// True when x / c may be computed as x · (1/c) in double for every float x = sqrt(·): see
/// scaled_sqrt. c is Adam's sqrt(1 − β₂ᵗ), in (2⁻²⁷, 1]; the bounds keep every quotient normal.
bool recip_exact(double c) {
  return c >= 0x1p-40 && c <= 0x1p40;
}

/// sqrt(s) / c, correctly rounded, as torch divides: with T = float and recip = c⁻¹ in double,
/// a multiply in double rounded to float, which is the same float (bit for bit) and keeps
/// vdivps off the divider that sqrt and the second division already load. Why: x = sqrt(s) is 0,
/// ±inf, NaN or a normal float ≥ 2⁻⁷⁵, so x/c is normal (recip_exact's bounds). The double product
/// is within 2⁻⁵² (relative) of x/c, while x/c, a quotient of two 24-bit floats, is never a midpoint
/// of floats (the midpoint's 25 bits times c's odd part would need 25 bits in x) and is more than
/// 2⁻⁴⁹ from every midpoint; so both round to the same float. 0, inf and NaN (its payload) pass
/// through the multiply as through the division. Tested against the division on random and edge
/// values (optim_tests).
template <bool Recip, class T> inline T scaled_sqrt(T s, T c, double recip) {
  if constexpr (Recip)
    return static_cast<T>(static_cast<double>(std::sqrt(s)) * recip);
  else
    return std::sqrt(s) / c;
}

AdamParamState adam_state(const Tensor& param, bool amsgrad) {
  AdamParamState s;
  s.exp_avg = Tensor::zeros(param.shape(), param.dtype());
  s.exp_avg_sq = Tensor::zeros(param.shape(), param.dtype());
  if (amsgrad) s.max_exp_avg_sq = Tensor::zeros(param.shape(), param.dtype());
  return s;
}

/// One Adam step; decoupled selects AdamW's decay (θ·(1 − lr·λ)) instead of g + λθ. A parameter of
/// 2^16 elements or more is updated across the kernel threads (kernel::parallel_for), elementwise, so
/// with the same numbers.
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
    // The reciprocal in double of the float divisor, as the division sees it.
    const double recip = 1.0 / static_cast<double>(bc2_sqrt);
    const bool use_recip = std::is_same_v<T, float> && recip_exact(static_cast<double>(bc2_sqrt));
    detail::with_flag(use_recip, [&](auto by_recip) {
      detail::with_flag(!decoupled && weight_decay != 0, [&](auto l2) {
        detail::with_flag(decoupled, [&](auto decoupled_decay) {
          detail::with_flag(amsgrad, [&](auto use_max) {
            // Every load before the first store: p, g, m and v are as far apart as their
            // allocations, often a multiple of 4 KiB, where a load after a store to another
            // array waits on a false dependency (4K aliasing). ~15% of the loop on Zen 4.
            kernel::parallel_for(
                n,
                [=](std::int64_t lo, std::int64_t hi) {
                  for (std::int64_t i = lo; i < hi; ++i) {
                    T gi = g[i], pi = p[i];
                    const T mi0 = m[i], vi0 = v[i];
                    T vmi = 0;
                    if constexpr (use_max) vmi = vmax[i];
                    if constexpr (l2) gi = detail::add_scaled(gi, wd, pi);
                    if constexpr (decoupled_decay) pi = pi * decay_factor;
                    const T mi = detail::add_scaled(mi0 * b1, one_minus_b1, gi);
                    const T vi = detail::addcmul(vi0 * b2, one_minus_b2, gi, gi);
                    T second = vi;
                    if constexpr (use_max) {
                      // torch.maximum: a NaN on either side wins.
                      second = (vi > vmi || vi != vi) ? vi : vmi;
                      vmax[i] = second;
                    }
                    const T denom = scaled_sqrt<by_recip()>(second, bc2_sqrt, recip) + eps_t;
                    m[i] = mi;
                    v[i] = vi;
                    p[i] = detail::addcdiv(pi, neg_step_size, mi, denom);
                  }
                },
                k_adam_cost);
          });
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
