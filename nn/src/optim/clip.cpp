// Gradient clipping as torch.nn.utils.clip_grad_norm_ and clip_grad_value_: the total norm is the
// norm of the per-parameter norms, and the gradients are scaled (or clamped) in place.
#include "fp_mode.hpp"

#include <nn/optim/clip.hpp>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <fmt/format.h>

#include "update.hpp"

namespace gg::optim {

namespace {

/// ‖x‖_p of n values (p > 0 or +inf), summed in double.
template <class T> double p_norm(const T* x, std::int64_t n, double p) {
  double acc = 0;
  if (std::isinf(p)) {
    for (std::int64_t i = 0; i < n; ++i) {
      const double a = std::abs(static_cast<double>(x[i]));
      if (std::isnan(a)) return a;
      acc = std::max(acc, a);
    }
    return acc;
  }
  if (p == 1) {
    for (std::int64_t i = 0; i < n; ++i) acc += std::abs(static_cast<double>(x[i]));
    return acc;
  }
  if (p == 2) {
    for (std::int64_t i = 0; i < n; ++i) acc += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    return std::sqrt(acc);
  }
  for (std::int64_t i = 0; i < n; ++i) acc += std::pow(std::abs(static_cast<double>(x[i])), p);
  return std::pow(acc, 1 / p);
}

/// Applies f to each gradient entry of every parameter that has a gradient, in place. A scalar
/// leaf's grad() is a copy, so it is written back with set_grad.
template <class F> void for_each_grad(const std::vector<Var>& params, F&& f) {
  for (Var v : params) {
    if (!v.defined() || !v.has_grad()) continue;
    if (v.is_scalar_node()) {
      double g = v.grad().item();
      f(&g, std::int64_t{1});
      v.set_grad(Tensor::scalar(g));
      continue;
    }
    Tensor g = v.grad(); // a tensor leaf's gradient tensor itself (shared storage)
    detail::by_dtype(g.dtype(), [&]<class T>(T) { f(g.data<T>(), g.numel()); });
  }
}

} // namespace

double clip_grad_norm(const std::vector<Var>& params, double max_norm, double norm_type) {
  if (!(norm_type > 0))
    throw ValueError(fmt::format("clip_grad_norm: norm_type must be > 0 or infinity, got {}", norm_type));
  if (!(max_norm >= 0))
    throw ValueError(fmt::format("clip_grad_norm: max_norm must be >= 0, got {}", max_norm));
  std::vector<double> norms;
  bool all_f32 = true;
  for_each_grad(params, [&]<class T>(T* g, std::int64_t n) {
    norms.push_back(p_norm(g, n, norm_type));
    all_f32 = all_f32 && std::is_same_v<T, float>;
  });
  if (norms.empty()) return 0;
  // As torch: the norm of the stacked per-parameter norms, in the gradients' dtype.
  double total = p_norm(norms.data(), static_cast<std::int64_t>(norms.size()), norm_type);
  // torch computes max_norm / (total + 1e-6) as reciprocal(total + 1e-6) * max_norm.
  double coef;
  if (all_f32) {
    const float t = static_cast<float>(total);
    total = t;
    coef = static_cast<float>(1.0f / (t + 1e-6f)) * static_cast<float>(max_norm);
  } else {
    coef = 1.0 / (total + 1e-6) * max_norm;
  }
  // Scaled unless coef >= 1 (torch multiplies by min(coef, 1): a NaN norm makes NaN gradients).
  if (!(coef >= 1))
    for_each_grad(params, [&]<class T>(T* g, std::int64_t n) {
      const T c = static_cast<T>(coef);
      for (std::int64_t i = 0; i < n; ++i) g[i] = g[i] * c;
    });
  return total;
}

void clip_grad_value(const std::vector<Var>& params, double clip) {
  if (!(clip >= 0)) throw ValueError(fmt::format("clip_grad_value: clip must be >= 0, got {}", clip));
  for_each_grad(params, [&]<class T>(T* g, std::int64_t n) {
    const T hi = static_cast<T>(clip), lo = -hi;
    for (std::int64_t i = 0; i < n; ++i) g[i] = g[i] < lo ? lo : (g[i] > hi ? hi : g[i]);
  });
}

} // namespace gg::optim
