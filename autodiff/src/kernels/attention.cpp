// Attention's kernels: scaled dot-product attention forward and backward, one item (a batch entry and
// head) at a time in blocks of query rows — the block's scores in a scratch buffer, scaled, masked
// (an additive mask and/or the causal triangle) and softmaxed, max first — the items split across the
// kernel threads with each product on its thread; with the causal flag the products skip the keys
// right of each block's last row. The items' rows are read and written in place, either from separate
// q, k, v tensors or from one packed projection [N, L, 3E] (its heads' q, k and v side by side).
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

/// The sizes of one attention call and where each item's rows are: `batch` items of L queries and
/// S keys of width E, values of width Ev. Separate tensors: items [batch, L, E], [batch, S, E],
/// [batch, S, Ev] and the output [batch, L, Ev], contiguous. Packed (heads > 0): q, k and v of
/// N = batch / heads entries in one [N, L, 3 heads E] tensor (each row: every head's q, then every
/// head's k, then v; L = S, E = Ev), the output [N, L, heads E] with the heads side by side; item
/// i is entry i / heads, head i % heads.
struct AttentionDims {
  Index batch, l, s, e, ev;
  bool causal;
  Index heads = 0;
  /// Row strides of q, k, v (and their gradients) and of the output (and its gradient).
  Index q_stride() const { return heads ? 3 * heads * e : e; }
  Index k_stride() const { return heads ? 3 * heads * e : e; }
  Index v_stride() const { return heads ? 3 * heads * e : ev; }
  Index o_stride() const { return heads ? heads * ev : ev; }
  /// Offsets of item i's first q, k, v and output rows.
  Index q_at(Index i) const { return heads ? (i / heads) * l * q_stride() + (i % heads) * e : i * l * e; }
  Index k_at(Index i) const { return heads ? q_at(i) + heads * e : i * s * e; }
  Index v_at(Index i) const { return heads ? q_at(i) + 2 * heads * e : i * s * ev; }
  Index o_at(Index i) const { return heads ? (i / heads) * l * o_stride() + (i % heads) * ev : i * l * ev; }
  /// Keys a query row may see (top-left aligned causal triangle, as PyTorch), and the keys a block of
  /// rows ending before `hi` needs.
  Index allowed(Index row) const { return causal ? std::min(s, row + 1) : s; }
  Index block_keys(Index hi) const { return causal ? std::min(s, hi) : s; }
  /// Per-thread scratch: a block's scores, and for packed items a block's output (or q gradient) and
  /// an item's k and v gradients, which the products write contiguous.
  Index scratch() const {
    return k_block_rows * s + (heads ? k_block_rows * std::max(e, ev) + s * (e + ev) : 0);
  }
};

AttentionDims dims_of(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  return {q.shape()[0], q.shape()[1], k.shape()[1], q.shape()[2], v.shape()[2], causal};
}

AttentionDims packed_dims_of(const Tensor& qkv, Index heads, bool causal) {
  const Index n = qkv.shape()[0], l = qkv.shape()[1], d = qkv.shape()[2] / (3 * heads);
  return {n * heads, l, l, d, d, causal, heads};
}

/// Copies `rows` rows of `width` from the contiguous src into dst (rows `stride` apart), or adds them.
template <class T> void put_rows(const T* src, T* dst, Index rows, Index width, Index stride, bool add) {
  for (Index r = 0; r < rows; ++r) {
    const T* in = src + r * width;
    T* out = dst + r * stride;
    if (add)
      for (Index j = 0; j < width; ++j) out[j] += in[j];
    else
      std::copy(in, in + width, out);
  }
}

/// Runs item(i, gemm, scratch) for every item: split across the kernel threads when products can run
/// on the calling thread alone (gemm_serial), else one after the other with gemm_any (whose library
/// may thread each product).
template <class T, class Item> void for_each_item(const AttentionDims& d, Item&& item) {
  const auto serial = [](const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n,
                         Index k, Index m,
                         bool acc) { detail::gemm_serial(a, ta, lda, b, tb, ldb, c, n, k, m, acc); };
  const auto any = [](const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n, Index k,
                      Index m, bool acc) { detail::gemm_any(a, ta, lda, b, tb, ldb, c, n, k, m, acc); };
  if (!detail::gemm_serial_available<T>()) {
    std::vector<T> scratch(static_cast<std::size_t>(d.scratch()));
    for (Index i = 0; i < d.batch; ++i) item(i, any, scratch.data());
    return;
  }
  detail::parallel_range(
      d.batch,
      [&](Index lo, Index hi) {
        std::vector<T> scratch(static_cast<std::size_t>(d.scratch()));
        for (Index i = lo; i < hi; ++i) item(i, serial, scratch.data());
      },
      d.l * d.s * (d.e + d.ev));
}

/// The forward over every item: out (its rows as d places them) and weights [batch, L, S].
void attention_items(const AttentionDims& d, const Tensor& qt, const Tensor& kt, const Tensor& vt,
                     double scale, const Tensor& mask, Tensor& weights, Tensor& out) {
  const bool per_item = mask.defined() && mask.rank() == 3; // [batch, L, S], else [L, S]
  detail::dispatch(qt.dtype(), [&](auto tag) {
    using T = decltype(tag);
    constexpr T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    const T sc = static_cast<T>(scale);
    const T* m = mask.defined() ? mask.data<T>() : nullptr;
    const Index lq = d.q_stride(), lk = d.k_stride(), lv = d.v_stride(), lo_ = d.o_stride();
    for_each_item<T>(d, [&](Index i, auto gemm, T* scores) {
      const T* qi = qt.data<T>() + d.q_at(i);
      const T* ki = kt.data<T>() + d.k_at(i);
      const T* vi = vt.data<T>() + d.v_at(i);
      T* pi = weights.data<T>() + i * d.l * d.s;
      T* oi = out.data<T>() + d.o_at(i);
      T* block_out = scores + k_block_rows * d.s; // the packed output's block, then copied in place
      for (Index lo = 0; lo < d.l; lo += k_block_rows) {
        const Index hi = std::min(d.l, lo + k_block_rows), rows = hi - lo, keys = d.block_keys(hi);
        if (keys == 0) { // no keys: an empty softmax, an output of zeros (as the products give)
          for (Index r = lo; r < hi; ++r) std::fill(oi + r * lo_, oi + r * lo_ + d.ev, T(0));
          continue;
        }
        gemm(qi + lo * lq, false, lq, ki, true, lk, scores, rows, d.e, keys, false);
        for (Index r = lo; r < hi; ++r) {
          T* row = scores + (r - lo) * keys;
          T* p = pi + r * d.s;
          const T* add = m ? m + ((per_item ? i * d.l : 0) + r) * d.s : nullptr;
          const Index allowed = d.allowed(r);
          // Scaled and masked, then the maximum, each a vectorised pass (a scalar loop keeping the
          // maximum as it went was 3.5% of the GPT step).
          if (add)
            for (Index j = 0; j < allowed; ++j) row[j] = row[j] * sc + add[j];
          else
            for (Index j = 0; j < allowed; ++j) row[j] *= sc;
          const T mx = allowed > 0 ? detail::vec_max(row, allowed) : -inf;
          if (mx != mx || mx == -inf) { // NaN, or nothing to attend to: undefined, as PyTorch's softmax
            std::fill(p, p + d.s, nan);
            continue;
          }
          // exp(row - mx) stored and summed in one pass
          const T inv = static_cast<T>(1 / detail::vec_exp_sum(row, mx, row, allowed));
          for (Index j = 0; j < allowed; ++j) p[j] = row[j] * inv;
          std::fill(p + allowed, p + d.s, T(0));
        }
        const bool direct = lo_ == d.ev;
        gemm(pi + lo * d.s, false, d.s, vi, false, lv, direct ? oi + lo * d.ev : block_out, rows, keys, d.ev,
             false);
        if (!direct) put_rows(block_out, oi + lo * lo_, rows, d.ev, lo_, false);
      }
    });
  });
}

/// The backward over every item, for the output gradient g (rows as d places the output's): the
/// gradients of q, k and v where dq, dk, dv are defined (each laid out as its input).
void attention_items_backward(const AttentionDims& d, const Tensor& gc, const Tensor& qt, const Tensor& kt,
                              const Tensor& vt, const Tensor& weights, double scale, Tensor* dq_t,
                              Tensor* dk_t, Tensor* dv_t) {
  const bool scores_needed = dq_t || dk_t;
  detail::dispatch(qt.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T sc = static_cast<T>(scale);
    const Index lq = d.q_stride(), lk = d.k_stride(), lv = d.v_stride(), lg = d.o_stride();
    for_each_item<T>(d, [&](Index i, auto gemm, T* ds) {
      const T* qi = qt.data<T>() + d.q_at(i);
      const T* ki = kt.data<T>() + d.k_at(i);
      const T* vi = vt.data<T>() + d.v_at(i);
      const T* pi = weights.data<T>() + i * d.l * d.s;
      const T* gi = gc.data<T>() + d.o_at(i);
      T* dq = dq_t ? dq_t->data<T>() + d.q_at(i) : nullptr;
      T* dk = dk_t ? dk_t->data<T>() + d.k_at(i) : nullptr;
      T* dv = dv_t ? dv_t->data<T>() + d.v_at(i) : nullptr;
      // Packed items: the products write a block's q gradient and the item's k and v gradients
      // contiguous into the scratch, copied in place after.
      const bool direct = !d.heads;
      T* block_dq = ds + k_block_rows * d.s;
      T* dk_c = direct ? dk : block_dq + k_block_rows * std::max(d.e, d.ev);
      T* dv_c = direct ? dv : dk_c + d.s * d.e;
      // Keys no row sees (causal with S > L, or L = 0) get no share: zero. The blocks run last first:
      // the last one reaches the most keys, so it writes the key gradients and the others add to them.
      const Index reached = d.l > 0 ? d.block_keys(d.l) : 0;
      if (dk) std::fill(dk_c + reached * d.e, dk_c + d.s * d.e, T(0));
      if (dv) std::fill(dv_c + reached * d.ev, dv_c + d.s * d.ev, T(0));
      const Index blocks = (d.l + k_block_rows - 1) / k_block_rows;
      for (Index b = blocks - 1; b >= 0; --b) {
        const Index lo = b * k_block_rows, hi = std::min(d.l, lo + k_block_rows), rows = hi - lo,
                    keys = d.block_keys(hi);
        const bool add = b != blocks - 1;
        if (keys == 0) {
          if (dq)
            for (Index r = lo; r < hi; ++r) std::fill(dq + r * lq, dq + r * lq + d.e, T(0));
          continue;
        }
        // v's share: p^T g over the block's rows.
        if (dv) gemm(pi + lo * d.s, true, d.s, gi + lo * lg, false, lg, dv_c, keys, rows, d.ev, add);
        if (!scores_needed) continue;
        // The scores' gradient: p * (g v^T - sum(p * g v^T)) * scale, row by row.
        gemm(gi + lo * lg, false, lg, vi, true, lv, ds, rows, d.ev, keys, false);
        for (Index row = lo; row < hi; ++row) {
          T* dsr = ds + (row - lo) * keys;
          const T* p = pi + row * d.s;
          const Index allowed = d.allowed(row);
          const T dot = static_cast<T>(detail::dot_contiguous(dsr, p, allowed));
          for (Index j = 0; j < allowed; ++j) dsr[j] = p[j] * (dsr[j] - dot) * sc;
          std::fill(dsr + allowed, dsr + keys, T(0));
        }
        if (dq) {
          gemm(ds, false, keys, ki, false, lk, direct ? dq + lo * d.e : block_dq, rows, keys, d.e, false);
          if (!direct) put_rows(block_dq, dq + lo * lq, rows, d.e, lq, false);
        }
        if (dk) gemm(ds, true, keys, qi + lo * lq, false, lq, dk_c, keys, rows, d.e, add);
      }
      if (!direct) {
        if (dk) put_rows(dk_c, dk, d.s, d.e, lk, false);
        if (dv) put_rows(dv_c, dv, d.s, d.ev, lv, false);
      }
    });
  });
}

} // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& mask,
                 bool causal, Tensor& weights) {
  const AttentionDims d = dims_of(q, k, v, causal);
  weights = Tensor::empty(Shape{d.batch, d.l, d.s}, q.dtype());
  Tensor out = Tensor::empty(Shape{d.batch, d.l, d.ev}, q.dtype());
  attention_items(d, q, k, v, scale, mask, weights, out);
  return out;
}

std::array<Tensor, 3> attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& weights, double scale, bool causal,
                                         std::array<bool, 3> needs) {
  const AttentionDims d = dims_of(q, k, v, causal);
  const DType dtype = q.dtype();
  std::array<Tensor, 3> r;
  if (needs[0]) r[0] = Tensor::empty(q.shape(), dtype);
  if (needs[1]) r[1] = Tensor::empty(k.shape(), dtype);
  if (needs[2]) r[2] = Tensor::empty(v.shape(), dtype);
  attention_items_backward(d, g.to(dtype), q, k, v, weights, scale, needs[0] ? &r[0] : nullptr,
                           needs[1] ? &r[1] : nullptr, needs[2] ? &r[2] : nullptr);
  return r;
}

Tensor attention_packed(const Tensor& qkv, Index heads, double scale, bool causal, Tensor& weights) {
  const AttentionDims d = packed_dims_of(qkv, heads, causal);
  weights = Tensor::empty(Shape{d.batch, d.l, d.s}, qkv.dtype());
  Tensor out = Tensor::empty(Shape{qkv.shape()[0], d.l, heads * d.ev}, qkv.dtype());
  attention_items(d, qkv, qkv, qkv, scale, Tensor(), weights, out);
  return out;
}

Tensor attention_packed_backward(const Tensor& g, const Tensor& qkv, const Tensor& weights, Index heads,
                                 double scale, bool causal) {
  const AttentionDims d = packed_dims_of(qkv, heads, causal);
  Tensor r = Tensor::empty(qkv.shape(), qkv.dtype());
  attention_items_backward(d, g.to(qkv.dtype()), qkv, qkv, qkv, weights, scale, &r, &r, &r);
  return r;
}

} // namespace gg::kernel
