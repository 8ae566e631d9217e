// The recorded graph and backward: the cs231n example, accumulation, higher derivatives, deep
// chains, memory release, custom ops and thread-local recording.
#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include "inputs.hpp"

#include <atomic>
#include <cmath>
#include <stdexcept>
#include <thread>

using gg::Tensor;
using gg::Var;

TEST_CASE("graph: the cs231n example q = x + y, f = q * z") {
  Var x = -2.0, y = 5.0, z = -4.0;
  Var q = (x + y).name("q");
  Var f = (q * z).name("f");
  f.backward();
  CHECK(f.item() == -12);
  CHECK(x.grad().item() == -4);
  CHECK(y.grad().item() == -4);
  CHECK(z.grad().item() == 3);
  CHECK(q.grad().item() == -4);
  CHECK(f.grad().item() == 1);
  CHECK(q.name() == "q");
  CHECK(f.op_name() == "mul");
  CHECK(x.is_leaf());
  CHECK_FALSE(q.is_leaf());
}

TEST_CASE("graph: a value used twice accumulates its gradient (a = 1 then b = a + a then c = b + b)") {
  Var a = 1.0;
  Var b = a + a;
  Var c = b + b;
  c.backward();
  CHECK(c.item() == 4);
  CHECK(b.grad().item() == 2);
  CHECK(a.grad().item() == 4);
}

TEST_CASE("graph: leaf gradients accumulate across backward passes until zero_grad") {
  Var x = 3.0;
  Var y = x * x;
  y.backward();
  CHECK(x.grad().item() == 6);
  Var y2 = x * x;
  y2.backward();
  CHECK(x.grad().item() == 12);
  x.zero_grad();
  CHECK_FALSE(x.has_grad());
  CHECK(x.grad().item() == 0);
}

TEST_CASE("graph: zero_grad of a list forgets every gradient in it, leaves and recorded values alike") {
  Var x = 3.0, unused = 1.0;
  Var w(Tensor({1.0, 2.0}, {2}, gg::f32));
  const Var q = x * x;
  const Var y = q + gg::sum(w * w);
  y.backward();
  REQUIRE(x.has_grad());
  REQUIRE(w.has_grad());
  REQUIRE(q.has_grad());
  const std::vector<Var> vars{x, q, w, unused};
  gg::zero_grad(vars);
  for (const Var& v : vars) CHECK_FALSE(v.has_grad());
  CHECK(w.grad().to_vector() == std::vector<double>{0.0, 0.0});
  CHECK_THROWS_AS(gg::zero_grad(std::vector<Var>{x, Var()}), gg::UsageError);
}

TEST_CASE("graph: update_leaves changes the leaves that have gradients in place and marks them changed") {
  Var w(Tensor({1.0, 2.0}, {2}, gg::f32)), s = 3.0, unused = 5.0;
  const Tensor held = w.value(); // shares the leaf's storage: sees the update
  const Var loss = gg::sum(w * w) + s * s;
  loss.backward({.retain_graph = true});
  const auto halve_step = [](std::size_t, Tensor& value, const Tensor& grad) {
    for (std::int64_t j = 0; j < value.numel(); ++j) value.set_flat(j, value.flat(j) - 0.5 * grad.flat(j));
  };
  SECTION("each leaf with a gradient once, in place; graphs recorded before refuse backward") {
    std::vector<std::size_t> seen;
    gg::update_leaves(std::vector<Var>{w, unused, s}, [&](std::size_t i, Tensor& value, const Tensor& grad) {
      seen.push_back(i);
      CHECK(grad.dtype() == value.dtype());
      halve_step(i, value, grad);
    });
    CHECK(seen == std::vector<std::size_t>{0, 2});
    CHECK(w.value().to_vector() == std::vector<double>{0.0, 0.0}); // w - 0.5 * 2w
    CHECK(held.to_vector() == std::vector<double>{0.0, 0.0});
    CHECK(s.item() == 0); // the scalar leaf written back
    CHECK(unused.item() == 5);
    CHECK_THROWS_WITH(loss.backward(), Catch::Contains("changed in place"));
    const Var again = gg::sum(w * w) + s * s; // recorded after the update: fine
    again.backward();
  }
  SECTION("an update that throws leaves the leaves before it (and itself) marked changed") {
    const Var only_w = gg::sum(w * w);
    const Var only_s = s * s;
    const auto failing = [&](std::size_t i, Tensor& value, const Tensor& grad) {
      if (i == 1) throw std::runtime_error("no");
      halve_step(i, value, grad);
    };
    CHECK_THROWS_WITH(gg::update_leaves(std::vector<Var>{s, w}, failing), "no");
    CHECK(s.item() == 0);
    CHECK_THROWS_WITH(only_s.backward(), Catch::Contains("changed in place"));
    CHECK_THROWS_WITH(only_w.backward(), Catch::Contains("changed in place"));
  }
  SECTION("a recorded value or an undefined Var: UsageError, nothing changed") {
    CHECK_THROWS_WITH(gg::update_leaves(std::vector<Var>{w, loss}, halve_step),
                      Catch::Contains("only leaves"));
    CHECK_THROWS_AS(gg::update_leaves(std::vector<Var>{w, Var()}, halve_step), gg::UsageError);
    CHECK(w.value().to_vector() == std::vector<double>{1.0, 2.0});
    loss.backward(); // not marked changed
    CHECK(s.grad().item() == 12);
  }
  SECTION("an update that gives the leaf another tensor instead of writing into it: UsageError") {
    CHECK_THROWS_WITH(gg::update_leaves(std::vector<Var>{w}, [](std::size_t, Tensor& value,
                                                                const Tensor&) { value = value.clone(); }),
                      Catch::Contains("another tensor"));
  }
}

TEST_CASE("graph: zero_grad, set_grad or backward from inside update_leaves' update: UsageError, no hang") {
  Var w(Tensor({1.0, 2.0}, {2}, gg::f32)), s = 3.0;
  const Var sq = s * s; // s is not updated below: this graph stays usable
  gg::sum(w * w).backward();
  const std::vector<Var> leaves{w};
  const auto inside = [&](auto call, const char* name) { // from the update, at leaf 0: must throw
    CHECK_THROWS_WITH(gg::update_leaves(leaves, [&](std::size_t, Tensor&, const Tensor&) { call(); }),
                      Catch::StartsWith(std::string(name) + ": called from inside update_leaves"));
  };
  SECTION("zero_grad of a leaf or a list, update_leaves") {
    inside([&] { w.zero_grad(); }, "zero_grad");
    inside([&] { gg::zero_grad(std::vector<Var>{s, w}); }, "zero_grad");
    inside([&] { gg::update_leaves(leaves, [](std::size_t, Tensor&, const Tensor&) {}); }, "update_leaves");
  }
  SECTION("set_grad") {
    inside([&] { s.set_grad(Tensor::scalar(1.0)); }, "set_grad");
    CHECK_FALSE(s.has_grad());
  }
  SECTION("backward, before its pass: the graph is not spent") {
    inside([&] { sq.backward(); }, "backward");
    CHECK_FALSE(s.has_grad());
  }
  // The flag is cleared and the lock free afterwards: each call works.
  CHECK(w.grad().to_vector() == std::vector<double>{2.0, 4.0});
  sq.backward();
  CHECK(s.grad().item() == 6);
  gg::update_leaves(std::vector<Var>{w, s},
                    [](std::size_t, Tensor& value, const Tensor&) { value.set_flat(0, 0.0); });
  CHECK(w.value().to_vector() == std::vector<double>{0.0, 2.0});
  CHECK(s.item() == 0);
  s.set_grad(Tensor::scalar(1.0));
  CHECK(s.grad().item() == 1);
  gg::zero_grad(std::vector<Var>{s});
  w.zero_grad();
  CHECK_FALSE(s.has_grad());
  gg::sum(w * w).backward();
  CHECK(w.grad().to_vector() == std::vector<double>{0.0, 4.0});
}

TEST_CASE("graph: micrograd's published example") {
  Var x = -4.0;
  Var z = 2 * x + 2 + x;
  Var q = gg::relu(z) + z * x;
  Var h = gg::relu(z * z);
  Var y = h + q + q * x;
  y.backward();
  CHECK(y.item() == Approx(-20).margin(1e-12));
  CHECK(x.grad().item() == Approx(46).margin(1e-12));
}

TEST_CASE("graph: constants, detach and NoGrad stop gradients") {
  Var x = 2.0;
  Var c = Var::constant(5.0);
  Var y = x * c + x.detach() * x;
  y.backward();
  CHECK(x.grad().item() == 5 + 2);
  CHECK_FALSE(c.requires_grad());
  {
    gg::NoGrad no_grad;
    Var z = x * x;
    CHECK_FALSE(z.requires_grad());
    CHECK(z.is_leaf());
    CHECK_THROWS_AS(z.backward(), gg::UsageError);
  }
  CHECK(gg::grad_enabled());
}

TEST_CASE("graph: tensor gradients with broadcasting") {
  Var a(Tensor({1, 2, 3, 4, 5, 6}, {2, 3}));
  Var b(Tensor({10, 20, 30}, {3}));
  Var y = gg::sum(a * b);
  y.backward();
  CHECK(y.item() == 10 + 40 + 90 + 40 + 100 + 180);
  CHECK(a.grad().to_vector() == std::vector<double>{10, 20, 30, 10, 20, 30});
  CHECK(b.grad().to_vector() == std::vector<double>{5, 7, 9});
}

TEST_CASE("graph: a tensor graph reaching scalar nodes and leaves gives their gradients, after a tensor-only "
          "pass") {
  // The sweep sets up its scalar leaves' table only when it first reaches a scalar node: the first
  // pass meets none, the second reaches scalar nodes and leaves only through tensor nodes.
  Var x(Tensor({1, 2, 3}, {3}));
  gg::sum(x * x).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{2, 4, 6});
  Var a = 3.0, b = -2.0, c = 0.5;
  const Var s = a * b + c;          // scalar nodes
  const Var y = gg::sum(x * s) + a; // a reached through a scalar node and from a tensor node
  y.backward();
  CHECK(y.item() == 6 * -5.5 + 3);
  CHECK(a.grad().item() == 6 * -2 + 1); // sum(x) * b + 1
  CHECK(b.grad().item() == 6 * 3);      // sum(x) * a
  CHECK(c.grad().item() == 6);
  CHECK(x.grad().to_vector() == std::vector<double>{2 - 5.5, 4 - 5.5, 6 - 5.5});
}

TEST_CASE("graph: backward of a non-scalar needs a seed of its shape") {
  Var a(Tensor({1, 2, 3}, {3}));
  Var y = a * 2.0;
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("shape [3]"));
  CHECK_THROWS_AS(y.backward(Tensor({1, 1}, {2})), gg::ShapeError);
  y.backward(Tensor({1, 0, -1}, {3}));
  CHECK(a.grad().to_vector() == std::vector<double>{2, 0, -2});
}

TEST_CASE("graph: second derivative of tanh through create_graph") {
  const double x0 = 0.7;
  Var x = x0;
  Var y = gg::tanh(x);
  Var dy = gg::grad({y}, {x}, {}, {.create_graph = true})[0];
  const double t = std::tanh(x0);
  CHECK(dy.item() == Approx(1 - t * t).epsilon(1e-14));
  Var d2y = gg::grad({dy}, {x}, {}, {.retain_graph = true})[0]; // dy's graph serves again below
  CHECK(d2y.item() == Approx(-2 * t * (1 - t * t)).epsilon(1e-12));
  Var d3y = gg::grad({gg::grad({dy}, {x}, {}, {.create_graph = true})[0]}, {x})[0];
  CHECK(d3y.item() == Approx(-2 * (1 - t * t) * (1 - 3 * t * t)).epsilon(1e-12));
}

TEST_CASE("graph: Hessian-vector product of a tensor function") {
  // f(x) = sum(x^3) / 3 + x0 * x1: H = diag(2x) + [[0,1],[1,0]]
  Var x(Tensor({1.5, -2.0}, {2}));
  Var f = gg::sum(gg::pow(x, 3.0)) / 3.0 + gg::select(x, 0, 0) * gg::select(x, 0, 1);
  Var g = gg::grad({f}, {x}, {}, {.create_graph = true})[0];
  Tensor v({1.0, 2.0}, {2});
  Var hv = gg::grad({gg::sum(g * Var::constant(v))}, {x})[0];
  CHECK(hv.value().to_vector() == std::vector<double>{2 * 1.5 * 1 + 2, 2 * -2.0 * 2 + 1});
}

TEST_CASE("graph: grad does not touch .grad and gives zeros for unused inputs") {
  Var x = 2.0, unused = 1.0;
  Var y = x * x * x;
  auto g = gg::grad({y}, {x, unused});
  CHECK(g[0].item() == 12);
  CHECK(g[1].item() == 0);
  CHECK_FALSE(x.has_grad());
}

TEST_CASE("graph: a chain of 1,000,000 ops differentiates and frees without recursion") {
  Var a = 0.5, b = 0.999;
  {
    Var x = a;
    for (int i = 0; i < 333'334; ++i) x = gg::tanh(x * b + a);
    x.backward();
    CHECK(std::isfinite(a.grad().item()));
    CHECK(a.grad().item() > 0);
    CHECK(gg::tape_stats().live_nodes >= 1'000'000);
  }
  CHECK(gg::tape_stats().live_nodes == 0);
}

TEST_CASE("graph: the last Var of a thread's graphs frees its whole tape at once, a graph still held stays") {
  const Var w(Tensor({0.5, -0.25}, {2}));
  const auto live = gg::tape_stats().live_nodes;
  {
    Var kept;
    {
      const Var loss = gg::sum(gg::tanh(w * 3.0) * w); // tensor nodes, each with an Ext
      const Var s = 3.0;
      kept = s * s + 1.0;
      Var named = s * 2.0;
      named.name("twice"); // an Ext on a scalar node
      loss.backward();
    } // kept still holds its graph: the others are freed node by node
    CHECK(gg::tape_stats().live_nodes == live + 2);
    CHECK(kept.item() == 10);
    kept.backward();
    CHECK(kept.inputs()[0].inputs()[0].grad().item() == 6);
  } // the last Var: every node of the tape goes, the Exts recycled
  CHECK(gg::tape_stats().live_nodes == live);
  for (int step = 0; step < 3; ++step) { // the rewound segments and recycled Exts record again
    const Var loss = gg::sum(gg::tanh(w * 3.0) * w);
    loss.backward();
    CHECK(loss.item() == Approx(std::tanh(1.5) * 0.5 + std::tanh(-0.75) * -0.25));
  }
  CHECK(gg::tape_stats().live_nodes == live);
}

TEST_CASE("graph: the training loop does not grow memory") {
  Var w(Tensor({0.5, -0.25}, {2}));
  Var loss;
  std::size_t bytes_after_first = 0;
  for (int step = 0; step < 200; ++step) {
    loss = gg::sum(gg::tanh(w * 3.0) * w); // the previous graph is released on assignment
    loss.backward();
    w.set_value(gg::kernel::binary(gg::kernel::Binary::sub, w.value(), w.grad()));
    w.zero_grad();
    if (step == 0) bytes_after_first = gg::tape_stats().bytes;
  }
  CHECK(gg::tape_stats().bytes == bytes_after_first);
  CHECK(gg::tape_stats().live_nodes <= 8);
}

TEST_CASE("graph: values of a graph stay readable after backward, leaves outlive handles") {
  Var y;
  {
    Var x = 3.0;
    y = x * x;
  } // x's handle is gone; the graph keeps the leaf alive
  y.backward();
  CHECK(y.item() == 9);
  CHECK(y.inputs()[0].grad().item() == 6);
}

TEST_CASE("graph: many scalar leaves used once each (ADBenchmark's loops) give their gradients and free") {
  const int n = 20'000; // leaves referenced from four tape segments
  std::vector<Var> x;
  for (int i = 0; i < n; ++i) x.emplace_back(1.0 + i * 1e-5);
  {
    Var sum = Var::constant(0.0), prod = Var::constant(1.0);
    for (const Var& xi : x) sum += xi;
    for (int i = 0; i < 10; ++i) prod *= x[static_cast<std::size_t>(i)];
    Var y = sum + prod * x.front() + x.back(); // x[0] and x[n-1] again, from another segment
    std::vector<Var> kept(x.begin(), x.begin() + 10);
    x.erase(x.begin() + 1, x.end() - 1); // most leaves now live on through the graph only
    y.backward();
    double rest = 1; // d(prod * x0)/d(x_i), i in 1..9: prod * x0 / x_i
    for (int i = 0; i < 10; ++i) rest *= kept[static_cast<std::size_t>(i)].item();
    rest *= kept[0].item();
    CHECK(kept[0].adj() == Approx(1 + 2 * rest / kept[0].item()));
    CHECK(kept[0].adj() == kept[0].grad().item());
    CHECK(kept[5].adj() == Approx(1 + rest / kept[5].item()));
    CHECK(x.back().adj() == 2);
    CHECK(gg::tape_stats().live_nodes > static_cast<std::size_t>(n));
  }
  CHECK(gg::tape_stats().live_nodes == 0);
}

TEST_CASE("graph: adj() reads a one-element gradient as a number") {
  Var x = 3.0;
  CHECK(x.adj() == 0); // no gradient yet
  Var y = x * x;
  y.backward({.retain_graph = true});
  CHECK(x.adj() == 6);
  CHECK(y.adj() == 1);
  Var t(Tensor({2.0}, {1}));
  gg::sum(t * t).backward();
  CHECK(t.adj() == 4);
  Var v(Tensor({1.0, 2.0}, {2}));
  CHECK_THROWS_WITH(v.adj(), Catch::Contains("adj") && Catch::Contains("[2]"));
  CHECK_THROWS_WITH(Var().adj(), Catch::Contains("adj"));
}

TEST_CASE("graph: a Var recorded on another thread cannot be an input here") {
  Var x = 1.0;
  Var y;
  std::thread([&] { y = x * 2.0; }).join();
  CHECK(y.item() == 2); // reading its value is fine
  CHECK_THROWS_WITH(y + 1.0, Catch::Contains("another thread"));
  CHECK_NOTHROW(y.detach() + 1.0);
}

TEST_CASE("graph: two threads train on shared parameters, each on its own tape") {
  Var w(Tensor({1.0, 2.0}, {2}));
  auto work = [&] {
    for (int i = 0; i < 100; ++i) gg::sum(w * w).backward();
  };
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  CHECK(w.grad().to_vector() == std::vector<double>{400, 800});
}

TEST_CASE("graph: zero_grad and update_leaves of a list see another thread's passes whole or not at all") {
  const Var v(Tensor({1.0, 2.0, 3.0}, {3}));
  std::atomic<bool> done = false;
  std::atomic<int> passes = 0;
  std::thread other([&] {
    while (!done.load()) {
      try {
        gg::sum(v).backward();          // adds 1 to each element, under the leaf-gradient lock
      } catch (const gg::UsageError&) { // update_leaves marked v changed after this graph used it
      }
      ++passes;
    }
  });
  const std::vector<Var> leaves{v};
  int updates = 0;
  for (int i = 0; i < 200; ++i) {
    for (const int seen = passes.load(); passes.load() == seen;) std::this_thread::yield();
    gg::update_leaves(leaves, [&](std::size_t, Tensor&, const Tensor& grad) { // reads, writes nothing
      ++updates;
      CHECK(grad.flat(0) == grad.flat(2));
    });
    if (i % 2) gg::zero_grad(leaves);
  }
  done = true;
  other.join();
  CHECK(v.value().to_vector() == std::vector<double>{1.0, 2.0, 3.0});
  CHECK(updates > 0);
}

TEST_CASE("graph: a custom op records, differentiates and double-differentiates like a built-in") {
  auto cube = std::make_shared<gg::test::Cube>(); // x^3 with the rule 3x^2, written as a user op
  Var x(Tensor({2.0}, {1}));
  Var y = gg::apply(cube, {x});
  CHECK(y.op_name() == "cube");
  CHECK(y.item() == 8);
  Var dy = gg::grad({y}, {x}, {}, {.create_graph = true})[0];
  CHECK(dy.item() == 12);
  CHECK(gg::grad({dy}, {x})[0].item() == 12); // d2/dx2 x^3 = 6x
  auto r = gg::gradcheck([&](const std::vector<Var>& v) { return gg::apply(cube, {v[0]}); },
                         {Tensor({0.3, -1.2, 2.0}, {3})});
  CHECK(r.ok);
}

namespace {
/// A custom op keeping a Var alive: freeing the op's node runs its destructor, which frees held's node.
struct Holding : gg::Function {
  Var held;
  explicit Holding(Var v) : held(std::move(v)) {}
  std::string name() const override { return "holding"; }
  Tensor forward(const std::vector<Tensor>& in) const override { return in[0].clone(); }
  std::vector<Var> backward(const std::vector<Var>&, const Var&, const Var& g) const override { return {g}; }
};
} // namespace

TEST_CASE(
    "graph: a custom op holding a Var is freed when the cache of node extensions is one short of full") {
  // The cache holds 256 (tape.cpp's ExtCache). 600 live leaves take every cached one; freeing 255
  // leaves it one short of full. Freeing y then frees the op's node, whose destructor frees held's
  // node first: that takes the last slot, and the op's node's extension must then be deleted, not
  // written one past the cache (it overwrote the cache's count; the sanitizer build runs this).
  std::vector<Var> leaves;
  for (int i = 0; i < 600; ++i) leaves.emplace_back(Tensor({double(i)}, {1}));
  const Var x(Tensor({2.0}, {1}), true);
  Var y = gg::apply(std::make_shared<Holding>(Var(Tensor({5.0}, {1}))), {x});
  leaves.resize(600 - 255);
  y = Var();
  leaves.clear(); // the cache works on: 345 more extensions go through it
  for (int i = 0; i < 600; ++i) leaves.emplace_back(Tensor({double(i)}, {1}));
  Var z = gg::sum(gg::apply(std::make_shared<Holding>(leaves[0]), {x}) * 3.0);
  z.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3.0});
}

namespace {
/// An op whose backward fails, to check that a failed sweep leaves the graph usable.
struct Faulty : gg::Function {
  std::string name() const override { return "faulty"; }
  Tensor forward(const std::vector<Tensor>& in) const override { return in[0].clone(); }
  std::vector<Var> backward(const std::vector<Var>&, const Var&, const Var&) const override {
    throw gg::ValueError("faulty: no backward");
  }
};
} // namespace

TEST_CASE("graph: a backward that throws leaves no stale marks for the next sweep") {
  Var x(Tensor({2.0}, {1}));
  Var h = x * 3.0;
  Var y = gg::sum(gg::apply(std::make_shared<Faulty>(), {h}) + h * h);
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("faulty"));
  Var z = gg::sum(h * h); // shares h with the failed graph
  z.backward();
  CHECK(x.grad().item() == 2 * 6.0 * 3.0);
  CHECK(h.grad().item() == 12);
}

namespace {
/// A custom op whose backward starts another backward pass: refused with a clear error.
struct Nested : gg::Function {
  Var other;
  std::string name() const override { return "nested"; }
  Tensor forward(const std::vector<Tensor>& in) const override { return in[0].clone(); }
  std::vector<Var> backward(const std::vector<Var>&, const Var&, const Var& g) const override {
    gg::grad({other}, {other.inputs()[0]});
    return {g};
  }
};
} // namespace

TEST_CASE("graph: a backward pass started inside another is refused, and the next one works") {
  Var s(Tensor({3.0}, {1}));
  auto op = std::make_shared<Nested>();
  op->other = gg::sum(s * s);
  Var x(Tensor({1.0}, {1}));
  Var y = gg::sum(gg::apply(op, {x}) * 3.0);
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("another backward pass"));
  Var z = gg::sum(x * 3.0);
  z.backward();
  CHECK(x.grad().item() == 3);
}
