// A float32 n x n matmul, forward + backward through the graph, against the three matrix products
// it needs done directly with the GEMM kernel (a@b, g@b^T, a^T@g). Prints times, the ratio and the
// GEMM rate achieved. Usage: bench_matmul [n=1024] [runs=7] [threads=1]
#include <autodiff/autodiff.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {
using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}
} // namespace

int main(int argc, char** argv) {
  const std::int64_t n = argc > 1 ? std::atol(argv[1]) : 1024;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  gg::kernel::set_num_threads(argc > 3 ? std::atoi(argv[3]) : 1);
  gg::Rng rng(1);
  const gg::Tensor a = gg::Tensor::randn({n, n}, rng, gg::f32), b = gg::Tensor::randn({n, n}, rng, gg::f32);
  const gg::Tensor g = gg::Tensor::ones({n, n}, gg::f32);

  double best_raw = 1e9, best_gg = 1e9, sink = 0;
  for (int r = 0; r < runs; ++r) {
    auto t0 = clock_type::now();
    const gg::Tensor y = gg::kernel::gemm(a, false, b, false);
    const gg::Tensor ga = gg::kernel::gemm(g, false, b, true);
    const gg::Tensor gb = gg::kernel::gemm(a, true, g, false);
    best_raw = std::min(best_raw, seconds_since(t0));
    sink += y.flat(0) + ga.flat(0) + gb.flat(0);

    gg::Var va(a), vb(b);
    t0 = clock_type::now();
    gg::Var vy = gg::matmul(va, vb);
    vy.backward(g);
    best_gg = std::min(best_gg, seconds_since(t0));
    sink += va.grad().flat(0);
  }
  const double flops = 3 * 2.0 * static_cast<double>(n) * n * n;
  std::printf("float32 matmul %lldx%lld, forward + backward, %d thread(s), best of %d\n",
              static_cast<long long>(n), static_cast<long long>(n), gg::kernel::num_threads(), runs);
  std::printf("  three GEMMs directly: %8.2f ms  (%6.1f GFLOP/s)\n", best_raw * 1e3, flops / best_raw * 1e-9);
  std::printf("  gradgraph:            %8.2f ms  (%6.1f GFLOP/s)\n", best_gg * 1e3, flops / best_gg * 1e-9);
  std::printf("  ratio gradgraph/GEMMs: %7.2f\n", best_gg / best_raw);
  return sink == 0.123 ? 1 : 0;
}
