// Property tests: 1,000 randomly generated graphs (500 scalar, 500 tensor with broadcasting), each
// from a fixed seed, whose backward gradients and create_graph gradients must agree with central
// finite differences in float64 (gg::gradcheck). A failure prints the seed and the whole program.
#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace {

using gg::Shape;
using gg::Tensor;
using gg::Var;

/// The ops a generated program uses. Guards keep each op in its smooth domain: `positive` is
/// exp(tanh(x)), in [0.37, 2.7], put before log, sqrt, powers and denominators when needed.
enum class P {
  positive,
  neg,
  exp,
  log,
  sqrt,
  abs,
  tanh,
  sigmoid,
  relu,
  leaky_relu,
  sin,
  cos,
  clamp,
  square,
  pow_c,
  rpow_c,
  add_c,
  mul_c,
  div_c,
  rsub_c,
  rdiv_c,
  add,
  sub,
  mul,
  div,
  pow,
  sum,
  mean,
  max,
  sum_axis,
  mean_axis,
  max_axis,
  logsumexp,
  softmax,
  log_softmax,
  transpose,
  reshape,
  slice,
  select,
  index_select,
  concat,
  stack,
  where,
  broadcast_to,
  sum_to,
  matmul,
  index_add,
  slice_scatter,
  count_
};
constexpr const char* k_names[] = {
    "positive",  "neg",          "exp",        "log",      "sqrt",         "abs",          "tanh",
    "sigmoid",   "relu",         "leaky_relu", "sin",      "cos",          "clamp",        "square",
    "pow_c",     "rpow_c",       "add_c",      "mul_c",    "div_c",        "rsub_c",       "rdiv_c",
    "add",       "sub",          "mul",        "div",      "pow",          "sum",          "mean",
    "max",       "sum_axis",     "mean_axis",  "max_axis", "logsumexp",    "softmax",      "log_softmax",
    "transpose", "reshape",      "slice",      "select",   "index_select", "concat",       "stack",
    "where",     "broadcast_to", "sum_to",     "matmul",   "index_add",    "slice_scatter"};
static_assert(std::size(k_names) == static_cast<std::size_t>(P::count_));

/// One step: an op on earlier values (inputs first, then earlier steps' results).
struct Step {
  Step(P o, std::vector<int> a) : op(o), args(std::move(a)) {}
  P op;
  std::vector<int> args;
  double c = 0, c2 = 0;
  int axis = 0, axis2 = 0;
  bool keepdim = false;
  std::vector<std::int64_t> ints; ///< a shape, indices, or slice start/stop/step
  Tensor cond;                    ///< where's mask
};

struct Program {
  std::vector<Tensor> inputs;
  std::vector<Step> steps;
};

Var apply_step(const Step& s, const std::vector<Var>& v) {
  const auto at = [&](std::size_t i) -> const Var& { return v[static_cast<std::size_t>(s.args[i])]; };
  const std::vector<std::int64_t>& n = s.ints;
  switch (s.op) {
  case P::positive: return gg::exp(gg::tanh(at(0)));
  case P::neg: return -at(0);
  case P::exp: return gg::exp(at(0));
  case P::log: return gg::log(at(0));
  case P::sqrt: return gg::sqrt(at(0));
  case P::abs: return gg::abs(at(0));
  case P::tanh: return gg::tanh(at(0));
  case P::sigmoid: return gg::sigmoid(at(0));
  case P::relu: return gg::relu(at(0));
  case P::leaky_relu: return gg::leaky_relu(at(0), s.c);
  case P::sin: return gg::sin(at(0));
  case P::cos: return gg::cos(at(0));
  case P::clamp: return gg::clamp(at(0), s.c, s.c2);
  case P::square: return at(0) * at(0);
  case P::pow_c: return gg::pow(at(0), s.c);
  case P::rpow_c: return gg::pow(s.c, at(0));
  case P::add_c: return at(0) + s.c;
  case P::mul_c: return at(0) * s.c;
  case P::div_c: return at(0) / s.c;
  case P::rsub_c: return s.c - at(0);
  case P::rdiv_c: return s.c / at(0);
  case P::add: return at(0) + at(1);
  case P::sub: return at(0) - at(1);
  case P::mul: return at(0) * at(1);
  case P::div: return at(0) / at(1);
  case P::pow: return gg::pow(at(0), at(1));
  case P::sum: return gg::sum(at(0));
  case P::mean: return gg::mean(at(0));
  case P::max: return gg::max(at(0));
  case P::sum_axis: return gg::sum(at(0), s.axis, s.keepdim);
  case P::mean_axis: return gg::mean(at(0), s.axis, s.keepdim);
  case P::max_axis: return gg::max(at(0), s.axis, s.keepdim);
  case P::logsumexp: return gg::logsumexp(at(0), s.axis, s.keepdim);
  case P::softmax: return gg::softmax(at(0), s.axis);
  case P::log_softmax: return gg::log_softmax(at(0), s.axis);
  case P::transpose: return gg::transpose(at(0), s.axis, s.axis2);
  case P::reshape: return gg::reshape(at(0), n);
  case P::slice: return gg::slice(at(0), s.axis, n[0], n[1], n[2]);
  case P::select: return gg::select(at(0), s.axis, n[0]);
  case P::index_select: return gg::index_select(at(0), s.axis, n);
  case P::concat:
  case P::stack: {
    std::vector<Var> xs;
    for (std::size_t i = 0; i < s.args.size(); ++i) xs.push_back(at(i));
    return s.op == P::concat ? gg::concat(xs, s.axis) : gg::stack(xs, s.axis);
  }
  case P::where: return gg::where(s.cond, at(0), at(1));
  case P::broadcast_to: return gg::broadcast_to(at(0), Shape(n));
  case P::sum_to: return gg::sum_to(at(0), Shape(n));
  case P::matmul: return gg::matmul(at(0), at(1));
  case P::index_add:
    return gg::index_add(at(0), Shape(std::vector<std::int64_t>(n.begin() + 1, n.begin() + 1 + n[0])), s.axis,
                         std::vector<std::int64_t>(n.begin() + 1 + n[0], n.end()));
  case P::slice_scatter:
    return gg::slice_scatter(at(0), Shape(std::vector<std::int64_t>(n.begin() + 3, n.end())), s.axis, n[0],
                             n[1], n[2]);
  case P::count_: break;
  }
  return {};
}

Var run(const Program& p, const std::vector<Var>& inputs) {
  std::vector<Var> v = inputs;
  for (const Step& s : p.steps) v.push_back(apply_step(s, v));
  return v.back();
}

std::string describe(const Program& p) {
  std::string out;
  for (std::size_t i = 0; i < p.inputs.size(); ++i)
    out += fmt::format("  v{} = input {} {}\n", i, p.inputs[i].shape().str(), p.inputs[i].str());
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const Step& s = p.steps[k];
    std::vector<std::string> args;
    for (int a : s.args) args.push_back(fmt::format("v{}", a));
    out += fmt::format("  v{} = {}({}; c={} c2={} axis={},{} keepdim={} ints=[{}])\n", p.inputs.size() + k,
                       k_names[static_cast<int>(s.op)], fmt::join(args, ", "), s.c, s.c2, s.axis, s.axis2,
                       s.keepdim, fmt::join(s.ints, ","));
  }
  return out;
}

/// Builds a random program, evaluating as it goes (recording off): an op whose shapes do not fit
/// is dropped, and so is one whose result is not finite or larger than 1e3 (finite differences
/// need moderate values). Domain guards are chosen from the values here, then fixed in the program.
class Generator {
public:
  Generator(std::uint64_t seed, bool tensors) : rng_(seed), tensors_(tensors) {}

  Program make() {
    const gg::NoGrad no_grad;
    const int inputs = 1 + static_cast<int>(rng_.below(3));
    Shape base = tensors_ ? random_shape() : Shape{};
    for (int i = 0; i < inputs; ++i) {
      const Shape s = tensors_ ? variant_of(base) : Shape{};
      p_.inputs.push_back(Tensor::rand(s, rng_, gg::f64, -2, 2));
      values_.push_back(Var::constant(p_.inputs.back()));
    }
    const int steps = tensors_ ? 3 + static_cast<int>(rng_.below(8)) : 4 + static_cast<int>(rng_.below(12));
    for (int tries = 0; static_cast<int>(p_.steps.size()) < steps && tries < 200; ++tries) add_random_step();
    return std::move(p_);
  }

private:
  double uniform(double lo, double hi) { return lo + (hi - lo) * rng_.uniform(); }
  int below(std::size_t n) { return static_cast<int>(rng_.below(n)); }
  template <class T> const T& pick(const std::vector<T>& xs) { return xs[rng_.below(xs.size())]; }

  Shape random_shape() {
    std::vector<std::int64_t> d(1 + rng_.below(3));
    for (auto& x : d) x = 1 + below(3);
    return Shape(d);
  }
  /// The base shape with leading dimensions dropped and some dimensions set to 1: it broadcasts.
  Shape variant_of(const Shape& base) {
    std::vector<std::int64_t> d = base.to_vector();
    d.erase(d.begin(), d.begin() + below(d.size() + (rng_.uniform() < 0.2 ? 1 : 0)));
    for (auto& x : d)
      if (rng_.uniform() < 0.3) x = 1;
    return Shape(d);
  }

  /// An operand: the newest value half of the time (deep chains), else any (fan-out).
  int operand() {
    const int n = static_cast<int>(values_.size());
    return rng_.uniform() < 0.5 ? n - 1 : below(static_cast<std::size_t>(n));
  }
  const Tensor value(int i) const { return values_[static_cast<std::size_t>(i)].value(); }
  double min_abs(int i) const {
    const Tensor t = value(i);
    double m = INFINITY;
    for (std::int64_t k = 0; k < t.numel(); ++k) m = std::min(m, std::abs(t.flat(k)));
    return m;
  }
  double max_abs(int i) const {
    const Tensor t = value(i);
    double m = 0;
    for (std::int64_t k = 0; k < t.numel(); ++k) m = std::max(m, std::abs(t.flat(k)));
    return m;
  }
  double min_value(int i) const {
    const Tensor t = value(i);
    double m = INFINITY;
    for (std::int64_t k = 0; k < t.numel(); ++k) m = std::min(m, t.flat(k));
    return m;
  }

  /// Appends a step if it applies and gives moderate values; returns its value index or -1.
  int try_add(Step s) {
    Var r;
    try {
      r = apply_step(s, values_);
    } catch (const gg::ShapeError&) {
      return -1;
    } catch (const gg::ValueError&) {
      return -1;
    }
    const Tensor t = r.value();
    for (std::int64_t k = 0; k < t.numel(); ++k)
      if (!std::isfinite(t.flat(k)) || std::abs(t.flat(k)) > 1e3) return -1;
    p_.steps.push_back(std::move(s));
    values_.push_back(r);
    return static_cast<int>(values_.size()) - 1;
  }
  /// x itself when its values are at least `floor` (or, with magnitude, |x| >= floor); else positive(x).
  int guarded(int x, double floor, bool magnitude = false) {
    if ((magnitude ? min_abs(x) : min_value(x)) >= floor) return x;
    const int g = try_add(Step{P::positive, {x}});
    return g >= 0 ? g : x;
  }
  int axis_of(int x) {
    const int r = value(x).rank();
    return r == 0 ? 0 : below(static_cast<std::size_t>(r)) - (rng_.uniform() < 0.3 ? r : 0);
  }

  void add_random_step() {
    static const std::vector<P> scalar_ops{
        P::neg,        P::exp,   P::log,    P::sqrt,   P::abs,    P::tanh,  P::sigmoid, P::relu,
        P::leaky_relu, P::sin,   P::cos,    P::clamp,  P::square, P::pow_c, P::rpow_c,  P::add_c,
        P::mul_c,      P::div_c, P::rsub_c, P::rdiv_c, P::add,    P::sub,   P::mul,     P::div,
        P::pow,        P::add,   P::mul,    P::sub,    P::sum,    P::mean,  P::max};
    static const std::vector<P> tensor_ops = [] {
      std::vector<P> all;
      for (int k = 1; k < static_cast<int>(P::count_); ++k) all.push_back(static_cast<P>(k));
      for (P extra : {P::add, P::sub, P::mul, P::div, P::matmul, P::sum_axis, P::softmax, P::where})
        all.push_back(extra); // more binary ops and broadcasting
      return all;
    }();
    const P op = pick(tensors_ ? tensor_ops : scalar_ops);
    Step s{op, {operand()}};
    const int x = s.args[0];
    const Tensor xv = value(x);
    const int rank = xv.rank();
    switch (op) {
    case P::log:
    case P::sqrt:
    case P::pow_c: s.args[0] = guarded(x, 0.3); break;
    case P::rdiv_c: s.args[0] = guarded(x, 0.3, true); break;
    case P::exp:
    case P::rpow_c:
      if (max_abs(x) > 5) return;
      break;
    default: break;
    }
    switch (op) {
    case P::leaky_relu: s.c = uniform(0, 0.3); break;
    case P::clamp: s.c = uniform(-1, 0), s.c2 = uniform(0, 1); break;
    case P::pow_c: s.c = pick(std::vector<double>{2, 3, 0.5, -1, 1.5, -0.5}); break;
    case P::rpow_c: s.c = pick(std::vector<double>{2, 0.5, M_E}); break;
    case P::add_c:
    case P::mul_c:
    case P::rsub_c:
    case P::rdiv_c: s.c = uniform(-2, 2); break;
    case P::div_c: s.c = (rng_.uniform() < 0.5 ? -1 : 1) * uniform(0.5, 2); break;
    case P::add:
    case P::sub:
    case P::mul:
    case P::where: s.args.push_back(operand()); break;
    case P::div: s.args.push_back(guarded(operand(), 0.3, true)); break;
    case P::pow: {
      s.args[0] = guarded(x, 0.3);
      int e = operand();
      if (max_abs(e) > 3) e = try_add(Step{P::tanh, {e}});
      if (e < 0) return;
      s.args.push_back(e);
      break;
    }
    case P::sum_axis:
    case P::mean_axis:
    case P::max_axis:
    case P::logsumexp:
      if (rank == 0) return;
      s.axis = axis_of(x), s.keepdim = rng_.uniform() < 0.5;
      break;
    case P::softmax:
    case P::log_softmax:
      if (rank == 0) return;
      s.axis = axis_of(x);
      break;
    case P::transpose:
      if (rank < 2) return;
      s.axis = below(static_cast<std::size_t>(rank)), s.axis2 = below(static_cast<std::size_t>(rank));
      break;
    case P::reshape: {
      std::vector<std::int64_t> d = xv.shape().to_vector();
      switch (below(3)) {
      case 0: s.ints = {-1}; break;
      case 1: std::reverse(d.begin(), d.end()), s.ints = d; break;
      default: s.ints = {1, -1}; break;
      }
      break;
    }
    case P::slice:
    case P::select:
    case P::index_select: {
      if (rank == 0) return;
      s.axis = below(static_cast<std::size_t>(rank));
      const std::int64_t dim = xv.shape()[s.axis];
      if (op == P::slice) {
        const std::int64_t start = below(static_cast<std::size_t>(dim));
        s.ints = {start, start + 1 + below(static_cast<std::size_t>(dim - start)), 1 + below(2)};
      } else if (op == P::select) {
        s.ints = {below(static_cast<std::size_t>(dim))};
      } else {
        for (int k = 0, m = 1 + below(4); k < m; ++k) s.ints.push_back(below(static_cast<std::size_t>(dim)));
      }
      break;
    }
    case P::concat:
    case P::stack: {
      // Partners with x's shape (stack), or equal but along the axis (concat).
      s.axis = rank == 0 ? 0 : below(static_cast<std::size_t>(rank + (op == P::stack ? 1 : 0)));
      if (op == P::concat && rank == 0) return;
      std::vector<int> partners;
      for (int i = 0; i < static_cast<int>(values_.size()); ++i) {
        const Shape si = value(i).shape();
        if (si.rank() != rank) continue;
        bool fits = true;
        for (int d = 0; d < rank; ++d)
          fits = fits && (si[d] == xv.shape()[d] || (op == P::concat && d == s.axis));
        if (fits) partners.push_back(i);
      }
      for (int k = 0, m = 1 + below(2); k < m; ++k) s.args.push_back(pick(partners));
      break;
    }
    case P::broadcast_to: {
      std::vector<std::int64_t> d = xv.shape().to_vector();
      d.insert(d.begin(), 2);
      for (auto& e : d)
        if (e == 1 && rng_.uniform() < 0.5) e = 2;
      s.ints = d;
      break;
    }
    case P::sum_to: {
      std::vector<std::int64_t> d = xv.shape().to_vector();
      if (!d.empty() && rng_.uniform() < 0.5) d.erase(d.begin());
      for (auto& e : d)
        if (rng_.uniform() < 0.5) e = 1;
      s.ints = d;
      break;
    }
    case P::matmul: {
      int y = operand();
      const Shape ys = value(y).shape();
      if (rank >= 2 && ys.rank() >= 2 && ys[ys.rank() - 2] != xv.shape()[rank - 1] &&
          ys[ys.rank() - 1] == xv.shape()[rank - 1]) {
        Step t{P::transpose, {y}};
        t.axis = -2, t.axis2 = -1;
        y = try_add(std::move(t));
        if (y < 0) return;
      }
      s.args.push_back(y);
      break;
    }
    case P::index_add: {
      if (rank == 0) return;
      s.axis = below(static_cast<std::size_t>(rank));
      std::vector<std::int64_t> shape = xv.shape().to_vector();
      const std::int64_t len = shape[static_cast<std::size_t>(s.axis)];
      shape[static_cast<std::size_t>(s.axis)] = 1 + below(4);
      s.ints = {static_cast<std::int64_t>(shape.size())};
      s.ints.insert(s.ints.end(), shape.begin(), shape.end());
      for (std::int64_t k = 0; k < len; ++k)
        s.ints.push_back(below(static_cast<std::size_t>(shape[static_cast<std::size_t>(s.axis)])));
      break;
    }
    case P::slice_scatter: {
      if (rank == 0) return;
      s.axis = below(static_cast<std::size_t>(rank));
      std::vector<std::int64_t> shape = xv.shape().to_vector();
      const std::int64_t len = shape[static_cast<std::size_t>(s.axis)], start = below(2), step = 1 + below(2);
      const std::int64_t stop = start + step * (len - 1) + 1;
      shape[static_cast<std::size_t>(s.axis)] = stop + below(2);
      s.ints = {start, stop, step};
      s.ints.insert(s.ints.end(), shape.begin(), shape.end());
      break;
    }
    default: break;
    }
    if (op == P::where) {
      const Tensor a = value(s.args[0]), b = value(s.args[1]);
      const Shape big = a.rank() >= b.rank() ? a.shape() : b.shape();
      s.cond = Tensor::rand(big, rng_);
      for (std::int64_t k = 0; k < s.cond.numel(); ++k) s.cond.set_flat(k, s.cond.flat(k) < 0.5 ? 1 : 0);
    }
    try_add(std::move(s));
  }

  gg::Rng rng_;
  bool tensors_;
  Program p_;
  std::vector<Var> values_;
};

struct Tally {
  int graphs = 0, ops = 0;
  std::map<P, int> uses;
};

/// Generates and checks `count` graphs from seeds first, first + 1, ...; returns what they used.
Tally check_graphs(std::uint64_t first, int count, bool tensors) {
  Tally tally;
  for (std::uint64_t seed = first; seed < first + static_cast<std::uint64_t>(count); ++seed) {
    const Program p = Generator(seed, tensors).make();
    if (p.steps.empty()) continue;
    ++tally.graphs;
    tally.ops += static_cast<int>(p.steps.size());
    for (const Step& s : p.steps) ++tally.uses[s.op];
    const gg::GradcheckResult r =
        gg::gradcheck([&](const std::vector<Var>& xs) { return run(p, xs); }, p.inputs, {.tolerance = 1e-6});
    INFO("seed " << seed << ": " << r.message << "\nprogram:\n" << describe(p));
    CHECK(r.ok);
  }
  if (std::getenv("GG_PROPERTY_STATS")) {
    fmt::print("{} {} graphs, {} ops:", tensors ? "tensor" : "scalar", tally.graphs, tally.ops);
    for (const auto& [op, n] : tally.uses) fmt::print(" {}={}", k_names[static_cast<int>(op)], n);
    fmt::print("\n");
  }
  return tally;
}

} // namespace

TEST_CASE("property: 500 random scalar graphs agree with finite differences") {
  const Tally t = check_graphs(1, 500, false);
  CHECK(t.graphs == 500);
  CHECK(t.ops >= 4000); // deep enough to mean something
  for (const P op : {P::neg,    P::exp,        P::log, P::sqrt, P::abs,   P::tanh,  P::sigmoid,
                     P::relu,   P::leaky_relu, P::sin, P::cos,  P::clamp, P::pow_c, P::rpow_c,
                     P::rdiv_c, P::add,        P::sub, P::mul,  P::div,   P::pow}) {
    INFO(k_names[static_cast<int>(op)]);
    CHECK(t.uses.count(op) == 1);
    CHECK(t.uses.at(op) >= 20);
  }
}

TEST_CASE("property: 500 random tensor graphs with broadcasting agree with finite differences") {
  const Tally t = check_graphs(100001, 500, true);
  CHECK(t.graphs == 500);
  CHECK(t.ops >= 2500);
  for (int k = 1; k < static_cast<int>(P::count_); ++k) { // every op, and each more than a few times
    INFO(k_names[k]);
    CHECK(t.uses.count(static_cast<P>(k)) == 1);
    if (t.uses.count(static_cast<P>(k))) CHECK(t.uses.at(static_cast<P>(k)) >= 10);
  }
}
