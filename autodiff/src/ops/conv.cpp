// The convolution and pooling family: conv2d and max_pool2d as single ops (as torch.nn.functional's),
// and im2col (unfold) with its adjoint col2im (fold). Each op: its public function and its rule
// (table row, the differentiable VJP, the fast tensor backward).
#include <autodiff/ops.hpp>

#include <array>
#include <limits>

#include "../kernels/kernels.hpp"
#include "family.hpp"

namespace gg {

using detail::InputGrads;
using detail::Node;
using detail::OpRule;
using detail::ref;
using detail::value_of;

// conv2d(a, w, bias, stride, padding): x [N, C, H, W], w [out, C, kh, kw], bias [out].
Var conv2d(const Var& x, const Var& weight, const Var& bias, std::int64_t stride, std::int64_t padding) {
  Node* a = detail::need(x, Op::conv2d);
  Node* w = detail::need(weight, Op::conv2d);
  Node* b = bias.defined() ? bias.node() : nullptr;
  Tensor value = kernel::conv2d(value_of(a), value_of(w), b ? value_of(b) : Tensor(), stride, padding);
  const std::array<Node*, 3> inputs{a, w, b};
  auto e = b ? detail::emit_variadic(Op::conv2d, inputs, std::move(value))
             : detail::emit(Op::conv2d, a, w, std::move(value));
  if (e.n) e.n->ext->ints = {stride, padding};
  return e.var;
}
template <> const OpRule& detail::rule<Op::conv2d>() {
  static constexpr OpRule r{
      {"conv2d", "", -1, "fold(w^T @ g)", "g @ unfold(a)^T (bias: sum of g)",
       "conv2d(a, w, bias, stride, padding)",
       "2-d convolution in one op (a Conv2d layer): im2col, matrix product, bias"},
      [](Node* n, const Var& g) -> std::vector<Var> { // as unfold, matmul, fold
        const Var a = ref(n->first), w = ref(n->in1());
        const Shape sa = a.shape(), sw = w.shape(), sg = g.shape();
        const std::int64_t kh = sw[2], kw = sw[3], stride = n->ext->ints[0], padding = n->ext->ints[1];
        const std::int64_t outc = sw[0], ckk = sw[1] * kh * kw;
        const Var g3 = reshape(g, {sg[0], outc, sg[2] * sg[3]}); // [N, out, L]
        std::vector<Var> r(static_cast<std::size_t>(n->num_inputs()));
        if (a.requires_grad()) // [CKK, out] @ [N, out, L] -> [N, CKK, L], folded back into images
          r[0] = fold(matmul(transpose(reshape(w, {outc, ckk})), g3), sa, kh, kw, stride, padding);
        if (w.requires_grad()) // sum over images of [N, out, L] @ [N, L, CKK]
          r[1] = reshape(sum(matmul(g3, transpose(unfold(a, kh, kw, stride, padding))), 0), sw.to_vector());
        if (n->num_inputs() == 3 && n->input(2)->requires_grad()) r[2] = sum(sum(g3, 2), 0);
        return r;
      },
      [](Node* n, const Tensor& g, InputGrads& out) { // one GEMM per gradient and chunk of images
        const std::array<bool, 3> needs{n->first->requires_grad(), n->in1()->requires_grad(),
                                        n->num_inputs() == 3 && n->input(2)->requires_grad()};
        out = kernel::conv2d_backward(g, value_of(n->first), value_of(n->in1()), n->ext->ints[0],
                                      n->ext->ints[1], needs);
        return true;
      }};
  return r;
}

// max_pool2d(a, k, stride, padding): the largest of each k x k window; ties share the gradient.
Var max_pool2d(const Var& a, std::int64_t k, std::int64_t stride, std::int64_t padding) {
  Node* x = detail::need(a, Op::max_pool2d);
  auto e = detail::emit(Op::max_pool2d, x, nullptr, kernel::max_pool2d(value_of(x), k, stride, padding));
  if (e.n) e.n->ext->ints = {k, stride, padding};
  return e.var;
}
template <> const OpRule& detail::rule<Op::max_pool2d>() {
  static constexpr OpRule r{
      {"max_pool2d", "", 1, "(a==out ? 1/ties : 0) per window", "", "max_pool2d(a, k, stride, padding)",
       "largest of each k x k window of every channel (a MaxPool2d layer); ties share the gradient"},
      [](Node* n, const Var& g) -> std::vector<Var> { // as unfold (padding -inf), max of each column, fold
        const Shape sa = value_of(n->first).shape(), so = n->ext->value.shape();
        const std::int64_t k = n->ext->ints[0], stride = n->ext->ints[1], padding = n->ext->ints[2];
        const std::int64_t planes = sa[0] * sa[1], l = so[2] * so[3];
        const Shape sp{planes, 1, sa[2], sa[3]};
        const Tensor cols = kernel::unfold(value_of(n->first).reshape(sp), k, k, stride, padding,
                                           -std::numeric_limits<double>::infinity());
        const Var mask = detail::max_mask(cols, n->ext->value.reshape(Shape{planes, 1, l}), 1);
        return {reshape(fold(reshape(g, {planes, 1, l}) * mask, sp, k, k, stride, padding), sa.to_vector())};
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const std::vector<std::int64_t>& ints = n->ext->ints;
        out[0] = kernel::max_pool2d_backward(value_of(n->first), n->ext->value, g, ints[0], ints[1], ints[2]);
        return true;
      }};
  return r;
}

// unfold(a, kh, kw, stride, padding): im2col, [N, C, H, W] -> [N, C*kh*kw, L].
Var unfold(const Var& a, std::int64_t kh, std::int64_t kw, std::int64_t stride, std::int64_t padding,
           double pad_value) {
  Node* x = detail::need(a, Op::unfold);
  auto e =
      detail::emit(Op::unfold, x, nullptr, kernel::unfold(value_of(x), kh, kw, stride, padding, pad_value));
  if (e.n) e.n->ext->ints = {kh, kw, stride, padding};
  return e.var;
}
template <> const OpRule& detail::rule<Op::unfold>() {
  static constexpr OpRule r{{"unfold", "", 1, "fold(g)", "", "unfold(a, kh, kw, stride, padding)",
                             "im2col: image windows as columns (Conv2d, pooling)"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              const std::vector<std::int64_t>& i = n->ext->ints;
                              return {fold(g, value_of(n->first).shape(), i[0], i[1], i[2], i[3])};
                            },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              const std::vector<std::int64_t>& i = n->ext->ints;
                              out[0] = kernel::fold(g, value_of(n->first).shape(), i[0], i[1], i[2], i[3]);
                              return true;
                            }};
  return r;
}

// fold(a, shape, kh, kw, stride, padding): col2im, the adjoint of unfold.
Var fold(const Var& a, const Shape& image_shape, std::int64_t kh, std::int64_t kw, std::int64_t stride,
         std::int64_t padding) {
  Node* x = detail::need(a, Op::fold);
  auto e =
      detail::emit(Op::fold, x, nullptr, kernel::fold(value_of(x), image_shape, kh, kw, stride, padding));
  if (e.n) e.n->ext->ints = {kh, kw, stride, padding};
  return e.var;
}
template <> const OpRule& detail::rule<Op::fold>() {
  static constexpr OpRule r{{"fold", "", 1, "unfold(g)", "", "fold(g, shape, kh, kw, stride, padding)",
                             "col2im: columns summed back into an image"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              const std::vector<std::int64_t>& i = n->ext->ints;
                              return {unfold(g, i[0], i[1], i[2], i[3])};
                            },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              const std::vector<std::int64_t>& i = n->ext->ints;
                              out[0] = kernel::unfold(g, i[0], i[1], i[2], i[3]);
                              return true;
                            }};
  return r;
}

} // namespace gg
