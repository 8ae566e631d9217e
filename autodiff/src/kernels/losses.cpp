// The kernels of the losses recorded as one node: mse_loss's value and gradients. Input and target of
// one shape and dtype take fused loops; others are broadcast first (a - b of their shape). The sums run
// in float64 in the order of sum_contiguous over the squares, so the numbers are those of
// mean((a - b) * (a - b)) computed op by op.
#include <array>

#include "kernels.hpp"
#include "loops.hpp"

namespace gg::kernel {
namespace {
using detail::dispatch;
using detail::Index;

/// Whether a and b take the fused loops (no broadcasting, no conversion).
bool fused(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype();
}

/// The sum of (a[i] - b[i])^2, each square in T, by eight partial sums as sum_contiguous.
template <class T> double squared_difference_sum(const T* a, const T* b, Index n) {
  return detail::partial_sums(n, [&](Index j) {
    const T d = a[j] - b[j];
    return static_cast<double>(d * d);
  });
}

/// A gradient of the broadcast shape summed to the shape of its input and converted to its dtype
/// (undefined stays undefined).
Tensor fitted(Tensor t, const Tensor& input) {
  if (!t.defined()) return t;
  if (!(t.shape() == input.shape())) t = sum_to(t, input.shape());
  return t.dtype() == input.dtype() ? t : t.to(input.dtype());
}
} // namespace

Tensor squared_error(const Tensor& a, const Tensor& b) {
  if (!fused(a, b)) {
    const Tensor d = binary(Binary::sub, a, b, "mse_loss");
    return binary(Binary::mul, d, d);
  }
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* po = out.data<T>();
    detail::parallel_range(a.numel(), [&](Index lo, Index hi) {
      for (Index i = lo; i < hi; ++i) {
        const T d = pa[i] - pb[i];
        po[i] = d * d;
      }
    });
  });
  return out;
}

Tensor squared_error_sum(const Tensor& a, const Tensor& b, bool mean) {
  const Tensor d = fused(a, b) ? Tensor() : binary(Binary::sub, a, b, "mse_loss");
  const Tensor& x = d.defined() ? d : a;
  return dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Index n = x.numel();
    const double s = d.defined() ? detail::dot_contiguous(d.data<T>(), d.data<T>(), n)
                                 : squared_difference_sum(a.data<T>(), b.data<T>(), n);
    return Tensor::scalar(mean ? s / static_cast<double>(n) : s, x.dtype());
  });
}

std::array<Tensor, 2> squared_error_backward(const Tensor& g, const Tensor& a, const Tensor& b,
                                             double divisor, std::array<bool, 2> needs) {
  // u = 2 (g (a - b)), as (g d) + (g d): the sum the op-by-op graph's two uses of d gave.
  const bool spread = g.rank() == 0; // a reduced loss: g / divisor for every element
  const Tensor d = fused(a, b) ? Tensor() : binary(Binary::sub, a, b, "mse_loss");
  const Tensor& x = d.defined() ? d : a;
  const auto make = [&](bool need) { return need ? Tensor::empty(x.shape(), x.dtype()) : Tensor(); };
  Tensor u = make(needs[0]), v = make(needs[1]);
  Tensor converted; // g in x's dtype when it is not (a reference otherwise: no count up and down)
  const Tensor& gt = spread || g.dtype() == x.dtype() ? g : (converted = g.to(x.dtype()));
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = x.data<T>();
    const T* pb = d.defined() ? nullptr : b.data<T>();
    const T* pg = spread ? nullptr : gt.data<T>();
    const T k = spread ? static_cast<T>(g.item() / divisor) : T(0);
    T* pu = needs[0] ? u.data<T>() : nullptr;
    T* pv = needs[1] ? v.data<T>() : nullptr;
    detail::parallel_range(x.numel(), [&](Index lo, Index hi) {
      for (Index i = lo; i < hi; ++i) {
        const T di = pb ? pa[i] - pb[i] : pa[i];
        const T t = (pg ? pg[i] : k) * di;
        if (pu) pu[i] = t + t;
        if (pv) pv[i] = -(t + t);
      }
    });
  });
  return {fitted(std::move(u), a), fitted(std::move(v), b)};
}

} // namespace gg::kernel
