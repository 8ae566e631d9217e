// The reductions family: sums, means and maxima of a whole tensor or along an axis. Each op: its
// public function, its rule (table row, the differentiable VJP, the fast tensor backward). On a
// scalar node the whole-tensor ones record a scalar node whose local derivative is 1.
#include <autodiff/ops.hpp>

#include <fmt/format.h>

#include "../kernels/kernels.hpp"
#include "family.hpp"

namespace gg {
namespace detail {
namespace {

/// Whole-tensor reductions; a scalar node's stays a scalar node (its value passes through).
Var reduce_all(Op op, const Var& a, Tensor (*kernel)(const Tensor&)) {
  Node* x = need(a, op);
  if (!x->is_tensor()) return emit_scalar(op, x, nullptr, x->value);
  return emit(op, x, nullptr, kernel(x->ext->value)).var;
}

/// The function called for an extremum op: max for max_axis, amin for amin_axis.
std::string_view called(Op op) {
  const std::string_view name = op_name(op);
  return name.substr(0, name.find('_'));
}

/// g of a reduction along `axis` (keepdim or not) repeated over the input's shape.
Tensor spread(const Tensor& g, const Shape& in, int axis, bool keepdim) {
  std::vector<std::int64_t> s = in.to_vector();
  if (!keepdim) s[static_cast<std::size_t>(axis)] = 1;
  return kernel::broadcast_to(keepdim ? g : g.reshape(s), in);
}

/// The input, the node's axis and keepdim, and g as a Var broadcast back over the input.
struct AxisGrad {
  Var a, spread;
  int axis;
  bool keepdim;
};
AxisGrad axis_grad(Node* n, const Var& g) {
  const Var a = ref(n->first);
  const int axis = static_cast<int>(n->ext->ints[0]);
  const bool keepdim = n->ext->ints[1] != 0;
  return {a, broadcast_to(keep_axis(g, a.shape(), axis, keepdim), a.shape()), axis, keepdim};
}

} // namespace
} // namespace detail

using detail::AxisGrad;
using detail::InputGrads;
using detail::Node;
using detail::OpRule;
using detail::ref;

// sum(a): of all elements (0-d).
Var sum(const Var& x) {
  return detail::reduce_all(Op::sum, x, [](const Tensor& v) { return kernel::sum(v); });
}
template <> const OpRule& detail::rule<Op::sum>() {
  static constexpr OpRule r{{"sum", "sum(a)", 1, "1", "", "sum(a)", "sum of all elements"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              const Var a = ref(n->first);
                              return {a.is_scalar_node() ? g : broadcast_to(g, a.shape())};
                            },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              const Tensor a = detail::value_of(n->first);
                              out[0] = Tensor::full(a.shape(), g.item(), a.dtype());
                              return true;
                            }};
  return r;
}

// mean(a): of all elements.
Var mean(const Var& x) {
  return detail::reduce_all(Op::mean, x, [](const Tensor& v) { return kernel::mean(v); });
}
template <> const OpRule& detail::rule<Op::mean>() {
  static constexpr OpRule r{
      {"mean", "mean(a)", 1, "1/n", "", "mean(a)", "mean of all elements (n of them)"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        const Var a = ref(n->first);
        return {a.is_scalar_node() ? g : broadcast_to(g, a.shape()) / static_cast<double>(a.numel())};
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const Tensor a = detail::value_of(n->first);
        out[0] = Tensor::full(a.shape(), g.item() / static_cast<double>(a.numel()), a.dtype());
        return true;
      }};
  return r;
}

// max(a): the largest element; tied maxima share the gradient equally (NaN maxima: the NaNs share it,
// as torch.max(a)).
Var max(const Var& x) {
  return detail::reduce_all(Op::max, x, [](const Tensor& v) {
    if (v.numel() == 0) throw ValueError("max: the tensor is empty");
    return kernel::max(v);
  });
}
template <> const OpRule& detail::rule<Op::max>() {
  static constexpr OpRule r{
      {"max", "max(a)", 1, "(a==out ? 1/ties : 0)", "", "max(a)",
       "largest element; ties share the gradient (NaNs: the NaNs), as torch.max(a)"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        const Var a = ref(n->first);
        if (a.is_scalar_node()) return {g};
        // selected, not multiplied by the 0/1 mask: an inf or NaN g leaves 0 off the maxima (inf * 0
        // would be NaN), as torch.max(a)
        const Tensor share = detail::max_mask(a.value(), detail::value_of(n), -1);
        return {where(share, broadcast_to(g, a.shape()) * Var::constant(share), detail::constant_like(n, 0))};
      }};
  return r;
}

// sum(a, axis, keepdim).
Var sum(const Var& x, int axis, bool keepdim) {
  return detail::record_along_axis(Op::sum_axis, x, axis, keepdim, &kernel::sum, "sum");
}
template <> const OpRule& detail::rule<Op::sum_axis>() {
  static constexpr OpRule r{
      {"sum_axis", "", 1, "1", "", "sum(a, axis, keepdim)", "sum along an axis"},
      [](Node* n, const Var& g) -> std::vector<Var> { return {detail::axis_grad(n, g).spread}; },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const std::vector<std::int64_t>& ints = n->ext->ints;
        out[0] =
            detail::spread(g, detail::value_of(n->first).shape(), static_cast<int>(ints[0]), ints[1] != 0);
        return true;
      }};
  return r;
}

// mean(a, axis, keepdim).
Var mean(const Var& x, int axis, bool keepdim) {
  return detail::record_along_axis(Op::mean_axis, x, axis, keepdim, &kernel::mean, "mean");
}
template <> const OpRule& detail::rule<Op::mean_axis>() {
  static constexpr OpRule r{{"mean_axis", "", 1, "1/n", "", "mean(a, axis, keepdim)", "mean along an axis"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              const AxisGrad d = detail::axis_grad(n, g);
                              return {d.spread / static_cast<double>(d.a.shape()[d.axis])};
                            },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              const Shape sa = detail::value_of(n->first).shape();
                              const int axis = static_cast<int>(n->ext->ints[0]);
                              out[0] = kernel::binary_scalar(
                                  kernel::Binary::div, detail::spread(g, sa, axis, n->ext->ints[1] != 0),
                                  static_cast<double>(sa[axis]));
                              return true;
                            }};
  return r;
}

// max(a, axis, keepdim): the gradient to each lane's first maximum (its first NaN when there is
// one), the index torch.max(a, dim) returns and routes it to.
Var max(const Var& x, int axis, bool keepdim) {
  return detail::record_along_axis(Op::max_axis, x, axis, keepdim, &kernel::max, "max");
}
template <> const OpRule& detail::rule<Op::max_axis>() {
  static constexpr OpRule r{
      {"max_axis", "", 1, "(a at the first maximum ? 1 : 0)", "", "max(a, axis, keepdim)",
       "largest along an axis; the gradient to the first maximum (or NaN), as "
       "torch.max(a, dim)"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        const AxisGrad d = detail::axis_grad(n, g);
        const Tensor out = detail::value_of(n);
        const Tensor one = Tensor::full(out.shape(), 1.0, out.dtype());
        const Tensor first = kernel::max_backward_first(d.a.value(), out, one, d.axis, detail::called(n->op));
        return {where(first, d.spread, detail::constant_like(n, 0))}; // selected, as max(a)'s
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = kernel::max_backward_first(detail::value_of(n->first), n->ext->value, g,
                                            static_cast<int>(n->ext->ints[0]), detail::called(n->op));
        return true;
      }};
  return r;
}

// amax(a, axis, keepdim): tied maxima share the gradient equally; a lane whose maximum is NaN gets
// NaN throughout (torch.amax's rule: the mask a == out is empty there, 0 / 0).
Var amax(const Var& x, int axis, bool keepdim) {
  return detail::record_along_axis(Op::amax_axis, x, axis, keepdim, &kernel::max, "amax");
}
template <> const OpRule& detail::rule<Op::amax_axis>() {
  static constexpr OpRule r{{"amax_axis", "", 1, "(a==out ? 1/ties : 0)", "", "amax(a, axis, keepdim)",
                             "largest along an axis; ties share the gradient, as torch.amax"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              const AxisGrad d = detail::axis_grad(n, g);
                              const Tensor out = detail::value_of(n);
                              Shape kept = d.a.shape(); // the maxima with the reduced axis kept (size 1)
                              kept[d.axis] = 1;
                              const Tensor outk = out.reshape(kept);
                              return {d.spread * Var::constant(detail::max_mask(d.a.value(), outk, d.axis))};
                            },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              out[0] = kernel::max_backward(detail::value_of(n->first), n->ext->value, g,
                                                            static_cast<int>(n->ext->ints[0]),
                                                            detail::called(n->op));
                              return true;
                            }};
  return r;
}

// min(a): the smallest element; tied minima share the gradient equally (the mask is max's: where the
// input equals the result).
Var min(const Var& x) {
  return detail::reduce_all(Op::min, x, [](const Tensor& v) {
    if (v.numel() == 0) throw ValueError("min: the tensor is empty");
    return kernel::min(v);
  });
}
template <> const OpRule& detail::rule<Op::min>() {
  static const OpRule r{{"min", "min(a)", 1, "(a==out ? 1/ties : 0)", "", "min(a)",
                         "smallest element; ties share the gradient (NaNs: the NaNs), as torch.min(a)"},
                        rule<Op::max>().vjp};
  return r;
}

namespace detail {
namespace {
/// The minima along an axis, as -max(-x).
Tensor min_along(const Tensor& v, int axis, bool keepdim) {
  using kernel::Unary;
  return kernel::unary(Unary::neg, kernel::max(kernel::unary(Unary::neg, v), axis, keepdim));
}
} // namespace
} // namespace detail

// min(a, axis, keepdim): the gradient to each lane's first minimum (or NaN), as torch.min(a, dim);
// amin: tied minima share it (max_axis's and amax_axis's rules: the masks compare with the result).
Var min(const Var& x, int axis, bool keepdim) {
  return detail::record_along_axis(Op::min_axis, x, axis, keepdim, &detail::min_along, "min");
}
Var amin(const Var& x, int axis, bool keepdim) {
  return detail::record_along_axis(Op::amin_axis, x, axis, keepdim, &detail::min_along, "amin");
}
template <> const OpRule& detail::rule<Op::min_axis>() {
  static const OpRule r{{"min_axis", "", 1, "(a at the first minimum ? 1 : 0)", "", "min(a, axis, keepdim)",
                         "smallest along an axis; the gradient to the first minimum (or NaN), as "
                         "torch.min(a, dim)"},
                        rule<Op::max_axis>().vjp,
                        rule<Op::max_axis>().vjp_values};
  return r;
}
template <> const OpRule& detail::rule<Op::amin_axis>() {
  static const OpRule r{{"amin_axis", "", 1, "(a==out ? 1/ties : 0)", "", "amin(a, axis, keepdim)",
                         "smallest along an axis; ties share the gradient, as torch.amin"},
                        rule<Op::amax_axis>().vjp,
                        rule<Op::amax_axis>().vjp_values};
  return r;
}

} // namespace gg
