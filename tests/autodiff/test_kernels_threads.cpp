// Tests of the performance paths of autodiff: the recycled tensor buffers, the kernels' threaded
// paths against their single-threaded results, and the fused ops against finite differences.
#include <autodiff/autodiff.hpp>
#include <autodiff/src/kernels/gemm.hpp>    // the GEMM libraries, internal
#include <autodiff/src/kernels/kernels.hpp> // the backward kernels, internal
#include <autodiff/src/ops/elementwise.hpp> // the elementwise rows, internal
#include <autodiff/src/thread_pool.hpp>     // run_parallel, internal

#include <catch2/catch.hpp>

#include "inputs.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using gg::Shape;
using gg::Tensor;
using gg::Var;
using gg::test::rnd;
using gg::test::values;

TEST_CASE("kernels: recycled buffers never alias a live tensor, across threads too") {
  std::vector<Tensor> live;
  for (int i = 0; i < 200; ++i) {
    Tensor t = Tensor::full({static_cast<std::int64_t>(1 + i % 37)}, i, gg::f32);
    if (i % 3 == 0) live.push_back(t); // the others are freed and their buffers reused
  }
  std::vector<Tensor> from_thread;
  std::thread([&] { // allocated here, freed on the main thread: goes to the main thread's cache
    for (int i = 0; i < 50; ++i) from_thread.push_back(Tensor::full({16}, -1.0, gg::f64));
  })
      .join();
  from_thread.clear();
  std::vector<Tensor> fresh;
  for (int i = 0; i < 100; ++i) fresh.push_back(Tensor::full({16}, 1000.0 + i, gg::f64));
  for (std::size_t k = 0; k < live.size(); ++k) {
    const int i = static_cast<int>(3 * k);
    REQUIRE(live[k].numel() == 1 + i % 37);
    for (std::int64_t j = 0; j < live[k].numel(); ++j) REQUIRE(live[k].flat(j) == i);
  }
  for (int i = 0; i < 100; ++i)
    for (std::int64_t j = 0; j < 16; ++j) REQUIRE(fresh[static_cast<std::size_t>(i)].flat(j) == 1000.0 + i);
}

namespace {
gg::GradcheckResult check(const std::function<Var(const std::vector<Var>&)>& f,
                          const std::vector<Tensor>& xs) {
  return gg::gradcheck(f, xs);
}

/// A run_parallel job that counts how often each index of [0, n) was run, and whether a job started
/// from inside one of its chunks was refused.
struct Coverage {
  std::vector<std::atomic<int>> hits;
  std::atomic<int> nested_accepted{0};
  explicit Coverage(std::int64_t n) : hits(static_cast<std::size_t>(n)) {}
  static void call(void* ctx, std::int64_t lo, std::int64_t hi) {
    auto& c = *static_cast<Coverage*>(ctx);
    for (std::int64_t i = lo; i < hi; ++i) c.hits[static_cast<std::size_t>(i)].fetch_add(1);
    // Inside a job (not when a refused job runs on its caller), a job started here runs here.
    if (gg::detail::in_parallel_job() && gg::detail::run_parallel(
                                             2, 2, [](void*, std::int64_t, std::int64_t) {}, nullptr))
      c.nested_accepted.fetch_add(1);
  }
  /// Runs the job on `parts` threads (on the caller when the pool refuses it); true if every index ran once.
  bool run(int parts) {
    const auto n = static_cast<std::int64_t>(hits.size());
    if (!gg::detail::run_parallel(n, parts, &Coverage::call, this)) call(this, 0, n);
    return std::all_of(hits.begin(), hits.end(), [](const std::atomic<int>& h) { return h.load() == 1; }) &&
           nested_accepted.load() == 0;
  }
};
} // namespace

TEST_CASE("gemm and linear: operands of mixed dtypes give the float64 product of the converted operands") {
  const Tensor a32 = rnd({3, 4}, 21).to(gg::f32), b = rnd({4, 2}, 22), bt = rnd({2, 4}, 23);
  for (const bool tb : {false, true}) {
    const Tensor& rhs = tb ? bt : b;
    const Tensor got = gg::kernel::gemm(a32, false, rhs, tb),
                 want = gg::kernel::gemm(a32.to(gg::f64), false, rhs, tb);
    CHECK(got.dtype() == gg::f64);
    CHECK(got.to_vector() == want.to_vector());
    const Tensor c32 = a32.reshape({4, 3}); // a float32 right operand, the left one transposed or not
    const Tensor got_r = gg::kernel::gemm(rhs, !tb, c32, false);
    CHECK(got_r.dtype() == gg::f64);
    CHECK(got_r.to_vector() == gg::kernel::gemm(rhs, !tb, c32.to(gg::f64), false).to_vector());
  }
  const Tensor bias32 = rnd({2}, 24).to(gg::f32);
  const Tensor y = gg::kernel::linear(a32, bt, bias32);
  CHECK(y.dtype() == gg::f64);
  CHECK(y.to_vector() == gg::kernel::linear(a32.to(gg::f64), bt, bias32.to(gg::f64)).to_vector());
}

TEST_CASE(
    "GRADGRAPH_SPIN_US: microseconds from 0 to 1,000,000; unset 200; anything else warns and gives 200") {
  std::vector<std::string> warned;
  const auto previous = gg::set_warning_handler([&](std::string_view m) { warned.emplace_back(m); });
  CHECK(gg::detail::spin_us_of(nullptr) == 200);
  CHECK(gg::detail::spin_us_of("") == 200);
  CHECK(gg::detail::spin_us_of("200") == 200);
  CHECK(gg::detail::spin_us_of("0") == 0);
  CHECK(gg::detail::spin_us_of("5000000") == 1000000);
  CHECK(gg::detail::spin_us_of("99999999999999999999999") == 1000000);
  CHECK(warned.empty());
  for (const char* bad : {"abc", "200us", "-5", "1.5"}) {
    CHECK(gg::detail::spin_us_of(bad) == 200);
    REQUIRE(!warned.empty());
    CHECK(warned.back() ==
          "GRADGRAPH_SPIN_US='" + std::string(bad) +
              "' is not a number of microseconds (0 to 1000000); the kernel threads spin the "
              "default 200 us between jobs");
  }
  CHECK(warned.size() == 4);
  gg::set_warning_handler(previous);
}

TEST_CASE("kernel threads: each index runs once, back to back, with the helpers asleep, and from two threads "
          "at once") {
  for (const int parts : {2, 4}) {
    int bad = 0;
    for (int rep = 0; rep < 300; ++rep) {
      if (rep % 60 == 59) std::this_thread::sleep_for(std::chrono::milliseconds(1)); // helpers asleep
      Coverage c(1 + rep * 37 % 997);
      bad += !c.run(parts);
    }
    CHECK(bad == 0);
  }
  // A second thread's job while one runs is refused and runs on its caller: still each index once.
  std::atomic<int> bad{0};
  const auto jobs = [&] {
    for (int rep = 0; rep < 200; ++rep) {
      Coverage c(64 + rep % 129);
      if (!c.run(2)) bad.fetch_add(1);
    }
  };
  std::thread other(jobs);
  jobs();
  other.join();
  CHECK(bad.load() == 0);
}

TEST_CASE("linear: x @ w^T + b, with its gradients against finite differences") {
  const auto with_bias = [](const std::vector<Var>& v) { return gg::linear(v[0], v[1], v[2]); };
  const auto no_bias = [](const std::vector<Var>& v) { return gg::linear(v[0], v[1]); };
  for (const Shape& xs : {Shape{4, 3}, Shape{2, 5, 3}, Shape{3}, Shape{1, 3}}) {
    INFO("x shape " << xs.str());
    const gg::GradcheckResult r = check(with_bias, {rnd(xs, 1), rnd({2, 3}, 2), rnd({2}, 3)});
    INFO(r.message);
    CHECK(r.ok);
    const gg::GradcheckResult r2 = check(no_bias, {rnd(xs, 4), rnd({2, 3}, 5)});
    INFO(r2.message);
    CHECK(r2.ok);
  }
  // The same numbers as the unfused composition.
  const Var x(rnd({4, 3}, 6)), w(rnd({2, 3}, 7)), b(rnd({2}, 8));
  const Var fused = gg::linear(x, w, b), plain = gg::matmul(x, gg::transpose(w)) + b;
  const std::vector<double> f = values(fused), p = values(plain);
  REQUIRE(f.size() == p.size());
  for (std::size_t i = 0; i < f.size(); ++i) CHECK(f[i] == Approx(p[i]).epsilon(1e-14));
  CHECK(fused.op_name() == "linear");
  CHECK(fused.inputs().size() == 3);
}

TEST_CASE("linear: mixed dtypes promote to float64, with the values and gradients of converted inputs") {
  const Tensor x32 = rnd({3, 4}, 11).to(gg::f32);
  const Var x(x32), w(rnd({2, 4}, 12)), b(rnd({2}, 13).to(gg::f32));
  const Var y = gg::linear(x, w, b);
  CHECK(y.dtype() == gg::f64);
  const Var xd(x32.to(gg::f64)), bd(b.value().to(gg::f64));
  const Var yd = gg::linear(xd, w, bd);
  CHECK(values(y) == values(yd));
  gg::sum(y * y).backward();
  gg::sum(yd * yd).backward();
  CHECK(x.grad().dtype() == gg::f32); // a gradient has its input's dtype
  CHECK(b.grad().dtype() == gg::f32);
  CHECK(x.grad().to_vector() == xd.grad().to(gg::f32).to_vector());
  CHECK(b.grad().to_vector() == bd.grad().to(gg::f32).to_vector());
}

TEST_CASE("linear: only the inputs that require grad get gradients, the bias alone included") {
  const Var x(rnd({4, 3}, 1), false), w(rnd({2, 3}, 2), false), b(rnd({2}, 3));
  const Var y = gg::linear(x, w, b);
  REQUIRE(y.requires_grad()); // recorded although neither x nor w requires grad
  gg::sum(y).backward();
  CHECK(b.grad().to_vector() == std::vector<double>{4, 4});
  CHECK_FALSE(x.has_grad());
  CHECK_FALSE(w.has_grad());
  const Var frozen = gg::linear(x, w);
  CHECK_FALSE(frozen.requires_grad());
}

TEST_CASE("linear: shape errors name both shapes") {
  const Var x(Tensor::zeros({4, 3})), w(Tensor::zeros({2, 5})), b(Tensor::zeros({3}));
  REQUIRE_THROWS_AS(gg::linear(x, w), gg::ShapeError);
  REQUIRE_THROWS_WITH(gg::linear(x, w), Catch::Contains("[4, 3]") && Catch::Contains("[2, 5]"));
  REQUIRE_THROWS_WITH(gg::linear(x, Var(Tensor::zeros({2, 3})), b),
                      Catch::Contains("bias") && Catch::Contains("[3]") && Catch::Contains("[2, 3]"));
}

TEST_CASE("variadic ops record when only a later input requires grad") {
  const Var a = Var::constant(Tensor::ones({2})), b = Var::constant(Tensor::ones({2})), c(Tensor::ones({2}));
  const Var y = gg::concat({a, b, c});
  REQUIRE(y.requires_grad());
  gg::sum(y * Var::constant(Tensor({1, 2, 3, 4, 5, 6}, {6}))).backward();
  CHECK(c.grad().to_vector() == std::vector<double>{5, 6});
}

namespace {
/// op(a) op(b) by the definition, in double.
std::vector<double> reference_product(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  const std::int64_t n = ta ? a.shape()[1] : a.shape()[0], k = ta ? a.shape()[0] : a.shape()[1];
  const std::int64_t m = tb ? b.shape()[0] : b.shape()[1];
  std::vector<double> c(static_cast<std::size_t>(n * m));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < m; ++j) {
      double s = 0;
      for (std::int64_t p = 0; p < k; ++p)
        s += a.flat(ta ? p * n + i : i * k + p) * b.flat(tb ? j * k + p : p * m + j);
      c[static_cast<std::size_t>(i * m + j)] = s;
    }
  return c;
}

/// Restores one kernel thread and the default GEMM library after a test.
struct KernelDefaults {
  ~KernelDefaults() {
    gg::kernel::set_num_threads(1);
    gg::kernel::use_blas(true);
  }
};
} // namespace

TEST_CASE("gemm: the small-product loops, BLIS, oneDNN, OpenBLAS and Eigen agree with the definition, on 1 "
          "and 2 threads") {
  const KernelDefaults restore;
  INFO("library: " << gg::kernel::gemm_library());
  struct Case {
    std::int64_t n, k, m;
  };
  // On one thread (when built in): {300, 40, 10} and {9, 200, 70} narrow, by BLIS (or, on AVX-512,
  // OpenBLAS's small-matrix kernels where they take the transposes); {70, 90, 110},
  // {130, 64, 257} and {300, 8, 40} floats by oneDNN, {300, 8, 40} doubles (short k) by BLIS;
  // {40, 1100, 30} (k > 1024) by OpenBLAS. On two threads {130, 64, 257} and {200, 96, 120} are
  // split by rows (64 + 66 and 96 + 104), each part on its thread; on AVX-512 with oneDNN, floats
  // {70, 600, 500} too (b of 300,000 elements: 32 + 38 rows), and {10, 300, 400} (narrow, too short
  // to split) by the one-thread rule; otherwise OpenBLAS's threads take those two.
  for (const Case c : {Case{3, 4, 5}, Case{3, 1, 2}, Case{1, 300, 20}, Case{70, 90, 110}, Case{130, 64, 257},
                       Case{300, 40, 10}, Case{9, 200, 70}, Case{300, 8, 40}, Case{40, 1100, 30},
                       Case{200, 96, 120}, Case{70, 600, 500}, Case{10, 300, 400}})
    for (const gg::DType dtype : {gg::f32, gg::f64})
      for (const bool ta : {false, true})
        for (const bool tb : {false, true}) {
          gg::Rng rng(static_cast<std::uint64_t>(c.n * 7 + c.m));
          const Tensor a = Tensor::randn(ta ? Shape{c.k, c.n} : Shape{c.n, c.k}, rng, dtype);
          const Tensor b = Tensor::randn(tb ? Shape{c.m, c.k} : Shape{c.k, c.m}, rng, dtype);
          const std::vector<double> want = reference_product(a, ta, b, tb);
          // float rounding grows with the length of the sums (k)
          const double tol =
              (dtype == gg::f32 ? 2e-5 : 1e-12) * std::max(1.0, static_cast<double>(c.k) / 256);
          for (const bool blas : {true, false})
            for (const int threads : {1, 2}) {
              gg::kernel::use_blas(blas);
              gg::kernel::set_num_threads(threads);
              const Tensor got = gg::kernel::gemm(a, ta, b, tb);
              INFO(c.n << "x" << c.k << "x" << c.m << " " << gg::dtype_name(dtype) << " ta=" << ta
                       << " tb=" << tb << " blas=" << blas << " threads=" << threads);
              REQUIRE(got.shape() == Shape{c.n, c.m});
              double worst = 0;
              for (std::size_t i = 0; i < want.size(); ++i)
                worst = std::max(worst, std::abs(got.flat(static_cast<std::int64_t>(i)) - want[i]) /
                                            std::max(1.0, std::abs(want[i])));
              CHECK(worst <= tol);
            }
        }
}

TEST_CASE(
    "OpenBLAS runs the kernels of this CPU's widest vectors: where it took the CPU for an older one, it "
    "chooses again, unless OPENBLAS_CORETYPE chose") {
  const std::string lib = gg::kernel::gemm_library();
  INFO("library: " << lib);
  if (lib.find("OpenBLAS") == std::string::npos || lib.find("without OpenBLAS") != std::string::npos ||
      lib.find("buffer") != std::string::npos)
    return; // no OpenBLAS in this build or this address space
  if (const char* chosen = std::getenv("OPENBLAS_CORETYPE")) // tests/CMakeLists.txt: Prescott
    CHECK(lib.find(chosen) != std::string::npos);
  else
    CHECK(lib.rfind("OpenBLAS (", 0) == 0);
}

TEST_CASE("The kernels say which library runs them, as the products and threads change") {
  const KernelDefaults restore;
  CHECK(gg::kernel::gemm_library(2, 3, 2) == "plain loops");
  // One thread: the 784-128-10 MLP's products by shape (docs/gemm.md), each named as it runs.
  const auto starts = [](const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; };
  const std::string wide = gg::kernel::gemm_library(64, 784, 128, gg::f32);
  CHECK((starts(wide, "oneDNN") || wide == gg::kernel::gemm_library()));
  CHECK(gg::kernel::gemm_library(64, 784, 128, gg::f64) == gg::kernel::gemm_library());
  // A long k (a weight gradient over 2048 rows): OpenBLAS, but oneDNN on a CPU with AVX-512, where
  // it was measured faster on every float product with b of up to 2^20 elements; a larger b, OpenBLAS.
  const std::string deep = gg::kernel::gemm_library(64, 2048, 128, gg::f32);
  INFO(deep);
#if defined(__x86_64__) || defined(__i386__)
  const bool avx512 = __builtin_cpu_supports("avx512f");
#else
  const bool avx512 = false;
#endif
  // Where oneDNN runs the 784-wide product it is there, and on AVX-512 it must take the long k too.
  if (avx512 && starts(wide, "oneDNN"))
    CHECK(starts(deep, "oneDNN"));
  else
    CHECK(deep == gg::kernel::gemm_library());
  CHECK(gg::kernel::gemm_library(64, 2048, 1024, gg::f32) == gg::kernel::gemm_library());
  const bool blas = gg::kernel::gemm_library().rfind("OpenBLAS", 0) == 0;
  for (const gg::DType dtype : {gg::f32, gg::f64}) {
    // The 10-class layer at batch 256: its forward x W^T (c of 2560 elements, more than OpenBLAS's
    // small-matrix kernels take transposing b) by BLIS; its weight gradient g^T h by those kernels on
    // AVX-512 (OpenBLAS's AVX-512 families have them), else by BLIS.
    const std::string forward = gg::kernel::gemm_library(256, 128, 10, dtype, false, true);
    const std::string weight_grad = gg::kernel::gemm_library(10, 256, 128, dtype, true, false);
    INFO(forward << "; " << weight_grad);
    CHECK((starts(forward, "BLIS") || forward == gg::kernel::gemm_library()));
    if (avx512 && blas)
      CHECK(weight_grad == gg::kernel::gemm_library());
    else
      CHECK((starts(weight_grad, "BLIS") || weight_grad == gg::kernel::gemm_library()));
    // More threads: products too small to split by the one-thread rule on the calling thread (not
    // OpenBLAS's threads), larger ones with a small b split by rows across the threads, each part by
    // its one-thread library, and those with a large b to OpenBLAS's threads, except floats on
    // AVX-512 with oneDNN: split up to b of 2^20 elements (the 1024-wide MLP's k = m = 1024), and
    // narrow ones too short to split by the one-thread rule; larger b still to OpenBLAS's threads.
    gg::kernel::set_num_threads(2);
    CHECK(gg::kernel::gemm_library(256, 128, 10, dtype, false, true) == forward);
    const std::string split = gg::kernel::gemm_library(64, 784, 128, dtype);
    INFO(split);
    const bool is_split = split.find(", the rows split across 2 threads") != std::string::npos;
    CHECK((is_split || split == gg::kernel::gemm_library()));
    if (dtype == gg::f64) // parts by BLIS, only where its kernels are of the CPU's full width
      CHECK(is_split ==
            (!gg::kernel::detail::blis_kernels().empty() && gg::kernel::detail::blis_kernels_widest()));
    const std::string large_b = gg::kernel::gemm_library(256, 1024, 1024, dtype);
    const std::string narrow = gg::kernel::gemm_library(10, 256, 1024, dtype, true, false);
    INFO(large_b << "; " << narrow);
    if (dtype == gg::f32 && avx512 && starts(split, "oneDNN")) {
      CHECK(large_b == split);
      CHECK(narrow != gg::kernel::gemm_library()); // BLIS (or oneDNN), on the calling thread
    } else {
      CHECK(large_b == gg::kernel::gemm_library());
      CHECK(narrow == gg::kernel::gemm_library());
    }
    CHECK(gg::kernel::gemm_library(256, 2048, 1024, dtype) == gg::kernel::gemm_library());
    gg::kernel::set_num_threads(1);
  }
  gg::kernel::use_blas(false);
  CHECK(gg::kernel::gemm_library(64, 784, 128).rfind("Eigen", 0) == 0);
  CHECK(gg::kernel::gemm_library(256, 128, 10).rfind("Eigen", 0) == 0);
  // conv2d names each im2col pass with the library its products ran with (float64: always im2col), and
  // how the batch was split: x [2, 16, 14, 14] by w [8, 16, 5, 5], one image's columns a chunk.
  const auto has = [](const std::string& text) {
    INFO(gg::kernel::conv2d_library());
    CHECK(gg::kernel::conv2d_library().find(text) != std::string::npos);
  };
  const Var x(rnd({2, 16, 14, 14}, 3), false), w(rnd({8, 16, 5, 5}, 4));
  const auto conv = [&] { gg::sum(gg::conv2d(x, w, Var(), 1, 2)).backward(); };
  conv();
  has("backward weights by " + gg::kernel::gemm_library()); // the last pass named before its library
  gg::kernel::use_blas(true);
  conv(); // one thread: the library chosen by shape, as the product [8, 400] x [400, 196] runs
  has(" by " + gg::kernel::gemm_library(8, 400, 196, gg::f64));
  // ... and the process's list of the libraries that ran products holds it.
  CHECK(gg::kernel::gemm_libraries_ran().find(gg::kernel::gemm_library(8, 400, 196, gg::f64)) !=
        std::string::npos);
  gg::kernel::set_num_threads(2);
  conv();
  if (gg::kernel::gemm_library().rfind("OpenBLAS", 0) == 0)
    has(" by " + gg::kernel::gemm_library() +
        ", the batch split across 2 threads with single-threaded products");
  const std::string math = gg::kernel::math_library();
  CHECK((math.rfind("SLEEF", 0) == 0 || math.find("libm (scalar)") != std::string::npos));
}

TEST_CASE(
    "kernels: elementwise maps, reductions and backward kernels give the same bits on 1 and 2 threads") {
  const KernelDefaults restore;
  gg::Rng rng(11);
  // Just over 2^20 elements: large enough for even the cheapest elementwise kernels to be split.
  const Tensor x = Tensor::randn({1024, 1025}, rng, gg::f32), y = Tensor::randn({1024, 1025}, rng, gg::f32);
  const Tensor row = Tensor::randn({1025}, rng, gg::f32);
  using gg::kernel::Binary;
  using gg::kernel::Unary;
  const auto all = [&] {
    std::vector<Tensor> r;
    for (const Unary f : {Unary::relu, Unary::exp, Unary::tanh, Unary::sigmoid})
      r.push_back(gg::kernel::unary(f, x));
    r.push_back(gg::kernel::binary(Binary::mul, x, y));
    r.push_back(gg::kernel::binary(Binary::add, x, row));
    r.push_back(gg::kernel::binary_scalar(Binary::mul, x, 0.5));
    using gg::detail::Math;
    r.push_back(gg::detail::map_vjp<Math<gg::Op::relu>>(y, x, gg::kernel::unary(Unary::relu, x), {}));
    r.push_back(gg::detail::map_vjp<Math<gg::Op::tanh>>(y, x, gg::kernel::unary(Unary::tanh, x), {}));
    r.push_back(gg::kernel::sum(x, 0));
    r.push_back(gg::kernel::sum(x, 1));
    r.push_back(gg::kernel::sum(x));
    r.push_back(gg::kernel::log_softmax(x, 1));
    r.push_back(gg::kernel::softmax_backward(y, gg::kernel::log_softmax(x, 1), 1, true));
    return r;
  };
  gg::kernel::set_num_threads(1);
  const std::vector<Tensor> one = all();
  gg::kernel::set_num_threads(2);
  const std::vector<Tensor> two = all();
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    INFO("result " << i);
    CHECK(one[i].to_vector() == two[i].to_vector());
  }
}

TEST_CASE("unfold and fold: the definition, their adjointness, and the same bits on 1 and 2 threads") {
  const KernelDefaults restore;
  gg::Rng rng(5);
  const std::int64_t n = 64, c = 3, h = 7, w = 6; // big enough for 2 threads at kernel 3
  const Tensor x = Tensor::randn({n, c, h, w}, rng);
  for (const std::int64_t stride : {1, 2, 3})
    for (const std::int64_t pad : {0, 1, 2})
      for (const std::int64_t k : {1, 2, 3}) {
        INFO("stride " << stride << " padding " << pad << " kernel " << k);
        gg::kernel::set_num_threads(1);
        const Tensor cols = gg::kernel::unfold(x, k, k, stride, pad, -5);
        const std::int64_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
        REQUIRE(cols.shape() == Shape{n, c * k * k, oh * ow});
        double worst = 0;
        for (std::int64_t b = 0; b < n; ++b)
          for (std::int64_t ch = 0; ch < c; ++ch)
            for (std::int64_t i = 0; i < k; ++i)
              for (std::int64_t j = 0; j < k; ++j)
                for (std::int64_t y = 0; y < oh; ++y)
                  for (std::int64_t xx = 0; xx < ow; ++xx) {
                    const std::int64_t iy = y * stride + i - pad, ix = xx * stride + j - pad;
                    const bool in = iy >= 0 && iy < h && ix >= 0 && ix < w;
                    const double want = in ? x.flat(((b * c + ch) * h + iy) * w + ix) : -5;
                    const double got =
                        cols.flat((b * c * k * k + (ch * k + i) * k + j) * oh * ow + y * ow + xx);
                    worst = std::max(worst, std::abs(got - want));
                  }
        CHECK(worst == 0);
        // <unfold(x), r> = <x, fold(r)> with zero padding: fold is unfold's adjoint.
        const Tensor r = Tensor::randn(cols.shape(), rng);
        const Tensor folded = gg::kernel::fold(r, x.shape(), k, k, stride, pad);
        const Tensor zero_padded = gg::kernel::unfold(x, k, k, stride, pad);
        double lhs = 0, rhs = 0;
        for (std::int64_t i = 0; i < r.numel(); ++i) lhs += zero_padded.flat(i) * r.flat(i);
        for (std::int64_t i = 0; i < x.numel(); ++i) rhs += x.flat(i) * folded.flat(i);
        CHECK(lhs == Approx(rhs).epsilon(1e-12));
        gg::kernel::set_num_threads(2);
        CHECK(gg::kernel::unfold(x, k, k, stride, pad, -5).to_vector() == cols.to_vector());
        CHECK(gg::kernel::fold(r, x.shape(), k, k, stride, pad).to_vector() == folded.to_vector());
      }
}

TEST_CASE("gemm_batched: per item and summed, with one operand shared, as separate products") {
  gg::Rng rng(9);
  const Tensor a3 = Tensor::randn({4, 20, 30}, rng), b3 = Tensor::randn({4, 30, 25}, rng);
  const Tensor a2 = Tensor::randn({20, 30}, rng), b2 = Tensor::randn({30, 25}, rng);
  const auto item = [](const Tensor& t, std::int64_t i) {
    return t.rank() == 2 ? t : gg::kernel::slice(t, 0, i, i + 1).reshape({t.shape()[1], t.shape()[2]});
  };
  struct Case {
    Tensor a, b;
  };
  for (const Case& c : {Case{a3, b3}, Case{a2, b3}, Case{a3, b2}}) {
    const Tensor each = gg::kernel::gemm_batched(c.a, false, c.b, false);
    const Tensor total = gg::kernel::gemm_batched(c.a, false, c.b, false, true);
    REQUIRE(each.shape() == Shape{4, 20, 25});
    REQUIRE(total.shape() == Shape{20, 25});
    Tensor sum = Tensor::zeros({20, 25});
    for (std::int64_t i = 0; i < 4; ++i) {
      const Tensor p = gg::kernel::gemm(item(c.a, i), false, item(c.b, i), false);
      CHECK(item(each, i).to_vector() == p.to_vector());
      sum = gg::kernel::binary(gg::kernel::Binary::add, sum, p);
    }
    for (std::int64_t j = 0; j < sum.numel(); ++j) CHECK(total.flat(j) == Approx(sum.flat(j)).epsilon(1e-12));
  }
  // Transposed operands: a^T b for a [4, 30, 20].
  const Tensor at = gg::kernel::transpose(a3, 1, 2);
  const Tensor via_t = gg::kernel::gemm_batched(at, true, b3, false),
               direct = gg::kernel::gemm_batched(a3, false, b3, false);
  for (std::int64_t j = 0; j < direct.numel(); ++j)
    CHECK(via_t.flat(j) == Approx(direct.flat(j)).epsilon(1e-12));
  REQUIRE_THROWS_AS(gg::kernel::gemm_batched(a3, false, Tensor::zeros({3, 30, 25}), false), gg::ShapeError);
}

TEST_CASE("max backward: amax's ties share the gradient and a NaN lane gives NaN, max(x, axis) routes it "
          "to the first maximum or NaN, as the differentiable rules") {
  const Tensor x({1, 5, 5, 2, /**/ 3, 0, 3, 3, /**/ 0, NAN, 1, NAN}, {3, 4});
  for (const bool keepdim : {false, true}) {
    const Var v(x), vf(x);
    const Var seed = Var::constant(Tensor({2, 3, 4}, keepdim ? Shape{3, 1} : Shape{3}));
    gg::sum(gg::amax(v, 1, keepdim) * seed).backward();
    gg::sum(gg::max(vf, 1, keepdim) * seed).backward();
    const std::vector<double> g = v.grad().to_vector(), gf = vf.grad().to_vector();
    const std::vector<double> want_rows = {0, 1, 1, 0, 1, 0, 1, 1};
    for (std::size_t i = 0; i < 8; ++i) CHECK(g[i] == want_rows[i]);
    for (std::size_t i = 8; i < 12; ++i) CHECK(std::isnan(g[i]));
    CHECK(gf == std::vector<double>{0, 2, 0, 0, 3, 0, 0, 0, 0, 4, 0, 0});
    const Var vf2(x); // the create_graph path of max(x, axis) agrees
    CHECK(gg::grad({gg::sum(gg::max(vf2, 1, keepdim) * seed)}, {vf2}, {}, {.create_graph = true})[0]
              .value()
              .to_vector() == gf);
    // The create_graph path of amax (the differentiable rule) agrees.
    const Var v2(x);
    const Var m2 = gg::amax(v2, 1, keepdim);
    const std::vector<double> g2 =
        gg::grad({gg::sum(m2 * seed)}, {v2}, {}, {.create_graph = true})[0].value().to_vector();
    for (std::size_t i = 0; i < 12; ++i) CHECK((g2[i] == g[i] || (std::isnan(g2[i]) && std::isnan(g[i]))));
  }
}

TEST_CASE("max backward's shape errors name the function called: max, min, amax or amin") {
  const Var v(Tensor::zeros({3, 4}));
  const std::vector<std::pair<std::string, Var>> extrema{
      {"max", gg::max(v, 1)}, {"min", gg::min(v, 1)}, {"amax", gg::amax(v, 1)}, {"amin", gg::amin(v, 1)}};
  for (const auto& [name, m] : extrema) {
    INFO(name);
    gg::detail::InputGrads out;
    const Tensor wrong = Tensor::zeros({4}); // the gradient of a [3] result
    CHECK_THROWS_WITH(gg::detail::rule_of(m.node()->op).vjp_values(m.node(), wrong, out),
                      Catch::StartsWith(name + " backward: extremum of shape [3] and gradient of shape [4]"));
  }
}

TEST_CASE("max backward of an inf or NaN gradient: both paths route it as torch (max(x, axis), max(x), "
          "min and max_pool2d: 0 off the picked elements; amax and amin: (g / ties) * mask, NaN there)") {
  const Tensor x({1, 5, 5, 2, /**/ 3, 0, 3, 3, /**/ 0, -1, 1, 4}, {3, 4});
  const double inf = INFINITY, nan = NAN;
  struct Case {
    const char* name;
    std::function<Var(const Var&)> f;
    Tensor seed;
    std::vector<double> want; // torch 1.13's gradient
  };
  const Tensor lanes({inf, -inf, nan}, {3});
  const std::vector<Case> cases{
      {"max(x, 1)",
       [](const Var& v) { return gg::max(v, 1); },
       lanes,
       {0, inf, 0, 0, -inf, 0, 0, 0, 0, 0, 0, nan}},
      {"min(x, 1)",
       [](const Var& v) { return gg::min(v, 1); },
       lanes,
       {inf, 0, 0, 0, 0, -inf, 0, 0, 0, nan, 0, 0}},
      {"amax(x, 1)",
       [](const Var& v) { return gg::amax(v, 1); },
       lanes,
       {nan, inf, inf, nan, -inf, nan, -inf, -inf, nan, nan, nan, nan}},
      {"amin(x, 1)",
       [](const Var& v) { return gg::amin(v, 1); },
       lanes,
       {inf, nan, nan, nan, nan, -inf, nan, nan, nan, nan, nan, nan}},
      {"max(x)",
       [](const Var& v) { return gg::max(v); },
       Tensor::scalar(inf),
       {0, inf, inf, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {"min(x)",
       [](const Var& v) { return gg::min(v); },
       Tensor::scalar(nan),
       {0, 0, 0, 0, 0, 0, 0, 0, 0, nan, 0, 0}},
      {"max_pool2d",
       [](const Var& v) {
         return gg::max_pool2d(gg::reshape(v, {1, 3, 4}), {2, 2});
       },
       Tensor({inf, nan}, {1, 1, 2}),
       {0, inf, nan, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
  };
  const auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
  for (const Case& c : cases) {
    INFO(c.name);
    for (const bool create_graph : {false, true}) {
      INFO("create_graph " << create_graph);
      const Var v(x);
      const std::vector<double> g =
          gg::grad({c.f(v)}, {v}, {c.seed}, {.create_graph = create_graph})[0].value().to_vector();
      for (std::size_t i = 0; i < 12; ++i) {
        INFO("element " << i << ": " << g[i] << ", torch " << c.want[i]);
        CHECK(same(g[i], c.want[i]));
      }
    }
  }
}
