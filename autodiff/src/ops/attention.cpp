// The attention family: scaled_dot_product_attention as torch.nn.functional's, one op — per item, in
// blocks of query rows: products with transpose flags (no transposed copies; with the causal flag,
// none for the keys a block cannot see) and one pass per row of scores for scaling, masking and
// softmax, the weights kept for the backward, the items on the kernel threads (kernels/attention.cpp);
// with dropout, the composition of ops; and packed_self_attention, the same over the heads of a packed
// [N, L, 3E] projection read in place. Their public functions and rules (table rows, the
// differentiable VJPs, the fast tensor backwards).
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

/// The gradients {q's, k's, v's} of softmax(q k^T · scale + mask) v for its output gradient g, written
/// with the ops (the weights recomputed): the differentiable rule of both attention ops.
std::array<Var, 3> attention_vjp(const Var& q, const Var& k, const Var& v, const Tensor& mask, bool causal,
                                 double scale, const Var& g) {
  const Var p = attention_weights(q, k, mask, causal, scale);
  const Var dp = matmul(g, transpose(v, -2, -1));
  const Var ds = p * (dp - sum(dp * p, -1, true)) * scale;
  return {matmul(ds, k), matmul(transpose(ds, -2, -1), q), matmul(transpose(p, -2, -1), g)};
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
        const auto [dq, dk, dv] = attention_vjp(q, k, v, mask, n->ext->ints[0] != 0, sc, g);
        std::vector<Var> r{dq, dk, dv};
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

// packed_self_attention: the heads of a packed [N, L, 3E] projection read in place (kernels/attention.cpp).
namespace {
constexpr std::string_view k_packed = "packed_self_attention";

/// A [N, L, heads * d] tensor's heads as [N, heads, L, d] (part j of three of qkv's last dimension when
/// `part` is set), and back.
Var heads_apart(const Var& x, std::int64_t heads, std::int64_t part = -1) {
  const Shape s = x.shape();
  const std::int64_t e = part < 0 ? s[2] : s[2] / 3;
  const Var xs = part < 0 ? x : slice(x, 2, part * e, (part + 1) * e);
  return transpose(reshape(xs, {s[0], s[1], heads, e / heads}), 1, 2);
}
Var heads_together(const Var& x) {
  const Shape s = x.shape();
  return reshape(transpose(x, 1, 2), {s[0], s[2], s[1] * s[3]});
}
} // namespace

Var packed_self_attention(const Var& qkv, std::int64_t num_heads, bool is_causal,
                          std::optional<double> scale) {
  Node* a = need(qkv, k_packed);
  const Tensor x = value_of(a);
  const Shape s = x.shape();
  if (s.rank() != 3 || num_heads < 1 || s[2] % (3 * num_heads) != 0)
    throw ShapeError(
        fmt::format("{}: qkv of shape {} with {} heads: expected [N, L, 3E] with E a multiple of "
                    "num_heads >= 1",
                    k_packed, s.str(), num_heads));
  const std::int64_t d = s[2] / (3 * num_heads);
  const double sc = scale ? *scale : 1 / std::sqrt(static_cast<double>(d));
  Tensor weights;
  Tensor out = kernel::attention_packed(x, num_heads, sc, is_causal, weights);
  auto e = detail::emit(Op::packed_self_attention, a, nullptr, std::move(out));
  if (e.n) {
    e.n->ext->aux = std::move(weights);
    e.n->ext->reals = {sc};
    e.n->ext->ints = {is_causal ? 1 : 0, num_heads};
  }
  return e.var;
}
template <> const OpRule& detail::rule<Op::packed_self_attention>() {
  static constexpr OpRule r{
      {"packed_self_attention", "", 1,
       "per head as scaled_dot_product_attention's (q, k, v: a's three parts), merged into one [N, L, 3E]",
       "", "packed_self_attention(a, num_heads, is_causal, scale)",
       "per head, softmax(q k^T * scale) @ v with q, k, v a's three parts [N, L, E], heads side by side"},
      [](Node* n, const Var& g) -> std::vector<Var> { // the heads split and merged with the ops
        const Var qkv = ref(n->first);
        const std::int64_t heads = n->ext->ints[1];
        const auto [dq, dk, dv] =
            attention_vjp(heads_apart(qkv, heads, 0), heads_apart(qkv, heads, 1), heads_apart(qkv, heads, 2),
                          Tensor(), n->ext->ints[0] != 0, n->ext->reals[0], heads_apart(g, heads));
        return {concat({heads_together(dq), heads_together(dk), heads_together(dv)}, 2)};
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = kernel::attention_packed_backward(g, value_of(n->first), n->ext->aux, n->ext->ints[1],
                                                   n->ext->reals[0], n->ext->ints[0] != 0);
        return true;
      }};
  return r;
}

} // namespace gg
