// Attention's kernels: scaled dot-product attention forward and backward, one item (a batch entry and
// head) at a time in blocks of query rows — the block's scores in a scratch buffer, scaled, masked
// (an additive mask and/or the causal triangle) and softmaxed, max first — the items split across the
// kernel threads with each product on its thread; with the causal flag the products skip the keys
// right of each block's last row.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gemm.hpp"
#include "kernels.hpp"
#include "loops.hpp"
#include "vecmath.hpp"

namespace gg::kernel {

using detail::Index;

namespace {

/// Query rows per block: a causal block's products stop at its last row's keys, so for L = S = 128
/// the products compute 5/8 of the full score matrix (measured in docs/performance.md, "GPT and LSTM
/// steps"), and a block's scores stay in the first-level cache.
constexpr Index k_block_rows = 32;

/// The sizes of one attention call, items [batch, L, E] queries, [batch, S, E] keys, [batch, S, Ev]
/// values.
struct AttentionDims {
  Index batch, l, s, e, ev;
  bool causal;
  /// Keys a query row may see (top-left aligned causal triangle, as PyTorch), and the keys a block of
  /// rows ending before `hi` needs.
  Index allowed(Index row) const { return causal ? std::min(s, row + 1) : s; }
  Index block_keys(Index hi) const { return causal ? std::min(s, hi) : s; }
};

AttentionDims dims_of(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  return {q.shape()[0], q.shape()[1], k.shape()[1], q.shape()[2], v.shape()[2], causal};
}

/// Runs item(i, gemm) for every item: split across the kernel threads when products can run on the
/// calling thread alone (gemm_serial), else one after the other with gemm_any (whose library may
/// thread each product).
template <class T, class Item> void for_each_item(const AttentionDims& d, Item&& item) {
  const auto serial = [](const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n,
                         Index k, Index m,
                         bool acc) { detail::gemm_serial(a, ta, lda, b, tb, ldb, c, n, k, m, acc); };
  const auto any = [](const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n, Index k,
                      Index m, bool acc) { detail::gemm_any(a, ta, lda, b, tb, ldb, c, n, k, m, acc); };
  if (!detail::gemm_serial_available<T>()) {
    std::vector<T> scratch(static_cast<std::size_t>(k_block_rows * d.s));
    for (Index i = 0; i < d.batch; ++i) item(i, any, scratch.data());
    return;
  }
  detail::parallel_range(
      d.batch,
      [&](Index lo, Index hi) {
        std::vector<T> scratch(static_cast<std::size_t>(k_block_rows * d.s));
        for (Index i = lo; i < hi; ++i) item(i, serial, scratch.data());
      },
      d.l * d.s * (d.e + d.ev));
}

} // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& mask,
                 bool causal, Tensor& weights) {
  const AttentionDims d = dims_of(q, k, v, causal);
  const bool per_item = mask.defined() && mask.rank() == 3; // [batch, L, S], else [L, S]
  weights = Tensor::empty(Shape{d.batch, d.l, d.s}, q.dtype());
  Tensor out = Tensor::empty(Shape{d.batch, d.l, d.ev}, q.dtype());
  detail::dispatch(q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    constexpr T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    const T sc = static_cast<T>(scale);
    const T* m = mask.defined() ? mask.data<T>() : nullptr;
    for_each_item<T>(d, [&](Index i, auto gemm, T* scores) {
      const T* qi = q.data<T>() + i * d.l * d.e;
      const T* ki = k.data<T>() + i * d.s * d.e;
      const T* vi = v.data<T>() + i * d.s * d.ev;
      T* pi = weights.data<T>() + i * d.l * d.s;
      T* oi = out.data<T>() + i * d.l * d.ev;
      for (Index lo = 0; lo < d.l; lo += k_block_rows) {
        const Index hi = std::min(d.l, lo + k_block_rows), rows = hi - lo, keys = d.block_keys(hi);
        if (keys == 0) { // no keys: an empty softmax, an output of zeros (as the products give)
          std::fill(oi + lo * d.ev, oi + hi * d.ev, T(0));
          continue;
        }
        gemm(qi + lo * d.e, false, d.e, ki, true, d.e, scores, rows, d.e, keys, false);
        for (Index r = lo; r < hi; ++r) {
          T* row = scores + (r - lo) * keys;
          T* p = pi + r * d.s;
          const T* add = m ? m + ((per_item ? i * d.l : 0) + r) * d.s : nullptr;
          const Index allowed = d.allowed(r);
          T mx = -inf;
          for (Index j = 0; j < allowed; ++j) {
            T x = row[j] * sc;
            if (add) x += add[j];
            row[j] = x;
            if (x > mx || x != x) mx = x;
          }
          if (mx != mx || mx == -inf) { // NaN, or nothing to attend to: undefined, as PyTorch's softmax
            std::fill(p, p + d.s, nan);
            continue;
          }
          detail::vec_exp_shifted(row, mx, row, allowed); // exp(row - mx) in one pass
          const T inv = static_cast<T>(1 / detail::sum_contiguous(row, allowed));
          for (Index j = 0; j < allowed; ++j) p[j] = row[j] * inv;
          std::fill(p + allowed, p + d.s, T(0));
        }
        gemm(pi + lo * d.s, false, d.s, vi, false, d.ev, oi + lo * d.ev, rows, keys, d.ev, false);
      }
    });
  });
  return out;
}

std::array<Tensor, 3> attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& weights, double scale, bool causal,
                                         std::array<bool, 3> needs) {
  const AttentionDims d = dims_of(q, k, v, causal);
  const DType dtype = q.dtype();
  const Tensor gc = g.to(dtype);
  std::array<Tensor, 3> r;
  if (needs[0]) r[0] = Tensor::empty(q.shape(), dtype);
  if (needs[1]) r[1] = Tensor::empty(k.shape(), dtype);
  if (needs[2]) r[2] = Tensor::empty(v.shape(), dtype);
  const bool scores_needed = needs[0] || needs[1];
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T sc = static_cast<T>(scale);
    for_each_item<T>(d, [&](Index i, auto gemm, T* ds) {
      const T* qi = q.data<T>() + i * d.l * d.e;
      const T* ki = k.data<T>() + i * d.s * d.e;
      const T* vi = v.data<T>() + i * d.s * d.ev;
      const T* pi = weights.data<T>() + i * d.l * d.s;
      const T* gi = gc.data<T>() + i * d.l * d.ev;
      T* dq = needs[0] ? r[0].data<T>() + i * d.l * d.e : nullptr;
      T* dk = needs[1] ? r[1].data<T>() + i * d.s * d.e : nullptr;
      T* dv = needs[2] ? r[2].data<T>() + i * d.s * d.ev : nullptr;
      // Keys no row sees (causal with S > L, or L = 0) get no share: zero. The blocks run last first:
      // the last one reaches the most keys, so it writes the key gradients and the others add to them.
      const Index reached = d.l > 0 ? d.block_keys(d.l) : 0;
      if (dk) std::fill(dk + reached * d.e, dk + d.s * d.e, T(0));
      if (dv) std::fill(dv + reached * d.ev, dv + d.s * d.ev, T(0));
      const Index blocks = (d.l + k_block_rows - 1) / k_block_rows;
      for (Index b = blocks - 1; b >= 0; --b) {
        const Index lo = b * k_block_rows, hi = std::min(d.l, lo + k_block_rows), rows = hi - lo,
                    keys = d.block_keys(hi);
        const bool add = b != blocks - 1;
        if (keys == 0) {
          if (dq) std::fill(dq + lo * d.e, dq + hi * d.e, T(0));
          continue;
        }
        // v's share: p^T g over the block's rows.
        if (dv) gemm(pi + lo * d.s, true, d.s, gi + lo * d.ev, false, d.ev, dv, keys, rows, d.ev, add);
        if (!scores_needed) continue;
        // The scores' gradient: p * (g v^T - sum(p * g v^T)) * scale, row by row.
        gemm(gi + lo * d.ev, false, d.ev, vi, true, d.ev, ds, rows, d.ev, keys, false);
        for (Index row = lo; row < hi; ++row) {
          T* dsr = ds + (row - lo) * keys;
          const T* p = pi + row * d.s;
          const Index allowed = d.allowed(row);
          const T dot = static_cast<T>(detail::dot_contiguous(dsr, p, allowed));
          for (Index j = 0; j < allowed; ++j) dsr[j] = p[j] * (dsr[j] - dot) * sc;
          std::fill(dsr + allowed, dsr + keys, T(0));
        }
        if (dq) gemm(ds, false, keys, ki, false, d.e, dq + lo * d.e, rows, keys, d.e, false);
        if (dk) gemm(ds, true, keys, qi + lo * d.e, false, d.e, dk, keys, rows, d.e, add);
      }
    });
  });
  return r;
}

} // namespace gg::kernel
