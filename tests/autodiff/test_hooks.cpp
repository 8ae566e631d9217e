// Gradient hooks on leaves (Var::register_hook, register_post_accumulate_grad_hook): called once a
// leaf's gradient is final in the sweep, once per pass, in the order the sweep finishes the leaves;
// on backward(), grad() and grad(..., create_graph); removable. With threads: tests/threads/.
#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

using gg::Tensor;
using gg::Var;

TEST_CASE("hooks: a hook gets the leaf's gradient once per backward, until removed") {
  Var x = 3.0;
  std::vector<double> seen;
  gg::HookHandle h = x.register_hook([&](const Tensor& g) { seen.push_back(g.item()); });
  CHECK(h.active());
  (x * x).backward(); // 2x = 6
  (5 * x).backward();
  CHECK(seen == std::vector<double>{6, 5}); // this pass's gradient, not the accumulated one
  CHECK(x.grad().item() == 11);
  h.remove();
  CHECK_FALSE(h.active());
  (x * x).backward();
  CHECK(seen.size() == 2);
  h.remove(); // twice: nothing
  Var unused = 1.0;
  int calls = 0;
  unused.register_hook([&](const Tensor&) { ++calls; });
  (x * 2).backward(); // a pass that does not reach a hooked leaf does not call its hook
  CHECK(calls == 0);
}

TEST_CASE("hooks: a leaf used by several ops runs its hook after the last contribution") {
  // w is used by the first op and by the last one; a and b only in between. The sweep finishes b,
  // then a, then w (its first use, visited last); each hook sees its leaf's whole gradient.
  Var w = 0.5, a = 2.0, b = -1.5, x = 0.3;
  Var h1 = w * x, h2 = gg::tanh(h1 * a), h3 = h2 * b, f = h3 * w;
  std::vector<std::string> order;
  std::vector<double> got;
  w.register_hook([&](const Tensor& g) { order.push_back("w"), got.push_back(g.item()); });
  a.register_hook([&](const Tensor& g) { order.push_back("a"), got.push_back(g.item()); });
  b.register_hook([&](const Tensor& g) { order.push_back("b"), got.push_back(g.item()); });
  const std::vector<Var> ref = gg::grad({f}, {b, a, w}, {}, {.retain_graph = true});
  order.clear(), got.clear();
  f.backward();
  CHECK(order == std::vector<std::string>{"b", "a", "w"});
  REQUIRE(got.size() == 3);
  CHECK(got[0] == ref[0].item());
  CHECK(got[1] == ref[1].item());
  CHECK(got[2] == ref[2].item()); // both of w's contributions: h2*b (from f) and the path through h1
  CHECK(w.grad().item() == ref[2].item());
}

TEST_CASE("hooks: layers' parameters finish in reverse order, while the sweep goes on") {
  // A 2-layer tensor network: the second layer's weight and bias are final before the first layer's
  // rules run; a post-accumulate hook reads its leaf's .grad() (earlier passes included) at once.
  gg::Rng rng(1);
  Var w1(Tensor::randn({4, 3}, rng)), b1(Tensor::zeros({4}, gg::f64));
  Var w2(Tensor::randn({2, 4}, rng)), b2(Tensor::zeros({2}, gg::f64));
  const Tensor x = Tensor::randn({5, 3}, rng);
  const auto loss = [&] {
    return gg::sum(gg::linear(gg::tanh(gg::linear(Var::constant(x), w1, b1)), w2, b2));
  };
  loss().backward(); // grads from an earlier pass: post-accumulate hooks see the sum
  const Tensor w2_before = w2.grad().clone();
  std::vector<std::string> order;
  bool w1_final_when_w2_done = true;
  Tensor w2_seen;
  const auto watch = [&](Var& leaf, std::string name) {
    return leaf.register_post_accumulate_grad_hook([&, name](Var& v) {
      order.push_back(name);
      if (name == "w2") {
        w2_seen = v.grad().clone();
        w1_final_when_w2_done = std::find(order.begin(), order.end(), "w1") != order.end();
      }
    });
  };
  std::vector<gg::HookHandle> handles{watch(w1, "w1"), watch(b1, "b1"), watch(w2, "w2"), watch(b2, "b2")};
  loss().backward();
  REQUIRE(order.size() == 4);
  CHECK((order[0] == "w2" || order[0] == "b2"));
  CHECK((order[2] == "w1" || order[2] == "b1"));
  CHECK_FALSE(w1_final_when_w2_done);
  for (std::int64_t i = 0; i < w2_seen.numel(); ++i) CHECK(w2_seen.flat(i) == 2 * w2_before.flat(i));
  for (gg::HookHandle& h : handles) h.remove();
  order.clear();
  loss().backward();
  CHECK(order.empty());
}

TEST_CASE("hooks: grad() and grad(..., create_graph) call register_hook's hooks, not post-accumulate ones") {
  Var x = 2.0;
  std::vector<double> seen;
  int post = 0;
  x.register_hook([&](const Tensor& g) { seen.push_back(g.item()); });
  x.register_post_accumulate_grad_hook([&](Var&) { ++post; });
  Var f = x * x * x;                                            // 3x² = 12, 6x = 12
  Var dfdx = gg::grad({f}, {x}, {}, {.create_graph = true})[0]; // recorded: a hook sees its value
  CHECK(seen == std::vector<double>{12});
  CHECK(gg::grad({dfdx}, {x}, {}, {.retain_graph = true})[0].item() == 12); // f's graph stays for backward
  CHECK(seen == std::vector<double>{12, 12});
  CHECK(post == 0);
  CHECK_FALSE(x.has_grad()); // grad() leaves .grad() alone, hooks or not
  f.backward();
  CHECK(post == 1);
  CHECK(seen.size() == 3);
  CHECK(x.grad().item() == 12);
}

TEST_CASE("hooks: a tensor leaf's hook gets the summed gradient of its uses, in its dtype") {
  Var w(Tensor({1.0, 2.0}, {2}, gg::f32));
  Tensor seen;
  w.register_hook([&](const Tensor& g) { seen = g.clone(); });
  Var f = gg::sum(w * w) + gg::sum(w * 3.0);
  f.backward();
  REQUIRE(seen.defined());
  CHECK(seen.dtype() == gg::f32);
  CHECK(seen.flat(0) == 5); // 2w + 3
  CHECK(seen.flat(1) == 7);
  CHECK(w.grad().flat(1) == 7);
}

TEST_CASE("hooks: a hook that throws ends the pass with its exception, and hooks are for leaves only") {
  Var x = 1.0;
  gg::HookHandle h = x.register_hook([](const Tensor&) { throw gg::ValueError("from the hook"); });
  Var f = x * 2;
  CHECK_THROWS_WITH(f.backward(), Catch::Contains("from the hook"));
  h.remove();
  CHECK_NOTHROW(f.backward()); // the failed pass left the graph as it found it
  CHECK(x.grad().item() == 2);
  Var y = x * 3;
  CHECK_THROWS_AS(y.register_hook([](const Tensor&) {}), gg::UsageError);
  Var c = Var::constant(1.0);
  CHECK_THROWS_AS(c.register_post_accumulate_grad_hook([](Var&) {}), gg::UsageError);
  CHECK_THROWS_AS(x.register_hook({}), gg::ValueError);
}

TEST_CASE("hooks: a hook ends with its leaf") {
  gg::HookHandle h;
  {
    Var x = 1.0;
    h = x.register_hook([](const Tensor&) {});
    CHECK(h.active());
  }
  CHECK_FALSE(h.active());
  h.remove(); // after the leaf: nothing
}
