// The shape and indexing family: transposes, reshapes, slices and gathers with their adjoints
// (slice_scatter, index_add), joins (concat, stack), selection by a mask (where), broadcasting and its
// adjoint (sum_to), and dtype conversion (to). Each op: its public function and its rule (table row,
// the differentiable VJP, the fast tensor backward where the common ops have one).
#include <autodiff/ops.hpp>

#include <cmath>

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
/// The node's attributes from position `from` on (index_select's indices after its axis).
std::vector<std::int64_t> ints_from(const Node* n, std::size_t from) {
  const std::vector<std::int64_t>& v = n->ext->ints;
  return {v.begin() + static_cast<std::ptrdiff_t>(from), v.end()};
}
int axis_of(const Node* n, std::size_t i = 0) {
  return static_cast<int>(n->ext->ints[i]);
}
/// Negative indices are refused, as PyTorch does (no counting from the end).
void refuse_negative(const std::vector<std::int64_t>& index, std::string_view op) {
  for (std::size_t i = 0; i < index.size(); ++i)
    if (index[i] < 0)
      throw ValueError(fmt::format("{}: index {} at position {} is negative (indices along an axis of size n "
                                   "are 0 to n - 1)",
                                   op, index[i], i));
}
/// A 0-d tensor's axis, as PyTorch takes it: 0 or -1 (its one implicit axis).
void check_0d_axis(int axis, std::string_view op) {
  if (axis != 0 && axis != -1)
    throw ValueError(fmt::format("{}: axis {} is out of range for a 0-d tensor (0 or -1)", op, axis));
}
} // namespace

// transpose(a, i, j): axes i and j swapped.
Var transpose(const Var& a, int axis0, int axis1) {
  Node* x = need(a, Op::transpose);
  const Tensor v = value_of(x);
  if (v.rank() == 0) { // as PyTorch: the input itself
    check_0d_axis(axis0, "transpose");
    check_0d_axis(axis1, "transpose");
    return a;
  }
  const int a0 = kernel::normalize_axis(axis0, v.rank(), "transpose");
  const int a1 = kernel::normalize_axis(axis1, v.rank(), "transpose");
  auto e = detail::emit(Op::transpose, x, nullptr, kernel::transpose(v, a0, a1));
  if (e.n) e.n->ext->ints = {a0, a1};
  return e.var;
}
template <> const OpRule& detail::rule<Op::transpose>() {
  static constexpr OpRule r{
      {"transpose", "", 1, "transpose(g)", "", "transpose(a, i, j)", "axes i and j swapped"},
      [](Node* n, const Var& g) -> std::vector<Var> { return {transpose(g, axis_of(n, 0), axis_of(n, 1))}; },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = kernel::transpose(g, axis_of(n, 0), axis_of(n, 1));
        return true;
      }};
  return r;
}

// reshape(a, shape): the same elements, a new shape.
Var reshape(const Var& a, const std::vector<std::int64_t>& shape) {
  Node* x = need(a, Op::reshape);
  return detail::emit(Op::reshape, x, nullptr, value_of(x).reshape(shape)).var;
}
template <> const OpRule& detail::rule<Op::reshape>() {
  static constexpr OpRule r{
      {"reshape", "", 1, "reshape(g, shape(a))", "", "reshape(a, shape)", "same elements, new shape"},
      [](Node* n, const Var& g) -> std::vector<Var> { return {reshape(g, input_shape(n).to_vector())}; },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = g.reshape(input_shape(n));
        return true;
      }};
  return r;
}

// slice(a, axis, start, stop, step), and select(a, axis, i) = a slice of one with the axis removed.
Var slice(const Var& a, int axis, std::int64_t start, std::int64_t stop, std::int64_t step) {
  Node* x = need(a, Op::slice);
  const Tensor v = value_of(x);
  const int ax = kernel::normalize_axis(axis, v.rank(), "slice");
  auto e = detail::emit(Op::slice, x, nullptr, kernel::slice(v, ax, start, stop, step));
  if (e.n) e.n->ext->ints = {ax, start, stop, step};
  return e.var;
}
Var select(const Var& x, int axis, std::int64_t index) {
  const Shape s = x.shape();
  const int ax = kernel::normalize_axis(axis, s.rank(), "select");
  if (index < -s[ax] || index >= s[ax])
    throw ValueError(fmt::format("select: index {} is out of range for axis {} of size {} (shape {})", index,
                                 ax, s[ax], s.str()));
  if (index < 0) index += s[ax];
  std::vector<std::int64_t> shape = s.to_vector();
  shape.erase(shape.begin() + ax);
  return reshape(slice(x, ax, index, index + 1), shape);
}
template <> const OpRule& detail::rule<Op::slice>() {
  static constexpr OpRule r{{"slice", "", 1, "slice_scatter(g)", "",
                             "slice(a, axis, start, stop, step), select(a, axis, i)",
                             "every step-th element of [start, stop) along an axis"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              const std::vector<std::int64_t>& i = n->ext->ints;
                              return {slice_scatter(g, input_shape(n), axis_of(n), i[1], i[2], i[3])};
                            }};
  return r;
}

// slice_scatter(g, shape, axis, start, stop, step): zeros of shape with g at a slice's positions.
Var slice_scatter(const Var& g, const Shape& shape, int axis, std::int64_t start, std::int64_t stop,
                  std::int64_t step) {
  Node* x = need(g, Op::slice_scatter);
  const int ax = kernel::normalize_axis(axis, shape.rank(), "slice_scatter");
  auto e = detail::emit(Op::slice_scatter, x, nullptr,
                        kernel::slice_scatter(value_of(x), shape, ax, start, stop, step));
  if (e.n) e.n->ext->ints = {ax, start, stop, step};
  return e.var;
}
template <> const OpRule& detail::rule<Op::slice_scatter>() {
  static constexpr OpRule r{{"slice_scatter", "", 1, "slice(g)", "",
                             "slice_scatter(g, shape, axis, start, stop, step)",
                             "zeros with g at a slice's positions"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              const std::vector<std::int64_t>& i = n->ext->ints;
                              return {slice(g, axis_of(n), i[1], i[2], i[3])};
                            }};
  return r;
}

// index_select(a, axis, indices): a gather; repeated indices allowed.
Var index_select(const Var& a, int axis, const std::vector<std::int64_t>& index) {
  Node* x = need(a, Op::index_select);
  const Tensor v = value_of(x);
  refuse_negative(index, "index_select");
  if (v.rank() == 0) { // as PyTorch: index 0 (any number of times) of a 0-d tensor is the tensor
    check_0d_axis(axis, "index_select");
    for (const std::int64_t i : index)
      if (i != 0)
        throw ValueError(fmt::format("index_select: index {} is out of range for a 0-d tensor (0)", i));
    if (index.empty()) throw ValueError("index_select: a 0-d tensor takes index 0, got no index");
    return a;
  }
  const int ax = kernel::normalize_axis(axis, v.rank(), "index_select");
  auto e = detail::emit(Op::index_select, x, nullptr, kernel::index_select(v, ax, index));
  if (e.n) {
    e.n->ext->ints = {ax};
    e.n->ext->ints.insert(e.n->ext->ints.end(), index.begin(), index.end());
  }
  return e.var;
}
template <> const OpRule& detail::rule<Op::index_select>() {
  static constexpr OpRule r{{"index_select", "", 1, "index_add(g)", "", "index_select(a, axis, indices)",
                             "entries at the indices along an axis (gather)"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              return {index_add(g, input_shape(n), axis_of(n), ints_from(n, 1))};
                            },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              out[0] = kernel::index_add(g, input_shape(n), axis_of(n), ints_from(n, 1));
                              return true;
                            }};
  return r;
}

// index_add(g, shape, axis, indices): zeros of shape with g's entries added at the indices.
Var index_add(const Var& g, const Shape& shape, int axis, const std::vector<std::int64_t>& index) {
  Node* x = need(g, Op::index_add);
  refuse_negative(index, "index_add");
  const int ax = kernel::normalize_axis(axis, shape.rank(), "index_add");
  auto e = detail::emit(Op::index_add, x, nullptr, kernel::index_add(value_of(x), shape, ax, index));
  if (e.n) {
    e.n->ext->ints = {ax};
    e.n->ext->ints.insert(e.n->ext->ints.end(), index.begin(), index.end());
  }
  return e.var;
}
template <> const OpRule& detail::rule<Op::index_add>() {
  static constexpr OpRule r{{"index_add", "", 1, "index_select(g)", "", "index_add(g, shape, axis, indices)",
                             "zeros with g added at the indices"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              return {index_select(g, axis_of(n), ints_from(n, 1))};
                            }};
  return r;
}

namespace {
/// concat or stack of xs along axis.
Var join(Op op, const std::vector<Var>& xs, int axis) {
  const std::string_view name = op_name(op);
  if (xs.empty()) throw ValueError(fmt::format("{}: needs at least one tensor", name));
  std::vector<Tensor> vs;
  vs.reserve(xs.size());
  for (const Var& x : xs) vs.push_back(value_of(need(x, name)));
  Tensor r = op == Op::concat ? kernel::concat(vs, axis) : kernel::stack(vs, axis);
  const int ax = kernel::normalize_axis(axis, r.rank(), name);
  auto e = detail::emit_variadic(op, xs, std::move(r));
  if (e.n) e.n->ext->ints = {ax};
  return e.var;
}
} // namespace

// concat({a, b, ...}, axis): joined along an existing axis.
Var concat(const std::vector<Var>& xs, int axis) {
  return join(Op::concat, xs, axis);
}
template <> const OpRule& detail::rule<Op::concat>() {
  static constexpr OpRule r{
      {"concat", "", -1, "slice of g", "", "concat({a, b, ...}, axis)", "tensors joined along an axis"},
      [](Node* n, const Var& g) -> std::vector<Var> { // each input its slice of g
        std::vector<Var> r;
        std::int64_t offset = 0;
        for (int i = 0; i < n->num_inputs(); ++i) {
          const std::int64_t size = input_shape(n, i)[axis_of(n)];
          r.push_back(slice(g, axis_of(n), offset, offset + size));
          offset += size;
        }
        return r;
      }};
  return r;
}

// stack({a, b, ...}, axis): joined along a new axis.
Var stack(const std::vector<Var>& xs, int axis) {
  return join(Op::stack, xs, axis);
}
template <> const OpRule& detail::rule<Op::stack>() {
  static constexpr OpRule r{
      {"stack", "", -1, "select of g", "", "stack({a, b, ...}, axis)", "tensors joined along a new axis"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        std::vector<Var> r;
        for (int i = 0; i < n->num_inputs(); ++i) r.push_back(select(g, axis_of(n), i));
        return r;
      }};
  return r;
}

// where(cond, a, b): a where cond != 0, else b; the three broadcast together.
Var where(const Tensor& cond, const Var& a, const Var& b) {
  Node* x = need(a, Op::where);
  Node* y = need(b, Op::where);
  auto e = detail::emit(Op::where, x, y, kernel::where(cond, value_of(x), value_of(y)));
  if (e.n) e.n->ext->aux = cond;
  return e.var;
}
template <> const OpRule& detail::rule<Op::where>() {
  static constexpr OpRule r{
      {"where", "", 2, "(cond ? 1 : 0)", "(cond ? 0 : 1)", "where(cond, a, b)", "a where cond != 0, else b"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        const Tensor& cond = n->ext->aux;
        const Var zero = detail::constant_like(n, 0);
        return {sum_to(where(cond, g, zero), input_shape(n, 0)),
                sum_to(where(cond, zero, g), input_shape(n, 1))};
      }};
  return r;
}

Var where(const Var& cond, const Var& a, const Var& b) {
  need(cond, Op::where);
  return where(cond.value(), a, b);
}

// squeeze and unsqueeze: reshapes, as PyTorch's views.
Var squeeze(const Var& x) {
  std::vector<std::int64_t> s;
  for (const std::int64_t d : x.shape())
    if (d != 1) s.push_back(d);
  return static_cast<int>(s.size()) == x.shape().rank() ? x : reshape(x, s);
}
Var squeeze(const Var& x, int axis) {
  const Shape s = x.shape();
  if (s.rank() == 0) {
    check_0d_axis(axis, "squeeze");
    return x;
  }
  const int ax = kernel::normalize_axis(axis, s.rank(), "squeeze");
  if (s[ax] != 1) return x;
  std::vector<std::int64_t> r = s.to_vector();
  r.erase(r.begin() + ax);
  return reshape(x, r);
}
Var unsqueeze(const Var& x, int axis) {
  const Shape s = x.shape();
  const int ax = kernel::normalize_axis(axis, s.rank() + 1, "unsqueeze");
  std::vector<std::int64_t> r = s.to_vector();
  r.insert(r.begin() + ax, 1);
  return reshape(x, r);
}

// gather(a, axis, index): index_select of the flattened input at each index's element offset.
Var gather(const Var& x, int axis, const Tensor& index) {
  const Shape s = x.shape(), si = index.shape();
  const int rank = s.rank();
  if (rank == 0) check_0d_axis(axis, "gather");
  const int ax = rank == 0 ? 0 : kernel::normalize_axis(axis, rank, "gather");
  if (si.rank() != rank)
    throw ShapeError(fmt::format("gather: index of shape {} must have the rank of the input, of shape {}",
                                 si.str(), s.str()));
  for (int d = 0; d < rank; ++d)
    if (d != ax && si[d] > s[d])
      throw ShapeError(fmt::format("gather: index of shape {} is larger than the input, of shape {}, in "
                                   "dimension {}",
                                   si.str(), s.str(), d));
  const std::int64_t size = rank == 0 ? 1 : s[ax];
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(si.numel()));
  std::vector<std::int64_t> at(static_cast<std::size_t>(rank), 0); // index's multi-index, row-major
  for (std::int64_t i = 0; i < si.numel(); ++i) {
    const double t = index.flat(i);
    if (!(t >= 0 && t < static_cast<double>(size)) || t != std::floor(t))
      throw ValueError(fmt::format("gather: index {} at [{}] is out of range for axis {} of size {}", t,
                                   fmt::join(at, ", "), ax, size));
    std::int64_t offset = 0;
    for (int d = 0; d < rank; ++d)
      offset = offset * s[d] + (d == ax ? static_cast<std::int64_t>(t) : at[static_cast<std::size_t>(d)]);
    offsets[static_cast<std::size_t>(i)] = offset;
    for (int d = rank - 1; d >= 0; --d) { // next multi-index
      if (++at[static_cast<std::size_t>(d)] < si[d]) break;
      at[static_cast<std::size_t>(d)] = 0;
    }
  }
  return reshape(index_select(reshape(x, {-1}), 0, offsets), si.to_vector());
}

// broadcast_to(a, shape): a repeated along the dimensions broadcasting adds or stretches.
Var broadcast_to(const Var& a, const Shape& shape) {
  Node* x = need(a, Op::broadcast_to);
  return detail::emit(Op::broadcast_to, x, nullptr, kernel::broadcast_to(value_of(x), shape)).var;
}
template <> const OpRule& detail::rule<Op::broadcast_to>() {
  static constexpr OpRule r{
      {"broadcast_to", "", 1, "sum_to(g, shape(a))", "", "broadcast_to(a, shape)",
       "a repeated along broadcast dimensions"},
      [](Node* n, const Var& g) -> std::vector<Var> { return {sum_to(g, input_shape(n))}; },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = kernel::sum_to(g, input_shape(n));
        return true;
      }};
  return r;
}

// sum_to(a, shape): the dimensions broadcasting stretched summed back to shape.
Var sum_to(const Var& a, const Shape& shape) {
  Node* x = need(a, Op::sum_to);
  if (!x->is_tensor() && shape.rank() == 0) return a;
  Tensor v = value_of(x);
  if (v.shape() == shape) return a;
  kernel::broadcast_to(Tensor::zeros(shape, v.dtype()), v.shape(), "sum_to"); // shape must broadcast to x
  return detail::emit(Op::sum_to, x, nullptr, kernel::sum_to(v, shape)).var;
}
template <> const OpRule& detail::rule<Op::sum_to>() {
  static constexpr OpRule r{
      {"sum_to", "", 1, "broadcast_to(g, shape(a))", "", "sum_to(a, shape)",
       "sums of the broadcast dimensions, back to shape"},
      [](Node* n, const Var& g) -> std::vector<Var> { return {broadcast_to(g, input_shape(n))}; },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = kernel::broadcast_to(g, input_shape(n));
        return true;
      }};
  return r;
}

// to(a, dtype): converted to float32 or float64; the gradient is converted back.
Var to(const Var& a, DType dtype) {
  Node* x = need(a, Op::to);
  if ((x->is_tensor() ? x->ext->value.dtype() : f64) == dtype) return a;
  return detail::emit(Op::to, x, nullptr, value_of(x).to(dtype)).var;
}
template <> const OpRule& detail::rule<Op::to>() {
  static constexpr OpRule r{
      {"to", "", 1, "1", "", "to(a, dtype)",
       "a converted to float32 or float64 (the gradient converted back)"},
      [](Node* n, const Var& g) -> std::vector<Var> { return {to(g, ref(n->first).dtype())}; }};
  return r;
}

} // namespace gg
