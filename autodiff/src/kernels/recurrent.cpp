// The LSTM's kernels: the cell's state update from the pre-activation gates (i, f, g, o, PyTorch's
// order) in one pass over each row, the activations through vec_math a block at a time, and the
// backward of each half (c' and h'), recomputing the activations rather than keeping them; and a
// whole layer over a sequence (lstm_layer), its products over all steps at once where time allows.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../ops/elementwise.hpp"
#include "gemm.hpp"
#include "loops.hpp"

namespace gg::kernel {

using detail::bytes;
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

namespace {
/// Where a layer's step i (in the order it runs) is in the sequence, and the step before it (-1: the
/// initial state).
struct StepOrder {
  Index steps;
  bool reverse;
  Index at(Index i) const { return reverse ? steps - 1 - i : i; }
  Index before(Index i) const { return i == 0 ? -1 : at(i - 1); }
};
} // namespace

Tensor lstm_layer(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                  const Tensor& bias, bool reverse, Tensor& saved) {
  const Index steps = x.shape()[0], n = x.shape()[1], e = x.shape()[2], h = h0.shape()[1], g4 = 4 * h;
  const DType dtype = x.dtype();
  Tensor out = Tensor::empty({steps + 1, n, h}, dtype);
  saved = Tensor::empty({steps * n * 5 * h}, dtype);
  const StepOrder order{steps, reverse};
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* gates = saved.data<T>(); // [steps, n, 4h]: pre-activations, then (in place) the activations
    T* cs = gates + steps * n * g4;
    T* hs = out.data<T>();
    // The input's share of every step's gates at once: one [steps n, e] x [e, 4h] product.
    if (bias.defined())
      for (Index r = 0; r < steps * n; ++r) std::memcpy(gates + r * g4, bias.data<T>(), bytes(g4, dtype));
    detail::gemm_any(x.data<T>(), false, e, w_ih.data<T>(), true, e, gates, steps * n, e, g4, bias.defined());
    T a[k_vec_block], b[k_vec_block], d[k_vec_block], o[k_vec_block];
    for (Index i = 0; i < steps; ++i) {
      const Index t = order.at(i), p = order.before(i);
      const T* h_prev = p < 0 ? h0.data<T>() : hs + p * n * h;
      const T* c_prev = p < 0 ? c0.data<T>() : cs + p * n * h;
      T* gt = gates + t * n * g4;
      detail::gemm_any(h_prev, false, h, w_hh.data<T>(), true, h, gt, n, h, g4, true);
      for (Index r = 0; r < n; ++r) {
        T* gr = gt + r * g4;
        const T* cp = c_prev + r * h;
        T* cr = cs + (t * n + r) * h;
        T* hr = hs + (t * n + r) * h;
        for (Index j0 = 0; j0 < h; j0 += k_vec_block) {
          const Index m = std::min(k_vec_block, h - j0);
          sigmoid_block(gr + j0, a, m);
          sigmoid_block(gr + h + j0, b, m);
          tanh_block(gr + 2 * h + j0, d, m);
          sigmoid_block(gr + 3 * h + j0, o, m);
          for (Index j = 0; j < m; ++j) cr[j0 + j] = b[j] * cp[j0 + j] + a[j] * d[j];
          std::memcpy(gr + j0, a, bytes(m, dtype));
          std::memcpy(gr + h + j0, b, bytes(m, dtype));
          std::memcpy(gr + 2 * h + j0, d, bytes(m, dtype));
          std::memcpy(gr + 3 * h + j0, o, bytes(m, dtype));
          tanh_block(cr + j0, a, m);
          for (Index j = 0; j < m; ++j) hr[j0 + j] = o[j] * a[j];
        }
      }
    }
    std::memcpy(hs + steps * n * h, cs + order.at(steps - 1) * n * h, bytes(n * h, dtype));
  });
  return out;
}

std::array<Tensor, 6> lstm_layer_backward(const Tensor& g, const Tensor& out, const Tensor& saved,
                                          const Tensor& x, const Tensor& h0, const Tensor& c0,
                                          const Tensor& w_ih, const Tensor& w_hh, bool reverse,
                                          std::array<bool, 6> needs) {
  const Index steps = x.shape()[0], n = x.shape()[1], e = x.shape()[2], h = h0.shape()[1], g4 = 4 * h;
  const DType dtype = x.dtype();
  const StepOrder order{steps, reverse};
  std::array<Tensor, 6> r;
  Tensor dgates = Tensor::empty({steps, n, g4}, dtype), dh = Tensor::zeros({n, h}, dtype),
         dc = Tensor::empty({n, h}, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* act = saved.data<T>();
    const T* cs = act + steps * n * g4;
    const T* gy = g.data<T>();
    T* dg = dgates.data<T>();
    T* dhn = dh.data<T>();
    T* dcn = dc.data<T>();
    std::memcpy(dcn, gy + steps * n * h, bytes(n * h, dtype)); // the last c's gradient
    T tc[k_vec_block];
    // Back through time: each step's gate gradients, and from them the previous step's h and c.
    for (Index i = steps - 1; i >= 0; --i) {
      const Index t = order.at(i), p = order.before(i);
      const T* c_prev = p < 0 ? c0.data<T>() : cs + p * n * h;
      for (Index row = 0; row < n; ++row) {
        const T* ar = act + (t * n + row) * g4;
        const T* cr = cs + (t * n + row) * h;
        const T* cp = c_prev + row * h;
        const T* gr = gy + (t * n + row) * h;
        T* dgr = dg + (t * n + row) * g4;
        T* dhr = dhn + row * h;
        T* dcr = dcn + row * h;
        for (Index j0 = 0; j0 < h; j0 += k_vec_block) {
          const Index m = std::min(k_vec_block, h - j0);
          tanh_block(cr + j0, tc, m);
          for (Index jj = 0; jj < m; ++jj) {
            const Index j = j0 + jj;
            const T ig = ar[j], fg = ar[h + j], gg = ar[2 * h + j], og = ar[3 * h + j];
            const T dhj = gr[j] + dhr[j];
            const T dcj = dcr[j] + dhj * og * (1 - tc[jj] * tc[jj]);
            dgr[j] = dcj * gg * ig * (1 - ig);
            dgr[h + j] = dcj * cp[j] * fg * (1 - fg);
            dgr[2 * h + j] = dcj * ig * (1 - gg * gg);
            dgr[3 * h + j] = dhj * tc[jj] * og * (1 - og);
            dcr[j] = dcj * fg;
          }
        }
      }
      // The previous h's gradient through this step's gates: [n, 4h] x [4h, h].
      detail::gemm_any(dg + t * n * g4, false, g4, w_hh.data<T>(), false, h, dhn, n, g4, h);
    }
    const T* xs = x.data<T>();
    const T* hs = out.data<T>();
    if (needs[0]) { // x's: [steps n, 4h] x [4h, e]
      r[0] = Tensor::empty(x.shape(), dtype);
      detail::gemm_any(dg, false, g4, w_ih.data<T>(), false, e, r[0].data<T>(), steps * n, g4, e);
    }
    if (needs[3]) { // W_ih's: [4h, steps n] x [steps n, e]
      r[3] = Tensor::empty(w_ih.shape(), dtype);
      detail::gemm_any(dg, true, g4, xs, false, e, r[3].data<T>(), g4, steps * n, e);
    }
    if (needs[4]) { // W_hh's: every step's gates against the h before it, the steps after the first at once
      r[4] = Tensor::empty(w_hh.shape(), dtype);
      T* dw = r[4].data<T>();
      const Index first = order.at(0), rest = (steps - 1) * n;
      const T* dg_rest = dg + (reverse ? 0 : n * g4); // the steps whose previous h is an output
      const T* h_rest = hs + (reverse ? n * h : 0);   // those previous h's, in the same order
      detail::gemm_any(dg_rest, true, g4, h_rest, false, h, dw, g4, rest, h);
      detail::gemm_any(dg + first * n * g4, true, g4, h0.data<T>(), false, h, dw, g4, n, h, rest > 0);
    }
    if (needs[5]) { // the bias's: the gates' gradients summed over steps and rows
      r[5] = Tensor::zeros({g4}, dtype);
      T* db = r[5].data<T>();
      for (Index row = 0; row < steps * n; ++row)
        for (Index j = 0; j < g4; ++j) db[j] += dg[row * g4 + j];
    }
  });
  if (needs[1]) r[1] = dh;
  if (needs[2]) r[2] = dc;
  return r;
}

} // namespace gg::kernel
