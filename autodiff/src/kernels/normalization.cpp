// Layer normalisation's kernels: the forward over the rows of [rows, m] (statistics in double, kept
// for the backward) and its fused backward (input, weight and bias gradients in one pass each).
#include <array>
#include <cmath>
#include <vector>

#include "loops.hpp"

namespace gg::kernel {

using detail::Index;

namespace {
/// The sum of f(j) over [0, n) in double, by eight partial sums (as sum_contiguous): independent
/// chains the compiler vectorises without reassociating; one running sum was a scalar loop.
template <class F> double sum_by_lanes(Index n, F&& f) {
  std::array<double, 8> acc{};
  Index j = 0;
  for (; j + 8 <= n; j += 8)
    for (std::size_t k = 0; k < 8; ++k) acc[k] += f(j + static_cast<Index>(k));
  double s = 0;
  for (; j < n; ++j) s += f(j);
  for (const double a : acc) s += a;
  return s;
}
} // namespace

Tensor layer_norm(const Tensor& x, Index m, const Tensor& weight, const Tensor& bias, double eps,
                  Tensor& stats) {
  const Index rows = m == 0 ? 0 : x.numel() / m;
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  stats = Tensor::empty({2, rows}, f64); // mean, then 1/sqrt(var + eps), per row
  double* mean = stats.data<double>();
  double* rstd = mean + rows;
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    T* o = out.data<T>();
    detail::parallel_range(
        rows,
        [&](Index lo, Index hi) {
          for (Index r = lo; r < hi; ++r) {
            const T* in = p + r * m;
            T* res = o + r * m;
            const double mu = detail::sum_contiguous(in, m) / static_cast<double>(m);
            const double var = sum_by_lanes(m, [&](Index j) { // two passes: no cancellation
              const double d = static_cast<double>(in[j]) - mu;
              return d * d;
            });
            const double rs = 1 / std::sqrt(var / static_cast<double>(m) + eps);
            mean[r] = mu;
            rstd[r] = rs;
            const T tm = static_cast<T>(mu), ts = static_cast<T>(rs);
            for (Index j = 0; j < m; ++j) {
              T y = (in[j] - tm) * ts;
              if (w) y *= w[j];
              if (b) y += b[j];
              res[j] = y;
            }
          }
        },
        4 * m);
  });
  return out;
}

std::array<Tensor, 3> layer_norm_backward(const Tensor& g, const Tensor& x, const Tensor& weight,
                                          const Tensor& stats, Index m, std::array<bool, 3> needs) {
  const Index rows = m == 0 ? 0 : x.numel() / m;
  std::array<Tensor, 3> r;
  const double* mean = stats.data<double>();
  const double* rstd = mean + rows;
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    const T* gp = g.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    if (needs[0]) {
      // dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), gw = g * weight, per row.
      r[0] = Tensor::empty(x.shape(), x.dtype());
      T* dx = r[0].template data<T>();
      detail::parallel_range(
          rows,
          [&](Index lo, Index hi) {
            for (Index i = lo; i < hi; ++i) {
              const T* in = p + i * m;
              const T* gi = gp + i * m;
              const T mu = static_cast<T>(mean[i]), rs = static_cast<T>(rstd[i]);
              double sum_g = 0, sum_gx = 0; // of gw and gw * xhat, w's branch outside the loops
              const auto sums = [&](auto gw) {
                sum_g = sum_by_lanes(m, [&](Index j) { return static_cast<double>(gw(j)); });
                sum_gx = sum_by_lanes(
                    m, [&](Index j) { return static_cast<double>(gw(j) * ((in[j] - mu) * rs)); });
              };
              if (w)
                sums([&](Index j) { return gi[j] * w[j]; });
              else
                sums([&](Index j) { return gi[j]; });
              const T a = static_cast<T>(sum_g / static_cast<double>(m)),
                      c = static_cast<T>(sum_gx / static_cast<double>(m));
              T* out = dx + i * m;
              for (Index j = 0; j < m; ++j) {
                const T gw = w ? gi[j] * w[j] : gi[j];
                out[j] = rs * (gw - a - (in[j] - mu) * rs * c);
              }
            }
          },
          8 * m);
    }
    if (needs[1] || needs[2]) { // weight: sum over rows of g * xhat; bias: of g (accumulated in double)
      std::vector<double> dw(static_cast<std::size_t>(needs[1] ? m : 0)),
          db(static_cast<std::size_t>(needs[2] ? m : 0));
      for (Index i = 0; i < rows; ++i) {
        const T* in = p + i * m;
        const T* gi = gp + i * m;
        const T mu = static_cast<T>(mean[i]), rs = static_cast<T>(rstd[i]);
        if (needs[1])
          for (Index j = 0; j < m; ++j)
            dw[static_cast<std::size_t>(j)] += static_cast<double>(gi[j] * ((in[j] - mu) * rs));
        if (needs[2])
          for (Index j = 0; j < m; ++j) db[static_cast<std::size_t>(j)] += static_cast<double>(gi[j]);
      }
      for (std::size_t k : {std::size_t{1}, std::size_t{2}}) {
        if (!needs[k]) continue;
        const std::vector<double>& acc = k == 1 ? dw : db;
        r[k] = Tensor::empty({m}, x.dtype());
        T* o = r[k].template data<T>();
        for (Index j = 0; j < m; ++j) o[j] = static_cast<T>(acc[static_cast<std::size_t>(j)]);
      }
    }
  });
  return r;
}

} // namespace gg::kernel
