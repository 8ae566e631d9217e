// The attention family: scaled_dot_product_attention as torch.nn.functional's, one op — per item, in
// blocks of query rows: products with transpose flags (no transposed copies; with the causal flag,
// none for the keys a block cannot see) and one pass per row of scores for scaling, masking and
// softmax, the weights kept for the backward, the items on the kernel threads (kernels/attention.cpp);
// with dropout, the composition of ops. Its public function and its rule (table row, the
// differentiable VJP, the fast tensor backward).
#include <autodiff/ops.hpp>

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "../kernels/kernels.hpp"
#include "family.hpp"

namespace gg {

using detail::InputGrads;
using detail::need;
using detail::Node;
using detail::OpRule;
using detail::ref;
using detail::value_of;

namespace {
constexpr std::string_view k_op = "scaled_dot_product_attention";

/// The weights softmax(q k^T · scale + mask) written with the ops (mask: an additive constant
/// broadcasting against the scores, or undefined; causal: the triangle above the diagonal forbidden).
Var attention_weights(const Var& q, const Var& k, const Tensor& mask, bool causal, double scale) {
  Var s = matmul(q, transpose(k, -2, -1)) * scale;
  if (causal) {
    const Shape ss = s.shape();
    const std::int64_t l = ss[ss.rank() - 2], n = ss[ss.rank() - 1];
    s = masked_fill(s, kernel::triu(Tensor::ones({l, n}, s.dtype()), 1),
                    -std::numeric_limits<double>::infinity());
  }
  if (mask.defined()) s = s + Var::constant(mask);
  return softmax(s, -1);
}

/// The shapes of an attention call: leading dimensions (equal for q, k, v), L, S, E, Ev.
struct Dims {
  Shape lead;
  std::int64_t batch = 1, l = 0, s = 0, e = 0, ev = 0;
};
Dims check_shapes(const Tensor& q, const Tensor& k, const Tensor& v) {
  const auto fail = [&](std::string_view why) {
    return ShapeError(
        fmt::format("{}: query {}, key {} and value {} {} (expected [..., L, E], [..., S, E] and "
                    "[..., S, Ev] with the same leading dimensions)",
                    k_op, q.shape().str(), k.shape().str(), v.shape().str(), why));
  };
  if (q.rank() < 2 || k.rank() != q.rank() || v.rank() != q.rank())
    throw fail("have different or too few dimensions");
  Dims d;
  for (int i = 0; i + 2 < q.rank(); ++i) {
    if (k.shape()[i] != q.shape()[i] || v.shape()[i] != q.shape()[i])
      throw fail("differ in a leading dimension");
    d.lead.push_back(q.shape()[i]);
    d.batch *= q.shape()[i];
  }
  const int r = q.rank();
  d.l = q.shape()[r - 2];
  d.e = q.shape()[r - 1];
  d.s = k.shape()[r - 2];
  d.ev = v.shape()[r - 1];
  if (k.shape()[r - 1] != d.e) throw fail("do not agree in E");
  if (v.shape()[r - 2] != d.s) throw fail("do not agree in S");
  if (q.dtype() != k.dtype() || q.dtype() != v.dtype())
    throw ValueError(fmt::format("{}: query, key and value must have one dtype, got {}, {} and {}", k_op,
                                 dtype_name(q.dtype()), dtype_name(k.dtype()), dtype_name(v.dtype())));
  return d;
}

/// The mask as an additive tensor of dtype: [L, S] when it broadcasts from there, else [..., L, S].
Tensor additive_mask(const AttentionMask& mask, const Dims& d, DType dtype, const Tensor& q,
                     const Tensor& k) {
  const Tensor& m = mask.values;
  Shape full = d.lead;
  full.push_back(d.l);
  full.push_back(d.s);
  Tensor add;
  if (mask.kind == AttentionMask::Kind::additive) {
    if (m.dtype() != dtype)
      throw ValueError(
          fmt::format("{}: an additive attn_mask must have the query's dtype {}, got {} (shape {})", k_op,
                      dtype_name(dtype), dtype_name(m.dtype()), m.shape().str()));
    add = m;
  } else {
    add = Tensor::empty(m.shape(), dtype);
    for (std::int64_t i = 0; i < m.numel(); ++i) {
      const double a = m.flat(i);
      if (a != 0 && a != 1)
        throw ValueError(
            fmt::format("{}: a boolean attn_mask holds 1 (may attend) and 0 only, found {} at flat index "
                        "{} (mask shape {})",
                        k_op, a, i, m.shape().str()));
      add.set_flat(i, a != 0 ? 0.0 : -std::numeric_limits<double>::infinity());
    }
  }
  bool fits = add.rank() <= full.rank();
  for (int i = 0; fits && i < add.rank(); ++i) {
    const std::int64_t m_i = add.shape()[add.rank() - 1 - i], f_i = full[full.rank() - 1 - i];
    fits = m_i == f_i || m_i == 1;
  }
  // [L, S] with only ones before: kept as one [L, S] for every item; else spread over the scores.
  bool two_d = add.rank() >= 2 && add.shape()[add.rank() - 2] == d.l && add.shape()[add.rank() - 1] == d.s;
  for (int i = 0; two_d && i + 2 < add.rank(); ++i) two_d = add.shape()[i] == 1;
  if (!fits)
    throw ShapeError(
        fmt::format("{}: attn_mask of shape {} does not broadcast to the scores [..., L, S] = {} "
                    "(query {}, key {})",
                    k_op, m.shape().str(), full.str(), q.shape().str(), k.shape().str()));
  if (two_d) return add.reshape(Shape{d.l, d.s});
  return kernel::broadcast_to(add, full, k_op);
}

/// [batch, rows, cols] view of a tensor with leading dimensions.
Tensor as_batch(const Tensor& t, std::int64_t batch) {
  return t.reshape(Shape{batch, t.shape()[t.rank() - 2], t.shape()[t.rank() - 1]});
}
} // namespace

Var scaled_dot_product_attention(const Var& query, const Var& key, const Var& value,
                                 const AttentionMask& attn_mask, double dropout_p, bool is_causal,
                                 std::optional<double> scale, Rng* generator) {
  Node* qn = need(query, k_op);
  Node* kn = need(key, k_op);
  Node* vn = need(value, k_op);
  const Tensor q = value_of(qn), k = value_of(kn), v = value_of(vn);
  const Dims d = check_shapes(q, k, v);
  if (is_causal && attn_mask.kind != AttentionMask::Kind::none)
    throw ValueError(
        fmt::format("{}: an explicit attn_mask cannot be given with is_causal (as PyTorch)", k_op));
  if (!(dropout_p >= 0 && dropout_p <= 1))
    throw ValueError(fmt::format("{}: dropout_p must be in [0, 1], got {}", k_op, dropout_p));
  if (dropout_p > 0 && !generator)
    throw ValueError(
        fmt::format("{}: dropout_p {} needs a generator to draw the dropout mask from", k_op, dropout_p));
  const double sc = scale ? *scale : 1 / std::sqrt(static_cast<double>(d.e));
  const Tensor mask =
      attn_mask.kind == AttentionMask::Kind::none ? Tensor() : additive_mask(attn_mask, d, q.dtype(), q, k);
  if (dropout_p > 0) // the weights are dropped out: the composition, as PyTorch's math path
    return matmul(dropout(attention_weights(query, key, mask, is_causal, sc), dropout_p, true, *generator),
                  value);

  Tensor weights;
  Shape out_shape = d.lead;
  out_shape.push_back(d.l);
  out_shape.push_back(d.ev);
  Tensor out = kernel::attention(as_batch(q, d.batch), as_batch(k, d.batch), as_batch(v, d.batch), sc,
                                 mask.defined() && mask.rank() > 2 ? as_batch(mask, d.batch) : mask,
                                 is_causal, weights)
                   .reshape(out_shape);
  std::vector<Var> inputs{query, key, value};
  if (mask.defined()) inputs.push_back(Var::constant(mask)); // for the differentiable VJP
  auto e = detail::emit_variadic(Op::scaled_dot_product_attention, inputs, std::move(out));
  if (e.n) {
    e.n->ext->aux = std::move(weights);
    e.n->ext->reals = {sc};
    e.n->ext->ints = {is_causal ? 1 : 0};
  }
  return e.var;
}
template <> const OpRule& detail::rule<Op::scaled_dot_product_attention>() {
  static constexpr OpRule r{
      {"scaled_dot_product_attention", "", -1, "q: (P*(g v^T - sum(P*(g v^T))))*scale @ k; k: the same^T @ q",
       "v: P^T @ g", "scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal, scale)",
       "softmax(q k^T * scale + mask) @ v, P the softmax, in one op"},
      [](Node* n, const Var& g) -> std::vector<Var> { // the weights recomputed with the ops
        const Var q = ref(n->input(0)), k = ref(n->input(1)), v = ref(n->input(2));
        const double sc = n->ext->reals[0];
        const Tensor mask = n->num_inputs() > 3 ? value_of(n->input(3)) : Tensor();
        const Var p = attention_weights(q, k, mask, n->ext->ints[0] != 0, sc);
        const Var dp = matmul(g, transpose(v, -2, -1));
        const Var ds = p * (dp - sum(dp * p, -1, true)) * sc;
        std::vector<Var> r{matmul(ds, k), matmul(transpose(ds, -2, -1), q), matmul(transpose(p, -2, -1), g)};
        if (n->num_inputs() > 3) r.emplace_back();
        return r;
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const Tensor q = value_of(n->input(0)), k = value_of(n->input(1)), v = value_of(n->input(2));
        const Tensor& p = n->ext->aux;
        const std::int64_t batch = p.shape()[0];
        const std::array<bool, 3> needs{n->input(0)->requires_grad(), n->input(1)->requires_grad(),
                                        n->input(2)->requires_grad()};
        std::array<Tensor, 3> r =
            kernel::attention_backward(as_batch(g, batch), as_batch(q, batch), as_batch(k, batch),
                                       as_batch(v, batch), p, n->ext->reals[0], n->ext->ints[0] != 0, needs);
        for (int i = 0; i < 3; ++i)
          if (needs[static_cast<std::size_t>(i)])
            out[i] = std::move(r[static_cast<std::size_t>(i)]).reshape(value_of(n->input(i)).shape());
        return true;
      }};
  return r;
}

} // namespace gg
