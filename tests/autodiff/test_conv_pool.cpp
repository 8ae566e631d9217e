// Tests of the fused conv2d op: its value and gradients against the unfold + matmul composition it
// replaces and against finite differences (both backward paths), chunked batches, threads, errors;
// the fused max_pool2d op likewise against unfold + max; PyTorch's full arguments (dilation, groups,
// per-axis stride and padding, ceil_mode, unbatched inputs, conv1d, avg_pool2d) against its numbers.
#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include "inputs.hpp"
#include "reference_case.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using gg::Shape;
using gg::Tensor;
using gg::Var;
using gg::test::rnd;

namespace {
/// The convolution as nn::Conv2d computed it before the fused op: unfold, a broadcast batched
/// matmul with the weight as a matrix, the bias added as a column, reshaped to images.
Var composed(const Var& x, const Var& w, const Var& b, std::int64_t stride, std::int64_t padding) {
  const Shape xs = x.shape(), ws = w.shape();
  const Var cols = gg::unfold(x, ws[2], ws[3], stride, padding);
  Var y = gg::matmul(gg::reshape(w, {ws[0], ws[1] * ws[2] * ws[3]}), cols);
  if (b.defined()) y = y + gg::reshape(b, {ws[0], 1});
  const std::int64_t oh = (xs[2] + 2 * padding - ws[2]) / stride + 1,
                     ow = (xs[3] + 2 * padding - ws[3]) / stride + 1;
  return gg::reshape(y, {xs[0], ws[0], oh, ow});
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::abs(a.flat(i) - b.flat(i)));
  return worst;
}

struct Case {
  Shape x, w;
  std::int64_t stride, padding;
  bool bias;
};

/// Shapes covering both unfold paths (the shifted plane of "same" stride-1 convolutions and the
/// general one), strides, paddings, rectangular kernels, several channels and images.
const std::vector<Case> k_cases{
    {{2, 3, 5, 6}, {4, 3, 3, 3}, 1, 1, true},  // "same": shifted-plane path
    {{2, 3, 5, 6}, {4, 3, 3, 3}, 1, 1, false}, //
    {{3, 2, 7, 7}, {2, 2, 5, 5}, 1, 2, true},  // "same", kernel 5
    {{2, 2, 6, 5}, {3, 2, 3, 3}, 2, 1, true},  // stride 2
    {{2, 3, 6, 6}, {2, 3, 2, 3}, 1, 0, true},  // rectangular kernel, no padding
    {{1, 1, 5, 5}, {2, 1, 3, 3}, 3, 2, false}, // stride 3, padding larger than needed
    {{2, 2, 4, 4}, {3, 2, 1, 1}, 1, 0, true},  // 1x1 kernel
};
} // namespace

TEST_CASE("conv2d: value and gradients equal the unfold + matmul composition") {
  for (const Case& c : k_cases) {
    INFO("x " << c.x.str() << " w " << c.w.str() << " stride " << c.stride << " padding " << c.padding
              << " bias " << c.bias);
    const Var x(rnd(c.x, 1)), w(rnd(c.w, 2)), b = c.bias ? Var(rnd({c.w[0]}, 3)) : Var();
    const Var fused = gg::conv2d(x, w, b, c.stride, c.padding);
    const Var plain = composed(x, w, b, c.stride, c.padding);
    CHECK(max_abs_diff(fused.value(), plain.value()) < 1e-13);
    const Tensor seed = rnd(fused.shape(), 4);
    const std::vector<Var> ins = c.bias ? std::vector<Var>{x, w, b} : std::vector<Var>{x, w};
    const std::vector<Var> gf = gg::grad({fused}, ins, {seed}), gp = gg::grad({plain}, ins, {seed});
    for (std::size_t i = 0; i < ins.size(); ++i) {
      INFO("input " << i);
      CHECK(max_abs_diff(gf[i].value(), gp[i].value()) < 1e-12);
    }
  }
}

TEST_CASE("conv2d: gradients against finite differences, both backward paths, float64") {
  for (const Case& c : k_cases) {
    INFO("x " << c.x.str() << " w " << c.w.str() << " stride " << c.stride << " padding " << c.padding
              << " bias " << c.bias);
    const std::int64_t stride = c.stride, padding = c.padding;
    const auto f = [&](const std::vector<Var>& v) {
      return gg::conv2d(v[0], v[1], v.size() > 2 ? v[2] : Var(), stride, padding);
    };
    std::vector<Tensor> ins{rnd(c.x, 5), rnd(c.w, 6)};
    if (c.bias) ins.push_back(rnd({c.w[0]}, 7));
    const gg::GradcheckResult r = gg::gradcheck(f, ins); // also compares with the create_graph backward
    INFO(r.message);
    CHECK(r.ok);
  }
}

TEST_CASE("conv2d: second derivatives through the recorded backward") {
  // d/dw of sum(d sum(conv(x, w)^2) / dx): checked against finite differences of the first gradient.
  const auto f = [](const std::vector<Var>& v) {
    const Var y = gg::conv2d(v[0], v[1], v[2], 1, 1);
    return gg::grad({gg::sum(y * y)}, {v[0]}, {}, {.create_graph = true})[0];
  };
  const gg::GradcheckResult r = gg::gradcheck(f, {rnd({2, 2, 4, 4}, 8), rnd({3, 2, 3, 3}, 9), rnd({3}, 10)});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("conv2d: batches larger than one chunk of columns, float32 and float64, 1 and 2 threads") {
  struct Restore {
    ~Restore() {
      gg::kernel::set_num_threads(1);
      gg::kernel::use_blas(true);
    }
  } restore;
  // 16 channels, kernel 5 on 14x14: each image's columns are 313 KB in float32, so the batch is
  // unfolded in several chunks, the last one partial.
  for (const gg::DType dtype : {gg::f32, gg::f64}) {
    const Var x(rnd({7, 16, 14, 14}, 11, dtype)), w(rnd({8, 16, 5, 5}, 12, dtype)), b(rnd({8}, 13, dtype));
    const double tol = dtype == gg::f32 ? 1e-4 : 1e-11;
    std::vector<std::vector<Tensor>> results;
    // 2 threads with OpenBLAS: im2col on the calling thread; with Eigen: split across threads.
    for (const int run : {1, 2, 3}) {
      const int threads = run == 1 ? 1 : 2;
      INFO("dtype " << gg::dtype_name(dtype) << " threads " << threads << " run " << run);
      gg::kernel::set_num_threads(threads);
      gg::kernel::use_blas(run != 3);
      const Var fused = gg::conv2d(x, w, b, 1, 2), plain = composed(x, w, b, 1, 2);
      CHECK(max_abs_diff(fused.value(), plain.value()) < tol);
      const Tensor seed = rnd(fused.shape(), 14, dtype);
      const std::vector<Var> gf = gg::grad({fused}, {x, w, b}, {seed}),
                             gp = gg::grad({plain}, {x, w, b}, {seed});
      std::vector<Tensor> r{fused.value()};
      for (std::size_t i = 0; i < 3; ++i) {
        INFO("input " << i);
        CHECK(max_abs_diff(gf[i].value(), gp[i].value()) < tol * 10);
        r.push_back(gf[i].value());
      }
      results.push_back(r);
    }
    for (std::size_t r = 1; r < results.size(); ++r)
      for (std::size_t i = 0; i < results[0].size(); ++i)
        CHECK(max_abs_diff(results[0][i], results[r][i]) < tol);
  }
}

TEST_CASE("conv2d: float32 by oneDNN (where it runs) equals im2col + GEMM, all of PyTorch's arguments, "
          "1 and 2 threads") {
  struct Restore {
    ~Restore() {
      gg::kernel::set_num_threads(1);
      gg::kernel::use_dnnl(true);
    }
  } restore;
  struct Geometry {
    Shape x, w;
    gg::Size2 stride, padding, dilation;
    std::int64_t groups;
    bool bias;
  };
  // Few channels (oneDNN's forward on our layouts) and 8 or more per group (its blocked kernels),
  // strides, asymmetric padding and dilation, groups (depthwise too), 1x1 kernels, a window that
  // leaves the last input row unread (oneDNN's negative right padding) and a batch of one.
  const std::vector<Geometry> cases{
      {{2, 3, 9, 8}, {4, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, true},
      {{3, 16, 7, 7}, {8, 16, 5, 5}, {1, 1}, {2, 2}, {1, 1}, 1, true},
      {{2, 16, 9, 10}, {12, 16, 3, 2}, {2, 1}, {1, 0}, {1, 2}, 1, false},
      {{2, 16, 8, 8}, {16, 8, 3, 3}, {1, 1}, {2, 2}, {2, 2}, 2, true},
      {{2, 8, 6, 6}, {8, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 8, true},
      {{1, 8, 5, 5}, {4, 8, 2, 2}, {2, 2}, {0, 0}, {1, 1}, 1, true},
      {{2, 32, 4, 4}, {16, 32, 1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false},
      {{1, 1, 6, 7}, {3, 1, 3, 3}, {2, 3}, {1, 2}, {1, 1}, 1, true},
  };
  for (const Geometry& c : cases)
    for (const int threads : {1, 2}) {
      INFO("x " << c.x.str() << " w " << c.w.str() << " groups " << c.groups << " threads " << threads);
      gg::kernel::set_num_threads(threads);
      const Var x(rnd(c.x, 31, gg::f32)), w(rnd(c.w, 32, gg::f32)),
          b = c.bias ? Var(rnd({c.w[0]}, 33, gg::f32)) : Var();
      const std::vector<Var> ins = c.bias ? std::vector<Var>{x, w, b} : std::vector<Var>{x, w};
      std::vector<std::vector<Tensor>> results;
      for (const bool dnnl : {true, false}) {
        gg::kernel::use_dnnl(dnnl);
        const Var y = gg::conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
        std::vector<Tensor> r{y.value()};
        for (const Var& g : gg::grad({y}, ins, {rnd(y.shape(), 34, gg::f32)})) r.push_back(g.value());
        results.push_back(r);
      }
      for (std::size_t i = 0; i < results[0].size(); ++i) {
        INFO("result " << i << " (the value, then each input's gradient)");
        CHECK(max_abs_diff(results[0][i], results[1][i]) < 1e-4);
      }
    }
  // The kernels table names what ran: after float32 convolutions of 16 channels, oneDNN when built
  // with it, im2col + GEMM otherwise.
  const std::string ran = gg::kernel::conv2d_library();
  CHECK((ran.find("oneDNN") != std::string::npos || ran.find("im2col") != std::string::npos));
  if (ran.find("oneDNN") != std::string::npos) CHECK(ran.find("backward data") != std::string::npos);
}

TEST_CASE("conv2d: one graph node, and only the inputs that require grad get gradients") {
  const Var x(rnd({2, 1, 6, 6}, 15), false), w(rnd({3, 1, 3, 3}, 16)), b(rnd({3}, 17));
  const Var y = gg::conv2d(x, w, b, 1, 1);
  CHECK(y.op_name() == "conv2d");
  CHECK(y.inputs().size() == 3);
  CHECK(y.shape() == Shape{2, 3, 6, 6});
  gg::sum(y).backward();
  CHECK_FALSE(x.has_grad());
  CHECK(w.has_grad());
  CHECK(b.grad().to_vector() == std::vector<double>{72, 72, 72}); // 2 images x 36 positions
  const Var frozen = gg::conv2d(x, Var(w.value(), false));
  CHECK_FALSE(frozen.requires_grad());
}

TEST_CASE("conv2d: shape errors name the shapes") {
  const Var x(Tensor::zeros({2, 3, 5, 5})), w(Tensor::zeros({4, 2, 3, 3}));
  REQUIRE_THROWS_AS(gg::conv2d(x, w), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::conv2d(x, w), Catch::Contains("[2, 3, 5, 5]") && Catch::Contains("[4, 2, 3, 3]"));
  REQUIRE_THROWS_WITH(gg::conv2d(x, Var(Tensor::zeros({4, 3, 3, 3})), Var(Tensor::zeros({3}))),
                      Catch::Contains("bias") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(gg::conv2d(x, Var(Tensor::zeros({4, 3, 7, 7}))), // window too big
                      "conv2d: a window of 7x7 (dilation (1, 1)) does not fit an image of shape [2, 3, 5, 5] "
                      "with padding (0, 0)");
  REQUIRE_THROWS_AS(gg::conv2d(x, Var(Tensor::zeros({4, 3, 3, 3})), Var(), 0), gg::ValueError);
}

namespace {
/// Max pooling as nn::MaxPool2d computed it before the fused op: each channel a one-channel image,
/// windows unfolded (padding -inf), the maximum of each column.
Var pooled_by_unfold(const Var& x, std::int64_t k, std::int64_t stride, std::int64_t padding) {
  const Shape s = x.shape();
  const Var cols = gg::unfold(gg::reshape(x, {s[0] * s[1], 1, s[2], s[3]}), k, k, stride, padding,
                              -std::numeric_limits<double>::infinity());
  const std::int64_t oh = (s[2] + 2 * padding - k) / stride + 1, ow = (s[3] + 2 * padding - k) / stride + 1;
  return gg::reshape(gg::max(cols, 1), {s[0], s[1], oh, ow});
}

/// Equal, NaN where the other is NaN.
bool same_values(const Tensor& a, const Tensor& b) {
  if (!(a.shape() == b.shape())) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double u = a.flat(i), v = b.flat(i);
    if (!(u == v || (std::isnan(u) && std::isnan(v)) || std::abs(u - v) < 1e-12)) return false;
  }
  return true;
}

struct PoolCase {
  Shape x;
  std::int64_t k, stride, padding;
};
// Disjoint windows (kernel 2 and 3 specialised, 4 general) with rows and columns no window
// covers; overlapping and padded windows.
const std::vector<PoolCase> k_pools{
    {{2, 3, 6, 6}, 2, 2, 0}, {{2, 2, 5, 7}, 2, 2, 0}, {{1, 2, 7, 6}, 3, 3, 0}, {{1, 2, 9, 8}, 4, 4, 0},
    {{2, 2, 5, 5}, 3, 2, 1}, {{1, 3, 5, 4}, 2, 1, 0}, {{1, 1, 6, 6}, 2, 2, 1},
};
} // namespace

TEST_CASE("max_pool2d: value and gradients equal unfold + max, ties, NaN and -inf included (gradients: "
          "without -inf, which unfold + max may route to the padding)") {
  for (const PoolCase& c : k_pools)
    for (const int data : {0, 1, 2}) {
      INFO("x " << c.x.str() << " kernel " << c.k << " stride " << c.stride << " padding " << c.padding
                << " data " << data);
      Tensor v = rnd(c.x, 20);
      if (data == 1) // ties: many equal values, as after a ReLU
        for (std::int64_t i = 0; i < v.numel(); ++i) v.set_flat(i, std::max(0.0, std::round(v.flat(i) * 2)));
      if (data == 2) { // a NaN and a run of -inf
        v.set_flat(3, std::nan(""));
        for (std::int64_t i = 10; i < std::min<std::int64_t>(v.numel(), 30); ++i)
          v.set_flat(i, -std::numeric_limits<double>::infinity());
      }
      const Var x(v);
      const Var fused = gg::max_pool2d(x, c.k, c.stride, c.padding);
      const Var plain = pooled_by_unfold(x, c.k, c.stride, c.padding);
      CHECK(fused.op_name() == "max_pool2d");
      CHECK(same_values(fused.value(), plain.value()));
      // Both give a window's gradient to its first maximum; but an all -inf window's first element
      // may be unfold's padding, where PyTorch's index (test_parity.cpp) is the first inside.
      if (data == 2 && c.padding > 0) continue;
      const Tensor seed = rnd(fused.shape(), 21);
      // Both graphs serve twice: retained the first time.
      CHECK(same_values(gg::grad({fused}, {x}, {seed}, {.retain_graph = true})[0].value(),
                        gg::grad({plain}, {x}, {seed}, {.retain_graph = true})[0].value()));
      // The recorded (create_graph) backward gives the same.
      const Var recorded = gg::grad({fused}, {x}, {seed}, {.create_graph = true})[0];
      CHECK(same_values(recorded.value(), gg::grad({plain}, {x}, {seed})[0].value()));
    }
}

TEST_CASE(
    "max_pool2d: 2x2 windows in float32 (eight at a time) equal float64's, ties, NaN and -inf included") {
  // Rows of 18 and 8 windows: whole blocks of eight and a scalar tail; a column and a row no window covers.
  for (const Shape& shape : {Shape{2, 3, 6, 37}, Shape{1, 2, 5, 16}})
    for (const int data : {0, 1, 2}) {
      INFO("x " << shape.str() << " data " << data);
      Tensor v = rnd(shape, 23).to(gg::f32).to(gg::f64); // values float32 holds exactly
      if (data == 1)
        for (std::int64_t i = 0; i < v.numel(); ++i) v.set_flat(i, std::max(0.0, std::round(v.flat(i) * 2)));
      if (data == 2) {
        v.set_flat(5, std::nan(""));
        for (std::int64_t i = 40; i < 60; ++i) v.set_flat(i, -std::numeric_limits<double>::infinity());
      }
      const Var x64(v), x32(v.to(gg::f32));
      const Var y64 = gg::max_pool2d(x64, 2), y32 = gg::max_pool2d(x32, 2);
      CHECK(same_values(y32.value().to(gg::f64), y64.value()));
      const Tensor seed = rnd(y64.shape(), 24).to(gg::f32).to(gg::f64);
      const Tensor g64 = gg::grad({y64}, {x64}, {seed})[0].value(),
                   g32 = gg::grad({y32}, {x32}, {seed.to(gg::f32)})[0].value().to(gg::f64);
      for (std::int64_t i = 0; i < g64.numel(); ++i) { // g / ties rounded in float32 against in float64
        const double a = g32.flat(i), b = g64.flat(i);
        INFO("element " << i << ": " << a << " against " << b);
        CHECK((std::isnan(a) == std::isnan(b) && (std::isnan(a) || std::abs(a - b) <= 1e-7 * std::abs(b))));
      }
    }
}

TEST_CASE("max_pool2d: gradients against finite differences, float32 equals float64 on 1 and 2 threads") {
  struct Restore {
    ~Restore() { gg::kernel::set_num_threads(1); }
  } restore;
  for (const PoolCase& c : k_pools) {
    INFO("x " << c.x.str() << " kernel " << c.k << " stride " << c.stride << " padding " << c.padding);
    const std::int64_t k = c.k, stride = c.stride, padding = c.padding;
    const gg::GradcheckResult r = gg::gradcheck(
        [&](const std::vector<Var>& v) { return gg::max_pool2d(v[0], k, stride, padding); }, {rnd(c.x, 22)});
    INFO(r.message);
    CHECK(r.ok);
  }
  // Enough planes for the kernel threads.
  const Var x(rnd({64, 16, 28, 28}, 23, gg::f32));
  const Tensor seed = rnd({64, 16, 14, 14}, 24, gg::f32);
  gg::kernel::set_num_threads(1);
  const Tensor y1 = gg::max_pool2d(x, 2, 2).value(),
               g1 = gg::grad({gg::max_pool2d(x, 2, 2)}, {x}, {seed})[0].value();
  gg::kernel::set_num_threads(2);
  const Tensor y2 = gg::max_pool2d(x, 2, 2).value(),
               g2 = gg::grad({gg::max_pool2d(x, 2, 2)}, {x}, {seed})[0].value();
  CHECK(y1.to_vector() == y2.to_vector());
  CHECK(g1.to_vector() == g2.to_vector());
  const Var x64(x.value().to(gg::f64));
  CHECK(same_values(gg::max_pool2d(x64, 2, 2).value(), y1.to(gg::f64)));
}

TEST_CASE("max_pool2d: errors name the op and the shape") {
  CHECK_THROWS_WITH(gg::max_pool2d(Var(Tensor::zeros({2, 3})), 2, 2),
                    Catch::Contains("max_pool2d") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_AS(gg::max_pool2d(Var(Tensor::zeros({1, 1, 2, 2})), 3, 3), gg::ShapeError);
  CHECK_THROWS_AS(gg::max_pool2d(Var(Tensor::zeros({1, 1, 4, 4})), 2, -1), gg::ValueError);
  // Padding beyond half the kernel is refused, as PyTorch (and nn::MaxPool2d) refuse it.
  CHECK_THROWS_WITH(gg::max_pool2d(Var(Tensor::zeros({1, 1, 5, 5})), 3, 1, 2),
                    Catch::StartsWith("max_pool2d: padding (2, 2) must be at most half the kernel (3, 3)"));
  CHECK_THROWS_WITH(gg::avg_pool2d(Var(Tensor::zeros({1, 1, 5, 5})), 3, 1, 2),
                    Catch::StartsWith("avg_pool2d:"));
  // An error of avg_pool2d names it, not the unfold inside it.
  CHECK_THROWS_WITH(gg::avg_pool2d(Var(Tensor::zeros({1, 1, 2, 2})), 3), Catch::StartsWith("avg_pool2d:"));
  CHECK_THROWS_WITH(gg::avg_pool2d(Var(Tensor::zeros({2, 2})), 1), Catch::StartsWith("avg_pool2d:"));
}

TEST_CASE("conv2d, conv1d, max_pool2d, avg_pool2d: PyTorch's full arguments (per-axis stride and padding, "
          "dilation, groups, ceil_mode, unbatched inputs) give its values and gradients") {
  // tests/autodiff/data/make_conv_reference.py -> conv_reference.txt
  static const auto ref = gg::test::read_reference("conv_reference.txt");
  using V = std::vector<Var>;
  const auto check = [&](const std::string& name, const std::vector<std::string>& inputs,
                         const std::function<Var(const V&)>& f) {
    gg::test::check_reference_case(ref, name, inputs, f, "r");
  };
  check("conv_groups", {"x", "w", "b"}, [](const V& v) {
    return gg::conv2d(v[0], v[1], v[2], {2, 1}, {1, 0}, {1, 2}, 2);
  });
  check("conv_dilated_same", {"x", "w"}, [](const V& v) { return gg::conv2d(v[0], v[1], Var(), 1, 2, 2); });
  check("conv_depthwise", {"x", "w"}, [](const V& v) { return gg::conv2d(v[0], v[1], Var(), 1, 1, 1, 3); });
  check("conv_unbatched", {"x", "w", "b"}, [](const V& v) {
    return gg::conv2d(v[0], v[1], v[2], {1, 2}, 1);
  });
  check("conv1d", {"x", "w", "b"}, [](const V& v) { return gg::conv1d(v[0], v[1], v[2], 2, 1, 2); });
  check("conv1d_groups_unbatched", {"x", "w"},
        [](const V& v) { return gg::conv1d(v[0], v[1], Var(), 1, 1, 1, 3); });
  check("maxpool_full", {"x"}, [](const V& v) {
    return gg::max_pool2d(v[0], {3, 2}, {2, 1}, 1, {1, 2}, true);
  });
  check("maxpool_ceil_unbatched", {"x"}, [](const V& v) { return gg::max_pool2d(v[0], 3, 2, 0, 1, true); });
  check("avgpool_ceil", {"x"}, [](const V& v) { return gg::avg_pool2d(v[0], {3, 2}, 2, 1, true); });
  check("avgpool_ceil_nopad", {"x"}, [](const V& v) { return gg::avg_pool2d(v[0], 3, 2, 1, true, false); });
  check("avgpool_unbatched", {"x"}, [](const V& v) { return gg::avg_pool2d(v[0], 2); });
  // float32 kernels with groups and dilation against the float64 reference.
  const Var x32(ref.at("conv_groups.x").to(gg::f32)), w32(ref.at("conv_groups.w").to(gg::f32));
  const Var y32 = gg::conv2d(x32, w32, Var(ref.at("conv_groups.b").to(gg::f32)), {2, 1}, {1, 0}, {1, 2}, 2);
  CHECK(y32.dtype() == gg::f32);
  CHECK(gg::test::max_error(y32.value(), ref.at("conv_groups.value")) < 1e-5);
  // Groups that do not divide the channels are named with both shapes.
  CHECK_THROWS_WITH(
      gg::conv2d(Var(Tensor::zeros({1, 4, 5, 5})), Var(Tensor::zeros({3, 2, 3, 3})), Var(), 1, 0, 1, 2),
      Catch::StartsWith("conv2d:") && Catch::Contains("[1, 4, 5, 5]") && Catch::Contains("[3, 2, 3, 3]") &&
          Catch::Contains("groups = 2"));
}
