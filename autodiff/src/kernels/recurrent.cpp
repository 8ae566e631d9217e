// The LSTM cell's kernels: its state update from the pre-activation gates (i, f, g, o, PyTorch's
// order) in one pass over each row, the activations through vec_math a block at a time, and the
// backward of each half (c' and h'), recomputing the activations rather than keeping them.
#include <algorithm>
#include <cmath>

#include "../ops/elementwise.hpp"
#include "loops.hpp"

namespace gg::kernel {

using detail::Index;
using detail::k_vec_block;

namespace {
/// y = sigmoid(x) and y = tanh(x) over n elements: the ops' own rows (stable sigmoid, vec_math).
template <class T> void sigmoid_block(const T* x, T* y, Index n) {
  gg::detail::vec_value<gg::detail::Math<Op::sigmoid>>(x, y, n);
}
template <class T> void tanh_block(const T* x, T* y, Index n) {
  gg::detail::vec_value<gg::detail::Math<Op::tanh>>(x, y, n);
}
} // namespace

Tensor lstm_cell(const Tensor& gates, const Tensor& c, int part) {
  const Index h = c.shape()[c.rank() - 1], rows = h == 0 ? 0 : c.numel() / h;
  Tensor out = Tensor::empty(c.shape(), c.dtype());
  detail::dispatch(c.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T a[k_vec_block], b[k_vec_block], d[k_vec_block];
    for (Index r = 0; r < rows; ++r) {
      const T* gr = gates.data<T>() + r * 4 * h;
      const T* cr = c.data<T>() + r * h;
      T* o = out.data<T>() + r * h;
      for (Index j0 = 0; j0 < h; j0 += k_vec_block) {
        const Index n = std::min(k_vec_block, h - j0);
        if (part == 0) { // c' = sigmoid(f) c + sigmoid(i) tanh(g)
          sigmoid_block(gr + j0, a, n);
          sigmoid_block(gr + h + j0, b, n);
          tanh_block(gr + 2 * h + j0, d, n);
          for (Index j = 0; j < n; ++j) o[j0 + j] = b[j] * cr[j0 + j] + a[j] * d[j];
        } else { // h' = sigmoid(o) tanh(c')
          sigmoid_block(gr + 3 * h + j0, a, n);
          tanh_block(cr + j0, b, n);
          for (Index j = 0; j < n; ++j) o[j0 + j] = a[j] * b[j];
        }
      }
    }
  });
  return out;
}

std::array<Tensor, 2> lstm_cell_backward(const Tensor& g, const Tensor& gates, const Tensor& c, int part,
                                         std::array<bool, 2> needs) {
  const Index h = c.shape()[c.rank() - 1], rows = h == 0 ? 0 : c.numel() / h;
  std::array<Tensor, 2> r;
  if (needs[0]) r[0] = Tensor::zeros(gates.shape(), gates.dtype());
  if (needs[1]) r[1] = Tensor::empty(c.shape(), c.dtype());
  detail::dispatch(c.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T a[k_vec_block], b[k_vec_block], d[k_vec_block];
    for (Index row = 0; row < rows; ++row) {
      const T* gr = gates.data<T>() + row * 4 * h;
      const T* cr = c.data<T>() + row * h;
      const T* go = g.data<T>() + row * h;
      T* dg = needs[0] ? r[0].data<T>() + row * 4 * h : nullptr;
      T* dc = needs[1] ? r[1].data<T>() + row * h : nullptr;
      for (Index j0 = 0; j0 < h; j0 += k_vec_block) {
        const Index n = std::min(k_vec_block, h - j0);
        if (part == 0) { // d/di, d/df, d/dg of sigmoid(f) c + sigmoid(i) tanh(g); d/dc = sigmoid(f)
          sigmoid_block(gr + j0, a, n);
          sigmoid_block(gr + h + j0, b, n);
          tanh_block(gr + 2 * h + j0, d, n);
          for (Index j = 0; j < n; ++j) {
            const T gj = go[j0 + j];
            if (dg) {
              dg[j0 + j] = gj * d[j] * a[j] * (1 - a[j]);
              dg[h + j0 + j] = gj * cr[j0 + j] * b[j] * (1 - b[j]);
              dg[2 * h + j0 + j] = gj * a[j] * (1 - d[j] * d[j]);
            }
            if (dc) dc[j0 + j] = gj * b[j];
          }
        } else { // d/do and d/dc' of sigmoid(o) tanh(c')
          sigmoid_block(gr + 3 * h + j0, a, n);
          tanh_block(cr + j0, b, n);
          for (Index j = 0; j < n; ++j) {
            const T gj = go[j0 + j];
            if (dg) dg[3 * h + j0 + j] = gj * b[j] * a[j] * (1 - a[j]);
            if (dc) dc[j0 + j] = gj * a[j] * (1 - b[j] * b[j]);
          }
        }
      }
    }
  });
  return r;
}

} // namespace gg::kernel
