// Ops that outside checks (random tensor programs against torch) found missing or different, against
// PyTorch's values and gradients (data/make_parity_reference.py -> parity_reference.txt): min and
// amin, maximum and minimum with ties, softplus, gather; and PyTorch's answers for squeeze,
// unsqueeze, where with a Var condition, index_select's negative indices, and 0-d transpose and
// index_select; errors inside a function built on another op (conv1d on conv2d, the reductions along
// an axis on their shared recorder) naming the function called; the maxima's gradients at ties and
// NaN (data/make_max_ties_reference.py -> max_ties_reference.txt): max_pool2d, max and min whole and
// along an axis, amax and amin.
#include <autodiff/autodiff.hpp>

#include "reference_case.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

using gg::Tensor;
using gg::Var;

namespace {

const std::map<std::string, Tensor>& ref() {
  static const auto r = gg::test::read_reference("parity_reference.txt");
  return r;
}
const Tensor& R(const std::string& name) {
  INFO("reference " << name);
  REQUIRE(ref().count(name) == 1);
  return ref().at(name);
}

/// The case's value and its inputs' gradients of sum(value * w) against PyTorch's, to 1e-12.
void check_case(const std::string& name, const std::vector<std::string>& inputs,
                const std::function<Var(const std::vector<Var>&)>& f) {
  gg::test::check_reference_case(ref(), name, inputs, f);
}

} // namespace

TEST_CASE("parity: maximum and minimum split the gradient in half at ties, as PyTorch") {
  check_case("maximum", {"a", "b"}, [](const std::vector<Var>& v) { return gg::maximum(v[0], v[1]); });
  check_case("minimum", {"a", "b"}, [](const std::vector<Var>& v) { return gg::minimum(v[0], v[1]); });
  // Scalar nodes too, and a NaN wins as in PyTorch.
  Var a = 2.0, b = 2.0;
  const Var m = gg::maximum(a, b);
  m.backward();
  CHECK(a.grad().item() == 0.5);
  CHECK(b.grad().item() == 0.5);
  CHECK(std::isnan(gg::maximum(Var(NAN), Var(1.0)).item()));
  CHECK(std::isnan(gg::minimum(Var(1.0), Var(NAN)).item()));
}

TEST_CASE("parity: min and amin, whole and along an axis, as PyTorch") {
  check_case("min", {"x"}, [](const std::vector<Var>& v) { return gg::min(v[0]); });
  check_case("amin1", {"x"}, [](const std::vector<Var>& v) { return gg::amin(v[0], 1); });
  check_case("amin0_keepdim", {"x"}, [](const std::vector<Var>& v) { return gg::amin(v[0], 0, true); });
  CHECK(gg::amax(Var(R("min.x")), 1).value().to_vector() == gg::max(Var(R("min.x")), 1).value().to_vector());
  CHECK_THROWS_WITH(gg::min(Var(Tensor::zeros({0}))), Catch::StartsWith("min: "));
}

TEST_CASE("parity: the maxima's gradients at ties and NaN, as PyTorch: max_pool2d's and max(x, axis)'s to "
          "one index, max(x), amax and amin shared") {
  static const auto ties = gg::test::read_reference("max_ties_reference.txt");
  using V = std::vector<Var>;
  using F = std::function<Var(const V&)>;
  const auto check = [&](const std::string& name, const F& f) {
    gg::test::check_reference_case(ties, name, {"x"}, f, "r");
  };
  for (const char* data : {"ties", "nan"}) {
    INFO(data);
    const std::string d = data;
    check("pool2_" + d, [](const V& v) { return gg::max_pool2d(v[0], 2); });
    check("pool3_" + d, [](const V& v) { return gg::max_pool2d(v[0], 3); });
    check("max_" + d, [](const V& v) { return gg::max(v[0]); });
    check("min_" + d, [](const V& v) { return gg::min(v[0]); });
    // In float32 too: the 2x2 windows eight at a time (nn::MaxPool2d calls the op).
    const Tensor& x = ties.at("pool2_" + d + ".x");
    const Var x32(x.to(gg::f32));
    const Var y32 = gg::max_pool2d(x32, 2);
    gg::sum(y32 * Var::constant(ties.at("pool2_" + d + ".r").to(gg::f32))).backward();
    CHECK(gg::test::max_error(x32.grad().to(gg::f64), ties.at("pool2_" + d + ".grad.x")) < 1e-6);
  }
  check("pool_overlap_ties", [](const V& v) { return gg::max_pool2d(v[0], 3, 1); });
  check("pool_pad_dilate_ties", [](const V& v) {
    return gg::max_pool2d(v[0], {3, 2}, {2, 1}, 1, {1, 2}, true);
  });
  check("pool_overlap_nan", [](const V& v) { return gg::max_pool2d(v[0], 2, 1); });
  check("pool_pad_nan", [](const V& v) { return gg::max_pool2d(v[0], 3, 2, 1); });
  check("pool2_unbatched_nan", [](const V& v) { return gg::max_pool2d(v[0], 2); });
  check("max1", [](const V& v) { return gg::max(v[0], 1); });
  check("max0_keepdim", [](const V& v) { return gg::max(v[0], 0, true); });
  check("min1", [](const V& v) { return gg::min(v[0], 1); });
  check("amax1", [](const V& v) { return gg::amax(v[0], 1); });
  check("amax0_keepdim", [](const V& v) { return gg::amax(v[0], 0, true); });
  check("amin1", [](const V& v) { return gg::amin(v[0], 1); });
}

TEST_CASE("parity: softplus with beta and threshold, as PyTorch") {
  check_case("softplus", {"x"}, [](const std::vector<Var>& v) { return gg::softplus(v[0]); });
  check_case("softplus_b2_t1.5", {"x"}, [](const std::vector<Var>& v) { return gg::softplus(v[0], 2, 1.5); });
  Var s = 0.3; // a scalar node
  const Var y = gg::softplus(s, 2, 1.5);
  y.backward();
  CHECK(y.item() == Approx(std::log1p(std::exp(0.6)) / 2).epsilon(1e-15));
  CHECK(s.grad().item() == Approx(1 / (1 + std::exp(-0.6))).epsilon(1e-15));
}

TEST_CASE("parity: gather along each axis, as PyTorch, and its bad indices named") {
  check_case("gather1", {"x"},
             [](const std::vector<Var>& v) { return gg::gather(v[0], 1, R("gather1.index")); });
  check_case("gather0", {"x"},
             [](const std::vector<Var>& v) { return gg::gather(v[0], -2, R("gather0.index")); });
  const Var x(Tensor::zeros({2, 3}));
  CHECK_THROWS_WITH(gg::gather(x, 1, Tensor({0, -1}, {1, 2})),
                    Catch::StartsWith("gather: index -1 at [0, 1] is out of range for axis 1 of size 3"));
  CHECK_THROWS_WITH(gg::gather(x, 1, Tensor({0, 3}, {1, 2})), Catch::Contains("index 3"));
  CHECK_THROWS_WITH(gg::gather(x, 1, Tensor({0, 1}, {2})), Catch::StartsWith("gather: index of shape [2]"));
  CHECK_THROWS_WITH(gg::gather(x, 1, Tensor::zeros({3, 1})),
                    Catch::StartsWith("gather: index of shape [3, 1]") && Catch::Contains("[2, 3]"));
  CHECK(gg::gather(Var(Tensor::scalar(4)), 0, Tensor::scalar(0)).item() == 4);
}

TEST_CASE("parity: squeeze and unsqueeze as PyTorch") {
  const Var x(Tensor::zeros({1, 3, 1, 2}));
  CHECK(gg::squeeze(x).shape() == gg::Shape{3, 2});
  CHECK(gg::squeeze(x, 2).shape() == gg::Shape{1, 3, 2});
  CHECK(gg::squeeze(x, -3).shape() == gg::Shape{1, 3, 1, 2}); // size 3: unchanged
  CHECK(gg::unsqueeze(x, 0).shape() == gg::Shape{1, 1, 3, 1, 2});
  CHECK(gg::unsqueeze(x, -1).shape() == gg::Shape{1, 3, 1, 2, 1});
  CHECK(gg::unsqueeze(x, 4).shape() == gg::Shape{1, 3, 1, 2, 1});
  CHECK_THROWS_AS(gg::unsqueeze(x, 5), gg::ValueError);
  CHECK(gg::unsqueeze(Var(2.0), 0).shape() == gg::Shape{1});
  CHECK(gg::squeeze(Var(Tensor::scalar(2)), 0).shape() == gg::Shape{});
  Var y(Tensor({1, 2}, {1, 2}));
  gg::sum(gg::squeeze(y) * Var::constant(Tensor({3, 4}, {2}))).backward();
  CHECK(y.grad().to_vector() == std::vector<double>{3, 4});
}

TEST_CASE("parity: where takes a condition Var, index_select refuses negative indices, 0-d transpose "
          "and index_select return the input") {
  const Var cond(Tensor({1, 0, 1}, {3}));
  Var a(Tensor({1, 2, 3}, {3})), b(Tensor({4, 5, 6}, {3}));
  const Var w = gg::where(cond, a, b);
  CHECK(w.value().to_vector() == std::vector<double>{1, 5, 3});
  gg::sum(w).backward();
  CHECK(a.grad().to_vector() == std::vector<double>{1, 0, 1});
  CHECK_THROWS_WITH(gg::index_select(a, 0, {0, -1}),
                    Catch::StartsWith("index_select: index -1 at position 1 is negative"));
  const Var s(Tensor::scalar(5));
  CHECK(gg::transpose(s, 0, -1).node() == s.node());
  CHECK_THROWS_AS(gg::transpose(s, 0, 1), gg::ValueError);
  CHECK(gg::index_select(s, 0, {0, 0}).node() == s.node());
  CHECK_THROWS_AS(gg::index_select(s, 0, {1}), gg::ValueError);
  CHECK_THROWS_AS(gg::index_select(s, 0, {}), gg::ValueError);
}

TEST_CASE("parity: conv1d's errors name conv1d and its own shapes, not the conv2d it runs") {
  // conv1d runs conv2d on images one row high: its errors say conv1d and show the 1-d shapes.
  const Var x(Tensor::zeros({2, 3, 10}));
  CHECK_THROWS_WITH(
      gg::conv1d(x, Var(Tensor::zeros({2, 4, 3}))),
      "conv1d: input of shape [2, 3, 10] and weight of shape [2, 4, 3] do not fit with groups = 1 "
      "(expected an input [N, C, L] and a weight [out, C / groups, k], out divisible by groups)");
  CHECK_THROWS_AS(gg::conv1d(x, Var(Tensor::zeros({2, 3, 3})), Var(), 1, 0, 1, 2), gg::ShapeError);
  CHECK_THROWS_WITH(gg::conv1d(x, Var(Tensor::zeros({2, 3, 3})), Var(), 1, 0, 1, 0),
                    "conv1d: groups must be >= 1, got 0");
  CHECK_THROWS_WITH(gg::conv1d(x, Var(Tensor::zeros({2, 3, 3})), Var(Tensor::zeros({3}))),
                    "conv1d: bias of shape [3] does not fit weight of shape [2, 3, 3] (expected [2])");
  CHECK_THROWS_WITH(gg::conv1d(x, Var(Tensor::zeros({2, 3, 3})), Var(), 0),
                    Catch::StartsWith("conv1d: kernel 3, stride 0, padding 0, dilation 1: "));
  CHECK_THROWS_WITH(gg::conv1d(x, Var(Tensor::zeros({2, 3, 3})), Var(), 1, -1),
                    Catch::StartsWith("conv1d: kernel 3, stride 1, padding -1, dilation 1: "));
  CHECK_THROWS_WITH(gg::conv1d(x, Var(Tensor::zeros({2, 3, 3})), Var(), 1, std::int64_t{1} << 62),
                    "conv1d: kernel 3, stride 1, padding 4611686018427387904, dilation 1 on a sequence of "
                    "shape [2, 3, 10]: "
                    "the windows would hold more than 2^60 elements");
  CHECK_THROWS_WITH( // a dilation whose window's span overflows ends here too: the message names it
      gg::conv1d(x, Var(Tensor::zeros({2, 3, 3})), Var(), 1, 0, std::int64_t{1} << 62),
      "conv1d: kernel 3, stride 1, padding 0, dilation 4611686018427387904 on a sequence of shape [2, 3, "
      "10]: "
      "the windows would hold more than 2^60 elements");
  CHECK_THROWS_WITH(
      gg::conv1d(Var(Tensor::zeros({3, 2})), Var(Tensor::zeros({2, 3, 3}))),
      "conv1d: a window of 3 (dilation 1) does not fit a sequence of shape [3, 2] with padding 0");
  CHECK_THROWS_WITH(gg::conv1d(x, Var(Tensor::zeros({2, 3, 4})), Var(), 1, 0, 4),
                    Catch::StartsWith("conv1d: a window of 4 (dilation 4)"));
  // The largest window that fits, and one that fits only with its padding, are not refused.
  CHECK(gg::conv1d(x, Var(Tensor::zeros({2, 3, 4})), Var(), 1, 0, 3).shape() == gg::Shape{2, 2, 1});
  CHECK(gg::conv1d(Var(Tensor::zeros({3, 2})), Var(Tensor::zeros({2, 3, 3})), Var(), 1, 1).shape() ==
        gg::Shape{2, 2});
}

TEST_CASE("parity: reductions along an axis name the function called (amin), not the op kind it records "
          "(amin_axis)") {
  const Var m(Tensor::zeros({3, 4}));
  const std::vector<std::pair<std::string, std::function<Var()>>> along{
      {"sum", [&] { return gg::sum(m, 2); }},
      {"mean", [&] { return gg::mean(m, -3); }},
      {"max", [&] { return gg::max(m, 2); }},
      {"min", [&] { return gg::min(m, 2); }},
      {"amin", [&] { return gg::amin(m, 2); }},
      {"amax", [&] { return gg::amax(m, 2); }},
      {"amin", [] { return gg::amin(Var(Tensor::scalar(1)), 1); }}};
  for (const auto& [name, f] : along) {
    INFO(name);
    CHECK_THROWS_WITH(f(), Catch::StartsWith(name + ": axis "));
  }
  // An empty axis: the extrema have no value there (PyTorch refuses too).
  const Var empty(Tensor::zeros({3, 0}));
  const std::vector<std::pair<std::string, std::function<Var()>>> extrema{
      {"max", [&] { return gg::max(empty, 1); }},
      {"min", [&] { return gg::min(empty, 1); }},
      {"amax", [&] { return gg::amax(empty, -1); }},
      {"amin", [&] { return gg::amin(empty, 1, true); }}};
  for (const auto& [name, f] : extrema) {
    INFO(name);
    CHECK_THROWS_WITH(f(), name + ": cannot reduce axis 1 of size 0 (shape [3, 0])");
  }
}
