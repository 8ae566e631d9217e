// The normalisation family: layer_norm over the trailing dimensions, one op with a fused kernel
// forward and backward (the statistics kept by the node); its differentiable VJP recomputes them with
// the ops, so gradients of gradients work. Its public function and its rule (table row, the
// differentiable VJP, the fast tensor backward).
#include <autodiff/ops.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

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
/// What a layer_norm node keeps: how many trailing dimensions it normalises, which of weight and
/// bias it has (inputs 1 and 2, or 1 for a bias without a weight), and eps.
struct LayerNormAttrs {
  int dims;
  bool weight, bias;
  double eps;
  int bias_input() const { return weight ? 2 : 1; }
};
LayerNormAttrs attrs_of(const Node* n) {
  const std::vector<std::int64_t>& i = n->ext->ints;
  return {static_cast<int>(i[0]), i[1] != 0, i[2] != 0, n->ext->reals[0]};
}
/// The number of normalised elements per row: the product of x's last `dims` dimensions.
std::int64_t row_size(const Shape& s, int dims) {
  std::int64_t m = 1;
  for (int d = s.rank() - dims; d < s.rank(); ++d) m *= s[d];
  return m;
}
/// The last `dims` dimensions of s: the shape of weight and bias.
Shape trailing(const Shape& s, int dims) {
  Shape t;
  for (int d = s.rank() - dims; d < s.rank(); ++d) t.push_back(s[d]);
  return t;
}
} // namespace

// layer_norm(a, normalized_shape, w, bias, eps) = (a - mean) / sqrt(var + eps) * w + bias per row.
Var layer_norm(const Var& x, const std::vector<std::int64_t>& normalized_shape, const Var& weight,
               const Var& bias, double eps) {
  Node* a = need(x, Op::layer_norm);
  const Tensor v = value_of(a);
  const Shape want(normalized_shape);
  const int k = want.rank(), rank = v.rank();
  bool fits = k >= 1 && rank >= k;
  for (int i = 0; fits && i < k; ++i) fits = v.shape()[rank - k + i] == want[i];
  if (!fits)
    throw ShapeError(
        fmt::format("layer_norm: normalized_shape {} must be the input's last dimensions, got input "
                    "shape {}",
                    want.str(), v.shape().str()));
  if (!(eps >= 0)) throw ValueError(fmt::format("layer_norm: eps must be >= 0, got {}", eps));
  std::vector<Node*> inputs{a};
  Tensor wv, bv;
  for (const auto& [p, what, t] : {std::tuple{&weight, "weight", &wv}, std::tuple{&bias, "bias", &bv}}) {
    if (!p->defined()) continue;
    inputs.push_back(p->node());
    *t = value_of(p->node());
    if (!(t->shape() == want))
      throw ShapeError(
          fmt::format("layer_norm: {} of shape {} does not match normalized_shape {} (input shape {})", what,
                      t->shape().str(), want.str(), v.shape().str()));
    if (t->dtype() != v.dtype())
      throw ValueError(fmt::format("layer_norm: {} is {} but the input is {}", what, dtype_name(t->dtype()),
                                   dtype_name(v.dtype())));
  }
  Tensor stats;
  Tensor value = kernel::layer_norm(v, want.numel(), wv, bv, eps, stats);
  auto e = inputs.size() == 1 ? detail::emit(Op::layer_norm, a, nullptr, std::move(value))
                              : detail::emit_variadic(Op::layer_norm, inputs, std::move(value));
  if (e.n) {
    e.n->ext->ints = {k, weight.defined() ? 1 : 0, bias.defined() ? 1 : 0};
    e.n->ext->reals = {eps};
    e.n->ext->aux = std::move(stats);
  }
  return e.var;
}
template <> const OpRule& detail::rule<Op::layer_norm>() {
  static constexpr OpRule r{
      {"layer_norm", "", -1, "rstd*(gw - mean(gw) - xhat*mean(gw*xhat)), gw = g*w, xhat = (a - mean)*rstd",
       "w: sum of g*xhat over rows; bias: sum of g", "layer_norm(a, shape, w, bias, eps)",
       "(a - mean)*rstd*w + bias over the trailing dimensions, rstd = 1/sqrt(var + eps), in one op"},
      [](Node* n, const Var& g) -> std::vector<Var> { // the statistics recomputed with the ops
        const LayerNormAttrs at = attrs_of(n);
        const Var x = ref(n->first);
        const Shape s = x.shape();
        const std::int64_t m = row_size(s, at.dims), rows = s.numel() / m;
        const Var x2 = reshape(x, {rows, m});
        const Var xc = x2 - mean(x2, -1, true);
        const Var rstd = pow(mean(xc * xc, -1, true) + at.eps, -0.5);
        const Var xhat = xc * rstd;
        const Var g2 = reshape(g, {rows, m});
        const Var gw = at.weight ? g2 * reshape(ref(n->input(1)), {m}) : g2;
        std::vector<Var> r{
            reshape(rstd * (gw - mean(gw, -1, true) - xhat * mean(gw * xhat, -1, true)), s.to_vector())};
        const std::vector<std::int64_t> param = trailing(s, at.dims).to_vector();
        if (at.weight) r.push_back(reshape(sum(g2 * xhat, 0), param));
        if (at.bias) r.push_back(reshape(sum(g2, 0), param));
        return r;
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const LayerNormAttrs at = attrs_of(n);
        const Tensor x = value_of(n->first);
        const Shape s = x.shape();
        const std::int64_t m = row_size(s, at.dims);
        const std::array<bool, 3> needs{n->first->requires_grad(), at.weight && n->input(1)->requires_grad(),
                                        at.bias && n->input(at.bias_input())->requires_grad()};
        std::array<Tensor, 3> r = kernel::layer_norm_backward(
            g.to(x.dtype()), x, at.weight ? value_of(n->input(1)) : Tensor(), n->ext->aux, m, needs);
        const Shape param = trailing(s, at.dims);
        out[0] = std::move(r[0]);
        if (needs[1]) out[1] = r[1].reshape(param);
        if (needs[2]) out[static_cast<std::size_t>(at.bias_input())] = r[2].reshape(param);
        return true;
      }};
  return r;
}

} // namespace gg
