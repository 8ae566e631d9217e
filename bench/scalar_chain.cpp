// Scalar reverse mode against plain doubles: x = a; repeat { x = x*b; x = x + a; x = tanh(x) }
// (N ops), recorded and differentiated by gradgraph vs evaluated with plain C++ doubles.
// Prints ns/op for both, their ratio, and bytes of tape per recorded op. Best of several runs.
#include <autodiff/autodiff.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace {
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// noinline + volatile inputs keep the compiler from folding the plain loop away.
[[gnu::noinline]] double plain(double a, double b, int reps) {
  double x = a;
  for (int i = 0; i < reps; ++i) {
    x = x * b;
    x = x + a;
    x = std::tanh(x);
  }
  return x;
}
} // namespace

int main(int argc, char** argv) {
  const long n_ops = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  const int reps = static_cast<int>(n_ops / 3);
  volatile double va = 0.5, vb = 0.999;

  double best_plain = 1e9, best_gg = 1e9, sink = 0;
  std::size_t bytes = 0;
  for (int r = 0; r < runs; ++r) {
    auto t0 = clock_type::now();
    sink += plain(va, vb, reps);
    best_plain = std::min(best_plain, seconds_since(t0));

    gg::Var a = double(va), b = double(vb);
    t0 = clock_type::now();
    {
      gg::Var x = a;
      for (int i = 0; i < reps; ++i) {
        x = x * b;
        x = x + a;
        x = gg::tanh(x);
      }
      x.backward();
      bytes = gg::tape_stats().bytes;
    } // the graph is freed here: part of the cost
    best_gg = std::min(best_gg, seconds_since(t0));
    sink += a.grad().item();
  }
  const double ops = 3.0 * reps;
  std::printf("scalar chain, %.0f ops, best of %d\n", ops, runs);
  std::printf("  plain doubles (forward only):   %8.2f ns/op\n", best_plain / ops * 1e9);
  std::printf("  gradgraph record+backward+free: %8.2f ns/op\n", best_gg / ops * 1e9);
  std::printf("  ratio gradgraph/plain:          %8.2f\n", best_gg / best_plain);
  std::printf("  tape memory:                    %8.1f bytes/op\n", static_cast<double>(bytes) / ops);
  return sink == 12345.678 ? 1 : 0;
}
