// Hardening of the autodiff core: shapes whose element count overflows, reductions of 0-d values
// (as PyTorch: one implicit axis), and gradients in their input's dtype when the graph mixes float32
// and float64, with create_graph too (the differentiable cast gg::to), and leaves changed in place
// after a graph used them (a stale gradient: backward refuses, as PyTorch does).
#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <thread>

using gg::Shape;
using gg::Tensor;
using gg::Var;

TEST_CASE("hardening: a shape whose element count overflows is a ValueError, not a tiny allocation") {
  const std::int64_t big = std::int64_t{1} << 40;
  CHECK_THROWS_AS(Tensor::zeros({big, big}), gg::ValueError);
  CHECK_THROWS_WITH(Shape({big, big, 4}).numel(), Catch::Contains("overflows 64 bits"));
  CHECK_THROWS_AS(Tensor::empty({std::int64_t{1} << 62}, gg::f64), gg::ValueError); // 2^65 bytes
  CHECK_THROWS_WITH(Tensor::zeros({4}).reshape({big, big}), Catch::Contains("cannot reshape [4]"));
  CHECK_THROWS_AS(Tensor::zeros({4}).reshape({big, big, -1}), gg::ShapeError);
}

TEST_CASE("hardening: axis reductions of a 0-d value treat it as one element along axis 0 or -1") {
  for (const Var& x : {Var(2.5), Var(Tensor::scalar(2.5), true)}) {
    for (int axis : {0, -1}) {
      CHECK(gg::softmax(x, axis).item() == 1);
      CHECK(gg::log_softmax(x, axis).item() == 0);
      CHECK(gg::logsumexp(x, axis).item() == 2.5);
      CHECK(gg::sum(x, axis).item() == 2.5);
      CHECK(gg::mean(x, axis, true).item() == 2.5);
      CHECK(gg::max(x, axis).item() == 2.5);
      CHECK(gg::softmax(x, axis).shape() == Shape{});
      CHECK(gg::logsumexp(x, axis, true).shape() == Shape{});
    }
    CHECK_THROWS_AS(gg::softmax(x, 1), gg::ValueError);
    CHECK_THROWS_AS(gg::sum(x, -2), gg::ValueError);
    // d softmax / dx = 0 and d logsumexp / dx = 1, as for any one-element axis.
    const std::vector<Var> g =
        gg::grad({gg::softmax(x, 0) * 3.0 + gg::logsumexp(x, -1) + gg::log_softmax(x, 0)}, {x});
    CHECK(g[0].item() == 1);
  }
  const gg::GradcheckResult r = gg::gradcheck(
      [](const std::vector<Var>& v) {
        return gg::logsumexp(v[0], 0) * gg::sum(gg::softmax(v[0] * v[0], -1), 0) + gg::max(v[0], 0);
      },
      {Tensor::scalar(0.7)});
  CHECK(r.ok);
}

TEST_CASE("hardening: with mixed dtypes, gradients have their input's dtype, with create_graph too") {
  const Var x(Tensor({0.5, -1.0, 2.0}, {3}, gg::f32), true);
  const Var w = Var::constant(Tensor({1.5, 2.0, -0.25}, {3}, gg::f64));
  const Var y = gg::sum(x * x * w); // f32 * f64 promotes to f64
  CHECK(y.dtype() == gg::f64);
  const std::vector<Var> plain = gg::grad({y}, {x}, {}, {.retain_graph = true}); // y serves again below
  const std::vector<Var> graph = gg::grad({y}, {x}, {}, {.create_graph = true});
  CHECK(plain[0].dtype() == gg::f32);
  CHECK(graph[0].dtype() == gg::f32);
  CHECK(graph[0].value().to_vector() == plain[0].value().to_vector()); // 2 x w
  CHECK(plain[0].value().to_vector() == std::vector<double>{1.5, -4.0, -1.0});
  // The recorded gradient differentiates again: d/dx sum(2 x w) = 2 w, also in x's dtype.
  const std::vector<Var> second = gg::grad({gg::sum(graph[0])}, {x});
  CHECK(second[0].dtype() == gg::f32);
  CHECK(second[0].value().to_vector() == std::vector<double>{3.0, 4.0, -0.5});
}

TEST_CASE("hardening: gg::to converts a Var's dtype and its gradient back") {
  const Var x(Tensor({1.0, 2.0}, {2}), true);
  const Var y = gg::to(x, gg::f32);
  CHECK(y.dtype() == gg::f32);
  CHECK(y.op_name() == "to");
  CHECK(gg::to(x, gg::f64).node() == x.node()); // no-op when the dtype is right
  gg::sum(y * y).backward();
  CHECK(x.grad().dtype() == gg::f64);
  CHECK(x.grad().to_vector() == std::vector<double>{2.0, 4.0});
  const Var s = gg::to(Var(3.0), gg::f32); // a scalar Var (f64) becomes a 0-d f32 tensor
  CHECK(s.dtype() == gg::f32);
  CHECK(s.shape() == Shape{});
}

TEST_CASE("hardening: a leaf changed in place after a graph used it makes that graph refuse backward") {
  SECTION("a tensor leaf") {
    Var w(Tensor({1.0, 2.0}, {2}), true);
    const Var y = gg::sum(w * w);
    w.set_value(Tensor({3.0, 4.0}, {2}));
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("changed in place") && Catch::Contains("'mul'"));
    CHECK_THROWS_AS(gg::grad({y}, {w}, {}, {.create_graph = true}), gg::UsageError);
    CHECK_FALSE(w.has_grad());        // nothing accumulated
    const Var again = gg::sum(w * w); // recorded after the change: fine
    again.backward();
    CHECK(w.grad().to_vector() == std::vector<double>{6.0, 8.0});
  }
  SECTION("a scalar leaf, named in the message") {
    Var a = 2.0;
    a.name("a");
    const Var b = a * a + 1.0;
    a.set_value(3.0);
    CHECK_THROWS_WITH(b.backward(), Catch::Contains("leaf 'a'"));
  }
  SECTION("a change before recording, or to a leaf the graph does not use, is fine") {
    Var a = 2.0, unused = 5.0;
    a.set_value(3.0);
    const Var b = a * a;
    unused.set_value(6.0);
    b.backward();
    CHECK(a.grad().item() == 6);
  }
  SECTION("nodes recorded after the change in the same tape segment as stale ones are not stale") {
    Var w = 1.0;
    const Var old = w * 2.0; // kept alive: its segment is not rewound
    w.set_value(2.0);
    const Var fresh = w * 3.0;
    fresh.backward();
    CHECK(w.grad().item() == 3);
    CHECK_THROWS_AS(old.backward(), gg::UsageError);
  }
  SECTION("once the clock moved, a stale node in an older tape segment is still checked") {
    // The check skips nodes of the segment stamped at the clock now; a stale node sits in an older
    // one, found after more than a segment's nodes (a segment holds fewer than 100,000).
    Var other = 1.0;
    other.set_value(2.0); // the clock is not 0 before the graph is recorded
    const bool create_graph = GENERATE(false, true);
    Var w = 1.0;
    Var y = w * 2.0; // stale once w changes
    w.set_value(3.0);
    for (int i = 0; i < 100000; ++i) y = y + 1.0;
    CHECK_THROWS_WITH(gg::grad({y}, {w}, {}, {.create_graph = create_graph}),
                      Catch::Contains("changed in place") && Catch::Contains("'mul_c'"));
    if (!create_graph) CHECK_THROWS_WITH(y.backward(), Catch::Contains("changed in place"));
  }
  SECTION("a change from another thread") {
    const Var w(Tensor({1.0}, {1}), true);
    const Var y = gg::sum(gg::exp(w));
    std::thread([&] { Var(w).set_value(Tensor({0.0}, {1})); }).join();
    CHECK_THROWS_AS(y.backward(), gg::UsageError);
  }
}

TEST_CASE("hardening: hostile sizes are errors or right answers, never undefined behaviour") {
  // Each was undefined behaviour (a float-to-integer overflow, a signed overflow, memmove of null)
  // found by UBSan; the sanitizer build runs this test.
  CHECK_THROWS_WITH(Tensor::arange(0, 1e300), Catch::Contains("arange: start 0, stop 1e+300"));
  CHECK_THROWS_AS(Tensor::arange(-1e308, 1e308, 1e-300), gg::ValueError);
  const Tensor x = Tensor::arange(0, 5);
  const Tensor one = gg::kernel::slice(x, 0, 1, 5, INT64_MAX); // the first element of the range only
  CHECK(one.to_vector() == std::vector<double>{1});
  CHECK(gg::slice(Var(x), 0, 0, INT64_MAX, INT64_MAX).value().to_vector() == std::vector<double>{0});
  CHECK(gg::slice(Var(x), 0, INT64_MIN, INT64_MAX, 2).value().to_vector() == std::vector<double>{0, 2, 4});
  const Var image(Tensor::zeros({1, 1, 4, 4}));
  const Var w(Tensor::zeros({1, 1, 3, 3}));
  CHECK_THROWS_AS(gg::conv2d(image, w, Var(), 1, INT64_MAX / 2), gg::ValueError);
  CHECK_THROWS_AS(gg::conv2d(image, w, Var(), 1, std::int64_t{1} << 40), gg::ValueError);
  CHECK_THROWS_AS(gg::unfold(image, INT64_MAX, INT64_MAX, 1, 0), gg::ShapeError);
  CHECK_THROWS_AS(gg::unfold(image, 1, 1, 1, INT64_MAX), gg::ValueError);
  CHECK_THROWS_AS(gg::max_pool2d(image, 2, 1, INT64_MAX / 4), gg::ValueError);
  CHECK(Tensor::zeros({0}).to_vector().empty());
  CHECK(Tensor::zeros({3, 0}, gg::f32).to_vector().empty());
}

TEST_CASE("hardening: a second backward through the same graph is refused unless the first retained it") {
  using Catch::Contains;
  Var x = 2.0;
  x.name("x");
  const Var y = (x * x).name("y");
  y.backward();
  CHECK(x.grad().item() == 4);
  CHECK_THROWS_AS(y.backward(), gg::UsageError);
  CHECK_THROWS_WITH(y.backward(),
                    Contains("already differentiated") && Contains("'y' (mul)") && Contains("retain_graph"));
  CHECK(x.grad().item() == 4); // nothing was added the second time
  // A new op on top of a spent graph cannot go back through it either (as PyTorch).
  CHECK_THROWS_AS((y + 1.0).backward(), gg::UsageError);
  // retain_graph keeps the graph for one more pass; the last pass need not retain it.
  Var w(Tensor({1.0, -2.0}, {2}));
  const Var loss = gg::sum(w * w);
  loss.backward({.retain_graph = true});
  loss.backward();
  CHECK(w.grad().to_vector() == std::vector<double>{4, -8});
  CHECK_THROWS_AS(loss.backward(), gg::UsageError);
  // grad() spends a graph as backward() does, unless retain_graph or create_graph keeps it.
  Var a = 3.0;
  const Var b = a * a * a;
  CHECK(gg::grad({b}, {a}, {}, {.create_graph = true})[0].item() == 27);
  CHECK(gg::grad({b}, {a}, {}, {.retain_graph = true})[0].item() == 27);
  CHECK(gg::grad({b}, {a})[0].item() == 27);
  CHECK_THROWS_AS(gg::grad({b}, {a}), gg::UsageError);
  CHECK_THROWS_AS(gg::grad({b}, {a}, {}, {.create_graph = true}), gg::UsageError); // spent, as PyTorch
  // A fresh forward pass is a fresh graph.
  const Var b2 = a * a * a;
  CHECK(gg::grad({b2}, {a})[0].item() == 27);
}

TEST_CASE("hardening: a backward pass that fails leaves its graph as it found it") {
  Var x(Tensor({1.0, 4.0}, {2}));
  const Var y = gg::sum(gg::sqrt(x) * 2.0);
  x.set_value(Tensor({9.0, 16.0}, {2})); // changed in place after sqrt used it: backward refuses
  CHECK_THROWS_AS(y.backward(), gg::UsageError);
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("changed in place")); // not "already differentiated"
}
