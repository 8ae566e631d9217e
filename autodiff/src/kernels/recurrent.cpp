// The LSTM's kernels: the cell's state update from the pre-activation gates (i, f, g, o, PyTorch's
// order) in one pass over each row, the activations through vec_math a block at a time, and the
// backward of each half (c' and h'), recomputing the activations rather than keeping them; and a
// whole layer over a sequence (lstm_layer), its products over all steps at once where time allows;
// and the same whole-layer kernels for the GRU (gru_layer) and the Elman RNN (rnn_layer).
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

/// The input's share of every step's gates at once, one [rows, e] x [e, g] product: gates = x w^T
/// (+ bias in each row when bias is not null).
template <class T>
void layer_input_share(const T* x, const T* w, const T* bias, T* gates, Index rows, Index e, Index g) {
  if (bias)
    for (Index r = 0; r < rows; ++r)
      std::memcpy(gates + r * g, bias, sizeof(T) * static_cast<std::size_t>(g));
  detail::gemm_any(x, false, e, w, true, e, gates, rows, e, g, bias != nullptr);
}

/// The gradients on the input side from the gates' gradients dg [rows, g] of every step: x's (dg
/// w_ih, [rows, e]) and w_ih's (dg^T x, [g, e]), each only when needed.
template <class T>
void layer_input_grads(const T* dg, const Tensor& x, const Tensor& w_ih, Index rows, Index g, bool need_x,
                       bool need_w, Tensor& dx, Tensor& dw) {
  const Index e = x.shape()[2];
  if (need_x) {
    dx = Tensor::empty(x.shape(), x.dtype());
    detail::gemm_any(dg, false, g, w_ih.data<T>(), false, e, dx.data<T>(), rows, g, e);
  }
  if (need_w) {
    dw = Tensor::empty(w_ih.shape(), x.dtype());
    detail::gemm_any(dg, true, g, x.data<T>(), false, e, dw.data<T>(), g, rows, e);
  }
}

/// w_hh's gradient, every step's gates' gradients dg [steps, n, g] against the h before it (hs: the
/// steps' h [steps, n, h] in sequence order, h0 before the first step to run): the steps after the
/// first at once, then the first's.
template <class T>
Tensor layer_recurrent_weight_grad(const T* dg, const T* hs, const Tensor& h0, const StepOrder& order,
                                   Index n, Index g) {
  const Index h = h0.shape()[1], rest = (order.steps - 1) * n;
  Tensor r = Tensor::empty({g, h}, h0.dtype());
  T* dw = r.data<T>();
  const T* dg_rest = dg + (order.reverse ? 0 : n * g); // the steps whose previous h is an output
  const T* h_rest = hs + (order.reverse ? n * h : 0);  // those previous h's, in the same order
  detail::gemm_any(dg_rest, true, g, h_rest, false, h, dw, g, rest, h);
  detail::gemm_any(dg + order.at(0) * n * g, true, g, h0.data<T>(), false, h, dw, g, n, h, rest > 0);
  return r;
}

/// The columns' sums of dg [rows, g]: a bias's gradient.
template <class T> Tensor layer_column_sums(const T* dg, Index rows, Index g, DType dtype) {
  Tensor r = Tensor::zeros({g}, dtype);
  T* db = r.data<T>();
  for (Index row = 0; row < rows; ++row)
    for (Index j = 0; j < g; ++j) db[j] += dg[row * g + j];
  return r;
}
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
    layer_input_share(x.data<T>(), w_ih.data<T>(), bias.defined() ? bias.data<T>() : nullptr, gates,
                      steps * n, e, g4);
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
  const Index steps = x.shape()[0], n = x.shape()[1], h = h0.shape()[1], g4 = 4 * h;
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
    layer_input_grads(dg, x, w_ih, steps * n, g4, needs[0], needs[3], r[0], r[3]);
    if (needs[4]) r[4] = layer_recurrent_weight_grad(dg, out.data<T>(), h0, order, n, g4);
    if (needs[5]) r[5] = layer_column_sums(dg, steps * n, g4, dtype);
  });
  if (needs[1]) r[1] = dh;
  if (needs[2]) r[2] = dc;
  return r;
}

Tensor gru_layer(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                 const Tensor& b_ih, const Tensor& b_hh, bool reverse, Tensor& saved) {
  const Index steps = x.shape()[0], n = x.shape()[1], e = x.shape()[2], h = h0.shape()[1], g3 = 3 * h;
  const DType dtype = x.dtype();
  Tensor out = Tensor::empty({steps, n, h}, dtype), hidden = Tensor::empty({n, g3}, dtype);
  saved = Tensor::empty({steps * n * 4 * h}, dtype);
  const StepOrder order{steps, reverse};
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* gates = saved.data<T>();      // [steps, n, 3h]: x's share (with b_ih), then (in place) r, z and n
    T* hns = gates + steps * n * g3; // [steps, n, h]: W_hn h + b_hn, which r multiplies
    T* hs = out.data<T>();
    T* gh = hidden.data<T>(); // a step's h W_hh^T + b_hh
    layer_input_share(x.data<T>(), w_ih.data<T>(), b_ih.defined() ? b_ih.data<T>() : nullptr, gates,
                      steps * n, e, g3);
    T a[k_vec_block], z[k_vec_block], v[k_vec_block];
    for (Index i = 0; i < steps; ++i) {
      const Index t = order.at(i), p = order.before(i);
      const T* h_prev = p < 0 ? h0.data<T>() : hs + p * n * h;
      if (b_hh.defined())
        for (Index r = 0; r < n; ++r) std::memcpy(gh + r * g3, b_hh.data<T>(), bytes(g3, dtype));
      detail::gemm_any(h_prev, false, h, w_hh.data<T>(), true, h, gh, n, h, g3, b_hh.defined());
      for (Index r = 0; r < n; ++r) {
        T* gr = gates + (t * n + r) * g3;
        const T* hr_w = gh + r * g3;
        const T* hp = h_prev + r * h;
        T* hn = hns + (t * n + r) * h;
        T* hr = hs + (t * n + r) * h;
        for (Index j0 = 0; j0 < h; j0 += k_vec_block) {
          const Index m = std::min(k_vec_block, h - j0);
          for (Index j = 0; j < m; ++j) v[j] = gr[j0 + j] + hr_w[j0 + j];
          sigmoid_block(v, a, m); // r
          for (Index j = 0; j < m; ++j) v[j] = gr[h + j0 + j] + hr_w[h + j0 + j];
          sigmoid_block(v, z, m);
          for (Index j = 0; j < m; ++j) v[j] = gr[2 * h + j0 + j] + a[j] * hr_w[2 * h + j0 + j];
          std::memcpy(hn + j0, hr_w + 2 * h + j0, bytes(m, dtype));
          std::memcpy(gr + j0, a, bytes(m, dtype));
          std::memcpy(gr + h + j0, z, bytes(m, dtype));
          tanh_block(v, gr + 2 * h + j0, m); // n
          for (Index j = 0; j < m; ++j) {
            const T nj = gr[2 * h + j0 + j];
            hr[j0 + j] = nj + z[j] * (hp[j0 + j] - nj); // (1 - z) n + z h
          }
        }
      }
    }
  });
  return out;
}

std::array<Tensor, 6> gru_layer_backward(const Tensor& g, const Tensor& out, const Tensor& saved,
                                         const Tensor& x, const Tensor& h0, const Tensor& w_ih,
                                         const Tensor& w_hh, bool reverse, std::array<bool, 6> needs) {
  const Index steps = x.shape()[0], n = x.shape()[1], h = h0.shape()[1], g3 = 3 * h;
  const DType dtype = x.dtype();
  const StepOrder order{steps, reverse};
  std::array<Tensor, 6> r;
  Tensor dgates = Tensor::empty({steps, n, g3}, dtype), dhidden = Tensor::empty({n, g3}, dtype),
         dh = Tensor::zeros({n, h}, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* act = saved.data<T>();
    const T* hns = act + steps * n * g3;
    const T* gy = g.data<T>();
    const T* hs = out.data<T>();
    T* dg = dgates.data<T>();   // the gradients of x's share of the gates (r, z, n)
    T* dgh = dhidden.data<T>(); // a step's gradients of h W_hh^T + b_hh
    T* dhn = dh.data<T>();
    // Back through time: each step's gate gradients, and from them the previous step's h.
    for (Index i = steps - 1; i >= 0; --i) {
      const Index t = order.at(i), p = order.before(i);
      const T* h_prev = p < 0 ? h0.data<T>() : hs + p * n * h;
      for (Index row = 0; row < n; ++row) {
        const T* ar = act + (t * n + row) * g3;
        const T* hn = hns + (t * n + row) * h;
        const T* hp = h_prev + row * h;
        const T* gr = gy + (t * n + row) * h;
        T* dgr = dg + (t * n + row) * g3;
        T* dghr = dgh + row * g3;
        T* dhr = dhn + row * h;
        for (Index j = 0; j < h; ++j) {
          const T rg = ar[j], zg = ar[h + j], ng = ar[2 * h + j];
          const T dhj = gr[j] + dhr[j];
          const T dn = dhj * (1 - zg) * (1 - ng * ng); // through n's tanh
          dgr[j] = dghr[j] = dn * hn[j] * rg * (1 - rg);
          dgr[h + j] = dghr[h + j] = dhj * (hp[j] - ng) * zg * (1 - zg);
          dgr[2 * h + j] = dn;
          dghr[2 * h + j] = dn * rg;
          dhr[j] = dhj * zg; // h' = n + z (h - n): h's share outside the gates
        }
      }
      // The previous h's gradient through this step's gates: [n, 3h] x [3h, h], onto z's share.
      detail::gemm_any(dgh, false, g3, w_hh.data<T>(), false, h, dhn, n, g3, h, true);
    }
    layer_input_grads(dg, x, w_ih, steps * n, g3, needs[0], needs[2], r[0], r[2]);
    if (needs[4]) r[4] = layer_column_sums(dg, steps * n, g3, dtype);
    if (needs[3] || needs[5]) { // the hidden side's gradients: n's scaled by r
      for (Index row = 0; row < steps * n; ++row)
        for (Index j = 0; j < h; ++j) dg[row * g3 + 2 * h + j] *= act[row * g3 + j];
      if (needs[3]) r[3] = layer_recurrent_weight_grad(dg, hs, h0, order, n, g3);
      if (needs[5]) r[5] = layer_column_sums(dg, steps * n, g3, dtype);
    }
  });
  if (needs[1]) r[1] = dh;
  return r;
}

Tensor rnn_layer(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                 const Tensor& bias, bool relu, bool reverse) {
  const Index steps = x.shape()[0], n = x.shape()[1], e = x.shape()[2], h = h0.shape()[1];
  const DType dtype = x.dtype();
  Tensor out = Tensor::empty({steps, n, h}, dtype);
  const StepOrder order{steps, reverse};
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* hs = out.data<T>(); // each step's pre-activation, then (in place) its h
    layer_input_share(x.data<T>(), w_ih.data<T>(), bias.defined() ? bias.data<T>() : nullptr, hs, steps * n,
                      e, h);
    T a[k_vec_block];
    for (Index i = 0; i < steps; ++i) {
      const Index t = order.at(i), p = order.before(i);
      T* ht = hs + t * n * h;
      detail::gemm_any(p < 0 ? h0.data<T>() : hs + p * n * h, false, h, w_hh.data<T>(), true, h, ht, n, h, h,
                       true);
      if (relu) {
        for (Index j = 0; j < n * h; ++j) ht[j] = ht[j] > 0 ? ht[j] : T(0);
      } else {
        for (Index j0 = 0; j0 < n * h; j0 += k_vec_block) {
          const Index m = std::min(k_vec_block, n * h - j0);
          tanh_block(ht + j0, a, m);
          std::memcpy(ht + j0, a, bytes(m, dtype));
        }
      }
    }
  });
  return out;
}

std::array<Tensor, 5> rnn_layer_backward(const Tensor& g, const Tensor& out, const Tensor& x,
                                         const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh, bool relu,
                                         bool reverse, std::array<bool, 5> needs) {
  const Index steps = x.shape()[0], n = x.shape()[1], h = h0.shape()[1];
  const DType dtype = x.dtype();
  const StepOrder order{steps, reverse};
  std::array<Tensor, 5> r;
  Tensor dpre = Tensor::empty({steps, n, h}, dtype), dh = Tensor::zeros({n, h}, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* gy = g.data<T>();
    const T* hs = out.data<T>();
    T* da = dpre.data<T>();
    T* dhn = dh.data<T>();
    // Back through time: each step's pre-activation gradient (the slope from its h), then h's before.
    for (Index i = steps - 1; i >= 0; --i) {
      const Index t = order.at(i), at = t * n * h;
      for (Index j = 0; j < n * h; ++j) {
        const T dhj = gy[at + j] + dhn[j], hj = hs[at + j];
        da[at + j] = relu ? (hj > 0 ? dhj : T(0)) : dhj * (1 - hj * hj);
      }
      detail::gemm_any(da + at, false, h, w_hh.data<T>(), false, h, dhn, n, h, h);
    }
    layer_input_grads(da, x, w_ih, steps * n, h, needs[0], needs[2], r[0], r[2]);
    if (needs[3]) r[3] = layer_recurrent_weight_grad(da, hs, h0, order, n, h);
    if (needs[4]) r[4] = layer_column_sums(da, steps * n, h, dtype);
  });
  if (needs[1]) r[1] = dh;
  return r;
}

} // namespace gg::kernel
