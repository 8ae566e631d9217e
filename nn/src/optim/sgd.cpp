// GD and SGD: option checks and the update loops (torch.optim.SGD's _single_tensor_sgd, one
// element at a time: weight decay, momentum buffer, Nesterov, then θ ← θ − lr·d). A parameter of 2^20
// elements or more is updated on the kernel threads (kernel::parallel_for), as PyTorch's in-place ops
// run on ATen's: elementwise, so the split changes no result (docs/performance.md, "The 1024-wide MLP
// on 2 threads").
#include "fp_mode.hpp"

#include <autodiff/kernel.hpp>
#include <nn/optim/gd.hpp>
#include <nn/optim/sgd.hpp>

#include <fmt/format.h>

#include "update.hpp"

namespace gg::optim {

GD::GD(std::vector<Var> params, GDOptions options)
    : OptimizerWithState("GD", std::move(params), options.lr()), options_(options) {}

void GD::update(Tensor& param, const Tensor& grad, NoParamState&, bool) {
  detail::by_dtype(param.dtype(), [&]<class T>(T) {
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    const T neg_lr = static_cast<T>(-lr());
    kernel::parallel_for(param.numel(), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) p[i] = detail::add_scaled(p[i], neg_lr, g[i]);
    });
  });
}

SGD::SGD(std::vector<Var> params, SGDOptions options)
    : OptimizerWithState("SGD", std::move(params), options.lr()), options_(options) {
  detail::check_non_negative("SGD", "momentum", options.momentum());
  detail::check_non_negative("SGD", "weight_decay", options.weight_decay());
  if (options.nesterov() && (!(options.momentum() > 0) || options.dampening() != 0))
    throw ValueError(fmt::format("SGD: nesterov requires momentum > 0 and dampening = 0, got momentum {} and "
                                 "dampening {}",
                                 options.momentum(), options.dampening()));
}

SGDParamState SGD::init_state(const Tensor& param) const {
  if (options_.momentum() == 0) return {}; // no momentum, no state
  return {Tensor::zeros(param.shape(), param.dtype())};
}

void SGD::update(Tensor& param, const Tensor& grad, SGDParamState& state, bool fresh) {
  const SGDOptions& o = options_;
  detail::by_dtype(param.dtype(), [&]<class T>(T) {
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* buf = state.momentum_buffer.defined() ? state.momentum_buffer.data<T>() : nullptr;
    const T wd = static_cast<T>(o.weight_decay()), mom = static_cast<T>(o.momentum());
    const T keep = static_cast<T>(1 - o.dampening()), neg_lr = static_cast<T>(-lr());
    detail::with_flag(o.weight_decay() != 0, [&](auto decay) {
      detail::with_flag(buf != nullptr, [&](auto momentum) {
        detail::with_flag(o.nesterov(), [&](auto nesterov) {
          detail::with_flag(fresh, [&](auto first) {
            kernel::parallel_for(param.numel(), [&](std::int64_t lo, std::int64_t hi) {
              for (std::int64_t i = lo; i < hi; ++i) {
                T d = g[i];
                if constexpr (decay) d = detail::add_scaled(d, wd, p[i]);
                if constexpr (momentum) {
                  // The buffer starts as the first (decayed) gradient, undampened.
                  if constexpr (first)
                    buf[i] = d;
                  else
                    buf[i] = detail::add_scaled(buf[i] * mom, keep, d);
                  if constexpr (nesterov)
                    d = detail::add_scaled(d, mom, buf[i]);
                  else
                    d = buf[i];
                }
                p[i] = detail::add_scaled(p[i], neg_lr, d);
              }
            });
          });
        });
      });
    });
  });
}

} // namespace gg::optim
