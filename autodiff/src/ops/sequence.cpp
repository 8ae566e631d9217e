// The sequence-model family: triangular masks (tril, triu), filling where a mask is set
// (masked_fill), running sums (cumsum), dropout, splitting along an axis (split, chunk: slices), and
// the functions without a gradient that language models use, argmax and multinomial sampling. Each
// op: its public function and its rule (table row, the differentiable VJP, the fast tensor backward).
#include <autodiff/ops.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "../kernels/kernels.hpp"
#include "family.hpp"

namespace gg {

using detail::InputGrads;
using detail::need;
using detail::Node;
using detail::OpRule;
using detail::value_of;

namespace {
std::int64_t int_of(const Node* n, std::size_t i = 0) {
  return n->ext->ints[i];
}

/// tril or triu of a, the diagonal kept as the node's attribute.
Var triangle(Op op, const Var& a, std::int64_t diagonal) {
  Node* x = need(a, op);
  const Tensor v = value_of(x);
  auto e =
      detail::emit(op, x, nullptr, op == Op::tril ? kernel::tril(v, diagonal) : kernel::triu(v, diagonal));
  if (e.n) e.n->ext->ints = {diagonal};
  return e.var;
}

/// cumsum along axis, from the start or (reverse) from the end: each one's gradient is the other.
Var running_sum(const Var& a, int axis, bool reverse) {
  Node* x = need(a, Op::cumsum);
  const Tensor v = value_of(x);
  const int ax = kernel::normalize_axis(axis, std::max(v.rank(), 1), "cumsum");
  auto e = detail::emit(Op::cumsum, x, nullptr, kernel::cumsum(v, ax, reverse));
  if (e.n) e.n->ext->ints = {ax, reverse ? 1 : 0};
  return e.var;
}
} // namespace

// tril(a, diagonal), triu(a, diagonal): the other triangle of each matrix zeroed.
Var tril(const Var& x, std::int64_t diagonal) {
  return triangle(Op::tril, x, diagonal);
}
template <> const OpRule& detail::rule<Op::tril>() {
  static constexpr OpRule r{{"tril", "", 1, "tril(g)", "", "tril(a, diagonal)",
                             "lower triangle of each matrix (last two dimensions), the rest 0"},
                            [](Node* n, const Var& g) -> std::vector<Var> { return {tril(g, int_of(n))}; },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              out[0] = kernel::tril(g, int_of(n));
                              return true;
                            }};
  return r;
}
Var triu(const Var& x, std::int64_t diagonal) {
  return triangle(Op::triu, x, diagonal);
}
template <> const OpRule& detail::rule<Op::triu>() {
  static constexpr OpRule r{{"triu", "", 1, "triu(g)", "", "triu(a, diagonal)",
                             "upper triangle of each matrix (last two dimensions), the rest 0"},
                            [](Node* n, const Var& g) -> std::vector<Var> { return {triu(g, int_of(n))}; },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              out[0] = kernel::triu(g, int_of(n));
                              return true;
                            }};
  return r;
}

// masked_fill(a, mask, c): c where the mask is set; the node keeps the mask and c.
Var masked_fill(const Var& x, const Tensor& mask, double value) {
  Node* a = need(x, Op::masked_fill);
  auto e = detail::emit(Op::masked_fill, a, nullptr, kernel::masked_fill(value_of(a), mask, value));
  if (e.n) {
    e.n->ext->aux = mask;
    e.n->set_constant(value);
  }
  return e.var;
}
template <> const OpRule& detail::rule<Op::masked_fill>() {
  static constexpr OpRule r{{"masked_fill", "", 1, "(mask ? 0 : 1)", "", "masked_fill(a, mask, c)",
                             "c where the mask is 1, else a (mask and a broadcast together)"},
                            [](Node* n, const Var& g) -> std::vector<Var> {
                              return {sum_to(masked_fill(g, n->ext->aux, 0), input_shape(n))};
                            },
                            [](Node* n, const Tensor& g, InputGrads& out) {
                              out[0] =
                                  detail::reduce_to(kernel::masked_fill(g, n->ext->aux, 0), input_shape(n));
                              return true;
                            }};
  return r;
}

// cumsum(a, dim): running sums; the gradient is the running sum of g from the end.
Var cumsum(const Var& x, int dim) {
  return running_sum(x, dim, false);
}
template <> const OpRule& detail::rule<Op::cumsum>() {
  static constexpr OpRule r{
      {"cumsum", "", 1, "reversed cumsum(g)", "", "cumsum(a, dim)", "running sums along an axis"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        return {running_sum(g, static_cast<int>(int_of(n)), int_of(n, 1) == 0)};
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = kernel::cumsum(g, static_cast<int>(int_of(n)), int_of(n, 1) == 0);
        return true;
      }};
  return r;
}

// dropout(a, p, training, generator): a times a constant mask of 0 and 1/(1-p), kept by the node.
Var dropout(const Var& x, double p, bool training, Rng& generator) {
  Node* a = need(x, Op::dropout);
  if (!(p >= 0 && p <= 1)) throw ValueError(fmt::format("dropout: p must be in [0, 1], got {}", p));
  if (!training || p == 0) return x;
  const Tensor v = value_of(a);
  Tensor mask = Tensor::empty(v.shape(), v.dtype());
  const double scale = p < 1 ? 1 / (1 - p) : 0;
  for (std::int64_t i = 0; i < mask.numel(); ++i) mask.set_flat(i, generator.uniform() >= p ? scale : 0.0);
  auto e = detail::emit(Op::dropout, a, nullptr, kernel::binary(kernel::Binary::mul, v, mask));
  if (e.n) e.n->ext->aux = mask;
  return e.var;
}
template <> const OpRule& detail::rule<Op::dropout>() {
  static constexpr OpRule r{
      {"dropout", "", 1, "mask", "", "dropout(a, p, training, generator)",
       "a times a random mask: 0 with probability p, else 1/(1-p)"},
      [](Node* n, const Var& g) -> std::vector<Var> { return {g * Var::constant(n->ext->aux)}; },
      [](Node* n, const Tensor& g, InputGrads& out) {
        out[0] = kernel::binary(kernel::Binary::mul, g, n->ext->aux);
        return true;
      }};
  return r;
}

// split and chunk: slices of x along an axis (each slice's gradient goes to its part of x).
std::vector<Var> split(const Var& x, std::int64_t split_size, int dim) {
  const Shape s = need(x, "split")->is_tensor() ? x.shape() : Shape();
  const int ax = kernel::normalize_axis(dim, s.rank(), "split");
  const std::int64_t n = s[ax];
  if (split_size < 0 || (split_size == 0 && n != 0))
    throw ValueError(fmt::format("split: split_size must be positive (0 only for an empty axis), got {} for "
                                 "axis {} of shape {}",
                                 split_size, ax, s.str()));
  if (n == 0) return {x};
  std::vector<Var> parts;
  for (std::int64_t start = 0; start < n; start += split_size)
    parts.push_back(slice(x, ax, start, std::min(start + split_size, n)));
  return parts;
}

std::vector<Var> split(const Var& x, const std::vector<std::int64_t>& split_sizes, int dim) {
  const Shape s = need(x, "split")->is_tensor() ? x.shape() : Shape();
  const int ax = kernel::normalize_axis(dim, s.rank(), "split");
  const bool negative =
      std::any_of(split_sizes.begin(), split_sizes.end(), [](std::int64_t k) { return k < 0; });
  if (negative || std::accumulate(split_sizes.begin(), split_sizes.end(), std::int64_t{0}) != s[ax])
    throw ValueError(
        fmt::format("split: the sizes [{}] must be non-negative and add up to {}, the size of axis {} "
                    "of shape {}",
                    fmt::join(split_sizes, ", "), s[ax], ax, s.str()));
  std::vector<Var> parts;
  std::int64_t start = 0;
  for (const std::int64_t k : split_sizes) {
    parts.push_back(slice(x, ax, start, start + k));
    start += k;
  }
  return parts;
}

std::vector<Var> chunk(const Var& x, std::int64_t chunks, int dim) {
  const Shape s = need(x, "chunk")->is_tensor() ? x.shape() : Shape();
  const int ax = kernel::normalize_axis(dim, s.rank(), "chunk");
  if (chunks <= 0)
    throw ValueError(fmt::format("chunk: chunks must be positive, got {} (shape {})", chunks, s.str()));
  const std::int64_t n = s[ax];
  if (n == 0) return split(x, std::vector<std::int64_t>(static_cast<std::size_t>(chunks), 0), ax);
  return split(x, (n + chunks - 1) / chunks, ax); // as PyTorch: equal parts, the last smaller, maybe fewer
}

// Without a gradient: argmax and multinomial give constants (index values as float64).

Var argmax(const Var& x, int dim, bool keepdim) {
  const Tensor v = value_of(need(x, "argmax"));
  if (v.rank() == 0) {
    kernel::normalize_axis(dim, 1, "argmax");
    return Var::constant(Tensor::scalar(0));
  }
  return Var::constant(kernel::argmax(v, dim, keepdim));
}

Var argmax(const Var& x) {
  const Tensor v = value_of(need(x, "argmax"));
  if (v.numel() == 0)
    throw ValueError(fmt::format("argmax: the tensor is empty (shape {})", v.shape().str()));
  return Var::constant(kernel::argmax(v.reshape({-1}), 0, false));
}

Var multinomial(const Var& probs, std::int64_t num_samples, bool replacement, Rng& generator) {
  const Tensor p = value_of(need(probs, "multinomial"));
  const std::string shape = p.shape().str();
  if (p.rank() != 1 && p.rank() != 2)
    throw ShapeError(fmt::format(
        "multinomial: probs must be 1-d [categories] or 2-d [rows, categories], got shape {}", shape));
  const std::int64_t rows = p.rank() == 2 ? p.shape()[0] : 1, categories = p.shape()[p.rank() - 1];
  if (num_samples <= 0)
    throw ValueError(
        fmt::format("multinomial: num_samples must be positive, got {} (shape {})", num_samples, shape));
  if (categories == 0)
    throw ValueError(fmt::format("multinomial: probs has no categories (shape {})", shape));
  if (!replacement && num_samples > categories)
    throw ValueError(fmt::format("multinomial: cannot draw {} samples without replacement from {} categories "
                                 "(shape {})",
                                 num_samples, categories, shape));
  const auto c = static_cast<std::size_t>(categories);
  std::vector<double> cdf(c), key(c);
  std::vector<std::size_t> order(c);
  Tensor out = Tensor::empty(p.rank() == 2 ? Shape{rows, num_samples} : Shape{num_samples}, f64);
  double* o = out.data<double>();
  for (std::int64_t r = 0; r < rows; ++r) {
    double total = 0;
    for (std::size_t k = 0; k < c; ++k) {
      const double w = p.flat(r * categories + static_cast<std::int64_t>(k));
      if (!(w >= 0) || std::isinf(w))
        throw ValueError(
            fmt::format("multinomial: probabilities must be finite and non-negative, found {} at row "
                        "{}, category {} (shape {})",
                        w, r, k, shape));
      cdf[k] = total += w;
    }
    if (!(total > 0))
      throw ValueError(
          fmt::format("multinomial: the probabilities of row {} add up to 0 (shape {})", r, shape));
    double* row = o + r * num_samples;
    if (replacement) { // inverse distribution function: the first category whose running sum passes u·total
      for (std::int64_t s = 0; s < num_samples; ++s) {
        const double u = generator.uniform() * total;
        auto k = static_cast<std::size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
        while (k == c || (k > 0 && cdf[k] == cdf[k - 1])) --k; // rounding: never a category of probability 0
        row[s] = static_cast<double>(k);
      }
    } else { // without replacement: the num_samples largest p/E, E exponential (as PyTorch; 0 sorts last)
      for (std::size_t k = 0; k < c; ++k) {
        const double w = p.flat(r * categories + static_cast<std::int64_t>(k)),
                     e = -std::log1p(-generator.uniform());
        key[k] = w > 0 ? w / e : 0.0;
      }
      std::iota(order.begin(), order.end(), std::size_t{0});
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t a, std::size_t b) { return key[a] > key[b]; });
      for (std::int64_t s = 0; s < num_samples; ++s)
        row[s] = static_cast<double>(order[static_cast<std::size_t>(s)]);
    }
  }
  return Var::constant(out);
}

} // namespace gg
