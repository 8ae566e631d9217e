// The softmax family along an axis, each lane with its maximum subtracted first (no overflow):
// logsumexp, softmax, log_softmax, and the fused backward of the last two.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "loops.hpp"
#include "vecmath.hpp"

namespace gg::kernel {

using detail::Index;

namespace {
/// visit(lo, e, len) for blocks [lo, lo + len) of [0, n), e[j] = exp(in[(lo + j) * stride] - shift):
/// the exponentials by vec_math, a block at a time, in order.
template <class T, class F> void for_each_exp(const T* in, Index stride, Index n, T shift, F&& visit) {
  T buf[detail::k_vec_block];
  for (Index lo = 0; lo < n; lo += detail::k_vec_block) {
    const Index len = std::min(n - lo, detail::k_vec_block);
    if (stride == 1) {
      detail::vec_exp_shifted(in + lo, shift, buf, len); // the shift in the same pass
    } else {
      for (Index k = 0; k < len; ++k) buf[k] = in[(lo + k) * stride] - shift;
      detail::vec_math(detail::VecFn::exp, buf, buf, len);
    }
    visit(lo, static_cast<const T*>(buf), len);
  }
}
/// The sum of exp(in[k * stride] - shift) over the lane (contiguous: vec_exp_sum, nothing stored).
template <class T> double sum_exp(const T* in, Index stride, Index n, T shift) {
  if (stride == 1) return detail::vec_exp_sum(in, shift, static_cast<T*>(nullptr), n);
  double s = 0;
  for_each_exp(in, stride, n, shift,
               [&s](Index, const T* e, Index len) { s += detail::sum_contiguous(e, len); });
  return s;
}
} // namespace

Tensor logsumexp(const Tensor& x, int axis, bool keepdim) {
  detail::require_defined(x, "logsumexp");
  const int ax = normalize_axis(axis, x.rank(), "logsumexp");
  const detail::AxisView v(x.shape(), ax);
  Tensor out = Tensor::empty(detail::reduced_shape(x.shape(), ax, keepdim), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    T* o = out.data<T>();
    detail::for_each_lane(v, [&](Index base, Index stride, Index oi) {
      if (v.n == 0) {
        o[oi] = -std::numeric_limits<T>::infinity();
        return;
      }
      const T m = detail::lane_max(p + base, stride, v.n);
      if (!std::isfinite(m)) { // NaN, +inf (the sum is infinite) or -inf (every term is zero)
        o[oi] = m;
        return;
      }
      const double s = sum_exp(p + base, stride, v.n, m);
      o[oi] = static_cast<T>(static_cast<double>(m) + std::log(s));
    });
  });
  return out;
}

namespace {
/// Softmax (log_space false) or log-softmax of every lane along the axis, max subtracted first.
Tensor softmax_impl(const Tensor& x, int axis, bool log_space, std::string_view op) {
  detail::require_defined(x, op);
  const int ax = normalize_axis(axis, x.rank(), op);
  const detail::AxisView v(x.shape(), ax);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  if (v.n == 0) return out;
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    constexpr T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    const T* p = x.data<T>();
    T* o = out.data<T>();
    detail::for_each_lane(v, [&](Index base, Index stride, Index) {
      const T* in = p + base;
      T* res = o + base;
      if (log_space && stride == 1 && detail::vec_log_softmax_short(in, res, v.n)) return; // a few classes
      const T m = detail::lane_max(in, stride, v.n);
      if (m != m || m == -inf) { // NaN in the lane, or every entry -inf: undefined
        for (Index k = 0; k < v.n; ++k) res[k * stride] = nan;
        return;
      }
      if (m == inf) { // the limit: the +inf entries share the mass equally
        Index count = 0;
        for (Index k = 0; k < v.n; ++k) count += in[k * stride] == inf;
        const T share = log_space ? static_cast<T>(-std::log(static_cast<double>(count)))
                                  : static_cast<T>(1.0 / static_cast<double>(count));
        const T rest = log_space ? -inf : T(0);
        for (Index k = 0; k < v.n; ++k) res[k * stride] = in[k * stride] == inf ? share : rest;
        return;
      }
      double s = 0;
      if (log_space) {
        s = sum_exp(in, stride, v.n, m);
        const T log_s = static_cast<T>(std::log(s));
        for (Index k = 0; k < v.n; ++k) res[k * stride] = (in[k * stride] - m) - log_s;
      } else {
        if (stride == 1) // the maximum, exp stored and summed (one pass in double), the scale
          s = detail::vec_exp_sum(in, m, res, v.n);
        else
          for_each_exp(in, stride, v.n, m, [&](Index lo, const T* e, Index len) {
            for (Index k = 0; k < len; ++k) res[(lo + k) * stride] = e[k];
            s += detail::sum_contiguous(e, len);
          });
        const T inv = static_cast<T>(1.0 / s);
        if (stride == 1)
          for (Index k = 0; k < v.n; ++k) res[k] *= inv;
        else
          for (Index k = 0; k < v.n; ++k) res[k * stride] *= inv;
      }
    });
  });
  return out;
}
} // namespace

Tensor softmax_backward(const Tensor& g, const Tensor& out, int axis, bool log_space) {
  const std::string_view op = log_space ? "log_softmax backward" : "softmax backward";
  detail::require_defined(g, op);
  detail::require_defined(out, op);
  if (!(g.shape() == out.shape()))
    throw ShapeError(
        fmt::format("{}: gradient {} and output {} differ in shape", op, g.shape().str(), out.shape().str()));
  const int ax = normalize_axis(axis, out.rank(), op);
  const detail::AxisView v(out.shape(), ax);
  const Tensor pg = g.to(out.dtype());
  Tensor r = Tensor::empty(out.shape(), out.dtype());
  detail::dispatch(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *gp = pg.data<T>(), *op_ = out.data<T>();
    T* rp = r.data<T>();
    detail::for_each_lane(v, [&](Index base, Index stride, Index) {
      double s = 0;
      if (log_space) { // g - exp(out) * sum(g)
        if (stride == 1)
          s = detail::sum_contiguous(gp + base, v.n);
        else
          for (Index k = 0; k < v.n; ++k) s += static_cast<double>(gp[base + k * stride]);
        const T st = static_cast<T>(s);
        if (stride == 1) { // exp(out) and the arithmetic in one contiguous pass
          detail::vec_exp_fnmadd(op_ + base, gp + base, st, rp + base, v.n);
        } else {
          for_each_exp(op_ + base, stride, v.n, T(0), [&](Index lo, const T* e, Index len) {
            for (Index k = 0; k < len; ++k) {
              const Index i = base + (lo + k) * stride;
              rp[i] = gp[i] - e[k] * st;
            }
          });
        }
      } else { // out * (g - sum(g * out))
        if (stride == 1)
          s = detail::dot_contiguous(gp + base, op_ + base, v.n);
        else
          for (Index k = 0; k < v.n; ++k) {
            const Index i = base + k * stride;
            s += static_cast<double>(gp[i] * op_[i]);
          }
        const T st = static_cast<T>(s);
        if (stride == 1) { // contiguous: vectorised
          T* ri = rp + base;
          const T *gi = gp + base, *oi = op_ + base;
          for (Index k = 0; k < v.n; ++k) ri[k] = oi[k] * (gi[k] - st);
        } else {
          for (Index k = 0; k < v.n; ++k) {
            const Index i = base + k * stride;
            rp[i] = op_[i] * (gp[i] - st);
          }
        }
      }
    });
  });
  return r;
}

Tensor softmax(const Tensor& x, int axis) {
  return softmax_impl(x, axis, false, "softmax");
}

Tensor log_softmax(const Tensor& x, int axis) {
  return softmax_impl(x, axis, true, "log_softmax");
}
} // namespace gg::kernel
