// The convolution and pooling family: conv2d and max_pool2d as single ops (as torch.nn.functional's,
// with its full arguments: per-axis stride and padding, dilation, groups, ceil_mode, unbatched 3-d
// inputs), im2col (unfold) with its adjoint col2im (fold), and conv1d and avg_pool2d built on them.
// Each op: its public function and its rule (table row, the differentiable VJP, the fast tensor
// backward).
#include <autodiff/ops.hpp>

#include <algorithm>
#include <array>
#include <limits>

#include <fmt/format.h>

#include "../kernels/kernels.hpp"
#include "../kernels/windows.hpp"
#include "family.hpp"

namespace gg {

using detail::InputGrads;
using detail::Node;
using detail::OpRule;
using detail::ref;
using detail::value_of;

namespace {
/// Windows stored in a node's attributes from position `at`: kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode.
kernel::Windows windows_at(const Node* n, std::size_t at = 0) {
  const std::vector<std::int64_t>& i = n->ext->ints;
  return {i[at], i[at + 1], i[at + 2], i[at + 3], i[at + 4], i[at + 5], i[at + 6], i[at + 7], i[at + 8] != 0};
}
std::vector<std::int64_t> ints_of(const kernel::Windows& w) {
  return {w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, w.ceil_mode ? 1 : 0};
}

/// f on x as a batch of one when x is one unbatched image [C, H, W] (as PyTorch accepts), the result's
/// batch dimension removed again; f on x itself otherwise.
template <class F> Var unbatched(const Var& x, F&& f) {
  const Shape s = x.shape();
  if (s.rank() != 3) return f(x);
  const Var y = f(reshape(x, {1, s[0], s[1], s[2]}));
  const Shape sy = y.shape();
  return reshape(y, {sy[1], sy[2], sy[3]});
}

/// Image batches [N, C, H, W] (or one image [C, H, W]) only, for op.
void require_images(const Shape& s, std::string_view op) {
  if (s.rank() != 3 && s.rank() != 4)
    throw ShapeError(
        fmt::format("{}: expected images [N, C, H, W] or one image [C, H, W], got shape {}", op, s.str()));
}

/// Pooling's rule, as PyTorch's: padding at most half the kernel along each axis.
void require_half_padding(Size2 kernel, Size2 padding, std::string_view op) {
  if (padding.h < 0 || padding.w < 0 || 2 * padding.h > kernel.h || 2 * padding.w > kernel.w)
    throw ValueError(
        fmt::format("{}: padding ({}, {}) must be at most half the kernel ({}, {}), as PyTorch's", op,
                    padding.h, padding.w, kernel.h, kernel.w));
}
} // namespace

// conv2d(a, w, bias, stride, padding, dilation, groups): x [N, C, H, W], w [out, C/groups, kh, kw], bias
// [out].
Var conv2d(const Var& x, const Var& weight, const Var& bias, Size2 stride, Size2 padding, Size2 dilation,
           std::int64_t groups) {
  detail::need(x, Op::conv2d);
  require_images(x.shape(), "conv2d");
  return unbatched(x, [&](const Var& xb) {
    Node* a = detail::need(xb, Op::conv2d);
    Node* w = detail::need(weight, Op::conv2d);
    Node* b = bias.defined() ? bias.node() : nullptr;
    const kernel::Windows win{0, 0, stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w};
    Tensor value = kernel::conv2d(value_of(a), value_of(w), b ? value_of(b) : Tensor(), win, groups);
    const std::array<Node*, 3> inputs{a, w, b};
    auto e = b ? detail::emit_variadic(Op::conv2d, inputs, std::move(value))
               : detail::emit(Op::conv2d, a, w, std::move(value));
    if (e.n) e.n->ext->ints = {stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w, groups};
    return e.var;
  });
}
namespace {
/// A conv2d node's windows (the weight's kernel) and groups.
kernel::Windows conv_windows(const Node* n) {
  const std::vector<std::int64_t>& i = n->ext->ints;
  const Shape sw = value_of(n->in1()).shape();
  return {sw[2], sw[3], i[0], i[1], i[2], i[3], i[4], i[5]};
}
} // namespace
template <> const OpRule& detail::rule<Op::conv2d>() {
  static constexpr OpRule r{
      {"conv2d", "", -1, "fold(w^T @ g)", "g @ unfold(a)^T (bias: sum of g)",
       "conv2d(a, w, bias, stride, padding, dilation, groups)",
       "2-d convolution in one op (a Conv2d layer): im2col, a matrix product per group, bias"},
      [](Node* n, const Var& g) -> std::vector<Var> { // as unfold, matmul per group, fold
        const Var a = ref(n->first), w = ref(n->in1());
        const Shape sa = a.shape(), sw = w.shape(), sg = g.shape();
        const kernel::Windows win = conv_windows(n);
        const std::int64_t groups = n->ext->ints[6], outc = sw[0], outg = outc / groups,
                           cgkk = sw[1] * win.kh * win.kw, l = sg[2] * sg[3];
        const Var g4 = reshape(g, {sg[0], groups, outg, l}); // [N, G, outg, L]
        const Var wg = reshape(w, {groups, outg, cgkk});     // [G, outg, Cg*kh*kw]
        std::vector<Var> r(static_cast<std::size_t>(n->num_inputs()));
        if (a.requires_grad()) // [G, CgKK, outg] @ [N, G, outg, L] -> [N, G, CgKK, L], folded back
          r[0] = fold(reshape(matmul(transpose(wg), g4), {sg[0], groups * cgkk, l}), sa, win);
        if (w.requires_grad()) { // sum over images of [N, G, outg, L] @ [N, G, L, CgKK]
          const Var cols = reshape(unfold(a, win), {sa[0], groups, cgkk, l});
          r[1] = reshape(sum(matmul(g4, transpose(cols)), 0), sw.to_vector());
        }
        if (n->num_inputs() == 3 && n->input(2)->requires_grad())
          r[2] = sum(sum(reshape(g, {sg[0], outc, l}), 2), 0);
        return r;
      },
      [](Node* n, const Tensor& g, InputGrads& out) { // one GEMM per gradient, chunk of images and group
        const std::array<bool, 3> needs{n->first->requires_grad(), n->in1()->requires_grad(),
                                        n->num_inputs() == 3 && n->input(2)->requires_grad()};
        std::array<Tensor, 3> r = kernel::conv2d_backward(g, value_of(n->first), value_of(n->in1()),
                                                          conv_windows(n), n->ext->ints[6], needs);
        std::move(r.begin(), r.end(), out.begin());
        return true;
      }};
  return r;
}

// conv1d: conv2d over images one row high.
Var conv1d(const Var& x, const Var& weight, const Var& bias, std::int64_t stride, std::int64_t padding,
           std::int64_t dilation, std::int64_t groups) {
  const Shape s = x.shape(), sw = weight.shape();
  if ((s.rank() != 2 && s.rank() != 3) || sw.rank() != 3)
    throw ShapeError(
        fmt::format("conv1d: expected an input [N, C, L] or [C, L] and a weight [out, C / groups, "
                    "k], got shapes {} and {}",
                    s.str(), sw.str()));
  // conv2d's checks in conv1d's words: the caller sees the op it called and its own shapes.
  const std::int64_t c = s[s.rank() - 2], length = s[s.rank() - 1];
  kernel::detail::conv2d_geometry({"conv1d", 1, s, sw}, {s.rank() == 3 ? s[0] : 1, c, 1, length},
                                  {sw[0], sw[1], 1, sw[2]}, bias.defined() ? bias.value() : Tensor(),
                                  {1, sw[2], 1, stride, 0, padding, 1, dilation}, groups);
  std::vector<std::int64_t> s4 = s.to_vector();
  s4.insert(s4.end() - 1, 1);
  const Var y = conv2d(reshape(x, s4), reshape(weight, {sw[0], sw[1], 1, sw[2]}), bias, {1, stride},
                       {0, padding}, {1, dilation}, groups);
  std::vector<std::int64_t> sy = y.shape().to_vector();
  sy.erase(sy.end() - 2);
  return reshape(y, sy);
}

// max_pool2d(a, kernel, stride, padding, dilation, ceil_mode): the largest of each window; its gradient
// goes whole to one element, PyTorch's index (the first maximum in the window, or the last NaN).
Var max_pool2d(const Var& a, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation, bool ceil_mode) {
  detail::need(a, Op::max_pool2d);
  require_images(a.shape(), "max_pool2d");
  require_half_padding(kernel, padding, "max_pool2d");
  if (stride.h == 0 && stride.w == 0) stride = kernel;
  const kernel::Windows win{kernel.h,  kernel.w,   stride.h,   stride.w, padding.h,
                            padding.w, dilation.h, dilation.w, ceil_mode};
  return unbatched(a, [&](const Var& xb) {
    Node* x = detail::need(xb, Op::max_pool2d);
    auto e = detail::emit(Op::max_pool2d, x, nullptr, kernel::max_pool2d(value_of(x), win));
    if (e.n) e.n->ext->ints = ints_of(win);
    return e.var;
  });
}
template <> const OpRule& detail::rule<Op::max_pool2d>() {
  static constexpr OpRule r{
      {"max_pool2d", "", 1, "(a at the window's index ? 1 : 0)", "",
       "max_pool2d(a, kernel, stride, padding, dilation, ceil_mode)",
       "largest of each window of every channel (a MaxPool2d layer); the gradient to one element, "
       "PyTorch's index: the first maximum in the window, or the last NaN"},
      [](Node* n, const Var& g) -> std::vector<Var> { // g added at each window's index
        const Tensor& x = value_of(n->first);
        const std::vector<std::int64_t> index = kernel::max_pool2d_indices(x, n->ext->value, windows_at(n));
        const Var flat = index_add(reshape(g, {n->ext->value.numel()}), Shape{x.numel()}, 0, index);
        return {reshape(flat, x.shape().to_vector())};
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = kernel::max_pool2d_backward(value_of(n->first), n->ext->value, g, windows_at(n));
        return true;
      }};
  return r;
}

// avg_pool2d: each plane's windows as columns (zero padding), weighted by 1 / each window's divisor
// and summed: PyTorch's divisor counts the padding (count_include_pad) but not what a ceil_mode
// window reaches past it.
Var avg_pool2d(const Var& a, Size2 kernel, Size2 stride, Size2 padding, bool ceil_mode,
               bool count_include_pad) {
  detail::need(a, "avg_pool2d");
  require_images(a.shape(), "avg_pool2d");
  require_half_padding(kernel, padding, "avg_pool2d");
  if (stride.h == 0 && stride.w == 0) stride = kernel;
  const kernel::Windows win{kernel.h, kernel.w, stride.h, stride.w, padding.h, padding.w, 1, 1, ceil_mode};
  return unbatched(a, [&](const Var& xb) {
    const Shape s = xb.shape();
    const kernel::detail::ConvGeometry geo = kernel::detail::conv_geometry(s, win, "avg_pool2d");
    const std::int64_t oh = geo.oh, ow = geo.ow;
    Tensor weights = Tensor::empty({1, win.kh * win.kw, oh * ow}, xb.dtype());
    for (std::int64_t y = 0; y < oh; ++y)
      for (std::int64_t x = 0; x < ow; ++x) {
        std::int64_t h0 = y * win.sh - win.ph, w0 = x * win.sw - win.pw;
        std::int64_t h1 = std::min(h0 + win.kh, s[2] + win.ph), w1 = std::min(w0 + win.kw, s[3] + win.pw);
        const std::int64_t with_pad = (h1 - h0) * (w1 - w0);
        h0 = std::max<std::int64_t>(h0, 0), w0 = std::max<std::int64_t>(w0, 0);
        h1 = std::min(h1, s[2]), w1 = std::min(w1, s[3]);
        const double divisor = static_cast<double>(count_include_pad ? with_pad : (h1 - h0) * (w1 - w0));
        for (std::int64_t k = 0; k < win.kh * win.kw; ++k)
          weights.set_flat(k * oh * ow + y * ow + x, 1 / divisor);
      }
    const Var cols = unfold(reshape(xb, {s[0] * s[1], 1, s[2], s[3]}), win); // [planes, kh*kw, L]
    return reshape(sum(cols * Var::constant(weights), 1), {s[0], s[1], oh, ow});
  });
}

// unfold(a, windows): im2col, [N, C, H, W] -> [N, C*kh*kw, L].
Var unfold(const Var& a, const kernel::Windows& windows, double pad_value) {
  Node* x = detail::need(a, Op::unfold);
  auto e = detail::emit(Op::unfold, x, nullptr, kernel::unfold(value_of(x), windows, pad_value));
  if (e.n) e.n->ext->ints = ints_of(windows);
  return e.var;
}
Var unfold(const Var& a, std::int64_t kh, std::int64_t kw, std::int64_t stride, std::int64_t padding,
           double pad_value) {
  return unfold(a, kernel::Windows{kh, kw, stride, stride, padding, padding}, pad_value);
}
template <> const OpRule& detail::rule<Op::unfold>() {
  static constexpr OpRule r{{"unfold", "", 1, "fold(g)", "",
                             "unfold(a, kh, kw, stride, padding), unfold(a, windows)",
                             "im2col: image windows as columns (Conv2d, pooling)"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              return {fold(g, value_of(n->first).shape(), windows_at(n))};
                            },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              out[0] = kernel::fold(g, value_of(n->first).shape(), windows_at(n));
                              return true;
                            }};
  return r;
}

// fold(a, shape, windows): col2im, the adjoint of unfold.
Var fold(const Var& a, const Shape& image_shape, const kernel::Windows& windows) {
  Node* x = detail::need(a, Op::fold);
  auto e = detail::emit(Op::fold, x, nullptr, kernel::fold(value_of(x), image_shape, windows));
  if (e.n) e.n->ext->ints = ints_of(windows);
  return e.var;
}
Var fold(const Var& a, const Shape& image_shape, std::int64_t kh, std::int64_t kw, std::int64_t stride,
         std::int64_t padding) {
  return fold(a, image_shape, kernel::Windows{kh, kw, stride, stride, padding, padding});
}
template <> const OpRule& detail::rule<Op::fold>() {
  static constexpr OpRule r{
      {"fold", "", 1, "unfold(g)", "", "fold(g, shape, kh, kw, stride, padding), fold(g, shape, windows)",
       "col2im: columns summed back into an image"},
      [](Node* n, const Var& g) -> std::vector<Var> { return {unfold(g, windows_at(n))}; },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = kernel::unfold(g, windows_at(n));
        return true;
      }};
  return r;
}

} // namespace gg
