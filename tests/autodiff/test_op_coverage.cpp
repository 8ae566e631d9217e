// Every op kind of the op list (GG_OP_LIST) has its gradient checked on each path it has: scalar
// nodes (0-d inputs become scalar leaves), tensors (broadcasting where the op broadcasts), and the
// recorded create_graph backward (first derivatives compared with backward's, second derivatives
// against finite differences). An op added to the list without a case here fails the first test.
#include <autodiff/autodiff.hpp>

#include "inputs.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

using gg::Op;
using gg::Shape;
using gg::Tensor;
using gg::Var;

namespace {
using gg::test::away_from_zero;
using gg::test::Fn;
using gg::test::rnd;
Tensor positive(const Shape& shape, std::uint64_t seed) {
  return rnd(shape, seed, 0.3, 2.0);
}
Tensor num(double v) {
  return Tensor::scalar(v);
}

/// How one op kind is checked: f records it last (its result is the op's node) from the inputs.
struct OpCase {
  Op op;
  Fn f;
  std::vector<Tensor> scalar;        ///< 0-d inputs: f on scalar leaves records a scalar node (empty: none)
  std::vector<Tensor> tensor;        ///< tensor inputs (shapes that broadcast, where the op broadcasts)
  const char* no_scalar = nullptr;   ///< why the op has no scalar nodes
  gg::GradcheckOptions options = {}; ///< finite differences (looser for float32 values)
};

const std::vector<OpCase>& op_cases() {
  const auto un = [](Var (*g)(const Var&)) { return [g](const std::vector<Var>& v) { return g(v[0]); }; };
  const auto bin = [](Var (*g)(const Var&, const Var&)) {
    return [g](const std::vector<Var>& v) { return g(v[0], v[1]); };
  };
  const char* tensor_only = "a tensor op: a scalar leaf is a one-element tensor to it";
  static const std::vector<OpCase> cases = {
      // Elementwise arithmetic: broadcasting [2, 3] against [3].
      {Op::add, bin(gg::add), {num(0.7), num(-1.3)}, {rnd({2, 3}, 1), rnd({3}, 2)}},
      {Op::sub, bin(gg::sub), {num(0.7), num(-1.3)}, {rnd({2, 3}, 3), rnd({3}, 4)}},
      {Op::mul, bin(gg::mul), {num(0.7), num(-1.3)}, {rnd({2, 3}, 5), rnd({3}, 6)}},
      {Op::div, bin(gg::div), {num(0.7), num(-1.3)}, {rnd({2, 3}, 7), away_from_zero({3}, 8)}},
      {Op::pow,
       [](const std::vector<Var>& v) { return gg::pow(v[0], v[1]); },
       {num(1.3), num(-0.6)},
       {positive({2, 3}, 9), rnd({3}, 10)}},
      {Op::neg, un(gg::neg), {num(0.4)}, {rnd({2, 3}, 11)}},
      // With a number: x + c, c·x, x / c, c − x, c / x, x^c, c^x.
      {Op::add_c, [](const std::vector<Var>& v) { return v[0] - 3.0; }, {num(0.4)}, {rnd({2, 3}, 12)}},
      {Op::mul_c, [](const std::vector<Var>& v) { return 2.5 * v[0]; }, {num(0.4)}, {rnd({2, 3}, 13)}},
      {Op::div_c, [](const std::vector<Var>& v) { return v[0] / 4.0; }, {num(0.4)}, {rnd({2, 3}, 14)}},
      {Op::rsub_c, [](const std::vector<Var>& v) { return 1.5 - v[0]; }, {num(0.4)}, {rnd({2, 3}, 15)}},
      {Op::rdiv_c, [](const std::vector<Var>& v) { return 2.0 / v[0]; }, {num(0.8)}, {positive({2, 3}, 16)}},
      {Op::pow_c,
       [](const std::vector<Var>& v) { return gg::pow(v[0], 3.0); },
       {num(-0.8)},
       {rnd({2, 3}, 17)}},
      {Op::rpow_c,
       [](const std::vector<Var>& v) { return gg::pow(2.0, v[0]); },
       {num(-0.8)},
       {rnd({2, 3}, 18)}},
      // Functions of one input.
      {Op::exp, un(gg::exp), {num(0.4)}, {rnd({2, 3}, 19)}},
      {Op::log, un(gg::log), {num(0.8)}, {positive({2, 3}, 20)}},
      {Op::sqrt, un(gg::sqrt), {num(0.8)}, {positive({2, 3}, 21)}},
      {Op::abs, un(gg::abs), {num(-0.4)}, {away_from_zero({2, 3}, 22)}},
      {Op::tanh, un(gg::tanh), {num(0.4)}, {rnd({2, 3}, 23)}},
      {Op::sigmoid, un(gg::sigmoid), {num(0.4)}, {rnd({2, 3}, 24)}},
      {Op::relu, un(gg::relu), {num(0.4)}, {away_from_zero({2, 3}, 25)}},
      {Op::leaky_relu,
       [](const std::vector<Var>& v) { return gg::leaky_relu(v[0], 0.1); },
       {num(-0.4)},
       {away_from_zero({2, 3}, 26)}},
      {Op::sin, un(gg::sin), {num(0.4)}, {rnd({2, 3}, 27)}},
      {Op::cos, un(gg::cos), {num(0.4)}, {rnd({2, 3}, 28)}},
      {Op::erf, un(gg::erf), {num(0.4)}, {rnd({2, 3}, 65, -2, 2)}},
      {Op::gelu,
       [](const std::vector<Var>& v) { return gg::gelu(v[0]); },
       {num(-0.4)},
       {rnd({2, 3}, 66, -3, 3)}},
      {Op::gelu_tanh,
       [](const std::vector<Var>& v) { return gg::gelu(v[0], "tanh"); },
       {num(-0.4)},
       {rnd({2, 3}, 67, -3, 3)}},
      {Op::clamp, // inputs 0.05 or more away from the bounds
       [](const std::vector<Var>& v) { return gg::clamp(v[0], -0.5, 0.5); },
       {num(0.3)},
       {Tensor({-1.2, -0.3, 0.1, 0.4, 0.8, -0.9}, {2, 3})}},
      // Reductions: a scalar node's passes its value through.
      {Op::sum, un(gg::sum), {num(0.4)}, {rnd({2, 3}, 29)}},
      {Op::sum_axis,
       [](const std::vector<Var>& v) { return gg::sum(v[0], 0); },
       {},
       {rnd({2, 3}, 30)},
       tensor_only},
      {Op::mean, un(gg::mean), {num(0.4)}, {rnd({2, 3}, 31)}},
      {Op::mean_axis,
       [](const std::vector<Var>& v) { return gg::mean(v[0], -1, true); },
       {},
       {rnd({2, 3}, 32)},
       tensor_only},
      {Op::max, un(gg::max), {num(0.4)}, {rnd({2, 3}, 33)}},
      {Op::max_axis,
       [](const std::vector<Var>& v) { return gg::max(v[0], 1); },
       {},
       {rnd({2, 3}, 34)},
       tensor_only},
      // Linear algebra, convolution and pooling (batched matmul broadcasts its leading dimensions).
      {Op::matmul, bin(gg::matmul), {}, {rnd({2, 2, 3}, 35), rnd({3, 2}, 36)}, tensor_only},
      {Op::linear,
       [](const std::vector<Var>& v) { return gg::linear(v[0], v[1], v[2]); },
       {},
       {rnd({2, 3}, 37), rnd({2, 3}, 38), rnd({2}, 39)},
       tensor_only},
      {Op::conv2d,
       [](const std::vector<Var>& v) { return gg::conv2d(v[0], v[1], v[2], 1, 1); },
       {},
       {rnd({1, 2, 3, 3}, 40), rnd({2, 2, 2, 2}, 41), rnd({2}, 42)},
       tensor_only},
      {Op::max_pool2d,
       [](const std::vector<Var>& v) { return gg::max_pool2d(v[0], 2, 1); },
       {},
       {rnd({1, 2, 3, 3}, 43)},
       tensor_only},
      // Shape and indexing.
      {Op::transpose,
       [](const std::vector<Var>& v) { return gg::transpose(v[0]); },
       {},
       {rnd({2, 3}, 44)},
       tensor_only},
      {Op::reshape,
       [](const std::vector<Var>& v) { return gg::reshape(v[0], {3, -1}); },
       {},
       {rnd({2, 3}, 45)},
       tensor_only},
      {Op::slice,
       [](const std::vector<Var>& v) { return gg::slice(v[0], 1, 0, 3, 2); },
       {},
       {rnd({2, 3}, 46)},
       tensor_only},
      {Op::slice_scatter,
       [](const std::vector<Var>& v) { return gg::slice_scatter(v[0], {2, 4}, 1, 1, 4, 2); },
       {},
       {rnd({2, 2}, 47)},
       tensor_only},
      {Op::index_select,
       [](const std::vector<Var>& v) { return gg::index_select(v[0], 0, {1, 0, 1}); },
       {},
       {rnd({2, 3}, 48)},
       tensor_only},
      {Op::index_add,
       [](const std::vector<Var>& v) { return gg::index_add(v[0], {2, 3}, 0, {1, 0, 1}); },
       {},
       {rnd({3, 3}, 49)},
       tensor_only},
      {Op::concat,
       [](const std::vector<Var>& v) { return gg::concat({v[0], v[1]}, 1); },
       {},
       {rnd({2, 3}, 50), rnd({2, 1}, 51)},
       tensor_only},
      {Op::stack,
       [](const std::vector<Var>& v) { return gg::stack({v[0], v[1]}, 1); },
       {},
       {rnd({2, 3}, 52), rnd({2, 3}, 53)},
       tensor_only},
      {Op::where, // cond [2, 1], a [3], b [2, 3]: all three broadcast
       [](const std::vector<Var>& v) {
         return gg::where(Tensor({1.0, 0.0}, {2, 1}), v[0], v[1]);
       },
       {},
       {rnd({3}, 54), rnd({2, 3}, 55)},
       tensor_only},
      // Softmax family.
      {Op::softmax, un([](const Var& x) { return gg::softmax(x); }), {}, {rnd({2, 3}, 56)}, tensor_only},
      {Op::log_softmax,
       [](const std::vector<Var>& v) { return gg::log_softmax(v[0], 0); },
       {},
       {rnd({2, 3}, 57)},
       tensor_only},
      {Op::logsumexp,
       [](const std::vector<Var>& v) { return gg::logsumexp(v[0], 1, true); },
       {},
       {rnd({2, 3}, 58)},
       tensor_only},
      // Sequence models: masks, running sums, dropout (its mask drawn from a fixed seed every call).
      {Op::tril,
       [](const std::vector<Var>& v) { return gg::tril(v[0], -1); },
       {},
       {rnd({2, 3, 4}, 68)},
       tensor_only},
      {Op::triu,
       [](const std::vector<Var>& v) { return gg::triu(v[0], 1); },
       {},
       {rnd({3, 4}, 69)},
       tensor_only},
      {Op::masked_fill, // x [3] against a mask [2, 3]: the gradient sums over the broadcast rows
       [](const std::vector<Var>& v) { return gg::masked_fill(v[0], Tensor({1, 0, 0, 0, 1, 0}, {2, 3}), -2); },
       {},
       {rnd({3}, 70)},
       tensor_only},
      {Op::cumsum,
       [](const std::vector<Var>& v) { return gg::cumsum(v[0], 1); },
       {},
       {rnd({2, 3}, 71)},
       tensor_only},
      {Op::dropout,
       [](const std::vector<Var>& v) {
         gg::Rng rng(7);
         return gg::dropout(v[0], 0.4, true, rng);
       },
       {},
       {rnd({2, 3}, 72)},
       tensor_only},
      {Op::layer_norm, // over the last two dimensions, with weight and bias
       [](const std::vector<Var>& v) { return gg::layer_norm(v[0], {2, 3}, v[1], v[2], 1e-5); },
       {},
       {rnd({2, 2, 3}, 73), rnd({2, 3}, 74, 0.5, 1.5), rnd({2, 3}, 75)},
       tensor_only},
      {Op::lstm_cell, // h' (its node), through c' (the other part of the cell)
       [](const std::vector<Var>& v) { return gg::lstm_cell(v[0], v[1]).first; },
       {},
       {rnd({2, 12}, 79), rnd({2, 3}, 80)},
       tensor_only},
      {Op::lstm_layer, // the node itself (each step's h and the last c), backwards in time
       [](const std::vector<Var>& v) {
         return gg::lstm_layer(v[0], v[1], v[2], v[3], v[4], v[5], v[6], true).output.inputs()[0];
       },
       {},
       {rnd({3, 2, 3}, 120), rnd({2, 2}, 121), rnd({2, 2}, 122), rnd({8, 3}, 123), rnd({8, 2}, 124),
        rnd({8}, 125), rnd({8}, 126)},
       tensor_only},
      {Op::gru_layer, // backwards in time
       [](const std::vector<Var>& v) { return gg::gru_layer(v[0], v[1], v[2], v[3], v[4], v[5], true).output; },
       {},
       {rnd({3, 2, 3}, 127), rnd({2, 2}, 128), rnd({6, 3}, 129), rnd({6, 2}, 130), rnd({6}, 131), rnd({6}, 132)},
       tensor_only},
      {Op::rnn_layer, // tanh, forwards in time
       [](const std::vector<Var>& v) { return gg::rnn_layer(v[0], v[1], v[2], v[3], v[4], v[5]).output; },
       {},
       {rnd({3, 2, 3}, 133), rnd({2, 2}, 134), rnd({2, 3}, 135), rnd({2, 2}, 136), rnd({2}, 137), rnd({2}, 138)},
       tensor_only},
      {Op::scaled_dot_product_attention, // with a boolean mask (each query attends to some key)
       [](const std::vector<Var>& v) {
         const Tensor allowed({1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1}, {3, 5});
         return gg::scaled_dot_product_attention(v[0], v[1], v[2], gg::AttentionMask::boolean(allowed));
       },
       {},
       {rnd({2, 3, 4}, 76), rnd({2, 5, 4}, 77), rnd({2, 5, 3}, 78)},
       tensor_only},
      {Op::packed_self_attention, // two heads of width 2 over 3 positions, causal
       [](const std::vector<Var>& v) { return gg::packed_self_attention(v[0], 2, true); },
       {},
       {rnd({2, 3, 12}, 127)},
       tensor_only},
      // Adjoints and conversions.
      {Op::broadcast_to,
       [](const std::vector<Var>& v) { return gg::broadcast_to(v[0], {2, 3}); },
       {},
       {rnd({3}, 59)},
       tensor_only},
      {Op::sum_to,
       [](const std::vector<Var>& v) { return gg::sum_to(v[0], {1, 3}); },
       {},
       {rnd({2, 3}, 60)},
       tensor_only},
      {Op::unfold,
       [](const std::vector<Var>& v) { return gg::unfold(v[0], 2, 2, 1, 1); },
       {},
       {rnd({1, 2, 3, 3}, 61)},
       tensor_only},
      {Op::fold,
       [](const std::vector<Var>& v) { return gg::fold(v[0], {1, 2, 3, 3}, 2, 2, 1, 1); },
       {},
       {rnd({1, 8, 16}, 62)},
       tensor_only},
      {Op::to, // float32 values: finite differences with a step float32 resolves (the map is linear)
       [](const std::vector<Var>& v) { return gg::to(v[0], gg::f32); },
       {},
       {rnd({2, 3}, 63)},
       "a scalar Var is float64 and converts to a 0-d float32 tensor",
       {.eps = 1e-2, .tolerance = 1e-5}},
      // Parity with PyTorch (issue 13).
      {Op::binary_cross_entropy, // probabilities inside (0, 1) against targets in [0, 1]
       bin(gg::binary_cross_entropy),
       {num(0.3), num(0.8)},
       {rnd({2, 3}, 68, 0.1, 0.9), rnd({3}, 69, 0, 1)}},
      {Op::maximum, bin(gg::maximum), {num(0.7), num(-1.3)}, {rnd({2, 3}, 70), rnd({3}, 71)}},
      {Op::minimum, bin(gg::minimum), {num(0.7), num(-1.3)}, {rnd({2, 3}, 72), rnd({3}, 73)}},
      {Op::softplus, // beta 2, threshold 1.5: inputs on both sides, away from beta*x = 1.5
       [](const std::vector<Var>& v) { return gg::softplus(v[0], 2, 1.5); },
       {num(-0.4)},
       {Tensor({-2.0, -0.3, 0.1, 0.5, 0.9, 2.0}, {2, 3})}},
      {Op::min, un(gg::min), {num(0.4)}, {rnd({2, 3}, 74)}},
      {Op::min_axis,
       [](const std::vector<Var>& v) { return gg::min(v[0], 1); },
       {},
       {rnd({2, 3}, 75)},
       tensor_only},
      {Op::amax_axis,
       [](const std::vector<Var>& v) { return gg::amax(v[0], 1); },
       {},
       {rnd({2, 3}, 76)},
       tensor_only},
      {Op::amin_axis,
       [](const std::vector<Var>& v) { return gg::amin(v[0], 0, true); },
       {},
       {rnd({2, 3}, 77)},
       tensor_only},
      // Losses as one node: broadcasting [2, 3] against [3] (the mean), [3, 1] against [3] (none), and
      // equal shapes (the sum); the target requires grad too. Scalars record a scalar node, (a - b)^2.
      {Op::mse_loss,
       [](const std::vector<Var>& v) { return gg::mse_loss(v[0], v[1]); },
       {num(0.7), num(-1.3)},
       {rnd({2, 3}, 78), rnd({3}, 79)}},
      {Op::mse_loss,
       [](const std::vector<Var>& v) { return gg::mse_loss(v[0], v[1], gg::Reduction::none); },
       {num(-0.2), num(0.9)},
       {rnd({3, 1}, 80), rnd({3}, 81)}},
      {Op::mse_loss,
       [](const std::vector<Var>& v) { return gg::mse_loss(v[0], v[1], gg::Reduction::sum); },
       {num(1.1), num(0.4)},
       {rnd({2, 3}, 82), rnd({2, 3}, 83)}},
      // A gg::Function.
      {Op::custom,
       [](const std::vector<Var>& v) { return gg::apply(std::make_shared<gg::test::Cube>(), {v[0]}); },
       {},
       {rnd({2, 3}, 64)},
       "a gg::Function computes on tensors"},
  };
  return cases;
}

/// f's gradient recorded with create_graph, as one flat Var: what a second derivative differentiates.
Fn recorded_gradient(const Fn& f) {
  return [f](const std::vector<Var>& v) {
    const Var y = f(v);
    const Var loss = gg::sum(y * y); // not linear in y, so that the recorded rule itself is differentiated
    std::vector<Var> flat;
    for (const Var& g : gg::grad({loss}, v, {}, {.create_graph = true}))
      flat.push_back(gg::reshape(gg::to(g, gg::f64), {-1}));
    return flat.size() == 1 ? flat[0] : gg::concat(flat);
  };
}

void check(const char* what, const Fn& f, const std::vector<Tensor>& inputs, gg::GradcheckOptions options) {
  INFO(what);
  const gg::GradcheckResult r = gg::gradcheck(f, inputs, options); // also compares create_graph's
  INFO(r.message);
  CHECK(r.ok);
}

/// Whether the case's function records its op last (on fresh leaves from inputs).
bool records(const OpCase& c, const std::vector<Tensor>& inputs, bool scalar) {
  std::vector<Var> v;
  for (const Tensor& x : inputs) v.push_back(scalar ? Var(x.item()) : Var(x.clone(), true));
  const Var y = c.f(v);
  return y.op() == c.op && y.is_scalar_node() == scalar;
}

} // namespace

TEST_CASE("op coverage: every op of the op list has a gradient check on each of its paths") {
  std::map<Op, const OpCase*> by_op;
  for (const OpCase& c : op_cases()) by_op.emplace(c.op, &c);
  for (int i = 0; i < static_cast<int>(Op::count_); ++i) {
    const Op op = static_cast<Op>(i);
    if (op == Op::leaf) continue; // not an op: values made directly
    const std::string name(gg::op_name(op));
    INFO("op " << name);
    const auto it = by_op.find(op);
    if (it == by_op.end()) {
      FAIL_CHECK("op " << name << " has no case in op_cases() (tests/autodiff/test_op_coverage.cpp)");
      continue;
    }
    const OpCase& c = *it->second;
    CHECK(!c.tensor.empty());
    CHECK((!c.scalar.empty() || c.no_scalar)); // scalar nodes checked, or a reason why it has none
    CHECK(records(c, c.tensor, false));
    if (!c.scalar.empty()) CHECK(records(c, c.scalar, true));
    // The rows that say they broadcast get inputs of different shapes.
    if (gg::op_info(op).value.find("broadcasting") != std::string_view::npos)
      CHECK(!(c.tensor[0].shape() == c.tensor[1].shape()));
  }
}

TEST_CASE("op coverage: gradients of every op against finite differences, on scalars and tensors") {
  for (const OpCase& c : op_cases()) {
    INFO("op " << gg::op_name(c.op));
    if (!c.scalar.empty()) check("scalar", c.f, c.scalar, c.options);
    check("tensor", c.f, c.tensor, c.options);
  }
}

TEST_CASE("op coverage: second derivatives of every op through its recorded (create_graph) rule") {
  for (const OpCase& c : op_cases()) {
    INFO("op " << gg::op_name(c.op));
    const Fn g = recorded_gradient(c.f);
    if (!c.scalar.empty()) check("scalar", g, c.scalar, c.options);
    check("tensor", g, c.tensor, c.options);
  }
}
