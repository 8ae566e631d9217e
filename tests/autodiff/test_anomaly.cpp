// Anomaly detection (gg::DetectAnomaly, as torch.autograd.detect_anomaly): the first op whose value
// or backward gradient is NaN or infinite throws an AnomalyError naming the op, the names on its path
// and its inputs; without the scope nothing is checked; the scope is per thread and nests.
#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <thread>

using Catch::Contains;
using gg::Tensor;
using gg::Var;

namespace {
/// The AnomalyError's message of f(), or "" when it throws none.
template <class F> std::string anomaly_of(F&& f) {
  try {
    f();
  } catch (const gg::AnomalyError& e) {
    return e.what();
  }
  return "";
}
} // namespace

TEST_CASE("anomaly: off, NaN and infinity flow as IEEE arithmetic says") {
  Var x = 0.0;
  const Var y = gg::log(x) * 2.0;
  CHECK(std::isinf(y.item()));
  CHECK_FALSE(gg::anomaly_detection_enabled());
  y.backward();
  CHECK(std::isinf(x.grad().item()));
}

TEST_CASE("anomaly: the first op with a non-finite value names itself, its inputs and its path") {
  const gg::DetectAnomaly on;
  Var x = 3.0;
  x.name("x");
  const Var z = (x - 3.0).name("z");
  const std::string m = anomaly_of([&] { return gg::log(z) + 1.0; });
  CHECK_THAT(m, Contains("op log") && Contains("forward pass") && Contains("-inf"));
  CHECK_THAT(m, Contains("input 0: 'z' (add_c), 0"));
  CHECK_THAT(m, Contains("path: 'z' (add_c) → log"));
  // A NaN that comes in from outside the graph is caught at the first op using it.
  Var bad = std::nan("");
  bad.name("bad");
  CHECK_THAT(anomaly_of([&] { return bad * 2.0; }), Contains("input 0: 'bad'") && Contains("nan"));
}

TEST_CASE("anomaly: tensors show their shape, non-finite count and module") {
  const gg::DetectAnomaly on;
  const Var w(Tensor({1.0, -1.0, 4.0}, {3}), true);
  const gg::Scope layer("encoder", "Encoder(3)");
  const std::string m = anomaly_of([&] { return gg::sqrt(w); });
  CHECK_THAT(m, Contains("op sqrt, in module 'encoder' (Encoder(3))"));
  CHECK_THAT(m,
             Contains("shape [3] = [1, nan, 2] (1 NaN, 0 infinite of 3; the first, nan, at flat index 1)"));
}

TEST_CASE(
    "anomaly: the first backward step with a non-finite gradient names the op and the path from the output") {
  Var x = 0.0;
  x.name("x");
  const Var r = gg::sqrt(x).name("r"); // sqrt(0) = 0 is fine; its derivative 1/(2*0) is not
  const Var f = (r * 3.0).name("f");
  {
    const gg::DetectAnomaly on;
    const std::string m = anomaly_of([&] { f.backward(); });
    CHECK_THAT(m, Contains("op 'r' (sqrt) passed a gradient that is not finite to its input 0"));
    CHECK_THAT(m, Contains("backward pass: inf"));
    CHECK_THAT(m, Contains("its own gradient (from the output): 3"));
    CHECK_THAT(m, Contains("path from the output: 'f' (mul_c) → 'r' (sqrt)"));
    CHECK_FALSE(x.has_grad()); // the sweep stopped before touching the leaf
    // The same with create_graph (the recorded backward): the gradient is checked, not the rule's ops.
    CHECK_THAT(anomaly_of([&] { gg::grad({f}, {x}, {}, {.create_graph = true}); }),
               Contains("'r' (sqrt) passed a gradient"));
    // A seed that is not finite.
    CHECK_THAT(anomaly_of([&] { f.backward(Tensor::scalar(NAN)); }), Contains("seed gradient of 'f'"));
  }
  f.backward(); // a failed sweep left nothing behind; off, the infinity flows
  CHECK(std::isinf(x.grad().item()));
}

TEST_CASE("anomaly: tensor backward steps are checked too") {
  const gg::DetectAnomaly on;
  const Var a(Tensor({1.0, 0.0}, {2}), true);
  const Var b = gg::sum(gg::sqrt(a * a + Var::constant(Tensor({0.0, 0.0}, {2}))));
  CHECK_THAT(anomaly_of([&] { b.backward(); }), Contains("op sqrt") && Contains("backward pass"));
}

TEST_CASE("anomaly: the scope is per thread, nests, and can be turned off inside") {
  {
    const gg::DetectAnomaly on;
    CHECK(gg::anomaly_detection_enabled());
    {
      const gg::detect_anomaly off(false);
      CHECK_FALSE(gg::anomaly_detection_enabled());
      CHECK_NOTHROW(gg::log(Var(0.0)));
    }
    CHECK(gg::anomaly_detection_enabled());
    bool other = true;
    std::thread([&] { other = gg::anomaly_detection_enabled(); }).join();
    CHECK_FALSE(other);
    CHECK_THROWS_AS(gg::log(Var(0.0)), gg::ValueError); // an AnomalyError is a ValueError
  }
  CHECK_FALSE(gg::anomaly_detection_enabled());
}
