// Every differentiable op checked against central finite differences (gg::gradcheck, float64,
// tolerance 1e-6, which also compares the create_graph backward with the plain one): binary ops
// with broadcasting and on scalar leaves, unary ops, reductions, matrix products, shape ops,
// softmax family, adjoint ops, composites and second derivatives; numerical stability; the
// errors bad shapes and axes raise; float32; erf and gelu against PyTorch-computed values (data/).
#include <autodiff/autodiff.hpp>

#include "inputs.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

using gg::Shape;
using gg::Tensor;
using gg::Var;

namespace {
using gg::test::away_from_zero;
using gg::test::Fn;
using gg::test::rnd;
using gg::test::values;

void check_grad(const Fn& f, const std::vector<Tensor>& inputs) {
  const gg::GradcheckResult r = gg::gradcheck(f, inputs);
  INFO(r.message);
  CHECK(r.ok);
}

Var cst(const Tensor& t) {
  return Var::constant(t);
}

struct BinaryCase {
  const char* name;
  Var (*f)(const Var&, const Var&);
};

const std::vector<BinaryCase>& binary_ops() {
  static const std::vector<BinaryCase> ops = {
      {"add", [](const Var& a, const Var& b) { return a + b; }},
      {"sub", [](const Var& a, const Var& b) { return a - b; }},
      {"mul", [](const Var& a, const Var& b) { return a * b; }},
      {"div", [](const Var& a, const Var& b) { return a / b; }},
      {"pow", [](const Var& a, const Var& b) { return gg::pow(a, b); }},
  };
  return ops;
}

struct UnaryCase {
  const char* name;
  Var (*f)(const Var&);
  bool positive; ///< needs inputs > 0
};

const std::vector<UnaryCase>& unary_ops() {
  static const std::vector<UnaryCase> ops = {
      {"neg", [](const Var& x) { return -x; }, false},
      {"exp", [](const Var& x) { return gg::exp(x); }, false},
      {"log", [](const Var& x) { return gg::log(x); }, true},
      {"sqrt", [](const Var& x) { return gg::sqrt(x); }, true},
      {"abs", [](const Var& x) { return gg::abs(x); }, false},
      {"tanh", [](const Var& x) { return gg::tanh(x); }, false},
      {"sigmoid", [](const Var& x) { return gg::sigmoid(x); }, false},
      {"relu", [](const Var& x) { return gg::relu(x); }, false},
      {"leaky_relu", [](const Var& x) { return gg::leaky_relu(x, 0.1); }, false},
      {"sin", [](const Var& x) { return gg::sin(x); }, false},
      {"cos", [](const Var& x) { return gg::cos(x); }, false},
      // bounds -0.7 and 0.9: unary_input keeps the inputs 0.05 away from them
      {"clamp", [](const Var& x) { return gg::clamp(x, -0.7, 0.9); }, false},
  };
  return ops;
}

/// Inputs for a unary op: positive ones for log/sqrt, otherwise away from 0 and the clamp bounds.
Tensor unary_input(const UnaryCase& op, const Shape& shape, std::uint64_t seed) {
  Tensor t = op.positive ? rnd(shape, seed, 0.3, 2.0) : away_from_zero(shape, seed);
  for (std::int64_t i = 0; i < t.numel(); ++i) { // keep clear of the clamp bounds
    const double v = t.flat(i);
    if (std::fabs(v + 0.7) < 0.05 || std::fabs(v - 0.9) < 0.05) t.set_flat(i, v + 0.12);
  }
  return t;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Binary ops

TEST_CASE("ops: binary ops on equal shapes") {
  const Tensor a = rnd({2, 3}, 1, 0.5, 2.0), b = rnd({2, 3}, 2, 0.5, 2.0);
  for (const auto& op : binary_ops()) {
    INFO(op.name);
    check_grad([&](const std::vector<Var>& v) { return op.f(v[0], v[1]); }, {a, b});
    check_grad([&](const std::vector<Var>& v) { return op.f(v[0], v[0]); }, {a}); // same Var twice
  }
}

TEST_CASE("ops: binary ops broadcast") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3}, {3}}, {{3}, {2, 3}}, {{2, 1}, {1, 3}}, {{2, 3, 1}, {3, 4}}, {{3}, {1}},
      {{1}, {3}},    {{3}, {}},     {{}, {3}},        {{2, 3}, {}},
  };
  std::uint64_t seed = 10;
  for (const auto& op : binary_ops())
    for (const auto& [sa, sb] : shapes) {
      INFO(op.name << " " << sa.str() << " with " << sb.str());
      const Tensor a = rnd(sa, ++seed, 0.5, 2.0), b = rnd(sb, ++seed, 0.5, 2.0);
      check_grad([&](const std::vector<Var>& v) { return op.f(v[0], v[1]); }, {a, b});
    }
}

TEST_CASE("ops: binary ops with a 0-d tensor operand (not a scalar leaf)") {
  const Tensor a = rnd({2, 3}, 3, 0.5, 2.0), b = rnd({1}, 4, 0.5, 2.0);
  for (const auto& op : binary_ops()) {
    INFO(op.name);
    check_grad([&](const std::vector<Var>& v) { return op.f(v[0], gg::reshape(v[1], {})); }, {a, b});
    check_grad([&](const std::vector<Var>& v) { return op.f(gg::reshape(v[1], {}), v[0]); }, {a, b});
    // 0-d tensor with 0-d tensor, and with a scalar leaf
    check_grad([&](const std::vector<Var>& v) { return op.f(gg::reshape(v[0], {}), gg::reshape(v[1], {})); },
               {b, rnd({1}, 5, 0.5, 2.0)});
    check_grad([&](const std::vector<Var>& v) { return op.f(gg::reshape(v[0], {}), v[1]); },
               {b, Tensor::scalar(1.3)});
  }
}

TEST_CASE("ops: binary ops on scalar leaves take the scalar fast path") {
  const Tensor a = Tensor::scalar(1.3), b = Tensor::scalar(0.7);
  for (const auto& op : binary_ops()) {
    INFO(op.name);
    check_grad(
        [&](const std::vector<Var>& v) {
          const Var y = op.f(v[0], v[1]);
          CHECK(y.is_scalar_node());
          return y;
        },
        {a, b});
    check_grad([&](const std::vector<Var>& v) { return op.f(op.f(v[0], v[1]), v[0]); }, {a, b});
  }
  // the scalar and tensor paths agree on values
  Var x = 1.3, y = 0.7;
  CHECK(gg::pow(x, y).item() == Approx(std::pow(1.3, 0.7)).epsilon(1e-15));
  CHECK((x / y).item() == Approx(1.3 / 0.7).epsilon(1e-15));
}

TEST_CASE("ops: compound assignment operators") {
  check_grad(
      [](const std::vector<Var>& v) {
        Var y = v[0];
        y += v[1];
        y *= v[1];
        y -= v[0];
        y /= v[1];
        return y;
      },
      {rnd({2, 3}, 6, 0.5, 2.0), rnd({3}, 7, 0.5, 2.0)});
}

TEST_CASE("ops: operators with a double constant") {
  const std::vector<std::pair<const char*, Fn>> cases = {
      {"x+2", [](const std::vector<Var>& v) { return v[0] + 2.0; }},
      {"2+x", [](const std::vector<Var>& v) { return 2.0 + v[0]; }},
      {"x-2", [](const std::vector<Var>& v) { return v[0] - 2.0; }},
      {"2-x", [](const std::vector<Var>& v) { return 2.0 - v[0]; }},
      {"x*3", [](const std::vector<Var>& v) { return v[0] * 3.0; }},
      {"3*x", [](const std::vector<Var>& v) { return 3.0 * v[0]; }},
      {"x/3", [](const std::vector<Var>& v) { return v[0] / 3.0; }},
      {"3/x", [](const std::vector<Var>& v) { return 3.0 / v[0]; }},
      {"pow(x,2.5)", [](const std::vector<Var>& v) { return gg::pow(v[0], 2.5); }},
      {"pow(x,2)", [](const std::vector<Var>& v) { return gg::pow(v[0], 2.0); }},
      {"pow(x,0)", [](const std::vector<Var>& v) { return gg::pow(v[0], 0.0) * v[0]; }},
      {"pow(2,x)", [](const std::vector<Var>& v) { return gg::pow(2.0, v[0]); }},
      {"-x", [](const std::vector<Var>& v) { return -v[0]; }},
      {"neg(x)", [](const std::vector<Var>& v) { return gg::neg(v[0]); }},
  };
  const Tensor t = rnd({2, 3}, 8, 0.5, 2.0), s = Tensor::scalar(1.7);
  for (const auto& [name, f] : cases) {
    INFO(name);
    check_grad(f, {t});
    check_grad(f, {s});
  }
  Var x(Tensor({1, 2, 4}, {3}));
  CHECK(values(2.0 - x) == std::vector<double>{1, 0, -2});
  CHECK(values(4.0 / x) == std::vector<double>{4, 2, 1});
  CHECK(values(gg::pow(2.0, x)) == std::vector<double>{2, 4, 16});
  CHECK(values(x - 1.0) == std::vector<double>{0, 1, 3});
}

// ---------------------------------------------------------------------------------------------
// Unary ops

TEST_CASE("ops: unary ops on tensors and scalars") {
  std::uint64_t seed = 100;
  for (const auto& op : unary_ops()) {
    INFO(op.name);
    const Fn f = [&](const std::vector<Var>& v) { return op.f(v[0]); };
    check_grad(f, {unary_input(op, {3, 4}, ++seed)});
    for (const double x :
         op.positive ? std::vector<double>{0.4, 1.7} : std::vector<double>{-1.3, -0.4, 0.6, 1.7})
      check_grad(
          [&](const std::vector<Var>& v) {
            const Var y = op.f(v[0]);
            CHECK(y.is_scalar_node());
            return y;
          },
          {Tensor::scalar(x)});
  }
}

TEST_CASE("ops: unary op values on the scalar and tensor paths agree") {
  const Tensor t({-1.3, -0.4, 0.6, 1.7}, {4});
  for (const auto& op : unary_ops()) {
    if (op.positive) continue;
    INFO(op.name);
    const std::vector<double> tv = values(op.f(Var(t)));
    for (std::int64_t i = 0; i < 4; ++i)
      CHECK(op.f(Var(t.flat(i))).item() == Approx(tv[static_cast<std::size_t>(i)]).epsilon(1e-15));
  }
  Var x(Tensor({-2, -0.5, 0.5, 2}, {4}));
  CHECK(values(gg::clamp(x, -1, 1)) == std::vector<double>{-1, -0.5, 0.5, 1});
  CHECK(values(gg::leaky_relu(x, 0.5)) == std::vector<double>{-1, -0.25, 0.5, 2});
  CHECK(values(gg::relu(x)) == std::vector<double>{0, 0, 0.5, 2});
  CHECK_THROWS_AS(gg::clamp(x, 1, -1), gg::ValueError);
}

TEST_CASE("ops: erf and gelu (exact and approximate tanh) equal PyTorch's values and derivatives") {
  // tests/autodiff/data/make_erf_gelu_reference.py -> erf_gelu_reference.txt
  const auto ref = gg::test::read_reference("erf_gelu_reference.txt");
  REQUIRE(ref.count("x") == 1);
  const Tensor x = ref.at("x");
  // |a - b| / max(1, |b|) over the elements; float32 and float64 alike.
  const auto worst = [](const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    double w = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i)
      w = std::max(w, std::fabs(a.flat(i) - b.flat(i)) / std::max(1.0, std::fabs(b.flat(i))));
    return w;
  };
  const std::vector<std::pair<std::string, Var (*)(const Var&)>> fs = {
      {"erf", [](const Var& v) { return gg::erf(v); }},
      {"gelu", [](const Var& v) { return gg::gelu(v); }},
      {"gelu_tanh", [](const Var& v) { return gg::gelu(v, "tanh"); }},
  };
  for (const auto& [name, f] : fs) {
    INFO(name);
    const Var v(x.clone(), true);
    const Var y = f(v);
    CHECK(y.op_name() == name);
    const Var g = gg::grad({gg::sum(y)}, {v}, {}, {.create_graph = true})[0];
    const Var g2 = gg::grad({gg::sum(g)}, {v})[0];
    CHECK(worst(y.value(), ref.at(name + ".value")) < 1e-15);
    CHECK(worst(g.value(), ref.at(name + ".grad")) < 1e-15);
    CHECK(worst(g2.value(), ref.at(name + ".grad2")) < 1e-14);
    // The fast tensor backward, and scalar nodes, give the same.
    const Var w(x.clone(), true);
    gg::sum(f(w)).backward();
    CHECK(worst(w.grad(), ref.at(name + ".grad")) < 1e-15);
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const Var s = x.flat(i);
      const Var ys = f(s);
      ys.backward();
      CHECK(ys.item() == Approx(ref.at(name + ".value").flat(i)).margin(1e-15).epsilon(1e-15));
      CHECK(s.grad().item() == Approx(ref.at(name + ".grad").flat(i)).margin(1e-15).epsilon(1e-15));
    }
    // float32 kernels, against PyTorch's float32.
    const Var v32(x.to(gg::f32), true);
    const Var y32 = f(v32);
    gg::sum(y32).backward();
    CHECK(y32.dtype() == gg::f32);
    CHECK(worst(y32.value(), ref.at(name + ".value_f32")) < 1e-6);
    CHECK(worst(v32.grad(), ref.at(name + ".grad_f32")) < 1e-6);
  }
  CHECK_THROWS_WITH(gg::gelu(Var(1.0), "sigmoid"), Catch::Contains("gelu") && Catch::Contains("sigmoid"));
}

TEST_CASE("ops: gradients at clamp's bounds pass, as in PyTorch, outside they are 0") {
  Var x(Tensor({-2, -1, 0, 1, 2}, {5}));
  gg::sum(gg::clamp(x, -1, 1)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 1, 1, 0});
  Var s = 1.0;
  gg::clamp(s, -1, 1).backward();
  CHECK(s.grad().item() == 1);
}

// ---------------------------------------------------------------------------------------------
// Reductions

TEST_CASE("ops: sum, mean and max of the whole tensor") {
  const Tensor t = rnd({2, 3, 4}, 200);
  check_grad([](const std::vector<Var>& v) { return gg::sum(v[0]); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::mean(v[0]); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::max(v[0]); }, {t});
  for (const Fn& f : std::vector<Fn>{[](const std::vector<Var>& v) { return gg::sum(v[0] * v[0]); },
                                     [](const std::vector<Var>& v) { return gg::mean(v[0] * v[0]); },
                                     [](const std::vector<Var>& v) { return gg::max(v[0] * v[0]); }})
    check_grad(f, {Tensor::scalar(-0.8)}); // of a scalar node
  Var x(Tensor({1, 5, 3, 2}, {2, 2}));
  CHECK(gg::sum(x).item() == 11);
  CHECK(gg::mean(x).item() == 2.75);
  CHECK(gg::max(x).item() == 5);
  CHECK(gg::sum(x).shape().rank() == 0);
}

TEST_CASE("ops: sum, mean and max along each axis, keepdim both ways, negative axes") {
  const Tensor t = rnd({2, 3, 4}, 201);
  for (int axis = -3; axis < 3; ++axis)
    for (const bool keepdim : {false, true}) {
      INFO("axis " << axis << " keepdim " << keepdim);
      check_grad([&](const std::vector<Var>& v) { return gg::sum(v[0], axis, keepdim); }, {t});
      check_grad([&](const std::vector<Var>& v) { return gg::mean(v[0], axis, keepdim); }, {t});
      check_grad([&](const std::vector<Var>& v) { return gg::max(v[0], axis, keepdim); }, {t});
    }
  Var x(Tensor({1, 5, 3, 2, 0, 4}, {2, 3}));
  CHECK(gg::sum(x, 0).shape() == Shape{3});
  CHECK(gg::sum(x, -1, true).shape() == Shape{2, 1});
  CHECK(values(gg::max(x, 1)) == std::vector<double>{5, 4});
  CHECK(values(gg::mean(x, 0)) == std::vector<double>{1.5, 2.5, 3.5});
}

TEST_CASE("ops: sum and mean along an axis add each output's terms in order in double, in a slab "
          "the caches hold and in a larger one") {
  // sum_axis sums a slab of up to 4 MiB by blocks of 64 outputs, a larger one row by row: both
  // must give the bits of the plain in-order sum (values of mixed magnitude, so order shows).
  const struct {
    Shape shape;
    int axis;
    gg::DType dtype;
  } cases[] = {{{256, 128}, 0, gg::DType::f32},   {{3, 300, 70}, 1, gg::DType::f32},
               {{1100, 1000}, 0, gg::DType::f32}, {{2, 600, 900}, 1, gg::DType::f32},
               {{700, 800}, 0, gg::DType::f64},   {{40, 5, 130}, 1, gg::DType::f64}};
  for (const auto& c : cases) {
    INFO(c.shape.rank() << "-d, axis " << c.axis << ", " << gg::dtype_name(c.dtype));
    const Tensor x =
        gg::kernel::binary_scalar(gg::kernel::Binary::pow, rnd(c.shape, 77, 0.5, 2), 9).to(c.dtype);
    const std::vector<double> xs = x.to_vector();
    const std::int64_t outer = c.axis == 0 ? 1 : c.shape[0], n = c.shape[c.axis];
    const std::int64_t inner = static_cast<std::int64_t>(xs.size()) / (outer * n);
    std::vector<double> want_sum, want_mean;
    for (std::int64_t i = 0; i < outer; ++i)
      for (std::int64_t j = 0; j < inner; ++j) {
        double acc = 0;
        for (std::int64_t k = 0; k < n; ++k) acc += xs[static_cast<std::size_t>((i * n + k) * inner + j)];
        const auto as_dtype = [&](double v) { return c.dtype == gg::DType::f32 ? double(float(v)) : v; };
        want_sum.push_back(as_dtype(acc));
        want_mean.push_back(as_dtype(acc / static_cast<double>(n)));
      }
    CHECK(gg::kernel::sum(x, c.axis).to_vector() == want_sum);
    CHECK(gg::kernel::mean(x, c.axis).to_vector() == want_mean);
  }
}

TEST_CASE(
    "ops: max and amax share the gradient equally among tied maxima, max(x, axis) gives it to the first") {
  Var x(Tensor({1, 3, 3, 2}, {4}));
  gg::max(x).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0.5, 0.5, 0});

  Var y(Tensor({1, 3, 3, 2, 5, 1}, {2, 3}));
  gg::sum(gg::amax(y, 1)).backward();
  CHECK(y.grad().to_vector() == std::vector<double>{0, 0.5, 0.5, 0, 1, 0});
  Var yf(Tensor({1, 3, 3, 2, 5, 1}, {2, 3}));
  gg::sum(gg::max(yf, 1)).backward(); // torch.max(y, 1): the index of the first maximum
  CHECK(yf.grad().to_vector() == std::vector<double>{0, 1, 0, 0, 1, 0});

  Var z(Tensor({4, 2, 4, 1}, {2, 2}));
  gg::amax(z, 0, true).backward(Tensor({1, 2}, {1, 2}));
  CHECK(z.grad().to_vector() == std::vector<double>{0.5, 2, 0.5, 0});
  Var zf(Tensor({4, 2, 4, 1}, {2, 2}));
  gg::min(zf, 0, true).backward(Tensor({1, 2}, {1, 2}));
  CHECK(zf.grad().to_vector() == std::vector<double>{1, 0, 0, 2}); // column 0: 4 and 4, the first

  // the same through the recorded backward
  Var w(Tensor({1, 3, 3, 2}, {4}));
  const Var g = gg::grad({gg::max(w)}, {w}, {}, {.create_graph = true})[0];
  CHECK(g.value().to_vector() == std::vector<double>{0, 0.5, 0.5, 0});
}

// ---------------------------------------------------------------------------------------------
// Matrix products

TEST_CASE("ops: matmul 2-d, batched and broadcast") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {4, 5}},    {{2, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {4, 5}},
      {{3, 4}, {2, 4, 5}}, {{1, 3, 4}, {2, 4, 5}}, {{2, 1, 2, 3}, {3, 3, 2}},
  };
  std::uint64_t seed = 300;
  for (const auto& [sa, sb] : shapes) {
    INFO(sa.str() << " x " << sb.str());
    check_grad([](const std::vector<Var>& v) { return gg::matmul(v[0], v[1]); },
               {rnd(sa, ++seed), rnd(sb, ++seed)});
  }
  Var a(Tensor({1, 2, 3, 4}, {2, 2})), b(Tensor({5, 6, 7, 8}, {2, 2}));
  CHECK(values(gg::matmul(a, b)) == std::vector<double>{19, 22, 43, 50});
  CHECK(gg::matmul(Var(Tensor::zeros({1, 3, 4})), Var(Tensor::zeros({2, 4, 5}))).shape() == Shape{2, 3, 5});
}

TEST_CASE("ops: matmul with 1-d operands") {
  const Fn f = [](const std::vector<Var>& v) { return gg::matmul(v[0], v[1]); };
  check_grad(f, {rnd({4}, 310), rnd({4, 5}, 311)});    // vector . matrix
  check_grad(f, {rnd({3, 4}, 312), rnd({4}, 313)});    // matrix . vector
  check_grad(f, {rnd({4}, 314), rnd({4}, 315)});       // vector . vector
  check_grad(f, {rnd({2, 3, 4}, 316), rnd({4}, 317)}); // batched matrix . vector
  check_grad(f, {rnd({4}, 318), rnd({2, 4, 5}, 319)}); // vector . batched matrix
  Var u(Tensor({1, 2, 3}, {3})), m(Tensor({1, 0, 0, 1, 1, 1}, {3, 2}));
  CHECK(gg::matmul(u, u).shape().rank() == 0);
  CHECK(gg::matmul(u, u).item() == 14);
  CHECK(values(gg::matmul(u, m)) == std::vector<double>{4, 5});
  CHECK(gg::matmul(gg::transpose(m), u).shape() == Shape{2});
}

// ---------------------------------------------------------------------------------------------
// Shape ops

TEST_CASE("ops: transpose and reshape") {
  const Tensor t = rnd({2, 3, 4}, 400);
  check_grad([](const std::vector<Var>& v) { return gg::transpose(v[0]); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::transpose(v[0], 0, 2); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::transpose(v[0], -3, 1); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::reshape(v[0], {4, -1}); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::reshape(v[0], {-1}); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::reshape(v[0] * v[0], {3, 2, 2, 2}); }, {t});
  CHECK(gg::transpose(Var(t)).shape() == Shape{2, 4, 3});
  CHECK(gg::transpose(Var(t), 0, 2).shape() == Shape{4, 3, 2});
  CHECK(gg::reshape(Var(t), {4, -1}).shape() == Shape{4, 6});
  Var m(Tensor({1, 2, 3, 4, 5, 6}, {2, 3}));
  CHECK(values(gg::transpose(m)) == std::vector<double>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("ops: slice, select and index_select") {
  const Tensor t = rnd({4, 5}, 401);
  check_grad([](const std::vector<Var>& v) { return gg::slice(v[0], 1, 0, 5, 2); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::slice(v[0], 0, -3, 4); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::slice(v[0], -1, -4, 100, 2); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::select(v[0], 0, 2); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::select(v[0], 1, -1); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::index_select(v[0], 0, {2, 0, 2, 3}); }, {t});
  check_grad([](const std::vector<Var>& v) { return gg::index_select(v[0], 1, {4, 4, 0, 1}); }, {t});

  Var x(Tensor::arange(0, 10));
  CHECK(values(gg::slice(x, 0, 1, 10, 3)) == std::vector<double>{1, 4, 7});
  CHECK(values(gg::slice(x, 0, -3, 10)) == std::vector<double>{7, 8, 9});
  CHECK(gg::select(x, 0, -1).item() == 9);
  CHECK(gg::select(x, 0, -1).shape().rank() == 0);
  gg::sum(gg::index_select(x, 0, {2, 2, 5, 2})).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 3, 0, 0, 1, 0, 0, 0, 0});
  CHECK_THROWS_AS(gg::select(x, 0, 10), gg::ValueError);
  CHECK_THROWS_AS(gg::index_select(x, 0, {10}), gg::ValueError);
  CHECK_THROWS_AS(gg::index_select(x, 0, {-1}), gg::ValueError); // as PyTorch
}

TEST_CASE("ops: concat and stack") {
  const Tensor a = rnd({2, 3}, 402), b = rnd({1, 3}, 403), c = rnd({3, 3}, 404);
  check_grad([](const std::vector<Var>& v) { return gg::concat({v[0], v[1], v[2]}, 0); }, {a, b, c});
  const Tensor d = rnd({2, 1}, 405), e = rnd({2, 2}, 406);
  check_grad([](const std::vector<Var>& v) { return gg::concat({v[0], v[1], v[2]}, 1); }, {a, d, e});
  check_grad([](const std::vector<Var>& v) { return gg::concat({v[1], v[0], v[1]}, -1); }, {a, d});
  const Tensor f = rnd({2, 3}, 407), g = rnd({2, 3}, 408);
  for (const int axis : {0, 1, 2, -1}) {
    INFO("stack axis " << axis);
    check_grad([&](const std::vector<Var>& v) { return gg::stack({v[0], v[1], v[2]}, axis); }, {a, f, g});
  }
  // a constant among the inputs gets nothing, the others their slices
  check_grad([&](const std::vector<Var>& v) { return gg::concat({cst(a), v[0], v[1]}, 0); }, {b, c});
  CHECK(gg::concat({Var(a), Var(b), Var(c)}).shape() == Shape{6, 3});
  CHECK(gg::stack({Var(a), Var(f)}, 1).shape() == Shape{2, 2, 3});
  // scalar leaves stack into a vector
  check_grad(
      [](const std::vector<Var>& v) {
        return gg::stack({v[0], v[1] * v[0], v[1]});
      },
      {Tensor::scalar(0.5), Tensor::scalar(-1.5)});
}

TEST_CASE("ops: where, with broadcasting") {
  const Tensor cond({1, 0, 1, 0, 0, 1}, {2, 3});
  const Fn f = [&](const std::vector<Var>& v) { return gg::where(cond, v[0], v[1]); };
  check_grad(f, {rnd({2, 3}, 500), rnd({2, 3}, 501)});
  check_grad(f, {rnd({3}, 502), rnd({2, 1}, 503)});
  check_grad(f, {rnd({2, 3}, 504), Tensor::scalar(0.25)});
  const Tensor row({1, 0, 1}, {3});
  check_grad([&](const std::vector<Var>& v) { return gg::where(row, v[0], v[1]); },
             {rnd({2, 1}, 505), rnd({2, 3}, 506)});
  Var a(Tensor({1, 2, 3}, {3}));
  CHECK(values(gg::where(row, a, Var::constant(Tensor::scalar(-1)))) == std::vector<double>{1, -1, 3});
}

TEST_CASE("ops: softmax, log_softmax and logsumexp along each axis") {
  const Tensor t = rnd({2, 3, 4}, 600, -2, 2);
  for (int axis = -3; axis < 3; ++axis) {
    INFO("axis " << axis);
    check_grad([&](const std::vector<Var>& v) { return gg::softmax(v[0], axis); }, {t});
    check_grad([&](const std::vector<Var>& v) { return gg::log_softmax(v[0], axis); }, {t});
    for (const bool keepdim : {false, true})
      check_grad([&](const std::vector<Var>& v) { return gg::logsumexp(v[0], axis, keepdim); }, {t});
  }
  check_grad([](const std::vector<Var>& v) { return gg::softmax(v[0]); }, {rnd({5}, 601)});
  Var x(Tensor({0, std::log(3.0)}, {2}));
  const std::vector<double> s = values(gg::softmax(x));
  CHECK(s[0] == Approx(0.25));
  CHECK(s[1] == Approx(0.75));
  CHECK(gg::logsumexp(x).item() == Approx(std::log(4.0)));
  CHECK(gg::logsumexp(Var(t), 1, true).shape() == Shape{2, 1, 4});
  CHECK(gg::logsumexp(Var(t), 1).shape() == Shape{2, 4});
}

TEST_CASE("ops: broadcast_to, sum_to, slice_scatter and index_add") {
  check_grad([](const std::vector<Var>& v) { return gg::broadcast_to(v[0], {2, 3, 4}); }, {rnd({3, 1}, 700)});
  check_grad([](const std::vector<Var>& v) { return gg::broadcast_to(v[0], {2, 3}); }, {Tensor::scalar(0.3)});
  check_grad([](const std::vector<Var>& v) { return gg::sum_to(v[0], {3, 1}); }, {rnd({2, 3, 4}, 701)});
  check_grad([](const std::vector<Var>& v) { return gg::sum_to(v[0], {}); }, {rnd({2, 3}, 702)});
  check_grad([](const std::vector<Var>& v) { return gg::sum_to(v[0], {2, 3}); }, {rnd({2, 3}, 703)});
  check_grad(
      [](const std::vector<Var>& v) {
        return gg::slice_scatter(v[0], {4, 5}, 1, 1, 5, 2);
      },
      {rnd({4, 2}, 704)});
  check_grad(
      [](const std::vector<Var>& v) {
        return gg::slice_scatter(v[0], {4, 5}, 0, -2, 4);
      },
      {rnd({2, 5}, 705)});
  check_grad(
      [](const std::vector<Var>& v) {
        return gg::index_add(v[0], {4, 3}, 0, {0, 2, 0, 3});
      },
      {rnd({4, 3}, 706)});
  check_grad(
      [](const std::vector<Var>& v) {
        return gg::index_add(v[0], {2, 3}, 1, {2, 0});
      },
      {rnd({2, 2}, 707)});
  Var g(Tensor({1, 2}, {2}));
  CHECK(values(gg::slice_scatter(g, {5}, 0, 0, 5, 3)) == std::vector<double>{1, 0, 0, 2, 0});
  CHECK(values(gg::index_add(g, {3}, 0, {1, 1})) == std::vector<double>{0, 3, 0});
  CHECK(values(gg::sum_to(Var(Tensor::ones({2, 3})), {3})) == std::vector<double>{2, 2, 2});
}

// ---------------------------------------------------------------------------------------------
// Composites and higher derivatives

TEST_CASE("ops: a 2-layer MLP loss") {
  const Fn mlp = [](const std::vector<Var>& v) {
    const Var& x = v[0];
    const Var h = gg::tanh(gg::matmul(x, v[1]) + v[2]);
    return gg::sum(gg::log_softmax(gg::matmul(h, v[3]) + v[4]));
  };
  check_grad(mlp, {rnd({4, 3}, 800), rnd({3, 5}, 801), rnd({5}, 802), rnd({5, 2}, 803), rnd({2}, 804)});
}

TEST_CASE("ops: second derivatives by gradcheck of a create_graph gradient") {
  // d/dx of sum(tanh(x) * x^3), checked against finite differences of itself
  const Fn dtanh = [](const std::vector<Var>& v) {
    const Var y = gg::sum(gg::tanh(v[0]) * gg::pow(v[0], 3.0));
    return gg::grad({y}, {v[0]}, {}, {.create_graph = true})[0];
  };
  check_grad(dtanh, {rnd({4}, 900)});
  check_grad(dtanh, {Tensor::scalar(0.7)});

  // gradients of sum(softmax(x @ W) * C) with respect to both x and W
  const Tensor c = rnd({3, 4}, 901);
  const Fn dsoft = [&](const std::vector<Var>& v) {
    const Var y = gg::sum(gg::softmax(gg::matmul(v[0], v[1])) * cst(c));
    const std::vector<Var> g = gg::grad({y}, {v[0], v[1]}, {}, {.create_graph = true});
    return gg::concat({gg::reshape(g[0], {-1}), gg::reshape(g[1], {-1})});
  };
  check_grad(dsoft, {rnd({3, 2}, 902), rnd({2, 4}, 903)});
}

TEST_CASE("ops: second derivatives through max, min, amax and amin (the selecting rules)") {
  const std::vector<std::function<Var(const Var&)>> reductions{
      [](const Var& v) { return gg::max(v, 1); },  [](const Var& v) { return gg::min(v, 0, true); },
      [](const Var& v) { return gg::amax(v, 1); }, [](const Var& v) { return gg::amin(v, 0); },
      [](const Var& v) { return gg::max(v); },     [](const Var& v) { return gg::min(v); }};
  std::uint64_t seed = 940;
  for (const auto& r : reductions) {
    const Fn f = [&](const std::vector<Var>& v) { // d/dx of sum(r(x)^3 + x * r(x))
      const Var m = r(v[0]);
      const Var y = gg::sum(gg::pow(m, 3.0)) + gg::sum(v[0] * gg::sum(m));
      return gg::grad({y}, {v[0]}, {}, {.create_graph = true})[0];
    };
    check_grad(f, {rnd({3, 4}, ++seed)});
  }
}

TEST_CASE("ops: second derivatives of every elementwise op") {
  std::uint64_t seed = 950;
  for (const auto& op : unary_ops()) {
    INFO(op.name);
    const Fn f = [&](const std::vector<Var>& v) {
      const Var y = gg::sum(op.f(v[0]) * v[0]);
      return gg::grad({y}, {v[0]}, {}, {.create_graph = true})[0];
    };
    check_grad(f, {unary_input(op, {3}, ++seed)});
    check_grad(f, {op.positive ? Tensor::scalar(0.8) : Tensor::scalar(-0.45)});
  }
  for (const auto& op : binary_ops()) {
    INFO(op.name);
    const Fn f = [&](const std::vector<Var>& v) {
      const Var y = gg::sum(op.f(v[0], v[1]) * v[0]);
      const std::vector<Var> g = gg::grad({y}, {v[0], v[1]}, {}, {.create_graph = true});
      return gg::concat({gg::reshape(g[0], {-1}), gg::reshape(g[1], {-1})});
    };
    check_grad(f, {rnd({2, 3}, ++seed, 0.5, 2.0), rnd({3}, ++seed, 0.5, 2.0)});
    check_grad(
        [&](const std::vector<Var>& v) {
          const Var y = op.f(v[0], v[1]) * v[0];
          const std::vector<Var> g = gg::grad({y}, {v[0], v[1]}, {}, {.create_graph = true});
          return g[0] * 2.0 + g[1];
        },
        {Tensor::scalar(1.2), Tensor::scalar(0.6)});
  }
}

// ---------------------------------------------------------------------------------------------
// Numerical stability

TEST_CASE("ops: softmax family is stable for large inputs, sigmoid saturates to a 0 gradient") {
  const Tensor big({1000, 1000, 999}, {3});
  const std::vector<Var (*)(const Var&)> fs = {
      [](const Var& x) { return gg::logsumexp(x); },
      [](const Var& x) { return gg::softmax(x); },
      [](const Var& x) { return gg::log_softmax(x); },
  };
  for (auto f : fs) {
    Var x(big);
    const Var y = f(x);
    for (const double v : values(y)) {
      CHECK(std::isfinite(v));
    }
    gg::sum(y * cst(Tensor({1, 2, 3}, {3}))).backward();
    for (const double v : x.grad().to_vector()) {
      CHECK(std::isfinite(v));
    }
  }
  const double lse = 1000 + std::log(2 + std::exp(-1.0));
  CHECK(gg::logsumexp(Var(big)).item() == Approx(lse).epsilon(1e-14));
  Var x(big);
  gg::logsumexp(x).backward();
  const std::vector<double> g = x.grad().to_vector();
  CHECK(g[0] == Approx(1 / (2 + std::exp(-1.0))));
  CHECK(g[2] == Approx(std::exp(-1.0) / (2 + std::exp(-1.0))));

  Var t(Tensor({-1000, 1000}, {2}));
  const Var st = gg::sigmoid(t);
  CHECK(values(st) == std::vector<double>{0, 1});
  gg::sum(st).backward();
  CHECK(t.grad().to_vector() == std::vector<double>{0, 0});
  for (const double v0 : {-1000.0, 1000.0}) {
    Var s = v0;
    const Var y = gg::sigmoid(s);
    CHECK(std::isfinite(y.item()));
    y.backward();
    CHECK(s.grad().item() == 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("ops: bad shapes raise a ShapeError naming the op and both shapes") {
  const Var a(Tensor::zeros({2, 3})), b(Tensor::zeros({4}));
  using Catch::Contains;
  REQUIRE_THROWS_AS(a + b, gg::ShapeError);
  REQUIRE_THROWS_WITH(a + b, Contains("add") && Contains("[2, 3]") && Contains("[4]"));
  REQUIRE_THROWS_AS(a - b, gg::ShapeError);
  REQUIRE_THROWS_WITH(a - b, Contains("sub") && Contains("[2, 3]") && Contains("[4]"));
  REQUIRE_THROWS_AS(a * b, gg::ShapeError);
  REQUIRE_THROWS_WITH(a * b, Contains("mul") && Contains("[2, 3]") && Contains("[4]"));
  REQUIRE_THROWS_AS(a / b, gg::ShapeError);
  REQUIRE_THROWS_WITH(a / b, Contains("div") && Contains("[2, 3]") && Contains("[4]"));
  REQUIRE_THROWS_AS(gg::pow(a, b), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::pow(a, b), Contains("pow") && Contains("[2, 3]") && Contains("[4]"));
  Var acc = a;
  REQUIRE_THROWS_WITH(acc += b, Contains("add") && Contains("[2, 3]") && Contains("[4]"));

  const Var m34(Tensor::zeros({3, 4})), m54(Tensor::zeros({5, 4}));
  REQUIRE_THROWS_AS(gg::matmul(m34, m54), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::matmul(m34, m54), Contains("matmul") && Contains("[3, 4]") && Contains("[5, 4]"));
  const Var v5(Tensor::zeros({5}));
  REQUIRE_THROWS_AS(gg::matmul(m34, v5), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::matmul(m34, v5), Contains("matmul") && Contains("[3, 4]") && Contains("[5]"));
  REQUIRE_THROWS_WITH(gg::matmul(v5, m34), Contains("matmul") && Contains("[5]") && Contains("[3, 4]"));
  const Var b234(Tensor::zeros({2, 3, 4})), b345(Tensor::zeros({3, 4, 5}));
  REQUIRE_THROWS_AS(gg::matmul(b234, b345), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::matmul(b234, b345),
                      Contains("matmul") && Contains("[2, 3, 4]") && Contains("[3, 4, 5]"));
  REQUIRE_THROWS_AS(gg::matmul(Var(2.0), m34), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::matmul(Var(2.0), m34), Contains("matmul") && Contains("[]") && Contains("[3, 4]"));

  const Var c24(Tensor::zeros({2, 4}));
  REQUIRE_THROWS_AS(gg::concat({a, c24}, 0), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::concat({a, c24}, 0),
                      Contains("concat") && Contains("[2, 3]") && Contains("[2, 4]"));
  REQUIRE_THROWS_WITH(gg::concat({a, a, b}, 0), Contains("concat") && Contains("[2, 3]") && Contains("[4]"));
  REQUIRE_THROWS_AS(gg::stack({a, c24}), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::stack({a, c24}), Contains("stack") && Contains("[2, 3]") && Contains("[2, 4]"));

  const Tensor cond = Tensor::ones({2, 3});
  REQUIRE_THROWS_AS(gg::where(cond, a, b), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::where(cond, a, b), Contains("where") && Contains("[2, 3]") && Contains("[4]"));
  REQUIRE_THROWS_WITH(gg::where(Tensor::ones({4}), a, a),
                      Contains("where") && Contains("[4]") && Contains("[2, 3]"));

  REQUIRE_THROWS_AS(gg::broadcast_to(a, {4}), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::broadcast_to(a, {4}),
                      Contains("broadcast_to") && Contains("[2, 3]") && Contains("[4]"));
  REQUIRE_THROWS_WITH(gg::broadcast_to(a, {2, 4}),
                      Contains("broadcast_to") && Contains("[2, 3]") && Contains("[2, 4]"));
  REQUIRE_THROWS_AS(gg::sum_to(a, {4}), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::sum_to(a, {4}), Contains("sum_to") && Contains("[2, 3]") && Contains("[4]"));

  // a wrong element count is a ShapeError naming both shapes
  REQUIRE_THROWS_AS(gg::reshape(a, {4}), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::reshape(a, {4}), Contains("reshape") && Contains("[2, 3]") && Contains("[4]"));
  REQUIRE_THROWS_AS(gg::reshape(a, {4, -1}), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::reshape(a, {4, -1}),
                      Contains("reshape") && Contains("[2, 3]") && Contains("[4, -1]"));

  REQUIRE_THROWS_AS(gg::slice_scatter(a, {4, 5}, 1, 0, 5, 2), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::slice_scatter(a, {4, 5}, 1, 0, 5, 2),
                      Contains("slice_scatter") && Contains("[2, 3]") && Contains("[4, 5]"));
  REQUIRE_THROWS_AS(gg::index_add(a, {4, 3}, 0, {0, 1, 2}), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::index_add(a, {4, 3}, 0, {0, 1, 2}),
                      Contains("index_add") && Contains("[2, 3]") && Contains("[4, 3]"));
}

TEST_CASE("ops: a bad axis raises a ValueError naming the op") {
  const Var a(Tensor::zeros({2, 3}));
  using Catch::Contains;
  REQUIRE_THROWS_AS(gg::sum(a, 2), gg::ValueError);
  REQUIRE_THROWS_WITH(gg::sum(a, 2), Contains("sum") && Contains("axis 2"));
  REQUIRE_THROWS_AS(gg::mean(a, -3), gg::ValueError);
  REQUIRE_THROWS_WITH(gg::mean(a, -3), Contains("mean") && Contains("axis -3"));
  REQUIRE_THROWS_AS(gg::max(a, 5, true), gg::ValueError);
  REQUIRE_THROWS_AS(gg::softmax(a, 2), gg::ValueError);
  REQUIRE_THROWS_WITH(gg::softmax(a, 2), Contains("softmax"));
  REQUIRE_THROWS_AS(gg::log_softmax(a, -3), gg::ValueError);
  REQUIRE_THROWS_AS(gg::logsumexp(a, 2), gg::ValueError);
  REQUIRE_THROWS_AS(gg::transpose(a, 0, 2), gg::ValueError);
  REQUIRE_THROWS_WITH(gg::transpose(a, 0, 2), Contains("transpose"));
  REQUIRE_THROWS_AS(gg::slice(a, 2, 0, 1), gg::ValueError);
  REQUIRE_THROWS_AS(gg::slice(a, 0, 0, 1, 0), gg::ValueError); // step 0
  REQUIRE_THROWS_AS(gg::select(a, -3, 0), gg::ValueError);
  REQUIRE_THROWS_AS(gg::index_select(a, 2, {0}), gg::ValueError);
  REQUIRE_THROWS_AS(gg::concat({a, a}, 2), gg::ValueError);
  REQUIRE_THROWS_WITH(gg::concat({a, a}, 2), Contains("concat"));
  REQUIRE_THROWS_AS(gg::stack({a, a}, 3), gg::ValueError);
  REQUIRE_THROWS_WITH(gg::stack({a, a}, 3), Contains("stack"));
  REQUIRE_THROWS_AS(gg::slice_scatter(a, {2, 3}, 2, 0, 1), gg::ValueError);
  REQUIRE_THROWS_AS(gg::index_add(a, {2, 3}, -3, {0}), gg::ValueError);
  REQUIRE_THROWS_AS(gg::concat({}), gg::ValueError);
  REQUIRE_THROWS_AS(gg::stack({}), gg::ValueError);
  REQUIRE_THROWS_AS(gg::add(a, Var()), gg::UsageError);
}

// ---------------------------------------------------------------------------------------------
// dtypes

TEST_CASE("ops: float32 tensors run forward and backward with float32 gradients") {
  const Tensor x64 = rnd({4, 3}, 1000), w64 = rnd({3, 5}, 1001), b64 = rnd({5}, 1002);
  auto loss = [](const Var& x, const Var& w, const Var& b) {
    const Var h = gg::tanh(gg::matmul(x, w) + b);
    const Var z = gg::sigmoid(h) * gg::exp(h) - gg::relu(h) / 2.0 + gg::pow(gg::abs(h) + 1.0, 1.5);
    const Var s = gg::log_softmax(z, 1) + gg::softmax(z, 0) + gg::logsumexp(z, 1, true);
    const Var cat = gg::concat({gg::slice(s, 1, 0, 5, 2), gg::index_select(s, 1, {1, 1})}, 1);
    const Var st =
        gg::stack({cat, gg::where(gg::kernel::binary_scalar(gg::kernel::Binary::gt, cat.value(), 0), cat,
                                  gg::leaky_relu(cat) * 3.0)});
    return gg::sum(gg::max(st, 0)) + gg::mean(gg::transpose(st, 0, 2)) +
           gg::sum(gg::clamp(gg::sqrt(gg::sum(b * b, 0)), 0, 10)) + gg::max(gg::sin(w) + gg::cos(w));
  };
  Var x(x64.to(gg::f32)), w(w64.to(gg::f32)), b(b64.to(gg::f32));
  const Var y = loss(x, w, b);
  CHECK(y.dtype() == gg::f32);
  y.backward();
  Var x2(x64.to(gg::f32).to(gg::f64)), w2(w64.to(gg::f32).to(gg::f64)), b2(b64.to(gg::f32).to(gg::f64));
  const Var y2 = loss(x2, w2, b2);
  y2.backward();
  CHECK(y.item() == Approx(y2.item()).epsilon(1e-5));
  for (const auto& [v32, v64] : {std::pair{x, x2}, std::pair{w, w2}, std::pair{b, b2}}) {
    REQUIRE(v32.grad().dtype() == gg::f32);
    const std::vector<double> g32 = v32.grad().to_vector(), g64 = v64.grad().to_vector();
    for (std::size_t i = 0; i < g32.size(); ++i) {
      CHECK(g32[i] == Approx(g64[i]).margin(1e-4));
    }
  }
  // gg::grad gives float32 gradients too, plain and recorded
  for (const bool create_graph : {false, true}) {
    const std::vector<Var> g = gg::grad({loss(x, w, b)}, {x, w, b}, {}, {.create_graph = create_graph});
    for (const Var& gi : g) {
      CHECK(gi.dtype() == gg::f32);
    }
  }
}

TEST_CASE("ops: float32 times float64 promotes to float64, gradients keep each input's dtype") {
  Var a(Tensor({1, 2, 3}, {3}, gg::f32)), b(Tensor({4, 5, 6}, {3}, gg::f64));
  const Var y = a * b;
  CHECK(y.dtype() == gg::f64);
  CHECK((b * a).dtype() == gg::f64);
  CHECK(gg::matmul(a, b).dtype() == gg::f64);
  CHECK(gg::concat({a, b}).dtype() == gg::f64);
  CHECK((a * 2.0).dtype() == gg::f32);
  gg::sum(y).backward();
  CHECK(a.grad().dtype() == gg::f32);
  CHECK(b.grad().dtype() == gg::f64);
  CHECK(a.grad().to_vector() == std::vector<double>{4, 5, 6});
  CHECK(b.grad().to_vector() == std::vector<double>{1, 2, 3});
}

// ---------------------------------------------------------------------------------------------
// The checker itself

TEST_CASE("ops: gradcheck catches a wrong gradient") {
  // x * detach(x) has the value x^2 but the gradient x: finite differences see 2x
  const gg::GradcheckResult r =
      gg::gradcheck([](const std::vector<Var>& v) { return v[0] * v[0].detach(); }, {rnd({3}, 1100, 0.5, 1)});
  CHECK_FALSE(r.ok);
  CHECK(r.max_error > 0.1);
  CHECK_THAT(r.message, Catch::Contains("finite differences"));
}

TEST_CASE("ops: unfold (im2col) and fold (col2im) are adjoint and differentiate") {
  gg::Rng rng(11);
  const Tensor x = Tensor::randn({2, 2, 5, 4}, rng);
  auto r = gg::gradcheck([](const std::vector<Var>& v) { return gg::unfold(v[0], 3, 2, 2, 1); }, {x});
  CHECK(r.ok);
  INFO(r.message);
  const Tensor cols = gg::kernel::unfold(x, 3, 2, 2, 1);
  auto r2 = gg::gradcheck([&](const std::vector<Var>& v) { return gg::fold(v[0], x.shape(), 3, 2, 2, 1); },
                          {Tensor::randn(cols.shape(), rng)});
  CHECK(r2.ok);
  // <unfold(x), c> == <x, fold(c)>
  const Tensor c = Tensor::randn(cols.shape(), rng);
  const double lhs = gg::kernel::sum(gg::kernel::binary(gg::kernel::Binary::mul, cols, c)).item();
  const double rhs = gg::kernel::sum(gg::kernel::binary(gg::kernel::Binary::mul, x,
                                                        gg::kernel::fold(c, x.shape(), 3, 2, 2, 1)))
                         .item();
  CHECK(lhs == Approx(rhs).epsilon(1e-12));
  CHECK_THROWS_WITH(gg::unfold(Var(Tensor::zeros({2, 3})), 2, 2),
                    Catch::Contains("unfold") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_AS(gg::unfold(Var(Tensor::zeros({1, 1, 2, 2})), 3, 3), gg::ShapeError);
}

TEST_CASE("ops: pow with base 0 has gradient 0, not NaN, on both paths") {
  Var x = 2.0;
  Var y = gg::pow(0.0, x);
  y.backward();
  CHECK(x.grad().item() == 0);
  Var t(Tensor({1.0, 2.0}, {2}));
  gg::sum(gg::pow(0.0, t)).backward();
  CHECK(t.grad().to_vector() == std::vector<double>{0, 0});
}

TEST_CASE("ops: a float64 scalar does not promote a float32 tensor, as in PyTorch") {
  Var w(Tensor({1.0, 2.0}, {2}, gg::f32));
  Var s = 3.0; // a scalar leaf (float64)
  Var y = gg::sum(w * s);
  CHECK(y.dtype() == gg::f32);
  y.backward();
  CHECK(w.grad().dtype() == gg::f32);
  CHECK(s.grad().item() == 3);
  CHECK((Var(Tensor({1.0}, {1}, gg::f32)) * Var(Tensor({2.0}, {1}))).dtype() ==
        gg::f64); // both with dimensions
}
