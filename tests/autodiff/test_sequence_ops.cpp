// The sequence-model ops against PyTorch's values and gradients (data/sequence_ops_reference.txt,
// written by data/make_sequence_ops_reference.py): argmax, tril, triu, masked_fill, cumsum, split and
// chunk, scaled_dot_product_attention; layer_norm and lstm_cell (with finite differences); the
// whole-layer LSTM, GRU and RNN ops against the cells' steps; dropout and multinomial by their
// statistics (their random streams are our generator's); and the errors bad input raises, naming the
// op and the shapes.
#include <autodiff/autodiff.hpp>

#include "inputs.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

using gg::Tensor;
using gg::Var;

namespace {
const std::map<std::string, Tensor>& reference() {
  static const auto ref = gg::test::read_reference("sequence_ops_reference.txt");
  return ref;
}
const Tensor& expected(const std::string& name) {
  INFO("reference tensor " << name);
  REQUIRE(reference().count(name) == 1);
  return reference().at(name);
}
/// max |a - b| / max(1, |b|), NaN equal to NaN; shapes must agree.
double worst(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double w = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.flat(i), y = b.flat(i);
    if (std::isnan(x) && std::isnan(y)) continue;
    if (x == y) continue; // equal infinities
    w = std::max(w, std::isnan(x - y) ? INFINITY : std::fabs(x - y) / std::max(1.0, std::fabs(y)));
  }
  return w;
}
/// Checks f's value and its gradient d sum(w * f(x)) / dx against reference `name`, on backward's
/// fast path and on the recorded (create_graph) rule.
void check_against(const std::string& name, const std::function<Var(const Var&)>& f, const Tensor& x,
                   double tolerance = 1e-15) {
  INFO(name);
  const Var v(x.clone(), true);
  const Var y = f(v);
  CHECK(worst(y.value(), expected(name + ".value")) <= tolerance);
  gg::sum(y * Var::constant(expected(name + ".w").to(x.dtype()))).backward();
  CHECK(worst(v.grad(), expected(name + ".grad")) <= tolerance);
  const Var u(x.clone(), true);
  const Var g = gg::grad({gg::sum(f(u) * Var::constant(expected(name + ".w").to(x.dtype())))}, {u}, {},
                         {.create_graph = true})[0];
  CHECK(worst(g.value(), expected(name + ".grad")) <= tolerance);
}
} // namespace

TEST_CASE("sequence ops: argmax equals PyTorch's (first index on ties, NaN largest) without a gradient") {
  const Var x(expected("argmax.x"), true);
  CHECK(worst(gg::argmax(x, 0).value(), expected("argmax.dim0")) == 0);
  CHECK(worst(gg::argmax(x, 1).value(), expected("argmax.dim1")) == 0);
  CHECK(worst(gg::argmax(x, -1, true).value(), expected("argmax.dim1_keepdim")) == 0);
  CHECK(worst(gg::argmax(x).value(), expected("argmax.flat")) == 0);
  CHECK(worst(gg::argmax(gg::slice(x, 0, 2, 3)).value(), expected("argmax.flat_no_nan")) == 0);
  CHECK(!gg::argmax(x, 0).requires_grad());
  CHECK(gg::argmax(Var(Tensor::scalar(5.0)), 0).value().rank() == 0); // a 0-d tensor has one implicit axis
  CHECK_THROWS_WITH(gg::argmax(x, 2), Catch::Contains("argmax"));
  CHECK_THROWS_WITH(gg::argmax(Var(Tensor::zeros({2, 0}))),
                    Catch::Contains("argmax") && Catch::Contains("[2, 0]"));
}

TEST_CASE("sequence ops: tril and triu equal PyTorch's values and gradients for any diagonal") {
  const Tensor x = expected("tri.x");
  for (const int d : {-1, 0, 2, -5, 5}) {
    check_against(
        "tril." + std::to_string(d), [d](const Var& v) { return gg::tril(v, d); }, x);
    check_against(
        "triu." + std::to_string(d), [d](const Var& v) { return gg::triu(v, d); }, x);
  }
  CHECK_THROWS_WITH(gg::tril(Var(Tensor::zeros({3}))), Catch::Contains("tril") && Catch::Contains("[3]"));
  CHECK_THROWS_WITH(gg::triu(Var(3.0)), Catch::Contains("triu") && Catch::Contains("[]"));
}

TEST_CASE("sequence ops: masked_fill broadcasts as PyTorch's, and no gradient reaches the filled places") {
  const Tensor mask = expected("masked_fill.mask"), mask2 = expected("masked_fill2.mask");
  check_against(
      "masked_fill", [&](const Var& v) { return gg::masked_fill(v, mask, -2.5); }, expected("masked_fill.x"));
  check_against(
      "masked_fill2", [&](const Var& v) { return gg::exp(gg::masked_fill(v, mask2, -INFINITY)); },
      expected("masked_fill2.x"));
  const Var x(Tensor::zeros({2, 3}));
  CHECK_THROWS_WITH(gg::masked_fill(x, Tensor::zeros({4}), 1),
                    Catch::Contains("masked_fill") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  // An additive mask (-inf where masked) passed where a bool mask goes: named, with both shapes.
  CHECK_THROWS_WITH(gg::masked_fill(x, Tensor({0, -INFINITY, 0}, {3}), 1),
                    Catch::Contains("masked_fill") && Catch::Contains("0 and 1") && Catch::Contains("[3]"));
}

TEST_CASE("sequence ops: cumsum equals PyTorch's along every axis, in float64 and float32") {
  const Tensor x = expected("cumsum.x");
  for (const int d : {0, 1, -1})
    check_against(
        "cumsum." + std::to_string(d), [d](const Var& v) { return gg::cumsum(v, d); }, x);
  check_against(
      "cumsum_f32.1", [](const Var& v) { return gg::cumsum(v, 1); }, x.to(gg::f32), 1e-6);
  const Var s(Tensor::scalar(2.5));
  CHECK(gg::cumsum(s, 0).item() == 2.5);
  CHECK_THROWS_WITH(gg::cumsum(Var(x), 2), Catch::Contains("cumsum"));
}

TEST_CASE("sequence ops: split and chunk cut the pieces PyTorch cuts, and the gradient reaches the input") {
  for (const int n : {0, 1, 6, 7, 10}) {
    const Var x(Tensor::zeros({2, n}));
    for (const int k : {1, 3, 4}) {
      INFO("n " << n << ", k " << k);
      const auto sizes = [](const std::vector<Var>& parts) {
        std::vector<double> s;
        for (const Var& p : parts) s.push_back(static_cast<double>(p.shape()[1]));
        return s;
      };
      CHECK(sizes(gg::split(x, k, 1)) ==
            expected("split." + std::to_string(n) + "." + std::to_string(k)).to_vector());
      CHECK(sizes(gg::chunk(x, k, -1)) ==
            expected("chunk." + std::to_string(n) + "." + std::to_string(k)).to_vector());
    }
  }
  // Each piece's gradient lands in its part of the input.
  const Var x(Tensor::arange(0, 7), true);
  const std::vector<Var> parts = gg::split(x, {2, 5});
  REQUIRE(parts.size() == 2);
  CHECK(parts[1].value().to_vector() == std::vector<double>{2, 3, 4, 5, 6});
  (gg::sum(parts[0]) * 2.0 + gg::sum(parts[1]) * 3.0).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{2, 2, 3, 3, 3, 3, 3});
  CHECK_THROWS_WITH(gg::split(x, {2, 4}), Catch::Contains("split") && Catch::Contains("[7]"));
  CHECK_THROWS_WITH(gg::split(x, 0), Catch::Contains("split") && Catch::Contains("[7]"));
  CHECK_THROWS_WITH(gg::chunk(x, 0), Catch::Contains("chunk") && Catch::Contains("[7]"));
  CHECK_THROWS_WITH(gg::split(Var(1.0), 1), Catch::Contains("split"));
}

TEST_CASE(
    "sequence ops: dropout zeroes a fraction p, scales the rest by 1/(1-p), and its gradient is its mask") {
  gg::Rng rng(3);
  const Var x(Tensor::ones({100, 100}), true);
  const Var y = gg::dropout(x, 0.3, true, rng);
  CHECK(y.op_name() == "dropout");
  std::int64_t zeros = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    const double v = y.value().flat(i);
    zeros += v == 0;
    if (v != 0) CHECK(v == Approx(1 / 0.7).epsilon(1e-15));
  }
  CHECK(std::abs(static_cast<double>(zeros) / 10000 - 0.3) < 0.02);
  gg::sum(y).backward();
  CHECK(worst(x.grad(), y.value()) == 0); // d y / d x is the mask, the input being ones
  // The same seed draws the same mask; not training (or p = 0) passes x itself through.
  gg::Rng again(3);
  CHECK(worst(gg::dropout(x, 0.3, true, again).value(), y.value()) == 0);
  CHECK(gg::dropout(x, 0.3, false, rng).node() == x.node());
  CHECK(gg::dropout(x, 0.0, true, rng).node() == x.node());
  CHECK(gg::max(gg::abs(gg::dropout(x, 1.0, true, rng))).item() == 0);
  const Var f(Tensor::ones({4}, gg::f32), true);
  CHECK(gg::dropout(f, 0.5, true, rng).dtype() == gg::f32);
  CHECK_THROWS_WITH(gg::dropout(x, 1.5, true, rng), Catch::Contains("dropout") && Catch::Contains("1.5"));
  CHECK_THROWS_WITH(gg::dropout(x, -0.1, true, rng), Catch::Contains("dropout"));
}

TEST_CASE("sequence ops: multinomial draws each category by its weight, rows independently") {
  gg::Rng rng(11);
  const std::vector<double> p = {0.1, 0, 0.6, 0.3};
  const Var probs(Tensor(p, {4}) * 5.0); // weights need not add up to 1
  const Var draws = gg::multinomial(probs, 20000, true, rng);
  CHECK(draws.shape() == gg::Shape{20000});
  CHECK(!draws.requires_grad());
  std::vector<double> count(4);
  for (double d : draws.value().to_vector()) count[static_cast<std::size_t>(d)] += 1;
  CHECK(count[1] == 0); // a category of weight 0 is never drawn
  for (std::size_t k = 0; k < 4; ++k) CHECK(std::abs(count[k] / 20000 - p[k]) < 0.015);
  // Rows independently: each row's one possible category.
  const Var rows = gg::multinomial(Var(Tensor({0, 1, 0, 2, 0, 0}, {2, 3})), 5, true, rng);
  CHECK(rows.shape() == gg::Shape{2, 5});
  CHECK(rows.value().to_vector() == std::vector<double>{1, 1, 1, 1, 1, 0, 0, 0, 0, 0});
  // Without replacement: distinct categories, weights 0 last; the first draw follows the weights.
  double first_is_3 = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::vector<double> d =
        gg::multinomial(Var(Tensor({0, 1, 0, 3}, {4})), 3, false, rng).value().to_vector();
    CHECK(std::set<double>(d.begin(), d.end()).size() == 3);
    CHECK(std::set<double>(d.begin(), d.begin() + 2) == std::set<double>{1, 3});
    first_is_3 += d[0] == 3;
  }
  CHECK(std::abs(first_is_3 / 4000 - 0.75) < 0.03);
  // The same seed, the same draws.
  gg::Rng a(5), b(5);
  CHECK(gg::multinomial(probs, 50, true, a).value().to_vector() ==
        gg::multinomial(probs, 50, true, b).value().to_vector());
}

TEST_CASE("sequence ops: multinomial refuses what PyTorch refuses, naming the op and the shape") {
  gg::Rng rng(1);
  const auto refused = [&](const Tensor& probs, std::int64_t n, bool replacement, const std::string& what) {
    INFO(what);
    CHECK_THROWS_WITH(gg::multinomial(Var(probs), n, replacement, rng),
                      Catch::Contains("multinomial") && Catch::Contains(what) &&
                          Catch::Contains(probs.shape().str()));
  };
  refused(Tensor({-1, 2}, {2}), 1, true, "non-negative");
  refused(Tensor({NAN, 1}, {2}), 1, true, "non-negative");
  refused(Tensor({INFINITY, 1}, {2}), 1, true, "finite");
  refused(Tensor({1, 1, 0, 0}, {2, 2}), 1, true, "row 1 add up to 0");
  refused(Tensor({1, 1}, {2}), 3, false, "without replacement");
  refused(Tensor({1, 1}, {2}), 0, true, "num_samples");
  refused(Tensor::ones({2, 2, 2}), 1, true, "2-d");
  refused(Tensor::ones({2, 0}), 1, true, "no categories");
}

TEST_CASE("layer_norm: with and without weight and bias, first and second derivatives against finite "
          "differences") {
  using Fn = gg::test::Fn;
  const Tensor x = gg::test::rnd({3, 4}, 80), w = gg::test::rnd({4}, 81, 0.5, 1.5),
               b = gg::test::rnd({4}, 82);
  const std::vector<std::pair<Fn, std::vector<Tensor>>> cases = {
      {[](const std::vector<Var>& v) { return gg::layer_norm(v[0], {4}); }, {x}},
      {[](const std::vector<Var>& v) { return gg::layer_norm(v[0], {4}, v[1]); }, {x, w}},
      {[](const std::vector<Var>& v) { return gg::layer_norm(v[0], {4}, Var(), v[1], 0.1); }, {x, b}},
      {[](const std::vector<Var>& v) {
         return gg::layer_norm(v[0], {3, 4}, Var(), Var(), 0);
       },
       {x}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Fn f = cases[i].first;
    const std::vector<Tensor>& inputs = cases[i].second;
    const gg::GradcheckResult first = gg::gradcheck(f, inputs);
    INFO(first.message);
    CHECK(first.ok);
    const Fn gradient = [f](const std::vector<Var>& v) { // the recorded gradient, differentiated again
      const Var y = f(v);
      std::vector<Var> flat;
      for (const Var& g : gg::grad({gg::sum(y * y * y)}, v, {}, {.create_graph = true}))
        flat.push_back(gg::reshape(g, {-1}));
      return gg::concat(flat);
    };
    const gg::GradcheckResult second = gg::gradcheck(gradient, inputs);
    INFO(second.message);
    CHECK(second.ok);
  }
  // Each row normalised: mean 0, biased variance 1 (eps 0).
  const Var y = gg::layer_norm(Var(x), {4}, Var(), Var(), 0);
  CHECK(gg::max(gg::abs(gg::mean(y, 1))).item() < 1e-15);
  CHECK(gg::max(gg::abs(gg::mean(y * y, 1) - 1.0)).item() < 1e-14);
  CHECK(y.op_name() == "layer_norm");
}

TEST_CASE(
    "lstm_cell: the composed cell's values and first and second derivatives against finite differences") {
  using Fn = gg::test::Fn;
  const Tensor gates = gg::test::rnd({3, 8}, 83, -3, 3), c = gg::test::rnd({3, 2}, 84);
  const Var gv(gates, true), cv(c, true);
  const auto [h, c_next] = gg::lstm_cell(gv, cv);
  const auto gate = [&](int k) { return gg::slice(gv, -1, 2 * k, 2 * k + 2); };
  const Var c_ref = gg::sigmoid(gate(1)) * cv + gg::sigmoid(gate(0)) * gg::tanh(gate(2));
  CHECK(worst(c_next.value(), c_ref.value()) <= 1e-15);
  CHECK(worst(h.value(), (gg::sigmoid(gate(3)) * gg::tanh(c_ref)).value()) <= 1e-15);
  const std::vector<Fn> parts = {[](const std::vector<Var>& v) { return gg::lstm_cell(v[0], v[1]).first; },
                                 [](const std::vector<Var>& v) { return gg::lstm_cell(v[0], v[1]).second; }};
  for (const Fn& f : parts) {
    const gg::GradcheckResult first = gg::gradcheck(f, {gates, c});
    INFO(first.message);
    CHECK(first.ok);
    const Fn gradient = [f](const std::vector<Var>& v) {
      std::vector<Var> flat;
      for (const Var& g : gg::grad({gg::sum(f(v) * f(v) * f(v))}, v, {}, {.create_graph = true}))
        flat.push_back(gg::reshape(g, {-1}));
      return gg::concat(flat);
    };
    const gg::GradcheckResult second = gg::gradcheck(gradient, {gates, c});
    INFO(second.message);
    CHECK(second.ok);
  }
  CHECK(h.op_name() == "lstm_cell");
}

TEST_CASE("lstm_cell: gates and cell state that do not fit name the op and both shapes") {
  CHECK_THROWS_WITH(gg::lstm_cell(Var(Tensor::ones({2, 7})), Var(Tensor::ones({2, 2}))),
                    Catch::Contains("lstm_cell") && Catch::Contains("[2, 7]") && Catch::Contains("[2, 2]"));
  CHECK_THROWS_WITH(gg::lstm_cell(Var(Tensor::ones({3, 8})), Var(Tensor::ones({2, 2}))),
                    Catch::Contains("lstm_cell") && Catch::Contains("[3, 8]"));
  CHECK_THROWS_WITH(gg::lstm_cell(Var(Tensor::ones({2, 8}, gg::f32)), Var(Tensor::ones({2, 2}))),
                    Catch::Contains("lstm_cell: the gates are float32"));
}

TEST_CASE("lstm_layer: equals lstm_cell steps in values and every gradient in both directions") {
  const std::int64_t steps = 4, batch = 3, in = 5, h = 2;
  for (const gg::DType dtype : {gg::f64, gg::f32})
    for (const bool reverse : {false, true})
      for (const bool bias : {true, false}) {
        INFO(gg::dtype_name(dtype) << (reverse ? " reverse" : " forward") << (bias ? " with" : " without")
                                   << " biases");
        std::vector<Var> v;
        std::uint64_t seed = 90;
        for (const gg::Shape& s : std::vector<gg::Shape>{
                 {steps, batch, in}, {batch, h}, {batch, h}, {4 * h, in}, {4 * h, h}, {4 * h}, {4 * h}})
          v.emplace_back(gg::test::rnd(s, seed++, -1.5, 1.5).to(dtype), true);
        const Var b_ih = bias ? v[5] : Var(), b_hh = bias ? v[6] : Var();
        const gg::LSTMLayer r = gg::lstm_layer(v[0], v[1], v[2], v[3], v[4], b_ih, b_hh, reverse);
        CHECK(r.output.inputs()[0].op_name() == "lstm_layer");
        // The same layer from the ops, step by step.
        std::vector<Var> hs(steps);
        Var hp = v[1], cp = v[2];
        for (std::int64_t k = 0; k < steps; ++k) {
          const std::int64_t t = reverse ? steps - 1 - k : k;
          auto [hn, cn] =
              gg::lstm_cell(gg::linear(gg::select(v[0], 0, t), v[3], b_ih) + gg::linear(hp, v[4], b_hh), cp);
          hs[static_cast<std::size_t>(t)] = hp = hn;
          cp = cn;
        }
        const Var y = gg::stack(hs, 0);
        const double tol = dtype == gg::f64 ? 1e-14 : 1e-6;
        CHECK(worst(r.output.value(), y.value()) <= tol);
        CHECK(worst(r.h.value(), hp.value()) <= tol);
        CHECK(worst(r.c.value(), cp.value()) <= tol);
        // Gradients of a loss reaching every part: the steps' h, the last h and the last c.
        const auto loss = [&](const Var& a, const Var& hl, const Var& cl) {
          const Var w = Var::constant(gg::test::rnd({steps, batch, h}, 99).to(dtype));
          return gg::sum(a * w) + gg::sum(hl * hl) + 0.5 * gg::sum(cl * cl * cl);
        };
        const std::vector<Var> wanted = gg::grad({loss(y, hp, cp)}, v, {}, {.materialize_zeros = true});
        const std::vector<Var> got = gg::grad({loss(r.output, r.h, r.c)}, v, {}, {.materialize_zeros = true});
        for (std::size_t i = 0; i < v.size(); ++i) {
          INFO("input " << i);
          CHECK(worst(got[i].value(), wanted[i].value()) <= (dtype == gg::f64 ? 1e-13 : 2e-5));
        }
      }
}

TEST_CASE("lstm_layer: values and first and second derivatives against finite differences") {
  const std::vector<Tensor> in{gg::test::rnd({3, 2, 3}, 110), gg::test::rnd({2, 2}, 111),
                               gg::test::rnd({2, 2}, 112),    gg::test::rnd({8, 3}, 113),
                               gg::test::rnd({8, 2}, 114),    gg::test::rnd({8}, 115),
                               gg::test::rnd({8}, 116)};
  for (const bool reverse : {false, true}) {
    INFO((reverse ? "reverse" : "forward"));
    const gg::test::Fn f = [reverse](const std::vector<Var>& v) {
      const gg::LSTMLayer r = gg::lstm_layer(v[0], v[1], v[2], v[3], v[4], v[5], v[6], reverse);
      return r.output.inputs()[0]; // the node: each step's h and the last c
    };
    const gg::GradcheckResult first = gg::gradcheck(f, in);
    INFO(first.message);
    CHECK(first.ok);
    const gg::test::Fn gradient = [f](const std::vector<Var>& v) {
      std::vector<Var> flat;
      for (const Var& g : gg::grad({gg::sum(f(v) * f(v) * f(v))}, v, {}, {.create_graph = true}))
        flat.push_back(gg::reshape(g, {-1}));
      return gg::concat(flat);
    };
    const gg::GradcheckResult second = gg::gradcheck(gradient, in);
    INFO(second.message);
    CHECK(second.ok);
  }
}

TEST_CASE("lstm_layer: inputs that do not fit name the op and the shapes and one bias alone is refused") {
  const auto ones = [](const gg::Shape& s) { return Var(Tensor::ones(s)); };
  const Var x = ones({3, 2, 5}), h = ones({2, 4}), w_ih = ones({16, 5}), w_hh = ones({16, 4});
  CHECK_NOTHROW(gg::lstm_layer(x, h, h, w_ih, w_hh));
  CHECK_THROWS_WITH(gg::lstm_layer(ones({2, 5}), h, h, w_ih, w_hh),
                    Catch::Contains("lstm_layer") && Catch::Contains("x [2, 5]"));
  CHECK_THROWS_WITH(gg::lstm_layer(ones({0, 2, 5}), h, h, w_ih, w_hh), Catch::Contains("L > 0"));
  CHECK_THROWS_WITH(gg::lstm_layer(x, ones({3, 4}), h, w_ih, w_hh), Catch::Contains("h0 [3, 4]"));
  CHECK_THROWS_WITH(gg::lstm_layer(x, h, h, ones({16, 4}), w_hh), Catch::Contains("w_ih [16, 4]"));
  CHECK_THROWS_WITH(gg::lstm_layer(x, h, h, w_ih, ones({12, 4})), Catch::Contains("w_hh [12, 4]"));
  CHECK_THROWS_WITH(gg::lstm_layer(x, h, h, w_ih, w_hh, ones({16}), ones({15})),
                    Catch::Contains("b_hh [15]"));
  CHECK_THROWS_WITH(gg::lstm_layer(x, h, h, w_ih, w_hh, ones({16})), Catch::Contains("both biases"));
  CHECK_THROWS_WITH(gg::lstm_layer(x, h, h, Var(Tensor::ones({16, 5}, gg::f32)), w_hh),
                    Catch::Contains("lstm_layer: the input is float64") && Catch::Contains("float32"));
}

namespace {
/// A GRU step from the ops as nn::GRUCell records it (gates r, z, n), or an Elman RNN step (tanh or
/// relu): the composition gru_layer and rnn_layer must equal.
Var recurrent_step_ops(const std::string& kind, const Var& x, const Var& h, const Var& w_ih, const Var& w_hh,
                       const Var& b_ih, const Var& b_hh) {
  const Var xw = gg::linear(x, w_ih, b_ih), hw = gg::linear(h, w_hh, b_hh);
  if (kind == "tanh") return gg::tanh(xw + hw);
  if (kind == "relu") return gg::relu(xw + hw);
  const std::int64_t n = h.shape()[1];
  const auto part = [n](const Var& v, std::int64_t k) { return gg::slice(v, -1, k * n, (k + 1) * n); };
  const Var r = gg::sigmoid(part(xw, 0) + part(hw, 0)), z = gg::sigmoid(part(xw, 1) + part(hw, 1));
  const Var c = gg::tanh(part(xw, 2) + r * part(hw, 2));
  return c + z * (h - c);
}
/// gru_layer ("gru") or rnn_layer ("tanh", "relu").
gg::RecurrentLayer recurrent_layer_op(const std::string& kind, const std::vector<Var>& v, const Var& b_ih,
                                      const Var& b_hh, bool reverse) {
  return kind == "gru" ? gg::gru_layer(v[0], v[1], v[2], v[3], b_ih, b_hh, reverse)
                       : gg::rnn_layer(v[0], v[1], v[2], v[3], b_ih, b_hh, kind, reverse);
}
} // namespace

TEST_CASE("gru_layer and rnn_layer: equal the cells' steps from the ops in values and every gradient, both "
          "directions, 1 and 2 threads") {
  const std::int64_t steps = 5, batch = 3, in = 4, h = 3;
  for (const std::string kind : {"gru", "tanh", "relu"})
    for (const int threads : {1, 2})
      for (const gg::DType dtype : {gg::f64, gg::f32})
        for (const bool reverse : {false, true})
          for (const bool bias : {true, false}) {
            gg::kernel::set_num_threads(threads);
            INFO(kind << ", " << threads << " threads, " << gg::dtype_name(dtype)
                      << (reverse ? " reverse" : " forward") << (bias ? " with" : " without") << " biases");
            const std::int64_t g = kind == "gru" ? 3 * h : h;
            std::vector<Var> v;
            std::uint64_t seed = 140;
            for (const gg::Shape& s :
                 std::vector<gg::Shape>{{steps, batch, in}, {batch, h}, {g, in}, {g, h}, {g}, {g}})
              v.emplace_back(gg::test::rnd(s, seed++, -1.2, 1.2).to(dtype), true);
            const Var b_ih = bias ? v[4] : Var(), b_hh = bias ? v[5] : Var();
            const gg::RecurrentLayer r = recurrent_layer_op(kind, v, b_ih, b_hh, reverse);
            CHECK(r.output.op_name() == (kind == "gru" ? "gru_layer" : "rnn_layer"));
            std::vector<Var> hs(steps);
            Var hp = v[1];
            for (std::int64_t k = 0; k < steps; ++k) {
              const std::int64_t t = reverse ? steps - 1 - k : k;
              hs[static_cast<std::size_t>(t)] = hp =
                  recurrent_step_ops(kind, gg::select(v[0], 0, t), hp, v[2], v[3], b_ih, b_hh);
            }
            const Var y = gg::stack(hs, 0);
            const double tol = dtype == gg::f64 ? 1e-14 : 1e-6;
            CHECK(worst(r.output.value(), y.value()) <= tol);
            CHECK(worst(r.h.value(), hp.value()) <= tol);
            const auto loss = [&](const Var& a, const Var& hl) {
              const Var w = Var::constant(gg::test::rnd({steps, batch, h}, 149).to(dtype));
              return gg::sum(a * w) + 0.5 * gg::sum(hl * hl * hl);
            };
            const std::vector<Var> wanted = gg::grad({loss(y, hp)}, v, {}, {.materialize_zeros = true});
            const std::vector<Var> got = gg::grad({loss(r.output, r.h)}, v, {}, {.materialize_zeros = true});
            for (std::size_t i = 0; i < v.size(); ++i) {
              INFO("input " << i);
              CHECK(worst(got[i].value(), wanted[i].value()) <= (dtype == gg::f64 ? 1e-14 : 2e-5));
            }
          }
  gg::kernel::set_num_threads(1);
}

TEST_CASE("gru_layer and rnn_layer: first and second derivatives against finite differences") {
  for (const std::string kind : {"gru", "tanh", "relu"}) {
    const std::int64_t g = kind == "gru" ? 6 : 2;
    const std::vector<Tensor> in{gg::test::rnd({3, 2, 3}, 150), gg::test::rnd({2, 2}, 151),
                                 gg::test::rnd({g, 3}, 152),    gg::test::rnd({g, 2}, 153),
                                 gg::test::rnd({g}, 154),       gg::test::rnd({g}, 155)};
    for (const bool reverse : {false, true}) {
      INFO(kind << (reverse ? " reverse" : " forward"));
      const gg::test::Fn f = [kind, reverse](const std::vector<Var>& v) {
        return recurrent_layer_op(kind, v, v[4], v[5], reverse).output;
      };
      const gg::GradcheckResult first = gg::gradcheck(f, in);
      INFO(first.message);
      CHECK(first.ok);
      const gg::test::Fn gradient = [f](const std::vector<Var>& v) {
        std::vector<Var> flat;
        for (const Var& d : gg::grad({gg::sum(f(v) * f(v) * f(v))}, v, {}, {.create_graph = true}))
          flat.push_back(gg::reshape(d, {-1}));
        return gg::concat(flat);
      };
      const gg::GradcheckResult second = gg::gradcheck(gradient, in);
      INFO(second.message);
      CHECK(second.ok);
    }
  }
}

TEST_CASE("gru_layer and rnn_layer: inputs that do not fit name the op and the shapes") {
  const auto ones = [](const gg::Shape& s) { return Var(Tensor::ones(s)); };
  const Var x = ones({3, 2, 5}), h = ones({2, 4});
  CHECK_NOTHROW(gg::gru_layer(x, h, ones({12, 5}), ones({12, 4}), ones({12}), ones({12})));
  CHECK_THROWS_WITH(gg::gru_layer(x, h, ones({16, 5}), ones({12, 4})),
                    Catch::Contains("gru_layer: expected") && Catch::Contains("w_ih [3H, E]") &&
                        Catch::Contains("w_ih [16, 5]"));
  CHECK_THROWS_WITH(gg::gru_layer(ones({0, 2, 5}), h, ones({12, 5}), ones({12, 4})),
                    Catch::Contains("L > 0"));
  CHECK_THROWS_WITH(gg::gru_layer(x, h, ones({12, 5}), ones({12, 4}), ones({12})),
                    Catch::Contains("both biases"));
  CHECK_NOTHROW(gg::rnn_layer(x, h, ones({4, 5}), ones({4, 4}), Var(), Var(), "relu"));
  CHECK_THROWS_WITH(gg::rnn_layer(x, ones({3, 4}), ones({4, 5}), ones({4, 4})),
                    Catch::Contains("rnn_layer") && Catch::Contains("h0 [3, 4]"));
  CHECK_THROWS_WITH(gg::rnn_layer(x, h, ones({4, 5}), ones({4, 4}), ones({4}), ones({5})),
                    Catch::Contains("b_hh [5]"));
  CHECK_THROWS_WITH(gg::rnn_layer(x, h, ones({4, 5}), ones({4, 4}), Var(), Var(), "sigmoid"),
                    Catch::Contains("rnn_layer: unknown nonlinearity 'sigmoid'"));
  CHECK_THROWS_WITH(gg::rnn_layer(x, h, Var(Tensor::ones({4, 5}, gg::f32)), ones({4, 4})),
                    Catch::Contains("rnn_layer: the input is float64") && Catch::Contains("float32"));
}

TEST_CASE("layer_norm: bad shapes and dtypes name the op and the shapes") {
  const Var x(Tensor::zeros({2, 3}));
  CHECK_THROWS_WITH(gg::layer_norm(x, {2}),
                    Catch::Contains("layer_norm") && Catch::Contains("[2]") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(gg::layer_norm(x, {}), Catch::Contains("layer_norm"));
  CHECK_THROWS_WITH(gg::layer_norm(x, {3}, Var(Tensor::ones({4}))), Catch::Contains("layer_norm: weight") &&
                                                                        Catch::Contains("[4]") &&
                                                                        Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(gg::layer_norm(x, {3}, Var(), Var(Tensor::ones({3}, gg::f32))),
                    Catch::Contains("layer_norm: bias is float32"));
  CHECK_THROWS_WITH(gg::layer_norm(x, {3}, Var(), Var(), -1), Catch::Contains("eps"));
}

TEST_CASE("scaled_dot_product_attention: equals PyTorch's definition with each kind of mask, in one op") {
  const Tensor q = expected("sdpa.q"), k = expected("sdpa.k"), v = expected("sdpa.v");
  const Tensor allowed = expected("sdpa.allowed"), additive = expected("sdpa.additive");
  using Attention = std::function<Var(const Var&, const Var&, const Var&)>;
  const std::vector<std::pair<std::string, Attention>> cases = {
      {"plain",
       [](const Var& a, const Var& b, const Var& c) { return gg::scaled_dot_product_attention(a, b, c); }},
      {"boolean",
       [&](const Var& a, const Var& b, const Var& c) {
         return gg::scaled_dot_product_attention(a, b, c, gg::AttentionMask::boolean(allowed));
       }},
      {"additive",
       [&](const Var& a, const Var& b, const Var& c) {
         return gg::scaled_dot_product_attention(a, b, c,
                                                 gg::AttentionMask::additive(additive.to(a.dtype())));
       }},
      {"causal", [](const Var& a, const Var& b,
                    const Var& c) { return gg::scaled_dot_product_attention(a, b, c, {}, 0, true); }},
      {"scaled", [](const Var& a, const Var& b,
                    const Var& c) { return gg::scaled_dot_product_attention(a, b, c, {}, 0, false, 0.3); }},
  };
  for (const auto& [name, f] : cases) {
    INFO(name);
    const std::string base = "sdpa." + name;
    const Tensor w = expected(base + ".w");
    for (const bool recorded : {false, true}) { // backward's fast path, and the create_graph rule
      INFO((recorded ? "create_graph" : "backward"));
      const Var a(q.clone(), true), b(k.clone(), true), c(v.clone(), true);
      const Var y = f(a, b, c);
      CHECK(y.op_name() == "scaled_dot_product_attention");
      CHECK(worst(y.value(), expected(base + ".value")) < 1e-14);
      const Var loss = gg::sum(y * Var::constant(w));
      std::vector<Tensor> g;
      if (recorded) {
        for (const Var& x : gg::grad({loss}, {a, b, c}, {}, {.create_graph = true})) g.push_back(x.value());
      } else {
        loss.backward();
        g = {a.grad(), b.grad(), c.grad()};
      }
      CHECK(worst(g[0], expected(base + ".grad_q")) < 1e-13);
      CHECK(worst(g[1], expected(base + ".grad_k")) < 1e-13);
      CHECK(worst(g[2], expected(base + ".grad_v")) < 1e-13);
    }
    // float32, against the float64 numbers.
    const Var y32 = f(Var(q.to(gg::f32)), Var(k.to(gg::f32)), Var(v.to(gg::f32)));
    CHECK(y32.dtype() == gg::f32);
    CHECK(worst(y32.value(), expected(base + ".value")) < 1e-5);
  }
}

TEST_CASE("scaled_dot_product_attention: in blocks of query rows on the kernel threads, it equals the "
          "composition of ops, causal or masked, float64 and float32, 1 and 2 threads") {
  // 70 queries (three blocks, the last one short) and 90 keys: causal rows see a growing prefix and
  // keys 70-89 none; products large enough for the GEMM libraries, 8 items enough work for 2 threads.
  gg::Rng rng(7);
  const Tensor q = Tensor::randn({2, 4, 70, 16}, rng), k = Tensor::randn({2, 4, 90, 16}, rng),
               v = Tensor::randn({2, 4, 90, 8}, rng), w = Tensor::randn({2, 4, 70, 8}, rng);
  Tensor causal = Tensor::zeros({70, 90}), mask = Tensor::randn({2, 4, 70, 90}, rng);
  for (std::int64_t i = 0; i < 70; ++i)
    for (std::int64_t j = i + 1; j < 90; ++j) causal.set_flat(i * 90 + j, -INFINITY);
  const auto composed = [](const Var& a, const Var& b, const Var& c, const Tensor& add) {
    return gg::matmul(gg::softmax(gg::matmul(a, gg::transpose(b, -2, -1)) * 0.25 + Var::constant(add), -1),
                      c);
  };
  for (const gg::DType dtype : {gg::f64, gg::f32}) {
    for (const int threads : {1, 2}) {
      gg::kernel::set_num_threads(threads);
      for (const bool is_causal : {true, false}) {
        INFO("dtype " << gg::dtype_name(dtype) << ", threads " << threads << ", causal " << is_causal);
        const Tensor add = (is_causal ? causal : mask).to(dtype);
        std::vector<Tensor> got, want;
        for (const bool fused : {true, false}) {
          const Var a(q.to(dtype), true), b(k.to(dtype), true), c(v.to(dtype), true);
          const Var y = fused
                            ? gg::scaled_dot_product_attention(
                                  a, b, c, is_causal ? gg::AttentionMask{} : gg::AttentionMask::additive(add),
                                  0, is_causal)
                            : composed(a, b, c, add);
          gg::sum(y * Var::constant(w.to(dtype))).backward();
          (fused ? got : want) = {y.value(), a.grad(), b.grad(), c.grad()};
        }
        const double tolerance = dtype == gg::f64 ? 1e-12 : 1e-4;
        for (std::size_t i = 0; i < 4; ++i) CHECK(worst(got[i], want[i]) < tolerance);
      }
    }
  }
  gg::kernel::set_num_threads(1);
}

TEST_CASE("packed_self_attention: equals scaled_dot_product_attention over the heads split and merged by "
          "ops, causal or not, float64 and float32, 1 and 2 threads") {
  // 2 sequences of 70 positions (three blocks of query rows, the last one short), 4 heads of 8.
  gg::Rng rng(9);
  const Tensor x = Tensor::randn({2, 70, 96}, rng), w = Tensor::randn({2, 70, 32}, rng);
  const auto heads = [](const Var& t) { return gg::transpose(gg::reshape(t, {2, 70, 4, 8}), 1, 2); };
  for (const gg::DType dtype : {gg::f64, gg::f32}) {
    for (const int threads : {1, 2}) {
      gg::kernel::set_num_threads(threads);
      for (const bool is_causal : {true, false}) {
        INFO("dtype " << gg::dtype_name(dtype) << ", threads " << threads << ", causal " << is_causal);
        std::vector<Tensor> got, want;
        for (const bool packed : {true, false}) {
          const Var qkv(x.to(dtype), true);
          Var y;
          if (packed) {
            y = gg::packed_self_attention(qkv, 4, is_causal);
            CHECK(y.op_name() == "packed_self_attention");
          } else {
            const Var a = heads(gg::slice(qkv, 2, 0, 32)), b = heads(gg::slice(qkv, 2, 32, 64)),
                      c = heads(gg::slice(qkv, 2, 64, 96));
            y = gg::reshape(gg::transpose(gg::scaled_dot_product_attention(a, b, c, {}, 0, is_causal), 1, 2),
                            {2, 70, 32});
          }
          gg::sum(y * Var::constant(w.to(dtype))).backward();
          (packed ? got : want) = {y.value(), qkv.grad()};
        }
        const double tolerance = dtype == gg::f64 ? 1e-12 : 1e-4;
        CHECK(worst(got[0], want[0]) < tolerance);
        CHECK(worst(got[1], want[1]) < tolerance);
      }
    }
  }
  gg::kernel::set_num_threads(1);
  const Var bad(Tensor::zeros({2, 5, 12}));
  CHECK_THROWS_WITH(gg::packed_self_attention(bad, 3), Catch::Contains("packed_self_attention") &&
                                                           Catch::Contains("[2, 5, 12]") &&
                                                           Catch::Contains("3 heads"));
  CHECK_THROWS_WITH(gg::packed_self_attention(Var(Tensor::zeros({5, 12})), 2),
                    Catch::Contains("packed_self_attention") && Catch::Contains("[5, 12]"));
}

TEST_CASE("scaled_dot_product_attention: dropout on the weights, and bad input named with the shapes") {
  const Var q(gg::test::rnd({2, 3, 4}, 90), true), k(gg::test::rnd({2, 5, 4}, 91), true),
      v(gg::test::rnd({2, 5, 6}, 92), true);
  gg::Rng a(4), b(4);
  // With dropout: the composition, drawing its mask as dropout(softmax(...)) does.
  const Var y = gg::scaled_dot_product_attention(q, k, v, {}, 0.5, false, std::nullopt, &a);
  const Var weights = gg::softmax(gg::matmul(q, gg::transpose(k)) * 0.5, -1);
  CHECK(worst(y.value(), gg::matmul(gg::dropout(weights, 0.5, true, b), v).value()) < 1e-15);
  CHECK_THROWS_WITH(gg::scaled_dot_product_attention(q, k, v, {}, 0.5),
                    Catch::Contains("scaled_dot_product_attention") && Catch::Contains("generator"));
  CHECK_THROWS_WITH(gg::scaled_dot_product_attention(q, v, k),
                    Catch::Contains("scaled_dot_product_attention") && Catch::Contains("[2, 5, 6]") &&
                        Catch::Contains("[2, 3, 4]"));
  CHECK_THROWS_WITH(
      gg::scaled_dot_product_attention(q, k, v, gg::AttentionMask::boolean(Tensor::ones({3, 4}))),
      Catch::Contains("attn_mask of shape [3, 4]") && Catch::Contains("[2, 3, 5]"));
  CHECK_THROWS_WITH(
      gg::scaled_dot_product_attention(q, k, v, gg::AttentionMask::boolean(Tensor::ones({3, 5})), 0, true),
      Catch::Contains("is_causal"));
  CHECK_THROWS_WITH(
      gg::scaled_dot_product_attention(q, k, v, gg::AttentionMask::boolean(Tensor::full({3, 5}, 0.5))),
      Catch::Contains("boolean attn_mask"));
  CHECK_THROWS_WITH(
      gg::scaled_dot_product_attention(q, k, v, gg::AttentionMask::additive(Tensor::zeros({3, 5}, gg::f32))),
      Catch::Contains("must have the query's dtype float64, got float32 (shape [3, 5])"));
}
